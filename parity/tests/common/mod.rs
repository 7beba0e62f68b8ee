//! Helpers shared by the CLI integration tests (each test binary uses some of them).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// A file (or, with `""`, the directory) of `../shared/reference` (or `$PARITY_SHARED/reference`), or `None`
/// with a SKIP line saying so.
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
        eprintln!("SKIP: shared/reference/{rel} not found (set PARITY_SHARED)");
    }
    found
}

/// A file of the committed `fixtures/reference`, else of `$PARITY_SHARED/reference`, else of
/// `/work/shared/reference`; `None` with a SKIP line saying so.
pub fn committed_or_shared(rel: &str) -> Option<PathBuf> {
    let mut roots = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/reference")];
    if let Some(s) = std::env::var_os("PARITY_SHARED") {
        roots.push(PathBuf::from(s).join("reference"));
    }
    roots.push(PathBuf::from("/work/shared/reference"));
    let found = roots.into_iter().map(|r| r.join(rel)).find(|p| p.exists());
    if found.is_none() {
        eprintln!("SKIP: {rel} not found (set PARITY_SHARED)");
    }
    found
}

/// Exit code (−1 when killed by a signal) and stdout followed by stderr, as one text.
pub fn code_and_text(o: &Output) -> (i32, String) {
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Run the built `parity` binary: exit code (−1 when killed by a signal), stdout (must be UTF-8), stderr.
pub fn parity(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_parity"))
        .args(args)
        .output()
        .expect("run parity");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("parity writes UTF-8 to stdout"),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}
