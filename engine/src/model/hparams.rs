//! Hyper-parameters read from GGUF metadata with bitnet.cpp's defaults (spec §6.1).

use serde::Serialize;

use crate::gguf::{GgufFile, Value};

/// The BitNet architectures bitnet.cpp knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Arch {
    /// `bitnet-b1.58` / `bitnet-25`: ReLU² FFN, sub-norms, GQA, tied F16 head (2B-4T family).
    #[serde(rename = "bitnet-b1.58")]
    BitnetB158,
    /// `bitnet`: the older 1bitLLM layout, SiLU FFN, optional per-tensor `.scale` multipliers.
    #[serde(rename = "bitnet")]
    Bitnet,
    /// `llama` with ternary weights (Llama3-8B-1.58, Falcon3 1.58bit, Falcon-E): `build_llama` — no sub-norms,
    /// SiLU FFN, rope type NORM (adjacent pairs), optional untied `output.weight`, optional `rope_freqs`.
    #[serde(rename = "llama")]
    Llama,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::BitnetB158 => "bitnet-b1.58",
            Arch::Bitnet => "bitnet",
            Arch::Llama => "llama",
        }
    }

    /// Whether RoPE rotates pairs `(x[i], x[i + n_rot/2])` (NEOX, the BitNet archs) rather than adjacent
    /// pairs `(x[2i], x[2i+1])` (NORM, `llama`): `llama_rope_type` of the fork.
    pub fn rope_neox(self) -> bool {
        self != Arch::Llama
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum HParamsError {
    #[error("general.architecture is missing")]
    NoArchitecture,
    #[error("architecture {0:?} is not supported (expected bitnet-b1.58, bitnet-25, bitnet or llama)")]
    UnsupportedArch(String),
    #[error("required metadata key {0:?} is missing")]
    Missing(String),
    #[error("metadata key {key:?} has an unusable value: {why}")]
    Invalid { key: String, why: String },
}

/// Every hyper-parameter the forward pass uses. `defaulted` names the keys that were absent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HParams {
    pub arch: Arch,
    /// The architecture string as stored (`bitnet-25` and `bitnet-b1.58` share code).
    pub arch_name: String,
    pub n_vocab: usize,
    pub n_ctx_train: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub head_dim_v: usize,
    pub n_rot: usize,
    pub rope_freq_base: f32,
    pub rope_freq_scale: f32,
    pub rms_eps: f32,
    /// Keys that were absent and took bitnet.cpp's default.
    pub defaulted: Vec<String>,
}

struct Reader<'a> {
    g: &'a GgufFile,
    prefix: String,
    defaulted: Vec<String>,
}

impl Reader<'_> {
    fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.prefix)
    }

    fn raw(&self, k: &str) -> Option<&Value> {
        self.g.get(&self.key(k))
    }

    /// A count: scalar, or an array whose entries must all be equal (per-layer arrays).
    fn count(&mut self, k: &str, default: Option<usize>) -> Result<usize, HParamsError> {
        let key = self.key(k);
        let invalid = |why: &str| HParamsError::Invalid {
            key: key.clone(),
            why: why.into(),
        };
        match self.raw(k) {
            None => match default {
                Some(d) => {
                    self.defaulted.push(key.clone());
                    Ok(d)
                }
                None => Err(HParamsError::Missing(key.clone())),
            },
            Some(Value::Array(_, items)) => {
                let vals: Option<Vec<u64>> = items.iter().map(Value::as_u64).collect();
                let vals = vals.ok_or_else(|| invalid("array of non-integers"))?;
                match vals.first() {
                    Some(&v) if vals.iter().all(|&x| x == v) => usize::try_from(v).map_err(|_| invalid("too large")),
                    Some(_) => Err(invalid("per-layer values differ (not supported)")),
                    None => Err(invalid("empty array")),
                }
            }
            Some(v) => v.as_u64().and_then(|v| usize::try_from(v).ok()).ok_or_else(|| {
                invalid(&format!(
                    "expected an unsigned integer, found {}",
                    v.value_type().name()
                ))
            }),
        }
    }

    fn float(&mut self, k: &str, default: Option<f32>) -> Result<f32, HParamsError> {
        let key = self.key(k);
        match self.raw(k) {
            None => match default {
                Some(d) => {
                    self.defaulted.push(key);
                    Ok(d)
                }
                None => Err(HParamsError::Missing(key)),
            },
            Some(v) => match v.as_f32() {
                None => Err(HParamsError::Invalid {
                    key,
                    why: "expected a float".into(),
                }),
                Some(x) if !x.is_finite() => Err(HParamsError::Invalid {
                    key,
                    why: format!("{x} is not a finite number (the forward pass would compute NaN)"),
                }),
                Some(x) => Ok(x),
            },
        }
    }

    /// A count that must not be zero.
    fn nonzero(&mut self, k: &str, default: Option<usize>) -> Result<usize, HParamsError> {
        match self.count(k, default)? {
            0 => Err(HParamsError::Invalid {
                key: self.key(k),
                why: "must not be zero".into(),
            }),
            n => Ok(n),
        }
    }
}

