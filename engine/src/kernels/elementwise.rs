//! Element-wise f32 kernels of the forward pass (softmax, FFN activation, RoPE) with ggml's exact arithmetic.
//!
//! The portable functions are the oracle; [`fma`] holds the same bodies compiled with FMA enabled, where
//! `f32::mul_add` is one `vfmadd` instead of a call into the soft-float `fmaf`: both are the same
//! single-rounding FMA, so results are identical. The dispatcher chooses between them.

use super::scalar::tree16;

/// The polynomial coefficients c1…c5 of `ggml_v_expf` (AVX-512 and NEON variants alike).
pub const EXPF_C: [f32; 5] = [
    f32::from_bits(0x3f7f_fff6), // 0x1.ffffecp-1
    f32::from_bits(0x3eff_fedb), // 0x1.fffdb6p-2
    f32::from_bits(0x3e2a_af33), // 0x1.555e66p-3
    f32::from_bits(0x3d2b_9f17), // 0x1.573e2ep-5
    f32::from_bits(0x3c07_2010), // 0x1.0e4020p-7
];

/// `ggml_v_expf`'s rounding shift 0x1.8p23: adding it rounds `x·log2(e)` to an integer.
pub const EXPF_SHIFT: f32 = 12582912.0;
/// log2(e) as `ggml_v_expf` spells it, 0x1.715476p+0.
pub const EXPF_LOG2E: f32 = f32::from_bits(0x3fb8_aa3b);
/// ln 2 split in two for the reduction `x − n·ln2`: the high part 0x1.62e4p-1, then the low 0x1.7f7d1cp-20.
pub const EXPF_LN2_HI: f32 = f32::from_bits(0x3f31_7200);
pub const EXPF_LN2_LO: f32 = f32::from_bits(0x35bf_be8e);

/// The range reduction of `ggml_v_expf` (both variants): `z = x·log2(e) + 0x1.8p23` (FMA), `n = z − 0x1.8p23`
/// (`x·log2(e)` rounded to an integer) and `b = x − n·ln2` (ln2 hi, then lo, each an FMA).
#[inline(always)]
pub fn expf_reduce(x: f32) -> (f32, f32, f32) {
    let z = x.mul_add(EXPF_LOG2E, EXPF_SHIFT);
    let n = z - EXPF_SHIFT;
    let b = (-n).mul_add(EXPF_LN2_LO, (-n).mul_add(EXPF_LN2_HI, x));
    (z, n, b)
}

/// `ggml_v_expf` (AVX-512 variant), lane-for-lane in scalar FMA arithmetic.
#[inline(always)]
pub fn v_expf(x: f32) -> f32 {
    let (_, n, b) = expf_reduce(x);
    let u = b * b;
    let [c1, c2, c3, c4, c5] = EXPF_C;
    let j = c5
        .mul_add(b, c4)
        .mul_add(u, c3.mul_add(b, c2))
        .mul_add(u, c1.mul_add(b, 1.0));
    if n.abs() > 192.0 {
        // Masked lanes (n is ±inf or huge): 0 below, +inf above.
        return if n <= 0.0 { 0.0 } else { f32::INFINITY };
    }
    // _mm512_scalef_ps(j, n): exact power-of-two scaling with one rounding. n is an integer in [−192, 192],
    // so 2ⁿ is built exactly from its f64 exponent bits.
    let pow2 = f64::from_bits(((n as i64 + 1023) as u64) << 52);
    (j as f64 * pow2) as f32
}

/// `ggml_v_silu`: `x / (1 + v_expf(0 − x))`.
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + v_expf(0.0 - x))
}

#[inline(always)]
fn ffn_act_body(gate: &mut [f32], relu2: bool) {
    for g in gate.iter_mut() {
        *g = if relu2 {
            let r = if *g > 0.0 { *g } else { 0.0 };
            r * r
        } else {
            silu(*g)
        };
    }
}

/// The first pass of every softmax order: `w = s·scale`, entries from `valid` on masked to −∞; returns the max
/// (NaN ignored).
#[inline(always)]
pub(super) fn softmax_scale_mask(s: &mut [f32], scale: f32, valid: usize) -> f32 {
    let mut max = f32::NEG_INFINITY;
    for (i, v) in s.iter_mut().enumerate() {
        *v = if i < valid { *v * scale } else { f32::NEG_INFINITY };
        max = max.max(*v);
    }
    max
}

/// The last pass of every softmax order: `e · f32(1 / sum)`.
#[inline(always)]
pub(super) fn softmax_normalize(s: &mut [f32], sum: f64) {
    let inv = (1.0 / sum) as f32;
    for v in s.iter_mut() {
        *v *= inv;
    }
}

