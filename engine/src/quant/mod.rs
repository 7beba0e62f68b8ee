//! Quantization methods: how a linear layer's weights are stored and multiplied.
//!
//! A method is a type implementing [`QuantMethod`]; [`method_for`] builds one per weight tensor at load, from
//! the tensor's [`Flavor`] — the only place that matches on weight types. The forward pass calls the trait
//! (and the fused I2_S dispatch reads [`QuantMethod::i2s`], the method's fusable I2_S view).
//!
//! Adding a weight type: one file here implementing [`QuantMethod`] with its kernels behind the dispatcher,
//! and one arm in [`method_for`]; for the CUDA backend, its `upload` to a device form (feature `cuda`).

mod dense;
mod i2s;
mod q8_0;
mod tl;
mod tq;

use std::fmt;
use std::sync::Arc;

use crate::flavor::Flavor;
use crate::kernels::{scalar_arm, Dispatcher, F16Matrix, F16Path, I2sEpilogue, I2sMatrix, SimdOrder};

pub use dense::DenseF16;
pub use i2s::I2s;
pub use q8_0::Q8_0;
pub use tq::Tq;

/// Which reference implementation a weight type belongs to (what `--numerics auto` follows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// bitnet.cpp's own type (I2_S).
    BitnetCpp,
    /// Upstream llama.cpp's type (TQ2_0, TQ1_0).
    LlamaCpp,
    /// Any reference computes it (dense types).
    Any,
}

/// The numerics choices a matmul depends on, fixed per session.
#[derive(Clone, Copy, Debug)]
pub struct MatmulCx<'a> {
    pub disp: &'a Dispatcher,
    /// I2_S float epilogue (spec §5.3; H2).
    pub i2s_epilogue: I2sEpilogue,
    /// ≥ 2-row F16 products round their activations to f16 first (H3).
    pub f16_rounded_act: bool,
    /// TQ lanes contract into FMAs (U1).
    pub tq_fused: bool,
    /// The reference build's SIMD float order (F16 kernels and which shapes tinyBLAS serves).
    pub order: SimdOrder,
}

impl MatmulCx<'_> {
    /// The F16 matmul path for `rows` activation rows of length `k` (spec §6.5; H3): tinyBLAS where the
    /// reference build's `llamafile_sgemm` takes the shape, else `ggml_vec_dot_f16` on f16 activations. The
    /// aarch64 fp16 build's tinyBLAS takes only f16 activations.
    pub fn f16_path(&self, rows: usize, k: usize) -> F16Path {
        if self.order != SimdOrder::Avx512 && !scalar_arm::tinyblas_serves(self.order, rows, k) {
            return F16Path::VecDot;
        }
        match rows {
            1 => F16Path::VecDot,
            _ if self.f16_rounded_act || self.order == SimdOrder::NeonFp16 => F16Path::TinyBlasF16Act,
            _ => F16Path::TinyBlas,
        }
    }
}

/// A weight's device form, or why it has none ([`QuantMethod::upload`]).
#[cfg(feature = "cuda")]
pub type Upload = Result<crate::kernels::cuda::DevWeight, crate::kernels::cuda::CudaError>;

#[cfg(feature = "cuda")]
use crate::kernels::cuda::CudaBackend;

/// The shape of a weight: `rows` outputs of `k` inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub rows: usize,
    pub k: usize,
}

impl Shape {
    /// `Ok` when the row length is a multiple of `multiple`, the block of type `ty`; else
    /// [`QuantError::RowLength`] naming tensor `name`.
    fn check_row_length(self, name: &str, ty: &'static str, multiple: usize) -> Result<(), QuantError> {
        if self.k.is_multiple_of(multiple) {
            return Ok(());
        }
        Err(QuantError::RowLength {
            name: name.to_owned(),
            ty,
            k: self.k,
            multiple,
        })
    }
}

