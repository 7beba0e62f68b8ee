//! `parity report RECEIPT -o report.html`: one self-contained HTML page (inline CSS and SVG, no
//! scripts) with per-position plots, the top-1 strip, gates, facts, KL statistics and trace heat map.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use receipts::schema::SchemaKind;
use receipts::seal::{check_digest, check_signature, decode, read_document};
use receipts::{KlStatsRecord, ModeResult, ParityReceipt, ReferenceIdentity, TraceGrid};

/// Arguments of `parity report`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  parity report receipt.json -o report.html\n  scripts/render-report.sh report.html report.png"
)]
pub struct Args {
    /// Parity receipt to render.
    pub receipt: PathBuf,
    /// Output HTML file.
    #[arg(short = 'o', long, default_value = "report.html")]
    pub output: PathBuf,
}

pub fn main(args: Args) -> Result<ExitCode> {
    let (doc, kind) = read_document(&args.receipt).with_context(|| format!("reading {}", args.receipt.display()))?;
    if kind != SchemaKind::ParityReceipt {
        bail!(
            "{} is a {}; report renders parity receipts",
            args.receipt.display(),
            kind.version()
        );
    }
    let integrity = match check_digest(&doc).and_then(|()| check_signature(&doc, None)) {
        Ok(Some(pk)) => Integrity::Signed(pk),
        Ok(None) => Integrity::Intact,
        Err(e) => Integrity::Broken(e.to_string()),
    };
    let receipt: ParityReceipt = decode(doc)?;
    let html = render(&receipt, &integrity);
    std::fs::write(&args.output, html).with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!("wrote {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}

/// Result of the digest/signature check shown in the banner.
#[derive(Debug, Clone)]
pub enum Integrity {
    /// Digest matches, unsigned.
    Intact,
    /// Digest matches and signed by this key.
    Signed(String),
    /// Digest or signature fails.
    Broken(String),
}

/// Escape text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1f24;max-width:1120px}\
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #d0d7de}\
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#f6f8fa}code{font:12px ui-monospace,monospace;word-break:break-all}\
.pass{color:#fff;background:#1a7f37;padding:2px 10px;border-radius:4px}.fail{color:#fff;background:#cf222e;padding:2px 10px;border-radius:4px}\
.warn{background:#fff8c5;border:1px solid #d4a72c;padding:8px;margin:8px 0}.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}\
svg{display:block;margin:4px 0}.muted{color:#57606a}";

/// The whole page.
pub fn render(r: &ParityReceipt, integrity: &Integrity) -> String {
    let mut h = String::new();
    let badge = if r.pass {
        "<span class=\"pass\">PASS</span>"
    } else {
        "<span class=\"fail\">FAIL</span>"
    };
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>parity report: {}</title><style>{CSS}</style></head><body>",
        esc(&r.model.path)
    );
    let _ = write!(
        h,
        "<h1>Parity report {badge}</h1><p class=\"muted\">{} vs {} ({}) — {}</p>",
        esc(&r.model.path),
        esc(r.reference.generation().as_str()),
        esc(r.reference.numerics_profile()),
        esc(&r.created_at)
    );
    match integrity {
        Integrity::Intact => h.push_str("<p class=\"ok\">Digest verified (unsigned).</p>"),
        Integrity::Signed(pk) => {
            let _ = write!(
                h,
                "<p class=\"ok\">Digest verified; signed by <code>{}</code>.</p>",
                esc(pk)
            );
        }
        Integrity::Broken(e) => {
            let _ = write!(
                h,
                "<div class=\"warn\"><b>This receipt does not verify:</b> {}</div>",
                esc(e)
            );
        }
    }
    gates_section(&mut h, r);
    for m in &r.modes {
        mode_section(&mut h, m);
    }
    facts_section(&mut h, r);
    if let Some(t) = &r.trace {
        trace_section(&mut h, t);
    }
    h.push_str("</body></html>\n");
    h
}

fn gates_section(h: &mut String, r: &ParityReceipt) {
    h.push_str("<h2>Gates</h2><table><tr><th>gate</th><th>result</th><th>reason</th></tr>");
    for g in &r.gates {
        let (cls, word) = if g.passed { ("ok", "pass") } else { ("bad", "FAIL") };
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td class=\"{cls}\">{word}</td><td>{}</td></tr>",
            esc(&g.name),
            esc(&g.reason)
        );
    }
    let t = &r.thresholds;
    let _ = write!(h, "</table><p class=\"muted\">Thresholds: min cosine {}, max |diff| {}, min top-1 {}, max mean KLD {}, bit-exact required: {}</p>",
        t.min_cosine, t.max_abs_diff, t.min_top1_match_rate, t.max_mean_kld.map_or("—".into(), |v| v.to_string()), t.require_bit_exact);
}

fn mode_section(h: &mut String, m: &ModeResult) {
    let s = &m.summary;
    let first = s.first_diff_position;
    let _ = write!(
        h,
        "<h2>Mode {} · {} threads</h2><p>{} positions · min cosine {} · max |diff| {} · top-1 agreement {:.4} · {}</p>",
        m.mode.as_str(),
        m.threads,
        s.n_positions,
        s.min_cosine,
        s.max_abs_diff,
        s.top1_match_rate,
        match first {
            None => "bit-exact".to_owned(),
            Some(p) => format!("first difference at position {p}"),
        }
    );
    let cos: Vec<f64> = m.positions.iter().map(|p| p.cosine).collect();
    let mad: Vec<f64> = m.positions.iter().map(|p| p.max_abs_diff).collect();
    h.push_str(&line_plot("cosine similarity per position", &cos, first));
    h.push_str(&line_plot("max |ours − reference| per position", &mad, first));
    h.push_str(&top1_strip(m));
    if let Some(g) = &m.greedy {
        let _ = write!(
            h,
            "<p>Greedy: {} ours / {} reference tokens; {}</p>",
            g.ours.len(),
            g.reference.len(),
            g.first_divergence
                .map_or("no divergence".to_owned(), |d| format!("first divergence at step {d}"))
        );
    }
    let _ = write!(
        h,
        "<p class=\"muted\">logits sha256 ours <code>{}</code><br>reference <code>{}</code></p>",
        esc(&m.logits_sha256.ours),
        esc(&m.logits_sha256.reference)
    );
    if let Some(kl) = &m.kl {
        kl_table(h, kl);
    }
}

const W: f64 = 1000.0;
const PLOT_H: f64 = 180.0;
const ML: f64 = 80.0;
const MR: f64 = 20.0;
const MT: f64 = 24.0;
const MB: f64 = 24.0;

fn x_of(i: usize, n: usize) -> f64 {
    let span = W - ML - MR;
    if n <= 1 {
        ML + span / 2.0
    } else {
        ML + span * i as f64 / (n - 1) as f64
    }
}

/// An inline-SVG line plot with min/max labels and the first divergence marked.
pub fn line_plot(title: &str, ys: &[f64], first_diff: Option<u64>) -> String {
    let (lo, hi) = ys
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| (a.min(y), b.max(y)));
    let (lo, hi) = if !lo.is_finite() {
        (0.0, 1.0)
    } else if hi - lo < 1e-12 {
        (lo - 0.5 * lo.abs().max(1e-3), hi + 0.5 * hi.abs().max(1e-3))
    } else {
        (lo, hi)
    };
    let y_of = |y: f64| MT + (PLOT_H - MT - MB) * (hi - y) / (hi - lo);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{PLOT_H}\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    let _ = write!(
        s,
        "<text x=\"{ML}\" y=\"15\" font-size=\"13\" font-weight=\"600\">{}</text>",
        esc(title)
    );
    let _ = write!(
        s,
        "<rect x=\"{ML}\" y=\"{MT}\" width=\"{}\" height=\"{}\" fill=\"#f6f8fa\" stroke=\"#d0d7de\"/>",
        W - ML - MR,
        PLOT_H - MT - MB
    );
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
        ML - 4.0,
        MT + 10.0,
        fmt_num(hi)
    );
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
        ML - 4.0,
        PLOT_H - MB,
        fmt_num(lo)
    );
    let _ = write!(s, "<text x=\"{ML}\" y=\"{}\" font-size=\"11\">0</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
        PLOT_H - 8.0, W - MR, PLOT_H - 8.0, ys.len().saturating_sub(1));
    if let Some(p) = first_diff {
        let x = x_of(p as usize, ys.len());
        let _ = write!(s, "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{MT}\" y2=\"{}\" stroke=\"#cf222e\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"11\" fill=\"#cf222e\">first diff @ {p}</text>",
            PLOT_H - MB, x + 3.0, MT + 22.0);
    }
    let pts: Vec<String> = ys
        .iter()
        .enumerate()
        .map(|(i, &y)| format!("{:.1},{:.1}", x_of(i, ys.len()), y_of(y)))
        .collect();
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"#0969da\" stroke-width=\"1.5\" points=\"{}\"/>",
        pts.join(" ")
    );
    if ys.len() <= 128 {
        for (i, &y) in ys.iter().enumerate() {
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"#0969da\"/>",
                x_of(i, ys.len()),
                y_of(y)
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 || (1e-3..1e4).contains(&v.abs()) {
        format!("{v:.6}")
    } else {
        format!("{v:.3e}")
    }
}

/// One cell per position: green when the argmax agrees, red when it does not.
fn top1_strip(m: &ModeResult) -> String {
    let n = m.positions.len().max(1);
    let cell = (W - ML - MR) / n as f64;
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"46\" role=\"img\" aria-label=\"top-1 agreement\"><text x=\"{ML}\" y=\"13\" font-size=\"13\" font-weight=\"600\">top-1 agreement (green = same argmax)</text>");
    for p in &m.positions {
        let x = ML + cell * p.position as f64;
        let fill = if p.top1_match { "#2da44e" } else { "#cf222e" };
        let _ = write!(s, "<rect x=\"{x:.2}\" y=\"20\" width=\"{:.2}\" height=\"18\" fill=\"{fill}\"><title>position {}: ours {} / reference {}</title></rect>",
            (cell - 0.5).max(0.5), p.position, p.top1_ours, p.top1_reference);
    }
    s.push_str("</svg>");
    s
}

