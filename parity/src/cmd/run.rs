//! `parity run`: our engine against a reference on the same tokens, up the comparison ladder
//! (tokenizer → position 0 → all positions → greedy decode), gated, with a receipt.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use vocab::Mode;

use crate::common::{fixtures_dir, parse_ids, DeviceArgs, EngineArgs};
use crate::run::{ladder, output, reference, Options};

/// Arguments of `parity run`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  parity run                                   # bundled trained model vs its recorded bitnet.cpp logits\n  parity run model.gguf --reference recorded:goldens/ --mode both --receipt r.json\n  BITNET_CPP_DIR=~/BitNet parity run model.gguf --reference ffi --prompt 'def ' --steps 32\n  parity run model.gguf --mmap                 # compute from the memory map (zero-copy) instead of a resident copy\n  parity run model.gguf --device cuda          # our side on the GPU (a --features cuda build; docs/cuda.md)\n\nExit status: 0 every gate passed, 1 a gate failed, 2 usage or input error."
)]
pub struct Args {
    /// GGUF model (default: the bundled trained fixture).
    pub model: Option<PathBuf>,
    /// Token ids, comma-separated (default: the recorded reference's prompt for this model).
    #[arg(long, conflicts_with = "prompt")]
    pub tokens: Option<String>,
    /// Text to tokenize on both sides (checks the tokenizer rung too).
    #[arg(long)]
    pub prompt: Option<String>,
    /// `ffi` (a live bitnet.cpp, needs the ffi feature) or `recorded:DIR` (default: the model's fixture dir).
    #[arg(long)]
    pub reference: Option<String>,
    /// Which prompt-processing mode(s) to compare.
    #[arg(long, default_value = "both", value_parser = ["batch", "seq", "both"])]
    pub mode: String,
    /// Greedy decode steps to compare after the prompt (default: all the reference recorded, else 32).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Context size (default: the recorded case's n_ctx, else prompt + steps).
    #[arg(long, value_parser = crate::limits::ctx)]
    pub ctx: Option<usize>,
    /// Seconds a live reference may take to load the model and to answer each request; the worker is
    /// killed and the run fails (exit 2) after that.
    #[arg(long, default_value_t = ffi_ref::ffi::DEFAULT_TIMEOUT_SECS, value_parser = crate::limits::seconds)]
    pub timeout: u64,
    /// Write the receipt here (validated against schemas/ first).
    #[arg(long)]
    pub receipt: Option<PathBuf>,
    /// Minimum per-position cosine (default 1.0 when bit-exactness is required, else 0.99999).
    #[arg(long)]
    pub cosine_min: Option<f64>,
    /// Maximum |Δlogit| (default 0 when bit-exactness is required, else unbounded).
    #[arg(long)]
    pub max_abs: Option<f64>,
    /// Minimum fraction of positions whose top-1 agrees (default 1.0).
    #[arg(long)]
    pub top1_min: Option<f64>,
    /// Maximum llama.cpp mean KLD (default: not gated).
    #[arg(long)]
    pub max_kld: Option<f64>,
    /// Require (or with --exact=false, do not require) bit-identical logits. Default: required when the
    /// reference's generation is the numerics profile we run, which it is unless you chose another.
    #[arg(long)]
    pub exact: Option<bool>,
    /// Do not diagnose a failing gate.
    #[arg(long)]
    pub no_diagnose: bool,
    /// Also compare every named intermediate tensor with the reference's (first mode only; a live reference,
    /// or a recorded one that carries traces).
    #[arg(long)]
    pub trace: bool,
    /// With --trace: only these layers, e.g. 0,3 (the output tensors are always compared).
    #[arg(long, value_delimiter = ',', requires = "trace")]
    pub trace_layers: Vec<usize>,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// The bundled default: the trained model and its recorded bitnet.cpp 2025 logits.
fn bundled() -> (PathBuf, PathBuf) {
    let dir = fixtures_dir().join("reference/trained");
    (dir.join("tiny-trained-b158.i2_s.gguf"), dir)
}

pub fn main(a: Args) -> Result<ExitCode> {
    let (model_path, default_dir) = match &a.model {
        Some(m) => (m.clone(), m.parent().map(Path::to_path_buf).unwrap_or_default()),
        None => bundled(),
    };
    let mut ctx = a
        .engine
        .load(&model_path)
        .with_context(|| format!("loading {}", model_path.display()))?
        .on(&a.device)?;
    let timeout = std::time::Duration::from_secs(a.timeout);
    let mut backend = reference::open(a.reference.as_deref(), &default_dir, &model_path, &ctx, timeout)?;
    if a.engine.numerics == "auto" {
        reference::match_numerics(&mut ctx, &backend);
    }
    let modes: Vec<Mode> = match a.mode.as_str() {
        "batch" => vec![Mode::Batch],
        "seq" => vec![Mode::Seq],
        _ => vec![Mode::Batch, Mode::Seq],
    };
    let tokens = match (&a.tokens, &a.prompt) {
        (Some(t), _) => parse_ids(t)?,
        (None, Some(_)) => Vec::new(),
        (None, None) => reference::default_tokens(backend.recorded(), modes[0])?,
    };
    let opts = Options {
        modes,
        steps: a.steps,
        ctx: a.ctx,
        prompt: a.prompt.clone(),
        exact: a.exact,
        cosine_min: a.cosine_min,
        max_abs: a.max_abs,
        top1_min: a.top1_min,
        max_kld: a.max_kld,
        diagnose: !a.no_diagnose,
        threads: a.engine.threads,
        trace: if a.trace {
            Some(crate::run::trace::layer_filter(
                &a.trace_layers,
                ctx.model.hparams.n_layer,
            )?)
        } else {
            None
        },
    };
    let outcome = ladder::run(&ctx, &mut backend, &model_path, tokens, &opts)?;
    output::print(&outcome);
    if let Some(t) = &outcome.trace {
        crate::run::trace::print(t);
    }
    if let Some(path) = &a.receipt {
        receipts::write_receipt(path, &outcome.receipt).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("receipt written to {}", path.display());
    }
    // A mode the receipt could not carry (non-finite reference logits) fails the run too.
    Ok(if outcome.receipt.pass && outcome.stopped_at.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
