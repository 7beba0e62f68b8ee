//! CUDA backend: kernels in CUDA C compiled at run time by NVRTC, driven through cudarc with dynamic loading.
//!
//! Nothing here links against CUDA: `libcuda.so` and `libnvrtc.so` are opened with `dlopen` when
//! [`CudaBackend::new`] runs, so the `cuda` feature builds on machines without a toolkit or a GPU. With the
//! feature off, the same API exists (candle's `dummy_cuda` pattern) and every constructor returns
//! [`CudaError::NotCompiledWithCudaSupport`].
//!
//! [`CudaBackend`] exposes each kernel on host slices (upload, launch, download) so it can be compared with the
//! CPU oracle; the device-level launchers serve `model::cuda::CudaOps`, the CUDA backend of the one forward
//! pass ([`crate::model::Session::try_new_on`]: weights uploaded once, KV cache on the device). Every launch is
//! recorded under a stable kernel ID (the `*_ID` constants), read with [`CudaBackend::log`] or copied into a
//! [`super::Dispatcher`] log with [`CudaBackend::record_into`].
//!
//! Numerics (docs/cuda.md): integer I2_S sums are exact (int32, `dp4a`), the f32 epilogue is the CPU's; the f16
//! dots, softmax and RoPE follow the scalar oracle's reduction orders; RMS norm sums squares in f64 by a tree.
//! bitnet.cpp 2025's int16 lane wrap (`I2S_WRAP16`) is not emulated. None of this has run on a GPU yet.

pub mod source;

#[cfg(feature = "cuda")]
mod backend;
#[cfg(not(feature = "cuda"))]
mod stub;

#[cfg(feature = "cuda")]
pub use backend::DevWeight;
#[cfg(feature = "cuda")]
pub use backend::{driver_present, nvrtc_check, nvrtc_present, CudaBackend};
#[cfg(feature = "cuda")]
pub(crate) use backend::{drv, DevAct};
#[cfg(not(feature = "cuda"))]
pub use stub::{driver_present, nvrtc_check, nvrtc_present, CudaBackend};

use half::f16;

use super::{F16Path, Isa, KernelId, Op};

/// `quantize_row_i8_s` on the device.
pub const QUANTIZE_ID: KernelId = KernelId::new(Op::I8sQuantize, Isa::Cuda, "quantize");
/// I2_S × int8 with `dp4a`, one token.
pub const I2S_GEMV_ID: KernelId = KernelId::new(Op::I2s, Isa::Cuda, "dp4a.gemv");
/// I2_S × int8 with `dp4a`, several tokens.
pub const I2S_GEMM_ID: KernelId = KernelId::new(Op::I2s, Isa::Cuda, "dp4a.gemm");
/// F16 matmul in `ggml_vec_dot_f16` order (one row: LM head, single-token F16 layers).
pub const F16_GEMV_ID: KernelId = KernelId::new(Op::F16, Isa::Cuda, "gemv");
/// F16 matmul in tinyBLAS order (several rows).
pub const F16_TINYBLAS_ID: KernelId = KernelId::new(Op::F16, Isa::Cuda, "tinyblas.gemm");
/// RMS norm times the weight.
pub const RMS_NORM_ID: KernelId = KernelId::new(Op::RmsNorm, Isa::Cuda, "");
/// NEOX RoPE from host-built tables (the BitNet archs).
pub const ROPE_ID: KernelId = KernelId::new(Op::Rope, Isa::Cuda, "neox");
/// NORM RoPE (adjacent pairs, arch llama) from the same tables.
pub const ROPE_NORM_ID: KernelId = KernelId::new(Op::Rope, Isa::Cuda, "norm");
/// The FFN activation in place (squared ReLU or SiLU).
pub const FFN_ACT_ID: KernelId = KernelId::new(Op::FfnAct, Isa::Cuda, "f32");
/// Activation × up.
pub const MUL_ID: KernelId = KernelId::new(Op::Mul, Isa::Cuda, "f32");
/// The residual sum.
pub const ADD_ID: KernelId = KernelId::new(Op::Add, Isa::Cuda, "f32");
/// Softmax attention over the f16 KV cache.
pub const ATTENTION_ID: KernelId = KernelId::new(Op::Attn, Isa::Cuda, "f16kv");

/// Where a forward pass runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    /// A CUDA device by ordinal.
    Cuda(usize),
}

