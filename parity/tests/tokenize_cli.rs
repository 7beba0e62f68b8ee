//! `parity tokenize` / `parity detokenize` against bitnet.cpp's ids for every probe of
//! shared/reference/tokenizer.json (both tiny models), through the built binary, as scoreboard.py runs it.

use serde_json::Value;

mod common;
use common::{parity, reference};

fn check_suite(suite: &str) {
    let Some(probes) = reference("tokenizer.json") else {
        return;
    };
    let probes: Value = serde_json::from_str(&std::fs::read_to_string(probes).unwrap()).unwrap();
    let Some(model) = reference(probes["models"][suite]["file"].as_str().unwrap()) else {
        return;
    };
    let model = model.to_str().unwrap();
    let cases = probes["cases"][suite].as_array().unwrap();
    assert_eq!(cases.len(), 35);
    let mut bad = Vec::new();
    let mut hash = None;
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let (rc, out, err) = parity(&["tokenize", model, "--prompt", text, "--json"]);
        assert_eq!(rc, 0, "{text:?}: {err}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        if doc["ids"] != c["ids"] {
            bad.push(format!("{text:?}: got {}, bitnet.cpp {}", doc["ids"], c["ids"]));
        }
        assert_eq!(
            doc["n_tokens"].as_u64().unwrap() as usize,
            doc["ids"].as_array().unwrap().len()
        );
        assert_eq!(
            doc["pieces"].as_array().unwrap().len(),
            doc["ids"].as_array().unwrap().len()
        );
        let h = doc["tokenizer_sha256"].as_str().unwrap().to_string();
        assert_eq!(h.len(), 64);
        assert_eq!(hash.get_or_insert(h.clone()), &h, "hash must not depend on the text");
    }
    assert!(
        bad.is_empty(),
        "{suite}: {} of 35 differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn every_gpt2_pre_probe_matches_bitnet_cpp() {
    check_suite("with_pre_gpt2");
}

#[test]
fn every_default_pre_probe_matches_bitnet_cpp() {
    check_suite("no_pre_default");
}

#[test]
fn plain_output_file_input_and_no_bos() {
    let Some(model) = reference("tiny-b158-gqa.i2_s.gguf") else {
        return;
    };
    let model = model.to_str().unwrap();
    let (rc, out, _) = parity(&["tokenize", model, "--prompt", "<|begin_of_text|>hi"]);
    assert_eq!((rc, out.trim()), (0, "1022,104,105"));
    let (_, out, _) = parity(&[
        "tokenize",
        model,
        "--prompt",
        "<|begin_of_text|>hi",
        "--no-parse-special",
    ]);
    assert!(!out.trim().split(',').any(|t| t == "1022"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.txt");
    std::fs::write(&f, "Hello world").unwrap();
    let (rc, out, _) = parity(&["tokenize", model, "--file", f.to_str().unwrap(), "--no-bos"]);
    assert_eq!((rc, out.trim()), (0, "72,322,111,520,313"));
}

#[test]
fn detokenize_round_trips() {
    let Some(model) = reference("tiny-b158-nopre.i2_s.gguf") else {
        return;
    };
    let model = model.to_str().unwrap();
    let (rc, out, _) = parity(&["detokenize", model, "--ids", "1022,72,322,111,520,313"]);
    assert_eq!((rc, out.as_str()), (0, "<|begin_of_text|>Hello world\n"));
    let (_, out, _) = parity(&["detokenize", model, "--ids", "1022,72,322,111,520,313", "--no-special"]);
    assert_eq!(out, "Hello world\n");
}

#[test]
fn bad_inputs_are_clean_errors() {
    let (rc, _, err) = parity(&["tokenize", "/nonexistent/model.gguf", "--prompt", "hi"]);
    assert_eq!(rc, 2);
    assert!(err.contains("/nonexistent/model.gguf"), "{err}");
    let Some(model) = reference("tiny-b158-gqa.i2_s.gguf") else {
        return;
    };
    let (rc, _, err) = parity(&["detokenize", model.to_str().unwrap(), "--ids", "99999"]);
    assert_eq!(rc, 2);
    assert!(err.contains("out of range"), "{err}");
    // A GGUF without a vocabulary and without a sibling tokenizer.json names what it looked for.
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("bare.gguf");
    std::fs::write(&bare, engine_free_gguf()).unwrap();
    let (rc, _, err) = parity(&["tokenize", bare.to_str().unwrap(), "--prompt", "hi"]);
    assert_eq!(rc, 2);
    assert!(err.contains("tokenizer.json"), "{err}");
}

/// A minimal valid GGUF v3 with one metadata key and no tensors.
fn engine_free_gguf() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    let key = b"general.architecture";
    b.extend_from_slice(&(key.len() as u64).to_le_bytes());
    b.extend_from_slice(key);
    b.extend_from_slice(&8u32.to_le_bytes());
    let val = b"bitnet-b1.58";
    b.extend_from_slice(&(val.len() as u64).to_le_bytes());
    b.extend_from_slice(val);
    b.resize(b.len().div_ceil(32) * 32, 0);
    b
}
