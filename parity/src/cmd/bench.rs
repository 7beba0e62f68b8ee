//! `parity bench` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `parity bench`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("parity bench is not implemented yet")
}
