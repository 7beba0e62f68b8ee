//! The model's tensors, looked up by llama.cpp's names and checked against the hyper-parameters.
//!
//! Ternary and f16 weights stay in the memory map (ranges into the file); only norms, biases and
//! scale multipliers (a few KB) are copied out as f32. [`Weights::make_resident`] optionally moves the matmul
//! weights into one huge-page-backed anonymous region (faster to stream than page-cache pages).

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::ops::{Deref, Range};
use std::sync::Arc;

use crate::flavor::{Flavor, ModelFlavors};
use crate::gguf::{GgmlType, GgufFile, TensorInfo};
use crate::kernels::{F16Matrix, I2sMatrix};
use crate::quant::{method_for, MatmulCx, QuantMethod, Shape};

use super::hparams::{Arch, HParams};
use super::ModelError;

/// Where a weight's bytes live.
#[derive(Clone, Debug)]
pub enum WeightBytes {
    /// A range of the memory-mapped file.
    Mapped(Range<usize>),
    /// A copy (f16 data at an odd address, or a repacked layout).
    Owned(Vec<u8>),
    /// A range of the model's resident [`Arena`].
    Resident(Arc<Arena>, Range<usize>),
}

/// Anonymous memory holding copies of the matmul weights, 2 MiB-aligned and advised for transparent huge
/// pages (`MADV_HUGEPAGE`). Decode streams every weight once per token; from page-cache pages (4 KiB, one TLB
/// miss per page, wherever the file's pages happen to sit) the 128256×2560 F16 head measured 39 ms on one
/// thread, from this region 25 ms. Read-only once filled.
#[derive(Debug)]
pub struct Arena {
    map: memmap2::Mmap,
    base: usize,
}

impl Arena {
    const ALIGN: usize = 2 << 20;

    fn bytes(&self, r: Range<usize>) -> &[u8] {
        &self.map[self.base + r.start..self.base + r.end]
    }
}

/// A linear layer's weight, `rows` outputs of `k` inputs: its bytes, its quantization method, and the
/// legacy scale and bias applied after the product.
#[derive(Clone, Debug)]
pub struct Linear {
    pub name: String,
    pub rows: usize,
    pub k: usize,
    pub bytes: WeightBytes,
    pub method: Arc<dyn QuantMethod>,
    /// Legacy `bitnet` arch: `blk.N.<name>.scale`, multiplied after the matmul.
    pub out_scale: Option<f32>,
    pub bias: Option<Vec<f32>>,
}

impl Linear {
    pub fn data<'a>(&'a self, file: &'a GgufFile) -> &'a [u8] {
        match &self.bytes {
            WeightBytes::Mapped(r) => &file.bytes()[r.clone()],
            WeightBytes::Owned(v) => v,
            WeightBytes::Resident(a, r) => a.bytes(r.clone()),
        }
    }

    pub fn shape(&self) -> Shape {
        Shape {
            rows: self.rows,
            k: self.k,
        }
    }

    /// The weight type's name (`i2_s`, `tq2_0`, `f16`).
    pub fn type_name(&self) -> &'static str {
        self.method.type_name()
    }

    /// The fusable I2_S view, when the method has one.
    pub fn i2s<'a>(&'a self, file: &'a GgufFile) -> Option<I2sMatrix<'a>> {
        self.method.i2s(self.data(file), self.shape())
    }

    /// The dense f16 view, when the method has one.
    pub fn f16<'a>(&'a self, file: &'a GgufFile) -> Option<F16Matrix<'a>> {
        self.method.f16(self.data(file), self.shape())
    }

    /// Row `r` as f32, appended to `out` (`ggml_get_rows`: the embedding lookup); `None` when the method
    /// cannot be looked up by row (checked at load for `token_embd`).
    pub fn get_row(&self, file: &GgufFile, r: usize, out: &mut Vec<f32>) -> Option<()> {
        let start = out.len();
        out.resize(start + self.k, 0.0);
        self.method.get_row(self.data(file), self.shape(), r, &mut out[start..])
    }

    /// `y = W·x` for `n` rows (every element of `y[..n·rows]` is written), then the scale and bias.
    pub fn matmul(&self, file: &GgufFile, cx: &MatmulCx, x: &[f32], n: usize, y: &mut [f32]) {
        let y = &mut y[..n * self.rows];
        self.method.matmul(self.data(file), self.shape(), cx, x, n, y);
        self.scale_and_bias(y);
    }

    /// The legacy `.scale` multiplier, then the bias, on output rows of this weight.
    pub fn scale_and_bias(&self, y: &mut [f32]) {
        if let Some(s) = self.out_scale {
            y.iter_mut().for_each(|v| *v *= s);
        }
        if let Some(b) = &self.bias {
            for row in y.chunks_exact_mut(self.rows) {
                row.iter_mut().zip(b).for_each(|(v, bv)| *v += bv);
            }
        }
    }
}

