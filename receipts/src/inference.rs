//! `inference-receipt/v1`: what one generate/chat run computed, on which kernels, how fast.

use serde::{Deserialize, Serialize};

use crate::defs::{Host, KernelIsaLog, KernelLog, Model, SectionDigests, Signature, Tool};
use crate::schema::SchemaKind;
use crate::seal::Receipt;

/// An inference receipt (mirrors `schemas/inference-receipt.v1.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferenceReceipt {
    /// Always `inference-receipt/v1`.
    pub schema_version: crate::schema::InferenceV1,
    /// Program.
    pub tool: Tool,
    /// RFC 3339 time.
    pub created_at: String,
    /// Machine.
    pub host: Host,
    /// Model.
    pub model: Model,
    /// Tokenizer SHA-256.
    pub tokenizer_sha256: String,
    /// Numerics profile the engine ran with.
    pub numerics_profile: String,
    /// Dispatcher log.
    pub kernels: KernelLog,
    /// The instruction set of each kernel in `kernels` (absent in receipts written before it was recorded).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub kernel_isa: KernelIsaLog,
    /// Prompt ids.
    pub prompt_ids: Vec<u32>,
    /// Generated ids.
    pub generated_ids: Vec<u32>,
    /// Sampler settings.
    pub sampling: Sampling,
    /// Timings.
    pub timings: Timings,
    /// SHA-256 of each top-level field.
    pub section_digests: SectionDigests,
    /// Digest.
    pub digest: String,
    /// Optional signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

impl Receipt for InferenceReceipt {
    const KIND: SchemaKind = SchemaKind::InferenceReceipt;
}

/// Sampler settings (temperature 0 = greedy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Sampling {
    pub temperature: f64,
    pub top_k: u32,
    pub top_p: f64,
    pub seed: u64,
}

/// Wall-clock timings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Timings {
    pub prompt_ms: f64,
    pub gen_ms: f64,
    pub prompt_tps: f64,
    pub gen_tps: f64,
}