impl std::str::FromStr for Device {
    type Err = CudaError;
    /// `cpu`, `cuda` (device 0) or `cuda:N`.
    fn from_str(s: &str) -> Result<Device, CudaError> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| CudaError::UnknownDevice(s.to_string())),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Why the CUDA backend cannot run.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum CudaError {
    #[error(
        "this build has no CUDA support (rebuild with the `cuda` feature: `cargo build --release -p parity --features cuda`)"
    )]
    NotCompiledWithCudaSupport,
    #[error("no CUDA driver ({0} not found)")]
    NoDriver(&'static str),
    #[error("no NVRTC runtime compiler ({0} not found)")]
    NoNvrtc(&'static str),
    #[error("no CUDA device with ordinal {ordinal} ({count} found)")]
    NoDevice { ordinal: usize, count: usize },
    #[error("NVRTC could not compile the kernels for {arch}: {log}")]
    Nvrtc { arch: String, log: String },
    #[error("CUDA driver call failed ({op}): {msg}")]
    Driver { op: &'static str, msg: String },
    #[error("{op}: {why}")]
    Shape { op: &'static str, why: String },
    #[error("the CUDA backend cannot run this model: {0}")]
    Unsupported(String),
    #[error("unknown device {0:?} (expected cpu, cuda or cuda:N)")]
    UnknownDevice(String),
    #[error("token id {id} is outside the vocabulary ({n_vocab} tokens)")]
    TokenOutOfRange { id: u32, n_vocab: usize },
    #[error("context full: position {pos} needs more than the {n_ctx} cells of the KV cache")]
    ContextFull { pos: usize, n_ctx: usize },
}

/// Int8 activations of `n` rows with their per-row `act_scale` and `act_sum` (spec §5.1).
#[derive(Clone, Debug, PartialEq)]
pub struct Quantized {
    pub q: Vec<i8>,
    pub scales: Vec<f32>,
    pub sums: Vec<i32>,
}

/// A host-side f16 KV cache of one layer: K as `[head][cell][head_dim]`, V as `[head][head_dim][cell]`
/// (the layout of [`crate::model::kv_cache::KvCache`]).
#[derive(Clone, Copy, Debug)]
pub struct HostKv<'a> {
    pub k: &'a [f16],
    pub v: &'a [f16],
    pub n_head_kv: usize,
    pub head_dim: usize,
    /// Cells per head.
    pub size: usize,
}

/// The shape and paths of one attention call (the paths of the CPU backend's attention, `model::cpu`).
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_head: usize,
    /// Queries, at positions `p0..p0 + n`.
    pub n: usize,
    pub p0: usize,
    /// Cells visited (a multiple of 32).
    pub n_kv: usize,
    /// KQ by tinyBLAS on f16-rounded q (batched H3) instead of `vec_dot`.
    pub kq_tinyblas: bool,
    /// How probabilities × V is computed.
    pub pv: F16Path,
}

pub use crate::model::ops::rope_tables;

/// `i32` kernel argument from a size, or a typed error when it does not fit.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn arg_i32(op: &'static str, what: &str, v: usize) -> Result<i32, CudaError> {
    i32::try_from(v).map_err(|_| CudaError::Shape {
        op,
        why: format!("{what} = {v} exceeds i32"),
    })
}

/// A shape check that returns a typed error instead of panicking.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn check(op: &'static str, ok: bool, why: impl FnOnce() -> String) -> Result<(), CudaError> {
    if ok {
        Ok(())
    } else {
        Err(CudaError::Shape { op, why: why() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_parses() {
        assert_eq!("cpu".parse::<Device>(), Ok(Device::Cpu));
        assert_eq!("cuda".parse::<Device>(), Ok(Device::Cuda(0)));
        assert_eq!("cuda:3".parse::<Device>(), Ok(Device::Cuda(3)));
        assert!(matches!("gpu".parse::<Device>(), Err(CudaError::UnknownDevice(_))));
    }

    #[test]
    fn rope_tables_match_the_cpu_cache() {
        let (cos, sin) = rope_tables(8, 500000.0, 1.0, 5);
        let cache = crate::model::ops::RopeCache::new(8, 500000.0, 1.0, 5);
        let oracle =
            crate::kernels::Dispatcher::new(crate::kernels::KernelChoice::Force(crate::kernels::Family::Scalar));
        let oracle = oracle.expect("the scalar family always builds");
        for p in 0..5 {
            let mut x: Vec<f32> = (0..8).map(|i| i as f32 * 0.37 - 1.0).collect();
            let y = x.clone();
            cache.apply(&oracle, &mut x, p);
            for i in 0..4 {
                let (c, s) = (cos[p * 4 + i], sin[p * 4 + i]);
                assert_eq!(x[i].to_bits(), y[i].mul_add(c, -(y[i + 4] * s)).to_bits());
                assert_eq!(x[i + 4].to_bits(), y[i].mul_add(s, y[i + 4] * c).to_bits());
            }
        }
    }

    #[test]
    fn every_kernel_name_is_in_the_source() {
        for k in source::KERNELS {
            assert!(source::SRC.contains(&format!("__global__ void {k}(")), "{k}");
        }
        assert!(!source::SRC.contains('\0'));
    }
}
