//! Ternary and dense kernels: the scalar oracle, SIMD implementations, and the dispatcher.
//!
//! Layout (tract's shape): [`scalar`] holds the portable reference of every primitive; each
//! instruction-set module holds only intrinsics with the same signatures. [`Dispatcher`] is the one
//! place that chooses among them. It is built once per run from a [`KernelChoice`], hands out the chosen
//! implementation, and records the stable name (`KernelId`) of every kernel it hands out, with call counts,
//! in its own log — that log is what receipts report.

pub mod scalar;
pub mod tq;

use std::collections::BTreeMap;
use std::sync::Mutex;

use half::f16;
use rayon::prelude::*;

/// Environment variable that forces a kernel family (same values as `--kernel`).
pub const KERNEL_ENV: &str = "PARITY_KERNEL";

/// A family of kernels, one per instruction set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Scalar,
    Avx2,
    Avx512,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Scalar => "scalar",
            Family::Avx2 => "avx2",
            Family::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the family (and this build has it).
    pub fn available(self) -> bool {
        match self {
            Family::Scalar => true,
            Family::Avx2 | Family::Avx512 => false,
        }
    }
}

/// What the user asked for: a family, or the best available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelChoice {
    Auto,
    Force(Family),
}

impl std::str::FromStr for KernelChoice {
    type Err = KernelError;
    fn from_str(s: &str) -> Result<Self, KernelError> {
        Ok(match s {
            "auto" => KernelChoice::Auto,
            "scalar" => KernelChoice::Force(Family::Scalar),
            "avx2" => KernelChoice::Force(Family::Avx2),
            "avx512" => KernelChoice::Force(Family::Avx512),
            _ => return Err(KernelError::UnknownFamily(s.to_string())),
        })
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum KernelError {
    #[error("unknown kernel family {0:?} (expected auto, scalar, avx2 or avx512)")]
    UnknownFamily(String),
    #[error("kernel family {0} is not available on this CPU or in this build (available: {1})")]
    Unavailable(&'static str, String),
}

/// How an I2_S matmul turns the integer dot into f32 (spec §5.3; H2 of reference-generations.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum I2sEpilogue {
    /// bitnet.cpp 2025: `f32(f32(sumi − act_sum) / act_scale) · w_scale`, int16-lane wrap emulated.
    Divide,
    /// Predicted bitnet.cpp 2026 (H2): `(f32(sumi) − f32(act_sum)) · f32(w_scale / act_scale)`, int32 sums.
    MultiplyRatio,
}

/// How an F16-weight matmul treats its f32 activations (spec §6.5–6.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum F16Path {
    /// One row: activations rounded to f16, `ggml_vec_dot_f16`.
    VecDot,
    /// ≥ 2 rows: llamafile tinyBLAS with f32 activations.
    TinyBlas,
    /// ≥ 2 rows with activations first rounded to f16, then tinyBLAS (H3).
    TinyBlasF16Act,
}

/// An I2_S weight matrix in the x86 128-block layout: `rows` rows of `k` weights.
#[derive(Clone, Copy, Debug)]
pub struct I2sMatrix<'a> {
    pub codes: &'a [u8],
    pub scale: f32,
    pub rows: usize,
    pub k: usize,
}

/// A dense f16 matrix, row-major, `rows` × `k`.
#[derive(Clone, Copy, Debug)]
pub struct F16Matrix<'a> {
    pub data: &'a [f16],
    pub rows: usize,
    pub k: usize,
}

/// Signature of an f16·f16 dot with `ggml_vec_dot_f16`'s order.
pub type F16DotFn = fn(&[f16], &[f16]) -> f32;
/// Signature of one tinyBLAS F16×F32 output.
pub type TinyBlasFn = fn(&[f16], &[f32]) -> f32;

/// Chooses kernels and logs what it chose.
#[derive(Debug)]
pub struct Dispatcher {
    family: Family,
    log: Mutex<BTreeMap<&'static str, u64>>,
}

impl Dispatcher {
    /// Build from an explicit choice; `Auto` consults [`KERNEL_ENV`] first, then the CPU.
    pub fn new(choice: KernelChoice) -> Result<Dispatcher, KernelError> {
        let choice = match choice {
            KernelChoice::Auto => match std::env::var(KERNEL_ENV) {
                Ok(v) if !v.is_empty() => v.parse()?,
                _ => KernelChoice::Auto,
            },
            c => c,
        };
        let family = match choice {
            KernelChoice::Auto => [Family::Avx512, Family::Avx2, Family::Scalar]
                .into_iter()
                .find(|f| f.available())
                .unwrap_or(Family::Scalar),
            KernelChoice::Force(f) if f.available() => f,
            KernelChoice::Force(f) => return Err(KernelError::Unavailable(f.name(), Self::available_names())),
        };
        Ok(Dispatcher { family, log: Mutex::new(BTreeMap::new()) })
    }

