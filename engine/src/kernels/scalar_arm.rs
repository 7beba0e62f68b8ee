//! Scalar oracles of bitnet.cpp 2025's **aarch64** builds: the float arithmetic of ggml's `__ARM_NEON` branches,
//! lane for lane, computable on any host. Two builds differ (../shared/reference/arm*/README.md):
//!
//! * plain `-march=armv8-a` ([`SimdOrder::Neon`]): 4-lane f32 NEON where x86 has 16 lanes;
//! * `+fp16` ([`SimdOrder::NeonFp16`], what Apple M-series builds compile): `__ARM_FEATURE_FP16_VECTOR_ARITHMETIC`
//!   makes `ggml_vec_dot_f16` and llamafile's F16 tinyBLAS accumulate **in fp16** (`vfmaq_f16`).
//!
//! fp16 arithmetic is emulated exactly: [`fma16`] is one correctly rounded fused multiply-add, [`add16`] one
//! correctly rounded add (see their docs for why the emulation is exact). docs/kernels.md lists what each
//! function reproduces and where in the fork's source.

use half::f16;

use crate::flavor::{BlockQ8_0, QK8_0};

use super::elementwise::{expf_reduce, EXPF_C};
use super::q8_0::{bytemuck_i8, for_each_q8_row_token};
use super::scalar::{for_each_row, for_each_row_token};
use super::SimdOrder;

