//! `parity inspect` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `parity inspect`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("parity inspect is not implemented yet")
}