/// A linear layer's weight type: decodes its bytes and multiplies through the dispatcher.
pub trait QuantMethod: Send + Sync + fmt::Debug {
    /// The type's name as reports spell it (`i2_s`, `tq2_0`, `f16`).
    fn type_name(&self) -> &'static str;

    /// Which reference this type belongs to.
    fn origin(&self) -> Origin;

    /// `y[t·rows + r] = W_r · x_t` for `n` activation rows of `data` (the weight's bytes, as prepared at
    /// load); every element of `y[..n·rows]` is written.
    fn matmul(&self, data: &[u8], shape: Shape, cx: &MatmulCx, x: &[f32], n: usize, y: &mut [f32]);

    /// The weight as an I2_S matrix, for methods whose products can be fused into one I2_S dispatch.
    fn i2s<'a>(&self, _data: &'a [u8], _shape: Shape) -> Option<I2sMatrix<'a>> {
        None
    }

    /// The weight as a dense f16 matrix.
    fn f16<'a>(&self, _data: &'a [u8], _shape: Shape) -> Option<F16Matrix<'a>> {
        None
    }

    /// Row `r` as f32 into `out` (`ggml_get_rows`, how a token embedding is looked up): through the f16 view
    /// by default; `None` for a method an embedding cannot be stored in.
    fn get_row(&self, data: &[u8], shape: Shape, r: usize, out: &mut [f32]) -> Option<()> {
        let w = self.f16(data, shape)?;
        let k = shape.k;
        for (o, v) in out.iter_mut().zip(&w.data[r * k..(r + 1) * k]) {
            *o = v.to_f32();
        }
        Some(())
    }

    /// The weight on CUDA device `be`, in the form a device kernel multiplies; a method without a device
    /// kernel is [`CudaError::Unsupported`](crate::kernels::cuda::CudaError::Unsupported) naming its type.
    #[cfg(feature = "cuda")]
    fn upload(&self, _be: &CudaBackend, _data: &[u8], _shape: Shape) -> Upload {
        Err(crate::kernels::cuda::CudaError::Unsupported(format!(
            "{} weights have no CUDA kernel",
            self.type_name()
        )))
    }
}

/// Why a weight tensor cannot be made into a method.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum QuantError {
    #[error("tensor {name:?} has type {ty}, which this engine cannot compute with")]
    Unsupported { name: String, ty: &'static str },
    #[error("tensor {name:?}: {ty} needs a row length that is a multiple of {multiple}, got {k}")]
    RowLength {
        name: String,
        ty: &'static str,
        k: usize,
        multiple: usize,
    },
    #[error("tensor {name:?}: {source}")]
    Tl {
        name: String,
        source: crate::flavor::TlError,
    },
}

/// A method built for one tensor, and the bytes it reads when they are not the file's (a repack or an
/// aligned copy).
#[derive(Debug)]
pub struct Prepared {
    pub method: Arc<dyn QuantMethod>,
    pub owned: Option<Vec<u8>>,
}

/// Build the method of weight `name` (`data`: its bytes in the file) from its flavor. The one place that
/// matches on weight types.
pub fn method_for(name: &str, flavor: &Flavor, data: &[u8], shape: Shape) -> Result<Prepared, QuantError> {
    match flavor {
        Flavor::I2s { layout, scale, .. } => I2s::prepare(name, *layout, *scale, data, shape),
        Flavor::Tl {
            format, params, scale, ..
        } => tl::prepare(name, *format, *params, *scale, data, shape),
        Flavor::Tq2_0 => Tq::prepare(name, crate::kernels::tq::TqType::Tq2_0, shape),
        Flavor::Tq1_0 => Tq::prepare(name, crate::kernels::tq::TqType::Tq1_0, shape),
        Flavor::F16 => Ok(DenseF16::prepare(data)),
        Flavor::Q8_0 => Q8_0::prepare(name, shape),
        other => Err(QuantError::Unsupported {
            name: name.to_owned(),
            ty: match other {
                Flavor::Unsupported { ggml_type } => ggml_type,
                f => f.name(),
            },
        }),
    }
}