/// `x` rounded to the nearest f16, ties to even, from an exact f64 `hi` plus a correction `lo` with
/// `|lo| ≤ ulp(hi)/2` (the value is `hi + lo` exactly). `lo` only matters when `hi` is exactly halfway
/// between two f16 values: then it says which side the exact value lies on.
///
/// Not `half::f16::from_f64`: that one converts through f32 (double rounding) with F16C and truncates
/// sticky bits in its software path.
pub fn round_f16(hi: f64, lo: f64) -> f16 {
    if !hi.is_finite() {
        return f16::from_f32(hi as f32);
    }
    let a = hi.abs();
    if a == 0.0 {
        return f16::from_f32(hi as f32);
    }
    // Quantum of the f16 grid at `a`: 2^-24 below the normal range, else 2^(exponent − 10).
    let e = ((a.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    let q_exp = e.max(-14) - 10;
    let q = f64::from_bits(((q_exp + 1023) as u64) << 52);
    let m = a / q; // exact: a power-of-two scaling
    let floor = m.floor();
    let frac = m - floor;
    let up = if frac > 0.5 {
        true
    } else if frac < 0.5 {
        false
    } else if lo != 0.0 {
        // Exactly halfway in f64, but the true value lies on lo's side.
        (lo > 0.0) == (hi > 0.0)
    } else {
        floor % 2.0 != 0.0
    };
    let r = (if up { floor + 1.0 } else { floor }) * q;
    // r is on the f16 grid (exact in f32) unless it is past the largest finite f16 (65504): then ±∞.
    let r = if r > 65504.0 { f64::INFINITY } else { r };
    f16::from_f32((hi.signum() * r) as f32)
}

/// One `vfmaq_f16` lane: `c + a·b` rounded once to f16.
///
/// Exact emulation: `a·b` of two f16 is exact in f32 (11 × 11 significant bits), so `c + a·b` is a sum of two
/// f64 values; TwoSum gives its rounded value `s` and the exact error `t` (`s + t = c + a·b` exactly), and
/// [`round_f16`] rounds `s` to f16 with `t` deciding the one case where rounding `s` could differ from rounding
/// the exact sum (`s` exactly halfway between two f16 values). Any finite result is < 2^16, so both
/// operands are bounded and TwoSum cannot overflow.
#[inline]
pub fn fma16(a: f16, b: f16, c: f16) -> f16 {
    let p = (a.to_f32() * b.to_f32()) as f64;
    let c = c.to_f64();
    let s = p + c;
    let bb = s - p;
    let t = (p - (s - bb)) + (c - bb);
    round_f16(s, if t.is_finite() { t } else { 0.0 })
}

/// One `vaddq_f16` lane: `a + b` rounded once to f16 (exact in f64: the exponents of two f16 differ by < 40).
#[inline]
pub fn add16(a: f16, b: f16) -> f16 {
    round_f16(a.to_f64() + b.to_f64(), 0.0)
}

/// `vaddvq_f32`: `faddp` twice, `(v0 + v1) + (v2 + v3)`.
#[inline(always)]
pub fn hadd4(v: [f32; 4]) -> f32 {
    (v[0] + v[1]) + (v[2] + v[3])
}

/// The fp16 horizontal sum of tinyBLAS's `hsum(float16x8_t)` and `GGML_F16x8_REDUCE`'s tail: lanes widened
/// to f32, low half + high half, then [`hadd4`].
#[inline(always)]
pub fn hadd8_f16(v: [f16; 8]) -> f32 {
    hadd4(std::array::from_fn(|l| v[l].to_f32() + v[l + 4].to_f32()))
}

/// `ggml_vec_dot_f16`, NEON without fp16 arithmetic (`GGML_F16_STEP` 16, `GGML_F16_EPR` 4): four f32x4
/// accumulators per 16 elements, reduced `(a0+a2) + (a1+a3)` lane-wise then [`hadd4`]; the tail (n mod 16)
/// adds exact products in f64.
pub fn f16_dot_neon(x: &[f16], y: &[f16]) -> f32 {
    let n = x.len().min(y.len());
    let np = n & !15;
    let mut acc = [[0f32; 4]; 4];
    for c in (0..np).step_by(16) {
        for (j, a) in acc.iter_mut().enumerate() {
            for (l, al) in a.iter_mut().enumerate() {
                let i = c + 4 * j + l;
                // f16×f16 is exact in f32, so vfmaq_f32 and multiply-then-add agree.
                *al += x[i].to_f32() * y[i].to_f32();
            }
        }
    }
    let r: [f32; 4] = std::array::from_fn(|l| (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]));
    let mut sumf = hadd4(r) as f64;
    for i in np..n {
        sumf += (x[i].to_f32() * y[i].to_f32()) as f64;
    }
    sumf as f32
}

/// `ggml_vec_dot_f16` with `__ARM_FEATURE_FP16_VECTOR_ARITHMETIC` (`GGML_F16_STEP` 32, `GGML_F16_EPR` 8): four
/// float16x8 accumulators updated by `vfmaq_f16` ([`fma16`]) per 32 elements, reduced in fp16
/// (`a0+a2`, `a1+a3`, then their sum, [`add16`]), widened by [`hadd8_f16`]; the tail (n mod 32) adds exact
/// products in f64.
pub fn f16_dot_neon_fp16(x: &[f16], y: &[f16]) -> f32 {
    let n = x.len().min(y.len());
    let np = n & !31;
    let mut acc = [[f16::ZERO; 8]; 4];
    for c in (0..np).step_by(32) {
        for (j, a) in acc.iter_mut().enumerate() {
            for (l, al) in a.iter_mut().enumerate() {
                let i = c + 8 * j + l;
                *al = fma16(x[i], y[i], *al);
            }
        }
    }
    let r: [f16; 8] = std::array::from_fn(|l| add16(add16(acc[0][l], acc[2][l]), add16(acc[1][l], acc[3][l])));
    let mut sumf = hadd8_f16(r) as f64;
    for i in np..n {
        sumf += (x[i].to_f32() * y[i].to_f32()) as f64;
    }
    sumf as f32
}

/// One output of llamafile's `tinyBLAS<4, float32x4_t, float32x4_t, ggml_fp16_t, float, float>` (NEON without
/// fp16 arithmetic): four lanes, an FMA chain (`vfmaq_f32`) over k in steps of 4, then [`hadd4`].
/// `a` is a row of f16 weights, `b` a row of f32 activations; `len % 4 == 0`.
pub fn tinyblas_neon(a: &[f16], b: &[f32]) -> f32 {
    let mut acc = [0f32; 4];
    for (ac, bc) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for l in 0..4 {
            acc[l] = ac[l].to_f32().mul_add(bc[l], acc[l]);
        }
    }
    hadd4(acc)
}

