//! The terminal summary of `parity run`: the ladder, a per-mode table, gates, verdict (colors on a TTY).

use std::io::IsTerminal;

use super::ladder::{Outcome, Status};

struct Paint(bool);

impl Paint {
    fn status(&self, s: Status) -> String {
        let (text, code) = match s {
            Status::Pass => ("PASS", "32"),
            Status::Fail => ("FAIL", "31"),
            Status::Skip => ("skip", "33"),
        };
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

pub fn print(o: &Outcome) {
    let p = Paint(std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    let r = &o.receipt;
    println!(
        "parity run: {} ({}, sha256 {})",
        r.model.path,
        r.model.architecture,
        &r.model.sha256[..12]
    );
    let (generation, profile) = (r.reference.generation().as_str(), r.reference.numerics_profile());
    let predicted = if generation == "bitnet.cpp-2026" {
        " (predicted, unverified)"
    } else {
        ""
    };
    println!(
        "reference: {generation}{predicted}; our numerics: {profile}; {} tokens",
        r.token_ids.len()
    );
    println!(
        "kernels: {}",
        r.kernels
            .iter()
            .map(|(k, v)| format!("{k}×{v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();
    for rung in &o.rungs {
        println!("  [{}] {:<26} {}", p.status(rung.status), rung.name, rung.detail);
    }
    if let Some(at) = &o.stopped_at {
        println!("  ladder stopped at: {at}");
    }
    println!();
    println!("| mode  | positions | min cosine    | max |Δ|   | top-1   | mean KLD  | greedy            |");
    println!("|-------|----------:|---------------|-----------|---------|-----------|-------------------|");
    for m in &r.modes {
        let s = &m.summary;
        let greedy = match &m.greedy {
            Some(g) => match g.first_divergence {
                None => format!("{} identical", g.ours.len()),
                Some(i) => format!("diverges at {i}"),
            },
            None => "not compared".into(),
        };
        let kld =
            m.kl.as_ref()
                .map(|k| format!("{:.3e}", k.kld.mean.value))
                .unwrap_or_else(|| "-".into());
        println!(
            "| {:<5} | {:>9} | {:<13.10} | {:<9.3e} | {:>6.1}% | {:<9} | {:<17} |",
            m.mode.as_str(),
            s.n_positions,
            s.min_cosine,
            s.max_abs_diff,
            100.0 * s.top1_match_rate,
            kld,
            greedy
        );
    }
    println!();
    for g in &r.gates {
        println!(
            "  [{}] {:<22} {}",
            p.status(if g.passed { Status::Pass } else { Status::Fail }),
            g.name,
            g.reason
        );
    }
    if let Some(d) = &r.diagnosis {
        println!();
        println!("diagnosis: {}", d.verdict);
    }
    println!();
    println!(
        "{}",
        if r.pass && o.stopped_at.is_some() {
            p.status(Status::Fail) + ": the receipt's gates passed, but a mode it cannot carry failed (see the ladder)"
        } else if r.pass {
            p.status(Status::Pass) + ": every gate passed"
        } else {
            p.status(Status::Fail) + ": a gate failed"
        }
    );
}
