//! `parity run` end to end, on the built binary, against every committed recorded-reference set:
//! the bundled default passes; every (set, model) passes with a receipt that `parity verify --strict`
//! accepts and that validates against `schemas/`; one flipped logit in a recorded `.npy` fails the
//! run at exactly that position; an edited receipt fails `parity verify`; `parity report` renders.
//!
//! The fixtures directory is the compiled-in one (`PARITY_FIXTURES` is removed from the child's
//! environment), and `PARITY_SIGNING_KEY` is removed so receipts are unsigned and `--strict` does not
//! ask for a signature. Every receipt a passing run produces is also copied to `target/receipts/`,
//! where `scripts/check-receipts.sh` validates them with an independent python-jsonschema validator.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use receipts::schema::{validate, SchemaKind};
use serde_json::Value;

mod common;
use common::code_and_text;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn parity(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_parity"))
        .args(args)
        .env_remove("PARITY_FIXTURES")
        .env_remove("PARITY_SIGNING_KEY")
        .env_remove("PARITY_KERNEL")
        .env("NO_COLOR", "1")
        .output()
        .expect("parity runs")
}

/// `parity run MODEL --reference REFERENCE EXTRA…`: exit code and all its output.
fn run_against(model: &Path, reference: &str, extra: &[&str]) -> (i32, String) {
    code_and_text(&parity(&[&["run", s(model), "--reference", reference], extra].concat()))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).expect("JSON")
}

/// `target/receipts/` (honouring CARGO_TARGET_DIR), for scripts/check-receipts.sh.
fn receipts_out() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("receipts");
    std::fs::create_dir_all(&dir).expect("create target/receipts");
    dir
}

/// The committed recorded sets and the model files their manifests name (read from the manifests,
/// not hard-coded, so a model added to a set is covered automatically).
fn recorded_sets() -> Vec<(String, Vec<String>)> {
    let root = fixtures().join("reference");
    let mut sets = Vec::new();
    for entry in std::fs::read_dir(&root).expect("fixtures/reference") {
        let dir = entry.expect("entry").path();
        if !dir.join("manifest.json").is_file() {
            continue;
        }
        let m = read_json(&dir.join("manifest.json"));
        let mut models: Vec<String> = m["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .map(|c| c["model"].as_str().expect("model").to_owned())
            .collect();
        models.sort();
        models.dedup();
        sets.push((dir.file_name().expect("name").to_string_lossy().into_owned(), models));
    }
    sets.sort();
    sets
}

/// The gate of this name in a receipt document.
fn gate<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("gate {name} in {doc}"))
}