/// One output of llamafile's `tinyBLAS<8, float16x8_t, float16x8_t, ggml_fp16_t, ggml_fp16_t, float>` (fp16
/// arithmetic): eight fp16 lanes, a `vfmaq_f16` chain over k in steps of 8, then [`hadd8_f16`]. `b` holds f16
/// values (activations already rounded to f16, as ggml converts them); `len % 8 == 0`.
pub fn tinyblas_neon_fp16(a: &[f16], b: &[f32]) -> f32 {
    let mut acc = [f16::ZERO; 8];
    for (ac, bc) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] = fma16(ac[l], f16::from_f32(bc[l]), acc[l]);
        }
    }
    hadd8_f16(acc)
}

/// `out[r] = f16_dot_neon(w_r, x)` for every row of `w` (rows of `k`).
pub fn f16_dot_rows_neon(w: &[f16], k: usize, x: &[f16], out: &mut [f32]) {
    for_each_row(w, k, x, out, f16_dot_neon);
}

/// `out[r] = f16_dot_neon_fp16(w_r, x)` for every row of `w` (rows of `k`).
pub fn f16_dot_rows_neon_fp16(w: &[f16], k: usize, x: &[f16], out: &mut [f32]) {
    for_each_row(w, k, x, out, f16_dot_neon_fp16);
}

/// `out[r·n + t] = tinyblas_neon(w_r, x_t)`.
pub fn tinyblas_rows_neon(w: &[f16], k: usize, x: &[f32], n: usize, out: &mut [f32]) {
    for_each_row_token(w, k, x, n, out, tinyblas_neon);
}

/// `out[r·n + t] = tinyblas_neon_fp16(w_r, x_t)` (`x` f16-representable).
pub fn tinyblas_rows_neon_fp16(w: &[f16], k: usize, x: &[f32], n: usize, out: &mut [f32]) {
    for_each_row_token(w, k, x, n, out, tinyblas_neon_fp16);
}

/// `ggml_v_expf`, NEON variant (ARM's optimized-routines polynomial, `j` without the constant term and
/// `k + j·k` instead of AVX-512's `scalef`), one lane, every `vfmaq`/`vfmsq` a single-rounding FMA.
#[inline(always)]
pub fn v_expf_neon(x: f32) -> f32 {
    let (z, n, b) = expf_reduce(x);
    let e = z.to_bits() << 23;
    let k = f32::from_bits(e.wrapping_add(1.0f32.to_bits()));
    let u = b * b;
    let [c1, c2, c3, c4, c5] = EXPF_C;
    let j = c5.mul_add(b, c4).mul_add(u, c3.mul_add(b, c2)).mul_add(u, c1 * b);
    if n.abs() <= 126.0 || n.is_nan() {
        return j.mul_add(k, k);
    }
    let d: u32 = if n <= 0.0 { 0x8200_0000 } else { 0 };
    let s1 = f32::from_bits(d.wrapping_add(0x7f00_0000));
    if n.abs() > 192.0 {
        return s1 * s1;
    }
    let s2 = f32::from_bits(e.wrapping_sub(d));
    s2.mul_add(j, s2) * s1
}

/// `expf` of the C library: the softmax and SiLU tails (n mod 4) call it. Rust's `f32::exp` is the
/// platform libm's `expf` (glibc on Linux, as in the reference runs).
#[inline(always)]
fn libm_expf(x: f32) -> f32 {
    x.exp()
}