impl Weights {
    const COPY_PIECE: usize = 8 << 20;

    /// The matmul weights still read from the memory map (token embedding / head and every layer's linears).
    fn linears_mut(&mut self) -> impl Iterator<Item = &mut Linear> {
        std::iter::once(&mut self.token_embd)
            .chain(self.output.as_mut())
            .chain(self.layers.iter_mut().flat_map(|l| {
                [
                    &mut l.wq,
                    &mut l.wk,
                    &mut l.wv,
                    &mut l.wo,
                    &mut l.ffn_gate,
                    &mut l.ffn_up,
                    &mut l.ffn_down,
                ]
            }))
    }

    /// The bytes of every matmul weight (the tied head and each layer's seven linears): what one decoded token
    /// reads from memory.
    pub fn matmul_bytes<'a>(&'a self, file: &'a GgufFile) -> Vec<&'a [u8]> {
        std::iter::once(self.lm_head())
            .chain(
                self.layers
                    .iter()
                    .flat_map(|l| [&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down]),
            )
            .map(|w| w.data(file))
            .collect()
    }

    /// The LM head: `output.weight` where the arch uses it (`llama`), else the tied `token_embd`.
    pub fn lm_head(&self) -> &Linear {
        self.output.as_ref().unwrap_or(&self.token_embd)
    }

    /// Whether the matmul weights live in a resident [`Arena`].
    pub fn is_resident(&self) -> bool {
        matches!(self.token_embd.bytes, WeightBytes::Resident(..))
    }

    /// Copy every matmul weight not yet resident (memory-mapped, or an owned repack) into one [`Arena`],
    /// releasing each mapped source range from the process's resident set as it is copied, so that peak RSS
    /// stays about one file. Returns the bytes copied. Values are copied bit for bit: results do not change.
    pub fn make_resident(&mut self, file: &GgufFile) -> Result<usize, ModelError> {
        let io = |e: std::io::Error| ModelError::Invalid(format!("cannot allocate resident weights: {e}"));
        let lens: Vec<usize> = self
            .linears_mut()
            .filter(|w| !matches!(w.bytes, WeightBytes::Resident(..)))
            .map(|w| w.data(file).len())
            .collect();
        let total = lens
            .iter()
            .try_fold(0usize, |t, l| t.checked_add(l.next_multiple_of(64)));
        let total = total.ok_or_else(|| ModelError::Invalid("weight sizes overflow".into()))?;
        if total == 0 {
            return Ok(0);
        }
        let mut map = memmap2::MmapMut::map_anon(total + Arena::ALIGN).map_err(io)?;
        let base = (Arena::ALIGN - map.as_ptr() as usize % Arena::ALIGN) % Arena::ALIGN;
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::HugePage); // best effort: THP may be off
        let mut placed = Vec::with_capacity(lens.len());
        let mut at = base;
        for w in self
            .linears_mut()
            .filter(|w| !matches!(w.bytes, WeightBytes::Resident(..)))
        {
            match &w.bytes {
                // In 8 MiB pieces, each released as soon as it is copied: the 0.66 GB head copied whole would
                // hold source and copy resident at once.
                WeightBytes::Mapped(r) => {
                    for piece in r.clone().step_by(Self::COPY_PIECE) {
                        let p = piece..(piece + Self::COPY_PIECE).min(r.end);
                        let dst = at + (p.start - r.start);
                        map[dst..dst + p.len()].copy_from_slice(&file.bytes()[p.clone()]);
                        file.release(p);
                    }
                    file.release(r.clone());
                }
                WeightBytes::Owned(v) => map[at..at + v.len()].copy_from_slice(v),
                WeightBytes::Resident(..) => unreachable!("filtered above"),
            }
            let len = w.data(file).len();
            placed.push(at - base..at - base + len);
            at += len.next_multiple_of(64);
        }
        let arena = Arc::new(Arena {
            map: map.make_read_only().map_err(io)?,
            base,
        });
        let mut placed = placed.into_iter();
        for w in self
            .linears_mut()
            .filter(|w| !matches!(w.bytes, WeightBytes::Resident(..)))
        {
            let r = placed.next().expect("one placement per copied weight");
            w.bytes = WeightBytes::Resident(arena.clone(), r);
        }
        Ok(total)
    }
}

