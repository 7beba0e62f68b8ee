//! Helpers shared by the CLI integration tests (each test binary uses some of them).
#![allow(dead_code)]

use std::process::{Command, Output};

#[allow(unused_imports)] // each test binary uses some of them
pub use test_support::{committed_or_shared, reference};

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
