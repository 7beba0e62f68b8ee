//! `recorded-reference/v1`: the manifest.json of a recorded-reference directory — the one type every crate
//! reads and writes it with (ffi-ref's recorded backend, `parity record`, the committed fixture sets). It is
//! schema-validated and checked for consistency (lengths, plain file names) on every read and before every
//! write.
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

use vocab::{npy, sha256_hex, Mode};

use crate::defs::{Generation, Host};
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
    pub prompt_len: usize,
    /// Prompt ids.
    pub prompt_ids: Vec<u32>,
    /// batch or seq.
    pub mode: Mode,
    /// Threads.
    pub threads: u32,
    /// Context size.
    pub n_ctx: u32,
    /// Batch size, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_batch: Option<u32>,
    /// Micro-batch size, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_ubatch: Option<u32>,
    /// float32 .npy file, relative to the directory.
    pub logits: String,
    /// `[n_positions, n_vocab]`.
    pub logits_shape: [usize; 2],
    /// SHA-256 of the .npy file (v1 addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logits_sha256: Option<String>,
    /// The logits file name in the original recording, before identical t1/t2 files were merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_as: Option<String>,
    /// Greedy steps recorded.
    pub greedy_n: usize,
    /// Greedy ids.
    pub greedy_ids: Vec<u32>,
    /// Why the reference itself is wrong in this case (e.g. a bitnet.cpp kernel bug); such a case is no
    /// target to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_broken: Option<String>,
}

impl RecordedReference {
    /// Parse, validate and check manifest text; returns it with the SHA-256 of the exact bytes.
    pub fn from_json(text: &str) -> Result<(Self, String)> {
        let doc: Value = serde_json::from_str(text).map_err(ReceiptError::Json)?;
        validate(SchemaKind::RecordedReference, &doc)?;
        let manifest: Self = serde_json::from_value(doc).map_err(|source| ReceiptError::Decode {
            schema: SchemaKind::RecordedReference.id(),
            source,
        })?;
        manifest.check()?;
        Ok((manifest, sha256_hex(text.as_bytes())))
    }

    /// Read `dir/manifest.json` (or a manifest path), validate and check it.
    pub fn load(path: &Path) -> Result<(Self, String)> {
        let file = if path.is_dir() {
            path.join("manifest.json")
        } else {
            path.to_owned()
        };
        let text = std::fs::read_to_string(&file).map_err(|source| ReceiptError::Io {
            path: file.clone(),
            source,
        })?;
        Self::from_json(&text).map_err(|e| e.in_file(&file))
    }

    /// Validate, check and serialise for writing (pretty JSON, trailing newline).
    pub fn to_json(&self) -> Result<String> {
        self.check()?;
        let doc = serde_json::to_value(self).map_err(ReceiptError::Encode)?;
        validate(SchemaKind::RecordedReference, &doc)?;
        let mut s = serde_json::to_string_pretty(&doc).map_err(ReceiptError::Encode)?;
        s.push('\n');
        Ok(s)
    }

    /// Validate and write `dir/manifest.json`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join("manifest.json");
        let text = self.to_json()?;
        std::fs::write(&path, text).map_err(|source| ReceiptError::Io { path, source })
    }

    /// What the schema cannot say: each case's lengths agree with its ids and shape, and its files are plain
    /// names inside the directory.
    pub fn check(&self) -> Result<()> {
        for c in &self.cases {
            let bad = |msg: &str| Err(ReceiptError::Manifest(format!("case {}: {msg}", c.id)));
            if c.prompt_len != c.prompt_ids.len() || c.logits_shape[0] != c.prompt_ids.len() {
                return bad("prompt_len / logits_shape disagree with prompt_ids");
            }
            if c.greedy_n != c.greedy_ids.len() {
                return bad("greedy_n disagrees with greedy_ids");
            }
            if [&c.logits, &c.model]
                .iter()
                .any(|f| f.contains('/') || f.contains('\\') || f.contains(".."))
            {
                return bad("file names must be plain names in the directory");
            }
        }
        Ok(())
    }

    /// Check the directory `dir` against the manifest: every file present with the recorded SHA-256, every
    /// logits array of the recorded shape, every prompt in the prompts table.
    pub fn verify_files(&self, dir: &Path) -> Result<()> {
        let mut hashes: BTreeMap<String, String> = BTreeMap::new();
        let mut hash = |name: &str| -> Result<String> {
            if let Some(h) = hashes.get(name) {
                return Ok(h.clone());
            }
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|source| ReceiptError::Io { path, source })?;
            let h = sha256_hex(&bytes);
            hashes.insert(name.to_owned(), h.clone());
            Ok(h)
        };
        for c in &self.cases {
            let bad = |msg: String| Err(ReceiptError::Manifest(format!("case {}: {msg}", c.id)));
            for (file, expected) in [(&c.model, Some(&c.model_sha256)), (&c.logits, c.logits_sha256.as_ref())] {
                let found = hash(file)?;
                if let Some(expected) = expected.filter(|e| **e != found) {
                    return bad(format!("{file}: sha256 {found}, the manifest says {expected}"));
                }
            }
            if self.prompts.get(&c.prompt_len.to_string()) != Some(&c.prompt_ids) {
                return bad("prompt_ids differ from the manifest's prompts table".into());
            }
            let (shape, _) = npy::read_f32(dir.join(&c.logits))?;
            if shape != c.logits_shape {
                return bad(format!(
                    "{}: shape {shape:?}, the manifest says {:?}",
                    c.logits, c.logits_shape
                ));
            }
        }
        Ok(())
    }

    /// Generation and profile, defaulting pre-v1 manifests to `bitnet.cpp-2025`.
    pub fn identity(&self) -> ReferenceInfo {
        self.reference.clone().unwrap_or(ReferenceInfo {
            generation: Generation::BitnetCpp2025,
            numerics_profile: Generation::BitnetCpp2025.as_str().to_owned(),
        })
    }
}

impl Provenance {
    /// A provenance string by key (`bitnet_cpp`, `llama_cpp`, `kernel`, `generator`, `recorded_at` or a
    /// free-text field), when provenance is structured.
    pub fn get(&self, key: &str) -> Option<&str> {
        let Provenance::Fields(f) = self else {
            return None;
        };
        match key {
            "bitnet_cpp" => f.bitnet_cpp.as_deref(),
            "llama_cpp" => f.llama_cpp.as_deref(),
            "kernel" => f.kernel.as_deref(),
            "generator" => f.generator.as_deref(),
            "recorded_at" => f.recorded_at.as_deref(),
            k => f.extra.get(k).map(String::as_str),
        }
    }
}