/// `ggml_compute_forward_soft_max_f32` on one row, NEON build: `w = s·scale`, masked entries −∞,
/// `e = v_expf_neon(w − max)` per 4 lanes with [`hadd4`] sums accumulated in f64 (`expf` for a tail),
/// then `e · f32(1 / sum)`. `valid` is how many leading entries are unmasked.
pub fn softmax_masked_neon(s: &mut [f32], scale: f32, valid: usize) {
    let max = super::elementwise::softmax_scale_mask(s, scale, valid);
    let mut sum = 0f64;
    let np = s.len() & !3;
    for chunk in s[..np].chunks_exact_mut(4) {
        for v in chunk.iter_mut() {
            *v = v_expf_neon(*v - max);
        }
        sum += hadd4([chunk[0], chunk[1], chunk[2], chunk[3]]) as f64;
    }
    for v in s[np..].iter_mut() {
        *v = libm_expf(*v - max);
        sum += *v as f64;
    }
    super::elementwise::softmax_normalize(s, sum);
}

/// `ggml_vec_silu_f32`, NEON build: `x / (1 + v_expf_neon(0 − x))` per 4-lane vector, `x / (1 + expf(−x))`
/// for a tail. In place.
pub fn silu_neon(x: &mut [f32]) {
    let np = x.len() & !3;
    for v in x[..np].iter_mut() {
        *v = *v / (1.0 + v_expf_neon(0.0 - *v));
    }
    for v in x[np..].iter_mut() {
        *v = *v / (1.0 + libm_expf(-*v));
    }
}

/// The FFN activation in place for an ARM build: squared ReLU (identical on every ISA) or [`silu_neon`].
pub fn ffn_act_neon(gate: &mut [f32], relu2: bool) {
    if relu2 {
        // Squared ReLU has no lane arithmetic to differ in.
        super::elementwise::ffn_act(gate, true);
    } else {
        silu_neon(gate);
    }
}

/// Whether llamafile's tinyBLAS serves an F16 matmul of `n ≥ 2` activation rows of length `k` in this build
/// (`llamafile_sgemm`, F16 case); otherwise ggml falls back to `ggml_vec_dot_f16` on f16-rounded activations.
pub fn tinyblas_serves(order: SimdOrder, n: usize, k: usize) -> bool {
    match order {
        SimdOrder::Avx512 => n >= 2 && k.is_multiple_of(16),
        SimdOrder::Neon => n >= 2 && k.is_multiple_of(4),
        // Refuses f32 B; ggml retries with B converted to f16 and tinyBLAS then needs 8 rows.
        SimdOrder::NeonFp16 => n >= 8 && k.is_multiple_of(8),
    }
}

/// `quantize_row_q8_0`'s `__ARM_NEON` path (both aarch64 builds; fork `ggml/src/ggml-quants.c`), per block
/// of 32: `amax` by `vmaxq_f32` folds and `vmaxvq_f32` (`fmax`: a NaN propagates), `d = amax / 127` (stored
/// as f16), `id = d ≠ 0 ? 1/d : 0` — not x86's `127/amax`, so `x·id` can differ in the last bit —,
/// `vcvtnq_s32_f32(x·id)` (nearest, ties to even, saturating, NaN → 0), the int32 stored into the int8 field
/// by C's conversion (its low 8 bits; only reachable when `d` is subnormal).
pub fn quantize_q8_0_neon(x: &[f32], q: &mut [i8], d: &mut [f32]) {
    for ((xb, qb), db) in x.chunks_exact(QK8_0).zip(q.chunks_exact_mut(QK8_0)).zip(d.iter_mut()) {
        let amax = xb.iter().fold(0f32, |m, v| {
            if m.is_nan() || v.is_nan() {
                f32::NAN
            } else {
                m.max(v.abs())
            }
        });
        let dd = amax / 127.0;
        *db = f16::from_f32(dd).to_f32();
        let id = if dd != 0.0 { 1.0 / dd } else { 0.0 };
        for (o, &v) in qb.iter_mut().zip(xb) {
            // `as i32` saturates and maps NaN to 0, as `fcvtns` does.
            *o = (v * id).round_ties_even() as i32 as i8;
        }
    }
}

