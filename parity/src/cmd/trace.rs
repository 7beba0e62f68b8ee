//! `parity trace`: run our engine twice on one prompt (our numerics, and another profile plus switches),
//! trace every intermediate tensor, and name the first that diverges.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use engine::model::trace::{TensorDiff, DEFAULT_NMSE_THRESHOLD};
use engine::model::Numerics;
use serde::Serialize;

use vocab::Mode;

use crate::common::{mode_parser, numerics, EngineArgs, PromptArgs};
use crate::run::trace::{compare_numerics, layer_filter, print_table};

/// Arguments of `parity trace`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Our side uses --numerics/--switch; the other side --against-numerics/--against-switch.\n\
Exit status: 0 no tensor differs, 1 some tensor differs, 2 bad input.\n\n\
Examples:\n  parity trace model.gguf --tokens 1,2,3 --mode batch --switch H1\n  \
parity trace model.gguf --tokens 1,2,3 --mode seq --against-numerics bitnet.cpp-2026 --trace-layers 0 --json"
)]
pub struct Args {
    /// GGUF model file.
    pub model: PathBuf,
    #[command(flatten)]
    pub prompt: PromptArgs,
    /// batch = one forward over the whole prompt; seq = one token at a time through the KV cache.
    #[arg(long, value_parser = mode_parser(), default_value = "batch")]
    pub mode: Mode,
    /// Context size (KV cache cells).
    #[arg(long, default_value_t = 512, value_parser = crate::limits::ctx)]
    pub ctx: usize,
    /// Profile of the other side: auto, bitnet.cpp-2025, bitnet.cpp-2026 (predicted) or llama.cpp.
    #[arg(long, default_value = "auto")]
    pub against_numerics: String,
    /// Extra switches of the other side, e.g. H1,H3.
    #[arg(long, value_delimiter = ',')]
    pub against_switch: Vec<String>,
    /// Only trace these layers (tensors after the last layer are always traced), e.g. 0,3.
    #[arg(long, value_delimiter = ',')]
    pub trace_layers: Vec<usize>,
    /// NMSE bound for "first exceeding" (test-backend-ops' default is 1e-7).
    #[arg(long, default_value_t = DEFAULT_NMSE_THRESHOLD)]
    pub nmse_threshold: f64,
    /// Print the comparison as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The JSON document `--json` prints.
#[derive(Serialize)]
struct Report<'a> {
    model: String,
    mode: Mode,
    tokens: usize,
    ours: &'a Numerics,
    ours_label: String,
    theirs: &'a Numerics,
    theirs_label: String,
    /// Label of the first tensor that is not bit-exact.
    first_divergence: Option<&'a str>,
    /// Label of the first tensor whose NMSE exceeds `nmse_threshold`.
    first_over_threshold: Option<&'a str>,
    nmse_threshold: f64,
    diffs: &'a [TensorDiff],
}

pub fn main(a: Args) -> Result<ExitCode> {
    let ctx = a.engine.load(&a.model)?;
    let tokens = a.prompt.resolve(&ctx)?;
    let theirs = numerics(
        &ctx.model,
        &a.against_numerics,
        &a.against_switch,
        "chosen with --against-numerics",
    )?;
    let filter = layer_filter(&a.trace_layers, ctx.model.hparams.n_layer)?;
    anyhow::ensure!(a.nmse_threshold >= 0.0, "--nmse-threshold must be >= 0");
    let n_ctx = a.ctx.max(tokens.len());
    let c = compare_numerics(&ctx, &tokens, a.mode, n_ctx, &theirs, &filter, a.nmse_threshold)?;
    if a.json {
        let report = Report {
            model: a.model.display().to_string(),
            mode: a.mode,
            tokens: tokens.len(),
            ours: &ctx.numerics,
            ours_label: ctx.numerics.label(),
            theirs: &theirs,
            theirs_label: theirs.label(),
            first_divergence: c.first_divergent().map(|d| d.label.as_str()),
            first_over_threshold: c.first_exceeding().map(|d| d.label.as_str()),
            nmse_threshold: c.threshold,
            diffs: &c.diffs,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&c, &ctx.numerics.label(), &theirs.label());
    }
    Ok(if c.first_divergence.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