fn kl_table(h: &mut String, k: &KlStatsRecord) {
    let d = &k.kld;
    let p = &k.delta_p;
    let _ = write!(h, "<h3>KL divergence statistics (llama-perplexity names, {} rows)</h3><table><tr><th>statistic</th><th>KLD</th><th>statistic</th><th>Δp</th></tr>", k.count);
    let left = [
        ("Mean", format!("{:.6} ± {:.6}", d.mean.value, d.mean.uncertainty)),
        ("Maximum", fmt_num(d.maximum)),
        ("99.9%", fmt_num(d.p99_9)),
        ("99.0%", fmt_num(d.p99)),
        ("95.0%", fmt_num(d.p95)),
        ("90.0%", fmt_num(d.p90)),
        ("Median", fmt_num(d.median)),
        ("10.0%", fmt_num(d.p10)),
        ("5.0%", fmt_num(d.p5)),
        ("1.0%", fmt_num(d.p1)),
        ("0.1%", fmt_num(d.p0_1)),
        ("Minimum", fmt_num(d.minimum)),
        ("", String::new()),
        ("", String::new()),
        ("", String::new()),
        ("", String::new()),
    ];
    let pct = |v: f64| format!("{:.3}%", 100.0 * v);
    let right = [
        (
            "Mean",
            format!("{:.3} ± {:.3} %", 100.0 * p.mean.value, 100.0 * p.mean.uncertainty),
        ),
        ("Maximum", pct(p.maximum)),
        ("99.9%", pct(p.p99_9)),
        ("99.0%", pct(p.p99)),
        ("95.0%", pct(p.p95)),
        ("90.0%", pct(p.p90)),
        ("75.0%", pct(p.p75)),
        ("Median", pct(p.median)),
        ("25.0%", pct(p.p25)),
        ("10.0%", pct(p.p10)),
        ("5.0%", pct(p.p5)),
        ("1.0%", pct(p.p1)),
        ("0.1%", pct(p.p0_1)),
        ("Minimum", pct(p.minimum)),
        (
            "RMS Δp",
            format!("{:.3} ± {:.3} %", 100.0 * p.rms.value, 100.0 * p.rms.uncertainty),
        ),
        (
            "Same top p",
            format!(
                "{:.3} ± {:.3} %",
                100.0 * k.same_top_p.value,
                100.0 * k.same_top_p.uncertainty
            ),
        ),
    ];
    for ((a, b), (c, e)) in left.iter().zip(right.iter()) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(a),
            esc(b),
            esc(c),
            esc(e)
        );
    }
    h.push_str("</table>");
}

