//! AArch64 Advanced SIMD kernels: intrinsics only, with the signatures of their scalar oracles
//! (`scalar::quantize_i8_s`, `scalar::i2s_rows`, `scalar_arm`'s F16 and Q8_0 kernels) and bit-for-bit their
//! results.
//!
//! The F16 kernels reproduce the aarch64 builds of bitnet.cpp, so on an ARM host they are the reference's own
//! instruction sequence: `fcvtl` + `fmla .4s` (plain NEON) or `fmla .8h` (fp16 arithmetic). fp16 vector
//! arithmetic, the f16 conversions and `sdot` are written as inline assembly (`.arch_extension`), which keeps
//! the crate's MSRV (their intrinsics were unstable there). Every `pub fn` is a safe wrapper whose caller (the
//! kernel table) checked the CPU features first: NEON always, `dotprod` / `fp16` where the kernel says so.

use std::arch::aarch64::*;
use std::arch::asm;

use half::f16;

use crate::flavor::{BlockQ8_0, QK8_0};

use super::q8_0::for_each_q8_row_token;
use super::scalar::{for_each_i2s_row, for_each_row, for_each_row_token, I2S_BLOCK};

/// Whether this CPU has `sdot` (FEAT_DotProd).
pub fn has_dotprod() -> bool {
    std::arch::is_aarch64_feature_detected!("dotprod")
}

/// Whether this CPU has fp16 vector arithmetic (FEAT_FP16).
pub fn has_fp16() -> bool {
    std::arch::is_aarch64_feature_detected!("fp16")
}

/// `quantize_row_i8_s` (spec §5.1): absmax in f32 with `fmaxnm` (NaN ignored, as the scalar `f64::max`), `vcvtnq` rounds
/// to nearest even like `round_ties_even`, clamp, integer sum.
pub fn quantize_i8_s(x: &[f32], out: &mut [i8]) -> (f32, i32) {
    // SAFETY: NEON is part of every AArch64 target.
    unsafe { quantize_i8_s_impl(x, out) }
}

#[target_feature(enable = "neon")]
unsafe fn quantize_i8_s_impl(x: &[f32], out: &mut [i8]) -> (f32, i32) {
    // SAFETY: the callers pass slices of the lengths each loop reads and hold the target features.
    unsafe {
        let n = x.len().min(out.len());
        let np = n & !3;
        let mut m = vdupq_n_f32(0.0);
        for i in (0..np).step_by(4) {
            m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x.as_ptr().add(i))));
        }
        let mut amax = 1e-5f64.max(vmaxnmvq_f32(m) as f64);
        for &v in &x[np..n] {
            amax = amax.max((v as f64).abs());
        }
        let s = (127.0 / amax) as f32;
        let (sv, lo, hi) = (vdupq_n_f32(s), vdupq_n_s32(-128), vdupq_n_s32(127));
        let mut sum = vdupq_n_s32(0);
        for i in (0..np).step_by(4) {
            let q = vminq_s32(
                vmaxq_s32(vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x.as_ptr().add(i)), sv)), lo),
                hi,
            );
            sum = vaddq_s32(sum, q);
            let mut lanes = [0i32; 4];
            vst1q_s32(lanes.as_mut_ptr(), q);
            for (o, l) in out[i..i + 4].iter_mut().zip(lanes) {
                *o = l as i8;
            }
        }
        let mut total = vaddvq_s32(sum);
        for (o, &v) in out[np..n].iter_mut().zip(&x[np..n]) {
            let q = (v * s).round_ties_even().clamp(-128.0, 127.0) as i32;
            *o = q as i8;
            total += q;
        }
        (s, total)
    }
}

/// `sdot acc.4s, a.16b, b.16b`.
#[inline(always)]
unsafe fn sdot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    // SAFETY: the callers pass slices of the lengths each loop reads and hold the target features.
    unsafe {
        asm!(
            ".arch_extension dotprod",
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack),
        );
        acc
    }
}

