//! `parity record` end to end without C++: a shell-script worker answers the protocol with fixed logits,
//! and the written directory must read back through `ffi_ref::Recorded`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use ffi_ref::protocol::{f32_to_bytes, write_frame, Request, Response, SystemInfo};
use ffi_ref::{Mode, Recorded, ReferenceBackend};

fn frame<T: serde::Serialize>(h: &T, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    write_frame(&mut b, h, payload).unwrap();
    b
}

/// Reads exactly each expected request, answers it, then exits.
fn fake_worker(dir: &Path, steps: &[(Request, Vec<u8>)]) -> std::path::PathBuf {
    let mut script = String::from("#!/bin/sh\n");
    for (i, (req, answer)) in steps.iter().enumerate() {
        let file = dir.join(format!("a{i}.bin"));
        fs::write(&file, answer).unwrap();
        script.push_str(&format!(
            "head -c {} >/dev/null\ncat '{}'\n",
            frame(req, &[]).len(),
            file.display()
        ));
    }
    let path = dir.join("worker.sh");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn record_with_a_fake_worker_writes_a_readable_reference() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("toy.gguf");
    fs::write(&model, b"not really a model").unwrap();
    let out = dir.path().join("out");
    let info = SystemInfo {
        system_info: "FAKE = 1".into(),
        dir: "/fake".into(),
        commit: "f".repeat(40),
        llama_commit: "e".repeat(40),
        api: "load=old".into(),
        build_flags: "BITNET_X86_TL2=OFF".into(),
    };
    let logits = [0.5f32, -1.0, 2.0, 0.25, 1.5, -0.0];
    let steps = vec![
        (Request::SystemInfo, frame(&Response::SystemInfo(info), &[])),
        (
            Request::Load {
                model: model.display().to_string(),
                n_ctx: 16,
                threads: 1,
            },
            frame(&Response::Loaded { n_vocab: 3, n_ctx: 16 }, &[]),
        ),
        (
            Request::EvalLogits {
                ids: vec![2, 0],
                mode: Mode::Seq,
            },
            frame(
                &Response::Logits {
                    n_tokens: 2,
                    n_vocab: 3,
                },
                &f32_to_bytes(&logits),
            ),
        ),
        (
            Request::Greedy {
                ids: vec![2, 0],
                mode: Mode::Seq,
                n: 3,
            },
            frame(&Response::Ids { ids: vec![0, 1, 2] }, &[]),
        ),
    ];
    let worker = fake_worker(dir.path(), &steps);
    let run = Command::new(env!("CARGO_BIN_EXE_parity"))
        .arg("record")
        .arg(&model)
        .args([
            "--tokens", "2,0", "--mode", "seq", "--ctx", "16", "--greedy", "3", "--out",
        ])
        .arg(&out)
        .arg("--worker")
        .arg(&worker)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    let mut rec = Recorded::open(&out).unwrap().with_model_file(&model).unwrap();
    let got = rec.eval_logits(&[2, 0], Mode::Seq).unwrap();
    assert_eq!(
        got.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        logits.map(f32::to_bits)
    );
    assert_eq!(rec.greedy(&[2, 0], Mode::Seq, 3).unwrap(), [0, 1, 2]);
    let case = &rec.manifest().cases[0];
    assert_eq!(case.id, "toy_p2_seq_t1");
    assert!(out.join("toy_p2_seq_t1.logits.npy").is_file());
    let prov = &rec.manifest().provenance;
    assert_eq!(
        prov.get("bitnet_cpp"),
        Some(format!("microsoft/BitNet {}", "f".repeat(40)).as_str())
    );
    assert_eq!(prov.get("build_flags"), Some("BITNET_X86_TL2=OFF"));
}

#[test]
fn record_without_ffi_or_worker_exits_2_naming_the_feature() {
    if ffi_ref::FFI_COMPILED || std::env::var_os("PARITY_REF_WORKER").is_some() {
        eprintln!("SKIP: built with ffi or PARITY_REF_WORKER set");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_parity"))
        .args(["record", "m.gguf", "--tokens", "1", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("--features ffi") && err.contains("BITNET_CPP_DIR"),
        "{err}"
    );
    assert!(fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing written");
}
