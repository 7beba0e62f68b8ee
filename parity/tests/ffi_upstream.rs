//! Live upstream llama.cpp as the reference (issue 12): `parity run --reference ffi` on the committed
//! TQ2_0 fixture must be bit-exact in both modes. Runs when `PARITY_UPSTREAM_WORKER` names a
//! `parity-ref-worker` built against upstream llama.cpp (`.ci/run` sets it up with
//! `scripts/setup-upstream-ref.sh`); otherwise it says so and skips.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The live upstream worker, or `None` (with the skip message) when it was not built.
fn worker() -> Option<std::ffi::OsString> {
    let w = std::env::var_os("PARITY_UPSTREAM_WORKER");
    if w.is_none() {
        eprintln!("SKIP: PARITY_UPSTREAM_WORKER is unset; build the upstream reference with scripts/setup-upstream-ref.sh (see docs/ffi-ref.md)");
    }
    w
}

/// The token ids of the committed upstream set's 32-token prompt.
fn prompt_ids() -> String {
    let dir = repo().join("fixtures/reference/upstream");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest")).expect("json");
    let ids: Vec<String> = manifest["prompts"]["32"]
        .as_array()
        .expect("p32 prompt")
        .iter()
        .map(|v| v.to_string())
        .collect();
    ids.join(",")
}

/// `parity run MODEL --reference ffi` in both modes against `worker`; asserts exit 0 and returns the receipt.
fn run_live(worker: &std::ffi::OsStr, model: &std::path::Path) -> serde_json::Value {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let receipt = out_dir.path().join("upstream.json");
    let out = Command::new(env!("CARGO_BIN_EXE_parity"))
        .env("PARITY_REF_WORKER", worker)
        .arg("run")
        .arg(model)
        .args([
            "--reference",
            "ffi",
            "--tokens",
            &prompt_ids(),
            "--mode",
            "both",
            "--steps",
            "16",
        ])
        .arg("--receipt")
        .arg(&receipt)
        .output()
        .expect("run parity");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "parity run on {} failed:\n{stdout}\n{}",
        model.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&receipt).expect("receipt")).expect("json");
    assert_eq!(r["reference"]["kind"], "ffi");
    assert_eq!(r["reference"]["generation"], "llama.cpp");
    assert_eq!(r["summary"]["bit_exact"], true, "{stdout}");
    assert_eq!(r["modes"].as_array().map(Vec::len), Some(2));
    r
}

#[test]
fn upstream_llama_cpp_live_reference_is_bit_exact_on_tq2_0() {
    let Some(worker) = worker() else { return };
    run_live(
        &worker,
        &repo().join("fixtures/reference/upstream/tiny-bitnet-tq.tq2_0.gguf"),
    );
}

/// Arch `llama` with ternary TQ weights (the TriLM family's layout) under the llama.cpp profile: NORM RoPE,
/// SiLU FFN, no sub-norms, an untied F16 head.
#[test]
fn upstream_llama_cpp_live_reference_is_bit_exact_on_arch_llama_tq() {
    let Some(worker) = worker() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    for (flavor, hidden, ffn) in [("tq2_0", "256", "768"), ("tq1_0", "512", "1024")] {
        let model = dir.path().join(format!("llama-{flavor}.gguf"));
        let out = Command::new(env!("CARGO_BIN_EXE_parity"))
            .args(["fixture", "--arch", "llama", "--flavor", flavor, "--seed", "5"])
            .args([
                "--hidden",
                hidden,
                "--ffn",
                ffn,
                "--heads",
                "4",
                "--kv-heads",
                "2",
                "--vocab",
                "1024",
                "--out",
            ])
            .arg(&model)
            .output()
            .expect("parity fixture");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let r = run_live(&worker, &model);
        assert_eq!(r["model"]["architecture"], "llama", "{flavor}");
    }
}
