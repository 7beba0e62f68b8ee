//! The gates of a receipt: the one set of pass/fail rules. The receipt builder ([`crate::builder`]) fills a
//! receipt's gates with them, `parity verify` re-runs them on a receipt it reads, and `parity run`'s ladder
//! judges its rungs with the same definitions ([`Thresholds::admits`], [`GreedyComparison::identical`] and the
//! gate names below), so the three never disagree.
//!
//! [`Thresholds::admits`]: crate::parity::Thresholds::admits
//! [`GreedyComparison::identical`]: crate::parity::GreedyComparison::identical

use crate::defs::{
    combine_summaries, summarize, Host, KernelIsa, KernelIsaLog, KernelLog, Model, AARCH64_FEATURES, X86_64_FEATURES,
};
use crate::parity::{first_divergence, Gate, ParityReceipt};

fn gate(name: &str, passed: bool, reason: impl Into<String>) -> Gate {
    Gate {
        name: name.to_owned(),
        passed,
        reason: reason.into(),
    }
}

/// A gate that passes when `problems` is empty; its reason is then `ok`, else the problems joined by `; `.
fn problems_gate(name: &str, problems: Vec<String>, ok: &str) -> Gate {
    if problems.is_empty() {
        gate(name, true, ok)
    } else {
        gate(name, false, problems.join("; "))
    }
}

/// Normalised form used to match flavors and host features with kernel-ID segments: lower case, no `_`/`-`/`.`.
fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| !['_', '-', '.'].contains(c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Ternary flavors that must be computed by a flavor-specific kernel (normalised names).
const TERNARY: [&str; 5] = ["i2s", "tq1", "tq2", "tl1", "tl2"];

/// What `kernel` needs that this host lacks: read from its recorded [`KernelIsa`] when the receipt has one;
/// receipts written before kernels carried their ISA fall back to [`unsupported_isa_segments`].
pub fn unsupported_isa(kernel: &str, isa: Option<&KernelIsa>, host: &Host) -> Vec<String> {
    let Some(isa) = isa else {
        return unsupported_isa_segments(kernel, host);
    };
    let mut missing = Vec::new();
    if isa.isa == "cuda" && host.accelerators.as_ref().is_none_or(|a| a.is_empty()) {
        missing.push("cuda (no accelerator recorded)".to_owned());
    }
    let have: Vec<String> = host.isa_features.iter().map(|f| norm(f)).collect();
    missing.extend(isa.requires.iter().filter(|f| !have.contains(&norm(f))).cloned());
    missing
}

/// Legacy reading for receipts without `kernel_isa`: kernel-ID segments that name an ISA this host does not
/// report (an `x86` segment, which engine IDs use for the I2_S weight layout, is read as the host). A segment
/// names an ISA when it is a CPU feature a host record may list; a bare `avx512` needs `avx512f`, `cuda` a
/// recorded accelerator.
pub fn unsupported_isa_segments(kernel: &str, host: &Host) -> Vec<String> {
    let have: Vec<String> = host.isa_features.iter().map(|f| norm(f)).collect();
    let mut missing = Vec::new();
    for seg in kernel.split('.') {
        let n = norm(seg);
        let needs = match n.as_str() {
            "cuda" => {
                if host.accelerators.as_ref().is_none_or(|a| a.is_empty()) {
                    missing.push("cuda (no accelerator recorded)".to_owned());
                }
                continue;
            }
            "x86" | "x8664" => {
                if !host.arch.starts_with("x86") {
                    missing.push(format!("x86 (host arch is {})", host.arch));
                }
                continue;
            }
            "avx512" => "avx512f".to_owned(),
            s if X86_64_FEATURES.iter().chain(AARCH64_FEATURES).any(|f| norm(f) == s) => n.clone(),
            _ => continue,
        };
        if !have.contains(&needs) {
            missing.push(seg.to_owned());
        }
    }
    missing
}

/// Ternary flavors of `model` with tensors but no kernel whose ID names them.
pub fn flavors_without_kernel<'a>(model: &'a Model, kernels: impl Iterator<Item = &'a String> + Clone) -> Vec<&'a str> {
    model
        .flavor_summary
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(f, _)| f.as_str())
        .filter(|f| {
            let nf = norm(f);
            // TL1/TL2 codes are decoded into I2_S at load and computed by I2_S kernels.
            let computed_as = if nf.starts_with("tl") {
                "i2s".to_owned()
            } else {
                nf.clone()
            };
            TERNARY.iter().any(|t| nf.starts_with(t))
                && !kernels
                    .clone()
                    .any(|k| k.split('.').any(|seg| norm(seg).starts_with(&computed_as)))
        })
        .collect()
}