impl HParams {
    /// Read hyper-parameters the way `llm_load_hparams` does for the BitNet archs.
    pub fn from_gguf(g: &GgufFile) -> Result<HParams, HParamsError> {
        let arch_name = g
            .get_str("general.architecture")
            .ok_or(HParamsError::NoArchitecture)?
            .to_string();
        let arch = match arch_name.as_str() {
            "bitnet-b1.58" | "bitnet-25" => Arch::BitnetB158,
            "bitnet" => Arch::Bitnet,
            "llama" => Arch::Llama,
            other => return Err(HParamsError::UnsupportedArch(other.into())),
        };
        let mut r = Reader {
            g,
            prefix: arch_name.clone(),
            defaulted: Vec::new(),
        };
        let n_tokens = g
            .get("tokenizer.ggml.tokens")
            .and_then(Value::as_array)
            .map(<[Value]>::len);
        let n_vocab = r.nonzero("vocab_size", n_tokens)?;
        let n_ctx_train = r.nonzero("context_length", None)?;
        let n_embd = r.nonzero("embedding_length", None)?;
        let n_layer = r.nonzero("block_count", None)?;
        let n_ff = r.nonzero("feed_forward_length", None)?;
        let n_head = r.count("attention.head_count", None)?;
        // The head size defaults to n_embd / n_head; only then must n_head divide n_embd (Falcon3 sets
        // `attention.key_length` 256 with n_embd 3072 and 12 heads, as llama.cpp allows).
        let explicit_head = r.raw("attention.key_length").is_some();
        if n_head == 0 || (!explicit_head && n_embd % n_head != 0) {
            return Err(HParamsError::Invalid {
                key: r.key("attention.head_count"),
                why: format!("{n_head} does not divide embedding_length {n_embd}"),
            });
        }
        let n_head_kv = r.count("attention.head_count_kv", Some(n_head))?;
        if n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(HParamsError::Invalid {
                key: r.key("attention.head_count_kv"),
                why: format!("{n_head_kv} does not divide head_count {n_head}"),
            });
        }
        let head_dim = r.count("attention.key_length", Some(n_embd / n_head))?;
        let head_dim_v = r.count("attention.value_length", Some(head_dim))?;
        let n_rot = r.count("rope.dimension_count", Some(head_dim))?;
        if n_rot != head_dim || head_dim % 2 != 0 || head_dim != head_dim_v {
            return Err(HParamsError::Invalid {
                key: r.key("rope.dimension_count"),
                why: format!(
                    "rope dims {n_rot}, key length {head_dim}, value length {head_dim_v}: must be equal and even"
                ),
            });
        }
        let rope_freq_base = r.float("rope.freq_base", Some(10000.0))?;
        let scale = match r.raw("rope.scaling.factor").or_else(|| r.raw("rope.scale_linear")) {
            Some(v) => v.as_f32().unwrap_or(0.0),
            None => 0.0,
        };
        if !scale.is_finite() || scale < 0.0 {
            return Err(HParamsError::Invalid {
                key: r.key("rope.scaling.factor"),
                why: format!("{scale} is not a finite non-negative number"),
            });
        }
        if rope_freq_base <= 0.0 {
            return Err(HParamsError::Invalid {
                key: r.key("rope.freq_base"),
                why: format!("{rope_freq_base} must be positive"),
            });
        }
        let rope_freq_scale = if scale == 0.0 { 1.0 } else { 1.0 / scale };
        let rms_eps = r.float("attention.layer_norm_rms_epsilon", None)?;
        if rms_eps < 0.0 {
            return Err(HParamsError::Invalid {
                key: r.key("attention.layer_norm_rms_epsilon"),
                why: format!("{rms_eps} is negative (1/sqrt(mean + eps) could be NaN)"),
            });
        }
        Ok(HParams {
            arch,
            arch_name,
            n_vocab,
            n_ctx_train,
            n_embd,
            n_layer,
            n_ff,
            n_head,
            n_head_kv,
            head_dim,
            head_dim_v,
            n_rot,
            rope_freq_base,
            rope_freq_scale,
            rms_eps,
            defaulted: r.defaulted,
        })
    }

    /// Query heads per KV head.
    pub fn gqa_group(&self) -> usize {
        self.n_head / self.n_head_kv
    }
}

/// The public model family a file most likely belongs to, from its architecture, shapes and tokenizer
/// (for `parity inspect`; no computation depends on it).
pub fn model_family(hp: &HParams, pre: Option<&str>) -> &'static str {
    match hp.arch {
        Arch::BitnetB158 => "BitNet b1.58 (2B-4T family)",
        Arch::Bitnet if hp.n_embd == 3200 => "1bitLLM bitnet_b1_58-3B",
        Arch::Bitnet if hp.n_embd == 1536 => "1bitLLM bitnet_b1_58-large",
        Arch::Bitnet => "1bitLLM bitnet_b1_58 (legacy bitnet arch)",
        Arch::Llama => match pre {
            Some("falcon_e") => "Falcon-E (arch llama, ternary)",
            Some("falcon3") => "Falcon3 1.58bit (arch llama, ternary)",
            _ if hp.head_dim * hp.n_head != hp.n_embd || hp.rope_freq_base == 1_000_042.0 => {
                "Falcon3 1.58bit (arch llama, ternary)"
            }
            Some("llama-bpe" | "llama3" | "llama-v3") => "Llama3-8B-1.58 (arch llama, ternary)",
            _ if hp.n_vocab == 128_256 => "Llama3-8B-1.58 (arch llama, ternary)",
            _ => "llama-architecture ternary model",
        },
    }
}
