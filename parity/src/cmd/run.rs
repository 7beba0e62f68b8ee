//! `parity run` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `parity run`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("parity run is not implemented yet")
}
