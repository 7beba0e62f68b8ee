//! Building a parity receipt: derive the summary, evaluate the gates, seal. Sits above [`crate::parity`]
//! (the document's types) and [`crate::gates`] (the rules), so neither needs the other's caller.

use ed25519_dalek::SigningKey;

use crate::defs::{combine_summaries, now_rfc3339, Host, KernelIsaLog, KernelLog, Model, SectionDigests, Tool};
use crate::error::Result;
use crate::gates::evaluate_gates;
use crate::parity::{Diagnosis, ModeResult, ParityReceipt, ReferenceIdentity, Thresholds, TraceGrid};
use crate::seal::seal;

/// Everything a parity run knows; [`ParityReceiptBuilder::build`] derives summary, gates and pass, then seals.
#[derive(Debug, Clone)]
pub struct ParityReceiptBuilder {
    /// Program.
    pub tool: Tool,
    /// Machine.
    pub host: Host,
    /// Model.
    pub model: Model,
    /// Tokenizer SHA-256.
    pub tokenizer_sha256: String,
    /// Prompt ids.
    pub token_ids: Vec<u32>,
    /// Reference identity.
    pub reference: ReferenceIdentity,
    /// Dispatcher log.
    pub kernels: KernelLog,
    /// The instruction set of each logged kernel.
    pub kernel_isa: KernelIsaLog,
    /// Compared modes.
    pub modes: Vec<ModeResult>,
    /// Limits.
    pub thresholds: Thresholds,
    /// Optional diagnosis.
    pub diagnosis: Option<Diagnosis>,
    /// Optional trace grid.
    pub trace: Option<TraceGrid>,
    /// Timestamp; `None` = now.
    pub created_at: Option<String>,
}

impl ParityReceiptBuilder {
    /// Derive summary, gates and pass flag; seal (and sign with `key`); validate against the schema.
    pub fn build(self, key: Option<&SigningKey>) -> Result<ParityReceipt> {
        let summary = combine_summaries(self.modes.iter().map(|m| &m.summary));
        let mut receipt = ParityReceipt {
            schema_version: crate::schema::ParityV1,
            tool: self.tool,
            created_at: self.created_at.unwrap_or_else(now_rfc3339),
            host: self.host,
            model: self.model,
            tokenizer_sha256: self.tokenizer_sha256,
            token_ids: self.token_ids,
            reference: self.reference,
            kernels: self.kernels,
            kernel_isa: self.kernel_isa,
            modes: self.modes,
            summary,
            thresholds: self.thresholds,
            gates: Vec::new(),
            pass: false,
            diagnosis: self.diagnosis,
            trace: self.trace,
            section_digests: SectionDigests::new(),
            digest: String::new(),
            signature: None,
        };
        receipt.gates = evaluate_gates(&receipt);
        receipt.pass = receipt.gates.iter().all(|g| g.passed);
        seal(&receipt, key)
    }
}
