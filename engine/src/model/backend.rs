//! The ops a forward pass is made of, as a trait: [`Session`](super::Session) runs the one forward pass
//! (op order, shapes, traces) and an [`Ops`] backend computes each op where its buffers live — on the CPU
//! through the dispatcher (`model::cpu::CpuOps`) or on a CUDA device (`model::cuda::CudaOps`, feature
//! `cuda`).
//!
//! A backend owns the activation buffers (named by [`Buf`]), the KV cache and the RoPE tables; the forward
//! pass names weights by role ([`Lin`], [`Norm`]) and the backend resolves them to its own copy (the model's
//! bytes on the CPU, uploaded ones on a device). One virtual call per op per layer.

use std::borrow::Cow;

use super::weights::{Layer, Linear, Weights};
use super::{Logits, ModelError};

/// An activation buffer of the forward pass, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buf {
    /// The residual stream `[n][n_embd]`.
    X,
    /// A normed copy of the residual (attention, FFN and output norms).
    H,
    Q,
    K,
    V,
    /// Attention output `[n][n_head·head_dim]`.
    Attn,
    AttnNorm,
    /// A projection back to `n_embd` (`wo`, `ffn_down`).
    Proj,
    Up,
    /// Gate, then activation, then activation × up.
    Gate,
    FfnNorm,
}

impl Buf {
    /// How many buffers there are (for backends that keep them in an array).
    pub const COUNT: usize = 11;

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A linear weight of a layer, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lin {
    Q,
    K,
    V,
    O,
    Up,
    Gate,
    Down,
}

impl Lin {
    /// This role's weight in `layer`.
    pub fn of(self, layer: &Layer) -> &Linear {
        match self {
            Lin::Q => &layer.wq,
            Lin::K => &layer.wk,
            Lin::V => &layer.wv,
            Lin::O => &layer.wo,
            Lin::Up => &layer.ffn_up,
            Lin::Gate => &layer.ffn_gate,
            Lin::Down => &layer.ffn_down,
        }
    }
}

/// An RMS norm weight, by role (`usize`: the layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    Attn(usize),
    AttnSub(usize),
    Ffn(usize),
    FfnSub(usize),
    Output,
}

impl Norm {
    /// This role's weight in `w`; `None` for a sub-norm the architecture does not have.
    pub fn of(self, w: &Weights) -> Option<&[f32]> {
        match self {
            Norm::Attn(il) => Some(&w.layers[il].attn_norm),
            Norm::AttnSub(il) => w.layers[il].attn_sub_norm.as_deref(),
            Norm::Ffn(il) => Some(&w.layers[il].ffn_norm),
            Norm::FfnSub(il) => w.layers[il].ffn_sub_norm.as_deref(),
            Norm::Output => Some(&w.output_norm),
        }
    }
}

/// Raw attention scores and softmax probabilities, each `[head][query][n_kv]` (traces only).
pub type AttentionProbs = (Vec<f32>, Vec<f32>);

/// Where the queries of one attention call sit.
#[derive(Clone, Copy, Debug)]
pub struct AttnAt {
    pub layer: usize,
    /// Queries, at positions `p0..p0 + n`.
    pub n: usize,
    pub p0: usize,
    /// Cells visited.
    pub n_kv: usize,
    /// Also return the scores and probabilities (a trace wants them).
    pub capture: bool,
}

/// The ops of one forward pass on one device. Each op reads and writes the backend's own buffers; `n` is the
/// ubatch's token count. Errors are typed (a CPU backend never fails). `Send`, so a session can move to another
/// thread as before.
pub trait Ops: Send {
    /// The token embeddings of `tokens` (`ggml_get_rows`) into [`Buf::X`].
    fn embed(&mut self, tokens: &[u32]) -> Result<(), ModelError>;

    /// RMS norm of `n` rows of `k` values of `src`, times `norm`'s weight, into `dst`.
    fn rms_norm(&mut self, src: Buf, norm: Norm, dst: Buf, n: usize, k: usize) -> Result<(), ModelError>;

    /// `dst = W·src` (then the weight's scale and bias) for each `(W, dst)` of layer `il`; the backend may fuse
    /// products over the same activations.
    fn matmuls(&mut self, il: usize, src: Buf, n: usize, outs: &[(Lin, Buf)]) -> Result<(), ModelError>;

    /// RoPE on [`Buf::Q`] and [`Buf::K`] in place for positions `p0..p0 + n`, then K and V into layer `il`'s
    /// cache cells.
    fn rope_store(&mut self, il: usize, n: usize, p0: usize) -> Result<(), ModelError>;

    /// Multi-head attention of [`Buf::Q`] over the cache into [`Buf::Attn`]; with `at.capture`, the scores
    /// and probabilities too.
    fn attention(&mut self, at: AttnAt) -> Result<Option<AttentionProbs>, ModelError>;

    /// The FFN activation of [`Buf::Gate`] in place (squared ReLU, else SiLU).
    fn ffn_act(&mut self, relu2: bool, len: usize) -> Result<(), ModelError>;

    /// `dst *= src` element-wise over `len` values.
    fn mul(&mut self, dst: Buf, src: Buf, len: usize) -> Result<(), ModelError>;

    /// `dst += src` element-wise over `len` values (the residual).
    fn add(&mut self, dst: Buf, src: Buf, len: usize) -> Result<(), ModelError>;

    /// The LM head's product (no scale or bias, as bitnet.cpp) on the requested rows of `n` rows of `src`.
    fn logits(&mut self, src: Buf, n: usize, want: Logits) -> Result<Vec<f32>, ModelError>;

    /// A buffer's values on the host (for traces).
    fn read(&self, b: Buf) -> Result<Cow<'_, [f32]>, ModelError>;

    /// Forget the cached keys and values.
    fn clear(&mut self) -> Result<(), ModelError>;
}

/// The numerics choices every matmul of a session with `numerics` follows (any backend).
pub(crate) fn matmul_cx<'a>(
    numerics: &super::Numerics,
    disp: &'a crate::kernels::Dispatcher,
) -> crate::quant::MatmulCx<'a> {
    use super::Switch;
    use crate::kernels::{I2sEpilogue, SimdOrder};
    crate::quant::MatmulCx {
        disp,
        i2s_epilogue: if numerics.has(Switch::H2) {
            I2sEpilogue::MultiplyRatio
        } else if numerics.simd_order() == SimdOrder::Avx512 {
            I2sEpilogue::Divide
        } else {
            I2sEpilogue::DivideExact
        },
        f16_rounded_act: numerics.f16_rounded_activations(),
        tq_fused: numerics.has(Switch::U1),
        order: numerics.simd_order(),
    }
}
