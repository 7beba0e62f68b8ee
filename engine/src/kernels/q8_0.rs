//! Q8_0 weights against Q8_0 activations: what ggml runs for a Q8_0 `mul_mat` (type_traits: `vec_dot_type` =
//! Q8_0), on x86 the same numbers whichever of its two paths runs.
//!
//! - Activations: `quantize_row_q8_0`'s AVX2 path (the one an AVX2/AVX-512 build compiles) per block of 32:
//!   `amax` = max |x|, `d = amax / 127` stored as f16, `id = 127 / amax` (0 for a zero block), `q =
//!   round-half-even(x·id)` (`_mm256_round_ps(_MM_ROUND_NEAREST)`, not the reference quantizer's `roundf`),
//!   saturated to int8.
//! - Dot (`ggml_vec_dot_q8_0_q8_0` for one row, llamafile's `tinyBLAS_Q0_AVX` for ≥ 2): per block, 8 int32
//!   lanes (lane l = Σ of products 4l..4l+3, exact), converted to f32; each lane's accumulator takes
//!   `fma(f32(d_w)·f32(d_x), lane, acc)`; at the end `hsum_float_8`. Both paths accumulate blocks in order
//!   with one FMA per lane and the same horizontal sum, so the row count never changes a result.

use rayon::prelude::*;

use crate::flavor::{BlockQ8_0, QK8_0};

use super::tq::hsum_float_8;
use super::{Dispatcher, SimdOrder};

/// A Q8_0 weight matrix: `rows` rows of `k` weights (`k % 32 == 0`), blocks back to back.
#[derive(Clone, Copy, Debug)]
pub struct Q8Matrix<'a> {
    pub data: &'a [u8],
    pub rows: usize,
    pub k: usize,
}

impl Q8Matrix<'_> {
    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.k / QK8_0 * BlockQ8_0::BYTES
    }
}

/// `quantize_row_q8_0` of one row: int8 values and each block's scale (the stored f16, as f32).
pub type Q8QuantizeFn = fn(x: &[f32], q: &mut [i8], d: &mut [f32]);

/// Integer dots of Q8_0 weight rows (`w`: rows of `k/32` blocks) × `n` activation rows (`q`: `n × k` int8,
/// `qd`: `n × k/32` f32 block scales), into `out[r·n + t]`.
pub type Q8RowsFn = fn(w: &[u8], k: usize, q: &[i8], qd: &[f32], n: usize, out: &mut [f32]);

/// `quantize_row_q8_0` (x86 AVX2 path) of one row: int8 values into `q`, each block's scale (the f16 value, as
/// f32) into `d`.
pub fn quantize_q8_0(x: &[f32], q: &mut [i8], d: &mut [f32]) {
    for ((xb, qb), db) in x.chunks_exact(QK8_0).zip(q.chunks_exact_mut(QK8_0)).zip(d.iter_mut()) {
        // _mm256_max_ps over |x| lanes, then the 128-bit folds: `a > b ? a : b` at each step. For finite values
        // this is the maximum whatever the order.
        let amax = xb.iter().fold(0f32, |m, v| if m > v.abs() { m } else { v.abs() });
        *db = half::f16::from_f32(amax / 127.0).to_f32();
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        for (o, &v) in qb.iter_mut().zip(xb) {
            // _mm256_cvtps_epi32 then the saturating packs: finite values stay in range (|x·id| ≤ 127.00002).
            *o = (v * id).round_ties_even().clamp(-128.0, 127.0) as i8;
        }
    }
}

/// The 8 exact int32 lane sums of one block: lane l = Σ_{j=4l}^{4l+3} w_j·q_j.
#[inline(always)]
fn lane_sums(w: &[i8], q: &[i8]) -> [i32; 8] {
    let mut lanes = [0i32; 8];
    for (j, (&a, &b)) in w.iter().zip(q).enumerate() {
        lanes[j / 4] += a as i32 * b as i32;
    }
    lanes
}

#[inline(always)]
fn dot_body(w: &[u8], q: &[i8], qd: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for ((wb, qb), &dx) in w.chunks_exact(BlockQ8_0::BYTES).zip(q.chunks_exact(QK8_0)).zip(qd) {
        let dw = half::f16::from_le_bytes([wb[0], wb[1]]).to_f32();
        let ws: &[i8] = bytemuck_i8(&wb[2..]);
        let s = dw * dx;
        for (a, l) in acc.iter_mut().zip(lane_sums(ws, qb)) {
            *a = s.mul_add(l as f32, *a);
        }
    }
    hsum_float_8(acc)
}

/// `&[u8]` as `&[i8]` (same size and alignment).
#[inline(always)]
pub(crate) fn bytemuck_i8(b: &[u8]) -> &[i8] {
    // SAFETY: u8 and i8 have the same size, alignment and no invalid bit patterns.
    unsafe { std::slice::from_raw_parts(b.as_ptr().cast(), b.len()) }
}

