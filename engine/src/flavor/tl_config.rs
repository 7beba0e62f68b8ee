//! Where a TL file's tile parameters come from. They are not in the GGUF: bitnet.cpp compiles them
//! into its kernels and its converter reads them from `include/kernel_config.ini`.
//!
//! Sources, tried in order ([`resolve_tiles`]): `--tl-config PATH`; a `kernel_config.ini` beside the
//! model; `$BITNET_CPP_DIR/include/kernel_config.ini`; bitnet.cpp's presets for known shapes. A
//! source counts only if it covers every TL tensor's `(M, K)` and every tensor decodes under it.

use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

use super::tl::{tl_decode, TileParams, TlKind};

/// One `(M, K) → tiles` entry of a config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TileEntry {
    pub m: usize,
    pub k: usize,
    pub params: TileParams,
}

/// A set of tile entries, as one `kernel_config.ini` holds them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TileTable {
    pub entries: Vec<TileEntry>,
}

impl TileTable {
    /// The converter's lookup: the first section whose `m` and `k` match.
    pub fn get(&self, m: usize, k: usize) -> Option<TileParams> {
        self.entries.iter().find(|e| e.m == m && e.k == k).map(|e| e.params)
    }

    /// Parse `kernel_config.ini` (Python `ConfigParser` syntax: `[section]`, `key = value`, keys
    /// case-insensitive, `#`/`;` comments). Each section needs `m`, `k`, `bm`, `bk`, `bmm`.
    pub fn parse_ini(text: &str) -> Result<TileTable, String> {
        let mut sections: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for (no, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                sections.push((name.trim().to_string(), Vec::new()));
                continue;
            }
            let (key, value) = line
                .split_once(['=', ':'])
                .ok_or_else(|| format!("line {}: expected `key = value`, got {line:?}", no + 1))?;
            let (_, keys) = sections
                .last_mut()
                .ok_or_else(|| format!("line {}: a key before any [section]", no + 1))?;
            keys.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        let mut entries = Vec::with_capacity(sections.len());
        for (name, keys) in &sections {
            let get = |key: &str| -> Result<usize, String> {
                let v = keys
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v)
                    .ok_or_else(|| format!("section [{name}] has no `{key}`"))?;
                v.parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("section [{name}]: `{key} = {v}` is not a positive integer"))
            };
            entries.push(TileEntry {
                m: get("m")?,
                k: get("k")?,
                params: TileParams {
                    bm: get("bm")?,
                    bk: get("bk")?,
                    bmm: get("bmm")?,
                },
            });
        }
        Ok(TileTable { entries })
    }

    /// Write the table as the codegen scripts do (`[Kernels_i]` with `m`, `k`, `bm`, `bk`, `bmm`).
    pub fn to_ini(&self) -> String {
        let mut s = String::new();
        for (i, e) in self.entries.iter().enumerate() {
            s.push_str(&format!(
                "[Kernels_{i}]\nm = {}\nk = {}\nbm = {}\nbk = {}\nbmm = {}\n\n",
                e.m, e.k, e.params.bm, e.params.bk, e.params.bmm
            ));
        }
        s
    }
}

/// Where a tile table came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TileSource {
    /// `--tl-config PATH`.
    Flag { path: PathBuf },
    /// `kernel_config.ini` in the model's directory.
    BesideModel { path: PathBuf },
    /// `$BITNET_CPP_DIR/include/kernel_config.ini`.
    BitnetCppDir { path: PathBuf },
    /// A bitnet.cpp preset: `what` names the model and where the numbers come from.
    Preset { what: String },
}

impl std::fmt::Display for TileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TileSource::Flag { path } => write!(f, "--tl-config {}", path.display()),
            TileSource::BesideModel { path } => write!(f, "kernel_config.ini beside the model ({})", path.display()),
            TileSource::BitnetCppDir { path } => write!(f, "$BITNET_CPP_DIR config ({})", path.display()),
            TileSource::Preset { what } => write!(f, "bitnet.cpp preset {what}"),
        }
    }
}

use PresetSource::{Codegen, PresetIni};
use TlKind::{Tl1, Tl2};