/// The 4 int32 lanes of one Q8_0 block product (exact), lane `l` summing the bytes `j` of each 16-byte half
/// with `lane(j) == l`.
#[inline(always)]
fn q8_lanes(w: &[i8], q: &[i8], lane: fn(usize) -> usize) -> [i32; 4] {
    let mut lanes = [0i32; 4];
    for (j, (&a, &b)) in w.iter().zip(q).enumerate() {
        lanes[lane(j % 16)] += a as i32 * b as i32;
    }
    lanes
}

/// `ggml_vdotq_s32` without FEAT_DotProd (`vmull_s8` of the low and high 8 bytes, `vpaddlq_s16` each, added):
/// lane `l` holds bytes 2l, 2l+1, 8+2l, 9+2l of each half.
#[inline(always)]
fn lane_mull(j: usize) -> usize {
    (j % 8) / 2
}

/// `vdotq_s32` (`sdot`): lane `l` holds bytes 4l..4l+3 of each half.
#[inline(always)]
fn lane_sdot(j: usize) -> usize {
    j / 4
}

/// Block `b` of a weight row against the activations: its 4 lanes and its scale `f32(d_w)·f32(d_x)`.
#[inline(always)]
fn q8_block(w: &[u8], q: &[i8], qd: &[f32], b: usize, lane: fn(usize) -> usize) -> ([i32; 4], f32) {
    let wb = &w[b * BlockQ8_0::BYTES..(b + 1) * BlockQ8_0::BYTES];
    let dw = f16::from_le_bytes([wb[0], wb[1]]).to_f32();
    let lanes = q8_lanes(bytemuck_i8(&wb[2..]), &q[b * QK8_0..(b + 1) * QK8_0], lane);
    (lanes, dw * qd[b])
}

/// `ggml_vec_dot_q8_0_q8_0`, `__ARM_NEON` branch: blocks in pairs, even blocks into `sumv0`, odd into `sumv1`,
/// each `vmlaq_n_f32(sumv, f32(lanes), scale)` — clang contracts it into one `fmla` (checked in the
/// disassembly of both builds) —, then `vaddvq_f32(sumv0) + vaddvq_f32(sumv1)`; an odd last block is added
/// by the scalar tail `sumf += sumi·scale`, also contracted (`fmadd`).
#[inline(always)]
fn q8_vec_dot_arm(w: &[u8], q: &[i8], qd: &[f32], lane: fn(usize) -> usize) -> f32 {
    let nb = qd.len();
    let mut acc = [[0f32; 4]; 2];
    for b in 0..nb & !1 {
        let (lanes, s) = q8_block(w, q, qd, b, lane);
        for (a, l) in acc[b % 2].iter_mut().zip(lanes) {
            *a = (l as f32).mul_add(s, *a);
        }
    }
    let mut sumf = hadd4(acc[0]) + hadd4(acc[1]);
    if nb % 2 == 1 {
        let (lanes, s) = q8_block(w, q, qd, nb - 1, lane);
        sumf = (lanes.iter().sum::<i32>() as f32).mul_add(s, sumf);
    }
    sumf
}

/// One output of llamafile's `tinyBLAS_Q0_ARM<block_q8_0>` (`__ARM_FEATURE_DOTPROD` builds, ≥ 2 activation
/// rows): one float32x4 accumulator over all blocks in order, `vmlaq_n_f32` (contracted to `fmla`) of the
/// `sdot` lanes and the block scale, then `hsum` = `vaddvq_f32`. Tiles only group outputs; each is this chain.
#[inline(always)]
fn q8_tinyblas_arm(w: &[u8], q: &[i8], qd: &[f32]) -> f32 {
    let mut acc = [0f32; 4];
    for b in 0..qd.len() {
        let (lanes, s) = q8_block(w, q, qd, b, lane_sdot);
        for (a, l) in acc.iter_mut().zip(lanes) {
            *a = (l as f32).mul_add(s, *a);
        }
    }
    hadd4(acc)
}

