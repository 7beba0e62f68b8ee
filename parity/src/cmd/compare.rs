//! `parity compare OLD.json NEW.json`: unified diff of two receipts' canonical facts, exit 1 on regression.
//!
//! Rules. Bench receipts: a test (matched by name and threads) whose `avg_ts` fell by more than
//! `--max-slowdown` is a regression; a test that disappeared is a regression. Parity receipts: for each
//! (mode, threads) in both, a max |diff| grown by more than `--max-logit-drift`, a lost bit-exactness,
//! a lower top-1 agreement, or `pass` turning false is a regression. A changed kernel set, model,
//! host or reference is reported but is not by itself a regression.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use receipts::schema::SchemaKind;
use receipts::seal::{check_digest, decode, read_document};
use receipts::{BenchReceipt, KernelLog, ParityReceipt};
use serde::Serialize;
use similar::TextDiff;

/// Arguments of `parity compare`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  parity compare main.bench.json pr.bench.json --max-slowdown 5%\n  parity compare old.parity.json new.parity.json --max-logit-drift 0"
)]
pub struct Args {
    /// Baseline receipt.
    pub old: PathBuf,
    /// Candidate receipt (same kind).
    pub new: PathBuf,
    /// Largest tolerated throughput drop, `5%` or `0.05`.
    #[arg(long, default_value = "5%", value_parser = parse_fraction)]
    pub max_slowdown: f64,
    /// Largest tolerated growth of max |logit diff| per mode.
    #[arg(long, default_value_t = 0.0)]
    pub max_logit_drift: f64,
    /// Print findings as JSON instead of the diff.
    #[arg(long)]
    pub json: bool,
}

/// `5%` → 0.05, `0.05` → 0.05.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let (num, scale) = match s.trim().strip_suffix('%') {
        Some(n) => (n, 0.01),
        None => (s.trim(), 1.0),
    };
    let v: f64 = num.parse().map_err(|_| format!("not a number or percentage: {s:?}"))?;
    if !(0.0..=1e6).contains(&v) {
        return Err(format!("out of range: {s:?}"));
    }
    Ok(v * scale)
}

/// What compare found.
#[derive(Debug, Default, Serialize)]
pub struct Findings {
    /// Failing differences.
    pub regressions: Vec<String>,
    /// Differences worth knowing that do not fail.
    pub notes: Vec<String>,
    /// Unified diff of the canonical facts.
    pub diff: String,
}

fn load(path: &Path) -> Result<(serde_json::Value, SchemaKind)> {
    let (doc, kind) = read_document(path).with_context(|| format!("reading {}", path.display()))?;
    check_digest(&doc).with_context(|| format!("{} was edited after sealing", path.display()))?;
    Ok((doc, kind))
}

/// Compare two receipt files.
pub fn compare(args: &Args) -> Result<Findings> {
    let (old, ko) = load(&args.old)?;
    let (new, kn) = load(&args.new)?;
    if ko != kn {
        bail!("cannot compare a {} with a {}", ko.version(), kn.version());
    }
    let mut f = Findings::default();
    let (a, b) = match ko {
        SchemaKind::BenchReceipt => {
            let (o, n): (BenchReceipt, BenchReceipt) = (decode(old)?, decode(new)?);
            bench_rules(&o, &n, args.max_slowdown, &mut f);
            kernel_notes(&o.kernels, &n.kernels, &mut f);
            (bench_facts(&o), bench_facts(&n))
        }
        SchemaKind::ParityReceipt => {
            let (o, n): (ParityReceipt, ParityReceipt) = (decode(old)?, decode(new)?);
            parity_rules(&o, &n, args.max_logit_drift, &mut f);
            kernel_notes(&o.kernels, &n.kernels, &mut f);
            (parity_facts(&o), parity_facts(&n))
        }
        other => bail!("compare handles bench and parity receipts, not {}", other.version()),
    };
    f.diff = TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(2)
        .header(&args.old.display().to_string(), &args.new.display().to_string())
        .to_string();
    Ok(f)
}

fn kernel_notes(o: &KernelLog, n: &KernelLog, f: &mut Findings) {
    let (ko, kn): (BTreeSet<_>, BTreeSet<_>) = (o.keys().collect(), n.keys().collect());
    if ko != kn {
        let gone: Vec<_> = ko.difference(&kn).map(|s| s.as_str()).collect();
        let added: Vec<_> = kn.difference(&ko).map(|s| s.as_str()).collect();
        f.notes.push(format!(
            "kernel set changed: removed [{}], added [{}]",
            gone.join(", "),
            added.join(", ")
        ));
    }
}

