//! The parity harness behind `parity run`, `diagnose` and `trace`: opening a reference, the comparison ladder,
//! diagnosis, tracing, the summary.

pub mod diagnose;
pub mod ladder;
pub mod output;
pub mod record;
pub mod reference;
pub mod trace;

/// What the user asked `parity run` for (thresholds left `None` take the documented defaults).
#[derive(Debug, Clone)]
pub struct Options {
    pub modes: Vec<vocab::Mode>,
    pub steps: Option<usize>,
    pub ctx: Option<usize>,
    pub prompt: Option<String>,
    pub exact: Option<bool>,
    pub cosine_min: Option<f64>,
    pub max_abs: Option<f64>,
    pub top1_min: Option<f64>,
    pub max_kld: Option<f64>,
    pub diagnose: bool,
    pub threads: usize,
    /// `--trace`: also trace the first mode on both sides, keeping these layers.
    pub trace: Option<engine::model::trace::LayerFilter>,
}