/// `f(w, q, qd)` where `mul_add` is one instruction (x86 hosts with FMA), else as is (same values: `mul_add`
/// is the single-rounding FMA either way).
#[inline(always)]
fn with_fma<F: Fn(&[u8], &[i8], &[f32]) -> f32>(w: &[u8], q: &[i8], qd: &[f32], f: F) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "fma")]
        fn fused<F: Fn(&[u8], &[i8], &[f32]) -> f32>(w: &[u8], q: &[i8], qd: &[f32], f: F) -> f32 {
            f(w, q, qd)
        }
        // SAFETY: FMA was detected just above.
        return unsafe { fused(w, q, qd, f) };
    }
    f(w, q, qd)
}

/// [`Q8RowsFn`](super::Q8RowsFn) of the plain aarch64 build (`-march=armv8-a`, no `sdot`): every row count
/// runs `ggml_vec_dot_q8_0_q8_0` (llamafile's Q8_0 case needs `__ARM_FEATURE_DOTPROD`), `vmull` lanes.
pub fn q8_0_rows_vec_dot_neon(w: &[u8], k: usize, q: &[i8], qd: &[f32], n: usize, out: &mut [f32]) {
    for_each_q8_row_token(w, k, q, qd, n, out, |w, q, qd| {
        with_fma(w, q, qd, |w, q, qd| q8_vec_dot_arm(w, q, qd, lane_mull))
    });
}

/// [`Q8RowsFn`](super::Q8RowsFn) of the aarch64 fp16 + dotprod build for one activation row:
/// `ggml_vec_dot_q8_0_q8_0` with `sdot` lanes.
pub fn q8_0_rows_vec_dot_neon_fp16(w: &[u8], k: usize, q: &[i8], qd: &[f32], n: usize, out: &mut [f32]) {
    for_each_q8_row_token(w, k, q, qd, n, out, |w, q, qd| {
        with_fma(w, q, qd, |w, q, qd| q8_vec_dot_arm(w, q, qd, lane_sdot))
    });
}

