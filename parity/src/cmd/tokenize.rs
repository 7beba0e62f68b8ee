//! `parity tokenize` / `parity detokenize` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `parity tokenize`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Arguments of `parity detokenize`.
#[derive(clap::Args, Debug)]
pub struct DetokenizeArgs {}

pub fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("parity tokenize is not implemented yet")
}

pub fn detokenize(_args: DetokenizeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("parity detokenize is not implemented yet")
}