/// A model's ternary matrix shapes `(M, K)`, as `setup_env.py`'s `ModelShapeDict` lists them: (model, the
/// models setup_env maps onto the same shapes, shapes).
type Shapes = (&'static str, &'static str, &'static [(usize, usize)]);

const LARGE: Shapes = ("bitnet_b1_58-large", "", &[(1536, 4096), (1536, 1536), (4096, 1536)]);
const B3: Shapes = (
    "bitnet_b1_58-3B",
    "BitNet-b1.58-2B-4T's",
    &[(3200, 8640), (3200, 3200), (8640, 3200)],
);
const LLAMA3_8B: Shapes = (
    "Llama3-8B-1.58-100B-tokens",
    "the Falcon models'",
    &[(14336, 4096), (4096, 14336), (1024, 4096), (4096, 4096)],
);

/// Where a preset's numbers come from.
#[derive(Clone, Copy)]
enum PresetSource {
    /// `setup_env.py`'s codegen arguments (`--BM/--BK/--bm`), which write the `kernel_config.ini` the converter reads.
    Codegen,
    /// bitnet.cpp's `preset_kernels/kernel_config_<kind>.ini`, listed where it differs from the codegen arguments.
    PresetIni,
}

/// One preset: the TL kind, the model's shapes, where the numbers come from, and `(BM, BK, bm)` per shape.
type Preset = (TlKind, Shapes, PresetSource, &'static [(usize, usize, usize)]);

/// bitnet.cpp's presets, in the order they are tried; the tiles are in the order of the model's shapes.
/// Only files with these shapes can have been converted at all (setup_env maps every other model onto them).
#[rustfmt::skip]
const PRESETS: &[Preset] = &[
    (Tl2, LARGE, Codegen, &[(256, 96, 32), (128, 192, 32), (256, 96, 32)]),
    (Tl2, B3, Codegen, &[(160, 96, 32), (320, 96, 32), (320, 96, 32)]),
    (Tl2, LLAMA3_8B, Codegen, &[(256, 96, 32), (128, 96, 32), (256, 96, 32), (128, 96, 32)]),
    (Tl2, LARGE, PresetIni, &[(256, 96, 32), (128, 192, 32), (256, 96, 64)]),
    (Tl1, LARGE, Codegen, &[(256, 128, 32), (128, 64, 64), (256, 128, 32)]),
    (Tl1, B3, Codegen, &[(160, 64, 32), (320, 128, 64), (320, 64, 32)]),
    (Tl1, LLAMA3_8B, Codegen, &[(256, 128, 32), (128, 64, 64), (256, 128, 32), (128, 64, 64)]),
    (Tl1, LLAMA3_8B, PresetIni, &[(256, 128, 64), (256, 128, 32), (128, 64, 64), (128, 64, 32)]),
];

/// The presets for `kind`, in the order they are tried, each with what it is (model and source).
pub fn presets(kind: TlKind) -> impl Iterator<Item = (String, TileTable)> {
    PRESETS
        .iter()
        .filter(move |(k, ..)| *k == kind)
        .map(|&(kind, (model, also, shapes), from, tiles)| {
            let kind = kind.name();
            let what = match from {
                Codegen if also.is_empty() => format!("{model} (setup_env.py codegen_{kind} arguments)"),
                Codegen => format!("{model} (setup_env.py codegen_{kind} arguments; also {also})"),
                PresetIni => format!("{model} (preset_kernels/kernel_config_{kind}.ini)"),
            };
            let entries = shapes
                .iter()
                .zip(tiles)
                .map(|(&(m, k), &(bm, bk, bmm))| TileEntry {
                    m,
                    k,
                    params: TileParams { bm, bk, bmm },
                })
                .collect();
            (what, TileTable { entries })
        })
}

/// Caller inputs for finding tile parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlOptions {
    /// `--tl-config PATH`: used, or an error; nothing else is tried.
    pub config: Option<PathBuf>,
    /// The model file (its directory is searched for `kernel_config.ini`).
    pub model_path: Option<PathBuf>,
    /// `$BITNET_CPP_DIR` (read by the CLI, not by the library).
    pub bitnet_cpp_dir: Option<PathBuf>,
}

/// One TL tensor the tiles must serve: its kind, shape and code bytes.
pub struct TlTensorRef<'a> {
    pub name: &'a str,
    pub kind: TlKind,
    pub m: usize,
    pub k: usize,
    pub codes: &'a [u8],
}

/// The tile table chosen for a file, where it came from, and what else was looked at.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TileDecision {
    pub source: TileSource,
    pub table: TileTable,
    /// Every source tried before the chosen one, with why it was passed over.
    pub tried: Vec<String>,
    /// Other presets under which every tensor decodes too (the weights then differ: on a trained
    /// model perplexity decides; see `--tl-config`).
    pub also_decodes: Vec<String>,
}

/// No tile source works.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum TileError {
    #[error(
        "no tile parameters for this {kind} file: they are not in the GGUF (bitnet.cpp keeps them in the \
         kernel_config.ini the file was converted with). Tried: {}. Pass the file's config with --tl-config PATH",
        tried.join("; ")
    )]
    NotFound { kind: &'static str, tried: Vec<String> },
    #[error("--tl-config {path}: {why}")]
    Flag { path: String, why: String },
}

/// Why `table` cannot serve `tensors`, or `None` if every shape is covered and the first tensor
/// of each shape decodes (the loader decodes, and checks, every tensor later).
fn unfit(table: &TileTable, tensors: &[TlTensorRef<'_>]) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    for t in tensors {
        let Some(p) = table.get(t.m, t.k) else {
            return Some(format!("no entry for {} (M={}, K={})", t.name, t.m, t.k));
        };
        if !seen.insert((t.m, t.k)) {
            continue;
        }
        if let Err(e) = tl_decode(t.kind, t.codes, t.m, t.k, p) {
            return Some(format!("{}: {e}", t.name));
        }
    }
    None
}

