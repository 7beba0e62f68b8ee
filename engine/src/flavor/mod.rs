//! What a tensor's bytes really are: I2_S layouts, TQ2_0/TQ1_0, dense types, foreign layouts.
//!
//! The ggml type id says how many bytes a tensor *should* take; the flavor says what those bytes
//! mean, checked against the span the file actually gives the tensor (spec §3, §4, §8). Type 36
//! spans that match layouts no real tool writes (the "seed flavors" of §8) are refused with a
//! [`FlavorError::ForeignLayout`] that says what the file seems to be and why it cannot be trusted.

mod i2s;
mod q8_0;
mod tq;

use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

use crate::gguf::{align_up, span_fits, GgmlType, GgufError, GgufFile, TensorInfo};

pub use i2s::{i2s_bytes, i2s_code, i2s_decode_row, i2s_pack, i2s_repack_to_x86, i2s_scale, I2sLayout, I2S_TAIL};
pub use q8_0::{q8_0_blocks, q8_0_bytes, q8_0_dequantize_row, q8_0_quantize_row_ref, BlockQ8_0, QK8_0};
pub use tq::{tq1_0_blocks, tq2_0_blocks, BlockTq1_0, BlockTq2_0, QK_K};

/// What a tensor's bytes are.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Flavor {
    /// bitnet.cpp I2_S: codes in `layout`, per-tensor `scale` read at byte n/4.
    I2s {
        layout: I2sLayout,
        layout_assumed: bool,
        scale: f32,
    },
    /// Upstream TQ2_0 blocks (66 B / 256 weights).
    Tq2_0,
    /// Upstream TQ1_0 blocks (54 B / 256 weights).
    Tq1_0,
    /// ggml Q8_0 blocks (34 B / 32 weights): llama-quantize's type for an output or embedding whose rows are
    /// not a multiple of 256.
    Q8_0,
    F16,
    Bf16,
    F32,
    /// The legacy `bitnet` architecture's `blk.N.<proj>.scale` F32[1] multiplier for tensor `of`.
    SiblingScale {
        of: String,
        value: f32,
    },
    /// A ggml type this engine recognises but does not run.
    Unsupported {
        ggml_type: &'static str,
    },
}

impl Flavor {
    /// Stable short name (JSON keys, counts): `i2_s`, `tq2_0`, `tq1_0`, `q8_0`, `f16`, `bf16`, `f32`,
    /// `sibling_scale`, `unsupported`.
    pub fn name(&self) -> &'static str {
        match self {
            Flavor::I2s { .. } => "i2_s",
            Flavor::Tq2_0 => "tq2_0",
            Flavor::Tq1_0 => "tq1_0",
            Flavor::Q8_0 => "q8_0",
            Flavor::F16 => "f16",
            Flavor::Bf16 => "bf16",
            Flavor::F32 => "f32",
            Flavor::SiblingScale { .. } => "sibling_scale",
            Flavor::Unsupported { .. } => "unsupported",
        }
    }

    /// One human line: e.g. `i2_s x86-act128 (assumed) scale=0.0123`.
    pub fn describe(&self) -> String {
        match self {
            Flavor::I2s {
                layout,
                layout_assumed,
                scale,
            } => {
                let how = if *layout_assumed { " (assumed)" } else { "" };
                format!("i2_s {}{how} scale={scale}", layout.name())
            }
            Flavor::SiblingScale { value, .. } => format!("sibling scale x{value}"),
            Flavor::Unsupported { ggml_type } => format!("unsupported ({ggml_type})"),
            other => other.name().to_string(),
        }
    }
}

/// The layouts a type-36 span can be mistaken for (spec §8). None has a real writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ForeignReading {
    /// 32-weight blocks, 8 code bytes + inline f16 scale: `align(⌈n/32⌉·10)`.
    BitNet32F16,
    /// 32-weight blocks of 8 bytes, scale in a sibling tensor: `align(⌈n/32⌉·8)`.
    Split32WithSibling,
    /// 256-weight blocks of 64 bytes, no scale: `align(⌈n/256⌉·64)`.
    GgmlQk256NoScale,
}

impl ForeignReading {
    pub const ALL: [ForeignReading; 3] = [
        ForeignReading::BitNet32F16,
        ForeignReading::Split32WithSibling,
        ForeignReading::GgmlQk256NoScale,
    ];

