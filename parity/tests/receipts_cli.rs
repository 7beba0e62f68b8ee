//! `parity verify`, `compare` and `report` on receipts written by the receipts crate.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use receipts::examples;
use receipts::seal::{seal, signing_key_from_hex, write_receipt};
use receipts::ParityReceipt;
use serde_json::{json, Value};

mod common;
use common::code_and_text;

fn parity(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_parity"))
        .args(args)
        .env_remove("PARITY_SIGNING_KEY")
        .output()
        .expect("parity runs")
}

fn write(dir: &Path, name: &str, r: &ParityReceipt) -> PathBuf {
    let p = dir.join(name);
    write_receipt(&p, r).expect("writes");
    p
}

fn verify(p: &Path) -> (i32, String) {
    code_and_text(&parity(&["verify", p.to_str().expect("utf-8 path")]))
}

#[test]
fn a_valid_receipt_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "ok.json", &examples::parity_receipt().expect("example"));
    let (code, text) = verify(&p);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("PASS"));
}

#[test]
fn editing_any_field_fails_verify_and_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "r.json", &examples::parity_receipt().expect("example"));
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
    let edits: [(&str, &str, Value); 8] = [
        ("pass", "/pass", json!(false)),
        ("summary", "/summary/min_cosine", json!(0.5)),
        ("modes", "/modes/0/positions/3/cosine", json!(0.25)),
        ("kernels", "/kernels/i2s.x86.avx2.gemv", json!(1)),
        ("host", "/host/cpu_model", json!("Other CPU")),
        ("model", "/model/sha256", json!("00".repeat(32))),
        ("thresholds", "/thresholds/max_abs_diff", json!(10.0)),
        ("reference", "/reference/generation", json!("bitnet.cpp-2026")),
    ];
    for (field, pointer, value) in edits {
        let mut doc = original.clone();
        *doc.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer} exists")) = value;
        let q = dir.path().join(format!("edited-{field}.json"));
        std::fs::write(&q, serde_json::to_string_pretty(&doc).expect("ser")).expect("write");
        let (code, text) = verify(&q);
        assert_eq!(code, 2, "{field}: {text}");
        assert!(
            text.contains("digest mismatch") && text.contains(field),
            "{field}: {text}"
        );
    }
}

#[test]
fn resealed_lies_fail_the_gates_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = examples::parity_receipt().expect("example");
    type Lie = (&'static str, fn(&mut ParityReceipt));
    let lies: [Lie; 6] = [
        ("kernels.dispatched", |r| r.kernels.clear()),
        ("kernels.flavor", |r| {
            r.kernels = [("f16.scalar.vec_dot.gemv".to_owned(), 3)].into()
        }),
        ("kernels.isa", |r| {
            r.kernels.insert("i2s.x86.avx512vnni.gemv".into(), 1);
        }),
        ("metrics.consistent", |r| r.summary.min_cosine = 0.9999),
        ("metrics.bit_exact", |r| r.modes[0].logits_sha256.ours = "11".repeat(32)),
        ("pass", |r| {
            r.thresholds.min_cosine = 1.0;
            r.modes[1].positions[0].cosine = 0.5;
            r.modes[1].summary = receipts::defs::summarize(&r.modes[1].positions);
            r.summary = receipts::defs::combine_summaries(r.modes.iter().map(|m| &m.summary));
        }),
    ];
    for (name, lie) in lies {
        let mut r = good.clone();
        lie(&mut r);
        let r = seal(&r, None).expect("reseals");
        let p = write(dir.path(), &format!("{name}.json"), &r);
        let (code, text) = verify(&p);
        assert_eq!(code, 1, "{name}: {text}");
        assert!(
            text.lines().any(|l| l.split_whitespace().take(2).eq(["FAIL", name])),
            "{name}: {text}"
        );
    }
}

