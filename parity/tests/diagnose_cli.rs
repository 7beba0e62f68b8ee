//! `parity diagnose` names the generation that produced a reference's logits: logits made by
//! `ref_forward.py --numerics 2026` and `--switch H1` (parity/tests/data/diagnose/README.md) on the
//! trained model, bitnet.cpp's own 2025 golden, and logits no profile explains.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

mod common;
use common::committed_or_shared as shared;

const P16: &str = "501,333,82,76,111,356,58,262,374,84,802,793,273,562,422,115";

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/diagnose")
        .join(name)
}

fn diagnose(model: &Path, against: &Path, mode: &str) -> (i32, Json) {
    let out = Command::new(env!("CARGO_BIN_EXE_parity"))
        .args([
            "diagnose",
            model.to_str().unwrap(),
            "--tokens",
            P16,
            "--mode",
            mode,
            "--ctx",
            "256",
            "--json",
            "--threads",
            "2",
        ])
        .arg("--against")
        .arg(against)
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 1,
        "exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code, serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn names_bitnet_cpp_2026_predicted() {
    let Some(m) = shared("trained/tiny-trained-b158.i2_s.gguf") else {
        return;
    };
    let (code, j) = diagnose(&m, &data("trained_p16_batch_2026.npy"), "batch");
    assert_eq!(code, 0);
    assert_eq!(j["exact"], true);
    assert_eq!(j["ranked"][0]["label"], "bitnet.cpp-2026 (predicted, unverified)");
    assert_eq!(j["ranked"][0]["verified"], false);
    let v = j["verdict"].as_str().unwrap();
    assert!(
        v.starts_with("matches bitnet.cpp-2026 (predicted, unverified) exactly"),
        "{v}"
    );
    assert!(v.contains("SiLU") && v.contains("#588") && v.contains("ReLU²"), "{v}");
    // Every profile (x86, 2026, upstream, the two ARM builds), then the auto profile with each single switch.
    assert_eq!(
        j["ranked"].as_array().unwrap().len(),
        engine::model::Profile::all().len() + engine::model::Switch::all().len()
    );
}

#[test]
fn names_the_single_switch_h1() {
    let Some(m) = shared("trained/tiny-trained-b158.i2_s.gguf") else {
        return;
    };
    let (code, j) = diagnose(&m, &data("trained_p16_seq_H1.npy"), "seq");
    assert_eq!(code, 0);
    assert_eq!(j["ranked"][0]["label"], "bitnet.cpp-2025+H1");
    assert_eq!(j["ranked"][0]["exact"], true);
    assert_eq!(j["also_exact"].as_array().unwrap().len(), 0);
    assert!(j["verdict"]
        .as_str()
        .unwrap()
        .starts_with("matches bitnet.cpp-2025+H1 exactly"));
}

#[test]
fn names_bitnet_cpp_2025_on_its_golden() {
    let Some(m) = shared("trained/tiny-trained-b158.i2_s.gguf") else {
        return;
    };
    let Some(golden) = shared("trained/tiny-trained-b158_p16_seq_t1.logits.npy") else {
        return;
    };
    let (code, j) = diagnose(&m, &golden, "seq");
    assert_eq!(code, 0);
    assert_eq!(j["ranked"][0]["label"], "bitnet.cpp-2025");
    assert!(j["verdict"]
        .as_str()
        .unwrap()
        .starts_with("matches bitnet.cpp-2025 exactly"));
}

