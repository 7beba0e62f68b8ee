//! Element-wise and row operations of the forward pass, with ggml's exact f32/f64 arithmetic.
//!
//! Each function names the ggml routine it reproduces; the comments say which rounding decides bits.

use crate::kernels::scalar::tree16;

/// `pub fn $name(args) = $body`: calls `$body` (an `#[inline(always)]` fn) from a copy compiled with FMA enabled
/// when the CPU has it. `f32::mul_add` is then one `vfmadd` instead of a call into the soft-float `fmaf`
/// dispatcher; both are the same single-rounding FMA, so results are identical either way.
macro_rules! fma_multiversion {
    ($(#[$doc:meta])* pub fn $name:ident($($a:ident: $t:ty),*) = $body:ident) => {
        $(#[$doc])*
        pub fn $name($($a: $t),*) {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("fma") {
                #[target_feature(enable = "fma")]
                fn with_fma($($a: $t),*) {
                    $body($($a),*)
                }
                // SAFETY: FMA was detected just above.
                return unsafe { with_fma($($a),*) };
            }
            $body($($a),*)
        }
    };
}

/// `ggml_compute_forward_rms_norm_f32` then `ggml_mul` by the weight: squares summed in f64,
/// `mean = f32(sum / n)`, `scale = 1 / sqrtf(mean + eps)`, `y = (x · scale) · w` in f32.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let mut sum = 0f64;
    for &v in x {
        sum += (v * v) as f64;
    }
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0f32 / (mean + eps).sqrt();
    for ((o, &v), &wv) in out.iter_mut().zip(x).zip(w) {
        *o = (v * scale) * wv;
    }
}

/// [`rms_norm`] over consecutive rows of `w.len()` values, into `out` (same length as `x`).
pub fn rms_norm_rows(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    for (xr, or) in x.chunks_exact(w.len()).zip(out.chunks_exact_mut(w.len())) {
        rms_norm(xr, w, eps, or);
    }
}

/// `ggml_v_expf` (AVX-512 variant), lane-for-lane in scalar FMA arithmetic.
#[inline(always)]
pub fn v_expf(x: f32) -> f32 {
    const R: f32 = 12582912.0; // 0x1.8p23
    let z = x.mul_add(f32::from_bits(0x3fb8_aa3b), R); // 0x1.715476p+0
    let n = z - R;
    let b = (-n).mul_add(
        f32::from_bits(0x35bf_be8e),
        (-n).mul_add(f32::from_bits(0x3f31_7200), x),
    ); // ln2 lo, hi
    let u = b * b;
    let c5 = f32::from_bits(0x3c07_2010); // 0x1.0e4020p-7
    let c4 = f32::from_bits(0x3d2b_9f17); // 0x1.573e2ep-5
    let c3 = f32::from_bits(0x3e2a_af33); // 0x1.555e66p-3
    let c2 = f32::from_bits(0x3eff_fedb); // 0x1.fffdb6p-2
    let c1 = f32::from_bits(0x3f7f_fff6); // 0x1.ffffecp-1
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

fma_multiversion!(
    /// The FFN activation in place: squared ReLU (`build_bitnet_158`) or SiLU (`ggml_v_silu`).
    pub fn ffn_act(gate: &mut [f32], relu2: bool) = ffn_act_body
);

fma_multiversion!(
    /// `ggml_compute_forward_soft_max_f32` on one row of scores: `w = s·scale`, masked entries −∞,
    /// `e = v_expf(w − max)`, per-16 tree sums accumulated in f64, then `e · f32(1 / sum)`.
    /// `valid` is how many leading entries are unmasked; `s.len()` must be a multiple of 16.
    pub fn softmax_masked(s: &mut [f32], scale: f32, valid: usize) = softmax_body
);

#[inline(always)]
fn softmax_body(s: &mut [f32], scale: f32, valid: usize) {
    let mut max = f32::NEG_INFINITY;
    for (i, v) in s.iter_mut().enumerate() {
        *v = if i < valid { *v * scale } else { f32::NEG_INFINITY };
        max = max.max(*v);
    }
    let mut sum = 0f64;
    for chunk in s.chunks_exact_mut(16) {
        let mut lanes = [0f32; 16];
        for (l, v) in chunk.iter_mut().enumerate() {
            *v = v_expf(*v - max);
            lanes[l] = *v;
        }
        sum += tree16(lanes) as f64;
    }
    let inv = (1.0 / sum) as f32;
    for v in s.iter_mut() {
        *v *= inv;
    }
}

/// The cos and sin tables `[pos][n_rot/2]` of [`RopeCache`] (also uploaded by the CUDA backend).
pub fn rope_tables(n_rot: usize, base: f32, freq_scale: f32, n_pos: usize) -> (Vec<f32>, Vec<f32>) {
    let mut cos = vec![0f32; n_pos * (n_rot / 2)];
    let mut sin = vec![0f32; n_pos * (n_rot / 2)];
    fill_rope_tables(n_rot, base, freq_scale, &mut cos, &mut sin);
    (cos, sin)
}

/// [`rope_tables`] into tables of `n_pos * n_rot / 2` values each.
fn fill_rope_tables(n_rot: usize, base: f32, freq_scale: f32, cos: &mut [f32], sin: &mut [f32]) {
    let half = n_rot / 2;
    let n_pos = cos.len() / half.max(1);
    let theta_scale = base.powf(-2.0f32 / n_rot as f32);
    for p in 0..n_pos {
        let mut theta = p as f32;
        for i in 0..half {
            let t = freq_scale * theta;
            cos[p * half + i] = t.cos();
            sin[p * half + i] = t.sin();
            theta *= theta_scale;
        }
    }
}

/// Per-position NEOX RoPE tables (`ggml_rope_cache_init` with ext_factor 0, attn_factor 1):
/// `θ_0 = p`, `θ_{i+1} = θ_i · powf(base, −2/n_rot)` by repeated f32 multiplication, libm cosf/sinf.
#[derive(Clone, Debug)]
pub struct RopeCache {
    half: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl RopeCache {
    pub fn new(n_rot: usize, base: f32, freq_scale: f32, n_pos: usize) -> RopeCache {
        let (cos, sin) = rope_tables(n_rot, base, freq_scale, n_pos);
        RopeCache {
            half: n_rot / 2,
            cos,
            sin,
        }
    }

    /// [`RopeCache::new`], with the tables allocated fallibly (a huge context is an error, not an abort).
    pub fn try_new(n_rot: usize, base: f32, freq_scale: f32, n_pos: usize) -> Result<RopeCache, AllocError> {
        let n = n_pos.checked_mul(n_rot / 2).ok_or(AllocError {
            what: "RoPE tables",
            bytes: None,
        })?;
        let mut cos = try_zeroed(n, 0f32, "RoPE tables")?;
        let mut sin = try_zeroed(n, 0f32, "RoPE tables")?;
        fill_rope_tables(n_rot, base, freq_scale, &mut cos, &mut sin);
        Ok(RopeCache {
            half: n_rot / 2,
            cos,
            sin,
        })
    }

    pub fn n_pos(&self) -> usize {
        self.cos.len() / self.half.max(1)
    }

    /// Rotate every head of `x` (consecutive heads of `2·half` values) at position `pos`: pairs
    /// `(x[i], x[i + half])`, with the products contracted into FMAs as clang does (`x0·cos − x1·sin`,
    /// `x0·sin + x1·cos`).
    pub fn apply(&self, x: &mut [f32], pos: usize) {
        let half = self.half;
        rope_heads(
            x,
            &self.cos[pos * half..(pos + 1) * half],
            &self.sin[pos * half..(pos + 1) * half],
        );
    }
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

fma_multiversion!(
    /// NEOX rotation of consecutive heads by one position's `cos`/`sin` rows (see [`RopeCache::apply`]).
    pub fn rope_heads(x: &mut [f32], c: &[f32], s: &[f32]) = rope_body
);

/// Index of the largest logit; the lowest index wins ties and NaN never wins (llama.cpp's greedy pick).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] || row[best].is_nan() {
            best = i;
        }
    }
    best
}

/// An allocation that could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot allocate the {what} ({}): not enough memory; use a smaller --ctx", fmt_bytes(*.bytes))]
pub struct AllocError {
    /// What it was for.
    pub what: &'static str,
    /// Its size, when that fits in a `usize`.
    pub bytes: Option<usize>,
}

fn fmt_bytes(b: Option<usize>) -> String {
    match b {
        Some(b) => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        None => "more bytes than the address space holds".into(),
    }
}

/// `n` copies of `zero` in a vector allocated with `try_reserve_exact`: an allocation the system refuses
/// is an [`AllocError`] instead of an abort, and so is one larger than the machine's physical memory
/// (Linux would grant it lazily and the OOM killer would end the process later).
pub fn try_zeroed<T: Copy>(n: usize, zero: T, what: &'static str) -> Result<Vec<T>, AllocError> {
    let bytes = n.checked_mul(std::mem::size_of::<T>());
    let err = AllocError { what, bytes };
    let b = bytes.ok_or(err.clone())?;
    if physical_memory().is_some_and(|total| b as u64 > total) {
        return Err(err);
    }
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| err)?;
    v.resize(n, zero);
    Ok(v)
}

/// Bytes of physical memory (`MemTotal` of /proc/meminfo), when known.
fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}
