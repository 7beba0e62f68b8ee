//! `parity diagnose` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `parity diagnose`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("parity diagnose is not implemented yet")
}
