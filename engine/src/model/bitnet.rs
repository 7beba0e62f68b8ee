//! The BitNet forward pass (`build_bitnet_158` / `build_bitnet` of bitnet.cpp's llama.cpp fork),
//! in the spec's order (§6.3) and with its rounding points (§6.4–6.6, §12).

use std::path::Path;
use std::sync::Arc;

use half::f16;
use rayon::prelude::*;

use crate::flavor::{FlavorOptions, I2sLayout, ModelFlavors};
use crate::gguf::{GgmlType, GgufFile};
use crate::kernels::{Dispatcher, F16Path, I2sEpilogue, I2sProduct};

use super::hparams::{Arch, HParams};
use super::kv_cache::KvCache;
use super::numerics::{Numerics, Profile, Switch};
use super::ops::{ffn_act, rms_norm_rows, softmax_masked, RopeCache};
use super::weights::{Linear, Weights};
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
    pub fn open_with(path: impl AsRef<Path>, opts: &FlavorOptions) -> Result<Model, ModelError> {
        Model::from_file(Arc::new(GgufFile::open(path)?), opts)
    }

    pub fn from_file(file: Arc<GgufFile>, opts: &FlavorOptions) -> Result<Model, ModelError> {
        let hparams = HParams::from_gguf(&file)?;
        let flavors = ModelFlavors::classify(&file, opts)?;
        let layout = flavors
            .i2s_layout
            .as_ref()
            .map(|d| d.layout)
            .unwrap_or(I2sLayout::X86Act128);
        let weights = Weights::load(&file, &hparams, layout)?;
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
        let l = &self.weights.layers[0];
        match l.wq.ty {
            GgmlType::TQ2_0 | GgmlType::TQ1_0 => Numerics::profile(
                Profile::LlamaCpp,
                format!("{} weights are upstream llama.cpp's ternary types", l.wq.ty.name()),
            ),
            GgmlType::I2_S => Numerics::profile(Profile::BitnetCpp2025, "I2_S weights are bitnet.cpp's type"),
            _ if self.hparams.arch == Arch::BitnetB158 => Numerics::profile(
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
        let kv = KvCache::try_new(hp.n_layer, hp.n_head_kv, hp.head_dim, size)?;
        let rope = RopeCache::try_new(hp.n_rot, hp.rope_freq_base, hp.rope_freq_scale, size)?;
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
        let m = self.model;
        let hp = &m.hparams;
        let file = &*m.file;
        let n = tokens.len();
        if n == 0 {
            return Err(ModelError::Invalid("decode called with no tokens".into()));
        }
        let p0 = self.n_past;
        if p0 + n > self.kv.size {
            return Err(ModelError::ContextFull {
                pos: p0 + n - 1,
                n_ctx: self.kv.size,
            });
        }
        let e = hp.n_embd;
        let emb = m.weights.token_embd.as_f16(file);
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= hp.n_vocab) {
            return Err(ModelError::TokenOutOfRange {
                id: t,
                n_vocab: hp.n_vocab,
            });
        }
        // The activation buffers are reused across calls (taken out of `self` while `self` is borrowed).
        let mut ws = std::mem::take(&mut self.ws);
        let (hd, nq, nkv, nff) = (
            hp.head_dim,
            hp.n_head * hp.head_dim,
            hp.n_head_kv * hp.head_dim,
            hp.n_ff,
        );
        let x = Workspace::sized(&mut ws.x, 0);
        for &t in tokens {
            let t = t as usize;
            x.extend(emb.data[t * e..(t + 1) * e].iter().map(|v| v.to_f32()));
        }
        let pad = self.numerics.kv_pad();
        let n_kv = self.kv.size.min(pad.max((p0 + n).next_multiple_of(pad)));
        let relu2 = hp.arch == Arch::BitnetB158 && !self.numerics.has(Switch::H1);
        for (il, layer) in m.weights.layers.iter().enumerate() {
            let l = Some(il);
            let Workspace {
                x,
                h,
                q,
                k,
                v,
                attn,
                attn_norm,
                proj,
                up,
                gate,
                ffn_norm,
            } = &mut ws;
            let h = Workspace::sized(h, n * e);
            rms_norm_rows(x, &layer.attn_norm, hp.rms_eps, h);
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
                self.rope.apply(&mut q[t * nq..(t + 1) * nq], p0 + t);
                self.rope.apply(&mut k[t * nkv..(t + 1) * nkv], p0 + t);
                for kh in 0..hp.n_head_kv {
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
            let attn_norm = Workspace::sized(attn_norm, n * nq);
            rms_norm_rows(attn, &layer.attn_sub_norm, hp.rms_eps, attn_norm);
            self.tr("attn_sub_norm", l, nq, attn_norm);
            let proj = Workspace::sized(proj, n * e);
            self.mm(attn_norm, n, &layer.wo, proj);
            self.tr("attn_out", l, e, proj);
            for (xv, ov) in x.iter_mut().zip(proj.iter()) {
                *xv += ov;
            }
            self.tr("ffn_inp", l, e, x);
            rms_norm_rows(x, &layer.ffn_norm, hp.rms_eps, h);
            self.tr("ffn_norm", l, e, h);
            let (up, gate) = (Workspace::sized(up, n * nff), Workspace::sized(gate, n * nff));
            self.mm_fused(h, n, [(&layer.ffn_up, &mut up[..]), (&layer.ffn_gate, &mut gate[..])]);
            self.tr("ffn_up", l, nff, up);
            self.tr("ffn_gate", l, nff, gate);
            ffn_act(gate, relu2);
            self.tr("ffn_act", l, nff, gate);
            for (a, u) in gate.iter_mut().zip(up.iter()) {
                *a *= u;
            }
            self.tr("ffn_out", l, nff, gate);
            let f = Workspace::sized(ffn_norm, n * nff);
            rms_norm_rows(gate, &layer.ffn_sub_norm, hp.rms_eps, f);
            self.tr("ffn_sub_norm", l, nff, f);
            self.mm(f, n, &layer.ffn_down, proj);
            self.tr("ffn_down", l, e, proj);
            for (xv, dv) in x.iter_mut().zip(proj.iter()) {
                *xv += dv;
            }
            self.tr("l_out", l, e, x);
        }
        let h = Workspace::sized(&mut ws.h, n * e);
        rms_norm_rows(&ws.x, &m.weights.output_norm, hp.rms_eps, h);
        self.tr("result_norm", None, e, h);
        self.n_past += n;
        let (rows, xs) = match want {
            Logits::All => (n, &h[..]),
            Logits::Last => (1, &h[(n - 1) * e..]),
        };
        let path = self.f16_path(rows);
        let mut logits = vec![0f32; rows * hp.n_vocab];
        self.disp.f16_matmul(&emb, xs, rows, path, &mut logits);
        self.ws = ws;
        self.tr("result_output", None, hp.n_vocab, &logits);
        Ok(logits)
    }

    /// The F16 matmul path for a ubatch of `rows` rows (spec §6.5; H3).
    fn f16_path(&self, rows: usize) -> F16Path {
        match rows {
            1 => F16Path::VecDot,
            _ if self.numerics.f16_rounded_activations() => F16Path::TinyBlasF16Act,
            _ => F16Path::TinyBlas,
        }
    }

    fn i2s_epilogue(&self) -> I2sEpilogue {
        if self.numerics.has(Switch::H2) {
            I2sEpilogue::MultiplyRatio
        } else {
            I2sEpilogue::Divide
        }
    }

    /// [`Self::mm`] of several weights over the same activations; all-I2_S sets run as one fused dispatch
    /// (one quantization, one fork-join).
    fn mm_fused<const N: usize>(&self, x: &[f32], n: usize, outs: [(&Linear, &mut [f32]); N]) {
        if outs.iter().any(|(w, _)| w.ty != GgmlType::I2_S) {
            for (w, y) in outs {
                self.mm(x, n, w, y);
            }
            return;
        }
        let file = &*self.model.file;
        let mut products: Vec<I2sProduct> = Vec::with_capacity(N);
        let mut ws: Vec<&Linear> = Vec::with_capacity(N);
        for (w, y) in outs {
            ws.push(w);
            products.push(I2sProduct { w: w.as_i2s(file), y });
        }
        self.disp.i2s_matmuls(x, n, self.i2s_epilogue(), &mut products);
        for (w, p) in ws.into_iter().zip(products) {
            Self::scale_and_bias(w, p.y);
        }
    }

    /// `y = W·x` for `n` rows (every element of `y[..n·rows]` is written), then the legacy `.scale`
    /// multiplier and the bias.
    fn mm(&self, x: &[f32], n: usize, w: &Linear, y: &mut [f32]) {
        let file = &*self.model.file;
        let y = &mut y[..n * w.rows];
        match w.ty {
            GgmlType::I2_S => self.disp.i2s_matmul(&w.as_i2s(file), x, n, self.i2s_epilogue(), y),
            GgmlType::F16 => self.disp.f16_matmul(&w.as_f16(file), x, n, self.f16_path(n), y),
            GgmlType::TQ2_0 | GgmlType::TQ1_0 => {
                self.disp
                    .tq_matmul(&w.as_tq(file), x, n, self.numerics.has(Switch::U1), y)
            }
            other => unreachable!("weights of type {} are rejected at load", other.name()),
        }
        Self::scale_and_bias(w, y);
    }

    /// The legacy `.scale` multiplier, then the bias, on `n` output rows of `w`.
    fn scale_and_bias(w: &Linear, y: &mut [f32]) {
        if let Some(s) = w.out_scale {
            y.iter_mut().for_each(|v| *v *= s);
        }
        if let Some(b) = &w.bias {
            for row in y.chunks_exact_mut(w.rows) {
                row.iter_mut().zip(b).for_each(|(v, bv)| *v += bv);
            }
        }
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
        let kq_tinyblas = n >= 2 && self.numerics.f16_rounded_activations();
        let pv_path = self.f16_path(n);
        // Record exactly the kernels this call runs: one for the scores, one for the weighted values.
        let table = self.disp.table();
        let kq_kernel = if kq_tinyblas {
            table.tinyblas.id
        } else {
            table.f16_gemv.id
        };
        let pv_kernel = if pv_path == F16Path::VecDot {
            table.f16_dot.id
        } else {
            table.tinyblas_gemm.id
        };
        self.disp.record(kq_kernel, 1);
        self.disp.record(pv_kernel, 1);
        let (dot, gemm, gemv, gemm_rows) = (
            table.f16_dot.run,
            table.tinyblas.run,
            table.f16_gemv.run,
            table.tinyblas_gemm.run,
        );
        let kv = &self.kv;
        let heads: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = (0..nh)
            .into_par_iter()
            .map(|h| {
                let kh = h / group;
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
                    if kq_tinyblas {
                        for (j, sj) in s[..upto].iter_mut().enumerate() {
                            *sj = gemm(kv.k_row(il, kh, j), &q16f);
                        }
                    } else {
                        // `ggml_vec_dot_f16(k_j, q)` for every key, through the gemv over the contiguous K cells.
                        gemv(&keys[..upto * hd], hd, &q16, &mut s[..upto]);
                    }
                    if capture {
                        kq_all.extend_from_slice(s);
                    }
                    softmax_masked(s, kq_scale, valid);
                    if pv_path == F16Path::VecDot {
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
                if pv_path != F16Path::VecDot {
                    if pv_path == F16Path::TinyBlasF16Act {
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
            })
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
}
