//! Upstream ggml's ternary types TQ2_0 / TQ1_0 against Q8_K activations (docs/upstream-numerics.md).
//!
//! `quantize_row_q8_K_ref` quantizes each 256-value block of an activation row; the dot follows
//! `ggml_vec_dot_tq{2,1}_0_q8_K`'s AVX2 path, whose float epilogue decides the bits: per block, 8 int32
//! lanes (lane m = Σ t·q over weights with `(w % 32) / 4 == m`, minus the q sum of weights
//! `32m..32m+32`), each lane multiplied by `f32(d_act · f16(d_w))` and added to its own f32
//! accumulator, then `hsum_float_8`. TQ1_0 and TQ2_0 map weights to lanes identically.

use rayon::prelude::*;

use crate::flavor::{tq1_0_blocks, tq2_0_blocks, BlockTq1_0, BlockTq2_0, QK_K};

use super::Dispatcher;

/// Which upstream ternary block type a matrix holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TqType {
    Tq2_0,
    Tq1_0,
}

/// A TQ weight matrix: `rows` rows of `k` weights (`k % 256 == 0`), blocks back to back.
#[derive(Clone, Copy, Debug)]
pub struct TqMatrix<'a> {
    pub data: &'a [u8],
    pub ty: TqType,
    pub rows: usize,
    pub k: usize,
}

impl TqMatrix<'_> {
    fn block_bytes(&self) -> usize {
        match self.ty {
            TqType::Tq2_0 => BlockTq2_0::BYTES,
            TqType::Tq1_0 => BlockTq1_0::BYTES,
        }
    }

    /// Trits `t ∈ {0,1,2}` (ggml's code, weight + 1) and the f32 block scales of one row.
    pub fn decode_row(&self, r: usize, t: &mut [u8], d: &mut [f32]) {
        let nb = self.k / QK_K;
        let row = &self.data[r * nb * self.block_bytes()..(r + 1) * nb * self.block_bytes()];
        let mut put = |b: usize, vals: [i8; QK_K], db: half::f16| {
            for (o, v) in t[b * QK_K..(b + 1) * QK_K].iter_mut().zip(vals) {
                *o = (v + 1) as u8;
            }
            d[b] = db.to_f32();
        };
        match self.ty {
            TqType::Tq2_0 => tq2_0_blocks(row)
                .enumerate()
                .for_each(|(b, blk)| put(b, blk.ternary(), blk.d)),
            TqType::Tq1_0 => tq1_0_blocks(row)
                .enumerate()
                .for_each(|(b, blk)| put(b, blk.ternary(), blk.d)),
        }
    }
}

/// `quantize_row_q8_K_ref` for one row: per 256-block, `max` = the signed value of largest |x| (first
/// wins), `iscale = −127/max`, `q = min(127, nearest_int(iscale·x))`, `d = 1/iscale` (0 for a zero block).
pub fn quantize_q8_k(x: &[f32], q: &mut [i8], d: &mut [f32]) {
    for ((xb, qb), db) in x.chunks_exact(QK_K).zip(q.chunks_exact_mut(QK_K)).zip(d.iter_mut()) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in xb {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            qb.fill(0);
            *db = 0.0;
            continue;
        }
        let iscale = -127.0f32 / max;
        for (o, &v) in qb.iter_mut().zip(xb) {
            *o = ((iscale * v).round_ties_even() as i32).min(127) as i8;
        }
        *db = 1.0 / iscale;
    }
}

/// One output of `ggml_vec_dot_tq{2,1}_0_q8_K` (AVX2 lane structure) from decoded trits. `fused`
/// contracts each lane's `sumf + lane·d` into one FMA, as a GCC (`-ffp-contract=fast`) build of
/// upstream does; the recorded upstream goldens come from a build that does not (docs/upstream-numerics.md).
pub fn tq_dot(t: &[u8], wd: &[f32], q: &[i8], qd: &[f32], fused: bool) -> f32 {
    let mut sumf = [0f32; 8];
    for ((tb, qb), (&w_d, &a_d)) in t.chunks_exact(QK_K).zip(q.chunks_exact(QK_K)).zip(wd.iter().zip(qd)) {
        let mut lanes = [0i32; 8];
        for w in 0..QK_K {
            lanes[(w % 32) / 4] += tb[w] as i32 * qb[w] as i32;
        }
        for (m, lane) in lanes.iter_mut().enumerate() {
            *lane -= qb[32 * m..32 * m + 32].iter().map(|&v| v as i32).sum::<i32>();
        }
        let d = a_d * w_d;
        for m in 0..8 {
            sumf[m] = if fused {
                (lanes[m] as f32).mul_add(d, sumf[m])
            } else {
                sumf[m] + lanes[m] as f32 * d
            };
        }
    }
    hsum_float_8(sumf)
}

/// `hsum_float_8` (arch/x86/quants.c): high + low 128-bit halves, then movehl, then movehdup.
pub fn hsum_float_8(v: [f32; 8]) -> f32 {
    let t = [v[4] + v[0], v[5] + v[1], v[6] + v[2], v[7] + v[3]];
    (t[0] + t[2]) + (t[1] + t[3])
}

thread_local! {
    /// Decoded trits and block scales of one weight row (per worker thread, reused across calls).
    static ROW: std::cell::RefCell<(Vec<u8>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

impl Dispatcher {
    /// `y[t·rows + r] = W_r · x_t` for a TQ matrix with Q8_K activations (`fused`: see [`tq_dot`]); the
    /// quantizer and the dot come from the kernel table and are recorded per call.
    pub fn tq_matmul(&self, w: &TqMatrix, x: &[f32], n: usize, fused: bool, y: &mut [f32]) {
        let (k, rows) = (w.k, w.rows);
        let nb = k / QK_K;
        assert!(k % QK_K == 0 && x.len() >= n * k && y.len() >= n * rows);
        if n == 0 || rows == 0 {
            return;
        }
        let table = self.table();
        let dot = match w.ty {
            TqType::Tq2_0 => table.tq2_0,
            TqType::Tq1_0 => table.tq1_0,
        };
        self.record(table.q8k_quantize.id, 1);
        self.record(dot.id, 1);
        super::with_scratch(|s| {
            let super::Scratch { q, qd, f, .. } = s;
            q.clear();
            q.resize(n * k, 0);
            qd.clear();
            qd.resize(n * nb, 0.0);
            for ((xt, qt), dt) in x[..n * k]
                .chunks_exact(k)
                .zip(q.chunks_exact_mut(k))
                .zip(qd.chunks_exact_mut(nb))
            {
                (table.q8k_quantize.run)(xt, qt, dt);
            }
            let (q, qd) = (&q[..], &qd[..]);
            f.clear();
            f.resize(rows * n, 0.0);
            f.par_chunks_mut(n).enumerate().for_each(|(r, out)| {
                ROW.with(|cell| {
                    let (tr, wd) = &mut *cell.borrow_mut();
                    tr.resize(k, 0);
                    wd.resize(nb, 0.0);
                    w.decode_row(r, tr, wd);
                    for (t, o) in out.iter_mut().enumerate() {
                        *o = (dot.run)(tr, wd, &q[t * k..(t + 1) * k], &qd[t * nb..(t + 1) * nb], fused);
                    }
                });
            });
            for (r, fr) in f.chunks_exact(n).enumerate() {
                for (t, &v) in fr.iter().enumerate() {
                    y[t * rows + r] = v;
                }
            }
        });
    }
}
