//! The f16 KV cache: K rows per cell, V stored transposed (positions contiguous), as llama.cpp lays it out.

use half::f16;

/// Per layer and KV head: K as `[cell][head_dim]`, V as `[head_dim][cell]`.
#[derive(Clone, Debug)]
pub struct KvCache {
    pub n_layer: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    /// Cells (context size, already padded).
    pub size: usize,
    k: Vec<f16>,
    v: Vec<f16>,
}

impl KvCache {
    pub fn new(n_layer: usize, n_head_kv: usize, head_dim: usize, size: usize) -> KvCache {
        let n = n_layer * n_head_kv * head_dim * size;
        KvCache {
            n_layer,
            n_head_kv,
            head_dim,
            size,
            k: vec![f16::ZERO; n],
            v: vec![f16::ZERO; n],
        }
    }

    /// [`KvCache::new`], allocated fallibly: a context too large for this machine is an error.
    pub fn try_new(
        n_layer: usize,
        n_head_kv: usize,
        head_dim: usize,
        size: usize,
    ) -> Result<KvCache, super::ops::AllocError> {
        let n = [n_head_kv, head_dim, size]
            .iter()
            .try_fold(n_layer, |acc, &d| acc.checked_mul(d))
            .ok_or(super::ops::AllocError {
                what: "KV cache",
                bytes: None,
            })?;
        Ok(KvCache {
            n_layer,
            n_head_kv,
            head_dim,
            size,
            k: super::ops::try_zeroed(n, f16::ZERO, "KV cache (K)")?,
            v: super::ops::try_zeroed(n, f16::ZERO, "KV cache (V)")?,
        })
    }

    /// Bytes held by the cache.
    pub fn bytes(&self) -> usize {
        (self.k.len() + self.v.len()) * 2
    }

    pub fn clear(&mut self) {
        self.k.fill(f16::ZERO);
        self.v.fill(f16::ZERO);
    }

    fn base(&self, layer: usize, head: usize) -> usize {
        (layer * self.n_head_kv + head) * self.head_dim * self.size
    }

    /// Store one position's K and V (f32, rounded to f16 RNE) for one head.
    pub fn store(&mut self, layer: usize, head: usize, pos: usize, k: &[f32], v: &[f32]) {
        let b = self.base(layer, head);
        let hd = self.head_dim;
        for (d, &x) in k.iter().enumerate() {
            self.k[b + pos * hd + d] = f16::from_f32(x);
        }
        for (d, &x) in v.iter().enumerate() {
            self.v[b + d * self.size + pos] = f16::from_f32(x);
        }
    }

    /// K row of one cell.
    pub fn k_row(&self, layer: usize, head: usize, pos: usize) -> &[f16] {
        let b = self.base(layer, head) + pos * self.head_dim;
        &self.k[b..b + self.head_dim]
    }

    /// K rows of the first `n` cells, contiguous (`n × head_dim`).
    pub fn k_rows(&self, layer: usize, head: usize, n: usize) -> &[f16] {
        let b = self.base(layer, head);
        &self.k[b..b + n * self.head_dim]
    }

    /// V row of one head dimension over the first `n_kv` cells.
    pub fn v_col(&self, layer: usize, head: usize, d: usize, n_kv: usize) -> &[f16] {
        let b = self.base(layer, head) + d * self.size;
        &self.v[b..b + n_kv]
    }
}
