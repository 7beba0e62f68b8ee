//! AVX-512 kernels (F + BW + VL; `vpdpbusd` from AVX512-VNNI where present): intrinsics only, each entry point
//! with its [`super::scalar`] counterpart's signature and bit-for-bit result.
//!
//! The `pub(super)` functions are safe wrappers around `#[target_feature]` bodies. They are sound only on a CPU
//! with the features named in their doc; the registry (`super::registry`) installs them only after
//! `is_x86_feature_detected!` confirmed those features, and this module is private to `kernels`.

use std::arch::x86_64::*;

use half::f16;

use super::tiling::{i2s_driver, tinyblas_driver};

/// `_mm512_reduce_add_ps` in ggml's order, spelled out: halving tree i+8, i+4, i+2, i+1 (= `scalar::tree16`).
#[inline]
#[target_feature(enable = "avx512f")]
fn tree16(v: __m512) -> f32 {
    let lo = _mm512_castps512_ps256(v);
    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
    let a = _mm256_add_ps(lo, hi);
    let b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
    let c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps::<0b01>(c, c)))
}

/// 16 f16 at `p`, widened to f32 (exact).
///
/// # Safety
/// `p..p+16` must be readable; AVX-512F present.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn load_h(p: *const f16) -> __m512 {
    // SAFETY: the caller guarantees 16 readable f16 (32 bytes); unaligned load.
    _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(p.cast()) })
}

/// `f16_dot` tail: exact f32 products accumulated in f64, in order.
#[inline(always)]
fn tail_f64(x: &[f16], y: &[f16], from: usize, to: usize, mut sumf: f64) -> f32 {
    for i in from..to {
        sumf += (x[i].to_f32() * y[i].to_f32()) as f64;
    }
    sumf as f32
}

/// Reduce ggml's four 16-lane accumulators: (a0+a2) + (a1+a3), then [`tree16`].
#[inline]
#[target_feature(enable = "avx512f")]
fn reduce4(a: [__m512; 4]) -> f32 {
    tree16(_mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[1], a[3])))
}

/// `ggml_vec_dot_f16`, AVX-512 order (`f16.avx512.vec_dot`). Requires AVX-512F.
pub(super) fn f16_dot(x: &[f16], y: &[f16]) -> f32 {
    // SAFETY: installed by the registry only after AVX-512F was detected.
    unsafe { f16_dot_impl(x, y) }
}

#[target_feature(enable = "avx512f")]
fn f16_dot_impl(x: &[f16], y: &[f16]) -> f32 {
    let n = x.len().min(y.len());
    let np = n & !63;
    if np == 0 {
        return tail_f64(x, y, 0, n, 0.0);
    }
    let mut acc = [_mm512_setzero_ps(); 4];
    for c in (0..np).step_by(64) {
        for (j, a) in acc.iter_mut().enumerate() {
            let i = c + 16 * j;
            // SAFETY: i + 16 <= np <= len of x and y.
            let (xv, yv) = unsafe { (load_h(x.as_ptr().add(i)), load_h(y.as_ptr().add(i))) };
            *a = _mm512_fmadd_ps(xv, yv, *a);
        }
    }
    tail_f64(x, y, np, n, reduce4(acc) as f64)
}

/// `out[r] = f16_dot(w_r, x)` for every row of `w` (`f16.avx512.vec_dot.gemv`).
/// Requires AVX-512F.
pub(super) fn f16_dot_rows(w: &[f16], k: usize, x: &[f16], out: &mut [f32]) {
    // SAFETY: installed by the registry only after AVX-512F was detected.
    unsafe { f16_dot_rows_impl(w, k, x, out) }
}

