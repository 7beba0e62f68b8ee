//! Which reference generation produced these logits? Runs our engine under every numerics profile and every
//! single switch on top of the model's auto profile, compares each with the reference's logits, ranks them and
//! says in words what the best one means. Used by `parity diagnose` and by `parity run` when a gate fails.

use anyhow::{ensure, Context, Result};
use engine::model::{Arch, Numerics, Profile, Session, Switch};
use serde::Serialize;
use vocab::{argmax, cosine, Mode};

use crate::common::EngineCtx;

/// Minimum cosine (per position) for a candidate that is not bit-exact to count as explaining the reference.
pub const EXPLAINS_MIN_COSINE: f64 = 0.9999;

/// One candidate numerics and how well it reproduces the reference.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    /// e.g. `bitnet.cpp-2025+H3`, `bitnet.cpp-2026 (predicted, unverified)`.
    pub label: String,
    pub numerics: Numerics,
    /// Whether this profile was checked against a real build (bitnet.cpp-2026 was not).
    pub verified: bool,
    /// Every logit bit-identical.
    pub exact: bool,
    pub max_abs_diff: f64,
    /// Smallest per-position cosine (f64).
    pub min_cosine: f64,
    /// Positions whose argmax agrees with the reference's.
    pub top1_agree: usize,
    pub positions: usize,
    /// What it would mean if this candidate were the reference's numerics.
    pub meaning: String,
}

/// The ranked candidates and the verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnosis {
    pub mode: Mode,
    pub tokens: usize,
    pub n_vocab: usize,
    /// Best first: exact matches, then by min cosine, top-1 agreement, max |Δ|; ties keep the
    /// candidate order (profiles before single switches).
    pub ranked: Vec<Candidate>,
    /// Whether `ranked[0]` explains the reference (exact, or min cosine ≥ [`EXPLAINS_MIN_COSINE`]).
    pub explained: bool,
    pub exact: bool,
    /// Other candidates that are exact too (indistinguishable on this prompt and mode).
    pub also_exact: Vec<String>,
    /// A known bug of the reference itself, recognised by its signature (then the verdict names it).
    pub reference_broken: Option<String>,
    pub verdict: String,
}

/// bitnet.cpp's TL2 batched matmul (`-DBITNET_X86_TL2=ON`, a prompt of ≥ 2 tokens in one decode) is
/// broken: its generated `three_qgemm_lut`/`two_qgemm_lut` write every batch element's result into
/// the first row's slot and the `two_qlut` offsets use `two_k/3` for `/2`, so every row after the
/// first is NaN and the first is wrong. Recognised by that signature on a TL2 model.
fn tl2_batch_bug(ctx: &EngineCtx, tokens: usize, mode: Mode, reference: &[f32], n_vocab: usize) -> Option<String> {
    let tl2 = ctx.model.flavors.counts.get("tl2").copied().unwrap_or(0) > 0;
    if !tl2 || mode != Mode::Batch || tokens < 2 {
        return None;
    }
    let mut rows = reference.chunks(n_vocab);
    let first_finite = rows.next()?.iter().all(|v| v.is_finite());
    let rest_nan = rows.all(|r| r.iter().any(|v| v.is_nan()));
    (first_finite && rest_nan).then(|| {
        format!(
            "the reference is broken, not the engine: bitnet.cpp's TL2 batched matmul (-DBITNET_X86_TL2=ON, the \
             prompt in one llama_decode) gives NaN in every row after the first ({}/{} rows here) and a wrong first \
             row (its generated three_qgemm_lut/two_qgemm_lut write every batch element into one row, fixed upstream \
             by BitNet PR #521, and two_qlut offsets use two_k/3 for /2). The engine's logits are what the same \
             weights give in I2_S. Evaluate one token per decode (llama-cli/perplexity with -b 1, parity --mode \
             seq) or convert to I2_S",
            tokens - 1,
            tokens
        )
    })
}

