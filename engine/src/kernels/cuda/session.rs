//! A whole BitNet decode step on the GPU: weights uploaded once, f16 KV cache on the device.
//!
//! Same op order and paths as `model::Session::decode` (spec §6.3); see docs/cuda.md for what is and is not
//! bit-identical with the CPU path.

use cudarc::driver::CudaSlice;
use half::slice::HalfFloatSliceExt;

use super::backend::{drv, CudaBackend, DevAct};
use super::{check, AttnShape, CudaError};
use crate::kernels::{F16Path, I2sEpilogue};
use crate::model::weights::{Layer, Linear};
use crate::model::{Arch, Logits, Model, Numerics, Profile, Switch};

/// A linear layer's weight on the device.
enum DevWeight {
    I2s { codes: CudaSlice<u8>, scale: f32 },
    F16(CudaSlice<u16>),
}

struct DevLinear {
    w: DevWeight,
    rows: usize,
    k: usize,
    out_scale: Option<f32>,
    bias: Option<CudaSlice<f32>>,
}

struct DevLayer {
    attn_norm: CudaSlice<f32>,
    wq: DevLinear,
    wk: DevLinear,
    wv: DevLinear,
    wo: DevLinear,
    attn_sub_norm: CudaSlice<f32>,
    ffn_norm: CudaSlice<f32>,
    ffn_gate: DevLinear,
    ffn_up: DevLinear,
    ffn_down: DevLinear,
    ffn_sub_norm: CudaSlice<f32>,
}

/// One sequence decoded on a [`CudaBackend`]: uploaded weights, device KV cache, position.
pub struct CudaSession<'m> {
    model: &'m Model,
    be: &'m CudaBackend,
    numerics: Numerics,
    emb: CudaSlice<u16>,
    output_norm: CudaSlice<f32>,
    layers: Vec<DevLayer>,
    kc: CudaSlice<u16>,
    vc: CudaSlice<u16>,
    rope_cos: CudaSlice<f32>,
    rope_sin: CudaSlice<f32>,
    size: usize,
    n_past: usize,
}

impl std::fmt::Debug for CudaSession<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaSession")
            .field("backend", self.be)
            .field("n_past", &self.n_past)
            .field("n_ctx", &self.size)
            .finish()
    }
}

