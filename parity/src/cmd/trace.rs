//! `parity trace` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `parity trace`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("parity trace is not implemented yet")
}