fn meaning(n: &Numerics, base: &Numerics, arch: Arch) -> String {
    let b158 = arch == Arch::BitnetB158;
    let extra: Vec<Switch> = n
        .switches
        .iter()
        .copied()
        .filter(|s| !base.switches.contains(s))
        .collect();
    if n.profile != base.profile || extra.is_empty() {
        return match n.profile {
            Profile::BitnetCpp2025 => "the reference computes bitnet.cpp 2025's numerics (microsoft/BitNet 404980e), the verified \
                                       baseline this engine reproduces"
                .into(),
            Profile::BitnetCpp2026 if b158 => "the reference applies SiLU in the FFN of a bitnet-b1.58 model — a known bitnet.cpp bug \
                                               (microsoft/BitNet #588); your model's math is ReLU². (bitnet.cpp-2026 is predicted, \
                                               unverified; it also changes the I2_S epilogue, f16 activations and the KV window)"
                .into(),
            Profile::BitnetCpp2026 => "the reference behaves like bitnet.cpp 2026 (predicted, unverified): I2_S epilogue times \
                                       w_scale/act_scale, f16-rounded activations in batch F16 matmuls, KV window padded to 256"
                .into(),
            Profile::LlamaCpp => "the reference computes upstream llama.cpp's numerics (f16-rounded activations in F16 matmuls of \
                                  >= 2 rows, KV window padded to 256)"
                .into(),
            Profile::BitnetCpp2025Arm => "these logits come from an ARM build of bitnet.cpp 2025 (aarch64, plain NEON: 4-lane f32 \
                                          F16 dots and softmax sums, NEON expf, exact I2_S sums)"
                .into(),
            Profile::BitnetCpp2025ArmFp16 => "these logits come from an ARM fp16 build of bitnet.cpp 2025 (armv8.2-a+fp16, the code \
                                              paths of an Apple M-series build: F16 dots and tinyBLAS accumulate in fp16)"
                .into(),
        };
    }
    let what: Vec<String> = extra
        .iter()
        .map(|s| match s {
            Switch::H1 if b158 => {
                "uses SiLU instead of ReLU² in the FFN — the bitnet.cpp 2026 bug (microsoft/BitNet #588); your \
                                   model's math is ReLU²"
                    .to_string()
            }
            Switch::H1 => "would use SiLU in a bitnet-b1.58 FFN (no effect on this legacy `bitnet` model)".to_string(),
            Switch::H2 => {
                "finishes I2_S matmuls as (f32(dot) − f32(sum))·f32(w_scale/act_scale) with int32 sums (bitnet.cpp \
                           2026's tinyBLAS I2_S path)"
                    .to_string()
            }
            Switch::H3 => {
                "rounds activations to f16 in F16 matmuls of >= 2 rows: KQ, probs×V, LM head (upstream sgemm since \
                           llama.cpp PR #10714)"
                    .to_string()
            }
            Switch::H4 => "pads the KV window to 256 cells (llama.cpp PRs #16812/#17046)".to_string(),
            Switch::U1 => {
                "fuses the TQ dot's per-lane multiply-add into an FMA, as a GCC build of upstream llama.cpp does \
                           (the recorded upstream goldens come from a build that does not)"
                    .to_string()
            }
        })
        .collect();
    format!(
        "the reference is {} except that it {}",
        base.profile.name(),
        what.join("; and it ")
    )
}

/// Every profile, then the model's auto profile with each single switch.
fn candidates(ctx: &EngineCtx) -> Vec<Numerics> {
    let auto = ctx.model.auto_numerics();
    let mut out: Vec<Numerics> = Profile::all()
        .into_iter()
        .map(|p| Numerics::profile(p, "diagnose: profile"))
        .collect();
    for s in Switch::all() {
        out.push(
            Numerics {
                reason: format!("diagnose: {} + {}", auto.profile.name(), s.name()),
                ..auto.clone()
            }
            .with_switches(&[s]),
        );
    }
    out
}

fn score(ours: &[f32], reference: &[f32], n_vocab: usize) -> (bool, f64, f64, usize) {
    let exact = ours.len() == reference.len() && ours.iter().zip(reference).all(|(a, b)| a.to_bits() == b.to_bits());
    let max_abs = engine::model::trace::max_abs_diff(ours, reference);
    let mut min_cos = f64::INFINITY;
    let mut top1 = 0;
    for (a, b) in ours.chunks(n_vocab).zip(reference.chunks(n_vocab)) {
        let c = cosine(a, b);
        min_cos = if c.is_nan() { f64::NAN } else { min_cos.min(c) };
        top1 += usize::from(argmax(a) == argmax(b));
    }
    (exact, max_abs, min_cos, top1)
}

