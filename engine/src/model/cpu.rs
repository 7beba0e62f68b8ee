//! The CPU backend of the forward pass: every op through the kernel dispatcher, on host buffers kept across
//! decode calls (fresh multi-megabyte buffers would be page-faulted and zeroed by the kernel on every call).

use std::borrow::Cow;

use half::f16;
use rayon::prelude::*;

use crate::kernels::{scalar_arm, AttentionKernels, Dispatcher, I2sProduct, KqKernel, PvKernel, SimdOrder};
use crate::quant::MatmulCx;

use super::backend::{matmul_cx, AttentionProbs, AttnAt, Buf, Lin, Norm, Ops};
use super::kv_cache::KvCache;
use super::ops::{rms_norm_rows, RopeCache};
use super::weights::Linear;
use super::{Logits, Model, ModelError, Numerics};

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

/// The activation buffers, indexed by [`Buf`].
#[derive(Default)]
struct Bufs([Vec<f32>; Buf::COUNT]);

impl Bufs {
    /// `src` to read and `dst` sized to exactly `len` elements (old contents kept or zero-filled; every user
    /// overwrites them).
    fn io(&mut self, src: Buf, dst: Buf, len: usize) -> (&[f32], &mut Vec<f32>) {
        let (i, o) = (src.index(), dst.index());
        assert_ne!(i, o, "an op reads and writes the same buffer");
        self.0[o].resize(len, 0.0);
        if i < o {
            let (lo, hi) = self.0.split_at_mut(o);
            (&lo[i], &mut hi[0])
        } else {
            let (lo, hi) = self.0.split_at_mut(i);
            (&hi[0], &mut lo[o])
        }
    }

    fn get(&self, b: Buf) -> &[f32] {
        &self.0[b.index()]
    }

    /// Move a buffer out (no copy), to be put back with [`Bufs::put`].
    fn take(&mut self, b: Buf) -> Vec<f32> {
        std::mem::take(&mut self.0[b.index()])
    }

    fn put(&mut self, b: Buf, v: Vec<f32>) {
        self.0[b.index()] = v;
    }
}

/// The forward pass's ops on the CPU: dispatcher kernels, host KV cache, host buffers.
pub(crate) struct CpuOps<'m> {
    model: &'m Model,
    disp: &'m Dispatcher,
    cx: MatmulCx<'m>,
    kv: KvCache,
    rope: RopeCache,
    bufs: Bufs,
}

impl<'m> CpuOps<'m> {
    /// A KV cache of `size` cells (already padded) and RoPE tables for as many positions.
    pub(crate) fn new(
        model: &'m Model,
        disp: &'m Dispatcher,
        numerics: &Numerics,
        size: usize,
    ) -> Result<CpuOps<'m>, ModelError> {
        let hp = &model.hparams;
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
        Ok(CpuOps {
            model,
            disp,
            cx: matmul_cx(numerics, disp),
            kv,
            rope,
            bufs: Bufs::default(),
        })
    }

    /// `y = W·x` for `n` rows through the weight's quantization method, then its scale and bias.
    fn mm(&self, x: &[f32], n: usize, w: &Linear, y: &mut [f32]) {
        w.matmul(&self.model.file, &self.cx, x, n, y);
    }

    /// [`Self::mm`] of several weights over the same activations; when every method has an I2_S view they run
    /// as one fused dispatch (one quantization, one fork-join).
    fn mm_fused(&self, x: &[f32], n: usize, outs: &mut [(&Linear, Vec<f32>)]) {
        let file = &*self.model.file;
        if outs.len() == 1 || outs.iter().any(|(w, _)| w.i2s(file).is_none()) {
            for (w, y) in outs.iter_mut() {
                self.mm(x, n, w, y);
            }
            return;
        }
        let mut products: Vec<I2sProduct> = outs
            .iter_mut()
            .map(|(w, y)| I2sProduct {
                w: w.i2s(file).expect("checked above"),
                y: &mut y[..],
            })
            .collect();
        self.disp.i2s_matmuls(x, n, self.cx.i2s_epilogue, &mut products);
        drop(products);
        for (w, y) in outs.iter_mut() {
            w.scale_and_bias(&mut y[..n * w.rows]);
        }
    }

    /// One head of [`Ops::attention`]: its `n × head_dim` outputs, and with `capture` its scores and
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

