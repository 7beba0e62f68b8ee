//! `parity verify RECEIPT`: schema, then digest, then signature, then gates.
//!
//! Exit codes: 0 every check passed; 1 the receipt is intact but a gate fails (or its recorded
//! gates/pass flag disagree with the recomputed ones); 2 the receipt is unreadable, violates its
//! schema, was edited after sealing (digest), or its signature is bad or missing where required.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use receipts::gates::{evaluate_gates, kernel_gates};
use receipts::schema::SchemaKind;
use receipts::seal::{check_digest, check_signature, decode, public_key_hex, read_document, signing_key_from_env};
use receipts::{BenchReceipt, Gate, InferenceReceipt, ParityReceipt};
use serde::Serialize;

/// Arguments of `parity verify`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  parity verify receipt.json\n  parity verify --strict --pubkey <hex> receipt.json\n  PARITY_SIGNING_KEY=<hex seed> parity verify --strict receipt.json"
)]
pub struct Args {
    /// Receipt to check (parity, bench or inference receipt).
    pub receipt: PathBuf,
    /// Also require a signature when a trusted key is known (--pubkey or PARITY_SIGNING_KEY), and a
    /// known tool git commit.
    #[arg(long)]
    pub strict: bool,
    /// Print the checks as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Hex ed25519 public key the receipt must be signed with (if signed; with --strict, must be signed).
    #[arg(long, value_name = "HEX")]
    pub pubkey: Option<String>,
}

/// One check's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stage: schema, digest, signature, gate name, `gates.recorded`, `pass`.
    pub name: String,
    /// Outcome.
    pub passed: bool,
    /// Explanation.
    pub detail: String,
}

/// Whole verification outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// File checked.
    pub receipt: String,
    /// Its schema_version, when readable.
    pub schema_version: Option<String>,
    /// Checks in order.
    pub checks: Vec<Check>,
    /// 0, 1 or 2.
    pub exit_code: u8,
}

fn check(name: &str, passed: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.to_owned(),
        passed,
        detail: detail.into(),
    }
}

/// Run every check on the receipt; never fails, the outcome carries the exit code.
pub fn verify(args: &Args) -> Outcome {
    let mut out = Outcome {
        receipt: args.receipt.display().to_string(),
        schema_version: None,
        checks: Vec::new(),
        exit_code: 0,
    };
    let invalid = |mut out: Outcome, c: Check| {
        out.checks.push(c);
        out.exit_code = 2;
        out
    };
    let (doc, kind) = match read_document(&args.receipt) {
        Ok(x) => x,
        Err(e) => return invalid(out, check("schema", false, e.to_string())),
    };
    out.schema_version = Some(kind.version().to_owned());
    out.checks.push(check("schema", true, format!("valid {}", kind.id())));
    match check_digest(&doc) {
        Ok(()) => out.checks.push(check("digest", true, "matches the canonical contents")),
        Err(e) => return invalid(out, check("digest", false, e.to_string())),
    }
    let trusted = match (&args.pubkey, signing_key_from_env()) {
        (Some(pk), _) => Some(pk.trim().to_lowercase()),
        (None, Ok(Some(key))) => Some(public_key_hex(&key)),
        (None, Ok(None)) => None,
        (None, Err(e)) => return invalid(out, check("signature", false, format!("PARITY_SIGNING_KEY: {e}"))),
    };
    match check_signature(&doc, trusted.as_deref()) {
        Ok(Some(pk)) => out.checks.push(check("signature", true, format!("ed25519 by {pk}"))),
        Ok(None) if args.strict && trusted.is_some() => {
            return invalid(
                out,
                check(
                    "signature",
                    false,
                    "--strict with a trusted key, but the receipt is unsigned",
                ),
            );
        }
        Ok(None) => out.checks.push(check("signature", true, "unsigned (not required)")),
        Err(e) => return invalid(out, check("signature", false, e.to_string())),
    }
    if args.strict && doc.pointer("/tool/git_commit").and_then(|v| v.as_str()) == Some("unknown") {
        return invalid(
            out,
            check(
                "tool.git_commit",
                false,
                "--strict needs the commit the tool was built from",
            ),
        );
    }
    let gates = match gate_checks(kind, doc) {
        Ok(g) => g,
        Err(e) => return invalid(out, check("decode", false, e.to_string())),
    };
    if gates.iter().any(|c| !c.passed) {
        out.exit_code = 1;
    }
    out.checks.extend(gates);
    out
}

fn as_checks(gates: Vec<Gate>) -> Vec<Check> {
    gates
        .into_iter()
        .map(|g| Check {
            name: g.name,
            passed: g.passed,
            detail: g.reason,
        })
        .collect()
}

fn gate_checks(kind: SchemaKind, doc: serde_json::Value) -> receipts::Result<Vec<Check>> {
    Ok(match kind {
        SchemaKind::ParityReceipt => {
            let r: ParityReceipt = decode(doc)?;
            let fresh = evaluate_gates(&r);
            let mut checks = as_checks(fresh.clone());
            let recorded: Vec<(&str, bool)> = r.gates.iter().map(|g| (g.name.as_str(), g.passed)).collect();
            let recomputed: Vec<(&str, bool)> = fresh.iter().map(|g| (g.name.as_str(), g.passed)).collect();
            checks.push(check(
                "gates",
                recorded == recomputed,
                if recorded == recomputed {
                    "recorded gates agree with the recomputed ones".to_owned()
                } else {
                    format!("recorded gates {recorded:?} differ from recomputed {recomputed:?}")
                },
            ));
            let all = fresh.iter().all(|g| g.passed);
            checks.push(check(
                "pass",
                r.pass == all,
                format!("recorded pass={}, gates say {all}", r.pass),
            ));
            checks
        }
        SchemaKind::BenchReceipt => {
            let r: BenchReceipt = decode(doc)?;
            as_checks(kernel_gates(&r.host, &r.model, &r.kernels, &r.kernel_isa))
        }
        SchemaKind::InferenceReceipt => {
            let r: InferenceReceipt = decode(doc)?;
            as_checks(kernel_gates(&r.host, &r.model, &r.kernels, &r.kernel_isa))
        }
        SchemaKind::RecordedReference => vec![check("manifest", true, "a recorded-reference manifest has no gates")],
    })
}

pub fn main(args: Args) -> Result<ExitCode> {
    let out = verify(&args);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for c in &out.checks {
            println!("{} {:<20} {}", if c.passed { "ok  " } else { "FAIL" }, c.name, c.detail);
        }
        let verdict = match out.exit_code {
            0 => "PASS",
            1 => "FAIL (gate)",
            _ => "INVALID",
        };
        println!("{verdict}: {}", out.receipt);
    }
    Ok(ExitCode::from(out.exit_code))
}