/// One transformer block.
#[derive(Clone, Debug)]
pub struct Layer {
    pub attn_norm: Vec<f32>,
    pub wq: Linear,
    pub wk: Linear,
    pub wv: Linear,
    pub wo: Linear,
    /// The BitNet archs' norm before `wo` (absent in `llama`).
    pub attn_sub_norm: Option<Vec<f32>>,
    pub ffn_norm: Vec<f32>,
    pub ffn_gate: Linear,
    pub ffn_up: Linear,
    pub ffn_down: Linear,
    /// The BitNet archs' norm before `ffn_down` (absent in `llama`).
    pub ffn_sub_norm: Option<Vec<f32>>,
}

/// All weights of a BitNet model.
#[derive(Clone, Debug)]
pub struct Weights {
    /// `token_embd.weight` (F16 or Q8_0): embeddings and, unless [`Weights::output`] is set, the LM head;
    /// `n_vocab` rows of `n_embd`.
    pub token_embd: Linear,
    /// `output.weight` (F16 or Q8_0), the untied LM head of arch `llama`. The BitNet archs never load it.
    pub output: Option<Linear>,
    pub output_norm: Vec<f32>,
    pub layers: Vec<Layer>,
    /// Whether the file also has `output.weight`, which bitnet.cpp ignores for the BitNet archs (spec §6.6).
    pub has_output_weight: bool,
    /// `rope_freqs.weight` (`n_rot/2` divisors of each pair's θ), arch `llama` only, when present.
    pub rope_freqs: Option<Vec<f32>>,
}

/// The file, remembering every tensor the weights look up: tensors nobody looked up are refused after
/// loading, as llama.cpp refuses a file whose tensor count differs from the tensors it creates.
struct Lookup<'a> {
    file: &'a GgufFile,
    used: RefCell<BTreeSet<String>>,
}

impl<'a> Lookup<'a> {
    fn new(file: &'a GgufFile) -> Self {
        Lookup {
            file,
            used: RefCell::new(BTreeSet::new()),
        }
    }

    fn tensor(&self, name: &str) -> Option<&'a TensorInfo> {
        let t = self.file.tensor(name);
        if t.is_some() {
            self.used.borrow_mut().insert(name.to_string());
        }
        t
    }

    /// Every tensor of the file that was never looked up, in file order.
    fn unused(&self) -> Vec<String> {
        let used = self.used.borrow();
        self.file
            .tensors
            .iter()
            .filter(|t| !used.contains(&t.name))
            .map(|t| t.name.clone())
            .collect()
    }
}

impl Deref for Lookup<'_> {
    type Target = GgufFile;
    fn deref(&self) -> &GgufFile {
        self.file
    }
}

fn tensor<'a>(g: &Lookup<'a>, name: &str) -> Result<&'a TensorInfo, ModelError> {
    g.tensor(name)
        .ok_or_else(|| ModelError::MissingTensor(name.to_string()))
}

fn expect_dims(t: &TensorInfo, want: &[u64]) -> Result<(), ModelError> {
    if t.dims != want {
        return Err(ModelError::BadShape {
            name: t.name.clone(),
            found: t.dims.clone(),
            expected: want.to_vec(),
        });
    }
    Ok(())
}

/// An F32 vector tensor (norm weight, bias, scale) of `len` values.
fn f32_vec(g: &Lookup, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
    let t = tensor(g, name)?;
    expect_dims(t, &[len as u64])?;
    if t.ggml_type != GgmlType::F32 {
        return Err(ModelError::UnsupportedType {
            name: name.into(),
            ty: t.ggml_type.name(),
        });
    }
    let b = g.tensor_data(t)?;
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect())
}

fn optional_f32_vec(g: &Lookup, name: &str, len: usize) -> Result<Option<Vec<f32>>, ModelError> {
    if g.tensor(name).is_none() {
        return Ok(None);
    }
    f32_vec(g, name, len).map(Some)
}

/// The flavor of every tensor, by name.
type FlavorMap<'a> = HashMap<&'a str, &'a Flavor>;

