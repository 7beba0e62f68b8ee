//! `bench-receipt/v1`: throughput with llama-bench's field names, optionally beside bitnet.cpp.

use serde::{Deserialize, Serialize};

use crate::defs::{Host, KernelIsaLog, KernelLog, Model, SectionDigests, Signature, Tool};
use crate::schema::SchemaKind;
use crate::seal::Receipt;

/// A bench receipt (mirrors `schemas/bench-receipt.v1.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchReceipt {
    /// Always `bench-receipt/v1`.
    pub schema_version: crate::schema::BenchV1,
    /// Program.
    pub tool: Tool,
    /// RFC 3339 time.
    pub created_at: String,
    /// Machine.
    pub host: Host,
    /// Model.
    pub model: Model,
    /// Dispatcher log over the whole benchmark.
    pub kernels: KernelLog,
    /// The instruction set of each kernel in `kernels` (absent in receipts written before it was recorded).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub kernel_isa: KernelIsaLog,
    /// One row per test.
    pub rows: Vec<BenchRow>,
    /// Peak resident set size of the process, bytes.
    pub peak_rss_bytes: u64,
    /// bitnet.cpp rows for the same tests (empty when not measured).
    pub reference: Vec<ReferenceRow>,
    /// SHA-256 of each top-level field.
    pub section_digests: SectionDigests,
    /// Digest.
    pub digest: String,
    /// Optional signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

impl Receipt for BenchReceipt {
    const KIND: SchemaKind = SchemaKind::BenchReceipt;
}

/// One llama-bench-style test result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchRow {
    /// `pp512`, `tg128`, `pp512+tg128`, optionally ` @ d<N>`.
    pub test: String,
    /// Prompt tokens.
    pub n_prompt: u64,
    /// Generated tokens.
    pub n_gen: u64,
    /// Threads.
    pub n_threads: u32,
    /// Timed repetitions (after a warm-up).
    pub repetitions: u32,
    /// Bytes of tensor data (tied embeddings once).
    pub model_size: u64,
    /// Parameters.
    pub model_n_params: u64,
    /// Mean time per repetition, ns.
    pub avg_ns: u64,
    /// Its standard deviation, ns.
    pub stddev_ns: u64,
    /// Mean tokens per second.
    pub avg_ts: f64,
    /// Its standard deviation.
    pub stddev_ts: f64,
    /// Tokens per second of each repetition.
    pub samples_ts: Vec<f64>,
}

/// The same test measured with a reference implementation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceRow {
    /// `bitnet.cpp`.
    pub implementation: String,
    /// Its commit, or `unknown`.
    pub commit: String,
    /// Test name, as in [`BenchRow::test`].
    pub test: String,
    /// Its mean tokens per second.
    pub avg_ts: f64,
    /// Its standard deviation.
    pub stddev_ts: f64,
    /// Ours ÷ reference avg_ts.
    pub ratio: f64,
}
