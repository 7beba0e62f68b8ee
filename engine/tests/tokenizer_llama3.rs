//! The real Llama 3 vocabulary (BitNet b1.58 2B-4T's tokenizer): bitnet.cpp's ids for the 35 probes of
//! shared/reference/llama3-tokenizer.json, on the vocab-only GGUFs written by scripts/llama3-vocab.sh
//! (without tokenizer.ggml.pre → DEFAULT, and with pre = llama-bpe → LLAMA3 + ignore_merges).

use std::path::PathBuf;

use engine::tokenizer::{PreType, Tokenizer};
use serde_json::Value;

mod common;

fn vocab_dir() -> PathBuf {
    std::env::var_os("PARITY_LLAMA3_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/llama3-vocab"))
}

fn probes() -> Option<Value> {
    let p = common::reference("llama3-tokenizer.json")?;
    Some(serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
}

fn tokenizer(file: &str) -> Option<Tokenizer> {
    let path = vocab_dir().join(file);
    if !path.exists() {
        eprintln!(
            "SKIP: {} missing; run scripts/llama3-vocab.sh to fetch the Llama 3 vocabulary",
            path.display()
        );
        return None;
    }
    Some(Tokenizer::load(&path, None).unwrap())
}

fn check_suite(suite: &str, file: &str, pre: PreType) {
    let (Some(p), Some(tok)) = (probes(), tokenizer(file)) else {
        return;
    };
    assert_eq!(tok.pre_type(), pre);
    assert_eq!(
        (tok.bos(), tok.eos(), tok.eot()),
        (Some(128000), Some(128001), Some(128009))
    );
    assert!(tok.is_eog(128001) && tok.is_eog(128009) && !tok.is_eog(128000));
    let cases = p["cases"][suite].as_array().unwrap();
    assert_eq!(cases.len(), 35);
    let bad = common::probe_mismatches(&tok, cases);
    assert!(
        bad.is_empty(),
        "{suite}: {} of 35 probes differ:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn llama3_vocab_without_pre_uses_default_and_matches_bitnet_cpp() {
    check_suite("llama3_no_pre", "l3-nopre.gguf", PreType::Default);
}

#[test]
fn llama3_vocab_with_llama_bpe_matches_bitnet_cpp() {
    check_suite("llama3_pre_llama_bpe", "l3-llamabpe.gguf", PreType::Llama3);
}

#[test]
fn llama3_chat_prompt_tokenizes_eot_as_one_token() {
    let Some(tok) = tokenizer("l3-nopre.gguf") else { return };
    let ids = tok.encode("User: hi<|eot_id|>Assistant: ", true, true).unwrap();
    assert_eq!(ids.first(), Some(&128000));
    assert!(ids.contains(&128009));
    assert_eq!(
        tok.decode(&ids, true).unwrap(),
        "<|begin_of_text|>User: hi<|eot_id|>Assistant: "
    );
    assert_eq!(tok.decode(&ids, false).unwrap(), "User: hiAssistant: ");
}

#[test]
fn tokenizer_json_gives_the_same_ids_as_the_gguf() {
    let Some(tok) = tokenizer("l3-nopre.gguf") else { return };
    let json = vocab_dir().join("tokenizer.json");
    if !json.exists() {
        eprintln!("SKIP: {} missing; run scripts/llama3-vocab.sh", json.display());
        return;
    }
    let from_json = Tokenizer::load(&json, None).unwrap();
    assert_eq!(
        from_json.sha256(),
        tok.sha256(),
        "same vocab, merges, types, specials, DEFAULT pre"
    );
    let text = "It's 3.14159 and 2,718 — naïve café 🙂";
    assert_eq!(
        from_json.encode(text, true, true).unwrap(),
        tok.encode(text, true, true).unwrap()
    );
}
