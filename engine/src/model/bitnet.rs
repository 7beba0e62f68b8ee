//! The BitNet forward pass (`build_bitnet_158` / `build_bitnet` of bitnet.cpp's llama.cpp fork),
//! in the spec's order (§6.3) and with its rounding points (§6.4–6.6, §12).

use std::path::Path;
use std::sync::Arc;

use half::f16;
use rayon::prelude::*;

use crate::flavor::{FlavorOptions, ModelFlavors};
use crate::gguf::GgufFile;
use crate::kernels::{
    scalar_arm, AttentionKernels, Dispatcher, I2sEpilogue, I2sProduct, KqKernel, PvKernel, SimdOrder,
};
use crate::quant::{MatmulCx, Origin};

use super::hparams::{Arch, HParams};
use super::kv_cache::KvCache;
use super::numerics::{Numerics, Profile, Switch};
use super::ops::{rms_norm_rows, RopeCache};
use super::weights::{Layer, Linear, Weights};
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

/// Raw attention scores and softmax probabilities, each `[head][query][n_kv]` (traces only).
type AttentionProbs = (Vec<f32>, Vec<f32>);

/// One head's attention outputs `[query][head_dim]`, and (traces only) its scores and probabilities.
type HeadOut = (Vec<f32>, Vec<f32>, Vec<f32>);

/// What every head of one attention call shares.
#[derive(Clone, Copy)]
struct HeadShape {
    head_dim: usize,
    n_head: usize,
    il: usize,
    n: usize,
    p0: usize,
    n_kv: usize,
    kq_scale: f32,
    capture: bool,
}

/// Activation buffers of the forward pass, kept across `decode` calls so that a token costs no allocation
/// (fresh multi-megabyte buffers are page-faulted and zeroed by the kernel on every call).
#[derive(Default)]
struct Workspace {
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    attn_norm: Vec<f32>,
    proj: Vec<f32>,
    up: Vec<f32>,
    gate: Vec<f32>,
    ffn_norm: Vec<f32>,
}

impl Workspace {
    /// `buf` as exactly `len` elements (old contents kept or zero-filled; every user overwrites them).
    fn sized(buf: &mut Vec<f32>, len: usize) -> &mut Vec<f32> {
        buf.resize(len, 0.0);
        buf
    }
}

/// One sequence being evaluated: KV cache, position, numerics and the kernel dispatcher.
pub struct Session<'m> {
    model: &'m Model,
    disp: &'m Dispatcher,
    numerics: Numerics,
    kv: KvCache,
    rope: RopeCache,
    n_past: usize,
    trace: Option<Box<dyn TraceSink + 'm>>,
    ws: Workspace,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("numerics", &self.numerics)
            .field("n_past", &self.n_past)
            .field("n_ctx", &self.kv.size)
            .finish()
    }
}

