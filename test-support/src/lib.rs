//! Helpers shared by the integration tests of the workspace's crates (a dev-dependency only, never published):
//! where the reference goldens are. Paths are relative to this crate, which sits beside the others, so
//! `../fixtures` and `../../shared` mean the same from every crate.

use std::path::{Path, PathBuf};

/// The first of `roots.join(rel)` that `accept`s, or `None` after a SKIP line naming `what`.
fn first(roots: Vec<PathBuf>, rel: &str, accept: fn(&Path) -> bool, what: &str) -> Option<PathBuf> {
    let found = roots.into_iter().map(|r| r.join(rel)).find(|p| accept(p));
    if found.is_none() {
        eprintln!("SKIP: {what} not found (set PARITY_SHARED)");
    }
    found
}

/// The shared reference folders: `$PARITY_SHARED/reference` (else `../../shared/reference`), then
/// `/work/shared/reference`.
fn shared_roots() -> Vec<PathBuf> {
    let shared = std::env::var_os("PARITY_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    vec![shared.join("reference"), PathBuf::from("/work/shared/reference")]
}

/// A file (or, with `""`, the directory) of the shared reference folders, or `None` with a SKIP line.
pub fn reference(rel: &str) -> Option<PathBuf> {
    first(shared_roots(), rel, Path::exists, &format!("shared/reference/{rel}"))
}

/// A set of goldens (`""` or a sub-folder holding a `manifest.json`) in the shared reference folders, or
/// `None` with a SKIP line.
pub fn reference_set(sub: &str) -> Option<PathBuf> {
    let has_manifest = |p: &Path| p.join("manifest.json").is_file();
    first(shared_roots(), sub, has_manifest, &format!("shared/reference/{sub}"))
}

/// A file of the committed `fixtures/reference`, else of the shared reference folders; `None` with a SKIP line.
pub fn committed_or_shared(rel: &str) -> Option<PathBuf> {
    let mut roots = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/reference")];
    if let Some(s) = std::env::var_os("PARITY_SHARED") {
        roots.push(PathBuf::from(s).join("reference"));
    }
    roots.push(PathBuf::from("/work/shared/reference"));
    first(roots, rel, Path::exists, rel)
}
