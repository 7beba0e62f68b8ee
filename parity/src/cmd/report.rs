//! `parity report` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `parity report`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("parity report is not implemented yet")
}