#[target_feature(enable = "avx512f")]
fn f16_dot_rows_impl(w: &[f16], k: usize, x: &[f16], out: &mut [f32]) {
    assert!(k > 0 && x.len() >= k);
    let rows = out.len().min(w.len() / k);
    let np = k & !63;
    let x = &x[..k];
    for (r, o) in out[..rows].iter_mut().enumerate() {
        let wr = &w[r * k..(r + 1) * k];
        // One row at a time, prefetching the next row (contiguous) at the rate this one is consumed: measured
        // on the 128256×2560 head, 18 / 29 GB/s at 1 / 2 threads against 13 / 23 for 4-row tiles (fewer
        // concurrent streams, each prefetched ahead).
        let next = w.as_ptr().wrapping_add((r + 1) * k).cast::<u8>();
        let mut acc = [_mm512_setzero_ps(); 4];
        for c in (0..np).step_by(64) {
            _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(2 * c).cast());
            _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(2 * c + 64).cast());
            for (j, a) in acc.iter_mut().enumerate() {
                let i = c + 16 * j;
                // SAFETY: i + 16 <= np <= k = len of x and of wr.
                *a = _mm512_fmadd_ps(
                    unsafe { load_h(x.as_ptr().add(i)) },
                    unsafe { load_h(wr.as_ptr().add(i)) },
                    *a,
                );
            }
        }
        *o = if np == 0 {
            tail_f64(x, wr, 0, k, 0.0)
        } else {
            tail_f64(x, wr, np, k, reduce4(acc) as f64)
        };
    }
}

/// One tinyBLAS F16×F32 output (`f16.avx512.tinyblas`): 16-lane FMA chain, then [`tree16`]. Requires AVX-512F.
pub(super) fn tinyblas(a: &[f16], b: &[f32]) -> f32 {
    // SAFETY: installed by the registry only after AVX-512F was detected.
    unsafe { tinyblas_impl(a, b) }
}

#[target_feature(enable = "avx512f")]
fn tinyblas_impl(a: &[f16], b: &[f32]) -> f32 {
    let n = a.len().min(b.len()) & !15;
    let mut acc = _mm512_setzero_ps();
    for c in (0..n).step_by(16) {
        // SAFETY: c + 16 <= n <= len of a and b.
        let (av, bv) = unsafe { (load_h(a.as_ptr().add(c)), _mm512_loadu_ps(b.as_ptr().add(c))) };
        acc = _mm512_fmadd_ps(av, bv, acc);
    }
    tree16(acc)
}

/// An `R × T` tile of tinyBLAS outputs over `k16` chunks of 16.
///
/// # Safety
/// Every pointer must have `16·k16` readable elements; AVX-512F present.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn tinyblas_tile<const R: usize, const T: usize>(
    w: [*const f16; R],
    x: [*const f32; T],
    k16: usize,
) -> [[f32; T]; R] {
    let mut acc = [[_mm512_setzero_ps(); T]; R];
    for c in 0..k16 {
        let mut wv = [_mm512_setzero_ps(); R];
        for i in 0..R {
            // SAFETY: 16·c + 16 <= 16·k16 elements readable behind every pointer (caller).
            wv[i] = unsafe { load_h(w[i].add(16 * c)) };
        }
        for t in 0..T {
            // SAFETY: as above.
            let xv = unsafe { _mm512_loadu_ps(x[t].add(16 * c)) };
            for i in 0..R {
                acc[i][t] = _mm512_fmadd_ps(wv[i], xv, acc[i][t]);
            }
        }
    }
    let mut out = [[0f32; T]; R];
    for i in 0..R {
        for t in 0..T {
            out[i][t] = tree16(acc[i][t]);
        }
    }
    out
}

tinyblas_driver!(tinyblas_rows_impl, "avx512f", tinyblas_tile, (4, 4));

/// tinyBLAS F16×F32 over rows × tokens (`f16.avx512.tinyblas.gemm`). Requires AVX-512F.
pub(super) fn tinyblas_rows(w: &[f16], k: usize, x: &[f32], n: usize, out: &mut [f32]) {
    // SAFETY: installed by the registry only after AVX-512F was detected.
    unsafe { tinyblas_rows_impl(w, k, x, n, out) }
}