#[test]
fn unreadable_and_schema_invalid_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("junk.json");
    std::fs::write(&p, "{not json").expect("write");
    assert_eq!(verify(&p).0, 2);
    std::fs::write(&p, r#"{"schema_version": "parity-receipt/v1"}"#).expect("write");
    let (code, text) = verify(&p);
    assert_eq!(code, 2);
    assert!(text.contains("schema"), "{text}");
    assert_eq!(verify(&dir.path().join("missing.json")).0, 2);
}

#[test]
fn signatures_are_checked_and_strict_requires_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = "42".repeat(32);
    let key = signing_key_from_hex(&seed).expect("key");
    let pk = receipts::seal::public_key_hex(&key);
    let signed = seal(&examples::parity_receipt().expect("example"), Some(&key)).expect("signs");
    let p = write(dir.path(), "signed.json", &signed);
    let strict_with_key = |p: &Path| {
        code_and_text(&parity(&[
            "verify",
            "--strict",
            "--pubkey",
            &pk,
            p.to_str().expect("utf-8"),
        ]))
    };
    let (code, text) = strict_with_key(&p);
    assert_eq!(code, 0, "{text}");
    let other = receipts::seal::public_key_hex(&signing_key_from_hex(&"07".repeat(32)).expect("key"));
    let (code, text) = code_and_text(&parity(&["verify", "--pubkey", &other, p.to_str().expect("utf-8")]));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("trusted key"));
    let unsigned = write(
        dir.path(),
        "unsigned.json",
        &examples::parity_receipt().expect("example"),
    );
    assert_eq!(
        code_and_text(&parity(&["verify", "--strict", unsigned.to_str().expect("utf-8")])).0,
        0,
        "no trusted key: unsigned is fine"
    );
    let (code, text) = strict_with_key(&unsigned);
    assert_eq!(code, 2, "{text}");
    // A swapped signature does not verify.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
    doc["signature"]["signature"] = json!("ab".repeat(64));
    std::fs::write(&p, doc.to_string()).expect("write");
    assert_eq!(verify(&p).0, 2);
}

#[test]
fn compare_flags_slowdown_and_drift() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = |name: &str, tg: f64| {
        let p = dir.path().join(name);
        write_receipt(&p, &examples::bench_receipt(tg).expect("example")).expect("writes");
        p.to_str().expect("utf-8").to_owned()
    };
    let (old, same, slow) = (w("old.json", 120.0), w("same.json", 119.0), w("slow.json", 100.0));
    let (code, text) = code_and_text(&parity(&["compare", &old, &same, "--max-slowdown", "5%"]));
    assert_eq!(code, 0, "{text}");
    let (code, text) = code_and_text(&parity(&["compare", &old, &slow, "--max-slowdown", "5%"]));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("REGRESSION: tg128") && text.contains("+row tg128"),
        "{text}"
    );

    let exact = write(dir.path(), "exact.json", &examples::parity_receipt().expect("example"));
    let drift = write(
        dir.path(),
        "drift.json",
        &examples::parity_receipt_drifting().expect("example"),
    );
    let (code, text) = code_and_text(&parity(&[
        "compare",
        exact.to_str().expect("utf-8"),
        drift.to_str().expect("utf-8"),
    ]));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("no longer bit-exact") && text.contains("max |diff|"),
        "{text}"
    );
    let (code, _) = code_and_text(&parity(&["compare", exact.to_str().expect("utf-8"), &old]));
    assert_eq!(code, 2, "different kinds cannot be compared");
}

#[test]
fn report_writes_one_self_contained_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(
        dir.path(),
        "r.json",
        &examples::parity_receipt_drifting().expect("example"),
    );
    let out = dir.path().join("r.html");
    let (code, text) = code_and_text(&parity(&[
        "report",
        p.to_str().expect("utf-8"),
        "-o",
        out.to_str().expect("utf-8"),
    ]));
    assert_eq!(code, 0, "{text}");
    let html = std::fs::read_to_string(&out).expect("html");
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg") && html.contains("first diff @ 3"));
    assert!(!html.contains("<script") && !html.contains("src=\"http") && !html.contains("href=\"http"));
}
