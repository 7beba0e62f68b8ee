//! `--device`: every command that computes a forward pass takes it; `cuda` without the `cuda` feature, or
//! without a driver, exits 2 with a message naming why (never a panic, never a silent CPU run); an unknown
//! device is a usage error. On a machine with a CUDA driver and GPU (feature on) the run must succeed on the
//! device, and its receipt lists the accelerator and CUDA kernel IDs.

use std::path::Path;

mod common;

/// `parity ARGS…`: exit code and stdout followed by stderr.
fn parity(args: &[&str]) -> (i32, String) {
    let (code, out, err) = common::parity(args);
    (code, out + &err)
}

/// Whether this machine can run the CUDA backend at all (feature on and a driver present).
fn gpu_possible() -> bool {
    cfg!(feature = "cuda") && engine::kernels::cuda::driver_present()
}

#[test]
fn cuda_without_support_exits_2_naming_why() {
    if gpu_possible() {
        println!("SKIP: a CUDA driver is present; see cuda_runs_where_a_gpu_is");
        return;
    }
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/generated/tiny-b158.i2s.gguf");
    let out = std::env::temp_dir().join(format!("parity-device-{}.npy", std::process::id()));
    let why = if cfg!(feature = "cuda") {
        "no CUDA driver (libcuda.so not found)"
    } else {
        "this build has no CUDA support"
    };
    let m = model.to_str().unwrap();
    for args in [
        vec!["logits", m, "--tokens", "1,2,3", "--out", out.to_str().unwrap()],
        vec!["generate", m, "--prompt", "a", "-n", "2"],
        vec!["bench", m, "-p", "0", "-n", "1", "--reps", "1"],
        vec!["run"],
    ] {
        let (code, text) = parity(&[&args[..], &["--device", "cuda"]].concat());
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(
            text.contains("--device cuda:0") && text.contains(why),
            "{args:?}: {text}"
        );
        assert!(!text.contains("panicked"), "{args:?}: {text}");
    }
    assert!(!out.exists(), "no logits written without a device");
}

#[test]
fn unknown_devices_are_usage_errors() {
    let (code, text) = parity(&["run", "--device", "gpu"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("unknown device \"gpu\""), "{text}");
}

#[test]
fn cuda_runs_where_a_gpu_is() {
    if !gpu_possible() {
        println!("SKIP: no CUDA driver, or a build without the `cuda` feature");
        return;
    }
    let receipt = std::env::temp_dir().join(format!("parity-device-{}.json", std::process::id()));
    let (code, text) = parity(&["run", "--device", "cuda", "--receipt", receipt.to_str().unwrap()]);
    // The device is held to cosine-level agreement, not bit-exactness: the exact gate may fail (exit 1),
    // but the run must compute on the device and write its receipt.
    assert!(code == 0 || code == 1, "{text}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&receipt).expect("receipt")).expect("json");
    assert!(
        r["host"]["accelerators"][0].as_str().unwrap_or("").starts_with("cuda:"),
        "{r}"
    );
    assert!(
        r["kernels"]
            .as_object()
            .is_some_and(|k| k.keys().any(|id| id.contains(".cuda"))),
        "{r}"
    );
}