#[test]
fn bare_parity_run_passes_on_the_bundled_model() {
    let (code, text) = code_and_text(&parity(&["run"]));
    assert_eq!(code, 0, "{text}");
    assert!(text.lines().any(|l| l.starts_with("PASS")), "{text}");
    assert!(
        text.contains("tiny-trained-b158.i2_s.gguf"),
        "the bundled default is the trained model: {text}"
    );
    // Both modes, every rung, bit-exact.
    for mode in ["batch", "seq"] {
        assert!(
            text.contains(&format!("[PASS] {mode}: all positions")),
            "{mode}: {text}"
        );
        assert!(text.contains(&format!("[PASS] {mode}: greedy")), "{mode}: {text}");
    }
    assert!(text.contains("[PASS] metrics.bit_exact"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

#[test]
fn every_recorded_set_and_model_passes_with_a_strictly_verified_schema_valid_receipt() {
    let sets = recorded_sets();
    let names: Vec<&str> = sets.iter().map(|(s, _)| s.as_str()).collect();
    for expected in ["random", "trained", "upstream", "families", "arm", "arm-fp16"] {
        assert!(names.contains(&expected), "set {expected} missing from {names:?}");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = receipts_out();
    let mut runs = 0;
    for (set, models) in &sets {
        let dir = fixtures().join("reference").join(set);
        assert!(!models.is_empty(), "{set} names no model");
        // Sets with reference_broken cases (tl2: bitnet.cpp's broken TL2 batch) pass in their good mode only;
        // `the_broken_tl2_batch_reference_fails_and_is_named` covers the other.
        let broken = read_json(&dir.join("manifest.json"))["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .any(|c| c.get("reference_broken").is_some());
        let n_modes = if broken { 1 } else { 2 };
        for model in models {
            let stem = model.trim_end_matches(".gguf");
            let receipt = tmp.path().join(format!("{set}-{stem}.json"));
            let reference = format!("recorded:{}", s(&dir));
            let model_path = dir.join(model);
            let mut args = vec![
                "run",
                s(&model_path),
                "--reference",
                &reference,
                "--receipt",
                s(&receipt),
            ];
            if broken {
                args.extend(["--mode", "seq"]);
            }
            let (code, text) = code_and_text(&parity(&args));
            assert_eq!(code, 0, "{set}/{model}: {text}");
            assert!(text.contains("PASS: every gate passed"), "{set}/{model}: {text}");

            // The receipt: schema-valid, passing, bit-exact, naming this model and the set's generation.
            let doc = read_json(&receipt);
            validate(SchemaKind::ParityReceipt, &doc).unwrap_or_else(|e| panic!("{set}/{model}: {e}"));
            assert_eq!(doc["pass"], true, "{set}/{model}");
            assert_eq!(doc["summary"]["bit_exact"], true, "{set}/{model}");
            assert_eq!(doc["summary"]["max_abs_diff"], 0.0, "{set}/{model}");
            assert!(doc["summary"]["first_diff_position"].is_null(), "{set}/{model}");
            assert_eq!(
                doc["modes"].as_array().expect("modes").len(),
                n_modes,
                "{set}/{model}: batch and seq (seq only where the reference's batch is broken)"
            );
            assert!(doc["model"]["path"].as_str().expect("path").ends_with(model.as_str()));
            let manifest = read_json(&dir.join("manifest.json"));
            let want_sha = manifest["cases"]
                .as_array()
                .expect("cases")
                .iter()
                .find(|c| c["model"] == model.as_str())
                .expect("case")["model_sha256"]
                .clone();
            assert_eq!(doc["model"]["sha256"], want_sha, "{set}/{model}");
            assert_eq!(
                doc["reference"]["generation"], manifest["reference"]["generation"],
                "{set}/{model}"
            );
            // TQ2_0 picks the llama.cpp profile by itself; I2_S the bitnet.cpp one; an ARM set names its build's
            // profile and `auto` follows it.
            let profile = doc["reference"]["numerics_profile"].as_str().expect("profile");
            let named = manifest["reference"]["numerics_profile"].as_str().unwrap_or("");
            if model.contains("tq2_0") {
                assert_eq!(profile, "llama.cpp", "{set}/{model}");
            } else if named.starts_with("bitnet.cpp-2025-arm") {
                assert_eq!(profile, named, "{set}/{model}");
            } else {
                assert_eq!(profile, "bitnet.cpp-2025", "{set}/{model}");
            }

            let (code, vtext) = code_and_text(&parity(&["verify", "--strict", s(&receipt)]));
            assert_eq!(code, 0, "{set}/{model}: verify --strict: {vtext}");
            assert!(vtext.contains("PASS"), "{vtext}");
            std::fs::copy(&receipt, out.join(format!("run-{set}-{stem}.json"))).expect("copy receipt");
            runs += 1;
        }
    }
    assert!(
        runs >= 7,
        "{runs} runs: random has 2 models, trained 1, upstream 1, families 3"
    );
}

#[test]
fn the_broken_tl2_batch_reference_fails_and_is_named() {
    let dir = fixtures().join("reference").join("tl2");
    let tmp = tempfile::tempdir().expect("tempdir");
    let receipt = tmp.path().join("tl2.json");
    let reference = format!("recorded:{}", s(&dir));
    let (code, text) = code_and_text(&parity(&[
        "run",
        s(&dir.join("tiny-tl2.tl2.gguf")),
        "--reference",
        &reference,
        "--receipt",
        s(&receipt),
    ]));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("[FAIL] batch: reference logits"), "{text}");
    assert!(text.contains("[PASS] seq: all positions"), "{text}");
    assert!(text.contains("TL2 batched matmul") && text.contains("-b 1"), "{text}");
    let doc = read_json(&receipt);
    validate(SchemaKind::ParityReceipt, &doc).expect("schema-valid");
    assert_eq!(doc["modes"].as_array().expect("modes").len(), 1);
    let verdict = doc["diagnosis"]["verdict"].as_str().expect("verdict");
    assert!(verdict.contains("TL2 batched matmul"), "{verdict}");
}

/// Copy a recorded set (manifest and logits; the model stays where it is) into `to`.
fn copy_set(set: &str, to: &Path) {
    for entry in std::fs::read_dir(fixtures().join("reference").join(set)).expect("set") {
        let p = entry.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        if name == "manifest.json" || name.ends_with(".npy") {
            std::fs::copy(&p, to.join(&name)).expect("copy");
        }
    }
}

/// Add `delta` to logit `col` of row `row` in a `<f4` .npy, in place; returns (old, new).
fn flip_logit(npy: &Path, row: usize, col: usize, delta: f32) -> (f32, f32) {
    let (shape, mut data) = ffi_ref::npy::read_f32(npy).expect("npy");
    assert!(row < shape[0] && col < shape[1], "{shape:?}");
    let i = row * shape[1] + col;
    let old = data[i];
    data[i] += delta;
    assert_ne!(data[i].to_bits(), old.to_bits());
    ffi_ref::npy::write_f32(npy, &shape, &data).expect("write npy");
    (old, data[i])
}

#[test]
fn one_flipped_logit_fails_the_run_at_exactly_that_position() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = tmp.path().join("trained");
    std::fs::create_dir(&set).expect("mkdir");
    copy_set("trained", &set);
    let model = fixtures().join("reference/trained/tiny-trained-b158.i2_s.gguf");
    let reference = format!("recorded:{}", s(&set));
    let receipt = tmp.path().join("flipped.json");

    // Untouched copy: passes (the copy itself is not what fails below).
    let (code, text) = run_against(&model, &reference, &["--mode", "batch"]);
    assert_eq!(code, 0, "{text}");

    // The 5th row (position 4) of the 128-token batch case, one vocab entry, nudged by 1/64.
    let p = 4usize;
    flip_logit(&set.join("tiny-trained-b158_p128_batch.logits.npy"), p, 17, 1.0 / 64.0);
    let (code, text) = run_against(
        &model,
        &reference,
        &["--mode", "batch", "--receipt", s(&receipt), "--no-diagnose"],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("FAIL: a gate failed"), "{text}");
    assert!(
        text.contains("[PASS] batch: position 0"),
        "positions before p still agree: {text}"
    );
    assert!(text.contains("[FAIL] batch: all positions"), "{text}");
    assert!(text.contains("[FAIL] metrics.bit_exact"), "{text}");
    assert!(text.contains("[FAIL] metrics.max_abs_diff"), "{text}");

    let doc = read_json(&receipt);
    validate(SchemaKind::ParityReceipt, &doc).expect("a failing receipt is still schema-valid");
    assert_eq!(doc["pass"], false);
    assert_eq!(doc["summary"]["first_diff_position"], p as u64, "{}", doc["summary"]);
    assert_eq!(doc["modes"][0]["summary"]["first_diff_position"], p as u64);
    assert_eq!(doc["summary"]["bit_exact"], false);
    let max_abs = doc["summary"]["max_abs_diff"].as_f64().expect("max_abs_diff");
    assert!((max_abs - 1.0 / 64.0).abs() < 1e-6, "max |Δ| is the nudge: {max_abs}");
    // Only position p differs.
    for (i, pos) in doc["modes"][0]["positions"]
        .as_array()
        .expect("positions")
        .iter()
        .enumerate()
    {
        let d = pos["max_abs_diff"].as_f64().expect("diff");
        assert_eq!(d != 0.0, i == p, "position {i}: max |Δ| {d}");
    }
    for name in ["metrics.bit_exact", "metrics.max_abs_diff"] {
        assert_eq!(gate(&doc, name)["passed"], false, "{name}");
    }
    assert_eq!(gate(&doc, "metrics.consistent")["passed"], true);
    std::fs::copy(&receipt, receipts_out().join("run-flipped-trained-p4.json")).expect("copy receipt");
    // verify agrees: intact receipt, failing gate → 1, naming the gates.
    let (code, vtext) = code_and_text(&parity(&["verify", "--strict", s(&receipt)]));
    assert_eq!(code, 1, "{vtext}");
    assert!(
        vtext.contains("FAIL metrics.bit_exact") && vtext.contains("FAIL metrics.max_abs_diff"),
        "{vtext}"
    );
}

#[test]
fn a_flipped_seq_logit_in_a_random_model_is_found_too() {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_set("random", tmp.path());
    let model = fixtures().join("reference/random/tiny-bitnet-legacy.i2_s.gguf");
    let receipt = tmp.path().join("flipped.json");
    let p = 41usize;
    // The smallest representable change of one logit: a single ulp.
    let npy = tmp.path().join("tiny-bitnet-legacy_p64_seq.logits.npy");
    let (shape, data) = ffi_ref::npy::read_f32(&npy).expect("npy");
    let col = 3;
    let old = data[p * shape[1] + col];
    flip_logit(&npy, p, col, f32::from_bits(old.to_bits() + 1) - old);
    let reference = format!("recorded:{}", s(tmp.path()));
    let (code, text) = run_against(
        &model,
        &reference,
        &["--mode", "seq", "--receipt", s(&receipt), "--no-diagnose"],
    );
    assert_eq!(code, 1, "one ulp is not bit-exact: {text}");
    let doc = read_json(&receipt);
    assert_eq!(doc["summary"]["first_diff_position"], p as u64);
    assert_eq!(gate(&doc, "metrics.bit_exact")["passed"], false);

    // Without the bit-exact requirement, one ulp passes a cosine/top-1 gate.
    let (code, text) = run_against(
        &model,
        &reference,
        &["--mode", "seq", "--exact=false", "--cosine-min", "0.999999"],
    );
    assert_eq!(code, 0, "{text}");
}

#[test]
fn editing_a_produced_receipt_fails_verify() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let receipt = tmp.path().join("r.json");
    let (code, text) = code_and_text(&parity(&["run", "--mode", "batch", "--receipt", s(&receipt)]));
    assert_eq!(code, 0, "{text}");
    assert_eq!(code_and_text(&parity(&["verify", s(&receipt)])).0, 0);
    let original = read_json(&receipt);

    // Edited after sealing: the digest no longer matches → exit 2 (INVALID), naming the section.
    let mut doc = original.clone();
    doc["modes"][0]["positions"][5]["cosine"] = serde_json::json!(0.5);
    let edited = tmp.path().join("edited.json");
    std::fs::write(&edited, serde_json::to_string_pretty(&doc).expect("ser")).expect("write");
    let (code, vtext) = code_and_text(&parity(&["verify", s(&edited)]));
    assert_eq!(code, 2, "{vtext}");
    assert!(vtext.contains("digest mismatch") && vtext.contains("modes"), "{vtext}");

    // The same edit, resealed (digest recomputed, so the file is intact): the per-position row no
    // longer matches the summaries → metrics.consistent fails, and the recorded gates and pass flag
    // contradict the recomputed ones → exit 1 (gate).
    let reseal_and_verify = |name: &str, r: &receipts::ParityReceipt| {
        let r = receipts::seal(r, None).expect("reseal");
        let p = tmp.path().join(name);
        receipts::write_receipt(&p, &r).expect("write");
        code_and_text(&parity(&["verify", s(&p)]))
    };
    let decoded: receipts::ParityReceipt = serde_json::from_value(original).expect("decode");
    let mut r = decoded.clone();
    r.modes[0].positions[5].cosine = 0.5;
    let (code, vtext) = reseal_and_verify("resealed.json", &r);
    assert_eq!(code, 1, "{vtext}");
    assert!(
        vtext.contains("FAIL metrics.consistent") && vtext.contains("FAIL pass"),
        "{vtext}"
    );
    assert!(vtext.contains("FAIL (gate)"), "{vtext}");

    // A consistent lie (summaries recomputed too): the cosine gate itself fails against the thresholds.
    let mut r = decoded;
    r.modes[0].positions[5].cosine = 0.5;
    r.modes[0].summary = receipts::defs::summarize(&r.modes[0].positions);
    r.summary = receipts::defs::combine_summaries(r.modes.iter().map(|m| &m.summary));
    let (code, vtext) = reseal_and_verify("consistent-lie.json", &r);
    assert_eq!(code, 1, "{vtext}");
    assert!(vtext.contains("ok   metrics.consistent"), "{vtext}");
    assert!(vtext.contains("FAIL metrics.cosine"), "{vtext}");
}

#[test]
fn report_on_a_produced_receipt_is_self_contained_html_with_svg() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let receipt = tmp.path().join("r.json");
    let html = tmp.path().join("report.html");
    let (code, text) = code_and_text(&parity(&["run", "--receipt", s(&receipt)]));
    assert_eq!(code, 0, "{text}");
    let (code, text) = code_and_text(&parity(&["report", s(&receipt), "-o", s(&html)]));
    assert_eq!(code, 0, "{text}");
    let page = std::fs::read_to_string(&html).expect("report written");
    assert!(
        page.trim_start().to_ascii_lowercase().starts_with("<!doctype html"),
        "{}",
        &page[..page.len().min(200)]
    );
    assert!(page.contains("<svg") && page.contains("</svg>"), "plots are inline SVG");
    assert!(page.contains("PASS"), "verdict shown");
    assert!(page.contains("tiny-trained-b158"), "model named");
    let sha = read_json(&receipt)["model"]["sha256"].as_str().expect("sha").to_owned();
    assert!(page.contains(&sha[..12]), "model sha256 shown");
    // Self-contained: nothing is fetched from elsewhere.
    let lower = page.to_ascii_lowercase();
    for needle in [
        "<script src",
        "<link",
        "src=\"http",
        "href=\"http",
        "@import",
        "url(http",
    ] {
        assert!(!lower.contains(needle), "report refers outside itself: {needle}");
    }
    // A failing receipt renders FAIL.
    let failing = tmp.path().join("failing.json");
    let set = tmp.path().join("set");
    std::fs::create_dir(&set).expect("mkdir");
    copy_set("trained", &set);
    flip_logit(&set.join("tiny-trained-b158_p128_batch.logits.npy"), 9, 0, 0.25);
    let model = fixtures().join("reference/trained/tiny-trained-b158.i2_s.gguf");
    let reference = format!("recorded:{}", s(&set));
    let (code, _) = run_against(
        &model,
        &reference,
        &["--mode", "batch", "--receipt", s(&failing), "--no-diagnose"],
    );
    assert_eq!(code, 1);
    let fhtml = tmp.path().join("failing.html");
    assert_eq!(code_and_text(&parity(&["report", s(&failing), "-o", s(&fhtml)])).0, 0);
    let fpage = std::fs::read_to_string(&fhtml).expect("report");
    assert!(fpage.contains("FAIL") && fpage.contains("<svg"), "failing report");
}

#[test]
fn a_missing_reference_is_an_input_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = fixtures().join("reference/trained/tiny-trained-b158.i2_s.gguf");
    let reference = format!("recorded:{}", s(tmp.path()));
    let (code, text) = run_against(&model, &reference, &[]);
    assert_eq!(code, 2, "{text}");
    // A model the set has no case for (a generated fixture against the trained set).
    let other = fixtures().join("generated/tiny-b158.i2s.gguf");
    let trained = format!("recorded:{}", s(&fixtures().join("reference/trained")));
    let (code, text) = run_against(&other, &trained, &[]);
    assert_eq!(code, 2, "{text}");
}

/// The committed recorded sets' manifests are "the manifest.json of a recorded-reference directory",
/// which `schemas/recorded-reference.v1.json` (docs/receipts.md) describes. They should validate.
#[test]
fn committed_recorded_manifests_validate_against_the_recorded_reference_schema() {
    let mut failures = Vec::new();
    for (set, _) in recorded_sets() {
        let doc = read_json(&fixtures().join("reference").join(&set).join("manifest.json"));
        if let Err(e) = validate(SchemaKind::RecordedReference, &doc) {
            failures.push(format!("{set}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "fixtures/reference/*/manifest.json vs schemas/recorded-reference.v1.json:\n{}",
        failures.join("\n")
    );
}
