//! `parity verify` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `parity verify`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("parity verify is not implemented yet")
}