#[inline(always)]
fn softmax_body(s: &mut [f32], scale: f32, valid: usize) {
    let max = softmax_scale_mask(s, scale, valid);
    let mut sum = 0f64;
    for chunk in s.chunks_exact_mut(16) {
        let mut lanes = [0f32; 16];
        for (l, v) in chunk.iter_mut().enumerate() {
            *v = v_expf(*v - max);
            lanes[l] = *v;
        }
        sum += tree16(lanes) as f64;
    }
    softmax_normalize(s, sum);
}

#[inline(always)]
fn rope_body(x: &mut [f32], c: &[f32], s: &[f32]) {
    let half = c.len();
    for head in x.chunks_exact_mut(2 * half) {
        let (a, b) = head.split_at_mut(half);
        for i in 0..half {
            let (x0, x1) = (a[i], b[i]);
            a[i] = x0.mul_add(c[i], -(x1 * s[i]));
            b[i] = x0.mul_add(s[i], x1 * c[i]);
        }
    }
}

#[inline(always)]
fn rope_norm_body(x: &mut [f32], c: &[f32], s: &[f32]) {
    let half = c.len();
    for head in x.chunks_exact_mut(2 * half) {
        for (i, pair) in head.chunks_exact_mut(2).enumerate() {
            let (x0, x1) = (pair[0], pair[1]);
            pair[0] = x0.mul_add(c[i], -(x1 * s[i]));
            pair[1] = x0.mul_add(s[i], x1 * c[i]);
        }
    }
}

/// The FFN activation in place: squared ReLU (`build_bitnet_158`) or SiLU (`ggml_v_silu`).
pub fn ffn_act(gate: &mut [f32], relu2: bool) {
    ffn_act_body(gate, relu2)
}

/// `ggml_compute_forward_soft_max_f32` on one row of scores: `w = s·scale`, masked entries −∞,
/// `e = v_expf(w − max)`, per-16 tree sums accumulated in f64, then `e · f32(1 / sum)`.
/// `valid` is how many leading entries are unmasked; `s.len()` must be a multiple of 16.
pub fn softmax_masked(s: &mut [f32], scale: f32, valid: usize) {
    softmax_body(s, scale, valid)
}

/// NEOX RoPE of consecutive heads of `x` (each `2·half` values) by one position's `cos`/`sin` rows: pairs
/// `(x[i], x[i + half])`, the products contracted into FMAs as clang does (`x0·cos − x1·sin`, `x0·sin + x1·cos`).
pub fn rope_heads(x: &mut [f32], c: &[f32], s: &[f32]) {
    rope_body(x, c, s)
}

/// NORM RoPE (arch `llama`, `ggml_compute_forward_rope_f32` without the NEOX bit): adjacent pairs
/// `(x[2i], x[2i+1])`, the same cache and the same contraction as [`rope_heads`].
pub fn rope_heads_norm(x: &mut [f32], c: &[f32], s: &[f32]) {
    rope_norm_body(x, c, s)
}

/// The same bodies compiled with FMA enabled (only handed out where FMA was detected).
#[cfg(target_arch = "x86_64")]
pub(super) mod fma {
    macro_rules! with_fma {
        ($name:ident($($a:ident: $t:ty),*) = $body:path) => {
            pub fn $name($($a: $t),*) {
                #[target_feature(enable = "fma")]
                fn inner($($a: $t),*) {
                    $body($($a),*)
                }
                // SAFETY: the kernel table hands this out only after detecting FMA (`Isa::Fma.available()`).
                unsafe { inner($($a),*) }
            }
        };
    }
    with_fma!(ffn_act(gate: &mut [f32], relu2: bool) = super::ffn_act_body);
    with_fma!(softmax_masked(s: &mut [f32], scale: f32, valid: usize) = super::softmax_body);
    with_fma!(rope_heads(x: &mut [f32], c: &[f32], s: &[f32]) = super::rope_body);
    with_fma!(rope_heads_norm(x: &mut [f32], c: &[f32], s: &[f32]) = super::rope_norm_body);
}

impl super::Dispatcher {
    /// The FFN activation in place (`relu2`: squared ReLU, else SiLU) in `order`'s arithmetic; recorded per call.
    pub fn ffn_act(&self, order: super::SimdOrder, gate: &mut [f32], relu2: bool) {
        let k = self.table().float_ops(order).ffn_act;
        self.record(k.id, 1);
        (k.run)(gate, relu2)
    }

    /// NEOX RoPE of consecutive heads of `x` by one position's `cos`/`sin` rows; recorded per call.
    pub fn rope_heads(&self, x: &mut [f32], c: &[f32], s: &[f32]) {
        let k = self.table().rope;
        self.record(k.id, 1);
        (k.run)(x, c, s)
    }

    /// NORM RoPE (adjacent pairs, arch `llama`) of consecutive heads; recorded per call.
    pub fn rope_heads_norm(&self, x: &mut [f32], c: &[f32], s: &[f32]) {
        let k = self.table().rope_norm;
        self.record(k.id, 1);
        (k.run)(x, c, s)
    }
}
