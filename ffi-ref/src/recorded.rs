//! [`Recorded`]: reference numbers read from a recorded-reference directory.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::backend::{Logits, Mode, RefTensor, ReferenceBackend, ReferenceIdentity, ReferenceKind};
use crate::error::RefError;
use crate::npy;
use crate::trace_store;
use receipts::reference::{RecordedCase, RecordedReference};
use vocab::sha256_hex;

/// A recorded-reference directory (`manifest.json`, `.npy` logits, optional `tokenizer.json`), narrowed to
/// one model and optionally one thread count.
#[derive(Debug, Clone)]
pub struct Recorded {
    dir: PathBuf,
    manifest: RecordedReference,
    manifest_sha256: String,
    model_sha256: Option<String>,
    threads: Option<u32>,
}

impl Recorded {
    /// Open `dir/manifest.json`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, RefError> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join("manifest.json");
        let text = fs::read_to_string(&path).map_err(|e| RefError::io(&path, e))?;
        let (manifest, manifest_sha256) = RecordedReference::from_json(&text).map_err(|e| RefError::Recorded {
            path: path.clone(),
            msg: e.to_string(),
        })?;
        Ok(Recorded {
            dir,
            manifest,
            manifest_sha256,
            model_sha256: None,
            threads: None,
        })
    }

    /// Only consider cases of the model with this sha256 (hex).
    pub fn with_model_sha256(mut self, sha256: impl Into<String>) -> Self {
        self.model_sha256 = Some(sha256.into().to_ascii_lowercase());
        self
    }

    /// Only consider cases of the model file at `path` (hashes it).
    pub fn with_model_file(self, path: impl AsRef<Path>) -> Result<Self, RefError> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| RefError::io(path, e))?;
        Ok(self.with_model_sha256(sha256_hex(&bytes)))
    }

    /// Only consider cases recorded with `n` threads.
    pub fn with_threads(mut self, n: u32) -> Self {
        self.threads = Some(n);
        self
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> &RecordedReference {
        &self.manifest
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The first case matching the model filter, `ids`, `mode` and the thread filter.
    pub fn find_case(&self, ids: &[u32], mode: Mode) -> Result<&RecordedCase, RefError> {
        let models: Vec<&str> = self.candidates().map(|c| c.model_sha256.as_str()).collect();
        if self.model_sha256.is_none() && models.windows(2).any(|w| w[0] != w[1]) {
            return Err(RefError::Invalid(
                "the recorded directory holds several models: select one with with_model_file/with_model_sha256".into(),
            ));
        }
        self.candidates()
            .find(|c| c.mode == mode && c.prompt_ids == ids)
            .ok_or_else(|| {
                RefError::NoCase(format!(
                    "{} ids, mode {mode}{}{} in {} ({} of its {} cases are for this model); record it with \
                     `parity record MODEL --tokens .. --out {}`, or compare with a live bitnet.cpp (--reference ffi)",
                    ids.len(),
                    self.model_sha256
                        .as_ref()
                        .map(|s| format!(", model {s}"))
                        .unwrap_or_default(),
                    self.threads.map(|t| format!(", {t} threads")).unwrap_or_default(),
                    self.dir.display(),
                    self.candidates().count(),
                    self.manifest.cases.len(),
                    self.dir.display()
                ))
            })
    }

    /// Logits of one case, checked against its manifest shape.
    pub fn case_logits(&self, case: &RecordedCase) -> Result<Logits, RefError> {
        let path = self.dir.join(&case.logits);
        let (shape, data) = npy::read_f32(&path)?;
        if shape != case.logits_shape {
            return Err(RefError::Recorded {
                path,
                msg: format!("shape {shape:?}, manifest says {:?}", case.logits_shape),
            });
        }
        Ok(Logits {
            n_tokens: shape[0],
            n_vocab: shape[1],
            data,
        })
    }

    fn candidates(&self) -> impl Iterator<Item = &RecordedCase> {
        self.manifest.cases.iter().filter(move |c| {
            self.model_sha256.as_ref().is_none_or(|s| *s == c.model_sha256)
                && self.threads.is_none_or(|t| t == c.threads)
        })
    }
}

/// `tokenizer.json` beside a manifest: ids bitnet.cpp gave for probe texts.
#[derive(Deserialize)]
struct TokenizerFile {
    models: std::collections::BTreeMap<String, TokModel>,
    cases: std::collections::BTreeMap<String, Vec<TokCase>>,
}

#[derive(Deserialize)]
struct TokModel {
    sha256: String,
}

#[derive(Deserialize)]
struct TokCase {
    text: String,
    ids: Vec<u32>,
}

impl ReferenceBackend for Recorded {
    /// Only texts recorded in `tokenizer.json` with the recording's flags (BOS per the model, specials parsed).
    fn tokenize(&mut self, text: &str, add_bos: bool, parse_special: bool) -> Result<Vec<u32>, RefError> {
        let path = self.dir.join("tokenizer.json");
        let no_case = || {
            RefError::NoCase(format!(
                "tokenization of {text:?} (add_bos {add_bos}, parse_special {parse_special})"
            ))
        };
        if !(add_bos && parse_special && path.is_file()) {
            return Err(no_case());
        }
        let bytes = fs::read(&path).map_err(|e| RefError::io(&path, e))?;
        let file: TokenizerFile = serde_json::from_slice(&bytes).map_err(|e| RefError::Recorded {
            path: path.clone(),
            msg: e.to_string(),
        })?;
        let want = self.model_sha256.as_ref().ok_or_else(|| {
            RefError::Invalid("recorded tokenization needs a model: use with_model_file/with_model_sha256".into())
        })?;
        file.models
            .iter()
            .filter(|(_, m)| &m.sha256 == want)
            .filter_map(|(key, _)| file.cases.get(key))
            .flatten()
            .find(|c| c.text == text)
            .map(|c| c.ids.clone())
            .ok_or_else(no_case)
    }

    fn eval_logits(&mut self, ids: &[u32], mode: Mode) -> Result<Logits, RefError> {
        let case = self.find_case(ids, mode)?;
        self.case_logits(case)
    }

    fn eval_trace(&mut self, ids: &[u32], mode: Mode, names: &[String]) -> Result<(Logits, Vec<RefTensor>), RefError> {
        let case = self.find_case(ids, mode)?;
        let tensors = trace_store::read(&self.dir, &case.id, names).map_err(|e| match e {
            RefError::NoCase(why) => {
                let traced: Vec<&str> = self
                    .candidates()
                    .filter(|c| trace_store::case_dir(&self.dir, &c.id).join("index.json").is_file())
                    .map(|c| c.id.as_str())
                    .collect();
                RefError::NoCase(if traced.is_empty() {
                    format!("{why}; no case of this model in {} carries a trace", self.dir.display())
                } else {
                    format!(
                        "{why}; the cases with traces are {} (run with their --tokens and --mode)",
                        traced.join(", ")
                    )
                })
            }
            other => other,
        })?;
        Ok((self.case_logits(case)?, tensors))
    }

    fn greedy(&mut self, ids: &[u32], mode: Mode, n: usize) -> Result<Vec<u32>, RefError> {
        let case = self.find_case(ids, mode)?;
        case.greedy_ids.get(..n).map(<[u32]>::to_vec).ok_or_else(|| {
            RefError::NoCase(format!(
                "{n} greedy ids (case {} recorded {})",
                case.id,
                case.greedy_ids.len()
            ))
        })
    }

    fn identity(&self) -> ReferenceIdentity {
        let prov = |k: &str| self.manifest.provenance.get(k).map(str::to_string);
        ReferenceIdentity {
            kind: ReferenceKind::Recorded,
            commit: prov("bitnet_cpp"),
            llama_commit: prov("llama_cpp"),
            dir: Some(self.dir.display().to_string()),
            manifest_sha256: Some(self.manifest_sha256.clone()),
            generation: Some("recorded".into()),
            build: prov("kernel"),
        }
    }
}
