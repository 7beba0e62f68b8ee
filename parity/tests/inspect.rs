//! `parity inspect` on the reference models: the JSON matches the files' metadata (read here with
//! an independent minimal header walk), the human table names the same facts, bad files exit 2.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

mod common;

fn reference_dir() -> Option<PathBuf> {
    common::reference("")
}

fn inspect(args: &[&str]) -> (i32, String, String) {
    common::parity(&[&["inspect"], args].concat())
}

fn inspect_json(path: &Path, extra: &[&str]) -> Json {
    let p = path.to_str().unwrap();
    let mut args = vec![p, "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = inspect(&args);
    assert_eq!(code, 0, "{p}: {err}");
    serde_json::from_str(&out).unwrap()
}

/// Minimal independent GGUF header walk: (version, n_tensors, n_kv, u32 KVs, string KVs, tensor names).
struct Header {
    version: u32,
    n_tensors: u64,
    n_kv: u64,
    u32s: Vec<(String, u32)>,
    strings: Vec<(String, String)>,
    tensor_names: Vec<String>,
}

fn walk(path: &Path) -> Header {
    let b = std::fs::read(path).unwrap();
    let mut pos = 4usize;
    let u32_ = |b: &[u8], pos: &mut usize| {
        let v = u32::from_le_bytes(b[*pos..*pos + 4].try_into().unwrap());
        *pos += 4;
        v
    };
    let u64_ = |b: &[u8], pos: &mut usize| {
        let v = u64::from_le_bytes(b[*pos..*pos + 8].try_into().unwrap());
        *pos += 8;
        v
    };
    let string = |b: &[u8], pos: &mut usize| {
        let n = u64_(b, pos) as usize;
        let s = String::from_utf8(b[*pos..*pos + n].to_vec()).unwrap();
        *pos += n;
        s
    };
    fn skip(b: &[u8], pos: &mut usize, ty: u32) {
        let size = |t| match t {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            _ => 0,
        };
        match ty {
            8 => {
                let n = u64::from_le_bytes(b[*pos..*pos + 8].try_into().unwrap()) as usize;
                *pos += 8 + n;
            }
            9 => {
                let et = u32::from_le_bytes(b[*pos..*pos + 4].try_into().unwrap());
                let n = u64::from_le_bytes(b[*pos + 4..*pos + 12].try_into().unwrap());
                *pos += 12;
                for _ in 0..n {
                    skip(b, pos, et);
                }
            }
            t => *pos += size(t),
        }
    }
    let version = u32_(&b, &mut pos);
    let n_tensors = u64_(&b, &mut pos);
    let n_kv = u64_(&b, &mut pos);
    let (mut u32s, mut strings) = (Vec::new(), Vec::new());
    for _ in 0..n_kv {
        let key = string(&b, &mut pos);
        let ty = u32_(&b, &mut pos);
        match ty {
            4 => u32s.push((key, u32_(&b, &mut pos))),
            8 => strings.push((key, string(&b, &mut pos))),
            t => skip(&b, &mut pos, t),
        }
    }
    let mut tensor_names = Vec::new();
    for _ in 0..n_tensors {
        tensor_names.push(string(&b, &mut pos));
        let nd = u32_(&b, &mut pos) as usize;
        pos += nd * 8 + 4 + 8;
    }
    Header {
        version,
        n_tensors,
        n_kv,
        u32s,
        strings,
        tensor_names,
    }
}

const MODELS: [&str; 7] = [
    "tiny-b158-gqa.i2_s.gguf",
    "tiny-b158-nopre.i2_s.gguf",
    "tiny-bitnet-legacy.i2_s.gguf",
    "trained/tiny-trained-b158.i2_s.gguf",
    "upstream/tiny-bitnet-tq.tq2_0.gguf",
    "upstream/tiny-bitnet-tq.tq1_0.gguf",
    "upstream/tiny-bitnet-tq.f16.gguf",
];

#[test]
fn json_matches_each_reference_models_metadata() {
    let Some(dir) = reference_dir() else { return };
    for rel in MODELS {
        let path = dir.join(rel);
        let h = walk(&path);
        let d = inspect_json(&path, &[]);
        assert_eq!(d["schema"], "parity-inspect/1");
        assert_eq!(d["gguf_version"], h.version, "{rel}");
        assert_eq!(d["n_kv"], h.n_kv, "{rel}");
        assert_eq!(d["n_tensors"], h.n_tensors, "{rel}");
        assert_eq!(d["file_size"], std::fs::metadata(&path).unwrap().len());
        let names: Vec<&str> = d["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, h.tensor_names, "{rel}: tensors in file order");
        let s = |k: &str| h.strings.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let u = |k: &str| h.u32s.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
        let arch = s("general.architecture").unwrap();
        assert_eq!(d["architecture"], arch);
        assert_eq!(
            d["dialect"]["table"], "bitnet-fork",
            "{rel}: all reference arches are bitnet.cpp ones"
        );
        // Hyper-parameters: every u32 key under the arch prefix appears with its value, not as a default.
        let fields = d["hparams"]["fields"]
            .as_array()
            .unwrap_or_else(|| panic!("{rel}: {}", d["hparams"]));
        assert_eq!(fields.len(), 13);
        for (key, value) in h.u32s.iter().filter(|(k, _)| k.starts_with(&format!("{arch}."))) {
            if let Some(f) = fields.iter().find(|f| f["key"] == key.as_str()) {
                assert_eq!(f["value"], *value, "{rel}: {key}");
                assert_eq!(f["default"], false, "{rel}: {key}");
            }
        }
        let by_field = |name: &str| fields.iter().find(|f| f["field"] == name).unwrap();
        assert_eq!(by_field("n_layer")["value"], u(&format!("{arch}.block_count")).unwrap());
        assert_eq!(
            by_field("head_dim")["default"],
            true,
            "{rel}: key_length is absent in every reference"
        );
        // Tokenizer.
        let t = &d["tokenizer"];
        assert_eq!(t["model"], s("tokenizer.ggml.model").unwrap());
        assert_eq!(t["bos_token_id"], u("tokenizer.ggml.bos_token_id").unwrap());
        assert_eq!(t["eos_token_id"], u("tokenizer.ggml.eos_token_id").unwrap());
        assert_eq!(t["n_tokens"], 1024);
        match s("tokenizer.ggml.pre") {
            Some(pre) => assert_eq!(t["pre_shown"], pre),
            None => assert_eq!(t["pre_shown"], "absent (llama.cpp default)"),
        }
        assert_eq!(t["chat_template_present"], false);
        assert_eq!(d["lm_head"]["type"], "f16");
        assert_eq!(d["lm_head"]["output_weight_present"], false);
        // Flavors: counts add up to the tensor count, and I2_S files carry an assumed x86 layout.
        let total: u64 = d["flavor_counts"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, h.n_tensors);
        if rel.contains("i2_s") {
            assert_eq!(d["i2s_layout"]["layout"], "x86-act128");
            assert_eq!(d["i2s_layout"]["assumed"], true);
        } else {
            assert!(d["i2s_layout"].is_null());
        }
    }
}

#[test]
fn nopre_model_reports_the_missing_pre_tokenizer() {
    let Some(dir) = reference_dir() else { return };
    let d = inspect_json(&dir.join("tiny-b158-nopre.i2_s.gguf"), &[]);
    assert!(d["tokenizer"]["pre"].is_null());
    assert_eq!(d["tokenizer"]["pre_shown"], "absent (llama.cpp default)");
}

#[test]
fn layout_override_is_reported_and_its_shape_rule_enforced() {
    let Some(dir) = reference_dir() else { return };
    let path = dir.join("tiny-b158-gqa.i2_s.gguf");
    let d = inspect_json(&path, &["--i2s-layout", "arm"]);
    assert_eq!(d["i2s_layout"]["layout"], "arm64");
    assert_eq!(d["i2s_layout"]["assumed"], false);
    let d = inspect_json(&path, &["--i2s-layout", "x86-1x4"]);
    assert_eq!(d["i2s_layout"]["layout"], "x86-1x4");
    let q = d["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "blk.0.attn_q.weight")
        .unwrap();
    assert_eq!(q["flavor"], "i2_s");
    assert_eq!(q["byte_size"], 512 * 512 / 4 + 32);
}

#[test]
fn human_table_names_the_same_facts() {
    let Some(dir) = reference_dir() else { return };
    let (code, out, _) = inspect(&[dir.join("tiny-bitnet-legacy.i2_s.gguf").to_str().unwrap()]);
    assert_eq!(code, 0);
    for needle in [
        "bitnet.cpp fork",
        "token_embd.weight (F16) — bitnet.cpp ignores output.weight even when present",
        "x86-act128 (assumed)",
        "blk.0.attn_q.scale",
        "sibling scale",
        "(default)",
        "pre-tokenizer gpt-2",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
}

#[test]
fn bad_files_exit_2_with_the_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"GGML\x03\0\0\0 and then some more bytes").unwrap();
    let (code, _, err) = inspect(&[bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("bad magic") && err.contains("bad.gguf"), "{err}");

    // A type-36 tensor holding only its n/4 codes: a foreign layout, refused by flavor detection.
    let mut w = engine::gguf::GgufWriter::new();
    w.kv(
        "general.architecture",
        engine::gguf::Value::String("bitnet-b1.58".into()),
    );
    w.tensor("blk.0.attn_q.weight", &[256, 4], 36, vec![0x55; 256]);
    w.tensor("output_norm.weight", &[4], 0, vec![0; 16]);
    let foreign = dir.path().join("foreign.gguf");
    std::fs::write(&foreign, w.to_bytes()).unwrap();
    let (code, _, err) = inspect(&[foreign.to_str().unwrap(), "--json"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("Split32WithSibling") && err.contains("GgmlQk256NoScale"),
        "{err}"
    );
}