/// The 2-bit codes of group `g` (weights 32g..32g+32) of one x86 I2_S block, as two 16-byte vectors.
#[inline(always)]
unsafe fn codes(lo: uint8x16_t, hi: uint8x16_t, g: usize) -> (int8x16_t, int8x16_t) {
    // SAFETY: the callers pass slices of the lengths each loop reads and hold the target features.
    unsafe {
        let mask = vdupq_n_u8(3);
        let (l, h) = match g {
            0 => (vshrq_n_u8::<6>(lo), vshrq_n_u8::<6>(hi)),
            1 => (vshrq_n_u8::<4>(lo), vshrq_n_u8::<4>(hi)),
            2 => (vshrq_n_u8::<2>(lo), vshrq_n_u8::<2>(hi)),
            _ => (lo, hi),
        };
        (
            vreinterpretq_s8_u8(vandq_u8(l, mask)),
            vreinterpretq_s8_u8(vandq_u8(h, mask)),
        )
    }
}

/// Exact `Σ code·q` of one row with `sdot` (int8 × int8 into int32 lanes; codes ≤ 3).
#[target_feature(enable = "neon")]
unsafe fn i2s_dot_sdot(row: &[u8], q: &[i8]) -> i32 {
    // SAFETY: the callers pass slices of the lengths each loop reads and hold the target features.
    unsafe {
        let mut acc = [vdupq_n_s32(0); 2];
        for (b, qb) in row.chunks_exact(32).zip(q.chunks_exact(I2S_BLOCK)) {
            let (lo, hi) = (vld1q_u8(b.as_ptr()), vld1q_u8(b.as_ptr().add(16)));
            for g in 0..4 {
                let (cl, ch) = codes(lo, hi, g);
                acc[0] = sdot(acc[0], cl, vld1q_s8(qb.as_ptr().add(32 * g)));
                acc[1] = sdot(acc[1], ch, vld1q_s8(qb.as_ptr().add(32 * g + 16)));
            }
        }
        vaddvq_s32(vaddq_s32(acc[0], acc[1]))
    }
}

/// Exact `Σ code·q` of one row without `sdot`: `smull`/`smlal` into int16 (two products of magnitude ≤ 384
/// per lane, ≤ 768), then `sadalp` into int32 — no lane can wrap, whatever the codes.
#[target_feature(enable = "neon")]
unsafe fn i2s_dot_mlal(row: &[u8], q: &[i8]) -> i32 {
    // SAFETY: the callers pass slices of the lengths each loop reads and hold the target features.
    unsafe {
        let mut acc = vdupq_n_s32(0);
        for (b, qb) in row.chunks_exact(32).zip(q.chunks_exact(I2S_BLOCK)) {
            let (lo, hi) = (vld1q_u8(b.as_ptr()), vld1q_u8(b.as_ptr().add(16)));
            for g in 0..4 {
                let (cl, ch) = codes(lo, hi, g);
                let (ql, qh) = (
                    vld1q_s8(qb.as_ptr().add(32 * g)),
                    vld1q_s8(qb.as_ptr().add(32 * g + 16)),
                );
                let p = vmlal_high_s8(vmull_s8(vget_low_s8(cl), vget_low_s8(ql)), cl, ql);
                acc = vpadalq_s16(acc, p);
                let p = vmlal_high_s8(vmull_s8(vget_low_s8(ch), vget_low_s8(qh)), ch, qh);
                acc = vpadalq_s16(acc, p);
            }
        }
        vaddvq_s32(acc)
    }
}

/// I2_S rows × tokens with `sdot` (FEAT_DotProd; the caller checked [`has_dotprod`]).
pub fn i2s_rows_dotprod(codes: &[u8], k: usize, q: &[i8], n: usize, out: &mut [i32], ld: usize) {
    // SAFETY: the table hands this kernel out only where dotprod was detected.
    for_each_i2s_row(codes, k, q, n, out, ld, |row, qt| unsafe { i2s_dot_sdot(row, qt) });
}

/// I2_S rows × tokens with `smull`/`smlal`/`sadalp` (any AArch64 CPU).
pub fn i2s_rows(codes: &[u8], k: usize, q: &[i8], n: usize, out: &mut [i32], ld: usize) {
    // SAFETY: NEON is part of every AArch64 target.
    for_each_i2s_row(codes, k, q, n, out, ld, |row, qt| unsafe { i2s_dot_mlal(row, qt) });
}