impl Ops for CpuOps<'_> {
    fn embed(&mut self, tokens: &[u32]) -> Result<(), ModelError> {
        let (emb, file) = (&self.model.weights.token_embd, &*self.model.file);
        let x = &mut self.bufs.0[Buf::X.index()];
        x.clear();
        for &t in tokens {
            emb.get_row(file, t as usize, x)
                .expect("token_embd can be looked up by row (checked at load)");
        }
        Ok(())
    }

    fn rms_norm(&mut self, src: Buf, norm: Norm, dst: Buf, n: usize, k: usize) -> Result<(), ModelError> {
        let w = norm.of(&self.model.weights).ok_or_else(|| missing_norm(norm))?;
        let (x, y) = self.bufs.io(src, dst, n * k);
        rms_norm_rows(&x[..n * k], w, self.model.hparams.rms_eps, y);
        Ok(())
    }

    fn matmuls(&mut self, il: usize, src: Buf, n: usize, outs: &[(Lin, Buf)]) -> Result<(), ModelError> {
        let layer = &self.model.weights.layers[il];
        let mut ys: Vec<(&Linear, Vec<f32>)> = outs
            .iter()
            .map(|&(lin, b)| {
                let w = lin.of(layer);
                let mut y = self.bufs.take(b);
                y.resize(n * w.rows, 0.0);
                (w, y)
            })
            .collect();
        self.mm_fused(self.bufs.get(src), n, &mut ys);
        for (&(_, b), (_, y)) in outs.iter().zip(ys) {
            self.bufs.put(b, y);
        }
        Ok(())
    }

    fn rope_store(&mut self, il: usize, n: usize, p0: usize) -> Result<(), ModelError> {
        let hp = &self.model.hparams;
        let (hd, nq, nkv) = (hp.head_dim, hp.n_head * hp.head_dim, hp.n_head_kv * hp.head_dim);
        let (mut q, mut k) = (self.bufs.take(Buf::Q), self.bufs.take(Buf::K));
        let v = self.bufs.get(Buf::V);
        for t in 0..n {
            self.rope.apply(self.disp, &mut q[t * nq..(t + 1) * nq], p0 + t);
            self.rope.apply(self.disp, &mut k[t * nkv..(t + 1) * nkv], p0 + t);
            for kh in 0..hp.n_head_kv {
                let r = t * nkv + kh * hd..t * nkv + (kh + 1) * hd;
                self.kv.store(il, kh, p0 + t, &k[r.clone()], &v[r]);
            }
        }
        self.bufs.put(Buf::Q, q);
        self.bufs.put(Buf::K, k);
        Ok(())
    }

    fn attention(&mut self, at: AttnAt) -> Result<Option<AttentionProbs>, ModelError> {
        let hp = &self.model.hparams;
        let (hd, nh, n, n_kv) = (hp.head_dim, hp.n_head, at.n, at.n_kv);
        let group = hp.gqa_group();
        let order = self.cx.order;
        // KQ's activations (Q, permuted) are never contiguous: tinyBLAS sees them only after their conversion
        // to f16, which the x86 build's tinyBLAS refuses (H3 aside), the plain aarch64 one too, and the aarch64
        // fp16 build takes.
        let kq_tinyblas = match order {
            SimdOrder::Avx512 => n >= 2 && self.cx.f16_rounded_act,
            SimdOrder::Neon => false,
            SimdOrder::NeonFp16 => scalar_arm::tinyblas_serves(order, n, hd),
        };
        let kernels = self
            .disp
            .attention_kernels(order, kq_tinyblas, self.cx.f16_path(n, n_kv));
        let shape = HeadShape {
            head_dim: hd,
            n_head: nh,
            il: at.layer,
            n,
            p0: at.p0,
            n_kv,
            kq_scale: 1.0f32 / (hd as f32).sqrt(),
            capture: at.capture,
        };
        let (q, o) = self.bufs.io(Buf::Q, Buf::Attn, n * nh * hd);
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
        Ok(at.capture.then(|| {
            let kq = heads.iter().flat_map(|h| h.1.iter().copied()).collect();
            let sm = heads.iter().flat_map(|h| h.2.iter().copied()).collect();
            (kq, sm)
        }))
    }

    fn ffn_act(&mut self, relu2: bool, len: usize) -> Result<(), ModelError> {
        let gate = &mut self.bufs.0[Buf::Gate.index()][..len];
        self.disp.ffn_act(self.cx.order, gate, relu2);
        Ok(())
    }

    fn mul(&mut self, dst: Buf, src: Buf, len: usize) -> Result<(), ModelError> {
        let (s, d) = self.bufs.io(src, dst, len);
        for (a, u) in d.iter_mut().zip(s.iter()) {
            *a *= u;
        }
        Ok(())
    }

    fn add(&mut self, dst: Buf, src: Buf, len: usize) -> Result<(), ModelError> {
        let (s, d) = self.bufs.io(src, dst, len);
        for (xv, ov) in d.iter_mut().zip(s.iter()) {
            *xv += ov;
        }
        Ok(())
    }

    fn logits(&mut self, src: Buf, n: usize, want: Logits) -> Result<Vec<f32>, ModelError> {
        let m = self.model;
        let (e, n_vocab) = (m.hparams.n_embd, m.hparams.n_vocab);
        let h = self.bufs.get(src);
        let (rows, xs) = match want {
            Logits::All => (n, &h[..n * e]),
            Logits::Last => (1, &h[(n - 1) * e..n * e]),
        };
        let mut logits = vec![0f32; rows * n_vocab];
        let w = m.weights.lm_head();
        w.method
            .matmul(w.data(&m.file), w.shape(), &self.cx, xs, rows, &mut logits);
        Ok(logits)
    }

    fn read(&self, b: Buf) -> Result<Cow<'_, [f32]>, ModelError> {
        Ok(Cow::Borrowed(self.bufs.get(b)))
    }

    fn clear(&mut self) -> Result<(), ModelError> {
        self.kv.clear();
        Ok(())
    }
}

/// The error for a norm the forward pass asked for but the model lacks (a bug in the caller).
pub(super) fn missing_norm(norm: Norm) -> ModelError {
    ModelError::Invalid(format!("the model has no {norm:?} norm weight"))
}