    /// Unpadded bytes this reading needs for `n` weights (`None` on overflow).
    pub fn raw_bytes(self, n: u64) -> Option<u64> {
        match self {
            ForeignReading::BitNet32F16 => n.div_ceil(32).checked_mul(10),
            ForeignReading::Split32WithSibling => n.div_ceil(32).checked_mul(8),
            ForeignReading::GgmlQk256NoScale => n.div_ceil(256).checked_mul(64),
        }
    }

    /// What the file would be under this reading, and why it cannot be trusted.
    pub fn explain(self) -> &'static str {
        match self {
            ForeignReading::BitNet32F16 => {
                "BitNet32F16 (32-weight blocks with an inline f16 scale): no ggml type and no real tool writes this \
                 layout, only a BitNet-rs-internal format"
            }
            ForeignReading::Split32WithSibling => {
                "Split32WithSibling (2-bit codes only, scale in another tensor): exactly the I2_S code region without \
                 its 32-byte scale tail; no writer produces scale-less 2-bit data, so the scale is missing"
            }
            ForeignReading::GgmlQk256NoScale => {
                "GgmlQk256NoScale (\"QK256\", 256-weight blocks, no scale): a mis-description of real I2_S that drops \
                 the per-tensor scale; the weights would be off by about mean|W|"
            }
        }
    }
}

/// How the I2_S layout of a file was decided.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct I2sLayoutDecision {
    pub layout: I2sLayout,
    /// True when nothing chose it: the default, because metadata and sizes cannot tell (spec §3.6).
    pub assumed: bool,
    pub reason: String,
}

/// Caller choices for classification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlavorOptions {
    /// Force an I2_S layout instead of assuming [`I2sLayout::X86Act128`].
    pub i2s_layout: Option<I2sLayout>,
}

impl FlavorOptions {
    pub fn layout_decision(&self) -> I2sLayoutDecision {
        match self.i2s_layout {
            Some(layout) => I2sLayoutDecision {
                layout,
                assumed: false,
                reason: format!("set by the caller to {}", layout.name()),
            },
            None => I2sLayoutDecision {
                layout: I2sLayout::X86Act128,
                assumed: true,
                reason: "default: the x86, ARM and 1x4 packings have identical sizes and no metadata key records the \
                         layout; x86-act128 is what the official file and every Python converter write"
                    .into(),
            },
        }
    }
}

/// Why a tensor's bytes cannot be used.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum FlavorError {
    #[error(
        "tensor {name:?} (type 36, {n} weights) has a {span}-byte span; real I2_S needs {expected} (n/4 + 32, padded). \
         The span fits a foreign layout: {}. Refusing to guess: real I2_S carries its scale in a 32-byte tail",
        readings.iter().map(|r| r.explain()).collect::<Vec<_>>().join("; or ")
    )]
    ForeignLayout {
        name: String,
        n: u64,
        span: u64,
        expected: u64,
        readings: Vec<ForeignReading>,
    },
    #[error(
        "tensor {name:?} (type {ty}, {n} weights) has a {span}-byte span that no known layout explains \
         (real {ty} needs {expected} bytes plus padding to {alignment})"
    )]
    UnexplainedSpan {
        name: String,
        ty: &'static str,
        n: u64,
        span: u64,
        expected: u64,
        alignment: u64,
    },
    #[error("tensor {name:?}: I2_S layout {layout} needs a row length that is a multiple of {block}, got {k}")]
    RowNotMultiple {
        name: String,
        layout: &'static str,
        k: u64,
        block: u64,
    },
    #[error("tensor {name:?}: I2_S layout x86-1x4 interleaves four rows per byte and needs rows % 4 == 0, got {rows}")]
    RowsNotMultipleOf4 { name: String, rows: u64 },
    #[error("tensor {name:?}: I2_S scale at byte {offset} of the tensor is {value}, not a finite number")]
    NonFiniteScale { name: String, offset: u64, value: f32 },
    #[error(transparent)]
    Gguf(#[from] GgufError),
}

/// Classify one tensor of `file`.
pub fn classify(file: &GgufFile, t: &TensorInfo, opts: &FlavorOptions) -> Result<Flavor, FlavorError> {
    Ok(match t.ggml_type {
        GgmlType::I2_S => classify_i2s(file, t, opts)?,
        GgmlType::TQ2_0 => Flavor::Tq2_0,
        GgmlType::TQ1_0 => Flavor::Tq1_0,
        GgmlType::Q8_0 => Flavor::Q8_0,
        GgmlType::F16 => Flavor::F16,
        GgmlType::BF16 => Flavor::Bf16,
        GgmlType::F32 => match sibling_of(file, t) {
            Some(of) => {
                let b = file.tensor_data(t)?;
                Flavor::SiblingScale {
                    of,
                    value: f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                }
            }
            None => Flavor::F32,
        },
        other => Flavor::Unsupported {
            ggml_type: other.name(),
        },
    })
}

