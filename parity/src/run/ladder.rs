//! The comparison ladder: tokenizer → position 0 → all positions → greedy decode, stopping at the first
//! rung that fails, and the receipt that records it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use engine::kernels::KernelId;
use ffi_ref::{RefError, ReferenceBackend};
use receipts::gates::FINITE_GATE;
use receipts::{Diagnosis, GreedyComparison, Host, ModeResult, ParityReceipt, ParityReceiptBuilder, Thresholds, Tool};
use vocab::Mode;

use crate::common::EngineCtx;
use crate::harness::kl::KlStats;
use crate::harness::metrics::{compare_logits, MetricsError};

use super::reference::{self, AnyBackend};
use super::{diagnose, Options};

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

fn rung(name: impl Into<String>, pass: bool, detail: String) -> Rung {
    Rung {
        name: name.into(),
        status: if pass { Status::Pass } else { Status::Fail },
        detail,
    }
}

/// Climb the ladder for every mode asked, stopping at the first failing rung, and build the receipt.
pub fn run(
    ctx: &EngineCtx,
    any: &mut AnyBackend,
    model_path: &Path,
    tokens: Vec<u32>,
    opts: &Options,
) -> Result<Outcome> {
    let tokenizer = ctx.tokenizer(None).ok();
    let mut rungs = Vec::new();
    let tokens = tokenizer_rung(tokenizer.as_ref(), any, opts, tokens, &mut rungs)?;
    anyhow::ensure!(!tokens.is_empty(), "no tokens to compare");
    let generation = reference::generation(any);
    let ref_profile = reference::profile(any).name();
    let thresholds = thresholds(opts, ref_profile == ctx.numerics.label());
    // A broken reference mode fails its own rung without stopping the other modes.
    let failed = |rungs: &[Rung]| {
        rungs
            .iter()
            .any(|r| r.status == Status::Fail && !r.name.ends_with(BROKEN_RUNG))
    };
    let (mut modes, mut case_ids, mut diagnosis) = (Vec::new(), Vec::new(), None);
    // The receipt's kernel log covers exactly the comparisons: diagnosis and tracing runs are left out.
    ctx.disp.clear_log();
    let mut compared: BTreeMap<KernelId, u64> = BTreeMap::new();
    // A mode whose reference logits are not finite: its gate fails, the other modes still run.
    let mut broken_reference: Option<String> = None;
    for &mode in &opts.modes {
        if failed(&rungs) {
            break;
        }
        let m = match compare_mode(ctx, any, &tokens, mode, opts, &thresholds, &mut rungs)? {
            ModeOutcome::Compared(m) => *m,
            // Some reference paths are broken in known ways (bitnet.cpp's TL2 batched matmul): the mode's gate
            // fails and is diagnosed, the other modes still run, and its kernel calls stay out of the receipt.
            ModeOutcome::BrokenReference { rung, n_ctx, reference } => {
                broken_reference.get_or_insert(rung);
                if diagnosis.is_none() {
                    diagnosis = diagnose_failure(ctx, &tokens, mode, n_ctx, &reference);
                }
                ctx.disp.clear_log();
                continue;
            }
        };
        case_ids.extend(m.case_id);
        for (id, n) in ctx.disp.take_log() {
            *compared.entry(id).or_default() += n;
        }
        if failed(&rungs) && opts.diagnose && diagnosis.is_none() {
            diagnosis = diagnose_failure(ctx, &tokens, mode, m.n_ctx, &m.reference);
            ctx.disp.clear_log();
        }
        modes.push(m.result);
    }

    if let Some(rung) = &broken_reference {
        let why = diagnosis
            .as_ref()
            .map_or_else(|| rung.clone(), |d: &Diagnosis| d.verdict.clone());
        anyhow::ensure!(
            !modes.is_empty(),
            "{rung}: not finite, and no other mode was compared (a receipt needs one). {why}"
        );
    }
    let trace = match (&opts.trace, opts.modes.first()) {
        (Some(filter), Some(&mode)) => {
            let n_ctx = opts.ctx.unwrap_or(tokens.len() + 1);
            Some(super::trace::run(ctx, any.as_backend(), &tokens, mode, n_ctx, filter)?)
        }
        _ => None,
    };
    let tokenizer_sha256 = tokenizer
        .as_ref()
        .map_or_else(|| "none".into(), |t| t.sha256().to_string());
    let (kernels, kernel_isa) = crate::common::kernel_records(&compared);
    let builder = ParityReceiptBuilder {
        tool: Tool {
            name: "parity".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            git_commit: env!("PARITY_GIT_COMMIT").into(),
        },
        host: Host {
            accelerators: ctx.accelerators(),
            ..Host::detect(opts.threads as u32)
        },
        model: ctx.receipt_model(model_path),
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
    let stopped_at = rungs.iter().find(|r| r.status == Status::Fail).map(|r| r.name.clone());
    Ok(Outcome {
        rungs,
        receipt,
        stopped_at,
        trace,
    })
}

/// Rung 1: with `--prompt`, both tokenizers on the text (the ids compared are ours); else the ids given.
fn tokenizer_rung(
    tokenizer: Option<&engine::tokenizer::Tokenizer>,
    any: &mut AnyBackend,
    opts: &Options,
    tokens: Vec<u32>,
    rungs: &mut Vec<Rung>,
) -> Result<Vec<u32>> {
    let Some(text) = &opts.prompt else {
        rungs.push(Rung {
            name: "tokenizer".into(),
            status: Status::Skip,
            detail: "token ids given".into(),
        });
        return Ok(tokens);
    };
    let ours = tokenizer
        .context("--prompt needs the model's tokenizer")?
        .encode(text, true, true)?;
    match any.as_backend().tokenize(text, true, true) {
        Ok(theirs) if theirs == ours => rungs.push(rung("tokenizer", true, format!("{} ids identical", ours.len()))),
        Ok(theirs) => {
            let at = ours
                .iter()
                .zip(&theirs)
                .position(|(a, b)| a != b)
                .unwrap_or(ours.len().min(theirs.len()));
            let detail = format!(
                "ids differ at index {at}: ours {:?} vs reference {:?}",
                ours.get(at),
                theirs.get(at)
            );
            rungs.push(rung("tokenizer", false, detail));
        }
        Err(RefError::NoCase(why)) => rungs.push(Rung {
            name: "tokenizer".into(),
            status: Status::Skip,
            detail: format!("the reference cannot tokenize ({why}); comparing on our ids"),
        }),
        Err(e) => return Err(e).context("reference tokenizer"),
    }
    Ok(ours)
}

/// One mode's comparison: its result, the recorded case it used, and the reference logits (for diagnosis).
struct ModeRun {
    result: ModeResult,
    case_id: Option<String>,
    n_ctx: usize,
    reference: Vec<f32>,
}

/// Suffix of the rung a mode fails with when the reference's own logits are not finite.
const BROKEN_RUNG: &str = ": reference logits";

/// How one mode's comparison ended.
enum ModeOutcome {
    Compared(Box<ModeRun>),
    /// The reference's logits are not finite (receipts cannot carry them): the failed rung's name, and what
    /// diagnosis needs.
    BrokenReference {
        rung: String,
        n_ctx: usize,
        reference: Vec<f32>,
    },
}

/// Our logits are not finite: the mode fails the `logits.finite` gate by name and stops the ladder. The
/// receipt records the count; its rows' metrics read each non-finite value as 0 (JSON cannot carry NaN).
#[allow(clippy::too_many_arguments)]
fn non_finite_ours(
    e: MetricsError,
    mode: Mode,
    opts: &Options,
    (case_id, n_ctx): (Option<String>, usize),
    n_vocab: usize,
    ours: &[f32],
    reference: Vec<f32>,
    rungs: &mut Vec<Rung>,
) -> Result<ModeRun> {
    let zeroed: Vec<f32> = ours.iter().map(|&v| if v.is_finite() { v } else { 0.0 }).collect();
    let cmp = compare_logits(&zeroed, &reference, n_vocab)?;
    let threads = opts.threads as u32;
    let result = ModeResult::new(mode, threads, n_vocab as u64, cmp.positions, ours, &reference);
    let detail = format!("{e} ({} non-finite values)", result.non_finite_logits);
    rungs.push(rung(format!("{}: {FINITE_GATE}", mode.as_str()), false, detail));
    Ok(ModeRun {
        result,
        case_id,
        n_ctx,
        reference,
    })
}

/// Rungs 2–4 of one mode: position 0, all positions, then the greedy continuation.
fn compare_mode(
    ctx: &EngineCtx,
    any: &mut AnyBackend,
    tokens: &[u32],
    mode: Mode,
    opts: &Options,
    t: &Thresholds,
    rungs: &mut Vec<Rung>,
) -> Result<ModeOutcome> {
    let m = mode.as_str();
    let case = any
        .recorded()
        .and_then(|r| r.find_case(tokens, mode).ok())
        .map(|c| (c.id.clone(), c.n_ctx as usize, c.greedy_ids.len()));
    let theirs = any
        .as_backend()
        .eval_logits(tokens, mode)
        .with_context(|| format!("reference logits ({m})"))?;
    let n_ctx = opts
        .ctx
        .or(case.as_ref().map(|c| c.1))
        .unwrap_or(tokens.len() + opts.steps.unwrap_or(32) + 1);
    let n_vocab = ctx.model.hparams.n_vocab;
    let mut session = ctx.session(n_ctx)?;
    let ours = session.eval_prompt(tokens, mode == Mode::Batch)?;
    let cmp = match compare_logits(&ours, &theirs.data, n_vocab) {
        Ok(c) => c,
        Err(e @ MetricsError::NonFinite { side: "reference", .. }) => {
            let name = format!("{m}{BROKEN_RUNG}");
            rungs.push(rung(name.clone(), false, e.to_string()));
            return Ok(ModeOutcome::BrokenReference {
                rung: name,
                n_ctx,
                reference: theirs.data,
            });
        }
        Err(e @ MetricsError::NonFinite { side: "ours", .. }) => {
            return Ok(ModeOutcome::Compared(Box::new(non_finite_ours(
                e,
                mode,
                opts,
                (case.map(|c| c.0), n_ctx),
                n_vocab,
                &ours,
                theirs.data,
                rungs,
            )?)));
        }
        Err(e) => return Err(e.into()),
    };
    let p0 = &cmp.positions[0];
    let p0_ok = t.admits(p0);
    let top1 = if p0.top1_match { "equal" } else { "differs" };
    let detail = format!("cosine {:.9}, max|Δ| {:.3e}, top-1 {top1}", p0.cosine, p0.max_abs_diff);
    rungs.push(rung(format!("{m}: position 0"), p0_ok, detail));
    let mut result = ModeResult::new(
        mode,
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
    let all_ok = cmp.positions.iter().all(|p| t.admits(p)) && cmp.summary.top1_match_rate >= t.min_top1_match_rate;
    if p0_ok {
        let s = &cmp.summary;
        let detail = format!(
            "{} positions, min cosine {:.9}, max|Δ| {:.3e}, top-1 {:.1}%{}",
            s.n_positions,
            s.min_cosine,
            s.max_abs_diff,
            100.0 * s.top1_match_rate,
            if s.bit_exact { ", bit-exact" } else { "" }
        );
        rungs.push(rung(format!("{m}: all positions"), all_ok, detail));
    }
    let steps = opts.steps.or(case.as_ref().map(|c| c.2)).unwrap_or(32);
    if p0_ok && all_ok && steps > 0 {
        let last = &ours[(tokens.len() - 1) * n_vocab..];
        let ours_ids = session.greedy(last, steps)?;
        let theirs_ids = any
            .as_backend()
            .greedy(tokens, mode, steps)
            .with_context(|| format!("reference greedy ({m})"))?;
        let g = GreedyComparison::new(ours_ids, theirs_ids);
        rungs.push(rung(
            format!("{m}: greedy {steps} steps"),
            g.identical(),
            greedy_detail(&g),
        ));
        result.greedy = Some(g);
    }
    Ok(ModeOutcome::Compared(Box::new(ModeRun {
        result,
        case_id: case.map(|c| c.0),
        n_ctx,
        reference: theirs.data,
    })))
}

fn greedy_detail(g: &GreedyComparison) -> String {
    match g.first_divergence {
        None if g.identical() => format!("{} ids identical", g.ours.len()),
        None => format!("lengths differ: ours {}, reference {}", g.ours.len(), g.reference.len()),
        Some(i) => format!(
            "first divergence at step {i}: ours {} vs reference {}",
            g.ours[i as usize], g.reference[i as usize]
        ),
    }
}

/// Run `parity diagnose`'s ranking on a failing mode; the verdict goes into the receipt.
fn diagnose_failure(ctx: &EngineCtx, tokens: &[u32], mode: Mode, n_ctx: usize, reference: &[f32]) -> Option<Diagnosis> {
    let d = diagnose::diagnose(ctx, tokens, mode, n_ctx, reference).ok()?;
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