/// Four f16 at `p` widened to f32 (`fcvtl`, exact).
#[inline(always)]
unsafe fn cvt4(p: *const f16) -> float32x4_t {
    // SAFETY: the callers pass slices of the lengths each loop reads and hold the target features.
    unsafe {
        let h = vld1_u16(p.cast());
        let out: float32x4_t;
        asm!("fcvtl {o:v}.4s, {h:v}.4h", o = lateout(vreg) out, h = in(vreg) h, options(pure, nomem, nostack));
        out
    }
}

/// `ggml_vec_dot_f16`, plain NEON order (`scalar_arm::f16_dot_neon`).
pub fn f16_dot_neon(x: &[f16], y: &[f16]) -> f32 {
    // SAFETY: NEON is part of every AArch64 target; `fcvtl` is base Advanced SIMD.
    unsafe { f16_dot_neon_impl(x, y) }
}

#[target_feature(enable = "neon")]
unsafe fn f16_dot_neon_impl(x: &[f16], y: &[f16]) -> f32 {
    // SAFETY: the callers pass slices of the lengths each loop reads and hold the target features.
    unsafe {
        let n = x.len().min(y.len());
        let np = n & !15;
        let mut acc = [vdupq_n_f32(0.0); 4];
        for i in (0..np).step_by(16) {
            for (j, a) in acc.iter_mut().enumerate() {
                *a = vfmaq_f32(*a, cvt4(x.as_ptr().add(i + 4 * j)), cvt4(y.as_ptr().add(i + 4 * j)));
            }
        }
        let r = vaddq_f32(vaddq_f32(acc[0], acc[2]), vaddq_f32(acc[1], acc[3]));
        let mut sumf = vaddvq_f32(r) as f64;
        for i in np..n {
            sumf += (x[i].to_f32() * y[i].to_f32()) as f64;
        }
        sumf as f32
    }
}

/// `fmla acc.8h, a.8h, b.8h` on f16 bit patterns (FEAT_FP16).
#[inline(always)]
unsafe fn fmla8h(mut acc: uint16x8_t, a: uint16x8_t, b: uint16x8_t) -> uint16x8_t {
    // SAFETY: the callers pass slices of the lengths each loop reads and hold the target features.
    unsafe {
        asm!(
            ".arch_extension fp16",
            "fmla {acc:v}.8h, {a:v}.8h, {b:v}.8h",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack),
        );
        acc
    }
}

/// `fadd a.8h, a.8h, b.8h` on f16 bit patterns (FEAT_FP16).
#[inline(always)]
unsafe fn fadd8h(mut a: uint16x8_t, b: uint16x8_t) -> uint16x8_t {
    // SAFETY: the callers pass slices of the lengths each loop reads and hold the target features.
    unsafe {
        asm!(
            ".arch_extension fp16",
            "fadd {a:v}.8h, {a:v}.8h, {b:v}.8h",
            a = inout(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack),
        );
        a
    }
}

/// `hsum(float16x8_t)`: both halves widened (`fcvtl`, `fcvtl2`), added, then `vaddvq_f32`.
#[inline(always)]
unsafe fn hsum8h(v: uint16x8_t) -> f32 {
    // SAFETY: the callers pass slices of the lengths each loop reads and hold the target features.
    unsafe {
        let (lo, hi): (float32x4_t, float32x4_t);
        asm!(
            "fcvtl {lo:v}.4s, {v:v}.4h",
            "fcvtl2 {hi:v}.4s, {v:v}.8h",
            lo = out(vreg) lo,
            hi = out(vreg) hi,
            v = in(vreg) v,
            options(pure, nomem, nostack),
        );
        vaddvq_f32(vaddq_f32(lo, hi))
    }
}

/// `ggml_vec_dot_f16` with fp16 arithmetic (`scalar_arm::f16_dot_neon_fp16`; the caller checked [`has_fp16`]).
pub fn f16_dot_neon_fp16(x: &[f16], y: &[f16]) -> f32 {
    // SAFETY: the table hands this kernel out only where fp16 arithmetic was detected.
    unsafe { f16_dot_fp16_impl(x, y) }
}

