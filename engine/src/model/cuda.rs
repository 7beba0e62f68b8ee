//! The CUDA backend of the forward pass (feature `cuda`): weights uploaded once through each quantization
//! method's [`upload`](crate::quant::QuantMethod::upload), an f16 KV cache and the activations on the device,
//! the kernels of [`crate::kernels::cuda`]. The op order is [`Session`](super::Session)'s, shared with the CPU;
//! docs/cuda.md says which ops are bit-identical with the CPU's by construction. None of it has run on a GPU
//! here.

use std::borrow::Cow;

use cudarc::driver::CudaSlice;

use crate::kernels::cuda::{drv, AttnShape, CudaBackend, CudaError, DevAct, DevWeight};
use crate::kernels::{Dispatcher, SimdOrder};
use crate::quant::MatmulCx;

use super::backend::{matmul_cx, AttentionProbs, AttnAt, Buf, Lin, Norm, Ops};
use super::weights::{Layer, Linear};
use super::{Logits, Model, ModelError, Numerics};

/// A linear layer on the device: its weight in a device kernel's form, the legacy `.scale` and the bias.
struct DevLinear {
    w: DevWeight,
    rows: usize,
    k: usize,
    out_scale: Option<f32>,
    bias: Option<CudaSlice<f32>>,
}

/// One layer's weights on the device: the linears in [`Lin`] order, then the norms.
struct DevLayer {
    lin: [DevLinear; 7],
    attn_norm: CudaSlice<f32>,
    attn_sub_norm: Option<CudaSlice<f32>>,
    ffn_norm: CudaSlice<f32>,
    ffn_sub_norm: Option<CudaSlice<f32>>,
}

/// Which slot of [`DevLayer::lin`] holds a role.
fn lin_slot(l: Lin) -> usize {
    l as usize
}

/// An in-place element-wise launcher of [`CudaBackend`] (`dst op= src` over `len` values).
type InPlace = fn(&CudaBackend, &mut CudaSlice<f32>, &CudaSlice<f32>, usize) -> Result<(), CudaError>;

/// The forward pass's ops on a CUDA device.
pub(crate) struct CudaOps<'m> {
    model: &'m Model,
    disp: &'m Dispatcher,
    be: &'m CudaBackend,
    cx: MatmulCx<'m>,
    layers: Vec<DevLayer>,
    head: DevLinear,
    output_norm: CudaSlice<f32>,
    kc: CudaSlice<u16>,
    vc: CudaSlice<u16>,
    rope_cos: CudaSlice<f32>,
    rope_sin: CudaSlice<f32>,
    size: usize,
    /// Activation buffers and their lengths in values, indexed by [`Buf`].
    bufs: [Option<(CudaSlice<f32>, usize)>; Buf::COUNT],
}