/// [`Q8RowsFn`](super::Q8RowsFn) of the aarch64 fp16 + dotprod build for ≥ 2 activation rows
/// (`llamafile_sgemm` → `tinyBLAS_Q0_ARM`).
pub fn q8_0_rows_tinyblas_neon_fp16(w: &[u8], k: usize, q: &[i8], qd: &[f32], n: usize, out: &mut [f32]) {
    for_each_q8_row_token(w, k, q, qd, n, out, |w, q, qd| with_fma(w, q, qd, q8_tinyblas_arm));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Correct rounding to f16 by exhaustive comparison with the grid (reference: nearest of the two
    /// neighbours, ties to even mantissa).
    fn reference_round(x: f64) -> f16 {
        let mut best = f16::from_f32(x as f32); // may be off by one ulp; search the neighbours
        for cand in [
            best,
            f16::from_bits(best.to_bits().wrapping_add(1)),
            f16::from_bits(best.to_bits().wrapping_sub(1)),
        ] {
            if !cand.is_finite() {
                continue;
            }
            let (db, dc) = ((best.to_f64() - x).abs(), (cand.to_f64() - x).abs());
            if dc < db || (dc == db && cand.to_bits() & 1 == 0) {
                best = cand;
            }
        }
        best
    }

    #[test]
    fn round_f16_is_correct_on_midpoints_and_neighbours() {
        for bits in (0u16..0x7bff).step_by(7) {
            let v = f16::from_bits(bits).to_f64();
            let next = f16::from_bits(bits + 1).to_f64();
            let mid = (v + next) / 2.0;
            for x in [v, mid, mid + 1e-12 * mid.max(1e-8), mid - 1e-12 * mid.max(1e-8), next] {
                assert_eq!(round_f16(x, 0.0).to_bits(), reference_round(x).to_bits(), "x = {x:e}");
                assert_eq!(
                    round_f16(-x, 0.0).to_bits(),
                    reference_round(-x).to_bits(),
                    "x = -{x:e}"
                );
            }
            // Halfway in f64 but the exact value is a hair above/below.
            assert_eq!(round_f16(mid, 1e-30).to_bits(), f16::from_f64(next).to_bits());
            assert_eq!(round_f16(mid, -1e-30).to_bits(), f16::from_f64(v).to_bits());
        }
        assert!(round_f16(65520.0, 0.0).is_infinite());
        assert_eq!(round_f16(65519.0, 0.0).to_f32(), 65504.0);
        assert_eq!(round_f16(65520.0, -1e-9).to_f32(), 65504.0);
    }

    #[test]
    fn fma16_and_add16_round_correctly() {
        // Deterministic pseudo-random f16 triples over the whole finite range (xorshift).
        let mut st = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            let h = f16::from_bits((st >> 20) as u16 & 0xfbff);
            if h.is_finite() {
                h
            } else {
                f16::ONE
            }
        };
        let mut differs = 0;
        for _ in 0..200_000 {
            let (a, b, c) = (next(), next(), next());
            let exact = (a.to_f32() * b.to_f32()) as f64 + c.to_f64();
            // Where the f64 sum is exact, the reference rounding of it is the correctly rounded FMA.
            let p = (a.to_f32() * b.to_f32()) as f64;
            if exact.abs() < 65504.0 && exact - p == c.to_f64() && exact - c.to_f64() == p {
                assert_eq!(
                    fma16(a, b, c).to_bits(),
                    reference_round(exact).to_bits(),
                    "{a} {b} {c}"
                );
                let twice = reference_round(reference_round(p).to_f64() + c.to_f64());
                differs += (twice.to_bits() != fma16(a, b, c).to_bits()) as usize;
            }
            if (a.to_f64() + c.to_f64()).abs() < 65504.0 {
                assert_eq!(
                    add16(a, c).to_bits(),
                    reference_round(a.to_f64() + c.to_f64()).to_bits()
                );
            }
        }
        assert!(
            differs > 100,
            "the sample must contain cases where one rounding differs from two: {differs}"
        );
    }

    #[test]
    fn q8_lanes_group_bytes_as_vmull_and_sdot_do() {
        // Weights 1, activations j: lane 0 of `vmull`+`vpaddl` sums bytes {0,1,8,9} of each half, of `sdot`
        // bytes 0..3 of each half.
        let (w, q): (Vec<i8>, Vec<i8>) = (vec![1; 32], (0..32).collect());
        assert_eq!(q8_lanes(&w, &q, lane_mull), [100, 116, 132, 148]);
        assert_eq!(q8_lanes(&w, &q, lane_sdot), [76, 108, 140, 172]);
    }

    #[test]
    fn q8_quantize_neon_keeps_c_conversions_at_the_edges() {
        let mut x = [0f32; 64];
        // Block 0: amax 127 → d = 1, ties to even. Block 1: d = 1e-40/127 is subnormal, 1/d overflows to +∞,
        // so nonzero values saturate (int32 max → low byte −1) and 0·∞ = NaN converts to 0.
        x[..4].copy_from_slice(&[127.0, 2.5, -3.5, 0.5]);
        x[32] = 1e-40;
        x[33] = -1e-40;
        let (mut q, mut d) = ([0i8; 64], [0f32; 2]);
        quantize_q8_0_neon(&x, &mut q, &mut d);
        assert_eq!((&q[..5], d[0]), (&[127i8, 2, -4, 0, 0][..], 1.0));
        assert_eq!(&q[32..35], &[-1, 0, 0]);
    }

    #[test]
    fn neon_expf_matches_libm_closely() {
        for i in -2000..200 {
            let x = i as f32 * 0.05;
            let (a, b) = (v_expf_neon(x), x.exp());
            assert!(
                (a - b).abs() <= 2.0 * f32::EPSILON * b.max(f32::MIN_POSITIVE),
                "{x}: {a} vs {b}"
            );
        }
        assert_eq!(v_expf_neon(f32::NEG_INFINITY), 0.0);
        assert_eq!(v_expf_neon(0.0), 1.0);
    }
}