#[target_feature(enable = "neon")]
unsafe fn f16_dot_fp16_impl(x: &[f16], y: &[f16]) -> f32 {
    // SAFETY: the callers pass slices of the lengths each loop reads and hold the target features.
    unsafe {
        let n = x.len().min(y.len());
        let np = n & !31;
        let mut acc = [vdupq_n_u16(0); 4];
        for i in (0..np).step_by(32) {
            for (j, a) in acc.iter_mut().enumerate() {
                let (xv, yv) = (
                    vld1q_u16(x.as_ptr().add(i + 8 * j).cast()),
                    vld1q_u16(y.as_ptr().add(i + 8 * j).cast()),
                );
                *a = fmla8h(*a, xv, yv);
            }
        }
        let r = fadd8h(fadd8h(acc[0], acc[2]), fadd8h(acc[1], acc[3]));
        let mut sumf = hsum8h(r) as f64;
        for i in np..n {
            sumf += (x[i].to_f32() * y[i].to_f32()) as f64;
        }
        sumf as f32
    }
}

/// One tinyBLAS output, plain NEON (`scalar_arm::tinyblas_neon`; `len % 4 == 0`).
pub fn tinyblas_neon(a: &[f16], b: &[f32]) -> f32 {
    // SAFETY: NEON is part of every AArch64 target.
    unsafe { tinyblas_neon_impl(a, b) }
}

#[target_feature(enable = "neon")]
unsafe fn tinyblas_neon_impl(a: &[f16], b: &[f32]) -> f32 {
    // SAFETY: the callers pass slices of the lengths each loop reads and hold the target features.
    unsafe {
        let k = a.len().min(b.len()) & !3;
        let mut acc = vdupq_n_f32(0.0);
        for l in (0..k).step_by(4) {
            acc = vfmaq_f32(acc, cvt4(a.as_ptr().add(l)), vld1q_f32(b.as_ptr().add(l)));
        }
        vaddvq_f32(acc)
    }
}

/// f32 values (f16-representable) narrowed to f16 bit patterns (`fcvtn`, exact for such values).
#[target_feature(enable = "neon")]
unsafe fn to_f16_bits(b: &[f32], out: &mut Vec<u16>) {
    // SAFETY: the callers pass slices of the lengths each loop reads and hold the target features.
    unsafe {
        out.clear();
        out.reserve(b.len());
        for c in b.chunks(4) {
            let mut v = [0f32; 4];
            v[..c.len()].copy_from_slice(c);
            let h: uint16x4_t;
            asm!("fcvtn {h:v}.4h, {f:v}.4s", h = lateout(vreg) h, f = in(vreg) vld1q_f32(v.as_ptr()), options(pure, nomem, nostack));
            let mut o = [0u16; 4];
            vst1_u16(o.as_mut_ptr(), h);
            out.extend_from_slice(&o[..c.len()]);
        }
    }
}

#[target_feature(enable = "neon")]
unsafe fn tinyblas_fp16_bits(a: &[f16], b: &[u16]) -> f32 {
    // SAFETY: the callers pass slices of the lengths each loop reads and hold the target features.
    unsafe {
        let k = a.len().min(b.len()) & !7;
        let mut acc = vdupq_n_u16(0);
        for l in (0..k).step_by(8) {
            acc = fmla8h(acc, vld1q_u16(a.as_ptr().add(l).cast()), vld1q_u16(b.as_ptr().add(l)));
        }
        hsum8h(acc)
    }
}

/// One tinyBLAS output with fp16 arithmetic (`scalar_arm::tinyblas_neon_fp16`; `b` f16-representable,
/// `len % 8 == 0`; the caller checked [`has_fp16`]).
pub fn tinyblas_neon_fp16(a: &[f16], b: &[f32]) -> f32 {
    let mut bits = Vec::new();
    // SAFETY: the table hands this kernel out only where fp16 arithmetic was detected.
    unsafe {
        to_f16_bits(b, &mut bits);
        tinyblas_fp16_bits(a, &bits)
    }
}

/// `out[r] = f16_dot_neon(w_r, x)`.
pub fn f16_dot_rows_neon(w: &[f16], k: usize, x: &[f16], out: &mut [f32]) {
    for_each_row(w, k, x, out, f16_dot_neon);
}