/// The 128 codes of one x86 I2_S block (32 bytes at `p`) as two 64-byte vectors aligned with the block's
/// activations 0..64 and 64..128: the block is broadcast to both halves and each 64-bit lane shifted by
/// `6 − 2g` for its bit-group `g`, then masked to 2 bits.
///
/// # Safety
/// `p..p+32` must be readable; AVX-512F present.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn decode(p: *const u8) -> (__m512i, __m512i) {
    // SAFETY: the caller guarantees 32 readable bytes; unaligned load.
    let c = _mm512_broadcast_i64x4(unsafe { _mm256_loadu_si256(p.cast()) });
    let m = _mm512_set1_epi8(3);
    let lo = _mm512_and_si512(_mm512_srlv_epi64(c, _mm512_set_epi64(4, 4, 4, 4, 6, 6, 6, 6)), m);
    let hi = _mm512_and_si512(_mm512_srlv_epi64(c, _mm512_set_epi64(0, 0, 0, 0, 2, 2, 2, 2)), m);
    (lo, hi)
}

/// Defines an `R × T` I2_S tile whose per-block step is `$step(acc, codes_lo, q_lo, codes_hi, q_hi)`.
macro_rules! i2s_tile {
    ($name:ident, $features:literal, $step:ident) => {
        /// Exact int32 dots of `R` rows × `T` tokens over `nb` blocks. For one token (bandwidth-bound gemv) it
        /// also prefetches the next row tile (`next`, contiguous `R·32·nb` bytes) at the rate it consumes its own:
        /// short rows make many short streams that the hardware prefetchers barely ramp up on.
        ///
        /// # Safety
        /// Every row pointer needs `32·nb` readable bytes and every token pointer `128·nb`; the CPU must support
        /// the enabled features.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn $name<const R: usize, const T: usize>(
            rows: [*const u8; R],
            toks: [*const i8; T],
            nb: usize,
            next: *const u8,
        ) -> [[i32; T]; R] {
            let mut acc = [[_mm512_setzero_si512(); T]; R];
            for b in 0..nb {
                if T == 1 {
                    for l in 0..R.div_ceil(2) {
                        _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(b * R * 32 + 64 * l).cast());
                    }
                }
                // Explicit loops, not `array::from_fn`/`map` closures: a closure does not inherit the
                // function's target features, so `decode` would not be inlined into it.
                let mut codes = [(_mm512_setzero_si512(), _mm512_setzero_si512()); R];
                for i in 0..R {
                    // SAFETY: block b lies within the 32·nb bytes of every row (caller).
                    codes[i] = unsafe { decode(rows[i].add(32 * b)) };
                }
                for t in 0..T {
                    // SAFETY: bytes 128·b .. 128·b+128 lie within every token row (caller).
                    let (q0, q1) = unsafe {
                        let p = toks[t].add(128 * b);
                        (_mm512_loadu_si512(p.cast()), _mm512_loadu_si512(p.add(64).cast()))
                    };
                    for i in 0..R {
                        acc[i][t] = $step(acc[i][t], codes[i].0, q0, codes[i].1, q1);
                    }
                }
            }
            const { assert!(R * T <= 16, "hsums reduces at most 16 accumulators") };
            let mut flat = [_mm512_setzero_si512(); 16];
            for i in 0..R {
                for t in 0..T {
                    flat[i * T + t] = acc[i][t];
                }
            }
            let mut sums = [0i32; 16];
            hsums(&flat[..R * T], &mut sums[..R * T]);
            let mut out = [[0i32; T]; R];
            for i in 0..R {
                for t in 0..T {
                    out[i][t] = sums[i * T + t];
                }
            }
            out
        }
    };
}

