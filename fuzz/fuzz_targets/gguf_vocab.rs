//! Fuzz the GGUF vocabulary loader (`tokenizer.ggml.*`, llama.cpp's `llm_load_vocab` keys): the input is
//! cut into tokens, merges, token types and special ids of a well-formed GGUF, so the fuzzer explores the
//! vocabulary's semantics rather than the container's bytes (`gguf_reader` covers those).
#![no_main]

use engine::gguf::{GgufFile, GgufWriter, Value, ValueType};
use engine::tokenizer::Tokenizer;
use libfuzzer_sys::fuzz_target;

fn strings(part: &[u8]) -> Vec<Value> {
    part.split(|&b| b == b'\n')
        .map(|s| Value::String(String::from_utf8_lossy(s).into_owned()))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |&b| b == 0xff);
    let (tokens, merges, types, text) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let mut w = GgufWriter::new();
    w.kv("tokenizer.ggml.model", Value::String("gpt2".into()));
    let pre = ["llama-bpe", "gpt-2", "default", "bogus"][types.first().map_or(0, |&b| b as usize % 4)];
    w.kv("tokenizer.ggml.pre", Value::String(pre.into()));
    w.kv(
        "tokenizer.ggml.tokens",
        Value::Array(ValueType::String, strings(tokens)),
    );
    w.kv(
        "tokenizer.ggml.merges",
        Value::Array(ValueType::String, strings(merges)),
    );
    let types: Vec<Value> = types.iter().skip(1).map(|&b| Value::I32(i32::from(b % 8))).collect();
    w.kv("tokenizer.ggml.token_type", Value::Array(ValueType::I32, types));
    for (i, key) in ["bos", "eos", "eot", "padding"].iter().enumerate() {
        if let Some(&b) = text.get(i) {
            w.kv(&format!("tokenizer.ggml.{key}_token_id"), Value::U32(u32::from(b)));
        }
    }
    if let Some(&b) = text.get(4) {
        w.kv("tokenizer.ggml.add_bos_token", Value::Bool(b & 1 == 1));
    }
    let Ok(g) = GgufFile::from_bytes(w.to_bytes()) else {
        return;
    };
    let Ok(tok) = Tokenizer::from_gguf(&g) else { return };
    let text = String::from_utf8_lossy(text.get(5..).unwrap_or_default());
    if let Ok(ids) = tok.encode(&text, true, true) {
        let _ = tok.decode(&ids, true);
    }
});