/// The compute-path gates (`kernels.*`), shared by every receipt that carries a kernel log.
pub fn kernel_gates(host: &Host, model: &Model, kernels: &KernelLog, kernel_isa: &KernelIsaLog) -> Vec<Gate> {
    let mut gates = Vec::new();
    let kernel_total: u64 = kernels.values().sum();
    gates.push(gate(
        "kernels.dispatched",
        !kernels.is_empty(),
        if kernels.is_empty() {
            "the dispatcher log is empty: nothing shows the engine computed anything".to_owned()
        } else {
            format!("{} kernel IDs, {kernel_total} calls", kernels.len())
        },
    ));
    let missing = flavors_without_kernel(model, kernels.keys());
    gates.push(gate(
        "kernels.flavor",
        missing.is_empty(),
        if missing.is_empty() {
            "every ternary flavor of the model has a matching kernel".to_owned()
        } else {
            format!(
                "model has {} tensors but no kernel names that flavor",
                missing.join(", ")
            )
        },
    ));
    let bad_isa: Vec<String> = kernels
        .keys()
        .filter_map(|k| {
            let m = unsupported_isa(k, kernel_isa.get(k), host);
            (!m.is_empty()).then(|| format!("{k} needs {}", m.join("+")))
        })
        .collect();
    gates.push(problems_gate(
        "kernels.isa",
        bad_isa,
        "every kernel's ISA is among the host's features",
    ));
    gates
}

/// Every gate of `r`, recomputed from its facts (ignores `r.gates` and `r.pass`).
pub fn evaluate_gates(r: &ParityReceipt) -> Vec<Gate> {
    let mut gates = kernel_gates(&r.host, &r.model, &r.kernels, &r.kernel_isa);
    gates.push(consistency_gate(r));
    gates.push(logits_gate(r));
    gates.extend(finite_gate(r));
    let t = &r.thresholds;
    let s = &r.summary;
    gates.push(gate(
        "metrics.cosine",
        s.min_cosine >= t.min_cosine,
        format!("min cosine {} vs threshold {}", s.min_cosine, t.min_cosine),
    ));
    gates.push(gate(
        "metrics.max_abs_diff",
        s.max_abs_diff <= t.max_abs_diff,
        format!("max |diff| {} vs threshold {}", s.max_abs_diff, t.max_abs_diff),
    ));
    gates.push(gate(
        "metrics.top1",
        s.top1_match_rate >= t.min_top1_match_rate,
        format!(
            "top-1 agreement {} vs threshold {}",
            s.top1_match_rate, t.min_top1_match_rate
        ),
    ));
    if let Some(max_kld) = t.max_mean_kld {
        let worst = r
            .modes
            .iter()
            .map(|m| m.kl.as_ref().map(|k| k.kld.mean.value))
            .collect::<Option<Vec<_>>>();
        let (passed, reason) = match worst {
            None => (
                false,
                "a KLD threshold is set but a mode has no KL statistics".to_owned(),
            ),
            Some(v) => {
                let worst = v.into_iter().fold(0.0, f64::max);
                (
                    worst <= max_kld,
                    format!("worst mean KLD {worst} vs threshold {max_kld}"),
                )
            }
        };
        gates.push(gate("metrics.kld", passed, reason));
    }
    let diverged: Vec<String> = r
        .modes
        .iter()
        .filter_map(|m| {
            let g = m.greedy.as_ref()?;
            (!g.identical()).then(|| match g.first_divergence {
                Some(i) => format!("{} t{} diverges at step {i}", m.mode.as_str(), m.threads),
                None => format!(
                    "{} t{} lengths {} vs {}",
                    m.mode.as_str(),
                    m.threads,
                    g.ours.len(),
                    g.reference.len()
                ),
            })
        })
        .collect();
    if r.modes.iter().any(|m| m.greedy.is_some()) {
        gates.push(problems_gate(
            "greedy.match",
            diverged,
            "greedy continuations identical in every compared mode",
        ));
    }
    if t.require_bit_exact {
        let differing: Vec<String> = r
            .modes
            .iter()
            .filter(|m| m.logits_sha256.ours != m.logits_sha256.reference)
            .map(|m| format!("{} t{}", m.mode.as_str(), m.threads))
            .collect();
        gates.push(gate(
            "metrics.bit_exact",
            differing.is_empty(),
            if differing.is_empty() {
                "every mode's logits are byte-identical to the reference's".to_owned()
            } else {
                format!("logits bytes differ in {}", differing.join(", "))
            },
        ));
    }
    gates
}

