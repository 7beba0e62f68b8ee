//! The reference-backend interface shared by the live worker and recorded goldens.

use serde::{Deserialize, Serialize};

pub use vocab::{argmax, Mode};

use crate::error::RefError;

/// All-position logits: row `i` follows token `i`.
#[derive(Debug, Clone, PartialEq)]
pub struct Logits {
    /// Rows.
    pub n_tokens: usize,
    /// Columns.
    pub n_vocab: usize,
    /// `n_tokens * n_vocab` values, row-major.
    pub data: Vec<f32>,
}

impl Logits {
    /// Row `i`, if it exists.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        (i < self.n_tokens).then(|| &self.data[i * self.n_vocab..(i + 1) * self.n_vocab])
    }
}

/// Where reference numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReferenceKind {
    /// A live bitnet.cpp in a worker process.
    Ffi,
    /// A recorded-reference directory.
    Recorded,
}

/// Provenance of a reference, for receipts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceIdentity {
    /// Live or recorded.
    pub kind: ReferenceKind,
    /// bitnet.cpp commit (live: `git rev-parse HEAD`; recorded: the manifest's provenance line).
    pub commit: Option<String>,
    /// llama.cpp commit (live: its checkout, or the one the setup script recorded; `None` when unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llama_commit: Option<String>,
    /// BITNET_CPP_DIR, or the recorded directory.
    pub dir: Option<String>,
    /// sha256 of `manifest.json` (recorded only).
    pub manifest_sha256: Option<String>,
    /// llama.h API generation per symbol family (live), or `recorded`.
    pub generation: Option<String>,
    /// Build flags (live) or kernel description (recorded).
    pub build: Option<String>,
}

/// A source of reference tokenization, logits and greedy continuations.
pub trait ReferenceBackend {
    /// Text to ids.
    fn tokenize(&mut self, text: &str, add_bos: bool, parse_special: bool) -> Result<Vec<u32>, RefError>;
    /// All-position logits of `ids`, starting from an empty KV cache.
    fn eval_logits(&mut self, ids: &[u32], mode: Mode) -> Result<Logits, RefError>;
    /// Decode `ids` as `mode` says, then `n` greedy tokens, one per decode.
    fn greedy(&mut self, ids: &[u32], mode: Mode, n: usize) -> Result<Vec<u32>, RefError>;
    /// Where the numbers come from.
    fn identity(&self) -> ReferenceIdentity;
    /// All-position logits of `ids` plus the reference's named graph tensors whose callback base name is in
    /// `names`, in the order the reference computed them. References without traces answer
    /// [`RefError::NoCase`].
    fn eval_trace(&mut self, ids: &[u32], mode: Mode, names: &[String]) -> Result<(Logits, Vec<RefTensor>), RefError> {
        let _ = (ids, mode, names);
        Err(RefError::NoCase("this reference carries no traces".into()))
    }
}

/// A graph tensor from a reference's trace: llama.cpp's callback name and `ne`, values with `ne[0]` fastest.
#[derive(Debug, Clone, PartialEq)]
pub struct RefTensor {
    /// Callback name, e.g. `ffn_norm-1`.
    pub name: String,
    /// ggml's `ne`.
    pub ne: [usize; 4],
    /// `ne[0]*ne[1]*ne[2]*ne[3]` values.
    pub data: Vec<f32>,
}

impl RefTensor {
    /// `(rows, cols)` with `cols = ne[0]`.
    pub fn rows_cols(&self) -> (usize, usize) {
        (self.ne[1] * self.ne[2] * self.ne[3], self.ne[0])
    }
}