fn bench_rules(o: &BenchReceipt, n: &BenchReceipt, max_slowdown: f64, f: &mut Findings) {
    for ro in &o.rows {
        match n.rows.iter().find(|r| r.test == ro.test && r.n_threads == ro.n_threads) {
            None => f
                .regressions
                .push(format!("{} t{}: missing from the new receipt", ro.test, ro.n_threads)),
            Some(rn) if ro.avg_ts > 0.0 => {
                let drop = 1.0 - rn.avg_ts / ro.avg_ts;
                let line = format!(
                    "{} t{}: {:.2} → {:.2} t/s ({:+.2}%)",
                    ro.test,
                    ro.n_threads,
                    ro.avg_ts,
                    rn.avg_ts,
                    -100.0 * drop
                );
                if drop > max_slowdown {
                    f.regressions
                        .push(format!("{line}, beyond the {:.2}% allowed", 100.0 * max_slowdown));
                } else {
                    f.notes.push(line);
                }
            }
            Some(_) => {}
        }
    }
    if o.model.sha256 != n.model.sha256 {
        f.notes.push("different model files".into());
    }
    if o.host.cpu_model != n.host.cpu_model {
        f.notes.push(format!(
            "different CPUs: {:?} vs {:?}",
            o.host.cpu_model, n.host.cpu_model
        ));
    }
}

fn parity_rules(o: &ParityReceipt, n: &ParityReceipt, max_drift: f64, f: &mut Findings) {
    if o.reference != n.reference {
        f.notes.push("reference identity differs".into());
    }
    if o.model.sha256 != n.model.sha256 {
        f.notes.push("different model files".into());
    }
    if o.pass && !n.pass {
        f.regressions.push("pass turned false".into());
    }
    for mo in &o.modes {
        let tag = format!("{} t{}", mo.mode.as_str(), mo.threads);
        let Some(mn) = n.modes.iter().find(|m| m.mode == mo.mode && m.threads == mo.threads) else {
            f.regressions.push(format!("{tag}: missing from the new receipt"));
            continue;
        };
        let (so, sn) = (&mo.summary, &mn.summary);
        if sn.max_abs_diff > so.max_abs_diff + max_drift {
            f.regressions.push(format!(
                "{tag}: max |diff| {} → {} (drift allowed {max_drift})",
                so.max_abs_diff, sn.max_abs_diff
            ));
        }
        if so.bit_exact && !sn.bit_exact {
            f.regressions.push(format!(
                "{tag}: no longer bit-exact (first difference at {:?})",
                sn.first_diff_position
            ));
        }
        if sn.top1_match_rate < so.top1_match_rate {
            f.regressions.push(format!(
                "{tag}: top-1 agreement {} → {}",
                so.top1_match_rate, sn.top1_match_rate
            ));
        }
    }
}

fn bench_facts(r: &BenchReceipt) -> String {
    let mut s = format!(
        "model {} {}\nhost {} ({} threads)\npeak_rss_bytes {}\n",
        r.model.path, r.model.sha256, r.host.cpu_model, r.host.threads, r.peak_rss_bytes
    );
    for (k, n) in &r.kernels {
        s += &format!("kernel {k} calls={n}\n");
    }
    for row in &r.rows {
        s += &format!(
            "row {} n_threads={} avg_ts={:.3} stddev_ts={:.3} model_size={} model_n_params={}\n",
            row.test, row.n_threads, row.avg_ts, row.stddev_ts, row.model_size, row.model_n_params
        );
    }
    for row in &r.reference {
        s += &format!(
            "reference {} {} {} avg_ts={:.3} ratio={:.3}\n",
            row.implementation, row.commit, row.test, row.avg_ts, row.ratio
        );
    }
    s
}

fn parity_facts(r: &ParityReceipt) -> String {
    let mut s = format!(
        "model {} {}\nreference {} profile {}\npass {}\n",
        r.model.path,
        r.model.sha256,
        r.reference.generation().as_str(),
        r.reference.numerics_profile(),
        r.pass
    );
    for (k, n) in &r.kernels {
        s += &format!("kernel {k} calls={n}\n");
    }
    for m in &r.modes {
        let x = &m.summary;
        s += &format!(
            "mode {} t{} positions={} min_cosine={} max_abs_diff={} top1={} first_diff={:?} bit_exact={}\n",
            m.mode.as_str(),
            m.threads,
            x.n_positions,
            x.min_cosine,
            x.max_abs_diff,
            x.top1_match_rate,
            x.first_diff_position,
            x.bit_exact
        );
        s += &format!(
            "mode {} t{} logits ours={} reference={}\n",
            m.mode.as_str(),
            m.threads,
            m.logits_sha256.ours,
            m.logits_sha256.reference
        );
    }
    for g in &r.gates {
        s += &format!("gate {} {}\n", g.name, if g.passed { "pass" } else { "FAIL" });
    }
    s
}

pub fn main(args: Args) -> Result<ExitCode> {
    let f = compare(&args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&f)?);
    } else {
        print!("{}", f.diff);
        for n in &f.notes {
            println!("note: {n}");
        }
        for r in &f.regressions {
            println!("REGRESSION: {r}");
        }
        println!(
            "{}",
            if f.regressions.is_empty() {
                "no regression"
            } else {
                "regressed"
            }
        );
    }
    Ok(ExitCode::from(u8::from(!f.regressions.is_empty())))
}

#[cfg(test)]
mod tests {
    use super::parse_fraction;

    #[test]
    fn fractions_and_percentages() {
        assert_eq!(parse_fraction("5%"), Ok(0.05));
        assert_eq!(parse_fraction("0.1"), Ok(0.1));
        assert!(parse_fraction("-1%").is_err() && parse_fraction("fast").is_err());
    }
}
