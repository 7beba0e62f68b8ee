//! The BitNet forward pass (`build_bitnet_158` / `build_bitnet` of bitnet.cpp's llama.cpp fork),
//! in the spec's order (§6.3) and with its rounding points (§6.4–6.6, §12).

use std::path::Path;
use std::sync::Arc;

use half::f16;
use rayon::prelude::*;

use crate::flavor::{FlavorOptions, I2sLayout, ModelFlavors};
use crate::gguf::{GgmlType, GgufFile};
use crate::kernels::{Dispatcher, F16Path, I2sEpilogue};

use super::hparams::{Arch, HParams};
use super::kv_cache::KvCache;
use super::numerics::{Numerics, Profile, Switch};
use super::ops::{rms_norm_rows, silu, softmax_masked, RopeCache};
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

/// One sequence being evaluated: KV cache, position, numerics and the kernel dispatcher.
pub struct Session<'m> {
    model: &'m Model,
    disp: &'m Dispatcher,
    numerics: Numerics,
    kv: KvCache,
    rope: RopeCache,
    n_past: usize,
    trace: Option<Box<dyn TraceSink + 'm>>,
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
    pub fn new(model: &'m Model, disp: &'m Dispatcher, numerics: Numerics, n_ctx: usize) -> Session<'m> {
        let hp = &model.hparams;
        let pad = if numerics.profile == Profile::LlamaCpp { 256 } else { 32 };
        let mut size = n_ctx.max(1).next_multiple_of(pad);
        if numerics.has(Switch::H4) {
            size = size.next_multiple_of(256);
        }
        let kv = KvCache::new(hp.n_layer, hp.n_head_kv, hp.head_dim, size);
        let rope = RopeCache::new(hp.n_rot, hp.rope_freq_base, hp.rope_freq_scale, size);
        Session {
            model,
            disp,
            numerics,
            kv,
            rope,
            n_past: 0,
            trace: None,
        }
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
        let mut x = Vec::with_capacity(n * e);
        for &t in tokens {
            let t = t as usize;
            if t >= hp.n_vocab {
                return Err(ModelError::TokenOutOfRange {
                    id: t as u32,
                    n_vocab: hp.n_vocab,
                });
            }
            x.extend(emb.data[t * e..(t + 1) * e].iter().map(|v| v.to_f32()));
        }
        let pad = self.numerics.kv_pad();
        let n_kv = self.kv.size.min(pad.max((p0 + n).next_multiple_of(pad)));
        let relu2 = hp.arch == Arch::BitnetB158 && !self.numerics.has(Switch::H1);
        for (il, layer) in m.weights.layers.iter().enumerate() {
            let l = Some(il);
            let h = rms_norm_rows(&x, &layer.attn_norm, hp.rms_eps);
            self.tr("attn_norm", l, e, &h);
            let mut q = self.mm(&h, n, &layer.wq);
            let mut k = self.mm(&h, n, &layer.wk);
            let v = self.mm(&h, n, &layer.wv);
            let hd = hp.head_dim;
            self.tr("Qcur", l, hp.n_head * hd, &q);
            self.tr("Kcur", l, hp.n_head_kv * hd, &k);
            self.tr("Vcur", l, hp.n_head_kv * hd, &v);
            for t in 0..n {
                for head in q[t * hp.n_head * hd..(t + 1) * hp.n_head * hd].chunks_exact_mut(hd) {
                    self.rope.apply(head, p0 + t);
                }
                for head in k[t * hp.n_head_kv * hd..(t + 1) * hp.n_head_kv * hd].chunks_exact_mut(hd) {
                    self.rope.apply(head, p0 + t);
                }
                for kh in 0..hp.n_head_kv {
                    let r = (t * hp.n_head_kv + kh) * hd..(t * hp.n_head_kv + kh + 1) * hd;
                    self.kv.store(il, kh, p0 + t, &k[r.clone()], &v[r]);
                }
            }
            self.tr("Qcur_rope", l, hp.n_head * hd, &q);
            self.tr("Kcur_rope", l, hp.n_head_kv * hd, &k);
            let capture = self.trace.as_ref().is_some_and(|t| t.wants(l));
            let (o, probs) = self.attention(il, &q, n, p0, n_kv, capture);
            if let Some((kq, sm)) = probs {
                self.tr("kq", l, n_kv, &kq);
                self.tr("kq_soft_max", l, n_kv, &sm);
            }
            self.tr("kqv_out", l, hp.n_head * hd, &o);
            let o = rms_norm_rows(&o, &layer.attn_sub_norm, hp.rms_eps);
            self.tr("attn_sub_norm", l, hp.n_head * hd, &o);
            let o = self.mm(&o, n, &layer.wo);
            self.tr("attn_out", l, e, &o);
            for (xv, ov) in x.iter_mut().zip(&o) {
                *xv += ov;
            }
            self.tr("ffn_inp", l, e, &x);
            let h = rms_norm_rows(&x, &layer.ffn_norm, hp.rms_eps);
            self.tr("ffn_norm", l, e, &h);
            let up = self.mm(&h, n, &layer.ffn_up);
            self.tr("ffn_up", l, hp.n_ff, &up);
            let gate = self.mm(&h, n, &layer.ffn_gate);
            self.tr("ffn_gate", l, hp.n_ff, &gate);
            let act: Vec<f32> = gate
                .iter()
                .map(|&g| {
                    if relu2 {
                        let r = if g > 0.0 { g } else { 0.0 };
                        r * r
                    } else {
                        silu(g)
                    }
                })
                .collect();
            self.tr("ffn_act", l, hp.n_ff, &act);
            let act: Vec<f32> = act.iter().zip(&up).map(|(a, u)| a * u).collect();
            self.tr("ffn_out", l, hp.n_ff, &act);
            let f = rms_norm_rows(&act, &layer.ffn_sub_norm, hp.rms_eps);
            self.tr("ffn_sub_norm", l, hp.n_ff, &f);
            let d = self.mm(&f, n, &layer.ffn_down);
            self.tr("ffn_down", l, e, &d);
            for (xv, dv) in x.iter_mut().zip(&d) {
                *xv += dv;
            }
            self.tr("l_out", l, e, &x);
        }
        let x = rms_norm_rows(&x, &m.weights.output_norm, hp.rms_eps);
        self.tr("result_norm", None, e, &x);
        self.n_past += n;
        let (rows, xs) = match want {
            Logits::All => (n, &x[..]),
            Logits::Last => (1, &x[(n - 1) * e..]),
        };
        let path = self.f16_path(rows);
        let mut logits = vec![0f32; rows * hp.n_vocab];
        self.disp.f16_matmul(&emb, xs, rows, path, &mut logits);
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

    /// `y = W·x` for `n` rows, then the legacy `.scale` multiplier and the bias.
    fn mm(&self, x: &[f32], n: usize, w: &Linear) -> Vec<f32> {
        let file = &*self.model.file;
        let mut y = vec![0f32; n * w.rows];
        match w.ty {
            GgmlType::I2_S => {
                let epi = if self.numerics.has(Switch::H2) {
                    I2sEpilogue::MultiplyRatio
                } else {
                    I2sEpilogue::Divide
                };
                self.disp.i2s_matmul(&w.as_i2s(file), x, n, epi, &mut y);
            }
            GgmlType::F16 => self.disp.f16_matmul(&w.as_f16(file), x, n, self.f16_path(n), &mut y),
            GgmlType::TQ2_0 | GgmlType::TQ1_0 => {
                self.disp
                    .tq_matmul(&w.as_tq(file), x, n, self.numerics.has(Switch::U1), &mut y)
            }
            other => unreachable!("weights of type {} are rejected at load", other.name()),
        }
        if let Some(s) = w.out_scale {
            y.iter_mut().for_each(|v| *v *= s);
        }
        if let Some(b) = &w.bias {
            for row in y.chunks_exact_mut(w.rows) {
                row.iter_mut().zip(b).for_each(|(v, bv)| *v += bv);
            }
        }
        y
    }

    /// Multi-head attention over the cache for `n` queries at positions `p0..p0+n` (spec §6.5).
    /// With `capture`, also returns the raw scores and the probabilities, `[head][query][n_kv]`.
    fn attention(
        &self,
        il: usize,
        q: &[f32],
        n: usize,
        p0: usize,
        n_kv: usize,
        capture: bool,
    ) -> (Vec<f32>, Option<AttentionProbs>) {
        let hp = &self.model.hparams;
        let (hd, nh) = (hp.head_dim, hp.n_head);
        let group = hp.gqa_group();
        let kq_scale = 1.0f32 / (hd as f32).sqrt();
        let kq_tinyblas = n >= 2 && self.numerics.f16_rounded_activations();
        let pv_path = self.f16_path(n);
        let dot = self.disp.f16_dot();
        let gemm = self.disp.tinyblas();
        let kv = &self.kv;
        let heads: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = (0..nh)
            .into_par_iter()
            .map(|h| {
                let kh = h / group;
                let mut out = vec![0f32; n * hd];
                let (mut kq_all, mut sm_all) = (Vec::new(), Vec::new());
                let mut s = vec![0f32; n_kv];
                for t in 0..n {
                    let q16: Vec<f16> = q[(t * nh + h) * hd..(t * nh + h + 1) * hd]
                        .iter()
                        .map(|&v| f16::from_f32(v))
                        .collect();
                    let q16f: Vec<f32> = q16.iter().map(|v| v.to_f32()).collect();
                    for (j, sj) in s.iter_mut().enumerate() {
                        let kr = kv.k_row(il, kh, j);
                        *sj = if kq_tinyblas { gemm(kr, &q16f) } else { dot(&q16, kr) };
                    }
                    if capture {
                        kq_all.extend_from_slice(&s);
                    }
                    softmax_masked(&mut s, kq_scale, p0 + t + 1);
                    if capture {
                        sm_all.extend_from_slice(&s);
                    }
                    let o = &mut out[t * hd..(t + 1) * hd];
                    match pv_path {
                        F16Path::VecDot => {
                            let p16: Vec<f16> = s.iter().map(|&v| f16::from_f32(v)).collect();
                            for (d, od) in o.iter_mut().enumerate() {
                                *od = dot(&p16, kv.v_col(il, kh, d, n_kv));
                            }
                        }
                        F16Path::TinyBlas | F16Path::TinyBlasF16Act => {
                            let p: Vec<f32> = if pv_path == F16Path::TinyBlasF16Act {
                                s.iter().map(|&v| f16::from_f32(v).to_f32()).collect()
                            } else {
                                s.clone()
                            };
                            for (d, od) in o.iter_mut().enumerate() {
                                *od = gemm(kv.v_col(il, kh, d, n_kv), &p);
                            }
                        }
                    }
                }
                (out, kq_all, sm_all)
            })
            .collect();
        let mut o = vec![0f32; n * nh * hd];
        for (h, (ho, _, _)) in heads.iter().enumerate() {
            for t in 0..n {
                o[(t * nh + h) * hd..(t * nh + h + 1) * hd].copy_from_slice(&ho[t * hd..(t + 1) * hd]);
            }
        }
        let probs = capture.then(|| {
            let kq = heads.iter().flat_map(|h| h.1.iter().copied()).collect();
            let sm = heads.iter().flat_map(|h| h.2.iter().copied()).collect();
            (kq, sm)
        });
        (o, probs)
    }
}
