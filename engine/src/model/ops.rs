//! Element-wise and row operations of the forward pass, with ggml's exact f32/f64 arithmetic.
//!
//! Each function names the ggml routine it reproduces; the comments say which rounding decides bits.

use crate::kernels::Dispatcher;

pub use crate::kernels::elementwise::{silu, v_expf};

/// `ggml_compute_forward_rms_norm_f32` then `ggml_mul` by the weight: squares summed in f64,
/// `mean = f32(sum / n)`, `scale = 1 / sqrtf(mean + eps)`, `y = (x · scale) · w` in f32.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let mut sum = 0f64;
    for &v in x {
        sum += (v * v) as f64;
    }
    scale_row(x, w, eps, sum, out);
}

/// [`rms_norm`] over consecutive rows of `w.len()` values, into `out` (same length as `x`).
///
/// Each row's f64 sum is one sequential chain (ggml's order), so one row is bound by the add latency; rows are
/// taken [`RMS_ROWS`] at a time with one chain each, which runs them side by side without changing a bit.
pub fn rms_norm_rows(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let k = w.len();
    let group = RMS_ROWS * k;
    let mut xg = x.chunks_exact(group);
    let mut og = out.chunks_exact_mut(group);
    for (xs, os) in (&mut xg).zip(&mut og) {
        let mut sums = [0f64; RMS_ROWS];
        for i in 0..k {
            for (r, s) in sums.iter_mut().enumerate() {
                let v = xs[r * k + i];
                *s += (v * v) as f64;
            }
        }
        for ((xr, or), sum) in xs.chunks_exact(k).zip(os.chunks_exact_mut(k)).zip(sums) {
            scale_row(xr, w, eps, sum, or);
        }
    }
    for (xr, or) in xg
        .remainder()
        .chunks_exact(k)
        .zip(og.into_remainder().chunks_exact_mut(k))
    {
        rms_norm(xr, w, eps, or);
    }
}

/// Rows whose squared sums [`rms_norm_rows`] accumulates side by side.
const RMS_ROWS: usize = 8;

/// The second half of [`rms_norm`], given the row's f64 sum of squares.
fn scale_row(x: &[f32], w: &[f32], eps: f32, sum: f64, out: &mut [f32]) {
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0f32 / (mean + eps).sqrt();
    for ((o, &v), &wv) in out.iter_mut().zip(x).zip(w) {
        *o = (v * scale) * wv;
    }
}

/// The cos and sin tables `[pos][n_rot/2]` of [`RopeCache`] (also uploaded by the CUDA backend).
pub fn rope_tables(n_rot: usize, base: f32, freq_scale: f32, n_pos: usize) -> (Vec<f32>, Vec<f32>) {
    rope_tables_with(n_rot, base, freq_scale, None, n_pos)
}

/// [`rope_tables`] with optional per-pair frequency factors (`rope_freqs.weight`): `ggml_rope_cache_init` rotates
/// pair `i` by `freq_scale · (θ_i / ff_i)`.
pub fn rope_tables_with(
    n_rot: usize,
    base: f32,
    freq_scale: f32,
    freq_factors: Option<&[f32]>,
    n_pos: usize,
) -> (Vec<f32>, Vec<f32>) {
    let half = n_rot / 2;
    let theta_scale = base.powf(-2.0f32 / n_rot as f32);
    let mut cos = vec![0f32; n_pos * half];
    let mut sin = vec![0f32; n_pos * half];
    for p in 0..n_pos {
        let mut theta = p as f32;
        for i in 0..half {
            let ff = freq_factors.map_or(1.0, |f| f[i]);
            let t = freq_scale * (theta / ff);
            cos[p * half + i] = t.cos();
            sin[p * half + i] = t.sin();
            theta *= theta_scale;
        }
    }
    (cos, sin)
}

/// Per-position RoPE tables (`ggml_rope_cache_init` with ext_factor 0, attn_factor 1):
/// `θ_0 = p`, `θ_{i+1} = θ_i · powf(base, −2/n_rot)` by repeated f32 multiplication, libm cosf/sinf.
#[derive(Clone, Debug)]
pub struct RopeCache {
    half: usize,
    /// NEOX pairs `(x[i], x[i + half])` (the BitNet archs) or NORM pairs `(x[2i], x[2i+1])` (`llama`).
    neox: bool,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl RopeCache {
    /// NEOX tables without frequency factors (the BitNet archs).
    pub fn new(n_rot: usize, base: f32, freq_scale: f32, n_pos: usize) -> RopeCache {
        RopeCache::with_mode(n_rot, base, freq_scale, n_pos, true, None)
    }

    /// Tables for either rotation mode, with optional `rope_freqs` factors.
    pub fn with_mode(
        n_rot: usize,
        base: f32,
        freq_scale: f32,
        n_pos: usize,
        neox: bool,
        freq_factors: Option<&[f32]>,
    ) -> RopeCache {
        let (cos, sin) = rope_tables_with(n_rot, base, freq_scale, freq_factors, n_pos);
        RopeCache {
            half: n_rot / 2,
            neox,
            cos,
            sin,
        }
    }

    pub fn n_pos(&self) -> usize {
        self.cos.len() / self.half.max(1)
    }

    /// Rotate every head of `x` (consecutive heads of `2·half` values) at position `pos`, through the
    /// dispatcher's NEOX or NORM kernel (products contracted into FMAs as clang does: `x0·cos − x1·sin`,
    /// `x0·sin + x1·cos`).
    pub fn apply(&self, disp: &Dispatcher, x: &mut [f32], pos: usize) {
        let half = self.half;
        let (c, s) = (
            &self.cos[pos * half..(pos + 1) * half],
            &self.sin[pos * half..(pos + 1) * half],
        );
        if self.neox {
            disp.rope_heads(x, c, s);
        } else {
            disp.rope_heads_norm(x, c, s);
        }
    }
}

/// Index of the largest logit, llama.cpp's greedy pick by [`vocab::argmax`]'s rule (lowest index wins ties,
/// NaN never wins); 0 for a row with no number.
pub fn argmax(row: &[f32]) -> usize {
    vocab::argmax(row).unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Side-by-side rows give each row exactly [`rms_norm`]'s bits, for any row count (groups and remainder).
    #[test]
    fn rms_norm_rows_is_rms_norm_per_row() {
        let k = 160;
        let mut z = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            z ^= z << 13;
            z ^= z >> 7;
            z ^= z << 17;
            ((z >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 7.0
        };
        let w: Vec<f32> = (0..k).map(|_| next()).collect();
        for n in [1, 7, 8, 9, 17, 24] {
            let x: Vec<f32> = (0..n * k).map(|_| next()).collect();
            let mut got = vec![0f32; n * k];
            rms_norm_rows(&x, &w, 1e-6, &mut got);
            for r in 0..n {
                let mut want = vec![0f32; k];
                rms_norm(&x[r * k..(r + 1) * k], &w, 1e-6, &mut want);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got[r * k..(r + 1) * k]), bits(&want), "n {n} row {r}");
            }
        }
    }
}