impl<'m> CudaOps<'m> {
    /// Upload `model`'s weights to `be` and allocate a KV cache of `size` cells (already padded). Numerics,
    /// shapes and weight types without a device kernel are [`CudaError::Unsupported`] naming them.
    pub(crate) fn new(
        model: &'m Model,
        disp: &'m Dispatcher,
        be: &'m CudaBackend,
        numerics: &Numerics,
        size: usize,
    ) -> Result<CudaOps<'m>, ModelError> {
        let hp = &model.hparams;
        if numerics.simd_order() != SimdOrder::Avx512 {
            return Err(unsupported(format!(
                "numerics {}: the CUDA kernels reproduce the x86 float order only",
                numerics.label()
            )));
        }
        if hp.n_rot != hp.head_dim {
            return Err(unsupported(format!("n_rot {} != head_dim {}", hp.n_rot, hp.head_dim)));
        }
        let up_f32 = |v: &[f32]| be.upload(v);
        let layers = model
            .weights
            .layers
            .iter()
            .map(|l| upload_layer(model, be, l))
            .collect::<Result<Vec<_>, _>>()?;
        let cells = hp.n_layer * hp.n_head_kv * hp.head_dim * size;
        let (cos, sin) = super::ops::rope_tables_with(
            hp.n_rot,
            hp.rope_freq_base,
            hp.rope_freq_scale,
            model.weights.rope_freqs.as_deref(),
            size,
        );
        Ok(CudaOps {
            model,
            disp,
            be,
            cx: matmul_cx(numerics, disp),
            layers,
            // The head's product only (no `.scale` or bias, as bitnet.cpp).
            head: DevLinear {
                out_scale: None,
                bias: None,
                ..upload_linear(model, be, model.weights.lm_head())?
            },
            output_norm: up_f32(&model.weights.output_norm)?,
            kc: be.zeros(cells)?,
            vc: be.zeros(cells)?,
            rope_cos: be.upload(&cos)?,
            rope_sin: be.upload(&sin)?,
            size,
            bufs: Default::default(),
        })
    }

    fn get(&self, b: Buf) -> Result<&CudaSlice<f32>, CudaError> {
        self.bufs[b.index()].as_ref().map(|(s, _)| s).ok_or_else(|| unset(b))
    }

    fn take(&mut self, b: Buf) -> Result<(CudaSlice<f32>, usize), CudaError> {
        self.bufs[b.index()].take().ok_or_else(|| unset(b))
    }

    fn put(&mut self, b: Buf, s: CudaSlice<f32>, len: usize) {
        self.bufs[b.index()] = Some((s, len));
    }

    /// `y = W·x` for `n` rows (quantizing `x` once per group of I2_S products into `act`), along the numerics'
    /// I2_S epilogue or F16 path, then `.scale` and bias.
    fn mm(
        &self,
        x: &CudaSlice<f32>,
        act: &mut Option<DevAct>,
        n: usize,
        l: &DevLinear,
    ) -> Result<CudaSlice<f32>, CudaError> {
        let be = self.be;
        let mut y = match &l.w {
            DevWeight::I2s { codes, scale } => {
                if act.is_none() {
                    *act = Some(be.quantize_dev(x, n, l.k)?);
                }
                let q = act.as_ref().expect("set above");
                be.i2s_dev(codes, l.rows, l.k, *scale, q, n, self.cx.i2s_epilogue)?.1
            }
            DevWeight::F16(w) => be.f16_dev(w, l.rows, l.k, x, n, self.cx.f16_path(n, l.k))?,
        };
        if let Some(s) = l.out_scale {
            be.scale_dev(&mut y, s, n * l.rows)?;
        }
        if let Some(b) = &l.bias {
            be.bias_dev(&mut y, b, l.rows, n * l.rows)?;
        }
        Ok(y)
    }

    fn norm_weight(&self, norm: Norm) -> Option<&CudaSlice<f32>> {
        match norm {
            Norm::Attn(il) => Some(&self.layers[il].attn_norm),
            Norm::AttnSub(il) => self.layers[il].attn_sub_norm.as_ref(),
            Norm::Ffn(il) => Some(&self.layers[il].ffn_norm),
            Norm::FfnSub(il) => self.layers[il].ffn_sub_norm.as_ref(),
            Norm::Output => Some(&self.output_norm),
        }
    }

    /// `dst op= src` through `f` (an in-place element-wise kernel).
    fn inplace(&mut self, dst: Buf, src: Buf, len: usize, f: InPlace) -> Result<(), ModelError> {
        let (mut d, dlen) = self.take(dst)?;
        let r = self.get(src).and_then(|s| f(self.be, &mut d, s, len));
        self.put(dst, d, dlen);
        Ok(r?)
    }
}

