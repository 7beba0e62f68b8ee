//! `parity generate` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `parity generate`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("parity generate is not implemented yet")
}