/// Per 128-bit lane, `[Σa, Σb, Σc, Σd]` of that lane's four elements of each of `a, b, c, d` (the first two
/// levels of a transposing reduction: `unpack{lo,hi}_epi32`, then `unpack{lo,hi}_epi64`).
#[inline]
#[target_feature(enable = "avx512f")]
fn lane_sums4(a: __m512i, b: __m512i, c: __m512i, d: __m512i) -> __m512i {
    let ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    let cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
    _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd))
}

/// `[v0 lanes 0+1, v0 lanes 2+3, v1 lanes 0+1, v1 lanes 2+3]` (128-bit lanes).
#[inline]
#[target_feature(enable = "avx512f")]
fn fold_lanes(v0: __m512i, v1: __m512i) -> __m512i {
    _mm512_add_epi32(
        _mm512_shuffle_i32x4::<0b10_00_10_00>(v0, v1),
        _mm512_shuffle_i32x4::<0b11_01_11_01>(v0, v1),
    )
}

/// `out[i] = Σ lanes of v[i]` (wrapping int32, so any order is exact). Sixteen, eight or four accumulators are
/// reduced together by transposing adds (45 instructions for sixteen instead of sixteen separate reductions,
/// which cost as much as a short row's dot loop); other counts one by one.
#[inline]
#[target_feature(enable = "avx512f")]
fn hsums(v: &[__m512i], out: &mut [i32]) {
    match v.len() {
        16 => {
            let mut q = [_mm512_setzero_si512(); 4];
            for (j, qj) in q.iter_mut().enumerate() {
                *qj = lane_sums4(v[4 * j], v[4 * j + 1], v[4 * j + 2], v[4 * j + 3]);
            }
            let r = fold_lanes(fold_lanes(q[0], q[1]), fold_lanes(q[2], q[3]));
            // SAFETY: out holds 16 i32 (64 bytes); unaligned store.
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), r) };
        }
        8 => {
            let z = fold_lanes(lane_sums4(v[0], v[1], v[2], v[3]), lane_sums4(v[4], v[5], v[6], v[7]));
            let z = _mm512_shuffle_i32x4::<0b11_01_10_00>(z, z);
            let r = _mm256_add_epi32(_mm512_castsi512_si256(z), _mm512_extracti64x4_epi64::<1>(z));
            // SAFETY: out holds 8 i32 (32 bytes); unaligned store.
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), r) };
        }
        4 => {
            let q = lane_sums4(v[0], v[1], v[2], v[3]);
            let h = _mm256_add_epi32(_mm512_castsi512_si256(q), _mm512_extracti64x4_epi64::<1>(q));
            let r = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
            // SAFETY: out holds 4 i32 (16 bytes); unaligned store.
            unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), r) };
        }
        _ => {
            for (o, &x) in out.iter_mut().zip(v) {
                *o = _mm512_reduce_add_epi32(x);
            }
        }
    }
}

/// `acc += Σ codes·q` with two `vpdpbusd` (u8 × i8 → i32, exact).
#[inline]
#[target_feature(enable = "avx512f,avx512vnni")]
fn step_vnni(acc: __m512i, c0: __m512i, q0: __m512i, c1: __m512i, q1: __m512i) -> __m512i {
    _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(acc, c0, q0), c1, q1)
}

/// `acc += Σ codes·q` with `vpmaddubsw` (pairs, |·| ≤ 768, no saturation), one int16 add (|·| ≤ 1536),
/// then `vpmaddwd` by 1 into int32: exact.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn step_bw(acc: __m512i, c0: __m512i, q0: __m512i, c1: __m512i, q1: __m512i) -> __m512i {
    let p = _mm512_add_epi16(_mm512_maddubs_epi16(c0, q0), _mm512_maddubs_epi16(c1, q1));
    _mm512_add_epi32(acc, _mm512_madd_epi16(p, _mm512_set1_epi16(1)))
}

