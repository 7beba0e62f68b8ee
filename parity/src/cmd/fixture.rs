//! `parity fixture` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `parity fixture`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("parity fixture is not implemented yet")
}