/// Summaries must be exactly what the rows say; rows numbered 0..n; top-1 flags and greedy
/// divergence consistent with the ids they summarise.
fn consistency_gate(r: &ParityReceipt) -> Gate {
    let mut problems = Vec::new();
    for (i, m) in r.modes.iter().enumerate() {
        if summarize(&m.positions) != m.summary {
            problems.push(format!("modes[{i}].summary does not match modes[{i}].positions"));
        }
        if let Some(p) = m.positions.iter().enumerate().find(|(j, p)| p.position != *j as u64) {
            problems.push(format!("modes[{i}].positions[{}] has position {}", p.0, p.1.position));
        }
        if let Some(p) = m
            .positions
            .iter()
            .find(|p| p.top1_match != (p.top1_ours == p.top1_reference))
        {
            problems.push(format!(
                "modes[{i}] position {} top1_match disagrees with its ids",
                p.position
            ));
        }
        if let Some(p) = m
            .positions
            .iter()
            .find(|p| p.top1_ours as u64 >= m.n_vocab || p.top1_reference as u64 >= m.n_vocab)
        {
            problems.push(format!(
                "modes[{i}] position {} names a token beyond n_vocab",
                p.position
            ));
        }
        if let Some(g) = &m.greedy {
            if first_divergence(&g.ours, &g.reference) != g.first_divergence {
                problems.push(format!("modes[{i}].greedy.first_divergence disagrees with the ids"));
            }
        }
    }
    if combine_summaries(r.modes.iter().map(|m| &m.summary)) != r.summary {
        problems.push("summary does not match the modes' summaries".to_owned());
    }
    problems_gate(
        "metrics.consistent",
        problems,
        "summaries agree with the per-position rows",
    )
}

/// Byte-identical logits must be reported as bit-exact (a receipt cannot hide its own evidence).
fn logits_gate(r: &ParityReceipt) -> Gate {
    let bad: Vec<String> = r
        .modes
        .iter()
        .enumerate()
        .filter(|(_, m)| m.logits_sha256.ours == m.logits_sha256.reference && !m.summary.bit_exact)
        .map(|(i, _)| format!("modes[{i}]: identical logits digests but summary says not bit-exact"))
        .collect();
    problems_gate(
        "logits.digests",
        bad,
        "logits digests recorded for every mode and consistent",
    )
}

/// Name of the gate our non-finite logits fail.
pub const FINITE_GATE: &str = "logits.finite";