/// `out[r] = f16_dot_neon_fp16(w_r, x)`.
pub fn f16_dot_rows_neon_fp16(w: &[f16], k: usize, x: &[f16], out: &mut [f32]) {
    for_each_row(w, k, x, out, f16_dot_neon_fp16);
}

/// `out[r·n + t] = tinyblas_neon(w_r, x_t)`.
pub fn tinyblas_rows_neon(w: &[f16], k: usize, x: &[f32], n: usize, out: &mut [f32]) {
    for_each_row_token(w, k, x, n, out, tinyblas_neon);
}

/// `out[r·n + t] = tinyblas_neon_fp16(w_r, x_t)`: the token rows are narrowed to f16 once per call.
pub fn tinyblas_rows_neon_fp16(w: &[f16], k: usize, x: &[f32], n: usize, out: &mut [f32]) {
    let mut bits = Vec::new();
    // SAFETY: the table hands this kernel out only where fp16 arithmetic was detected.
    unsafe { to_f16_bits(&x[..n * k], &mut bits) };
    // SAFETY: as above.
    for_each_row_token(w, k, &bits[..], n, out, |row, xt| unsafe {
        tinyblas_fp16_bits(row, xt)
    });
}

/// `quantize_row_q8_0`'s `__ARM_NEON` path, its own instructions (`scalar_arm::quantize_q8_0_neon`).
pub fn quantize_q8_0_neon(x: &[f32], q: &mut [i8], d: &mut [f32]) {
    // SAFETY: NEON is part of every AArch64 target.
    unsafe { quantize_q8_0_impl(x, q, d) }
}

#[target_feature(enable = "neon")]
unsafe fn quantize_q8_0_impl(x: &[f32], q: &mut [i8], d: &mut [f32]) {
    // SAFETY: each block reads 32 floats of `x` and writes 32 bytes of `q` (chunks_exact bounds them).
    unsafe {
        for ((xb, qb), db) in x.chunks_exact(QK8_0).zip(q.chunks_exact_mut(QK8_0)).zip(d.iter_mut()) {
            let v: [float32x4_t; 8] = std::array::from_fn(|j| vld1q_f32(xb.as_ptr().add(4 * j)));
            let a: [float32x4_t; 8] = std::array::from_fn(|j| vabsq_f32(v[j]));
            let m4: [float32x4_t; 4] = std::array::from_fn(|j| vmaxq_f32(a[2 * j], a[2 * j + 1]));
            let m = vmaxq_f32(vmaxq_f32(m4[0], m4[1]), vmaxq_f32(m4[2], m4[3]));
            let amax = vmaxvq_f32(m);
            let dd = amax / 127.0;
            *db = f16::from_f32(dd).to_f32();
            let id = if dd != 0.0 { 1.0 / dd } else { 0.0 };
            for (j, vj) in v.iter().enumerate() {
                let mut lanes = [0i32; 4];
                vst1q_s32(lanes.as_mut_ptr(), vcvtnq_s32_f32(vmulq_n_f32(*vj, id)));
                for (o, l) in qb[4 * j..4 * j + 4].iter_mut().zip(lanes) {
                    *o = l as i8;
                }
            }
        }
    }
}

/// One Q8_0 block's 4 int32 lanes: `a`, `b` point at 32 int8 each.
type Q8Lanes = unsafe fn(a: *const i8, b: *const i8) -> int32x4_t;

/// `ggml_vdotq_s32` without FEAT_DotProd over both halves: `vmull_s8` low/high, `vpaddlq_s16`, added.
#[inline(always)]
unsafe fn lanes_mull(a: *const i8, b: *const i8) -> int32x4_t {
    // SAFETY: the callers pass pointers to 32 readable bytes each.
    unsafe {
        let half = |o: usize| {
            let (x, y) = (vld1q_s8(a.add(o)), vld1q_s8(b.add(o)));
            let p0 = vmull_s8(vget_low_s8(x), vget_low_s8(y));
            let p1 = vmull_high_s8(x, y);
            vaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1))
        };
        vaddq_s32(half(0), half(16))
    }
}

