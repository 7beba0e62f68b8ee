//! `parity logits` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `parity logits`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("parity logits is not implemented yet")
}
