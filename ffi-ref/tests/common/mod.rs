//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `shared/reference` (or a sub-folder): `PARITY_SHARED`, else `../../shared` from this crate, else
/// `/work/shared`. `None` (after printing SKIP) when absent.
pub fn shared_reference(sub: &str) -> Option<PathBuf> {
    let root = std::env::var_os("PARITY_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let found = [
        root.join("reference").join(sub),
        PathBuf::from("/work/shared/reference").join(sub),
    ]
    .into_iter()
    .find(|p| p.join("manifest.json").is_file());
    if found.is_none() {
        eprintln!("SKIP: shared/reference/{sub} not found (set PARITY_SHARED)");
    }
    found
}