/// `vdotq_s32(vdotq_s32(0, a_lo, b_lo), a_hi, b_hi)` with `sdot` (FEAT_DotProd).
#[inline(always)]
unsafe fn lanes_sdot(a: *const i8, b: *const i8) -> int32x4_t {
    // SAFETY: the callers pass pointers to 32 readable bytes each and hold FEAT_DotProd.
    unsafe {
        let acc = sdot(vdupq_n_s32(0), vld1q_s8(a), vld1q_s8(b));
        sdot(acc, vld1q_s8(a.add(16)), vld1q_s8(b.add(16)))
    }
}

/// The `sdot` lanes without `sdot`: per half, products paired by `vpaddlq_s16`, then `vpaddq_s32` of the low
/// and high results, so lane `l` sums bytes 4l..4l+3 (exact either way).
#[inline(always)]
unsafe fn lanes_sdot_emulated(a: *const i8, b: *const i8) -> int32x4_t {
    // SAFETY: the callers pass pointers to 32 readable bytes each.
    unsafe {
        let half = |o: usize| {
            let (x, y) = (vld1q_s8(a.add(o)), vld1q_s8(b.add(o)));
            let p0 = vpaddlq_s16(vmull_s8(vget_low_s8(x), vget_low_s8(y)));
            let p1 = vpaddlq_s16(vmull_high_s8(x, y));
            vpaddq_s32(p0, p1)
        };
        vaddq_s32(half(0), half(16))
    }
}

/// Block `b` of weight row `w` against `q`: its lanes (as f32, exact) and its scale `f32(d_w)·f32(d_x)`.
#[inline(always)]
unsafe fn q8_block(w: &[u8], q: &[i8], qd: &[f32], b: usize, lanes: Q8Lanes) -> (float32x4_t, f32) {
    // SAFETY: `b` < qd.len(), so block `b` of `w` (34 bytes) and of `q` (32) are in bounds.
    unsafe {
        let wb = w.as_ptr().add(b * BlockQ8_0::BYTES);
        let dw = f16::from_le_bytes([*wb, *wb.add(1)]).to_f32();
        let l = lanes(wb.add(2).cast(), q.as_ptr().add(b * QK8_0));
        (vcvtq_f32_s32(l), dw * qd[b])
    }
}

/// `ggml_vec_dot_q8_0_q8_0`'s NEON branch (`scalar_arm`'s Q8_0 vec_dot): two accumulators over block pairs
/// (`fmla` by the scale), `vaddvq_f32` each, summed; an odd last block by `fmadd`.
#[inline(always)]
unsafe fn q8_vec_dot(w: &[u8], q: &[i8], qd: &[f32], lanes: Q8Lanes) -> f32 {
    // SAFETY: the callers pass a row of qd.len() blocks and as many activation blocks.
    unsafe {
        let nb = qd.len().min(q.len() / QK8_0).min(w.len() / BlockQ8_0::BYTES);
        let mut acc = [vdupq_n_f32(0.0); 2];
        for b in 0..nb & !1 {
            let (l, s) = q8_block(w, q, qd, b, lanes);
            acc[b % 2] = vfmaq_f32(acc[b % 2], l, vdupq_n_f32(s));
        }
        let mut sumf = vaddvq_f32(acc[0]) + vaddvq_f32(acc[1]);
        if nb % 2 == 1 {
            let (l, s) = q8_block(w, q, qd, nb - 1, lanes);
            sumf = vaddvq_f32(l).mul_add(s, sumf);
        }
        sumf
    }
}

/// One output of `tinyBLAS_Q0_ARM<block_q8_0>` (`scalar_arm`'s Q8_0 tinyBLAS): one accumulator, `fmla` per
/// block, `vaddvq_f32`.
#[inline(always)]
unsafe fn q8_tinyblas(w: &[u8], q: &[i8], qd: &[f32], lanes: Q8Lanes) -> f32 {
    // SAFETY: as in `q8_vec_dot`.
    unsafe {
        let nb = qd.len().min(q.len() / QK8_0).min(w.len() / BlockQ8_0::BYTES);
        let mut acc = vdupq_n_f32(0.0);
        for b in 0..nb {
            let (l, s) = q8_block(w, q, qd, b, lanes);
            acc = vfmaq_f32(acc, l, vdupq_n_f32(s));
        }
        vaddvq_f32(acc)
    }
}

