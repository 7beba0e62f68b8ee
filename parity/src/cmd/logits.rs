//! `parity logits`: all-position logits of a prompt as a float32 `.npy` array `[n_tokens, n_vocab]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::common::{DeviceArgs, EngineArgs, PromptArgs};

/// Arguments of `parity logits`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  parity logits model.gguf --tokens 1,2,3 --mode batch --out logits.npy\n  parity logits model.gguf --prompt 'def ' --mode seq --threads 2 --ctx 256 --out l.npy"
)]
pub struct Args {
    /// GGUF model file.
    pub model: PathBuf,
    #[command(flatten)]
    pub prompt: PromptArgs,
    /// batch = one forward over the whole prompt; seq = one token at a time through the KV cache.
    #[arg(long, default_value = "batch", value_parser = ["batch", "seq"])]
    pub mode: String,
    /// Context size in KV cache cells (default 512, or the prompt's length if longer); must hold the prompt.
    #[arg(long, value_parser = crate::limits::ctx)]
    pub ctx: Option<usize>,
    /// Output .npy file.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn main(a: Args) -> Result<ExitCode> {
    let ctx = a.engine.load(&a.model)?.on(&a.device)?;
    let tokens = a.prompt.resolve(&ctx)?;
    let n_ctx = a.ctx.unwrap_or(512.max(tokens.len()));
    crate::limits::check_ctx(tokens.len(), 0, n_ctx)?;
    let mut session = ctx.session(n_ctx)?;
    let logits = session.eval_prompt(&tokens, a.mode == "batch")?;
    ffi_ref::npy::write_f32(&a.out, &[tokens.len(), ctx.model.hparams.n_vocab], &logits)?;
    eprintln!(
        "parity logits: {} tokens × {} vocab, mode {}, numerics {}, kernels {}",
        tokens.len(),
        ctx.model.hparams.n_vocab,
        a.mode,
        session.numerics().label(),
        ctx.disp.log().keys().cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
