//! bitnet.cpp's recorded token ids for the 35 probe texts of shared/reference/tokenizer.json, with
//! `tokenizer.ggml.pre = gpt-2` and with the key absent (llama.cpp's DEFAULT pre-tokenizer).

use engine::tokenizer::{PreType, Tokenizer};
use serde_json::Value;

mod common;
use common::reference;

/// Run every case of one suite; returns the mismatches as readable lines.
fn run_suite(suite: &str) -> Option<(usize, Vec<String>)> {
    let probes: Value = serde_json::from_str(&std::fs::read_to_string(reference("tokenizer.json")?).unwrap()).unwrap();
    let file = probes["models"][suite]["file"].as_str().unwrap();
    let tok = Tokenizer::load(&reference(file)?, None).unwrap();
    let cases = probes["cases"][suite].as_array().unwrap();
    let bad = common::probe_mismatches(&tok, cases);
    Some((cases.len(), bad))
}

/// Every one of the 35 probes of `suite` tokenizes as bitnet.cpp did (a skip when the probes are absent).
fn assert_suite_matches(suite: &str) {
    let Some((n, bad)) = run_suite(suite) else {
        return;
    };
    assert_eq!(n, 35);
    assert!(
        bad.is_empty(),
        "{} of {n} probes differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn gpt2_pre_matches_bitnet_cpp_on_every_probe() {
    assert_suite_matches("with_pre_gpt2");
}

#[test]
fn default_pre_matches_bitnet_cpp_on_every_probe() {
    assert_suite_matches("no_pre_default");
}

#[test]
fn tiny_vocab_metadata_follows_llama_cpp() {
    let Some(path) = reference("tiny-b158-nopre.i2_s.gguf") else {
        return;
    };
    let tok = Tokenizer::load(&path, None).unwrap();
    assert_eq!(tok.pre_type(), PreType::Default);
    assert!(!tok.add_bos(), "the file sets add_bos_token = false");
    assert_eq!(tok.bos(), Some(1022));
    assert_eq!(tok.eos(), Some(1023));
    // No eot key: "<|endoftext|>" is auto-detected as EOT.
    assert_eq!(tok.eot(), Some(1023));
    assert_eq!(tok.eog_ids(), &[1023]);
    assert_eq!(tok.sha256().len(), 64);
    // The two files share vocab and merges but not the pre-tokenizer, so the hashes differ.
    let other = Tokenizer::load(&reference("tiny-b158-gqa.i2_s.gguf").unwrap(), None).unwrap();
    assert_eq!(other.pre_type(), PreType::Gpt2);
    assert_ne!(tok.sha256(), other.sha256());
}

#[test]
fn decode_round_trips_probe_texts() {
    let Some(path) = reference("tiny-b158-gqa.i2_s.gguf") else {
        return;
    };
    let tok = Tokenizer::load(&path, None).unwrap();
    for text in [
        "Hello\n\nworld\n",
        "naïve café résumé",
        "emoji 🙂👍🏽 done",
        "<|begin_of_text|>hi",
    ] {
        let ids = tok.encode(text, false, true).unwrap();
        assert_eq!(tok.decode(&ids, true).unwrap(), text);
    }
    // Control tokens print nothing unless asked for.
    assert_eq!(tok.decode(&[1022, 104, 105], false).unwrap(), "hi");
    assert!(tok.decode(&[4096], false).is_err());
}

#[test]
fn special_text_stays_text_without_parse_special() {
    let Some(path) = reference("tiny-b158-gqa.i2_s.gguf") else {
        return;
    };
    let tok = Tokenizer::load(&path, None).unwrap();
    let ids = tok.encode("<|begin_of_text|>hi", false, false).unwrap();
    assert!(!ids.contains(&1022));
    assert_eq!(tok.decode(&ids, false).unwrap(), "<|begin_of_text|>hi");
}
