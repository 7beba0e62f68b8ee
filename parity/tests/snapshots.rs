//! insta snapshots of every committed fixture model: compact logits (tokens 1..=8, batch mode,
//! n_ctx 64, the model's auto numerics; per position the top-5 ids and values rounded to 1e-4 (one line:
//! `pos: id value, ...`, descending, lowest id first on ties), plus the
//! sha256 of the full f32 logits array) and `parity inspect --json` with the absolute path redacted.
//!
//! The sha256 pins every bit of every logit, so any numerics change — in any kernel family, since the
//! families are bit-identical and `Auto` picks the host's best — fails here; the rounded top-5 makes the
//! diff readable (which positions moved, by how much). The recorded sets' models are covered bit for bit
//! against bitnet.cpp by `parity run`; the generated flavor set (TQ1_0, F16, I2_S ARM) has no recorded
//! reference, so these snapshots are what guards it.
//!
//! Updating after an intended change: `INSTA_UPDATE=always cargo test --release -p parity --test snapshots`
//! (or `cargo insta review`), and commit `parity/tests/snapshots/`. With `CI=true` insta never writes
//! snapshots and a mismatch fails. fixtures/foreign is skipped (those files are refused on purpose).

use std::path::{Path, PathBuf};
use std::process::Command;

use engine::flavor::{FlavorOptions, I2sLayout};
use engine::kernels::{Dispatcher, KernelChoice};
use engine::model::{Model, Session};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const TOKENS: [u32; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
const N_CTX: usize = 64;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// Round to 1e-4 (the shortest JSON representation of the result is the 4-decimal value).
fn r4(v: f32) -> f64 {
    (f64::from(v) * 1e4).round() / 1e4
}

/// The `i2s-arm` files are ARM-packed I2_S, which the file cannot say: open them as such.
fn options_for(rel: &str) -> FlavorOptions {
    FlavorOptions {
        i2s_layout: rel.contains(".i2s-arm.").then_some(I2sLayout::Arm64),
        ..Default::default()
    }
}

fn logits_doc(rel: &str) -> Value {
    let path = fixtures().join(rel);
    let model = Model::open_with(&path, &options_for(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let disp = Dispatcher::new(KernelChoice::Auto).expect("dispatcher");
    let numerics = model.auto_numerics();
    let profile = numerics.label();
    let mut session = Session::new(&model, &disp, numerics, N_CTX);
    let logits = session
        .eval_prompt(&TOKENS, true)
        .unwrap_or_else(|e| panic!("{rel}: {e}"));
    let n_vocab = model.hparams.n_vocab;
    assert_eq!(logits.len(), TOKENS.len() * n_vocab, "{rel}");
    assert!(logits.iter().all(|v| v.is_finite()), "{rel}: non-finite logits");
    let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
    let positions: Vec<Value> = logits
        .chunks(n_vocab)
        .enumerate()
        .map(|(pos, row)| {
            let mut ids: Vec<usize> = (0..n_vocab).collect();
            // Descending by value, lowest id first among equals (the argmax convention of the references).
            ids.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            // One line per position, "id value" pairs: compact, and a diff shows which positions moved.
            let top: Vec<String> = ids[..5].iter().map(|&i| format!("{i} {:.4}", r4(row[i]))).collect();
            json!(format!("{pos}: {}", top.join(", ")))
        })
        .collect();
    json!({
        "model": rel,
        "numerics": profile,
        "tokens": TOKENS,
        "mode": "batch",
        "n_ctx": N_CTX,
        "n_vocab": n_vocab,
        "logits_sha256": hex::encode(Sha256::digest(&bytes)),
        "positions": positions,
    })
}

fn inspect_doc(rel: &str) -> Value {
    // An absolute path, so the redaction is exercised: it would differ per checkout.
    let path = fixtures().join(rel).canonicalize().expect("fixture exists");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_parity"));
    cmd.arg("inspect").arg(&path).arg("--json");
    if rel.contains(".i2s-arm.") {
        cmd.args(["--i2s-layout", "arm"]);
    }
    let out = cmd.output().expect("parity inspect runs");
    assert!(out.status.success(), "{rel}: {}", String::from_utf8_lossy(&out.stderr));
    let mut doc: Value = serde_json::from_slice(&out.stdout).expect("inspect --json is JSON");
    // Redaction of the volatile field (insta's own redactions need its `redactions` feature, which the
    // workspace does not enable): the file path, checked before it is replaced.
    assert_eq!(doc["file"].as_str(), path.to_str(), "{rel}");
    doc["file"] = json!("[path]");
    // TL files: the kernel_config.ini found beside the model is named by its absolute path too.
    let dir = path.parent().expect("dir").to_str().expect("utf-8").to_string();
    if let Some(tl) = doc.get_mut("tl_tiles").and_then(Value::as_object_mut) {
        for key in ["shown", "source"] {
            if let Some(v) = tl.get_mut(key) {
                *v = serde_json::from_str(&v.to_string().replace(&dir, "[dir]")).expect("still JSON");
            }
        }
    }
    let text = doc.to_string();
    assert!(
        !text.contains(path.parent().expect("dir").to_str().expect("utf-8")),
        "{rel}: another absolute path in {text}"
    );
    doc
}

fn snapshot_name(rel: &str) -> String {
    rel.trim_end_matches(".gguf").replace(['/', '.'], "_")
}

fn check(rel: &str) {
    let name = snapshot_name(rel);
    insta::assert_json_snapshot!(format!("logits__{name}"), logits_doc(rel));
    insta::assert_json_snapshot!(format!("inspect__{name}"), inspect_doc(rel));
}

/// Every snapshotted model, relative to fixtures/.
const MODELS: [&str; 18] = [
    "reference/random/tiny-b158-gqa.i2_s.gguf",
    "reference/random/tiny-bitnet-legacy.i2_s.gguf",
    "reference/trained/tiny-trained-b158.i2_s.gguf",
    "reference/upstream/tiny-bitnet-tq.tq2_0.gguf",
    "generated/tiny-b158.f16.gguf",
    "generated/tiny-b158.i2s-arm.gguf",
    "generated/tiny-b158.i2s.gguf",
    "generated/tiny-b158.tq1_0.gguf",
    "generated/tiny-b158.tq2_0.gguf",
    "generated/tiny-bitnet.f16.gguf",
    "generated/tiny-bitnet.i2s-arm.gguf",
    "generated/tiny-bitnet.i2s.gguf",
    "generated/tiny-bitnet.tq1_0.gguf",
    "generated/tiny-bitnet.tq2_0.gguf",
    "reference/families/tiny-llama.i2_s.gguf",
    "reference/families/tiny-falcon3.i2_s.gguf",
    "reference/families/tiny-bitnet3b.i2_s.gguf",
    "reference/tl2/tiny-tl2.tl2.gguf",
];

macro_rules! snapshot_tests {
    ($($test:ident => $idx:expr),* $(,)?) => {
        $(#[test] fn $test() { check(MODELS[$idx]); })*
    };
}

snapshot_tests! {
    random_b158_gqa => 0,
    random_bitnet_legacy => 1,
    trained_b158 => 2,
    upstream_bitnet_tq2_0 => 3,
    generated_b158_f16 => 4,
    generated_b158_i2s_arm => 5,
    generated_b158_i2s => 6,
    generated_b158_tq1_0 => 7,
    generated_b158_tq2_0 => 8,
    generated_bitnet_f16 => 9,
    generated_bitnet_i2s_arm => 10,
    generated_bitnet_i2s => 11,
    generated_bitnet_tq1_0 => 12,
    generated_bitnet_tq2_0 => 13,
    families_llama => 14,
    families_falcon3 => 15,
    families_bitnet3b => 16,
    tl2_bitnet => 17,
}

/// The list above is every committed model except fixtures/foreign: a new fixture must get a snapshot.
#[test]
fn every_committed_model_is_snapshotted() {
    let mut found = Vec::new();
    for sub in [
        "generated",
        "reference/families",
        "reference/random",
        "reference/trained",
        "reference/upstream",
        "reference/tl2",
    ] {
        for entry in std::fs::read_dir(fixtures().join(sub)).expect(sub) {
            let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
            if name.ends_with(".gguf") {
                found.push(format!("{sub}/{name}"));
            }
        }
    }
    let mut sets = Vec::new();
    for entry in std::fs::read_dir(fixtures().join("reference")).expect("reference") {
        let p = entry.expect("entry").path();
        if p.join("manifest.json").is_file() {
            sets.push(p.file_name().expect("name").to_string_lossy().into_owned());
        }
    }
    sets.sort();
    assert_eq!(
        sets,
        ["arm", "arm-fp16", "families", "random", "tl2", "trained", "upstream"],
        "a new recorded set needs its models added to MODELS"
    );
    // The ARM sets hold no models of their own: their files are links to reference/random's (snapshotted above).
    for set in ["arm", "arm-fp16"] {
        for entry in std::fs::read_dir(fixtures().join("reference").join(set)).expect(set) {
            let p = entry.expect("entry").path();
            if p.extension().is_some_and(|e| e == "gguf") {
                let target = std::fs::read_link(&p).unwrap_or_else(|e| panic!("{}: not a link: {e}", p.display()));
                assert!(
                    target.starts_with("../random"),
                    "{} -> {}",
                    p.display(),
                    target.display()
                );
            }
        }
    }
    found.sort();
    let mut listed: Vec<String> = MODELS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed);
}

/// The snapshot is sensitive to one bit of one logit (the digest), not only to the rounded top-5.
#[test]
fn the_digest_sees_a_single_ulp() {
    let a = [1.0f32, -2.5, 3.25];
    let mut b = a;
    b[1] = f32::from_bits(b[1].to_bits() + 1);
    let h = |v: &[f32]| {
        hex::encode(Sha256::digest(
            v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
        ))
    };
    assert_ne!(h(&a), h(&b));
    assert_eq!(r4(a[1]), r4(b[1]), "rounding alone would hide it");
}
