//! Write a vocab-only GGUF (arch bitnet-b1.58, no tensors) carrying an HF BPE tokenizer the way the
//! official BitNet b1.58 2B-4T file stores it — the same keys, order and types as
//! shared/tools/make_vocab_gguf.py, so the output is byte-identical to it without needing Python.
//!
//! Usage: vocab_gguf TOKENIZER_JSON [--pre NAME] --out F.gguf

use std::path::PathBuf;
use std::process::ExitCode;

use engine::gguf::{GgufWriter, Value, ValueType};
use engine::tokenizer::read_tokenizer_json;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vocab_gguf: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (mut input, mut pre, mut out) = (None, None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--pre" => pre = Some(args.next().ok_or("--pre needs a value")?),
            "--out" => out = Some(PathBuf::from(args.next().ok_or("--out needs a value")?)),
            _ if input.is_none() && !a.starts_with("--") => input = Some(PathBuf::from(a)),
            _ => {
                return Err(format!(
                    "unexpected argument {a:?}; usage: vocab_gguf TOKENIZER_JSON [--pre NAME] --out F.gguf"
                ))
            }
        }
    }
    let input = input.ok_or("missing TOKENIZER_JSON")?;
    let out = out.ok_or("missing --out")?;
    let v = read_tokenizer_json(&input).map_err(|e| e.to_string())?;

    let arch = "bitnet-b1.58";
    let mut w = GgufWriter::new();
    w.kv("general.architecture", Value::String(arch.into()));
    for (k, x) in [
        ("context_length", 4096),
        ("embedding_length", 2560),
        ("block_count", 30),
        ("feed_forward_length", 6912),
        ("attention.head_count", 20),
        ("attention.head_count_kv", 5),
    ] {
        w.kv(&format!("{arch}.{k}"), Value::U32(x));
    }
    w.kv(&format!("{arch}.attention.layer_norm_rms_epsilon"), Value::F32(1e-5));
    w.kv(&format!("{arch}.rope.freq_base"), Value::F32(500000.0));
    w.kv("tokenizer.ggml.model", Value::String("gpt2".into()));
    if let Some(p) = &pre {
        w.kv("tokenizer.ggml.pre", Value::String(p.clone()));
    }
    let n = v.tokens.len();
    w.kv(
        "tokenizer.ggml.tokens",
        Value::Array(ValueType::String, v.tokens.into_iter().map(Value::String).collect()),
    );
    w.kv(
        "tokenizer.ggml.token_type",
        Value::Array(ValueType::I32, v.types.iter().map(|t| Value::I32(t.to_i32())).collect()),
    );
    let n_merges = v.merges.len();
    w.kv(
        "tokenizer.ggml.merges",
        Value::Array(ValueType::String, v.merges.into_iter().map(Value::String).collect()),
    );
    w.kv("tokenizer.ggml.bos_token_id", Value::U32(128000));
    w.kv("tokenizer.ggml.eos_token_id", Value::U32(128001));
    w.kv("tokenizer.ggml.add_bos_token", Value::Bool(true));
    std::fs::write(&out, w.to_bytes()).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "wrote {} {n} tokens {n_merges} merges pre={}",
        out.display(),
        pre.as_deref().unwrap_or("None")
    );
    Ok(())
}