/// One output: weight row `w` (blocks) · activation row `q` with block scales `qd` (see the module doc).
pub fn q8_0_dot(w: &[u8], q: &[i8], qd: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "fma")]
        fn with_fma(w: &[u8], q: &[i8], qd: &[f32]) -> f32 {
            dot_body(w, q, qd)
        }
        // SAFETY: FMA was detected just above; `mul_add` is the same single-rounding FMA either way.
        return unsafe { with_fma(w, q, qd) };
    }
    dot_body(w, q, qd)
}

/// [`Q8RowsFn`] of the scalar oracle.
pub fn q8_0_rows(w: &[u8], k: usize, q: &[i8], qd: &[f32], n: usize, out: &mut [f32]) {
    for_each_q8_row_token(w, k, q, qd, n, out, q8_0_dot);
}

/// A [`Q8RowsFn`] from a one-output dot: `out[r·n + t] = dot(w_r, q_t, qd_t)`.
#[inline(always)]
pub(crate) fn for_each_q8_row_token(
    w: &[u8],
    k: usize,
    q: &[i8],
    qd: &[f32],
    n: usize,
    out: &mut [f32],
    dot: impl Fn(&[u8], &[i8], &[f32]) -> f32,
) {
    let (rb, nb) = (k / QK8_0 * BlockQ8_0::BYTES, k / QK8_0);
    for (row, o) in w.chunks_exact(rb).zip(out.chunks_exact_mut(n)) {
        for (t, v) in o.iter_mut().enumerate() {
            *v = dot(row, &q[t * k..(t + 1) * k], &qd[t * nb..(t + 1) * nb]);
        }
    }
}

/// Weight bytes per parallel task (chunks only partition output rows; no result depends on them).
const CHUNK_BYTES: usize = 128 << 10;

impl Dispatcher {
    /// `y[t·rows + r] = W_r · x_t` for a Q8_0 matrix and `n` f32 activation rows (quantized to Q8_0 first), in
    /// the x86 order.
    pub fn q8_0_matmul(&self, w: &Q8Matrix, x: &[f32], n: usize, y: &mut [f32]) {
        self.q8_0_matmul_in(SimdOrder::Avx512, w, x, n, y);
    }

    /// [`Self::q8_0_matmul`] with the Q8_0 kernels of `order` (the x86 build's, or one aarch64 build's:
    /// `scalar_arm`'s Q8_0 section says what differs).
    pub fn q8_0_matmul_in(&self, order: SimdOrder, w: &Q8Matrix, x: &[f32], n: usize, y: &mut [f32]) {
        let (k, rows) = (w.k, w.rows);
        let nb = k / QK8_0;
        assert!(k % QK8_0 == 0 && x.len() >= n * k && y.len() >= n * rows && w.data.len() >= rows * w.row_bytes());
        if n == 0 || rows == 0 {
            return;
        }
        let set = self.table().q8_set(order);
        let mut q = vec![0i8; n * k];
        let mut qd = vec![0f32; n * nb];
        for t in 0..n {
            (set.quantize.run)(
                &x[t * k..(t + 1) * k],
                &mut q[t * k..(t + 1) * k],
                &mut qd[t * nb..(t + 1) * nb],
            );
        }
        let kernel = set.rows(n);
        self.record(set.quantize.id, 1);
        self.record(kernel.id, 1);
        let rb = w.row_bytes();
        let chunk = (CHUNK_BYTES / rb.max(1)).max(8);
        let run = kernel.run;
        let mut yt = vec![0f32; rows * n];
        yt.par_chunks_mut(chunk * n).enumerate().for_each(|(c, o)| {
            let (r0, cr) = (c * chunk, o.len() / n);
            run(&w.data[r0 * rb..(r0 + cr) * rb], k, &q, &qd, n, o);
        });
        if n == 1 {
            y[..rows].copy_from_slice(&yt);
            return;
        }
        y[..n * rows].par_chunks_mut(rows).enumerate().for_each(|(t, row)| {
            for (r, v) in row.iter_mut().enumerate() {
                *v = yt[r * n + t];
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_quantizer_rounds_ties_to_even() {
        // amax 127 → id 1: 2.5 → 2, 3.5 → 4, −2.5 → −2 (roundf would give 3, 4, −3).
        let mut x = [0f32; QK8_0];
        x[..4].copy_from_slice(&[127.0, 2.5, 3.5, -2.5]);
        let (mut q, mut d) = ([0i8; QK8_0], [0f32; 1]);
        quantize_q8_0(&x, &mut q, &mut d);
        assert_eq!(&q[..4], &[127, 2, 4, -2]);
        assert_eq!(d[0], 1.0);
    }

    #[test]
    fn dot_sums_lanes_with_hsum_float_8() {
        // One block, weights 1, activations j: lane l sums 4l..4l+3.
        let mut w = vec![0u8; BlockQ8_0::BYTES];
        w[..2].copy_from_slice(&half::f16::ONE.to_le_bytes());
        w[2..].fill(1);
        let q: Vec<i8> = (0..32).collect();
        assert_eq!(q8_0_dot(&w, &q, &[0.5]), (0..32).sum::<i32>() as f32 * 0.5);
    }
}
