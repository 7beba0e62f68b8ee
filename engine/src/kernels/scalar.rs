//! Scalar reference kernels: the oracle every SIMD kernel is tested against, bit for bit.
//!
//! Each function reproduces one bitnet.cpp / ggml routine's arithmetic exactly, including its
//! reduction order where that decides the f32 result (spec §5, §6.5, §12; ../shared/tools/ref_forward.py).

use half::f16;

/// Weights per I2_S block in the x86 layout (spec §3.3).
pub const I2S_BLOCK: usize = 128;
/// Blocks per group of bitnet.cpp's AVX2 int16-lane accumulation (spec §5.2).
pub const I2S_GROUP_BLOCKS: usize = 32;

/// `quantize_row_i8_s`: per-row int8 absmax quantization (spec §5.1).
/// Returns `(scale, sum of quantized values)`; `out` receives the int8 values.
pub fn quantize_i8_s(x: &[f32], out: &mut [i8]) -> (f32, i32) {
    let mut amax = 1e-5f64;
    for &v in x {
        amax = amax.max((v as f64).abs());
    }
    let s = (127.0 / amax) as f32;
    let mut sum = 0i32;
    for (o, &v) in out.iter_mut().zip(x) {
        let q = (v * s).round_ties_even().clamp(-128.0, 127.0) as i32;
        *o = q as i8;
        sum += q;
    }
    (s, sum)
}

/// The 2-bit code of weight `j` (0..128) of a 32-byte x86 I2_S block: byte `j % 32`, bits `6 - 2·(j / 32)`.
#[inline(always)]
pub fn i2s_code(block: &[u8], j: usize) -> u8 {
    (block[j % 32] >> (6 - 2 * (j / 32))) & 3
}

/// Exact `Σ code·q` over one row (x86 layout, `q.len()` a multiple of 128, `codes.len() == q.len()/4`).
pub fn i2s_dot(codes: &[u8], q: &[i8]) -> i32 {
    let mut sum = 0i32;
    for (block, qb) in codes.chunks_exact(32).zip(q.chunks_exact(I2S_BLOCK)) {
        for j in 0..I2S_BLOCK {
            sum += i2s_code(block, j) as i32 * qb[j] as i32;
        }
    }
    sum
}

/// `Σ code·q` as bitnet.cpp's x86 AVX2 kernel computes it: per group of 32 blocks, 16 int16 lanes
/// that wrap on overflow (lane L holds byte positions 2L and 2L+1 of every bit-group), widened and
/// summed in int32 (spec §5.2). Equal to [`i2s_dot`] unless a lane overflows.
pub fn i2s_dot_wrap16(codes: &[u8], q: &[i8]) -> i32 {
    let mut total = 0i32;
    let blocks: Vec<(&[u8], &[i8])> = codes.chunks_exact(32).zip(q.chunks_exact(I2S_BLOCK)).collect();
    for group in blocks.chunks(I2S_GROUP_BLOCKS) {
        let mut lanes = [0i32; 16];
        for (block, qb) in group {
            for j in 0..I2S_BLOCK {
                lanes[(j % 32) / 2] += i2s_code(block, j) as i32 * qb[j] as i32;
            }
        }
        total += lanes.iter().map(|&l| l as i16 as i32).sum::<i32>();
    }
    total
}

/// Upper bound of any int16 lane of [`i2s_dot_wrap16`] for these activations, over all weight rows
/// (codes are at most 2). Below 32768 no lane can wrap and the exact dot is bit-identical.
pub fn i2s_lane_bound(q: &[i8]) -> i32 {
    let mut worst = 0i32;
    for group in q.chunks(I2S_BLOCK * I2S_GROUP_BLOCKS) {
        let mut lanes = [0i32; 16];
        for qb in group.chunks_exact(I2S_BLOCK) {
            for (j, &v) in qb.iter().enumerate() {
                lanes[(j % 32) / 2] += 2 * (v as i32).abs();
            }
        }
        worst = worst.max(lanes.into_iter().max().unwrap_or(0));
    }
    worst
}

/// `_mm512_reduce_add_ps`: halving tree over 16 lanes (i+8, i+4, i+2, i+1).
#[inline(always)]
pub fn tree16(v: [f32; 16]) -> f32 {
    let mut a = [0f32; 8];
    for i in 0..8 {
        a[i] = v[i] + v[i + 8];
    }
    let b = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    let c = [b[0] + b[2], b[1] + b[3]];
    c[0] + c[1]
}

