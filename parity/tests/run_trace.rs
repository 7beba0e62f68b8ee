//! `parity run --trace` on the bundled fixture without C++: the trained set carries a trace of its p16 batch
//! case (layer 0 and the output tensors), recorded from the live bitnet.cpp 2025 worker with
//! `parity record --trace --trace-layers 0`. Every tensor is bit-exact and the receipt gets a trace grid; one
//! flipped value in a copy of the recorded trace is named as the first divergence.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CASE: &str = "tiny-trained-b158_p16_batch_t1";

fn trained() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/reference/trained")
}

fn p16() -> String {
    let m: serde_json::Value = serde_json::from_slice(&fs::read(trained().join("manifest.json")).unwrap()).unwrap();
    let ids: Vec<String> = m["prompts"]["16"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    ids.join(",")
}

fn run(extra: &[&str]) -> (i32, String) {
    let o: Output = Command::new(env!("CARGO_BIN_EXE_parity"))
        .args([
            "run",
            "--tokens",
            &p16(),
            "--mode",
            "batch",
            "--trace",
            "--trace-layers",
            "0",
        ])
        .args(extra)
        .env_remove("PARITY_FIXTURES")
        .env_remove("PARITY_SIGNING_KEY")
        .env_remove("PARITY_KERNEL")
        .output()
        .expect("parity runs");
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn recorded_trace_is_bit_exact_and_lands_in_the_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let receipt = dir.path().join("r.json");
    let (code, text) = run(&["--receipt", receipt.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("no divergence: all 22 tensors are bit-exact"), "{text}");
    let r: serde_json::Value = serde_json::from_slice(&fs::read(&receipt).unwrap()).unwrap();
    let grid = &r["trace"];
    assert_eq!(grid["metric"], "max_abs_diff");
    assert_eq!(grid["tensors"].as_array().unwrap().len(), 22);
    let rows = grid["values"].as_array().unwrap();
    // Layer rows hold the 20 per-layer tensors; result_norm/result_output live in the "output" row.
    let per_layer = &rows[0].as_array().unwrap()[..20];
    assert!(per_layer.iter().all(|v| v.as_f64() == Some(0.0)), "{grid}");
    let output = rows.last().unwrap().as_array().unwrap();
    assert!(output[20..].iter().all(|v| v.as_f64() == Some(0.0)), "{grid}");
    assert!(
        rows[1].as_array().unwrap().iter().all(|v| v.is_null()),
        "layer 1 was not traced: {grid}"
    );
}

#[test]
fn a_flipped_traced_value_is_the_first_divergence() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path();
    for e in fs::read_dir(trained()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            fs::copy(&p, copy.join(p.file_name().unwrap())).unwrap();
        }
    }
    let src = trained().join("traces").join(CASE);
    let dst = copy.join("traces").join(CASE);
    fs::create_dir_all(&dst).unwrap();
    for e in fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
    }
    let index: serde_json::Value = serde_json::from_slice(&fs::read(dst.join("index.json")).unwrap()).unwrap();
    let file = index["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ffn_norm-0")
        .unwrap()["file"]
        .as_str()
        .unwrap()
        .to_string();
    let (shape, mut data) = ffi_ref::npy::read_f32(dst.join(&file)).unwrap();
    data[5] = f32::from_bits(data[5].to_bits() ^ 1);
    ffi_ref::npy::write_f32(dst.join(&file), &shape, &data).unwrap();
    let reference = format!("recorded:{}", copy.display());
    let (code, text) = run(&["--reference", &reference]);
    assert_eq!(code, 0, "the logits still pass; the trace is diagnostic: {text}");
    assert!(text.contains("first divergence: ffn_norm-0"), "{text}");
}
