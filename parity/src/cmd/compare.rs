//! `parity compare` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `parity compare`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("parity compare is not implemented yet")
}