/// `ggml_vec_dot_f16` (AVX-512 build): 4 accumulators × 16 lanes per 64 elements, reduced
/// (a0+a2, a1+a3, then their sum) and tree-summed; the tail accumulates exact products in f64.
pub fn f16_dot(x: &[f16], y: &[f16]) -> f32 {
    let n = x.len().min(y.len());
    let np = n & !63;
    let mut sumf = 0f64;
    if np > 0 {
        let mut acc = [[0f32; 16]; 4];
        for c in (0..np).step_by(64) {
            for (j, a) in acc.iter_mut().enumerate() {
                for l in 0..16 {
                    let i = c + 16 * j + l;
                    // f16×f16 is exact in f32, so FMA and multiply-then-add agree.
                    a[l] += x[i].to_f32() * y[i].to_f32();
                }
            }
        }
        let mut r = [0f32; 16];
        for l in 0..16 {
            r[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
        }
        sumf = tree16(r) as f64;
    }
    for i in np..n {
        sumf += (x[i].to_f32() * y[i].to_f32()) as f64;
    }
    sumf as f32
}

/// One output of llamafile's tinyBLAS F16×F32 (AVX-512): 16 lanes, an FMA chain over k in steps of 16,
/// then [`tree16`]. `a` is a row of f16 weights, `b` a row of f32 activations; `len % 16 == 0`.
pub fn tinyblas_f16_f32(a: &[f16], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    for (ac, bc) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        for l in 0..16 {
            acc[l] = ac[l].to_f32().mul_add(bc[l], acc[l]);
        }
    }
    tree16(acc)
}

/// Generic slot of [`super::I2sRowsFn`]: exact dots of every row of `codes` (rows of `k/4` bytes) against
/// `n` token rows of `q`, into `out[t·ld + r]` (token-major, `ld ≥ rows`).
pub fn i2s_rows(codes: &[u8], k: usize, q: &[i8], n: usize, out: &mut [i32], ld: usize) {
    for_each_i2s_row(codes, k, q, n, out, ld, i2s_dot);
}

/// The row driver of every [`super::I2sRowsFn`]: `out[t·ld + r] = dot(row_r, q_t)` for every row of `codes`
/// (rows of `k/4` bytes) and token row `q_t` of `q` (rows of `k`).
#[inline(always)]
pub fn for_each_i2s_row(
    codes: &[u8],
    k: usize,
    q: &[i8],
    n: usize,
    out: &mut [i32],
    ld: usize,
    dot: impl Fn(&[u8], &[i8]) -> i32,
) {
    for (r, row) in codes.chunks_exact(k / 4).enumerate() {
        for t in 0..n {
            out[t * ld + r] = dot(row, &q[t * k..(t + 1) * k]);
        }
    }
}

/// Generic slot of [`super::F16RowsFn`]: `out[r] = f16_dot(w_r, x)` for every row of `w` (rows of `k`).
pub fn f16_dot_rows(w: &[f16], k: usize, x: &[f16], out: &mut [f32]) {
    for_each_row(w, k, x, out, f16_dot);
}

/// Generic slot of [`super::TinyBlasRowsFn`]: `out[r·n + t] = tinyblas_f16_f32(w_r, x_t)`.
pub fn tinyblas_rows(w: &[f16], k: usize, x: &[f32], n: usize, out: &mut [f32]) {
    for_each_row_token(w, k, x, n, out, tinyblas_f16_f32);
}

/// The row driver of every [`super::F16RowsFn`]: `out[r] = dot(w_r, x)` for every row `w_r` of `w` (rows of
/// `k`).
#[inline(always)]
pub fn for_each_row<X>(w: &[f16], k: usize, x: &[X], out: &mut [f32], dot: impl Fn(&[f16], &[X]) -> f32) {
    for (row, o) in w.chunks_exact(k).zip(out.iter_mut()) {
        *o = dot(row, x);
    }
}

/// The row driver of every [`super::TinyBlasRowsFn`]: `out[r·n + t] = dot(w_r, x_t)` for every row `w_r` of
/// `w` and token row `x_t` of `x` (rows of `k`).
#[inline(always)]
pub fn for_each_row_token<X>(
    w: &[f16],
    k: usize,
    x: &[X],
    n: usize,
    out: &mut [f32],
    dot: impl Fn(&[f16], &[X]) -> f32,
) {
    for (row, o) in w.chunks_exact(k).zip(out.chunks_exact_mut(n)) {
        for (t, v) in o.iter_mut().enumerate() {
            *v = dot(row, &x[t * k..(t + 1) * k]);
        }
    }
}
