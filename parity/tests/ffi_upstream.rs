//! Live upstream llama.cpp as the reference (issue 12): `parity run --reference ffi` on the committed
//! TQ2_0 fixture must be bit-exact in both modes. Runs when `PARITY_UPSTREAM_WORKER` names a
//! `parity-ref-worker` built against upstream llama.cpp (`.ci/run` sets it up with
//! `scripts/setup-upstream-ref.sh`); otherwise it says so and skips.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn upstream_llama_cpp_live_reference_is_bit_exact_on_tq2_0() {
    let Some(worker) = std::env::var_os("PARITY_UPSTREAM_WORKER") else {
        eprintln!("SKIP: PARITY_UPSTREAM_WORKER is unset; build the upstream reference with scripts/setup-upstream-ref.sh (see docs/ffi-ref.md)");
        return;
    };
    let dir = repo().join("fixtures/reference/upstream");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest")).expect("json");
    let ids: Vec<String> = manifest["prompts"]["32"]
        .as_array()
        .expect("p32 prompt")
        .iter()
        .map(|v| v.to_string())
        .collect();
    let out_dir = tempfile::tempdir().expect("tempdir");
    let receipt = out_dir.path().join("upstream.json");
    let out = Command::new(env!("CARGO_BIN_EXE_parity"))
        .env("PARITY_REF_WORKER", &worker)
        .arg("run")
        .arg(dir.join("tiny-bitnet-tq.tq2_0.gguf"))
        .args([
            "--reference",
            "ffi",
            "--tokens",
            &ids.join(","),
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
        "parity run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&receipt).expect("receipt")).expect("json");
    assert_eq!(r["reference"]["kind"], "ffi");
    assert_eq!(r["reference"]["generation"], "llama.cpp");
    assert_eq!(r["summary"]["bit_exact"], true, "{stdout}");
    assert_eq!(r["modes"].as_array().map(Vec::len), Some(2));
}
