//! Helpers shared by the engine's integration tests.

use std::path::PathBuf;

/// A file of `../shared/reference` (or `$PARITY_SHARED/reference`), or `None` with a SKIP line saying so.
pub fn reference(rel: &str) -> Option<PathBuf> {
    let root = std::env::var_os("PARITY_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let found = [
        root.join("reference").join(rel),
        PathBuf::from("/work/shared/reference").join(rel),
    ]
    .into_iter()
    .find(|p| p.exists());
    if found.is_none() {
        eprintln!("SKIP: {rel} not found in shared/reference (set PARITY_SHARED)");
    }
    found
}