#[target_feature(enable = "neon")]
unsafe fn q8_vec_dot_mull(w: &[u8], q: &[i8], qd: &[f32]) -> f32 {
    // SAFETY: as in `q8_vec_dot`.
    unsafe { q8_vec_dot(w, q, qd, lanes_mull) }
}

#[target_feature(enable = "neon")]
unsafe fn q8_vec_dot_sdot(w: &[u8], q: &[i8], qd: &[f32]) -> f32 {
    // SAFETY: as in `q8_vec_dot`; the caller holds FEAT_DotProd.
    unsafe { q8_vec_dot(w, q, qd, lanes_sdot) }
}

#[target_feature(enable = "neon")]
unsafe fn q8_vec_dot_sdot_emulated(w: &[u8], q: &[i8], qd: &[f32]) -> f32 {
    // SAFETY: as in `q8_vec_dot`.
    unsafe { q8_vec_dot(w, q, qd, lanes_sdot_emulated) }
}

#[target_feature(enable = "neon")]
unsafe fn q8_tinyblas_sdot(w: &[u8], q: &[i8], qd: &[f32]) -> f32 {
    // SAFETY: as in `q8_vec_dot`; the caller holds FEAT_DotProd.
    unsafe { q8_tinyblas(w, q, qd, lanes_sdot) }
}

#[target_feature(enable = "neon")]
unsafe fn q8_tinyblas_sdot_emulated(w: &[u8], q: &[i8], qd: &[f32]) -> f32 {
    // SAFETY: as in `q8_vec_dot`.
    unsafe { q8_tinyblas(w, q, qd, lanes_sdot_emulated) }
}

/// Q8_0 rows × tokens, plain aarch64 build's order (`vmull` lanes; any AArch64 CPU).
pub fn q8_0_rows_vec_dot_neon(w: &[u8], k: usize, q: &[i8], qd: &[f32], n: usize, out: &mut [f32]) {
    // SAFETY: NEON is part of every AArch64 target.
    for_each_q8_row_token(w, k, q, qd, n, out, |w, q, qd| unsafe { q8_vec_dot_mull(w, q, qd) });
}

/// Q8_0 rows × one token, fp16 + dotprod build's order, with `sdot` (the caller checked [`has_dotprod`]).
pub fn q8_0_rows_vec_dot_neon_fp16_sdot(w: &[u8], k: usize, q: &[i8], qd: &[f32], n: usize, out: &mut [f32]) {
    // SAFETY: the table hands this kernel out only where dotprod was detected.
    for_each_q8_row_token(w, k, q, qd, n, out, |w, q, qd| unsafe { q8_vec_dot_sdot(w, q, qd) });
}

/// Q8_0 rows × one token, fp16 + dotprod build's order, `sdot` lanes without `sdot` (any AArch64 CPU).
pub fn q8_0_rows_vec_dot_neon_fp16(w: &[u8], k: usize, q: &[i8], qd: &[f32], n: usize, out: &mut [f32]) {
    // SAFETY: NEON is part of every AArch64 target.
    for_each_q8_row_token(w, k, q, qd, n, out, |w, q, qd| unsafe {
        q8_vec_dot_sdot_emulated(w, q, qd)
    });
}

/// Q8_0 rows × ≥ 2 tokens, fp16 + dotprod build's order (tinyBLAS), with `sdot` (the caller checked
/// [`has_dotprod`]).
pub fn q8_0_rows_tinyblas_neon_fp16_sdot(w: &[u8], k: usize, q: &[i8], qd: &[f32], n: usize, out: &mut [f32]) {
    // SAFETY: the table hands this kernel out only where dotprod was detected.
    for_each_q8_row_token(w, k, q, qd, n, out, |w, q, qd| unsafe { q8_tinyblas_sdot(w, q, qd) });
}

/// Q8_0 rows × ≥ 2 tokens, fp16 + dotprod build's order (tinyBLAS), `sdot` lanes without `sdot`.
pub fn q8_0_rows_tinyblas_neon_fp16(w: &[u8], k: usize, q: &[i8], qd: &[f32], n: usize, out: &mut [f32]) {
    // SAFETY: NEON is part of every AArch64 target.
    for_each_q8_row_token(w, k, q, qd, n, out, |w, q, qd| unsafe {
        q8_tinyblas_sdot_emulated(w, q, qd)
    });
}