impl<'m> CudaSession<'m> {
    /// Upload `model`'s weights to `be`'s device and allocate a KV cache of `n_ctx` cells (padded as
    /// `model::Session::new` pads). I2_S and F16 linear weights only (TQ2_0/TQ1_0 are refused).
    pub fn new(
        model: &'m Model,
        be: &'m CudaBackend,
        numerics: Numerics,
        n_ctx: usize,
    ) -> Result<CudaSession<'m>, CudaError> {
        let hp = &model.hparams;
        if hp.arch == Arch::Llama || model.weights.token_embd.type_name() != "f16" {
            return Err(CudaError::Unsupported(format!(
                "arch {} with a {} token embedding (the CUDA backend runs the BitNet archs with F16 embeddings)",
                hp.arch.name(),
                model.weights.token_embd.type_name()
            )));
        }
        if hp.n_rot != hp.head_dim {
            return Err(CudaError::Unsupported(format!(
                "n_rot {} != head_dim {}",
                hp.n_rot, hp.head_dim
            )));
        }
        let file = &*model.file;
        let up_f32 = |v: &[f32]| be.upload(v);
        let up_lin = |l: &Linear| -> Result<DevLinear, CudaError> {
            let w = match (l.i2s(file), l.f16(file)) {
                (Some(m), _) => DevWeight::I2s {
                    codes: be.upload(m.codes)?,
                    scale: m.scale,
                },
                (None, Some(m)) => DevWeight::F16(be.upload(m.data.reinterpret_cast())?),
                (None, None) => return Err(CudaError::Unsupported(format!("{} has type {}", l.name, l.type_name()))),
            };
            let bias = l.bias.as_deref().map(up_f32).transpose()?;
            Ok(DevLinear {
                w,
                rows: l.rows,
                k: l.k,
                out_scale: l.out_scale,
                bias,
            })
        };
        let up_layer = |l: &Layer| -> Result<DevLayer, CudaError> {
            Ok(DevLayer {
                attn_norm: up_f32(&l.attn_norm)?,
                wq: up_lin(&l.wq)?,
                wk: up_lin(&l.wk)?,
                wv: up_lin(&l.wv)?,
                wo: up_lin(&l.wo)?,
                attn_sub_norm: up_f32(l.attn_sub_norm.as_deref().unwrap_or_default())?,
                ffn_norm: up_f32(&l.ffn_norm)?,
                ffn_gate: up_lin(&l.ffn_gate)?,
                ffn_up: up_lin(&l.ffn_up)?,
                ffn_down: up_lin(&l.ffn_down)?,
                ffn_sub_norm: up_f32(l.ffn_sub_norm.as_deref().unwrap_or_default())?,
            })
        };
        let layers = model
            .weights
            .layers
            .iter()
            .map(up_layer)
            .collect::<Result<Vec<_>, _>>()?;
        let emb = model
            .weights
            .token_embd
            .f16(file)
            .expect("token_embd is f16 (checked above)");
        let emb = be.upload(emb.data.reinterpret_cast())?;
        let output_norm = up_f32(&model.weights.output_norm)?;
        let pad = if numerics.profile == Profile::LlamaCpp { 256 } else { 32 };
        let mut size = n_ctx.max(1).next_multiple_of(pad);
        if numerics.has(Switch::H4) {
            size = size.next_multiple_of(256);
        }
        let cells = hp.n_layer * hp.n_head_kv * hp.head_dim * size;
        let (cos, sin) = super::rope_tables(hp.n_rot, hp.rope_freq_base, hp.rope_freq_scale, size);
        Ok(CudaSession {
            model,
            be,
            numerics,
            emb,
            output_norm,
            layers,
            kc: be.zeros(cells)?,
            vc: be.zeros(cells)?,
            rope_cos: be.upload(&cos)?,
            rope_sin: be.upload(&sin)?,
            size,
            n_past: 0,
        })
    }

    pub fn n_past(&self) -> usize {
        self.n_past
    }

    pub fn n_ctx(&self) -> usize {
        self.size
    }

    /// Forget the sequence (zero the device KV cache).
    pub fn clear(&mut self) -> Result<(), CudaError> {
        self.be
            .stream
            .memset_zeros(&mut self.kc)
            .map_err(drv("clear K cache"))?;
        self.be
            .stream
            .memset_zeros(&mut self.vc)
            .map_err(drv("clear V cache"))?;
        self.n_past = 0;
        Ok(())
    }

    /// The F16 matmul path for `rows` rows (as `Session::f16_path`).
    fn f16_path(&self, rows: usize) -> F16Path {
        match rows {
            1 => F16Path::VecDot,
            _ if self.numerics.f16_rounded_activations() => F16Path::TinyBlasF16Act,
            _ => F16Path::TinyBlas,
        }
    }

    /// `y = W·x` for `n` rows (with quantized activations `act` when the weight is I2_S), then `.scale` and bias.
    fn mm(&self, x: &CudaSlice<f32>, act: &Act, n: usize, l: &DevLinear) -> Result<CudaSlice<f32>, CudaError> {
        let be = self.be;
        let mut y = match &l.w {
            DevWeight::I2s { codes, scale } => {
                let epi = if self.numerics.has(Switch::H2) {
                    I2sEpilogue::MultiplyRatio
                } else {
                    I2sEpilogue::Divide
                };
                let q = act.get(be, x, n, l.k)?;
                be.i2s_dev(codes, l.rows, l.k, *scale, q, n, epi)?.1
            }
            DevWeight::F16(w) => be.f16_dev(w, l.rows, l.k, x, n, self.f16_path(n))?,
        };
        if let Some(s) = l.out_scale {
            be.scale_dev(&mut y, s, n * l.rows)?;
        }
        if let Some(b) = &l.bias {
            be.bias_dev(&mut y, b, l.rows, n * l.rows)?;
        }
        Ok(y)
    }

    /// Evaluate one ubatch at the next positions; returns logits for the requested rows (as `Session::decode`).
    pub fn decode(&mut self, tokens: &[u32], want: Logits) -> Result<Vec<f32>, CudaError> {
        let hp = &self.model.hparams;
        let be = self.be;
        let n = tokens.len();
        check("decode", n > 0, || "no tokens".into())?;
        let p0 = self.n_past;
        if p0 + n > self.size {
            return Err(CudaError::ContextFull {
                pos: p0 + n - 1,
                n_ctx: self.size,
            });
        }
        let mut ids = Vec::with_capacity(n);
        for &t in tokens {
            if t as usize >= hp.n_vocab {
                return Err(CudaError::TokenOutOfRange {
                    id: t,
                    n_vocab: hp.n_vocab,
                });
            }
            ids.push(t as i32);
        }
        let (e, hd) = (hp.n_embd, hp.head_dim);
        let pad = self.numerics.kv_pad();
        let n_kv = self.size.min(pad.max((p0 + n).next_multiple_of(pad)));
        let relu2 = hp.arch == Arch::BitnetB158 && !self.numerics.has(Switch::H1);
        let attn = AttnShape {
            n_head: hp.n_head,
            n,
            p0,
            n_kv,
            kq_tinyblas: n >= 2 && self.numerics.f16_rounded_activations(),
            pv: self.f16_path(n),
        };
        let kv = (hp.n_head_kv, hd, self.size);
        let mut x = be.get_rows_dev(&self.emb, &ids, e)?;
        for (il, l) in self.layers.iter().enumerate() {
            let h = be.rms_norm_dev(&x, &l.attn_norm, n, e, hp.rms_eps)?;
            let act = Act::default();
            let mut q = self.mm(&h, &act, n, &l.wq)?;
            let mut k = self.mm(&h, &act, n, &l.wk)?;
            let v = self.mm(&h, &act, n, &l.wv)?;
            be.rope_dev(&mut q, n, hp.n_head, hd, &self.rope_cos, &self.rope_sin, p0)?;
            be.rope_dev(&mut k, n, hp.n_head_kv, hd, &self.rope_cos, &self.rope_sin, p0)?;
            be.kv_store_dev(&k, &v, &mut self.kc, &mut self.vc, il, n, kv, p0)?;
            let o = be.attention_dev(&q, &self.kc, &self.vc, il, kv, &attn)?;
            let o = be.rms_norm_dev(&o, &l.attn_sub_norm, n, hp.n_head * hd, hp.rms_eps)?;
            let o = self.mm(&o, &Act::default(), n, &l.wo)?;
            be.add_dev(&mut x, &o, n * e)?;
            let h = be.rms_norm_dev(&x, &l.ffn_norm, n, e, hp.rms_eps)?;
            let act = Act::default();
            let up = self.mm(&h, &act, n, &l.ffn_up)?;
            let gate = self.mm(&h, &act, n, &l.ffn_gate)?;
            let m = be.ffn_act_dev(&gate, &up, n * hp.n_ff, relu2)?;
            let f = be.rms_norm_dev(&m, &l.ffn_sub_norm, n, hp.n_ff, hp.rms_eps)?;
            let d = self.mm(&f, &Act::default(), n, &l.ffn_down)?;
            be.add_dev(&mut x, &d, n * e)?;
        }
        let x = be.rms_norm_dev(&x, &self.output_norm, n, e, hp.rms_eps)?;
        self.n_past += n;
        let rows = match want {
            Logits::All => n,
            Logits::Last => 1,
        };
        let xs = if rows == n {
            x
        } else {
            be.stream
                .clone_dtod(&x.slice((n - 1) * e..n * e))
                .map_err(drv("copy last row"))?
        };
        let logits = be.f16_dev(&self.emb, hp.n_vocab, e, &xs, rows, self.f16_path(rows))?;
        be.download(&logits, rows * hp.n_vocab)
    }
}

/// Quantized activations of one input, computed on first use and shared by the matmuls that read that input
/// (q/k/v, up/gate): quantization is deterministic, so this equals quantizing per matmul as the CPU does.
#[derive(Default)]
struct Act(std::cell::OnceCell<DevAct>);

impl Act {
    fn get(&self, be: &CudaBackend, x: &CudaSlice<f32>, n: usize, k: usize) -> Result<&DevAct, CudaError> {
        if let Some(v) = self.0.get() {
            return Ok(v);
        }
        let v = be.quantize_dev(x, n, k)?;
        Ok(self.0.get_or_init(|| v))
    }
}