/// An ARM fp16 build's golden (committed subset of ../shared/reference/arm-fp16) is named as such, and the
/// plain ARM build's as its own profile: the two are told apart from each other and from x86.
#[test]
fn names_the_arm_builds_on_their_goldens() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/reference");
    for (set, profile) in [("arm-fp16", "bitnet.cpp-2025-arm-fp16"), ("arm", "bitnet.cpp-2025-arm")] {
        let manifest: Json =
            serde_json::from_str(&std::fs::read_to_string(root.join(set).join("manifest.json")).unwrap()).unwrap();
        let case = manifest["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["model"] == "tiny-bitnet-legacy.i2_s.gguf" && c["prompt_len"] == 32 && c["mode"] == "seq")
            .expect("a legacy p32 seq case");
        let tokens: Vec<String> = case["prompt_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_parity"))
            .args([
                "diagnose",
                root.join(set).join("tiny-bitnet-legacy.i2_s.gguf").to_str().unwrap(),
            ])
            .args([
                "--tokens",
                &tokens.join(","),
                "--mode",
                "seq",
                "--ctx",
                "128",
                "--json",
                "--against",
            ])
            .arg(root.join(set).join(case["logits"].as_str().unwrap()))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let j: Json = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(j["ranked"][0]["label"], profile, "{set}");
        assert_eq!(j["exact"], true, "{set}");
        let verdict = j["verdict"].as_str().unwrap();
        assert!(verdict.contains("ARM"), "{set}: {verdict}");
        assert_eq!(
            verdict.contains("ARM fp16 build"),
            set == "arm-fp16",
            "{set}: {verdict}"
        );
    }
}

/// Rows reversed: every candidate's logits are compared with another position's.
#[test]
fn unrelated_logits_are_not_explained() {
    let Some(m) = shared("trained/tiny-trained-b158.i2_s.gguf") else {
        return;
    };
    let bytes = std::fs::read(data("trained_p16_seq_H1.npy")).unwrap();
    let header = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let mut out = bytes[..header].to_vec();
    for row in bytes[header..].chunks(1024 * 4).rev() {
        out.extend_from_slice(row);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reversed.npy");
    std::fs::write(&path, out).unwrap();
    let (code, j) = diagnose(&m, &path, "seq");
    assert_eq!(code, 1);
    assert_eq!(j["explained"], false);
    assert!(
        j["verdict"]
            .as_str()
            .unwrap()
            .starts_with("no profile explains the reference"),
        "{}",
        j["verdict"]
    );
}

#[test]
fn wrong_shape_or_file_exits_2() {
    let Some(m) = shared("trained/tiny-trained-b158.i2_s.gguf") else {
        return;
    };
    let run = |tokens: &str, against: &Path| {
        Command::new(env!("CARGO_BIN_EXE_parity"))
            .args(["diagnose", m.to_str().unwrap(), "--tokens", tokens, "--against"])
            .arg(against)
            .output()
            .unwrap()
    };
    let npy = data("trained_p16_batch_2026.npy");
    assert_eq!(run("1,2,3", &npy).status.code(), Some(2));
    assert_eq!(run(P16, &m).status.code(), Some(2));
    assert_eq!(run(P16, Path::new("/nonexistent.npy")).status.code(), Some(2));
}

/// bitnet.cpp's TL2 batch logits (NaN after row 0) are named as the reference's broken TL2 batched matmul;
/// its seq logits are matched exactly.
#[test]
fn names_the_broken_tl2_batch_path() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/reference/tl2");
    let manifest: Json = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let ids: Vec<String> = manifest["prompts"]["8"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    let run = |mode: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_parity"))
            .arg("diagnose")
            .arg(dir.join("tiny-tl2.tl2.gguf"))
            .args(["--tokens", &ids.join(","), "--mode", mode, "--ctx", "128", "--json"])
            .arg("--against")
            .arg(dir.join(format!("tiny-tl2.tl2_p8_{mode}.logits.npy")))
            .output()
            .unwrap();
        (out.status.code(), serde_json::from_slice::<Json>(&out.stdout).unwrap())
    };
    let (code, d) = run("batch");
    assert_eq!(code, Some(0), "{d}");
    let verdict = d["verdict"].as_str().unwrap();
    assert!(d["reference_broken"].is_string(), "{d}");
    assert!(
        verdict.contains("TL2 batched matmul") && verdict.contains("7/8"),
        "{verdict}"
    );
    let (code, d) = run("seq");
    assert_eq!(code, Some(0), "{d}");
    assert!(d["reference_broken"].is_null() && d["exact"] == true, "{d}");
}
