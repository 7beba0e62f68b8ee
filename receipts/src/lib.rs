//! Typed parity, bench and inference receipts, the recorded-reference manifest, and their JSON Schemas.
//!
//! - [`schema`]: the embedded `schemas/*.v1.json` family and validation (jsonschema, draft 2020-12).
//! - [`canonical`]: canonical JSON and the digest.
//! - [`seal`]: sealing, signing (ed25519), integrity checks, validate-then-write and read-then-validate.
//! - [`defs`]: shared types (tool, host, model, kernel log, metrics, KL statistics).
//! - [`parity`], [`bench`], [`inference`], [`reference`]: one module per document type.
//! - [`gates`]: summaries and gates shared by `parity run` and `parity verify`.
//!
//! Every document is validated against its schema before it is written and after it is read; the
//! serde types deny unknown fields so that a document the schema rejects is rejected by the types too.

pub mod bench;
pub mod canonical;
pub mod defs;
pub mod error;
pub mod examples;
pub mod gates;
pub mod inference;
pub mod parity;
pub mod reference;
pub mod schema;
pub mod seal;

pub use bench::{BenchReceipt, BenchRow, ReferenceRow};
pub use defs::{
    now_rfc3339, DeltaPDistribution, Generation, Host, KernelIsa, KernelIsaLog, KernelLog, KlStatsRecord,
    KldDistribution, MetricsSummary, Mode, Model, PositionMetrics, Signature, Tool, ValueUncertainty,
};
pub use error::{ReceiptError, Result};
pub use inference::{InferenceReceipt, Sampling, Timings};
pub use parity::{
    Diagnosis, Gate, GreedyComparison, ModeResult, ParityReceipt, ParityReceiptBuilder, ReferenceIdentity, Thresholds,
    TraceGrid,
};
pub use reference::{RecordedCase, RecordedReference};
pub use schema::SchemaKind;
pub use seal::{read_receipt, seal, write_receipt, Receipt, SIGNING_KEY_ENV};
