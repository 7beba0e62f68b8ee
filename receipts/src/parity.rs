//! `parity-receipt/v1`: evidence that an engine's logits match a named reference.

use serde::{Deserialize, Serialize};

use crate::canonical::sha256_hex;
use crate::defs::{
    summarize, Generation, Host, KernelIsaLog, KernelLog, KlStatsRecord, MetricsSummary, Mode, Model, PositionMetrics,
    SectionDigests, Signature, Tool,
};
use crate::schema::SchemaKind;
use crate::seal::Receipt;

/// A parity receipt (mirrors `schemas/parity-receipt.v1.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParityReceipt {
    /// Always `parity-receipt/v1`.
    pub schema_version: crate::schema::ParityV1,
    /// Program that wrote it.
    pub tool: Tool,
    /// RFC 3339 time of writing.
    pub created_at: String,
    /// Machine.
    pub host: Host,
    /// Model file.
    pub model: Model,
    /// SHA-256 of the tokenizer data used to produce `token_ids`.
    pub tokenizer_sha256: String,
    /// Prompt token ids.
    pub token_ids: Vec<u32>,
    /// What the logits were compared against.
    pub reference: ReferenceIdentity,
    /// Kernel IDs the dispatcher handed out, with call counts.
    pub kernels: KernelLog,
    /// The instruction set of each kernel in `kernels` (absent in receipts written before it was recorded).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub kernel_isa: KernelIsaLog,
    /// One entry per (mode, threads) compared.
    pub modes: Vec<ModeResult>,
    /// Aggregate over all modes.
    pub summary: MetricsSummary,
    /// Limits the gates applied.
    pub thresholds: Thresholds,
    /// Gate outcomes.
    pub gates: Vec<Gate>,
    /// All gates passed.
    pub pass: bool,
    /// Which numerics profile explains the reference best, if diagnosed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
    /// Per-layer trace of the first divergence, if traced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceGrid>,
    /// SHA-256 of each top-level field.
    pub section_digests: SectionDigests,
    /// SHA-256 of the canonical JSON without `digest`/`signature`.
    pub digest: String,
    /// ed25519 signature of the digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

impl Receipt for ParityReceipt {
    const KIND: SchemaKind = SchemaKind::ParityReceipt;
}

/// The reference the logits were compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ReferenceIdentity {
    /// A live library loaded through ffi-ref.
    Ffi {
        /// Generation of the library.
        generation: Generation,
        /// Numerics profile our engine ran with.
        numerics_profile: String,
        /// microsoft/BitNet commit, when it is bitnet.cpp.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bitnet_cpp_commit: Option<String>,
        /// llama.cpp (or fork) commit.
        llama_cpp_commit: String,
    },
    /// A recorded-reference directory.
    Recorded {
        /// Generation named by the manifest (`bitnet.cpp-2025` when the manifest predates v1).
        generation: Generation,
        /// Numerics profile our engine ran with.
        numerics_profile: String,
        /// Directory as given.
        dir: String,
        /// SHA-256 of its manifest.json.
        manifest_sha256: String,
        /// Manifest case ids compared.
        case_ids: Vec<String>,
    },
}

impl ReferenceIdentity {
    /// The generation, whatever the kind.
    pub fn generation(&self) -> Generation {
        match self {
            Self::Ffi { generation, .. } | Self::Recorded { generation, .. } => *generation,
        }
    }
    /// The numerics profile, whatever the kind.
    pub fn numerics_profile(&self) -> &str {
        match self {
            Self::Ffi { numerics_profile, .. } | Self::Recorded { numerics_profile, .. } => numerics_profile,
        }
    }
}

