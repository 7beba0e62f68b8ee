//! `recorded-reference/v1`: the manifest.json of a recorded-reference directory.
//!
//! Field names are those of the bundled bitnet.cpp goldens; `schema_version`, `reference`,
//! `description`, `cases[].logits_sha256`, `cases[].recorded_as`, the structured provenance fields
//! `host`/`recorded_at` and free-text provenance strings (`note`, `readme`, `source`, ...) are v1
//! additions, absent from manifests written before. A manifest without `reference` is a
//! `bitnet.cpp-2025` recording with profile `bitnet.cpp-2025` (see [`RecordedReference::identity`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::sha256_hex;
use crate::defs::{Generation, Host, Mode};
use crate::error::{ReceiptError, Result};
use crate::schema::{validate, SchemaKind};

/// A recorded-reference manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedReference {
    /// `recorded-reference/v1` (absent in older manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<crate::schema::RecordedReferenceV1>,
    /// Generation and numerics profile (absent in older manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceInfo>,
    /// What the set holds, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where the numbers came from.
    pub provenance: Provenance,
    /// Named prompts.
    pub prompts: BTreeMap<String, Vec<u32>>,
    /// One entry per recorded run.
    pub cases: Vec<RecordedCase>,
}

/// Generation and profile of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceInfo {
    /// Which C++ reference.
    pub generation: Generation,
    /// Its numerics profile.
    pub numerics_profile: String,
}

/// Free-text or structured provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Provenance {
    /// e.g. "see README.md".
    Text(String),
    /// Structured fields.
    Fields(Box<ProvenanceFields>),
}

/// Structured provenance: typed fields plus free-text string fields (`note`, `readme`, `source`, ...).
///
/// Unknown keys land in [`ProvenanceFields::extra`], which only takes strings, so the struct rejects
/// what the schema rejects (`additionalProperties: {"type": "string"}`); `deny_unknown_fields` cannot be
/// combined with `flatten`, and the string-only map plays its role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ProvenanceFields {
    /// microsoft/BitNet commit line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitnet_cpp: Option<String>,
    /// llama.cpp commit line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llama_cpp: Option<String>,
    /// Kernel and build description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Model generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<String>,
    /// Recording machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Host>,
    /// Recording time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
    /// Further free-text fields, e.g. `note`, `readme`, `source`, `build_flags`.
    #[serde(flatten)]
    pub extra: BTreeMap<String, String>,
}

/// One recorded run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedCase {
    /// Unique id.
    pub id: String,
    /// Model file, relative to the directory.
    pub model: String,
    /// Its SHA-256.
    pub model_sha256: String,
    /// Prompt length.
    pub prompt_len: u64,
    /// Prompt ids.
    pub prompt_ids: Vec<u32>,
    /// batch or seq.
    pub mode: Mode,
    /// Threads.
    pub threads: u32,
    /// Context size.
    pub n_ctx: u64,
    /// Batch size, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_batch: Option<u64>,
    /// Micro-batch size, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_ubatch: Option<u64>,
    /// float32 .npy file, relative to the directory.
    pub logits: String,
    /// `[n_positions, n_vocab]`.
    pub logits_shape: Vec<u64>,
    /// SHA-256 of the .npy file (v1 addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logits_sha256: Option<String>,
    /// The logits file name in the original recording, before identical t1/t2 files were merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_as: Option<String>,
    /// Greedy steps recorded.
    pub greedy_n: u64,
    /// Greedy ids.
    pub greedy_ids: Vec<u32>,
}

impl RecordedReference {
    /// Parse and validate manifest text; returns it with the SHA-256 of the exact bytes.
    pub fn from_json(text: &str) -> Result<(Self, String)> {
        let doc: Value = serde_json::from_str(text).map_err(ReceiptError::Json)?;
        validate(SchemaKind::RecordedReference, &doc)?;
        let manifest = serde_json::from_value(doc).map_err(|source| ReceiptError::Decode {
            schema: SchemaKind::RecordedReference.id(),
            source,
        })?;
        Ok((manifest, sha256_hex(text.as_bytes())))
    }

    /// Read `dir/manifest.json` (or a manifest path) and validate it.
    pub fn load(path: &Path) -> Result<(Self, String)> {
        let file = if path.is_dir() {
            path.join("manifest.json")
        } else {
            path.to_owned()
        };
        let text = std::fs::read_to_string(&file).map_err(|source| ReceiptError::Io { path: file, source })?;
        Self::from_json(&text)
    }

    /// Validate and serialise for writing (pretty JSON, trailing newline).
    pub fn to_json(&self) -> Result<String> {
        let doc = serde_json::to_value(self).map_err(ReceiptError::Encode)?;
        validate(SchemaKind::RecordedReference, &doc)?;
        let mut s = serde_json::to_string_pretty(&doc).map_err(ReceiptError::Encode)?;
        s.push('\n');
        Ok(s)
    }

    /// Generation and profile, defaulting pre-v1 manifests to `bitnet.cpp-2025`.
    pub fn identity(&self) -> ReferenceInfo {
        self.reference.clone().unwrap_or(ReferenceInfo {
            generation: Generation::BitnetCpp2025,
            numerics_profile: Generation::BitnetCpp2025.as_str().to_owned(),
        })
    }
}
