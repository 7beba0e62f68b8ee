//! `parity run --trace`: the reference's named graph tensors (llama.cpp's eval callback, or a recorded trace)
//! aligned with our trace of the same prompt, compared tensor by tensor, and summarised as a receipt grid.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use engine::model::trace::{
    trace_prompt, LayerFilter, LlamaAligner, LlamaNameMap, TraceCollector, TraceComparison, TracedTensor,
    DEFAULT_NMSE_THRESHOLD, FINAL_NAMES, LAYER_NAMES,
};
use engine::model::Numerics;
use ffi_ref::ReferenceBackend;
use receipts::TraceGrid;
use vocab::Mode;

use crate::common::EngineCtx;

/// The outcome of one traced comparison.
#[derive(Debug)]
pub struct TraceReport {
    pub mode: Mode,
    pub comparison: TraceComparison,
    /// Our tensor names the reference never showed (left out of `comparison`), in emission order.
    pub unseen: Vec<String>,
    /// Tensors compared on the reference's first columns only, because it pads the KV window.
    pub trimmed: Vec<String>,
}

/// The callback base names the aligner maps to ours (what the reference is asked to stream).
pub fn wanted_names(map: &LlamaNameMap) -> Vec<String> {
    let set: BTreeSet<&str> = map.entries.iter().map(|e| e.llama).collect();
    set.into_iter().map(str::to_string).collect()
}

/// Parse `--trace-layers 0,3` against the model's layer count.
pub fn layer_filter(layers: &[usize], n_layer: usize) -> Result<LayerFilter> {
    if layers.is_empty() {
        return Ok(LayerFilter::All);
    }
    if let Some(bad) = layers.iter().find(|&&l| l >= n_layer) {
        anyhow::bail!("--trace-layers: layer {bad} does not exist (the model has {n_layer} layers)");
    }
    Ok(LayerFilter::Only(layers.iter().copied().collect()))
}

/// Trace `tokens` on both sides in `mode` and compare.
pub fn run(
    ctx: &EngineCtx,
    backend: &mut dyn ReferenceBackend,
    tokens: &[u32],
    mode: Mode,
    n_ctx: usize,
    filter: &LayerFilter,
) -> Result<TraceReport> {
    let map = LlamaNameMap::for_model(&ctx.model, &ctx.numerics);
    let (_, raw) = backend
        .eval_trace(tokens, mode, &wanted_names(&map))
        .with_context(|| format!("reference trace ({mode})"))?;
    let collector = TraceCollector::new(filter.clone());
    let mut aligner = LlamaAligner::new(map, collector.clone());
    for t in &raw {
        let (rows, cols) = t.rows_cols();
        aligner.record(&t.name, rows, cols, &t.data);
    }
    let ours = trace_prompt(
        &ctx.model,
        &ctx.disp,
        ctx.numerics.clone(),
        tokens,
        mode == Mode::Batch,
        n_ctx,
        filter.clone(),
    )
    .context("tracing our engine")?;
    let (theirs, trimmed) = conform(&ours.tensors, collector.take());
    let (seen, missing): (Vec<TracedTensor>, Vec<TracedTensor>) = ours
        .tensors
        .into_iter()
        .partition(|o| theirs.iter().any(|t| t.key == o.key));
    let comparison = TraceComparison::new(&seen, &theirs, DEFAULT_NMSE_THRESHOLD);
    let mut unseen: Vec<String> = Vec::new();
    for t in missing {
        if !unseen.contains(&t.key.name) {
            unseen.push(t.key.name);
        }
    }
    Ok(TraceReport {
        mode,
        comparison,
        unseen,
        trimmed,
    })
}

/// Trace `tokens` under our numerics and under `theirs` (`parity trace`) and compare tensor by tensor.
pub fn compare_numerics(
    ctx: &EngineCtx,
    tokens: &[u32],
    mode: Mode,
    n_ctx: usize,
    theirs: &Numerics,
    filter: &LayerFilter,
    nmse_threshold: f64,
) -> Result<TraceComparison> {
    let run = |n: &Numerics| {
        trace_prompt(
            &ctx.model,
            &ctx.disp,
            n.clone(),
            tokens,
            mode == Mode::Batch,
            n_ctx,
            filter.clone(),
        )
        .with_context(|| format!("evaluating under {}", n.label()))
    };
    let (ours, other) = (run(&ctx.numerics)?, run(theirs)?);
    Ok(TraceComparison::new(&ours.tensors, &other.tensors, nmse_threshold))
}

/// Give the reference's tensors our shapes: the same values in another `ne` split are reshaped, and rows
/// wider than ours (llama.cpp pads the attention window to its KV cell padding) are cut to our width.
fn conform(ours: &[TracedTensor], theirs: Vec<TracedTensor>) -> (Vec<TracedTensor>, Vec<String>) {
    let mut trimmed = Vec::new();
    let out = theirs
        .into_iter()
        .map(|mut t| {
            let Some(o) = ours.iter().find(|o| o.key == t.key) else {
                return t;
            };
            if t.data.len() == o.data.len() {
                (t.rows, t.cols) = (o.rows, o.cols);
            } else if t.rows == o.rows && t.cols > o.cols && o.cols > 0 {
                t.data = t
                    .data
                    .chunks(t.cols)
                    .flat_map(|r| r[..o.cols].iter().copied())
                    .collect();
                t.cols = o.cols;
                if !trimmed.contains(&t.key.name) {
                    trimmed.push(t.key.name.clone());
                }
            }
            t
        })
        .collect();
    (out, trimmed)
}

/// Layers × tensors grid of the largest |Δ| over occurrences; the last row holds the output tensors.
pub fn grid(report: &TraceReport, n_layer: usize) -> TraceGrid {
    let tensors: Vec<String> = LAYER_NAMES
        .iter()
        .chain(FINAL_NAMES.iter())
        .map(|s| s.to_string())
        .collect();
    let mut values = vec![vec![None::<f64>; tensors.len()]; n_layer + 1];
    for d in &report.comparison.diffs {
        let (Some(col), row) = (
            tensors.iter().position(|t| *t == d.key.name),
            d.key.layer.unwrap_or(n_layer),
        ) else {
            continue;
        };
        if row > n_layer || d.shape_theirs.is_none() {
            continue;
        }
        let v = if d.max_abs_diff.is_nan() {
            f64::MAX
        } else {
            d.max_abs_diff
        };
        let cell = &mut values[row][col];
        *cell = Some(cell.map_or(v, |c| c.max(v)));
    }
    let mut layers: Vec<String> = (0..n_layer).map(|l| l.to_string()).collect();
    layers.push("output".into());
    TraceGrid {
        metric: "max_abs_diff".into(),
        layers,
        tensors,
        values,
    }
}

/// The per-tensor table (spec order), the first divergence, and what the reference could not show.
pub fn print(report: &TraceReport) {
    println!("\ntrace ({}): ours vs the reference's graph callback", report.mode);
    print_table(&report.comparison, "engine", "reference");
    if !report.trimmed.is_empty() {
        println!(
            "compared on our KV width only (the reference pads its attention window): {}",
            report.trimmed.join(", ")
        );
    }
    if !report.unseen.is_empty() {
        println!("not shown by the reference's callback: {}", report.unseen.join(", "));
    }
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

/// The per-tensor table of a trace comparison, its first divergence and first NMSE excess.
pub fn print_table(c: &TraceComparison, ours: &str, theirs: &str) {
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