impl<'m> Session<'m> {
    /// A session with a KV cache of `n_ctx` cells (padded as the reference pads it).
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
        let hp = &model.hparams;
        let pad = if numerics.profile == Profile::LlamaCpp { 256 } else { 32 };
        let too_large = || ModelError::Invalid(format!("a context of {n_ctx} cells is too large"));
        let mut size = n_ctx.max(1).checked_next_multiple_of(pad).ok_or_else(too_large)?;
        if numerics.has(Switch::H4) {
            size = size.checked_next_multiple_of(256).ok_or_else(too_large)?;
        }
        // The KV cache is allocated first and fallibly: it is far larger than the RoPE tables.
        let kv = KvCache::try_new(hp.n_layer, hp.n_head_kv, hp.head_dim, size)?;
        let rope = RopeCache::with_mode(
            hp.n_rot,
            hp.rope_freq_base,
            hp.rope_freq_scale,
            size,
            hp.arch.rope_neox(),
            model.weights.rope_freqs.as_deref(),
        );
        Ok(Session {
            model,
            disp,
            numerics,
            kv,
            rope,
            n_past: 0,
            trace: None,
            ws: Workspace::default(),
        })
    }

    /// Send intermediate tensors to `sink` from now on (`None` turns tracing off).
    pub fn set_trace(&mut self, sink: Option<Box<dyn TraceSink + 'm>>) {
        self.trace = sink;
    }

    /// Take the trace sink back (to read what it collected).
    pub fn take_trace(&mut self) -> Option<Box<dyn TraceSink + 'm>> {
        self.trace.take()
    }

    fn tr(&mut self, name: &'static str, layer: Option<usize>, cols: usize, data: &[f32]) {
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
        self.kv.size
    }

    /// Forget the sequence (llama_kv_cache_clear).
    pub fn clear(&mut self) {
        self.kv.clear();
        self.n_past = 0;
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
            if i + 1 == n || self.n_past + 1 > self.kv.size {
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
        // The activation buffers are reused across calls (taken out of `self` while `self` is borrowed).
        let mut ws = std::mem::take(&mut self.ws);
        self.embed(tokens, &mut ws.x);
        let pad = self.numerics.kv_pad();
        let n_kv = self.kv.size.min(pad.max((p0 + n).next_multiple_of(pad)));
        for (il, layer) in self.model.weights.layers.iter().enumerate() {
            self.attention_block(il, layer, &mut ws, n, p0, n_kv);
            self.ffn_block(il, layer, &mut ws, n);
        }
        self.n_past += n;
        let logits = self.head(&mut ws, n, want);
        self.ws = ws;
        self.tr("result_output", None, self.model.hparams.n_vocab, &logits);
        Ok(logits)
    }

    /// The ubatch's length, after checking it is non-empty, fits the cache and names only known tokens.
    fn check_ubatch(&self, tokens: &[u32]) -> Result<usize, ModelError> {
        let (n, p0, n_vocab) = (tokens.len(), self.n_past, self.model.hparams.n_vocab);
        if n == 0 {
            return Err(ModelError::Invalid("decode called with no tokens".into()));
        }
        if p0 + n > self.kv.size {
            return Err(ModelError::ContextFull {
                pos: p0 + n - 1,
                n_ctx: self.kv.size,
            });
        }
        if let Some(&id) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(ModelError::TokenOutOfRange { id, n_vocab });
        }
        Ok(n)
    }

    /// The token embeddings (`ggml_get_rows` of `token_embd`: F16 widened, Q8_0 dequantized) as f32, into `x`.
    fn embed(&self, tokens: &[u32], x: &mut Vec<f32>) {
        let (emb, file) = (&self.model.weights.token_embd, &*self.model.file);
        let x = Workspace::sized(x, 0);
        for &t in tokens {
            emb.get_row(file, t as usize, x)
                .expect("token_embd can be looked up by row (checked at load)");
        }
    }

    /// Attention half of layer `il`: norm, fused Q/K/V, RoPE into the cache, attention, sub-norm, output
    /// projection and the residual add into `ws.x`.
    fn attention_block(&mut self, il: usize, layer: &Layer, ws: &mut Workspace, n: usize, p0: usize, n_kv: usize) {
        let hp = &self.model.hparams;
        let (e, hd, nq, nkv) = (
            hp.n_embd,
            hp.head_dim,
            hp.n_head * hp.head_dim,
            hp.n_head_kv * hp.head_dim,
        );
        let (n_head_kv, eps, l) = (hp.n_head_kv, hp.rms_eps, Some(il));
        let Workspace {
            x,
            h,
            q,
            k,
            v,
            attn,
            attn_norm,
            proj,
            ..
        } = ws;
        let h = Workspace::sized(h, n * e);
        rms_norm_rows(x, &layer.attn_norm, eps, h);
        self.tr("attn_norm", l, e, h);
        let (q, k, v) = (
            Workspace::sized(q, n * nq),
            Workspace::sized(k, n * nkv),
            Workspace::sized(v, n * nkv),
        );
        self.mm_fused(
            h,
            n,
            [
                (&layer.wq, &mut q[..]),
                (&layer.wk, &mut k[..]),
                (&layer.wv, &mut v[..]),
            ],
        );
        self.tr("Qcur", l, nq, q);
        self.tr("Kcur", l, nkv, k);
        self.tr("Vcur", l, nkv, v);
        for t in 0..n {
            self.rope.apply(self.disp, &mut q[t * nq..(t + 1) * nq], p0 + t);
            self.rope.apply(self.disp, &mut k[t * nkv..(t + 1) * nkv], p0 + t);
            for kh in 0..n_head_kv {
                let r = t * nkv + kh * hd..t * nkv + (kh + 1) * hd;
                self.kv.store(il, kh, p0 + t, &k[r.clone()], &v[r]);
            }
        }
        self.tr("Qcur_rope", l, nq, q);
        self.tr("Kcur_rope", l, nkv, k);
        let capture = self.trace.as_ref().is_some_and(|t| t.wants(l));
        let attn = Workspace::sized(attn, n * nq);
        if let Some((kq, sm)) = self.attention(il, q, n, p0, n_kv, capture, attn) {
            self.tr("kq", l, n_kv, &kq);
            self.tr("kq_soft_max", l, n_kv, &sm);
        }
        self.tr("kqv_out", l, nq, attn);
        // `build_llama` has no sub-norm: `wo` reads the attention output directly.
        let wo_in: &[f32] = match &layer.attn_sub_norm {
            Some(w) => {
                let attn_norm = Workspace::sized(attn_norm, n * nq);
                rms_norm_rows(attn, w, eps, attn_norm);
                self.tr("attn_sub_norm", l, nq, attn_norm);
                attn_norm
            }
            None => attn,
        };
        let proj = Workspace::sized(proj, n * e);
        self.mm(wo_in, n, &layer.wo, proj);
        self.tr("attn_out", l, e, proj);
        for (xv, ov) in x.iter_mut().zip(proj.iter()) {
            *xv += ov;
        }
        self.tr("ffn_inp", l, e, x);
    }

    /// FFN half of layer `il`: norm, fused up/gate, activation, product, sub-norm, down projection and the
    /// residual add into `ws.x`.
    fn ffn_block(&mut self, il: usize, layer: &Layer, ws: &mut Workspace, n: usize) {
        let hp = &self.model.hparams;
        let (e, nff, eps, l) = (hp.n_embd, hp.n_ff, hp.rms_eps, Some(il));
        let relu2 = hp.arch == Arch::BitnetB158 && !self.numerics.has(Switch::H1);
        let Workspace {
            x,
            h,
            proj,
            up,
            gate,
            ffn_norm,
            ..
        } = ws;
        let h = Workspace::sized(h, n * e);
        rms_norm_rows(x, &layer.ffn_norm, eps, h);
        self.tr("ffn_norm", l, e, h);
        let (up, gate) = (Workspace::sized(up, n * nff), Workspace::sized(gate, n * nff));
        self.mm_fused(h, n, [(&layer.ffn_up, &mut up[..]), (&layer.ffn_gate, &mut gate[..])]);
        self.tr("ffn_up", l, nff, up);
        self.tr("ffn_gate", l, nff, gate);
        self.disp.ffn_act(self.numerics.simd_order(), gate, relu2);
        self.tr("ffn_act", l, nff, gate);
        for (a, u) in gate.iter_mut().zip(up.iter()) {
            *a *= u;
        }
        self.tr("ffn_out", l, nff, gate);
        let down_in: &[f32] = match &layer.ffn_sub_norm {
            Some(w) => {
                let f = Workspace::sized(ffn_norm, n * nff);
                rms_norm_rows(gate, w, eps, f);
                self.tr("ffn_sub_norm", l, nff, f);
                f
            }
            None => gate,
        };
        let proj = Workspace::sized(proj, n * e);
        self.mm(down_in, n, &layer.ffn_down, proj);
        self.tr("ffn_down", l, e, proj);
        for (xv, dv) in x.iter_mut().zip(proj.iter()) {
            *xv += dv;
        }
        self.tr("l_out", l, e, x);
    }

    /// Output norm and the LM head (tied `token_embd`, or arch llama's `output.weight`) on the requested rows.
    fn head(&mut self, ws: &mut Workspace, n: usize, want: Logits) -> Vec<f32> {
        let m = self.model;
        let (e, n_vocab) = (m.hparams.n_embd, m.hparams.n_vocab);
        let h = Workspace::sized(&mut ws.h, n * e);
        rms_norm_rows(&ws.x, &m.weights.output_norm, m.hparams.rms_eps, h);
        self.tr("result_norm", None, e, h);
        let (rows, xs) = match want {
            Logits::All => (n, &h[..]),
            Logits::Last => (1, &h[(n - 1) * e..]),
        };
        let mut logits = vec![0f32; rows * n_vocab];
        // The head's product only (no `.scale` or bias, as bitnet.cpp).
        let w = m.weights.lm_head();
        w.method
            .matmul(w.data(&m.file), w.shape(), &self.cx(), xs, rows, &mut logits);
        logits
    }

    /// The numerics choices every matmul of this session follows.
    fn cx(&self) -> MatmulCx<'m> {
        MatmulCx {
            disp: self.disp,
            i2s_epilogue: if self.numerics.has(Switch::H2) {
                I2sEpilogue::MultiplyRatio
            } else if self.numerics.simd_order() == SimdOrder::Avx512 {
                I2sEpilogue::Divide
            } else {
                I2sEpilogue::DivideExact
            },
            f16_rounded_act: self.numerics.f16_rounded_activations(),
            tq_fused: self.numerics.has(Switch::U1),
            order: self.numerics.simd_order(),
        }
    }

    /// [`Self::mm`] of several weights over the same activations; when every method has an I2_S view they run
    /// as one fused dispatch (one quantization, one fork-join).
    fn mm_fused<const N: usize>(&self, x: &[f32], n: usize, outs: [(&Linear, &mut [f32]); N]) {
        let file = &*self.model.file;
        if outs.iter().any(|(w, _)| w.i2s(file).is_none()) {
            for (w, y) in outs {
                self.mm(x, n, w, y);
            }
            return;
        }
        let mut products: Vec<I2sProduct> = Vec::with_capacity(N);
        let mut ws: Vec<&Linear> = Vec::with_capacity(N);
        for (w, y) in outs {
            ws.push(w);
            products.push(I2sProduct {
                w: w.i2s(file).expect("checked above"),
                y,
            });
        }
        self.disp.i2s_matmuls(x, n, self.cx().i2s_epilogue, &mut products);
        for (w, p) in ws.into_iter().zip(products) {
            w.scale_and_bias(&mut p.y[..n * w.rows]);
        }
    }

    /// `y = W·x` for `n` rows through the weight's quantization method, then its scale and bias.
    fn mm(&self, x: &[f32], n: usize, w: &Linear, y: &mut [f32]) {
        w.matmul(&self.model.file, &self.cx(), x, n, y);
    }

    /// Multi-head attention over the cache for `n` queries at positions `p0..p0+n` (spec §6.5), into `o`
    /// (`n × n_head·head_dim`). With `capture`, also returns the raw scores and the probabilities,
    /// `[head][query][n_kv]`.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        il: usize,
        q: &[f32],
        n: usize,
        p0: usize,
        n_kv: usize,
        capture: bool,
        o: &mut [f32],
    ) -> Option<AttentionProbs> {
        let hp = &self.model.hparams;
        let (hd, nh) = (hp.head_dim, hp.n_head);
        let group = hp.gqa_group();
        let kq_scale = 1.0f32 / (hd as f32).sqrt();
        let order = self.numerics.simd_order();
        // KQ's activations (Q, permuted) are never contiguous: tinyBLAS sees them only after their conversion
        // to f16, which the x86 build's tinyBLAS refuses (H3 aside), the plain aarch64 one too, and the aarch64
        // fp16 build takes.
        let kq_tinyblas = match order {
            SimdOrder::Avx512 => n >= 2 && self.numerics.f16_rounded_activations(),
            SimdOrder::Neon => false,
            SimdOrder::NeonFp16 => scalar_arm::tinyblas_serves(order, n, hd),
        };
        let kernels = self
            .disp
            .attention_kernels(order, kq_tinyblas, self.cx().f16_path(n, n_kv));
        let shape = HeadShape {
            head_dim: hd,
            n_head: nh,
            il,
            n,
            p0,
            n_kv,
            kq_scale,
            capture,
        };
        let kv = &self.kv;
        let heads: Vec<HeadOut> = (0..nh)
            .into_par_iter()
            .map(|h| Self::attend_head(kv, h, h / group, q, &shape, &kernels))
            .collect();
        for (h, (ho, _, _)) in heads.iter().enumerate() {
            for t in 0..n {
                o[(t * nh + h) * hd..(t * nh + h + 1) * hd].copy_from_slice(&ho[t * hd..(t + 1) * hd]);
            }
        }
        capture.then(|| {
            let kq = heads.iter().flat_map(|h| h.1.iter().copied()).collect();
            let sm = heads.iter().flat_map(|h| h.2.iter().copied()).collect();
            (kq, sm)
        })
    }

    /// One head of [`Self::attention`]: its `n × head_dim` outputs, and with `capture` its scores and
    /// probabilities (`[query][n_kv]`).
    fn attend_head(
        kv: &KvCache,
        h: usize,
        kh: usize,
        q: &[f32],
        shape: &HeadShape,
        kernels: &AttentionKernels,
    ) -> HeadOut {
        let (hd, nh) = (shape.head_dim, shape.n_head);
        let HeadShape {
            il,
            n,
            p0,
            n_kv,
            kq_scale,
            capture,
            ..
        } = *shape;
        let mut out = vec![0f32; n * hd];
        // Scores, then probabilities, of every query: `[query][n_kv]`.
        let mut probs = vec![0f32; n * n_kv];
        let (mut kq_all, mut sm_all) = (Vec::new(), Vec::new());
        let mut q16 = vec![f16::ZERO; hd];
        let mut q16f = vec![0f32; hd];
        let mut p16 = vec![f16::ZERO; n_kv];
        let keys = kv.k_rows(il, kh, n_kv);
        for t in 0..n {
            let valid = p0 + t + 1;
            // Masked scores are overwritten by −∞ in the softmax, so only a trace needs them computed.
            let upto = if capture { n_kv } else { valid.min(n_kv) };
            for ((a, b), &v) in q16.iter_mut().zip(q16f.iter_mut()).zip(&q[(t * nh + h) * hd..]) {
                *a = f16::from_f32(v);
                *b = a.to_f32();
            }
            let s = &mut probs[t * n_kv..(t + 1) * n_kv];
            match kernels.kq {
                KqKernel::TinyBlas(gemm) => {
                    for (j, sj) in s[..upto].iter_mut().enumerate() {
                        *sj = gemm(kv.k_row(il, kh, j), &q16f);
                    }
                }
                // `ggml_vec_dot_f16(k_j, q)` for every key, through the gemv over the contiguous K cells.
                KqKernel::Gemv(gemv) => gemv(&keys[..upto * hd], hd, &q16, &mut s[..upto]),
            }
            if capture {
                kq_all.extend_from_slice(s);
            }
            (kernels.softmax)(s, kq_scale, valid);
            if let PvKernel::VecDot(dot) = kernels.pv {
                for (a, &v) in p16.iter_mut().zip(s.iter()) {
                    *a = f16::from_f32(v);
                }
                for (d, od) in out[t * hd..(t + 1) * hd].iter_mut().enumerate() {
                    *od = dot(&p16, kv.v_col(il, kh, d, n_kv));
                }
            }
        }
        if capture {
            sm_all.clone_from(&probs);
        }
        if let PvKernel::TinyBlas {
            run: gemm_rows,
            f16_act,
        } = kernels.pv
        {
            if f16_act {
                probs.iter_mut().for_each(|v| *v = f16::from_f32(*v).to_f32());
            }
            // tinyBLAS over V's rows (one per head dimension, positions contiguous) × every query at once.
            let mut values = Vec::with_capacity(hd * n_kv);
            for d in 0..hd {
                values.extend_from_slice(kv.v_col(il, kh, d, n_kv));
            }
            let mut od = vec![0f32; hd * n];
            gemm_rows(&values, n_kv, &probs, n, &mut od);
            for (t, ot) in out.chunks_exact_mut(hd).enumerate() {
                for (d, v) in ot.iter_mut().enumerate() {
                    *v = od[d * n + t];
                }
            }
        }
        (out, kq_all, sm_all)
    }
}