    /// Names of the families this CPU and build can run.
    pub fn available_names() -> String {
        [Family::Scalar, Family::Avx2, Family::Avx512]
            .into_iter()
            .filter(|f| f.available())
            .map(Family::name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn family(&self) -> Family {
        self.family
    }

    /// Record that kernel `id` ran `calls` more times.
    pub fn record(&self, id: &'static str, calls: u64) {
        *self.log.lock().unwrap_or_else(|e| e.into_inner()).entry(id).or_default() += calls;
    }

    /// Kernel IDs dispatched so far, with call counts.
    pub fn log(&self) -> BTreeMap<String, u64> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The f16 dot kernel (attention inner products), recorded once per call of this method.
    pub fn f16_dot(&self) -> F16DotFn {
        self.record("f16.scalar.vec_dot", 1);
        scalar::f16_dot
    }

    /// The tinyBLAS F16×F32 kernel, recorded once per call of this method.
    pub fn tinyblas(&self) -> TinyBlasFn {
        self.record("f16.scalar.tinyblas", 1);
        scalar::tinyblas_f16_f32
    }

    /// `y[t·rows + r] = W_r · x_t` for `n` activation rows of length `w.k` (spec §5).
    pub fn i2s_matmul(&self, w: &I2sMatrix, x: &[f32], n: usize, epi: I2sEpilogue, y: &mut [f32]) {
        let (k, rows) = (w.k, w.rows);
        assert!(x.len() >= n * k && y.len() >= n * rows && w.codes.len() >= rows * k / 4);
        let mut q = vec![0i8; n * k];
        let mut meta = Vec::with_capacity(n);
        for t in 0..n {
            let (s, sum) = scalar::quantize_i8_s(&x[t * k..(t + 1) * k], &mut q[t * k..(t + 1) * k]);
            let wrap = epi == I2sEpilogue::Divide && scalar::i2s_lane_bound(&q[t * k..(t + 1) * k]) >= 32768;
            meta.push((s, sum, wrap));
        }
        self.record("i8s.scalar.quantize", 1);
        let any_wrap = meta.iter().any(|m| m.2);
        self.record(if any_wrap { "i2s.x86.scalar.gemv-wrap16" } else { "i2s.x86.scalar.gemv" }, 1);
        let mut yt = vec![0f32; rows * n];
        yt.par_chunks_mut(n).enumerate().for_each(|(r, out)| {
            let codes = &w.codes[r * k / 4..(r + 1) * k / 4];
            for (t, o) in out.iter_mut().enumerate() {
                let qt = &q[t * k..(t + 1) * k];
                let (s, sum, wrap) = meta[t];
                let sumi = if wrap { scalar::i2s_dot_wrap16(codes, qt) } else { scalar::i2s_dot(codes, qt) };
                *o = match epi {
                    I2sEpilogue::Divide => ((sumi as f32 - sum as f32) / s) * w.scale,
                    I2sEpilogue::MultiplyRatio => (sumi as f32 - sum as f32) * (w.scale / s),
                };
            }
        });
        for r in 0..rows {
            for t in 0..n {
                y[t * rows + r] = yt[r * n + t];
            }
        }
    }

    /// `y[t·rows + r] = W_r · x_t` for an f16 weight matrix along the chosen [`F16Path`].
    pub fn f16_matmul(&self, w: &F16Matrix, x: &[f32], n: usize, path: F16Path, y: &mut [f32]) {
        let (k, rows) = (w.k, w.rows);
        assert!(x.len() >= n * k && y.len() >= n * rows && w.data.len() >= rows * k);
        match path {
            F16Path::VecDot => {
                let dot = self.f16_dot();
                let x16: Vec<f16> = x[..n * k].iter().map(|&v| f16::from_f32(v)).collect();
                y[..n * rows].par_chunks_mut(rows).enumerate().for_each(|(t, out)| {
                    let xt = &x16[t * k..(t + 1) * k];
                    out.par_chunks_mut(256).enumerate().for_each(|(c, o)| {
                        for (i, v) in o.iter_mut().enumerate() {
                            let r = c * 256 + i;
                            *v = dot(&w.data[r * k..(r + 1) * k], xt);
                        }
                    });
                });
            }
            F16Path::TinyBlas | F16Path::TinyBlasF16Act => {
                let gemm = self.tinyblas();
                let xs: Vec<f32> = if path == F16Path::TinyBlasF16Act {
                    x[..n * k].iter().map(|&v| f16::from_f32(v).to_f32()).collect()
                } else {
                    x[..n * k].to_vec()
                };
                let mut yt = vec![0f32; rows * n];
                yt.par_chunks_mut(n).enumerate().for_each(|(r, out)| {
                    let wr = &w.data[r * k..(r + 1) * k];
                    for (t, o) in out.iter_mut().enumerate() {
                        *o = gemm(wr, &xs[t * k..(t + 1) * k]);
                    }
                });
                for r in 0..rows {
                    for t in 0..n {
                        y[t * rows + r] = yt[r * n + t];
                    }
                }
            }
        }
    }
}
