//! `parity chat` (not implemented yet).

use std::process::ExitCode;

/// Arguments of `parity chat`.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn main(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("parity chat is not implemented yet")
}