fn read_table(path: &Path) -> Result<TileTable, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    TileTable::parse_ini(&text)
}

/// Find the tile parameters for `tensors` (all of one kind), in the documented order.
pub fn resolve_tiles(kind: TlKind, tensors: &[TlTensorRef<'_>], opts: &TlOptions) -> Result<TileDecision, TileError> {
    let decided = |source, table, tried| TileDecision {
        source,
        table,
        tried,
        also_decodes: Vec::new(),
    };
    if let Some(path) = &opts.config {
        let flag_err = |why| TileError::Flag {
            path: path.display().to_string(),
            why,
        };
        let table = read_table(path).map_err(flag_err)?;
        if let Some(why) = unfit(&table, tensors) {
            return Err(flag_err(why));
        }
        return Ok(decided(TileSource::Flag { path: path.clone() }, table, Vec::new()));
    }
    let mut tried = vec!["--tl-config (not given)".to_string()];
    let files = [
        opts.model_path
            .as_ref()
            .and_then(|m| m.parent())
            .map(|d| TileSource::BesideModel {
                path: d.join("kernel_config.ini"),
            }),
        opts.bitnet_cpp_dir.as_ref().map(|d| TileSource::BitnetCppDir {
            path: d.join("include").join("kernel_config.ini"),
        }),
    ];
    for source in files.into_iter().flatten() {
        let (TileSource::BesideModel { path } | TileSource::BitnetCppDir { path }) = &source else {
            unreachable!("only file sources here")
        };
        if !path.exists() {
            tried.push(format!("{source}: absent"));
            continue;
        }
        match read_table(path).and_then(|t| unfit(&t, tensors).map_or(Ok(t), Err)) {
            Ok(table) => return Ok(decided(source, table, tried)),
            Err(why) => tried.push(format!("{source}: {why}")),
        }
    }
    if opts.bitnet_cpp_dir.is_none() {
        tried.push("$BITNET_CPP_DIR (not set)".into());
    }
    let mut fits = Vec::new();
    for (what, table) in presets(kind) {
        match unfit(&table, tensors) {
            None => fits.push((what, table)),
            Some(why) => tried.push(format!("preset {what}: {why}")),
        }
    }
    let mut fits = fits.into_iter();
    let Some((what, table)) = fits.next() else {
        return Err(TileError::NotFound {
            kind: kind.name(),
            tried,
        });
    };
    let mut d = decided(TileSource::Preset { what }, table, tried);
    d.also_decodes = fits.map(|(w, _)| format!("preset {w}")).collect();
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_codegen_writes() {
        let t = TileTable::parse_ini("[Kernels_0]\nM = 1536\nK = 4096\nBM = 256\nBK = 96\nbmm = 32\n\n").unwrap();
        assert_eq!(
            t.get(1536, 4096),
            Some(TileParams {
                bm: 256,
                bk: 96,
                bmm: 32
            })
        );
        assert_eq!(TileTable::parse_ini(&t.to_ini()).unwrap(), t);
        assert!(TileTable::parse_ini("[K]\nm = 1\n").unwrap_err().contains("no `k`"));
        assert!(TileTable::parse_ini("m = 1\n").is_err());
        assert!(TileTable::parse_ini("[K]\nm=x\nk=1\nbm=1\nbk=1\nbmm=1").is_err());
    }

    #[test]
    fn every_preset_has_tiles_for_each_shape() {
        for &(_, (model, _, shapes), _, tiles) in PRESETS {
            assert_eq!(shapes.len(), tiles.len(), "{model}");
        }
        let names: Vec<String> = presets(TlKind::Tl1).map(|(what, _)| what).collect();
        assert_eq!(
            names[1],
            "bitnet_b1_58-3B (setup_env.py codegen_tl1 arguments; also BitNet-b1.58-2B-4T's)"
        );
        assert_eq!(
            names[3],
            "Llama3-8B-1.58-100B-tokens (preset_kernels/kernel_config_tl1.ini)"
        );
        let large = presets(TlKind::Tl2).next().unwrap();
        assert_eq!(large.0, "bitnet_b1_58-large (setup_env.py codegen_tl2 arguments)");
        assert_eq!(
            large.1.get(1536, 1536),
            Some(TileParams {
                bm: 128,
                bk: 192,
                bmm: 32
            })
        );
    }

    #[test]
    fn nothing_found_lists_what_was_tried() {
        let codes = vec![0u8; 64 * 384 * 5 / 24 + 64 * 64];
        let t = [TlTensorRef {
            name: "w",
            kind: TlKind::Tl2,
            m: 64,
            k: 384,
            codes: &codes,
        }];
        let err = resolve_tiles(TlKind::Tl2, &t, &TlOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("--tl-config") && msg.contains("BITNET_CPP_DIR") && msg.contains("bitnet_b1_58-large"));
    }
}