i2s_tile!(i2s_tile_vnni, "avx512f,avx512bw,avx512vnni", step_vnni);
i2s_tile!(i2s_tile_bw, "avx512f,avx512bw", step_bw);
i2s_driver!(
    i2s_rows_vnni_impl,
    "avx512f,avx512bw,avx512vnni",
    i2s_tile_vnni,
    gemv_rows = 8,
    gemm = (4, 4)
);
i2s_driver!(
    i2s_rows_bw_impl,
    "avx512f,avx512bw",
    i2s_tile_bw,
    gemv_rows = 8,
    gemm = (4, 4)
);

/// Exact I2_S dots with `vpdpbusd` (`i2s.x86.avx512vnni.*`). Requires AVX-512F, BW and VNNI.
pub(super) fn i2s_rows_vnni(codes: &[u8], k: usize, q: &[i8], n: usize, out: &mut [i32], ld: usize) {
    // SAFETY: installed by the registry only after AVX-512F, BW and VNNI were detected.
    unsafe { i2s_rows_vnni_impl(codes, k, q, n, out, ld) }
}

/// Exact I2_S dots with `vpmaddubsw` (`i2s.x86.avx512bw.*`). Requires AVX-512F and BW.
pub(super) fn i2s_rows_bw(codes: &[u8], k: usize, q: &[i8], n: usize, out: &mut [i32], ld: usize) {
    // SAFETY: installed by the registry only after AVX-512F and BW were detected.
    unsafe { i2s_rows_bw_impl(codes, k, q, n, out, ld) }
}

/// `quantize_row_i8_s` (`i8s.avx512.quantize`), bit-identical to `scalar::quantize_i8_s` for every input
/// (NaN lanes quantize to 0, ±∞ clamp, as the scalar casts do). Requires AVX-512F.
pub(super) fn quantize_i8_s(x: &[f32], out: &mut [i8]) -> (f32, i32) {
    // SAFETY: installed by the registry only after AVX-512F was detected.
    unsafe { quantize_impl(x, out) }
}

#[target_feature(enable = "avx512f")]
fn quantize_impl(x: &[f32], out: &mut [i8]) -> (f32, i32) {
    // |x| max in f32 equals the f64 max of |x as f64| (widening is exact and monotonic); `max_ps(v, m)`
    // returns m for a NaN v, as f64::max ignores NaN.
    let n16 = x.len() & !15;
    let mut m = _mm512_setzero_ps();
    for c in (0..n16).step_by(16) {
        // SAFETY: c + 16 <= n16 <= x.len().
        m = _mm512_max_ps(_mm512_abs_ps(unsafe { _mm512_loadu_ps(x.as_ptr().add(c)) }), m);
    }
    let mut amax = 1e-5f64.max(_mm512_reduce_max_ps(m) as f64);
    for &v in &x[n16..] {
        amax = amax.max((v as f64).abs());
    }
    let s = (127.0 / amax) as f32;
    let nq = x.len().min(out.len());
    let nq16 = nq & !15;
    let (sv, lo, hi) = (_mm512_set1_ps(s), _mm512_set1_ps(-128.0), _mm512_set1_ps(127.0));
    let mut sums = _mm512_setzero_si512();
    for c in (0..nq16).step_by(16) {
        // SAFETY: c + 16 <= nq16 <= x.len().
        let p = _mm512_mul_ps(unsafe { _mm512_loadu_ps(x.as_ptr().add(c)) }, sv);
        let r = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(p);
        let ordered = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(p, p);
        let v = _mm512_maskz_cvttps_epi32(ordered, _mm512_min_ps(_mm512_max_ps(r, lo), hi));
        sums = _mm512_add_epi32(sums, v);
        // SAFETY: c + 16 <= nq16 <= out.len(); 16 bytes stored unaligned.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().add(c).cast(), _mm512_cvtepi32_epi8(v)) };
    }
    let mut sum = _mm512_reduce_add_epi32(sums);
    for (o, &v) in out[nq16..nq].iter_mut().zip(&x[nq16..nq]) {
        let q = (v * s).round_ties_even().clamp(-128.0, 127.0) as i32;
        *o = q as i8;
        sum += q;
    }
    (s, sum)
}