/// For arch `bitnet`, `blk.N.<proj>.scale` F32[1] multiplies the output of `blk.N.<proj>.weight`
/// (spec §6.2); returns that weight's name when `t` is such a tensor.
fn sibling_of(file: &GgufFile, t: &TensorInfo) -> Option<String> {
    if file.architecture() != "bitnet" || t.n_elements != 1 {
        return None;
    }
    let stem = t.name.strip_suffix(".scale")?;
    let weight = format!("{stem}.weight");
    file.tensor(&weight).map(|_| weight)
}

fn classify_i2s(file: &GgufFile, t: &TensorInfo, opts: &FlavorOptions) -> Result<Flavor, FlavorError> {
    let n = t.n_elements;
    let a = file.alignment;
    let need = i2s_bytes(n);
    if !span_fits(need, t.span, a) {
        let readings: Vec<ForeignReading> = ForeignReading::ALL
            .into_iter()
            .filter(|r| r.raw_bytes(n).is_some_and(|raw| span_fits(raw, t.span, a)))
            .collect();
        let expected = align_up(need, a).unwrap_or(u64::MAX);
        return Err(if readings.is_empty() {
            FlavorError::UnexplainedSpan {
                name: t.name.clone(),
                ty: "i2_s",
                n,
                span: t.span,
                expected: need,
                alignment: a,
            }
        } else {
            FlavorError::ForeignLayout {
                name: t.name.clone(),
                n,
                span: t.span,
                expected,
                readings,
            }
        });
    }
    let decision = opts.layout_decision();
    let (k, rows) = (t.row_len(), t.n_rows());
    match decision.layout.block() {
        Some(block) if k % block != 0 => {
            return Err(FlavorError::RowNotMultiple {
                name: t.name.clone(),
                layout: decision.layout.name(),
                k,
                block,
            })
        }
        None if rows % 4 != 0 => {
            return Err(FlavorError::RowsNotMultipleOf4 {
                name: t.name.clone(),
                rows,
            })
        }
        _ => {}
    }
    let data = file.tensor_data(t)?;
    let scale = i2s_scale(data, n).ok_or_else(|| GgufError::SpanTooShort {
        name: t.name.clone(),
        start: t.file_offset,
        need,
        span: t.span,
    })?;
    if !scale.is_finite() {
        return Err(FlavorError::NonFiniteScale {
            name: t.name.clone(),
            offset: n / 4,
            value: scale,
        });
    }
    Ok(Flavor::I2s {
        layout: decision.layout,
        layout_assumed: decision.assumed,
        scale,
    })
}

/// One tensor's classification.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorFlavor {
    pub name: String,
    pub flavor: Flavor,
}

/// Every tensor's flavor in file order, counts per flavor name, and the I2_S layout decision
/// (present when the file has I2_S tensors). Used by `parity inspect` and receipts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelFlavors {
    pub tensors: Vec<TensorFlavor>,
    pub counts: BTreeMap<&'static str, usize>,
    pub i2s_layout: Option<I2sLayoutDecision>,
}

impl ModelFlavors {
    /// Classify every tensor; the first tensor that cannot be used fails the whole file.
    pub fn classify(file: &GgufFile, opts: &FlavorOptions) -> Result<ModelFlavors, FlavorError> {
        let mut tensors = Vec::with_capacity(file.tensors.len());
        let mut counts = BTreeMap::new();
        for t in &file.tensors {
            let flavor = classify(file, t, opts)?;
            *counts.entry(flavor.name()).or_insert(0) += 1;
            tensors.push(TensorFlavor {
                name: t.name.clone(),
                flavor,
            });
        }
        let i2s_layout = counts.contains_key("i2_s").then(|| opts.layout_decision());
        Ok(ModelFlavors {
            tensors,
            counts,
            i2s_layout,
        })
    }

    /// The flavor of a tensor by name.
    pub fn get(&self, name: &str) -> Option<&Flavor> {
        self.tensors.iter().find(|t| t.name == name).map(|t| &t.flavor)
    }

    /// Names of tensors whose flavor the engine cannot run.
    pub fn unsupported(&self) -> impl Iterator<Item = &TensorFlavor> {
        self.tensors
            .iter()
            .filter(|t| matches!(t.flavor, Flavor::Unsupported { .. }))
    }
}
