//! `manifest.json` of a recorded-reference directory: `recorded-reference/v1`
//! (`schemas/recorded-reference.v1.json`, the layout of `shared/reference` plus optional additions).
//! Unknown fields are tolerated when reading; the v1 additions are kept, so rewriting a manifest
//! (`parity record` extending a directory) loses nothing the schema allows.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::backend::Mode;
use crate::error::RefError;

/// The `schema_version` of a v1 manifest.
pub const SCHEMA_VERSION: &str = "recorded-reference/v1";

/// Generation and numerics profile of every case in a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceInfo {
    /// `bitnet.cpp-2025`, `bitnet.cpp-2026` or `llama.cpp`.
    pub generation: String,
    /// Numerics profile that reproduces the numbers.
    pub numerics_profile: String,
}

/// The index of a recorded-reference directory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// [`SCHEMA_VERSION`] (absent in pre-v1 manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
    /// Generation and profile (absent in pre-v1 manifests: bitnet.cpp 2025).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceInfo>,
    /// One line on what the directory holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Provenance: usually an object of strings (`bitnet_cpp`, `llama_cpp`, `kernel`, ...), sometimes a note.
    #[serde(default)]
    pub provenance: serde_json::Value,
    /// Prompts by length, as strings (`"8"`, `"32"`, ...).
    #[serde(default)]
    pub prompts: BTreeMap<String, Vec<u32>>,
    /// One entry per (model, prompt, mode, threads).
    pub cases: Vec<Case>,
}

/// One recorded evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Unique name, also the stem of the logits file.
    pub id: String,
    /// Model file name, relative to the directory.
    pub model: String,
    /// sha256 of the model file (hex).
    pub model_sha256: String,
    /// `prompt_ids.len()`.
    pub prompt_len: usize,
    /// The prompt.
    pub prompt_ids: Vec<u32>,
    /// How the prompt was decoded.
    pub mode: Mode,
    /// Threads used.
    pub threads: u32,
    /// Context length.
    pub n_ctx: u32,
    /// Logical batch (= n_ctx when recorded by this crate; absent in some manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_batch: Option<u32>,
    /// Physical batch (same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_ubatch: Option<u32>,
    /// Logits file name (`.npy`, float32 `[prompt_len, n_vocab]`).
    pub logits: String,
    /// Its shape.
    pub logits_shape: Vec<usize>,
    /// sha256 of the logits file (hex; v1 addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logits_sha256: Option<String>,
    /// The logits file name in the original recording, when identical files were merged (v1 addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_as: Option<String>,
    /// Number of greedy ids.
    pub greedy_n: usize,
    /// Greedy continuation after the prompt.
    pub greedy_ids: Vec<u32>,
}

impl Manifest {
    /// A provenance string by key, when provenance is an object.
    pub fn provenance_str(&self, key: &str) -> Option<&str> {
        self.provenance.get(key).and_then(|v| v.as_str())
    }

    /// Parse `manifest.json` bytes and check each case is self-consistent.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, RefError> {
        let bad = |msg: String| RefError::Recorded {
            path: path.to_path_buf(),
            msg,
        };
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        for c in &m.cases {
            if c.prompt_len != c.prompt_ids.len() || c.logits_shape.first() != Some(&c.prompt_ids.len()) {
                return Err(bad(format!(
                    "case {}: prompt_len / logits_shape disagree with prompt_ids",
                    c.id
                )));
            }
            if c.greedy_n != c.greedy_ids.len() || c.logits_shape.len() != 2 {
                return Err(bad(format!("case {}: greedy_n or logits_shape malformed", c.id)));
            }
            if c.logits.contains('/') || c.model.contains('/') || c.logits.contains("..") || c.model.contains("..") {
                return Err(bad(format!(
                    "case {}: file names must be plain names in the directory",
                    c.id
                )));
            }
        }
        Ok(m)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}