/// `scalar::i2s_lane_bound` (`i2s.x86.avx512.lane_bound`), bit-identical: per block, `|q|` byte pairs summed
/// by `vpmaddubsw` into 32 int16 lanes (pair `p` feeds bitnet.cpp's lane `p mod 16`; ≤ 512 per block, so a
/// 32-block group stays ≤ 16384), then the two halves widened to int32, added and doubled. Requires AVX-512BW.
pub(super) fn i2s_lane_bound(q: &[i8]) -> i32 {
    // SAFETY: installed by the registry only after AVX-512F and BW were detected.
    unsafe { lane_bound_impl(q) }
}

#[target_feature(enable = "avx512f,avx512bw")]
fn lane_bound_impl(q: &[i8]) -> i32 {
    use super::scalar::{I2S_BLOCK, I2S_GROUP_BLOCKS};
    let ones = _mm512_set1_epi8(1);
    let mut worst = 0i32;
    for group in q.chunks(I2S_BLOCK * I2S_GROUP_BLOCKS) {
        let mut acc = _mm512_setzero_si512();
        for qb in group.chunks_exact(I2S_BLOCK) {
            // SAFETY: qb holds 128 bytes: two unaligned 64-byte loads.
            let (a, b) = unsafe {
                (
                    _mm512_loadu_si512(qb.as_ptr().cast()),
                    _mm512_loadu_si512(qb.as_ptr().add(64).cast()),
                )
            };
            let pa = _mm512_maddubs_epi16(_mm512_abs_epi8(a), ones);
            let pb = _mm512_maddubs_epi16(_mm512_abs_epi8(b), ones);
            acc = _mm512_add_epi16(acc, _mm512_add_epi16(pa, pb));
        }
        let lo = _mm512_cvtepi16_epi32(_mm512_castsi512_si256(acc));
        let hi = _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64::<1>(acc));
        let lanes = _mm512_slli_epi32::<1>(_mm512_add_epi32(lo, hi));
        worst = worst.max(_mm512_reduce_max_epi32(lanes));
    }
    worst
}

/// The exact lane sums of two Q8_0 blocks at once (lanes 0..8 block b, 8..16 block b+1; lane l = Σ w·q over
/// bytes 4l..4l+3 of its block) with `vpdpbusd`: |w| times q negated where w < 0.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
fn q8_pair_vnni(w: __m512i, q: __m512i) -> __m512 {
    let neg = _mm512_movepi8_mask(w);
    let sy = _mm512_mask_sub_epi8(q, neg, _mm512_setzero_si512(), q);
    _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), sy))
}

/// [`q8_pair_vnni`] with `vpmaddubsw` + `vpmaddwd` (no saturation: |w| ≤ 128, |q| ≤ 127).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn q8_pair_bw(w: __m512i, q: __m512i) -> __m512 {
    let neg = _mm512_movepi8_mask(w);
    let sy = _mm512_mask_sub_epi8(q, neg, _mm512_setzero_si512(), q);
    let dot = _mm512_maddubs_epi16(_mm512_abs_epi8(w), sy);
    _mm512_cvtepi32_ps(_mm512_madd_epi16(_mm512_set1_epi16(1), dot))
}