/// Result of one mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeResult {
    /// batch or seq.
    pub mode: Mode,
    /// Threads used.
    pub threads: u32,
    /// Row width.
    pub n_vocab: u64,
    /// Per-row metrics.
    pub positions: Vec<PositionMetrics>,
    /// Aggregate of `positions`.
    pub summary: MetricsSummary,
    /// SHA-256 of the compared logits.
    pub logits_sha256: LogitsDigests,
    /// Greedy continuations, if compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greedy: Option<GreedyComparison>,
    /// llama.cpp KL statistics, if computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kl: Option<KlStatsRecord>,
    /// How many of our logits were NaN or infinite (JSON cannot carry them; the rows' metrics then read
    /// them as 0). Any fails the `logits.finite` gate; absent means none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub non_finite_logits: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ModeResult {
    /// Assemble a mode from its per-row metrics and the two logits arrays (row-major f32).
    pub fn new(
        mode: Mode,
        threads: u32,
        n_vocab: u64,
        positions: Vec<PositionMetrics>,
        ours: &[f32],
        reference: &[f32],
    ) -> Self {
        let summary = summarize(&positions);
        Self {
            mode,
            threads,
            n_vocab,
            positions,
            summary,
            logits_sha256: LogitsDigests {
                ours: logits_sha256(ours),
                reference: logits_sha256(reference),
            },
            greedy: None,
            kl: None,
            non_finite_logits: ours.iter().filter(|v| !v.is_finite()).count() as u64,
        }
    }
}

/// SHA-256 of the little-endian bytes of an f32 array.
pub fn logits_sha256(values: &[f32]) -> String {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    sha256_hex(&bytes)
}

/// Digests of the two logits arrays compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogitsDigests {
    /// Ours.
    pub ours: String,
    /// The reference's.
    pub reference: String,
}

/// Greedy continuations of both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GreedyComparison {
    /// Our ids.
    pub ours: Vec<u32>,
    /// The reference's ids.
    pub reference: Vec<u32>,
    /// First step where they differ (`null` when one is a prefix of the other).
    #[serde(deserialize_with = "Option::deserialize")]
    pub first_divergence: Option<u64>,
}

impl GreedyComparison {
    /// Compare two continuations.
    pub fn new(ours: Vec<u32>, reference: Vec<u32>) -> Self {
        let first_divergence = first_divergence(&ours, &reference);
        Self {
            ours,
            reference,
            first_divergence,
        }
    }
}

impl GreedyComparison {
    /// Both continuations identical, length included (the `greedy.match` gate).
    pub fn identical(&self) -> bool {
        self.first_divergence.is_none() && self.ours.len() == self.reference.len()
    }
}

/// First index where `a` and `b` differ, over their common length.
pub fn first_divergence(a: &[u32], b: &[u32]) -> Option<u64> {
    a.iter().zip(b).position(|(x, y)| x != y).map(|i| i as u64)
}

/// Limits the gates apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Every row's cosine must be at least this.
    pub min_cosine: f64,
    /// Every |diff| must be at most this.
    pub max_abs_diff: f64,
    /// Fraction of rows whose argmax agrees, at least.
    pub min_top1_match_rate: f64,
    /// Mean KLD (llama.cpp statistics) at most this, in every mode; needs `kl` in every mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_mean_kld: Option<f64>,
    /// Every mode's logits must be byte-identical to the reference's.
    pub require_bit_exact: bool,
}

impl Thresholds {
    /// Whether one compared row meets the per-row limits (cosine, |Δ|, and bit-exactness when required) —
    /// what the `metrics.cosine`, `metrics.max_abs_diff` and `metrics.bit_exact` gates demand of every row.
    pub fn admits(&self, p: &PositionMetrics) -> bool {
        p.cosine >= self.min_cosine
            && p.max_abs_diff <= self.max_abs_diff
            && (!self.require_bit_exact || p.max_abs_diff == 0.0)
    }

    /// Bit-exact parity: what a recorded reference of the same generation and profile must meet.
    pub fn bit_exact() -> Self {
        Self {
            min_cosine: 1.0,
            max_abs_diff: 0.0,
            min_top1_match_rate: 1.0,
            max_mean_kld: None,
            require_bit_exact: true,
        }
    }
}

/// One gate's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// Dot-separated gate name (`metrics.cosine`).
    pub name: String,
    /// Outcome.
    pub passed: bool,
    /// Why, with the numbers.
    pub reason: String,
}

/// Diagnosis verdict (from `parity diagnose`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diagnosis {
    /// One-line verdict.
    pub verdict: String,
    /// Profile that explains the reference best.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_profile: Option<String>,
    /// Longer explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

/// Layers × tensors grid of a divergence metric, for the report's heat map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceGrid {
    /// What the values are (e.g. `max_abs_diff`).
    pub metric: String,
    /// Row labels.
    pub layers: Vec<String>,
    /// Column labels.
    pub tensors: Vec<String>,
    /// `values[layer][tensor]`; `null` where not traced.
    pub values: Vec<Vec<Option<f64>>>,
}
