//! `parity trace`: run our engine twice on one prompt (our numerics, and another profile plus switches),
//! trace every intermediate tensor, and name the first that diverges.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use engine::model::trace::{trace_prompt, LayerFilter, TensorDiff, TraceComparison, DEFAULT_NMSE_THRESHOLD};
use engine::model::{Numerics, Profile, Switch};
use serde::Serialize;

use crate::cmd::diagnose::Mode;
use crate::common::{EngineArgs, PromptArgs};

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
    #[arg(long, value_enum, default_value_t = Mode::Batch)]
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

fn against_numerics(a: &Args, model: &engine::model::Model) -> Result<Numerics> {
    let base = match a.against_numerics.as_str() {
        "auto" => model.auto_numerics(),
        p => Numerics::profile(
            p.parse::<Profile>().map_err(anyhow::Error::msg)?,
            "chosen with --against-numerics",
        ),
    };
    let extra = a
        .against_switch
        .iter()
        .map(|s| s.parse::<Switch>().map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    Ok(base.with_switches(&extra))
}

fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.3e}")
    }
}

fn shape(s: Option<[usize; 2]>) -> String {
    s.map_or_else(|| "missing".into(), |[r, c]| format!("{r}x{c}"))
}

pub(crate) fn print_table(c: &TraceComparison, ours: &str, theirs: &str) {
    println!("ours:   {ours}\ntheirs: {theirs}");
    println!(
        "{:<24} {:>11} {:>11} {:>11} {:>12} {:>5}",
        "tensor", "shape", "NMSE", "max|Δ|", "cosine", "exact"
    );
    for (i, d) in c.diffs.iter().enumerate() {
        let shape = if d.shape_ours == d.shape_theirs {
            shape(d.shape_ours)
        } else {
            format!("{}≠{}", shape(d.shape_ours), shape(d.shape_theirs))
        };
        let cos = if d.cosine.is_nan() {
            "-".into()
        } else {
            format!("{:.9}", d.cosine)
        };
        let mut mark = String::new();
        if c.first_divergence == Some(i) {
            mark.push_str("  <- first divergence");
        }
        if c.first_over_threshold == Some(i) {
            mark.push_str(&format!("  <- first NMSE > {:e}", c.threshold));
        }
        let exact = if d.bit_exact { "yes" } else { "no" };
        println!(
            "{:<24} {:>11} {:>11} {:>11} {:>12} {:>5}{mark}",
            d.label,
            shape,
            fmt_num(d.nmse),
            fmt_num(d.max_abs_diff),
            cos,
            exact
        );
    }
    match c.first_divergent() {
        None => println!("no divergence: all {} tensors are bit-exact", c.diffs.len()),
        Some(d) => {
            let n = c.diffs.iter().filter(|d| !d.bit_exact).count();
            println!(
                "first divergence: {} ({n} of {} tensors differ)",
                d.label,
                c.diffs.len()
            );
            match c.first_exceeding() {
                Some(e) => println!("first NMSE > {:e}: {}", c.threshold, e.label),
                None => println!("no tensor exceeds NMSE {:e}", c.threshold),
            }
        }
    }
}

pub fn main(a: Args) -> Result<ExitCode> {
    let ctx = a.engine.load(&a.model)?;
    let tokens = a.prompt.resolve(&ctx)?;
    let theirs = against_numerics(&a, &ctx.model)?;
    let filter = if a.trace_layers.is_empty() {
        LayerFilter::All
    } else {
        let set: BTreeSet<usize> = a.trace_layers.iter().copied().collect();
        let n_layer = ctx.model.hparams.n_layer;
        if let Some(bad) = set.iter().find(|&&l| l >= n_layer) {
            anyhow::bail!("--trace-layers: layer {bad} does not exist (the model has {n_layer} layers)");
        }
        LayerFilter::Only(set)
    };
    anyhow::ensure!(a.nmse_threshold >= 0.0, "--nmse-threshold must be >= 0");
    let batch = a.mode == Mode::Batch;
    let n_ctx = a.ctx.max(tokens.len());
    let run = |n: &Numerics| {
        trace_prompt(&ctx.model, &ctx.disp, n.clone(), &tokens, batch, n_ctx, filter.clone())
            .with_context(|| format!("evaluating under {}", n.label()))
    };
    let ours = run(&ctx.numerics)?;
    let other = run(&theirs)?;
    let c = TraceComparison::new(&ours.tensors, &other.tensors, a.nmse_threshold);
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
