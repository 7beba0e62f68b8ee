//! AVX2 + FMA + F16C kernels: intrinsics only, each entry point with its [`super::scalar`] counterpart's
//! signature and bit-for-bit result. The f16 kernels reproduce ggml's **AVX-512** order (the reference build's):
//! every 16-lane f32 register there is a pair of 8-lane registers here (lanes 0..8, 8..16), which add lane for
//! lane exactly as the wide register does; the final tree starts by adding the pair (the i+8 step).
//!
//! The `pub(super)` functions are safe wrappers around `#[target_feature]` bodies. They are sound only on a CPU
//! with AVX2, FMA and F16C; the registry (`super::registry`) installs them only after `is_x86_feature_detected!`
//! confirmed all three, and this module is private to `kernels`.

use std::arch::x86_64::*;

use half::f16;

use super::tiling::{i2s_driver, tinyblas_driver};

/// Sixteen f32 lanes as two AVX registers (lanes 0..8, 8..16).
type V16 = (__m256, __m256);

/// Halving tree over 16 lanes (i+8, i+4, i+2, i+1), as `scalar::tree16`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn tree16(v: V16) -> f32 {
    let a = _mm256_add_ps(v.0, v.1);
    let b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
    let c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    _mm_cvtss_f32(_mm_add_ss(c, _mm_shuffle_ps::<0b01>(c, c)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn zero16() -> V16 {
    (_mm256_setzero_ps(), _mm256_setzero_ps())
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn fmadd16(a: V16, b: V16, c: V16) -> V16 {
    (_mm256_fmadd_ps(a.0, b.0, c.0), _mm256_fmadd_ps(a.1, b.1, c.1))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn add16(a: V16, b: V16) -> V16 {
    (_mm256_add_ps(a.0, b.0), _mm256_add_ps(a.1, b.1))
}

/// 16 f16 at `p`, widened to f32 (exact).
///
/// # Safety
/// `p..p+16` must be readable; AVX2/FMA/F16C present.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_h(p: *const f16) -> V16 {
    // SAFETY: the caller guarantees 16 readable f16; two unaligned 16-byte loads.
    unsafe {
        (
            _mm256_cvtph_ps(_mm_loadu_si128(p.cast())),
            _mm256_cvtph_ps(_mm_loadu_si128(p.add(8).cast())),
        )
    }
}

/// 16 f32 at `p`.
///
/// # Safety
/// `p..p+16` must be readable; AVX2 present.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_s(p: *const f32) -> V16 {
    // SAFETY: the caller guarantees 16 readable f32; two unaligned loads.
    unsafe { (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) }
}

/// `f16_dot` tail: exact f32 products accumulated in f64, in order.
#[inline(always)]
fn tail_f64(x: &[f16], y: &[f16], from: usize, to: usize, mut sumf: f64) -> f32 {
    for i in from..to {
        sumf += (x[i].to_f32() * y[i].to_f32()) as f64;
    }
    sumf as f32
}

/// `ggml_vec_dot_f16` in the AVX-512 build's order (`f16.avx2.vec_dot`). Requires AVX2, FMA, F16C.
pub(super) fn f16_dot(x: &[f16], y: &[f16]) -> f32 {
    // SAFETY: installed by the registry only after AVX2, FMA and F16C were detected.
    unsafe { f16_dot_impl(x, y) }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn f16_dot_impl(x: &[f16], y: &[f16]) -> f32 {
    let n = x.len().min(y.len());
    let np = n & !63;
    if np == 0 {
        return tail_f64(x, y, 0, n, 0.0);
    }
    let mut acc = [zero16(); 4];
    for c in (0..np).step_by(64) {
        for (j, a) in acc.iter_mut().enumerate() {
            let i = c + 16 * j;
            // SAFETY: i + 16 <= np <= len of x and y.
            let (xv, yv) = unsafe { (load_h(x.as_ptr().add(i)), load_h(y.as_ptr().add(i))) };
            *a = fmadd16(xv, yv, *a);
        }
    }
    let r = add16(add16(acc[0], acc[2]), add16(acc[1], acc[3]));
    tail_f64(x, y, np, n, tree16(r) as f64)
}

/// `out[r] = f16_dot(w_r, x)` for every row of `w` (`f16.avx2.vec_dot.gemv`). Requires AVX2, FMA, F16C.
pub(super) fn f16_dot_rows(w: &[f16], k: usize, x: &[f16], out: &mut [f32]) {
    assert!(k > 0 && x.len() >= k);
    let rows = out.len().min(w.len() / k);
    for (r, o) in out[..rows].iter_mut().enumerate() {
        // SAFETY: installed by the registry only after AVX2, FMA and F16C were detected.
        *o = unsafe { f16_dot_impl(&x[..k], &w[r * k..(r + 1) * k]) };
    }
}

/// One tinyBLAS F16×F32 output (`f16.avx2.tinyblas`). Requires AVX2, FMA, F16C.
pub(super) fn tinyblas(a: &[f16], b: &[f32]) -> f32 {
    let k16 = a.len().min(b.len()) / 16;
    // SAFETY: both slices hold 16·k16 elements; installed only after AVX2, FMA, F16C were detected.
    let t = unsafe { tinyblas_tile::<1, 1>([a.as_ptr()], [b.as_ptr()], k16) };
    t[0][0]
}

/// An `R × T` tile of tinyBLAS outputs over `k16` chunks of 16.
///
/// # Safety
/// Every pointer must have `16·k16` readable elements; AVX2/FMA/F16C present.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tinyblas_tile<const R: usize, const T: usize>(
    w: [*const f16; R],
    x: [*const f32; T],
    k16: usize,
) -> [[f32; T]; R] {
    let mut acc = [[zero16(); T]; R];
    for c in 0..k16 {
        // Explicit loops, not closures: a closure does not inherit the target features, so the
        // intrinsics inside it would not be inlined.
        let mut wv = [zero16(); R];
        for i in 0..R {
            // SAFETY: 16·c + 16 <= 16·k16 elements readable behind every pointer (caller).
            wv[i] = unsafe { load_h(w[i].add(16 * c)) };
        }
        for t in 0..T {
            // SAFETY: as above.
            let xv = unsafe { load_s(x[t].add(16 * c)) };
            for i in 0..R {
                acc[i][t] = fmadd16(wv[i], xv, acc[i][t]);
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

tinyblas_driver!(tinyblas_rows_impl, "avx2,fma,f16c", tinyblas_tile, (2, 2));

/// tinyBLAS F16×F32 over rows × tokens (`f16.avx2.tinyblas.gemm`). Requires AVX2, FMA, F16C.
pub(super) fn tinyblas_rows(w: &[f16], k: usize, x: &[f32], n: usize, out: &mut [f32]) {
    // SAFETY: installed by the registry only after AVX2, FMA and F16C were detected.
    unsafe { tinyblas_rows_impl(w, k, x, n, out) }
}

/// The 128 codes of one x86 I2_S block (32 bytes at `p`) as four 32-byte vectors, bit-group `g` aligned
/// with activations `32g .. 32g+32`.
///
/// # Safety
/// `p..p+32` must be readable; AVX2 present.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn decode(p: *const u8) -> [__m256i; 4] {
    // SAFETY: the caller guarantees 32 readable bytes; unaligned load.
    let c = unsafe { _mm256_loadu_si256(p.cast()) };
    let m = _mm256_set1_epi8(3);
    [
        _mm256_and_si256(_mm256_srli_epi16::<6>(c), m),
        _mm256_and_si256(_mm256_srli_epi16::<4>(c), m),
        _mm256_and_si256(_mm256_srli_epi16::<2>(c), m),
        _mm256_and_si256(c, m),
    ]
}

/// Exact int32 dots of `R` rows × `T` tokens over `nb` blocks: `vpmaddubsw` pairs (|·| ≤ 768), four summed
/// in int16 (|·| ≤ 3072, no wrap), widened by `vpmaddwd` with 1 and accumulated in int32. For one token it
/// prefetches the next row tile (`next`, never dereferenced) as the AVX-512 tile does.
///
/// # Safety
/// Every row pointer needs `32·nb` readable bytes and every token pointer `128·nb`; AVX2 present.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn i2s_tile<const R: usize, const T: usize>(
    rows: [*const u8; R],
    toks: [*const i8; T],
    nb: usize,
    next: *const u8,
) -> [[i32; T]; R] {
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_si256(); T]; R];
    for b in 0..nb {
        if T == 1 {
            for l in 0..R.div_ceil(2) {
                _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(b * R * 32 + 64 * l).cast());
            }
        }
        // Explicit loops, not closures (see tinyblas_tile).
        let mut codes = [[_mm256_setzero_si256(); 4]; R];
        for i in 0..R {
            // SAFETY: block b lies within the 32·nb bytes of every row (caller).
            codes[i] = unsafe { decode(rows[i].add(32 * b)) };
        }
        for t in 0..T {
            let mut q = [_mm256_setzero_si256(); 4];
            for (g, qg) in q.iter_mut().enumerate() {
                // SAFETY: bytes 128·b .. 128·b+128 lie within every token row (caller).
                *qg = unsafe { _mm256_loadu_si256(toks[t].add(128 * b + 32 * g).cast()) };
            }
            for i in 0..R {
                let c = &codes[i];
                let p01 = _mm256_add_epi16(_mm256_maddubs_epi16(c[0], q[0]), _mm256_maddubs_epi16(c[1], q[1]));
                let p23 = _mm256_add_epi16(_mm256_maddubs_epi16(c[2], q[2]), _mm256_maddubs_epi16(c[3], q[3]));
                let p = _mm256_madd_epi16(_mm256_add_epi16(p01, p23), ones);
                acc[i][t] = _mm256_add_epi32(acc[i][t], p);
            }
        }
    }
    let mut out = [[0i32; T]; R];
    for i in 0..R {
        for t in 0..T {
            out[i][t] = hsum_i32(acc[i][t]);
        }
    }
    out
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_i32(v: __m256i) -> i32 {
    let a = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let b = _mm_add_epi32(a, _mm_unpackhi_epi64(a, a));
    _mm_cvtsi128_si32(_mm_add_epi32(b, _mm_shuffle_epi32::<0b01>(b)))
}

i2s_driver!(i2s_rows_impl, "avx2,fma,f16c", i2s_tile, gemv_rows = 2, gemm = (2, 2));

/// Exact I2_S dots (`i2s.x86.avx2.*`). Requires AVX2, FMA, F16C.
pub(super) fn i2s_rows(codes: &[u8], k: usize, q: &[i8], n: usize, out: &mut [i32], ld: usize) {
    // SAFETY: installed by the registry only after AVX2, FMA and F16C were detected.
    unsafe { i2s_rows_impl(codes, k, q, n, out, ld) }
}

/// `quantize_row_i8_s` (`i8s.avx2.quantize`), bit-identical to `scalar::quantize_i8_s` for every input.
/// Requires AVX2, FMA, F16C.
pub(super) fn quantize_i8_s(x: &[f32], out: &mut [i8]) -> (f32, i32) {
    // SAFETY: installed by the registry only after AVX2, FMA and F16C were detected.
    unsafe { quantize_impl(x, out) }
}

#[target_feature(enable = "avx2,fma,f16c")]
fn quantize_impl(x: &[f32], out: &mut [i8]) -> (f32, i32) {
    // See the AVX-512 quantizer: an f32 max of |x| equals the scalar f64 max, NaN ignored by operand order.
    let abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let n8 = x.len() & !7;
    let mut m = _mm256_setzero_ps();
    for c in (0..n8).step_by(8) {
        // SAFETY: c + 8 <= n8 <= x.len().
        m = _mm256_max_ps(_mm256_and_ps(unsafe { _mm256_loadu_ps(x.as_ptr().add(c)) }, abs), m);
    }
    let mut lanes = [0f32; 8];
    // SAFETY: 8 writable f32.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), m) };
    let mut amax = 1e-5f64.max(lanes.into_iter().fold(0f32, f32::max) as f64);
    for &v in &x[n8..] {
        amax = amax.max((v as f64).abs());
    }
    let s = (127.0 / amax) as f32;
    let nq = x.len().min(out.len());
    let nq8 = nq & !7;
    let (sv, lo, hi) = (_mm256_set1_ps(s), _mm256_set1_ps(-128.0), _mm256_set1_ps(127.0));
    let mut sums = _mm256_setzero_si256();
    let mut qi = [0i32; 8];
    for c in (0..nq8).step_by(8) {
        // SAFETY: c + 8 <= nq8 <= x.len().
        let p = _mm256_mul_ps(unsafe { _mm256_loadu_ps(x.as_ptr().add(c)) }, sv);
        let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(p);
        let ordered = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_ORD_Q>(p, p));
        let v = _mm256_and_si256(_mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi)), ordered);
        sums = _mm256_add_epi32(sums, v);
        // SAFETY: 8 writable i32.
        unsafe { _mm256_storeu_si256(qi.as_mut_ptr().cast(), v) };
        for (o, &q) in out[c..c + 8].iter_mut().zip(&qi) {
            *o = q as i8;
        }
    }
    let mut sum = hsum_i32(sums);
    for (o, &v) in out[nq8..nq].iter_mut().zip(&x[nq8..nq]) {
        let q = (v * s).round_ties_even().clamp(-128.0, 127.0) as i32;
        *o = q as i8;
        sum += q;
    }
    (s, sum)
}

