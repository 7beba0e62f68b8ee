//! Recorded reference traces: `traces/<case id>/index.json` beside a recorded reference's manifest, listing the
//! callback tensors of that case in the order the live reference computed them, one `.npy` (f32, shape `ne`
//! reversed, i.e. C order) per tensor.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::RefTensor;
use crate::error::RefError;
use crate::npy;

/// Sub-directory of a recorded reference holding traces.
pub const TRACES_DIR: &str = "traces";

/// `index.json` of one traced case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceIndex {
    /// The manifest case this trace belongs to.
    pub case: String,
    /// The tensors, in callback order.
    pub tensors: Vec<TraceEntry>,
}

/// One tensor of a [`TraceIndex`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceEntry {
    /// Callback name, e.g. `attn_norm-0`.
    pub name: String,
    /// ggml's `ne`.
    pub ne: [usize; 4],
    /// File name inside the case's trace directory.
    pub file: String,
}

/// The trace directory of `case` under the recorded directory `dir`.
pub fn case_dir(dir: &Path, case: &str) -> PathBuf {
    dir.join(TRACES_DIR).join(case)
}

/// Write `tensors` as the trace of `case` (replacing an earlier one).
pub fn write(dir: &Path, case: &str, tensors: &[RefTensor]) -> Result<(), RefError> {
    let out = case_dir(dir, case);
    if out.exists() {
        fs::remove_dir_all(&out).map_err(|e| RefError::io(&out, e))?;
    }
    fs::create_dir_all(&out).map_err(|e| RefError::io(&out, e))?;
    let mut entries = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        let file = format!("{i:04}.npy");
        let shape: Vec<usize> = t.ne.iter().rev().copied().collect();
        npy::write_f32(out.join(&file), &shape, &t.data)?;
        entries.push(TraceEntry {
            name: t.name.clone(),
            ne: t.ne,
            file,
        });
    }
    let index = TraceIndex {
        case: case.into(),
        tensors: entries,
    };
    let path = out.join("index.json");
    let json = serde_json::to_string_pretty(&index).map_err(|e| RefError::Invalid(format!("trace index: {e}")))?;
    fs::write(&path, json + "\n").map_err(|e| RefError::io(&path, e))
}

/// The trace of `case`, keeping tensors whose base name is in `names`; [`RefError::NoCase`] when none was
/// recorded.
pub fn read(dir: &Path, case: &str, names: &[String]) -> Result<Vec<RefTensor>, RefError> {
    let base = case_dir(dir, case);
    let path = base.join("index.json");
    if !path.is_file() {
        return Err(RefError::NoCase(format!(
            "a trace of case {case} (no {})",
            path.display()
        )));
    }
    let bad = |msg: String| RefError::Recorded {
        path: path.clone(),
        msg,
    };
    let text = fs::read(&path).map_err(|e| RefError::io(&path, e))?;
    let index: TraceIndex = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for e in index.tensors {
        if !names.iter().any(|n| n == base_name(&e.name)) {
            continue;
        }
        if e.file.contains('/') || e.file.contains("..") {
            return Err(bad(format!("file {:?} leaves the trace directory", e.file)));
        }
        let (shape, data) = npy::read_f32(base.join(&e.file))?;
        let want: Vec<usize> = e.ne.iter().rev().copied().collect();
        if shape != want {
            return Err(bad(format!("{}: shape {shape:?}, index says {want:?}", e.file)));
        }
        out.push(RefTensor {
            name: e.name,
            ne: e.ne,
            data,
        });
    }
    Ok(out)
}

/// `attn_norm-3` → `attn_norm`; names without a numeric layer suffix stay as they are.
pub fn base_name(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((b, l)) if !b.is_empty() && !l.is_empty() && l.bytes().all(|c| c.is_ascii_digit()) => b,
        _ => name,
    }
}

/// The layer of a callback name (`attn_norm-3` → 3).
pub fn layer_of(name: &str) -> Option<usize> {
    let b = base_name(name);
    (b.len() < name.len())
        .then(|| name[b.len() + 1..].parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_round_trip_and_filter_by_base_name() {
        let dir = tempfile::tempdir().unwrap();
        let t = |name: &str, v: f32| RefTensor {
            name: name.into(),
            ne: [2, 1, 1, 1],
            data: vec![v, -v],
        };
        write(dir.path(), "c1", &[t("kq-0", 1.5), t("result_output", 2.0)]).unwrap();
        let all = read(dir.path(), "c1", &["kq".into(), "result_output".into()]).unwrap();
        assert_eq!(all, vec![t("kq-0", 1.5), t("result_output", 2.0)]);
        let some = read(dir.path(), "c1", &["result_output".into()]).unwrap();
        assert_eq!(some.len(), 1);
        assert!(matches!(read(dir.path(), "c2", &[]), Err(RefError::NoCase(_))));
        assert_eq!(base_name("ffn_sqr(relu)-12"), "ffn_sqr(relu)");
        assert_eq!(layer_of("ffn_sqr(relu)-12"), Some(12));
        assert_eq!(layer_of("result_norm"), None);
    }
}