/// Defines a Q8_0 tile (one weight row × `T` tokens) whose integer step covers two blocks per 512-bit
/// `$pair`; the f32 accumulation stays 8 lanes wide and in block order, as ggml's.
macro_rules! q8_0_tile512 {
    ($name:ident, $features:literal, $pair:ident) => {
        /// # Safety
        /// `row` needs `34·nb` readable bytes, every token `32·nb` int8 and `nb` scales; the CPU must support
        /// the enabled features.
        #[inline]
        #[target_feature(enable = $features)]
        unsafe fn $name<const T: usize>(
            row: *const u8,
            toks: [*const i8; T],
            ds: [*const f32; T],
            nb: usize,
        ) -> [f32; T] {
            let mut acc = [_mm256_setzero_ps(); T];
            let mut b = 0;
            // SAFETY (whole loop): blocks b, b+1 lie within the row and every token (caller).
            while b + 2 <= nb {
                unsafe {
                    let p = row.add(34 * b);
                    let (d0, d1) = (super::avx2::load_d(p), super::avx2::load_d(p.add(34)));
                    let w = _mm512_inserti64x4::<1>(
                        _mm512_castsi256_si512(_mm256_loadu_si256(p.add(2).cast())),
                        _mm256_loadu_si256(p.add(36).cast()),
                    );
                    for t in 0..T {
                        let lanes = $pair(w, _mm512_loadu_si512(toks[t].add(32 * b).cast()));
                        let lo = _mm512_castps512_ps256(lanes);
                        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(lanes)));
                        let s0 = _mm256_set1_ps(d0 * *ds[t].add(b));
                        let s1 = _mm256_set1_ps(d1 * *ds[t].add(b + 1));
                        acc[t] = _mm256_fmadd_ps(s1, hi, _mm256_fmadd_ps(s0, lo, acc[t]));
                    }
                }
                b += 2;
            }
            if b < nb {
                unsafe {
                    let p = row.add(34 * b);
                    let dw = super::avx2::load_d(p);
                    let w = _mm256_loadu_si256(p.add(2).cast());
                    for t in 0..T {
                        let q = _mm256_loadu_si256(toks[t].add(32 * b).cast());
                        let d = _mm256_set1_ps(dw * *ds[t].add(b));
                        acc[t] = _mm256_fmadd_ps(d, super::avx2::q8_lanes(w, q), acc[t]);
                    }
                }
            }
            let mut out = [0f32; T];
            for t in 0..T {
                out[t] = super::avx2::hsum_float_8(acc[t]);
            }
            out
        }
    };
}

q8_0_tile512!(
    q8_0_tile_vnni,
    "avx512f,avx512bw,avx512vnni,avx2,fma,f16c",
    q8_pair_vnni
);
q8_0_tile512!(q8_0_tile_bw, "avx512f,avx512bw,avx2,fma,f16c", q8_pair_bw);

/// `q8_0_rows` with `vpdpbusd` (AVX512-VNNI): same bits as the scalar oracle.
pub(super) fn q8_0_rows_vnni(w: &[u8], k: usize, q: &[i8], qd: &[f32], n: usize, out: &mut [f32]) {
    super::avx2::q8_0_driver!(q8_0_tile_vnni, w, k, q, qd, n, out)
}

/// `q8_0_rows` with `vpmaddubsw` (AVX-512 BW): same bits as the scalar oracle.
pub(super) fn q8_0_rows_bw(w: &[u8], k: usize, q: &[i8], qd: &[f32], n: usize, out: &mut [f32]) {
    super::avx2::q8_0_driver!(q8_0_tile_bw, w, k, q, qd, n, out)
}

