//! Hyper-parameters, weights, the BitNet forward pass over its ops backends (CPU, CUDA), KV cache and numerics
//! profiles.

pub mod backend;
mod bitnet;
mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
pub mod hparams;
pub mod kv_cache;
pub mod numerics;
pub mod ops;
pub mod probe;
pub mod trace;
pub mod weights;

pub use bitnet::{Logits, Model, Session, TraceSink};
pub use hparams::{Arch, HParams, HParamsError};
pub use numerics::{Numerics, Profile, Switch};

use crate::gguf::{GgufError, LoadError};

/// Why a model cannot be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    HParams(#[from] HParamsError),
    #[error(transparent)]
    Kernel(#[from] crate::kernels::KernelError),
    #[error(transparent)]
    Flavor(#[from] crate::flavor::FlavorError),
    #[error(transparent)]
    Quant(#[from] crate::quant::QuantError),
    #[error("tensor {0:?} is missing")]
    MissingTensor(String),
    #[error("tensor {name:?} has shape {found:?}, expected {expected:?}")]
    BadShape {
        name: String,
        found: Vec<u64>,
        expected: Vec<u64>,
    },
    #[error("tensor {name:?} has type {ty}, which this engine cannot compute with")]
    UnsupportedType { name: String, ty: &'static str },
    #[error("{0}")]
    UnexpectedTensor(String),
    #[error("token id {id} is outside the vocabulary ({n_vocab} tokens)")]
    TokenOutOfRange { id: u32, n_vocab: usize },
    #[error("context full: position {pos} needs more than the {n_ctx} cells of the KV cache")]
    ContextFull { pos: usize, n_ctx: usize },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Alloc(#[from] ops::AllocError),
    /// The CUDA backend could not start or run this model (feature off, no driver, no device kernel for a
    /// weight type or numerics profile, a driver call that failed).
    #[error(transparent)]
    Cuda(#[from] crate::kernels::cuda::CudaError),
    #[error(
        "wrong number of tensors: the file has {n_file}, the weights for {block_count} = {n_layer} use {n_used}; \
         not used: {} (bitnet.cpp refuses such a file: llama_model_loader's \"wrong number of tensors\")",
        fmt_names(.unused)
    )]
    UnusedTensors {
        n_file: usize,
        n_used: usize,
        block_count: String,
        n_layer: usize,
        unused: Vec<String>,
    },
}

/// At most 8 names, then how many more.
fn fmt_names(names: &[String]) -> String {
    let shown = names.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
    match names.len() {
        n if n > 8 => format!("{shown} and {} more", n - 8),
        _ => shown,
    }
}