/// Load a linear weight `name` of shape `[k, rows]` with its quantization method (built from its flavor),
/// and its optional `.bias` and `.scale`.
fn load_linear(g: &Lookup, flavors: &FlavorMap, base: &str, k: usize, rows: usize) -> Result<Linear, ModelError> {
    let name = format!("{base}.weight");
    let t = tensor(g, &name)?;
    expect_dims(t, &[k as u64, rows as u64])?;
    let data = g.tensor_data(t)?;
    let flavor = flavors
        .get(name.as_str())
        .ok_or_else(|| ModelError::MissingTensor(name.clone()))?;
    let prepared = method_for(&name, flavor, data, Shape { rows, k })?;
    let start = t.file_offset as usize;
    let bytes = match prepared.owned {
        Some(v) => WeightBytes::Owned(v),
        None => WeightBytes::Mapped(start..start + data.len()),
    };
    let out_scale = optional_f32_vec(g, &format!("{base}.scale"), 1)?.map(|v| v[0]);
    let bias = optional_f32_vec(g, &format!("{base}.bias"), rows)?;
    Ok(Linear {
        name,
        rows,
        k,
        bytes,
        method: prepared.method,
        out_scale,
        bias,
    })
}

impl Weights {
    /// Look up and check every tensor; `flavors` says what each tensor's bytes are.
    /// Every tensor of the file must be used: extra ones (a lowered `block_count` with the layers left in,
    /// tensors of another architecture) are [`ModelError::UnusedTensors`].
    pub fn load(file: &Arc<GgufFile>, hp: &HParams, flavors: &ModelFlavors) -> Result<Weights, ModelError> {
        let g = &Lookup::new(file);
        let flavors: FlavorMap = flavors.tensors.iter().map(|t| (t.name.as_str(), &t.flavor)).collect();
        let flavors = &flavors;
        let (e, f) = (hp.n_embd, hp.n_ff);
        let q_dim = hp.n_head * hp.head_dim;
        let kv_dim = hp.n_head_kv * hp.head_dim;
        // The embedding must be looked up by row (F16, Q8_0); the head is any matmul method.
        let token_embd = load_linear(g, flavors, "token_embd", e, hp.n_vocab)?;
        if token_embd.get_row(g, 0, &mut Vec::new()).is_none() {
            return Err(ModelError::UnsupportedType {
                name: token_embd.name,
                ty: token_embd.method.type_name(),
            });
        }
        let llama = hp.arch == Arch::Llama;
        let output = match g.tensor("output.weight") {
            Some(_) if llama => Some(load_linear(g, flavors, "output", e, hp.n_vocab)?),
            _ => None,
        };
        let sub_norm = |name: &str, len: usize| {
            if llama {
                Ok(None)
            } else {
                f32_vec(g, name, len).map(Some)
            }
        };
        let mut layers = Vec::with_capacity(hp.n_layer);
        for i in 0..hp.n_layer {
            let b = |s: &str| format!("blk.{i}.{s}");
            layers.push(Layer {
                attn_norm: f32_vec(g, &b("attn_norm.weight"), e)?,
                wq: load_linear(g, flavors, &b("attn_q"), e, q_dim)?,
                wk: load_linear(g, flavors, &b("attn_k"), e, kv_dim)?,
                wv: load_linear(g, flavors, &b("attn_v"), e, kv_dim)?,
                wo: load_linear(g, flavors, &b("attn_output"), q_dim, e)?,
                attn_sub_norm: sub_norm(&b("attn_sub_norm.weight"), q_dim)?,
                ffn_norm: f32_vec(g, &b("ffn_norm.weight"), e)?,
                ffn_gate: load_linear(g, flavors, &b("ffn_gate"), e, f)?,
                ffn_up: load_linear(g, flavors, &b("ffn_up"), e, f)?,
                ffn_down: load_linear(g, flavors, &b("ffn_down"), f, e)?,
                ffn_sub_norm: sub_norm(&b("ffn_sub_norm.weight"), f)?,
            });
        }
        if hp.arch == Arch::BitnetB158 {
            for l in &layers {
                if let Some(lin) = [&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down]
                    .into_iter()
                    .find(|l| l.out_scale.is_some())
                {
                    return Err(ModelError::UnexpectedTensor(format!(
                        "{} has a .scale tensor, which bitnet-b1.58 never loads",
                        lin.name
                    )));
                }
            }
        }
        let rope_freqs = if llama {
            optional_f32_vec(g, "rope_freqs.weight", hp.n_rot / 2)?
        } else {
            None
        };
        let weights = Weights {
            token_embd,
            output,
            output_norm: f32_vec(g, "output_norm.weight", e)?,
            layers,
            has_output_weight: g.tensor("output.weight").is_some(),
            rope_freqs,
        };
        let unused = g.unused();
        if !unused.is_empty() {
            return Err(ModelError::UnusedTensors {
                n_file: file.tensors.len(),
                n_used: file.tensors.len() - unused.len(),
                block_count: format!("{}.block_count", hp.arch_name),
                n_layer: hp.n_layer,
                unused,
            });
        }
        Ok(weights)
    }
}