fn facts_section(h: &mut String, r: &ParityReceipt) {
    let mut rows: Vec<(&str, String)> = vec![
        ("schema", "parity-receipt/v1".into()),
        ("created", r.created_at.clone()),
        (
            "tool",
            format!("{} {} ({})", r.tool.name, r.tool.version, r.tool.git_commit),
        ),
        ("host CPU", r.host.cpu_model.clone()),
        (
            "host",
            format!("{} / {}, {} threads", r.host.arch, r.host.os, r.host.threads),
        ),
        ("ISA features", r.host.isa_features.join(" ")),
        ("model", r.model.path.clone()),
        ("model sha256", r.model.sha256.clone()),
        ("architecture", r.model.architecture.clone()),
        (
            "flavors",
            r.model
                .flavor_summary
                .iter()
                .map(|(k, v)| format!("{k}×{v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("tokenizer sha256", r.tokenizer_sha256.clone()),
        (
            "prompt",
            format!(
                "{} tokens: {}",
                r.token_ids.len(),
                r.token_ids
                    .iter()
                    .take(32)
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ),
    ];
    if let Some(a) = &r.host.accelerators {
        rows.push(("accelerators", a.join(", ")));
    }
    match &r.reference {
        ReferenceIdentity::Ffi {
            generation,
            numerics_profile,
            bitnet_cpp_commit,
            llama_cpp_commit,
        } => {
            rows.push((
                "reference",
                format!("live (ffi) {} · profile {numerics_profile}", generation.as_str()),
            ));
            rows.push((
                "reference commits",
                format!(
                    "bitnet.cpp {} · llama.cpp {llama_cpp_commit}",
                    bitnet_cpp_commit.as_deref().unwrap_or("—")
                ),
            ));
        }
        ReferenceIdentity::Recorded {
            generation,
            numerics_profile,
            dir,
            manifest_sha256,
            case_ids,
        } => {
            rows.push((
                "reference",
                format!("recorded {} · profile {numerics_profile}", generation.as_str()),
            ));
            rows.push(("reference dir", format!("{dir} (manifest sha256 {manifest_sha256})")));
            rows.push(("cases", case_ids.join(", ")));
        }
    }
    if let Some(d) = &r.diagnosis {
        rows.push((
            "diagnosis",
            format!(
                "{}{}{}",
                d.verdict,
                d.best_profile
                    .as_ref()
                    .map_or(String::new(), |p| format!(" (best profile {p})")),
                d.explanation.as_ref().map_or(String::new(), |e| format!(" — {e}"))
            ),
        ));
    }
    rows.push(("digest", r.digest.clone()));
    h.push_str("<h2>Facts</h2><table>");
    for (k, v) in rows {
        let _ = write!(h, "<tr><th>{}</th><td><code>{}</code></td></tr>", esc(k), esc(&v));
    }
    h.push_str("</table><h2>Kernels dispatched</h2><table><tr><th>kernel ID</th><th>calls</th></tr>");
    for (k, n) in &r.kernels {
        let _ = write!(h, "<tr><td><code>{}</code></td><td>{n}</td></tr>", esc(k));
    }
    h.push_str("</table>");
}

/// Layers × tensors heat map; darker = larger value, grey = not traced.
fn trace_section(h: &mut String, t: &TraceGrid) {
    let max = t.values.iter().flatten().flatten().fold(0.0f64, |a, &b| a.max(b.abs()));
    let _ = write!(
        h,
        "<h2>Trace: {} (layers × tensors)</h2><table><tr><th>layer</th>",
        esc(&t.metric)
    );
    for name in &t.tensors {
        let _ = write!(h, "<th><code>{}</code></th>", esc(name));
    }
    h.push_str("</tr>");
    for (li, layer) in t.layers.iter().enumerate() {
        let _ = write!(h, "<tr><th>{}</th>", esc(layer));
        for ti in 0..t.tensors.len() {
            match t.values.get(li).and_then(|r| r.get(ti)).copied().flatten() {
                Some(v) => {
                    let a = if max > 0.0 {
                        (v.abs() / max).clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                    let _ = write!(h, "<td style=\"background:rgba(207,34,46,{a:.3})\">{}</td>", fmt_num(v));
                }
                None => h.push_str("<td style=\"background:#eaeef2\"></td>"),
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn page_escapes_receipt_text_and_has_no_script() {
        let mut r = receipts::examples::parity_receipt_drifting().expect("example");
        r.trace = Some(TraceGrid {
            metric: "max<abs>".into(),
            layers: vec!["0".into()],
            tensors: vec!["<q>".into()],
            values: vec![vec![Some(0.5)]],
        });
        let html = render(&r, &Integrity::Intact);
        assert!(html.contains("Example CPU &lt;with&gt; &quot;markup&quot; &amp; more"));
        assert!(!html.contains("<with>") && !html.contains("<q>") && !html.to_lowercase().contains("<script"));
        assert!(html.contains("first diff @ 3") && html.contains("Trace: max&lt;abs&gt;"));
    }
}
