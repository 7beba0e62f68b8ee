//! `parity record` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `parity record`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("parity record is not implemented yet")
}
