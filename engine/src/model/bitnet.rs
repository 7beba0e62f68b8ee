//! The BitNet forward pass (`build_bitnet_158` / `build_bitnet` of bitnet.cpp's llama.cpp fork),
//! in the spec's order (§6.3) and with its rounding points (§6.4–6.6, §12).

use std::path::Path;
use std::sync::Arc;

use crate::flavor::{FlavorOptions, ModelFlavors};
use crate::gguf::GgufFile;
use crate::kernels::cuda::CudaBackend;
use crate::kernels::Dispatcher;
use crate::quant::Origin;

use super::backend::{AttnAt, Buf, Lin, Norm, Ops};
use super::cpu::CpuOps;
use super::hparams::{Arch, HParams};
use super::numerics::{Numerics, Profile, Switch};
use super::weights::Weights;
use super::ModelError;

/// A loaded model: the memory-mapped file, its hyper-parameters, flavors and weight views. Immutable.
#[derive(Debug)]
pub struct Model {
    pub file: Arc<GgufFile>,
    pub hparams: HParams,
    /// What every tensor's bytes are (foreign layouts were refused before we got here).
    pub flavors: ModelFlavors,
    pub weights: Weights,
}

/// Which rows of logits a decode call returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// Every position of the ubatch (`logits_all`).
    All,
    /// Only the last position (what generation requests; the LM head then runs on one row).
    Last,
}

impl Model {
    pub fn open(path: impl AsRef<Path>) -> Result<Model, ModelError> {
        Model::open_with(path, &FlavorOptions::default())
    }

    /// Open with flavor choices (e.g. a forced I2_S layout).
    /// The model's own path is where a TL file's `kernel_config.ini` is looked for, unless set.
    pub fn open_with(path: impl AsRef<Path>, opts: &FlavorOptions) -> Result<Model, ModelError> {
        let mut opts = opts.clone();
        opts.tl.model_path.get_or_insert_with(|| path.as_ref().to_path_buf());
        Model::from_file(Arc::new(GgufFile::open(path)?), &opts)
    }

    pub fn from_file(file: Arc<GgufFile>, opts: &FlavorOptions) -> Result<Model, ModelError> {
        let hparams = HParams::from_gguf(&file)?;
        let flavors = ModelFlavors::classify(&file, opts)?;
        let weights = Weights::load(&file, &hparams, &flavors)?;
        Ok(Model {
            file,
            hparams,
            flavors,
            weights,
        })
    }

    /// Move the matmul weights from the memory map into huge-page-backed anonymous memory
    /// ([`Weights::make_resident`]); returns the bytes copied.
    pub fn make_resident(&mut self) -> Result<usize, ModelError> {
        self.weights.make_resident(&self.file)
    }

    /// The numerics profile `auto` picks for this model, with the reason.
    pub fn auto_numerics(&self) -> Numerics {
        let wq = &self.weights.layers[0].wq;
        match wq.method.origin() {
            Origin::LlamaCpp => Numerics::profile(
                Profile::LlamaCpp,
                format!("{} weights are upstream llama.cpp's ternary types", wq.type_name()),
            ),
            Origin::BitnetCpp => Numerics::profile(
                Profile::BitnetCpp2025,
                format!("{} weights are bitnet.cpp's type", wq.type_name().to_uppercase()),
            ),
            Origin::Any if self.hparams.arch == Arch::BitnetB158 => Numerics::profile(
                Profile::BitnetCpp2025,
                "architecture bitnet-b1.58 exists only in bitnet.cpp",
            ),
            _ => Numerics::profile(Profile::BitnetCpp2025, "default reference (verified)"),
        }
    }
}

/// Receives named intermediate tensors of the forward pass (see [`crate::model::trace`]).
pub trait TraceSink: Send {
    /// Whether tensors of this layer (`None` = after the last layer) are wanted.
    fn wants(&self, layer: Option<usize>) -> bool;
    /// One tensor: `rows` × `cols` f32 values, row-major, after the op named `name`.
    fn record(&mut self, name: &'static str, layer: Option<usize>, rows: usize, cols: usize, data: &[f32]);
}

/// One sequence being evaluated: the forward pass (op order, shapes, traces) over an [`Ops`] backend that
/// holds the KV cache and activations (the CPU's dispatcher, or a CUDA device).
pub struct Session<'m> {
    model: &'m Model,
    numerics: Numerics,
    ops: Box<dyn Ops + 'm>,
    /// KV cache cells.
    size: usize,
    n_past: usize,
    trace: Option<Box<dyn TraceSink + 'm>>,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("numerics", &self.numerics)
            .field("n_past", &self.n_past)
            .field("n_ctx", &self.size)
            .finish()
    }
}