/// `hsum_float_8` (ggml x86): high + low 128-bit halves, then movehl, then movehdup.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum_float_8(v: __m256) -> f32 {
    let r = _mm_add_ps(_mm256_extractf128_ps::<1>(v), _mm256_castps256_ps128(v));
    let r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)))
}

/// The f16 scale at `p` (2 little-endian bytes) as f32, exactly.
///
/// # Safety
/// `p..p+2` must be readable; F16C present.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn load_d(p: *const u8) -> f32 {
    // SAFETY: the caller guarantees 2 readable bytes.
    let bits = unsafe { p.cast::<u16>().read_unaligned() };
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
}

/// The 8 exact lane sums of one Q8_0 block pair (lane l = Σ w·q over bytes 4l..4l+3) as f32, as ggml's
/// `mul_sum_i8_pairs_float`: |w| times q signed by w, `vpmaddubsw` then `vpmaddwd` (no saturation: |w| ≤ 128,
/// |q| ≤ 127).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn q8_lanes(w: __m256i, q: __m256i) -> __m256 {
    let dot = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(q, w));
    _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), dot))
}

/// One Q8_0 weight row (`nb` blocks at `row`) × `T` activation rows: per block and token,
/// `acc = fma(d_w·d_x, lanes, acc)`, then `hsum_float_8`.
///
/// # Safety
/// `row` needs `34·nb` readable bytes, every token `32·nb` int8 and `nb` scales; AVX2/FMA/F16C present.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0_tile<const T: usize>(row: *const u8, toks: [*const i8; T], ds: [*const f32; T], nb: usize) -> [f32; T] {
    let mut acc = [_mm256_setzero_ps(); T];
    for b in 0..nb {
        // SAFETY: block b lies within the row and every token (caller).
        unsafe {
            let p = row.add(34 * b);
            let dw = load_d(p);
            let w = _mm256_loadu_si256(p.add(2).cast());
            for t in 0..T {
                let q = _mm256_loadu_si256(toks[t].add(32 * b).cast());
                let d = _mm256_set1_ps(dw * *ds[t].add(b));
                acc[t] = _mm256_fmadd_ps(d, q8_lanes(w, q), acc[t]);
            }
        }
    }
    let mut out = [0f32; T];
    for t in 0..T {
        out[t] = hsum_float_8(acc[t]);
    }
    out
}