/// Our logits must be finite: a NaN or infinity is a broken model or kernel, never parity. Only receipts
/// that record a non-finite count carry the gate, so receipts written before it still verify.
fn finite_gate(r: &ParityReceipt) -> Option<Gate> {
    let bad: Vec<String> = r
        .modes
        .iter()
        .filter(|m| m.non_finite_logits > 0)
        .map(|m| {
            let (mode, n) = (m.mode.as_str(), m.non_finite_logits);
            format!("{mode} t{}: {n} of our logits are NaN or infinite", m.threads)
        })
        .collect();
    (!bad.is_empty()).then(|| gate(FINITE_GATE, false, bad.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::examples;

    #[test]
    fn non_finite_logits_fail_the_finite_gate_and_the_count_survives_json() {
        let mut b = examples::parity_builder(8, 8, crate::parity::Thresholds::bit_exact());
        let nan: Vec<f32> = [f32::NAN, f32::INFINITY, 1.0, f32::NEG_INFINITY].repeat(8);
        let m = &mut b.modes[1];
        let counted = crate::parity::ModeResult::new(m.mode, m.threads, m.n_vocab, m.positions.clone(), &nan, &nan);
        assert_eq!(counted.non_finite_logits, 24);
        m.non_finite_logits = counted.non_finite_logits;
        let r = b.build(None).unwrap();
        let g = r.gates.iter().find(|g| g.name == FINITE_GATE).expect("gate present");
        assert!(
            !g.passed && !r.pass && g.reason.contains("seq t2: 24 of our logits"),
            "{g:?}"
        );
        let doc = serde_json::to_value(&r).unwrap();
        crate::schema::validate(crate::schema::SchemaKind::ParityReceipt, &doc).unwrap();
        let back: ParityReceipt = serde_json::from_value(doc).unwrap();
        assert_eq!(evaluate_gates(&back), r.gates);
        let clean = examples::parity_receipt().unwrap();
        assert!(
            clean.gates.iter().all(|g| g.name != FINITE_GATE),
            "only receipts with a count carry it"
        );
    }

    fn names_failing(kernels: &[&str], host: &Host) -> Vec<String> {
        let log: KernelLog = kernels.iter().map(|k| ((*k).to_owned(), 1)).collect();
        kernel_gates(host, &examples::model(), &log, &KernelIsaLog::new())
            .into_iter()
            .filter(|g| !g.passed)
            .map(|g| g.name)
            .collect()
    }

    fn isa(isa: &str, requires: &[&str]) -> KernelIsa {
        KernelIsa {
            isa: isa.into(),
            requires: requires.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    /// The gate reads each kernel's recorded ISA: the `x86` layout segment of an I2_S ID says nothing about
    /// the host, so the scalar I2_S kernel passes on aarch64; a kernel whose features are missing fails.
    #[test]
    fn recorded_isa_decides_the_isa_gate() {
        let arm = Host {
            arch: "aarch64".into(),
            isa_features: vec!["neon".into()],
            ..examples::host()
        };
        let run = |ids: &[(&str, KernelIsa)]| {
            let log: KernelLog = ids.iter().map(|(k, _)| ((*k).to_owned(), 1)).collect();
            let isa: KernelIsaLog = ids.iter().map(|(k, i)| ((*k).to_owned(), i.clone())).collect();
            kernel_gates(&arm, &examples::model(), &log, &isa)
                .into_iter()
                .filter(|g| !g.passed)
                .map(|g| g.name)
                .collect::<Vec<_>>()
        };
        assert!(run(&[("i2s.x86.scalar.gemv", isa("scalar", &[]))]).is_empty());
        assert!(run(&[
            ("i2s.x86.scalar.gemv", isa("scalar", &[])),
            ("softmax.neon.f32", isa("neon", &["neon"]))
        ])
        .is_empty());
        assert_eq!(
            run(&[("i2s.x86.avx2.gemv", isa("avx2", &["avx2", "fma", "f16c"]))]),
            ["kernels.isa"]
        );
        assert_eq!(run(&[("i2s.cuda.dp4a.gemv", isa("cuda", &[]))]), ["kernels.isa"]);
    }

    /// Receipts without `kernel_isa` (written before it existed) keep the legacy reading of the ID segments.
    #[test]
    fn engine_style_ids_satisfy_the_flavor_and_isa_gates() {
        let host = examples::host();
        assert!(names_failing(&["i2s.x86.avx2.gemv", "f16.avx2.vec_dot.gemv"], &host).is_empty());
        assert_eq!(names_failing(&["f16.avx2.vec_dot.gemv"], &host), ["kernels.flavor"]);
        assert_eq!(names_failing(&[], &host), ["kernels.dispatched", "kernels.flavor"]);
        assert_eq!(names_failing(&["i2s.x86.avx512vnni.gemv"], &host), ["kernels.isa"]);
        assert_eq!(
            names_failing(&["i2s.x86.scalar.gemv", "f16.avx512.tinyblas.gemm"], &host),
            ["kernels.isa"]
        );
        let arm = Host {
            arch: "aarch64".into(),
            isa_features: vec!["neon".into()],
            ..host
        };
        assert_eq!(names_failing(&["i2s.x86.scalar.gemv"], &arm), ["kernels.isa"]);
        assert!(names_failing(&["i2s.arm.neon.gemv"], &arm).is_empty());
    }

    #[test]
    fn tq_flavors_need_their_own_kernels() {
        let mut model = examples::model();
        model.flavor_summary = [("tq2_0".to_owned(), 4), ("f16".to_owned(), 1)].into();
        let ids = ["i2s.x86.avx2.gemv".to_owned()];
        assert_eq!(flavors_without_kernel(&model, ids.iter()), ["tq2_0"]);
        let ids = ["tq2_0.scalar.gemv".to_owned()];
        assert!(flavors_without_kernel(&model, ids.iter()).is_empty());
    }
}