impl<'m> Session<'m> {
    /// A session on the CPU with a KV cache of `n_ctx` cells (padded as the reference pads it).
    ///
    /// # Panics
    /// When the cache cannot be allocated; [`Session::try_new`] returns that as an error.
    pub fn new(model: &'m Model, disp: &'m Dispatcher, numerics: Numerics, n_ctx: usize) -> Session<'m> {
        match Session::try_new(model, disp, numerics, n_ctx) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`Session::new`] with the KV cache and RoPE tables allocated fallibly.
    pub fn try_new(
        model: &'m Model,
        disp: &'m Dispatcher,
        numerics: Numerics,
        n_ctx: usize,
    ) -> Result<Session<'m>, ModelError> {
        Session::try_new_on(None, model, disp, numerics, n_ctx)
    }

    /// A session on `cuda` (a CUDA device) or, with `None`, the CPU. On a device: weights uploaded once, KV
    /// cache and activations there, the kernel IDs launched recorded in `disp`'s log; a weight type, numerics
    /// profile or shape without a device kernel is a [`ModelError::Cuda`] naming it.
    pub fn try_new_on(
        cuda: Option<&'m CudaBackend>,
        model: &'m Model,
        disp: &'m Dispatcher,
        numerics: Numerics,
        n_ctx: usize,
    ) -> Result<Session<'m>, ModelError> {
        let size = Session::cells(&numerics, n_ctx)?;
        let ops: Box<dyn Ops + 'm> = match cuda {
            None => Box::new(CpuOps::new(model, disp, &numerics, size)?),
            #[cfg(feature = "cuda")]
            Some(be) => Box::new(super::cuda::CudaOps::new(model, disp, be, &numerics, size)?),
            #[cfg(not(feature = "cuda"))]
            Some(be) => be.unreachable(),
        };
        Ok(Session::with_ops(model, numerics, ops, size))
    }

    fn with_ops(model: &'m Model, numerics: Numerics, ops: Box<dyn Ops + 'm>, size: usize) -> Session<'m> {
        Session {
            model,
            numerics,
            ops,
            size,
            n_past: 0,
            trace: None,
        }
    }

    /// KV cache cells for a context of `n_ctx`: padded to 256 (llama.cpp) or 32, and to 256 under H4.
    fn cells(numerics: &Numerics, n_ctx: usize) -> Result<usize, ModelError> {
        let pad = if numerics.profile == Profile::LlamaCpp { 256 } else { 32 };
        let too_large = || ModelError::Invalid(format!("a context of {n_ctx} cells is too large"));
        let mut size = n_ctx.max(1).checked_next_multiple_of(pad).ok_or_else(too_large)?;
        if numerics.has(Switch::H4) {
            size = size.checked_next_multiple_of(256).ok_or_else(too_large)?;
        }
        Ok(size)
    }

    /// Send intermediate tensors to `sink` from now on (`None` turns tracing off).
    pub fn set_trace(&mut self, sink: Option<Box<dyn TraceSink + 'm>>) {
        self.trace = sink;
    }

    /// Take the trace sink back (to read what it collected).
    pub fn take_trace(&mut self) -> Option<Box<dyn TraceSink + 'm>> {
        self.trace.take()
    }

    fn wants(&self, layer: Option<usize>) -> bool {
        self.trace.as_ref().is_some_and(|t| t.wants(layer))
    }

    /// Trace buffer `b` (rows of `cols`) as tensor `name`, when the sink wants this layer.
    fn tr(&mut self, name: &'static str, layer: Option<usize>, cols: usize, b: Buf) -> Result<(), ModelError> {
        if cols > 0 && self.wants(layer) {
            let data = self.ops.read(b)?;
            if let Some(t) = self.trace.as_mut() {
                t.record(name, layer, data.len() / cols, cols, &data);
            }
        }
        Ok(())
    }

    /// Trace host values.
    fn tr_host(&mut self, name: &'static str, layer: Option<usize>, cols: usize, data: &[f32]) {
        if let Some(t) = self.trace.as_mut() {
            if t.wants(layer) && cols > 0 {
                t.record(name, layer, data.len() / cols, cols, data);
            }
        }
    }

    pub fn numerics(&self) -> &Numerics {
        &self.numerics
    }

    pub fn n_past(&self) -> usize {
        self.n_past
    }

    pub fn n_ctx(&self) -> usize {
        self.size
    }

    /// Forget the sequence (llama_kv_cache_clear).
    pub fn clear(&mut self) -> Result<(), ModelError> {
        self.ops.clear()?;
        self.n_past = 0;
        Ok(())
    }

    /// Logits of every prompt position: `batch` = one ubatch, otherwise one token per decode.
    pub fn eval_prompt(&mut self, tokens: &[u32], batch: bool) -> Result<Vec<f32>, ModelError> {
        if batch {
            return self.decode(tokens, Logits::All);
        }
        let mut out = Vec::with_capacity(tokens.len() * self.model.hparams.n_vocab);
        for &t in tokens {
            out.extend(self.decode(&[t], Logits::All)?);
        }
        Ok(out)
    }

    /// Greedy continuation: `n` tokens, the first the argmax of `last_logits` (lowest id wins ties),
    /// each later one from a one-token decode — how the references record their greedy ids.
    pub fn greedy(&mut self, last_logits: &[f32], n: usize) -> Result<Vec<u32>, ModelError> {
        let mut out = Vec::with_capacity(n);
        let mut next = super::ops::argmax(last_logits) as u32;
        for i in 0..n {
            out.push(next);
            if i + 1 == n || self.n_past + 1 > self.size {
                break;
            }
            next = super::ops::argmax(&self.decode(&[next], Logits::Last)?) as u32;
        }
        Ok(out)
    }

    /// Evaluate one ubatch at the next positions; returns logits for the requested rows.
    pub fn decode(&mut self, tokens: &[u32], want: Logits) -> Result<Vec<f32>, ModelError> {
        let n = self.check_ubatch(tokens)?;
        let p0 = self.n_past;
        self.ops.embed(tokens)?;
        let pad = self.numerics.kv_pad();
        let n_kv = self.size.min(pad.max((p0 + n).next_multiple_of(pad)));
        for il in 0..self.model.hparams.n_layer {
            self.attention_block(il, n, p0, n_kv)?;
            self.ffn_block(il, n)?;
        }
        self.n_past += n;
        let logits = self.head(n, want)?;
        self.tr_host("result_output", None, self.model.hparams.n_vocab, &logits);
        Ok(logits)
    }

    /// The ubatch's length, after checking it is non-empty, fits the cache and names only known tokens.
    fn check_ubatch(&self, tokens: &[u32]) -> Result<usize, ModelError> {
        let (n, p0, n_vocab) = (tokens.len(), self.n_past, self.model.hparams.n_vocab);
        if n == 0 {
            return Err(ModelError::Invalid("decode called with no tokens".into()));
        }
        if p0 + n > self.size {
            return Err(ModelError::ContextFull {
                pos: p0 + n - 1,
                n_ctx: self.size,
            });
        }
        if let Some(&id) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(ModelError::TokenOutOfRange { id, n_vocab });
        }
        Ok(n)
    }

    /// Attention half of layer `il`: norm, fused Q/K/V, RoPE into the cache, attention, sub-norm, output
    /// projection and the residual add into [`Buf::X`].
    fn attention_block(&mut self, il: usize, n: usize, p0: usize, n_kv: usize) -> Result<(), ModelError> {
        let hp = &self.model.hparams;
        let (e, nq, nkv, l) = (hp.n_embd, hp.n_head * hp.head_dim, hp.n_head_kv * hp.head_dim, Some(il));
        let has_sub_norm = self.model.weights.layers[il].attn_sub_norm.is_some();
        self.ops.rms_norm(Buf::X, Norm::Attn(il), Buf::H, n, e)?;
        self.tr("attn_norm", l, e, Buf::H)?;
        self.ops
            .matmuls(il, Buf::H, n, &[(Lin::Q, Buf::Q), (Lin::K, Buf::K), (Lin::V, Buf::V)])?;
        self.tr("Qcur", l, nq, Buf::Q)?;
        self.tr("Kcur", l, nkv, Buf::K)?;
        self.tr("Vcur", l, nkv, Buf::V)?;
        self.ops.rope_store(il, n, p0)?;
        self.tr("Qcur_rope", l, nq, Buf::Q)?;
        self.tr("Kcur_rope", l, nkv, Buf::K)?;
        let capture = self.wants(l);
        let at = AttnAt {
            layer: il,
            n,
            p0,
            n_kv,
            capture,
        };
        if let Some((kq, sm)) = self.ops.attention(at)? {
            self.tr_host("kq", l, n_kv, &kq);
            self.tr_host("kq_soft_max", l, n_kv, &sm);
        }
        self.tr("kqv_out", l, nq, Buf::Attn)?;
        // `build_llama` has no sub-norm: `wo` reads the attention output directly.
        let sub = has_sub_norm.then_some((Norm::AttnSub(il), Buf::AttnNorm));
        let names = ["attn_sub_norm", "attn_out", "ffn_inp"];
        self.close_block(il, n, (Buf::Attn, nq), sub, Lin::O, names)
    }

    /// A block's last steps: the optional sub-norm of `src` (`cols` wide) into its buffer, the projection `lin`
    /// back to `n_embd` and the residual add into [`Buf::X`], traced under `names`.
    fn close_block(
        &mut self,
        il: usize,
        n: usize,
        (src, cols): (Buf, usize),
        sub: Option<(Norm, Buf)>,
        lin: Lin,
        names: [&'static str; 3],
    ) -> Result<(), ModelError> {
        let (e, l) = (self.model.hparams.n_embd, Some(il));
        let proj_in = match sub {
            Some((norm, dst)) => {
                self.ops.rms_norm(src, norm, dst, n, cols)?;
                self.tr(names[0], l, cols, dst)?;
                dst
            }
            None => src,
        };
        self.ops.matmuls(il, proj_in, n, &[(lin, Buf::Proj)])?;
        self.tr(names[1], l, e, Buf::Proj)?;
        self.ops.add(Buf::X, Buf::Proj, n * e)?;
        self.tr(names[2], l, e, Buf::X)
    }

    /// FFN half of layer `il`: norm, fused up/gate, activation, product, sub-norm, down projection and the
    /// residual add into [`Buf::X`].
    fn ffn_block(&mut self, il: usize, n: usize) -> Result<(), ModelError> {
        let hp = &self.model.hparams;
        let (e, nff, l) = (hp.n_embd, hp.n_ff, Some(il));
        let relu2 = hp.arch == Arch::BitnetB158 && !self.numerics.has(Switch::H1);
        let has_sub_norm = self.model.weights.layers[il].ffn_sub_norm.is_some();
        self.ops.rms_norm(Buf::X, Norm::Ffn(il), Buf::H, n, e)?;
        self.tr("ffn_norm", l, e, Buf::H)?;
        self.ops
            .matmuls(il, Buf::H, n, &[(Lin::Up, Buf::Up), (Lin::Gate, Buf::Gate)])?;
        self.tr("ffn_up", l, nff, Buf::Up)?;
        self.tr("ffn_gate", l, nff, Buf::Gate)?;
        self.ops.ffn_act(relu2, n * nff)?;
        self.tr("ffn_act", l, nff, Buf::Gate)?;
        self.ops.mul(Buf::Gate, Buf::Up, n * nff)?;
        self.tr("ffn_out", l, nff, Buf::Gate)?;
        let sub = has_sub_norm.then_some((Norm::FfnSub(il), Buf::FfnNorm));
        self.close_block(
            il,
            n,
            (Buf::Gate, nff),
            sub,
            Lin::Down,
            ["ffn_sub_norm", "ffn_down", "l_out"],
        )
    }

    /// Output norm and the LM head (tied `token_embd`, or arch llama's `output.weight`) on the requested rows.
    fn head(&mut self, n: usize, want: Logits) -> Result<Vec<f32>, ModelError> {
        let e = self.model.hparams.n_embd;
        self.ops.rms_norm(Buf::X, Norm::Output, Buf::H, n, e)?;
        self.tr("result_norm", None, e, Buf::H)?;
        self.ops.logits(Buf::H, n, want)
    }
}

/// A session can move between threads (a server hands it to a worker), whichever backend it runs on.
const _: () = {
    const fn is_send<T: Send>() {}
    is_send::<Session<'static>>();
};