/// Drives a `q8_0_tile`-shaped kernel over rows × tokens (4 tokens per tile, then singles).
macro_rules! q8_0_driver {
    ($tile:ident, $w:expr, $k:expr, $q:expr, $qd:expr, $n:expr, $out:expr) => {{
        let (w, k, q, qd, n, out) = ($w, $k, $q, $qd, $n, $out);
        let nb = k / 32;
        let rb = nb * 34;
        assert!(k > 0 && k % 32 == 0 && w.len() % rb == 0 && q.len() >= n * k && qd.len() >= n * nb);
        assert!(out.len() >= w.len() / rb * n);
        for (row, o) in w.chunks_exact(rb).zip(out.chunks_exact_mut(n)) {
            let mut t = 0;
            while t + 4 <= n {
                let toks: [*const i8; 4] = std::array::from_fn(|i| q[(t + i) * k..].as_ptr());
                let ds: [*const f32; 4] = std::array::from_fn(|i| qd[(t + i) * nb..].as_ptr());
                // SAFETY: lengths asserted above; the registry installs this only where the features exist.
                o[t..t + 4].copy_from_slice(&unsafe { $tile::<4>(row.as_ptr(), toks, ds, nb) });
                t += 4;
            }
            while t < n {
                // SAFETY: as above.
                o[t] = unsafe { $tile::<1>(row.as_ptr(), [q[t * k..].as_ptr()], [qd[t * nb..].as_ptr()], nb) }[0];
                t += 1;
            }
        }
    }};
}
pub(super) use q8_0_driver;

/// `q8_0_rows` (see [`super::q8_0::Q8RowsFn`]): same bits as the scalar oracle.
pub(super) fn q8_0_rows(w: &[u8], k: usize, q: &[i8], qd: &[f32], n: usize, out: &mut [f32]) {
    q8_0_driver!(q8_0_tile, w, k, q, qd, n, out)
}
