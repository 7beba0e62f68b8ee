//! The comparison ladder: tokenizer → position 0 → all positions → greedy decode, stopping at the first
//! rung that fails, and the receipt that records it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use engine::kernels::KernelId;
use ffi_ref::{Mode as RefMode, RefError, ReferenceBackend};
use receipts::{Diagnosis, GreedyComparison, Host, ModeResult, ParityReceipt, ParityReceiptBuilder, Thresholds, Tool};

use crate::cmd::diagnose::{self, Mode as DiagMode};
use crate::cmd::run::AnyBackend;
use crate::common::EngineCtx;
use crate::harness::kl::KlStats;
use crate::harness::metrics::compare_logits;

use super::{reference, Options};

/// How a rung ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

/// One rung of the ladder, with the numbers that decided it.
#[derive(Clone, Debug)]
pub struct Rung {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

/// Everything `parity run` shows and writes.
#[derive(Debug)]
pub struct Outcome {
    pub rungs: Vec<Rung>,
    pub receipt: ParityReceipt,
    /// Where the ladder stopped, if a rung failed.
    pub stopped_at: Option<String>,
    /// `--trace`: the tensor-by-tensor comparison.
    pub trace: Option<super::trace::TraceReport>,
}

/// Thresholds: bit-exact when the reference computes the numerics we run (the default), else close.
pub fn thresholds(opts: &Options, exact_default: bool) -> Thresholds {
    let exact = opts.exact.unwrap_or(exact_default);
    let mut t = if exact {
        Thresholds::bit_exact()
    } else {
        Thresholds {
            min_cosine: 0.99999,
            max_abs_diff: f64::MAX,
            min_top1_match_rate: 1.0,
            max_mean_kld: None,
            require_bit_exact: false,
        }
    };
    if let Some(c) = opts.cosine_min {
        t.min_cosine = c;
    }
    if let Some(m) = opts.max_abs {
        t.max_abs_diff = m;
    }
    if let Some(r) = opts.top1_min {
        t.min_top1_match_rate = r;
    }
    t.max_mean_kld = opts.max_kld;
    t
}

/// Whether one position passes the thresholds.
fn position_ok(p: &receipts::PositionMetrics, t: &Thresholds) -> bool {
    p.cosine >= t.min_cosine && p.max_abs_diff <= t.max_abs_diff && (!t.require_bit_exact || p.max_abs_diff == 0.0)
}

pub fn run(
    ctx: &EngineCtx,
    any: &mut AnyBackend,
    model_path: &Path,
    mut tokens: Vec<u32>,
    opts: &Options,
) -> Result<Outcome> {
    let mut rungs = Vec::new();
    let mut stopped_at = None;
    let tokenizer = ctx.tokenizer(None).ok();
    let tokenizer_sha256 = tokenizer
        .as_ref()
        .map(|t| t.sha256().to_string())
        .unwrap_or_else(|| "none".into());

    // Rung 1: the tokenizer.
    match &opts.prompt {
        Some(text) => {
            let tok = tokenizer.as_ref().context("--prompt needs the model's tokenizer")?;
            let ours = tok.encode(text, true, true)?;
            match any.as_backend().tokenize(text, true, true) {
                Ok(theirs) if theirs == ours => rungs.push(Rung {
                    name: "tokenizer".into(),
                    status: Status::Pass,
                    detail: format!("{} ids identical", ours.len()),
                }),
                Ok(theirs) => {
                    let at = ours
                        .iter()
                        .zip(&theirs)
                        .position(|(a, b)| a != b)
                        .unwrap_or(ours.len().min(theirs.len()));
                    rungs.push(Rung {
                        name: "tokenizer".into(),
                        status: Status::Fail,
                        detail: format!(
                            "ids differ at index {at}: ours {:?} vs reference {:?}",
                            ours.get(at),
                            theirs.get(at)
                        ),
                    });
                    stopped_at = Some("tokenizer".to_string());
                }
                Err(RefError::NoCase(why)) => rungs.push(Rung {
                    name: "tokenizer".into(),
                    status: Status::Skip,
                    detail: format!("the reference cannot tokenize ({why}); comparing on our ids"),
                }),
                Err(e) => return Err(e).context("reference tokenizer"),
            }
            tokens = ours;
        }
        None => rungs.push(Rung {
            name: "tokenizer".into(),
            status: Status::Skip,
            detail: "token ids given".into(),
        }),
    }
    anyhow::ensure!(!tokens.is_empty(), "no tokens to compare");

    let generation = reference::generation(any);
    let exact_default = generation.as_str() == ctx.numerics.label();
    let thresholds = thresholds(opts, exact_default);
    let n_vocab = ctx.model.hparams.n_vocab;
    let mut modes = Vec::new();
    let mut diagnosis = None;
    let mut case_ids = Vec::new();
    // The receipt's kernel log covers exactly the comparisons: diagnosis and tracing runs are left out.
    ctx.disp.clear_log();
    let mut compared: BTreeMap<KernelId, u64> = BTreeMap::new();
    for &mode in &opts.modes {
        if stopped_at.is_some() {
            break;
        }
        let m = mode.as_str();
        let case = any
            .recorded()
            .and_then(|r| r.find_case(&tokens, mode).ok())
            .map(|c| (c.id.clone(), c.n_ctx as usize, c.greedy_ids.len()));
        let theirs = any
            .as_backend()
            .eval_logits(&tokens, mode)
            .with_context(|| format!("reference logits ({m})"))?;
        let n_ctx = opts
            .ctx
            .or(case.as_ref().map(|c| c.1))
            .unwrap_or(tokens.len() + opts.steps.unwrap_or(32) + 1);
        if let Some(c) = &case {
            case_ids.push(c.0.clone());
        }
        let mut session = ctx.session(n_ctx)?;
        let ours = session.eval_prompt(&tokens, mode == RefMode::Batch)?;
        let cmp = compare_logits(&ours, &theirs.data, n_vocab)?;
        let p0 = &cmp.positions[0];
        let p0_ok = position_ok(p0, &thresholds);
        rungs.push(Rung {
            name: format!("{m}: position 0"),
            status: if p0_ok { Status::Pass } else { Status::Fail },
            detail: format!(
                "cosine {:.9}, max|Δ| {:.3e}, top-1 {}",
                p0.cosine,
                p0.max_abs_diff,
                if p0.top1_match { "equal" } else { "differs" }
            ),
        });
        let mut result = ModeResult::new(
            to_receipt_mode(mode),
            opts.threads as u32,
            n_vocab as u64,
            cmp.positions.clone(),
            &ours,
            &theirs.data,
        );
        if tokens.len() >= 2 {
            result.kl = KlStats::compute(&ours, &theirs.data, n_vocab, &tokens[1..])
                .ok()
                .map(|k| k.record());
        }
        let all_ok = cmp.positions.iter().all(|p| position_ok(p, &thresholds))
            && cmp.summary.top1_match_rate >= thresholds.min_top1_match_rate;
        if p0_ok {
            let s = &cmp.summary;
            rungs.push(Rung {
                name: format!("{m}: all positions"),
                status: if all_ok { Status::Pass } else { Status::Fail },
                detail: format!(
                    "{} positions, min cosine {:.9}, max|Δ| {:.3e}, top-1 {:.1}%{}",
                    s.n_positions,
                    s.min_cosine,
                    s.max_abs_diff,
                    100.0 * s.top1_match_rate,
                    if s.bit_exact { ", bit-exact" } else { "" }
                ),
            });
        }
        if p0_ok && all_ok {
            let steps = opts.steps.or(case.as_ref().map(|c| c.2)).unwrap_or(32);
            if steps > 0 {
                let last = &ours[(tokens.len() - 1) * n_vocab..];
                let ours_ids = session.greedy(last, steps)?;
                let theirs_ids = any
                    .as_backend()
                    .greedy(&tokens, mode, steps)
                    .with_context(|| format!("reference greedy ({m})"))?;
                let g = GreedyComparison::new(ours_ids, theirs_ids);
                let same = g.first_divergence.is_none() && g.ours.len() == g.reference.len();
                rungs.push(Rung {
                    name: format!("{m}: greedy {steps} steps"),
                    status: if same { Status::Pass } else { Status::Fail },
                    detail: match g.first_divergence {
                        None if same => format!("{} ids identical", g.ours.len()),
                        None => format!("lengths differ: ours {}, reference {}", g.ours.len(), g.reference.len()),
                        Some(i) => format!(
                            "first divergence at step {i}: ours {} vs reference {}",
                            g.ours[i as usize], g.reference[i as usize]
                        ),
                    },
                });
                result.greedy = Some(g);
            }
        }
        for (id, n) in ctx.disp.take_log() {
            *compared.entry(id).or_default() += n;
        }
        if rungs.iter().any(|r| r.status == Status::Fail) {
            stopped_at = rungs.iter().find(|r| r.status == Status::Fail).map(|r| r.name.clone());
            if opts.diagnose && diagnosis.is_none() {
                diagnosis = diagnose_failure(ctx, &tokens, mode, n_ctx, &theirs.data);
                ctx.disp.clear_log();
            }
        }
        modes.push(result);
    }

    let trace = match (&opts.trace, opts.modes.first()) {
        (Some(filter), Some(&mode)) => {
            let n_ctx = opts.ctx.unwrap_or(tokens.len() + 1);
            Some(super::trace::run(ctx, any.as_backend(), &tokens, mode, n_ctx, filter)?)
        }
        _ => None,
    };
    let host = Host::detect(opts.threads as u32);
    let (kernels, kernel_isa) = crate::common::kernel_records(&compared);
    let builder = ParityReceiptBuilder {
        tool: Tool {
            name: "parity".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            git_commit: env!("PARITY_GIT_COMMIT").into(),
        },
        host,
        model: receipts::Model {
            path: model_path.display().to_string(),
            sha256: ctx.model_sha256(),
            architecture: ctx.model.hparams.arch_name.clone(),
            flavor_summary: ctx
                .model
                .flavors
                .counts
                .iter()
                .map(|(k, v)| (k.to_string(), *v as u64))
                .collect(),
        },
        tokenizer_sha256,
        token_ids: tokens,
        reference: receipt_reference(any.as_backend(), generation, &ctx.numerics.label(), case_ids),
        kernels,
        kernel_isa,
        modes,
        thresholds,
        diagnosis,
        trace: trace.as_ref().map(|t| super::trace::grid(t, ctx.model.hparams.n_layer)),
        created_at: None,
    };
    let key = receipts::seal::signing_key_from_env()?;
    let receipt = builder.build(key.as_ref())?;
    Ok(Outcome {
        rungs,
        receipt,
        stopped_at,
        trace,
    })
}

fn to_receipt_mode(m: RefMode) -> receipts::Mode {
    match m {
        RefMode::Batch => receipts::Mode::Batch,
        RefMode::Seq => receipts::Mode::Seq,
    }
}

/// Run `parity diagnose`'s ranking on a failing mode; the verdict goes into the receipt.
fn diagnose_failure(
    ctx: &EngineCtx,
    tokens: &[u32],
    mode: RefMode,
    n_ctx: usize,
    reference: &[f32],
) -> Option<Diagnosis> {
    let dm = if mode == RefMode::Batch {
        DiagMode::Batch
    } else {
        DiagMode::Seq
    };
    let d = diagnose::diagnose(ctx, tokens, dm, n_ctx, reference).ok()?;
    Some(Diagnosis {
        verdict: d.verdict.clone(),
        best_profile: d.ranked.first().map(|c| c.label.clone()),
        explanation: None,
    })
}

fn receipt_reference(
    backend: &dyn ReferenceBackend,
    generation: receipts::Generation,
    profile: &str,
    case_ids: Vec<String>,
) -> receipts::ReferenceIdentity {
    let id = backend.identity();
    match id.kind {
        ffi_ref::ReferenceKind::Recorded => receipts::ReferenceIdentity::Recorded {
            generation,
            numerics_profile: profile.to_string(),
            dir: id.dir.unwrap_or_default(),
            manifest_sha256: id.manifest_sha256.unwrap_or_default(),
            case_ids,
        },
        ffi_ref::ReferenceKind::Ffi => receipts::ReferenceIdentity::Ffi {
            generation,
            numerics_profile: profile.to_string(),
            bitnet_cpp_commit: id
                .commit
                .filter(|c| c != "unknown" && generation != receipts::Generation::LlamaCpp),
            llama_cpp_commit: id.llama_commit.unwrap_or_else(|| "unknown".into()),
        },
    }
}
