//! Helpers shared by subcommands: id lists, the bundled fixture's location.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// Parse `1,2,3` (spaces allowed) into token ids.
pub fn parse_ids(s: &str) -> Result<Vec<u32>> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<u32>().with_context(|| format!("not a token id: {t:?}")))
        .collect::<Result<Vec<_>>>()
        .and_then(|v| if v.is_empty() { bail!("empty token list") } else { Ok(v) })
}

/// The repository's `fixtures/` directory (compiled in; overridable with `PARITY_FIXTURES`).
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("PARITY_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures")))
}