/// `ggml_v_expf` (AVX-512 variant) on 16 lanes: the range reduction and polynomial of
/// `elementwise::v_expf`, `vscalefps` for 2ⁿ, and lanes with |n| > 192 replaced by 0 (n ≤ 0) or +∞.
#[inline]
#[target_feature(enable = "avx512f,fma")]
fn v_expf(x: __m512) -> __m512 {
    use super::elementwise::{EXPF_C, EXPF_LN2_HI, EXPF_LN2_LO, EXPF_LOG2E, EXPF_SHIFT};
    let r = _mm512_set1_ps(EXPF_SHIFT);
    let z = _mm512_fmadd_ps(x, _mm512_set1_ps(EXPF_LOG2E), r);
    let n = _mm512_sub_ps(z, r);
    let hi = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXPF_LN2_HI), x);
    let b = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXPF_LN2_LO), hi);
    let u = _mm512_mul_ps(b, b);
    let (c1, c2, c3) = (
        _mm512_set1_ps(EXPF_C[0]),
        _mm512_set1_ps(EXPF_C[1]),
        _mm512_set1_ps(EXPF_C[2]),
    );
    let (c4, c5) = (_mm512_set1_ps(EXPF_C[3]), _mm512_set1_ps(EXPF_C[4]));
    let j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(_mm512_fmadd_ps(c5, b, c4), u, _mm512_fmadd_ps(c3, b, c2)),
        u,
        _mm512_fmadd_ps(c1, b, _mm512_set1_ps(1.0)),
    );
    let res = _mm512_scalef_ps(j, n);
    let big = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_abs_ps(n), _mm512_set1_ps(192.0));
    if big == 0 {
        return res;
    }
    let low = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(n, _mm512_setzero_ps());
    let alt = _mm512_mask_blend_ps(low, _mm512_set1_ps(f32::INFINITY), _mm512_setzero_ps());
    _mm512_mask_blend_ps(big, res, alt)
}

/// `ffn_act.avx512.f32`: SiLU as `ggml_v_silu` 16 lanes at a time (`x / (1 + v_expf(0 − x))`), the tail and
/// squared ReLU as [`super::elementwise::ffn_act`]; bit-identical to it. Requires AVX-512F and FMA.
pub(super) fn ffn_act(gate: &mut [f32], relu2: bool) {
    // SAFETY: installed by the registry only after AVX-512F and FMA were detected.
    unsafe { ffn_act_impl(gate, relu2) }
}

#[target_feature(enable = "avx512f,fma")]
fn ffn_act_impl(gate: &mut [f32], relu2: bool) {
    let n16 = if relu2 { 0 } else { gate.len() & !15 };
    let one = _mm512_set1_ps(1.0);
    for c in (0..n16).step_by(16) {
        // SAFETY: c + 16 <= n16 <= gate.len(); unaligned load and store.
        unsafe {
            let p = gate.as_mut_ptr().add(c);
            let x = _mm512_loadu_ps(p);
            let e = v_expf(_mm512_sub_ps(_mm512_setzero_ps(), x));
            _mm512_storeu_ps(p, _mm512_div_ps(x, _mm512_add_ps(one, e)));
        }
    }
    super::elementwise::ffn_act(&mut gate[n16..], relu2);
}

/// `softmax.avx512.f32`: [`super::elementwise::softmax_masked`] with the exponentials 16 lanes at a time
/// (`ggml_vec_soft_max_f32`'s AVX-512 loop); bit-identical to it. Requires AVX-512F and FMA.
pub(super) fn softmax_masked(s: &mut [f32], scale: f32, valid: usize) {
    // SAFETY: installed by the registry only after AVX-512F and FMA were detected.
    unsafe { softmax_impl(s, scale, valid) }
}

#[target_feature(enable = "avx512f,fma")]
fn softmax_impl(s: &mut [f32], scale: f32, valid: usize) {
    use super::elementwise::{softmax_normalize, softmax_scale_mask};
    let max = softmax_scale_mask(s, scale, valid);
    let mut sum = 0f64;
    let m = _mm512_set1_ps(max);
    // Like the oracle, whole chunks of 16 only (rows are padded to 16).
    for c in (0..s.len() & !15).step_by(16) {
        // SAFETY: c + 16 <= s.len(); unaligned load and store.
        let e = unsafe {
            let p = s.as_mut_ptr().add(c);
            let e = v_expf(_mm512_sub_ps(_mm512_loadu_ps(p), m));
            _mm512_storeu_ps(p, e);
            e
        };
        sum += tree16(e) as f64;
    }
    softmax_normalize(s, sum);
}