impl Ops for CudaOps<'_> {
    /// Looked up on the host (`ggml_get_rows` through the embedding's method, any type) and uploaded: `n`
    /// rows per decode.
    fn embed(&mut self, tokens: &[u32]) -> Result<(), ModelError> {
        let (emb, file) = (&self.model.weights.token_embd, &*self.model.file);
        let mut x = Vec::with_capacity(tokens.len() * emb.k);
        for &t in tokens {
            emb.get_row(file, t as usize, &mut x)
                .expect("token_embd can be looked up by row (checked at load)");
        }
        let d = self.be.upload(&x)?;
        self.put(Buf::X, d, x.len());
        Ok(())
    }

    fn rms_norm(&mut self, src: Buf, norm: Norm, dst: Buf, n: usize, k: usize) -> Result<(), ModelError> {
        let w = self.norm_weight(norm).ok_or_else(|| super::cpu::missing_norm(norm))?;
        let y = self
            .be
            .rms_norm_dev(self.get(src)?, w, n, k, self.model.hparams.rms_eps)?;
        self.put(dst, y, n * k);
        Ok(())
    }

    fn matmuls(&mut self, il: usize, src: Buf, n: usize, outs: &[(Lin, Buf)]) -> Result<(), ModelError> {
        let mut act = None;
        let mut ys = Vec::with_capacity(outs.len());
        for &(lin, b) in outs {
            let l = &self.layers[il].lin[lin_slot(lin)];
            ys.push((b, self.mm(self.get(src)?, &mut act, n, l)?, n * l.rows));
        }
        for (b, y, len) in ys {
            self.put(b, y, len);
        }
        Ok(())
    }

    fn rope_store(&mut self, il: usize, n: usize, p0: usize) -> Result<(), ModelError> {
        let hp = &self.model.hparams;
        let (hd, neox, be) = (hp.head_dim, hp.arch.rope_neox(), self.be);
        let (mut q, ql) = self.take(Buf::Q)?;
        let r = be.rope_dev(&mut q, n, hp.n_head, hd, &self.rope_cos, &self.rope_sin, p0, neox);
        self.put(Buf::Q, q, ql);
        r?;
        let (mut k, kl) = self.take(Buf::K)?;
        let r = be.rope_dev(&mut k, n, hp.n_head_kv, hd, &self.rope_cos, &self.rope_sin, p0, neox);
        let r = r.and_then(|()| {
            let (v, _) = self.bufs[Buf::V.index()].as_ref().ok_or_else(|| unset(Buf::V))?;
            let kv = (hp.n_head_kv, hd, self.size);
            be.kv_store_dev(&k, v, &mut self.kc, &mut self.vc, il, n, kv, p0)
        });
        self.put(Buf::K, k, kl);
        Ok(r?)
    }

    fn attention(&mut self, at: AttnAt) -> Result<Option<AttentionProbs>, ModelError> {
        if at.capture {
            return Err(unsupported(
                "attention scores for a trace (kq, kq_soft_max) stay on the device".into(),
            ));
        }
        let hp = &self.model.hparams;
        let n = at.n;
        let shape = AttnShape {
            n_head: hp.n_head,
            n,
            p0: at.p0,
            n_kv: at.n_kv,
            kq_tinyblas: n >= 2 && self.cx.f16_rounded_act,
            pv: self.cx.f16_path(n, at.n_kv),
        };
        let kv = (hp.n_head_kv, hp.head_dim, self.size);
        let o = self
            .be
            .attention_dev(self.get(Buf::Q)?, &self.kc, &self.vc, at.layer, kv, &shape)?;
        self.put(Buf::Attn, o, n * hp.n_head * hp.head_dim);
        Ok(None)
    }

    fn ffn_act(&mut self, relu2: bool, len: usize) -> Result<(), ModelError> {
        let (mut g, gl) = self.take(Buf::Gate)?;
        let r = self.be.ffn_act_dev(&mut g, len, relu2);
        self.put(Buf::Gate, g, gl);
        Ok(r?)
    }

    fn mul(&mut self, dst: Buf, src: Buf, len: usize) -> Result<(), ModelError> {
        self.inplace(dst, src, len, CudaBackend::mul_dev)
    }

    fn add(&mut self, dst: Buf, src: Buf, len: usize) -> Result<(), ModelError> {
        self.inplace(dst, src, len, CudaBackend::add_dev)
    }

    fn logits(&mut self, src: Buf, n: usize, want: Logits) -> Result<Vec<f32>, ModelError> {
        let (e, n_vocab) = (self.model.hparams.n_embd, self.model.hparams.n_vocab);
        let h = self.get(src)?;
        let rows = match want {
            Logits::All => n,
            Logits::Last => 1,
        };
        let last;
        let xs = if rows == n {
            h
        } else {
            last = self
                .be
                .stream
                .clone_dtod(&h.slice((n - 1) * e..n * e))
                .map_err(drv("copy last row"))?;
            &last
        };
        let y = self.mm(xs, &mut None, rows, &self.head)?;
        let logits = self.be.download(&y, rows * n_vocab)?;
        self.be.record_into(self.disp);
        Ok(logits)
    }

    fn read(&self, b: Buf) -> Result<Cow<'_, [f32]>, ModelError> {
        let (s, len) = self.bufs[b.index()].as_ref().ok_or_else(|| unset(b))?;
        Ok(Cow::Owned(self.be.download(s, *len)?))
    }

    fn clear(&mut self) -> Result<(), ModelError> {
        let stream = &self.be.stream;
        stream.memset_zeros(&mut self.kc).map_err(drv("clear K cache"))?;
        stream.memset_zeros(&mut self.vc).map_err(drv("clear V cache"))?;
        Ok(())
    }
}

/// A linear's weight through its method's upload, its scale and bias.
fn upload_linear(model: &Model, be: &CudaBackend, l: &Linear) -> Result<DevLinear, ModelError> {
    let w = l
        .method
        .upload(be, l.data(&model.file), l.shape())
        .map_err(|e| match e {
            CudaError::Unsupported(why) => unsupported(format!("tensor {:?}: {why}", l.name)),
            e => e.into(),
        })?;
    Ok(DevLinear {
        w,
        rows: l.rows,
        k: l.k,
        out_scale: l.out_scale,
        bias: l.bias.as_deref().map(|b| be.upload(b)).transpose()?,
    })
}

fn upload_layer(model: &Model, be: &CudaBackend, l: &Layer) -> Result<DevLayer, ModelError> {
    let lin = |r: Lin| upload_linear(model, be, r.of(l));
    let opt = |v: &Option<Vec<f32>>| v.as_deref().map(|v| be.upload(v)).transpose();
    Ok(DevLayer {
        lin: [
            lin(Lin::Q)?,
            lin(Lin::K)?,
            lin(Lin::V)?,
            lin(Lin::O)?,
            lin(Lin::Up)?,
            lin(Lin::Gate)?,
            lin(Lin::Down)?,
        ],
        attn_norm: be.upload(&l.attn_norm)?,
        attn_sub_norm: opt(&l.attn_sub_norm)?,
        ffn_norm: be.upload(&l.ffn_norm)?,
        ffn_sub_norm: opt(&l.ffn_sub_norm)?,
    })
}

fn unsupported(why: String) -> ModelError {
    ModelError::Cuda(CudaError::Unsupported(why))
}

/// The error for reading a buffer no op has written yet (a bug in the op order).
fn unset(b: Buf) -> CudaError {
    CudaError::Shape {
        op: "forward pass",
        why: format!("buffer {b:?} read before it was written"),
    }
}