/// Run every candidate numerics on `tokens` and rank them by how well they reproduce `reference`
/// (row-major `[tokens.len(), n_vocab]` logits). `ctx.numerics` is not used.
pub fn diagnose(ctx: &EngineCtx, tokens: &[u32], mode: Mode, n_ctx: usize, reference: &[f32]) -> Result<Diagnosis> {
    let n_vocab = ctx.model.hparams.n_vocab;
    ensure!(!tokens.is_empty(), "no tokens to evaluate");
    ensure!(
        reference.len() == tokens.len() * n_vocab,
        "reference holds {} logits, expected {} tokens × {n_vocab} vocab = {}",
        reference.len(),
        tokens.len(),
        tokens.len() * n_vocab
    );
    let auto = ctx.model.auto_numerics();
    let mut ranked = Vec::new();
    for numerics in candidates(ctx) {
        let mut session = Session::try_new(&ctx.model, &ctx.disp, numerics.clone(), n_ctx.max(tokens.len()))?;
        let logits = session
            .eval_prompt(tokens, mode == Mode::Batch)
            .with_context(|| format!("evaluating under {}", numerics.label()))?;
        let (exact, max_abs_diff, min_cosine, top1_agree) = score(&logits, reference, n_vocab);
        ranked.push(Candidate {
            label: numerics.label(),
            verified: numerics.profile.verified(),
            meaning: meaning(&numerics, &auto, ctx.model.hparams.arch),
            numerics,
            exact,
            max_abs_diff,
            min_cosine,
            top1_agree,
            positions: tokens.len(),
        });
    }
    let key = |c: &Candidate| {
        (
            !c.exact,
            -(if c.min_cosine.is_nan() {
                f64::NEG_INFINITY
            } else {
                c.min_cosine
            }),
            usize::MAX - c.top1_agree,
        )
    };
    ranked.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then(ka.2.cmp(&kb.2))
            .then(a.max_abs_diff.total_cmp(&b.max_abs_diff))
    });
    let best = &ranked[0];
    let exact = best.exact;
    let explained = exact || best.min_cosine >= EXPLAINS_MIN_COSINE;
    let also_exact: Vec<String> = ranked
        .iter()
        .skip(1)
        .filter(|c| c.exact)
        .map(|c| c.label.clone())
        .collect();
    let reference_broken = tl2_batch_bug(ctx, tokens.len(), mode, reference, n_vocab);
    let verdict = if let Some(bug) = &reference_broken {
        bug.clone()
    } else if exact {
        let mut v = format!("matches {} exactly: {}", best.label, best.meaning);
        if !also_exact.is_empty() {
            v.push_str(&format!(
                " (indistinguishable on this prompt and mode from {}; try the other --mode or a longer prompt)",
                also_exact.join(", ")
            ));
        }
        v
    } else if explained {
        format!(
            "closest to {} (not bit-exact: max |Δ| {:.3e}, min cosine {:.6}, top-1 {}/{}): {}",
            best.label, best.max_abs_diff, best.min_cosine, best.top1_agree, best.positions, best.meaning
        )
    } else {
        format!(
            "no profile explains the reference (best: {}, min cosine {:.6}, max |Δ| {:.3e}, top-1 {}/{})",
            best.label, best.min_cosine, best.max_abs_diff, best.top1_agree, best.positions
        )
    };
    Ok(Diagnosis {
        mode,
        tokens: tokens.len(),
        n_vocab,
        ranked,
        explained,
        exact,
        also_exact,
        reference_broken,
        verdict,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_exact_cosine_and_top1() {
        let (exact, max_abs, cos, top1) = score(&[1.0, 2.0, 3.0, 0.0], &[1.0, 2.0, 0.0, 3.0], 2);
        assert!(!exact);
        assert_eq!(max_abs, 3.0);
        assert_eq!(cos, 0.0);
        assert_eq!(top1, 1);
        assert!(score(&[1.0, -0.0], &[1.0, -0.0], 2).0);
    }
}
