//! I2_S layout probe: the x86, ARM and 1x4 packings have identical sizes and no metadata says which a
//! file uses (spec §3.6), so run a short text through the model under each reading and compare
//! perplexities. A trained model is decisive (the wrong reading is noise); a random one is not.

use std::sync::Arc;

use serde::Serialize;

use crate::flavor::{FlavorOptions, I2sLayout};
use crate::gguf::GgufFile;
use crate::kernels::Dispatcher;

use super::{Model, ModelError, Session};

/// Text the probe scores: code and prose, so models trained on either see familiar tokens.
pub const PROBE_TEXT: &str = "def read_config(path):\n    \"\"\"Return the settings stored in path.\"\"\"\n    with open(path) as f:\n        return json.load(f)\n\nThe quick brown fox jumps over the lazy dog. It was the best of times, it was the worst of times.\n";

/// Perplexity of the probe text under one layout.
#[derive(Clone, Debug, Serialize)]
pub struct LayoutScore {
    pub layout: I2sLayout,
    /// `None` when the layout cannot hold this file's shapes.
    pub perplexity: Option<f64>,
    pub note: Option<String>,
}

/// The probe's finding.
#[derive(Clone, Debug, Serialize)]
pub struct LayoutProbe {
    pub tokens: usize,
    pub scores: Vec<LayoutScore>,
    /// The layout the evidence supports, or `None` ("undecided").
    pub decided: Option<I2sLayout>,
    pub reason: String,
}

/// How much lower the best perplexity must be than the runner-up to decide.
pub const DECISIVE_RATIO: f64 = 4.0;

/// Score every I2_S layout on `tokens` (batch mode, mean negative log-likelihood of each next token).
pub fn probe_layouts(file: &Arc<GgufFile>, disp: &Dispatcher, tokens: &[u32]) -> Result<LayoutProbe, ModelError> {
    if tokens.len() < 2 {
        return Err(ModelError::Invalid("the layout probe needs at least two tokens".into()));
    }
    let mut scores = Vec::new();
    let mut n_vocab = 0;
    for layout in I2sLayout::ALL {
        let model = match Model::from_file(
            file.clone(),
            &FlavorOptions {
                i2s_layout: Some(layout),
                ..Default::default()
            },
        ) {
            Ok(m) => m,
            Err(ModelError::Flavor(e)) => {
                scores.push(LayoutScore {
                    layout,
                    perplexity: None,
                    note: Some(e.to_string()),
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        n_vocab = model.hparams.n_vocab;
        let mut s = Session::try_new(&model, disp, model.auto_numerics(), tokens.len())?;
        let logits = s.eval_prompt(tokens, true)?;
        let mut nll = 0f64;
        for (i, &next) in tokens[1..].iter().enumerate() {
            let row = &logits[i * n_vocab..(i + 1) * n_vocab];
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
            let lse = max + row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
            nll += lse - row[next as usize] as f64;
        }
        let ppl = (nll / (tokens.len() - 1) as f64).exp();
        scores.push(LayoutScore {
            layout,
            perplexity: Some(ppl),
            note: None,
        });
    }
    let mut ranked: Vec<(I2sLayout, f64)> = scores
        .iter()
        .filter_map(|s| s.perplexity.map(|p| (s.layout, p)))
        .collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (decided, reason) = match ranked.as_slice() {
        [] => (None, "no layout can hold this file's shapes".to_string()),
        [(l, p)] => (
            Some(*l),
            format!("only {} fits the shapes (perplexity {p:.1})", l.name()),
        ),
        [(l, p), (l2, p2), ..] => {
            let uniform = n_vocab as f64;
            if p * DECISIVE_RATIO <= *p2 && *p <= uniform / DECISIVE_RATIO {
                (
                    Some(*l),
                    format!(
                        "{} gives perplexity {p:.1}, {:.0}× below {} ({p2:.1}); uniform guessing is {uniform:.0}",
                        l.name(),
                        p2 / p,
                        l2.name()
                    ),
                )
            } else {
                (None, format!("undecided: best {} {p:.1} vs {} {p2:.1} (uniform {uniform:.0}); a random or untrained model cannot tell the layouts apart", l.name(), l2.name()))
            }
        }
    };
    Ok(LayoutProbe {
        tokens: tokens.len(),
        scores,
        decided,
        reason,
    })
}
