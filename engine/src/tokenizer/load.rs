//! Reading vocabularies: GGUF metadata (llama.cpp's `llm_load_vocab` keys and defaults), HF
//! `tokenizer.json` (the mapping `make_vocab_gguf.py` uses), and the choice between them.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::{PreType, TokenType, Tokenizer, TokenizerError, VocabData};
use crate::gguf::{GgufFile, Value};

/// llama.cpp's `tokenizer.ggml.pre` names that it accepts but this engine does not implement.
const KNOWN_UNIMPLEMENTED_PRE: &[&str] = &[
    "deepseek-llm",
    "deepseek-coder",
    "starcoder",
    "refact",
    "command-r",
    "qwen2",
    "stablelm2",
    "dbrx",
    "smaug-bpe",
    "poro-chat",
    "chatglm-bpe",
    "viking",
    "tekken",
    "smollm",
    "codeshell",
    "bloom",
    "gpt3-finnish",
    "exaone",
];

impl Tokenizer {
    /// Load the tokenizer for a model: an explicit `tokenizer_json` wins; otherwise the GGUF's own
    /// vocabulary; otherwise a `tokenizer.json` next to the model. A path ending in `.json` is read as a
    /// tokenizer.json. With a tokenizer.json, the GGUF (when there is one) still supplies
    /// `tokenizer.ggml.pre`, special ids and add_bos, as bitnet.cpp would read them from the model.
    pub fn load(model: &Path, tokenizer_json: Option<&Path>) -> Result<Self, TokenizerError> {
        if model.extension().is_some_and(|e| e == "json") && tokenizer_json.is_none() {
            return Self::from_json_file(model, None);
        }
        let gguf = GgufFile::open(model)?;
        if let Some(json) = tokenizer_json {
            return Self::from_json_file(json, Some(&gguf));
        }
        if gguf.get("tokenizer.ggml.tokens").is_some() {
            return Self::from_gguf(&gguf);
        }
        let sibling = sibling_json(model);
        if sibling.is_file() {
            return Self::from_json_file(&sibling, Some(&gguf));
        }
        Err(TokenizerError::NoTokenizer {
            model: model.display().to_string(),
            sibling: sibling.display().to_string(),
        })
    }

    /// Build from a GGUF's `tokenizer.ggml.*` keys.
    pub fn from_gguf(g: &GgufFile) -> Result<Self, TokenizerError> {
        let file = g.path.clone().unwrap_or_else(|| "<gguf>".into());
        let model = g
            .get("tokenizer.ggml.model")
            .ok_or_else(|| missing(&file, "tokenizer.ggml.model"))?
            .as_str()
            .ok_or_else(|| wrong(&file, "tokenizer.ggml.model", "a string"))?;
        if model != "gpt2" {
            return Err(TokenizerError::UnsupportedModel {
                file,
                model: model.into(),
            });
        }
        let pre = pre_from_meta(g, &file)?;
        let tokens =
            string_array(g, &file, "tokenizer.ggml.tokens")?.ok_or_else(|| missing(&file, "tokenizer.ggml.tokens"))?;
        let merges =
            string_array(g, &file, "tokenizer.ggml.merges")?.ok_or_else(|| missing(&file, "tokenizer.ggml.merges"))?;
        let types = match g.get("tokenizer.ggml.token_type") {
            None => vec![TokenType::Normal; tokens.len()],
            Some(v) => v
                .as_array()
                .ok_or_else(|| wrong(&file, "tokenizer.ggml.token_type", "an array"))?
                .iter()
                .map(|x| x.as_i64().map(TokenType::from_i64))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| wrong(&file, "tokenizer.ggml.token_type", "an integer array"))?,
        };
        let mut v = VocabData {
            source: file.clone(),
            tokens,
            types,
            merges,
            pre,
            // llama.cpp's defaults for "gpt2" vocabularies: BOS = EOS = 11.
            bos: Some(11),
            eos: Some(11),
            eot: None,
            eom: None,
            add_bos: None,
            add_eos: None,
            chat_template: None,
        };
        apply_meta_overrides(&mut v, g, &file)?;
        Tokenizer::from_vocab(v)
    }

    /// Build from an HF tokenizer.json (BPE model). `meta` (the model's GGUF) supplies the pre-tokenizer,
    /// special ids and add_bos/add_eos; without it the pre-tokenizer is DEFAULT (what bitnet.cpp uses for a
    /// GGUF without `tokenizer.ggml.pre`) and BOS/EOS are found by their usual texts.
    pub fn from_json_file(path: &Path, meta: Option<&GgufFile>) -> Result<Self, TokenizerError> {
        let mut v = read_tokenizer_json(path)?;
        if let Some(g) = meta {
            let file = g.path.clone().unwrap_or_else(|| "<gguf>".into());
            if let Some(n_vocab) = model_n_vocab(g).filter(|&n| n != v.tokens.len()) {
                return Err(TokenizerError::VocabMismatch {
                    json: path.display().to_string(),
                    tokens: v.tokens.len(),
                    model: file,
                    n_vocab,
                });
            }
            v.pre = pre_from_meta(g, &file)?;
            apply_meta_overrides(&mut v, g, &file)?;
        }
        Tokenizer::from_vocab(v)
    }
}

/// The model's vocabulary size as its weights see it: the rows of `token_embd.weight` (every architecture
/// has one), else `{arch}.vocab_size`. `None` for a vocabulary-only GGUF.
fn model_n_vocab(g: &GgufFile) -> Option<usize> {
    if let Some(t) = g.tensor("token_embd.weight") {
        return t.dims.get(1).and_then(|&d| usize::try_from(d).ok());
    }
    let arch = g.get_str("general.architecture")?;
    g.get(&format!("{arch}.vocab_size"))?
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
}

/// `<dir of model>/tokenizer.json`.
pub fn sibling_json(model: &Path) -> PathBuf {
    model.parent().unwrap_or(Path::new(".")).join("tokenizer.json")
}

fn missing(file: &str, key: &str) -> TokenizerError {
    TokenizerError::MissingKey {
        file: file.into(),
        key: key.into(),
    }
}

fn wrong(file: &str, key: &str, expected: &'static str) -> TokenizerError {
    TokenizerError::WrongType {
        file: file.into(),
        key: key.into(),
        expected,
    }
}

fn pre_from_meta(g: &GgufFile, file: &str) -> Result<PreType, TokenizerError> {
    let pre = match g.get("tokenizer.ggml.pre") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| wrong(file, "tokenizer.ggml.pre", "a string"))?,
        ),
    };
    PreType::from_gguf(pre).ok_or_else(|| {
        let pre = pre.unwrap_or_default().to_string();
        if KNOWN_UNIMPLEMENTED_PRE.contains(&pre.as_str()) {
            TokenizerError::UnsupportedPre { file: file.into(), pre }
        } else {
            TokenizerError::UnknownPre { file: file.into(), pre }
        }
    })
}

fn string_array(g: &GgufFile, file: &str, key: &str) -> Result<Option<Vec<String>>, TokenizerError> {
    let Some(v) = g.get(key) else { return Ok(None) };
    let arr = v.as_array().ok_or_else(|| wrong(file, key, "an array of strings"))?;
    arr.iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()
        .map(Some)
        .ok_or_else(|| wrong(file, key, "an array of strings"))
}

/// Special ids (ignored when out of range, as llama.cpp does after a warning), add_bos/add_eos, template.
fn apply_meta_overrides(v: &mut VocabData, g: &GgufFile, file: &str) -> Result<(), TokenizerError> {
    let n = v.tokens.len() as u64;
    let id = |key: &str| -> Result<Option<u32>, TokenizerError> {
        match g.get(key) {
            None => Ok(None),
            Some(x) => {
                let i = x.as_u64().ok_or_else(|| wrong(file, key, "a non-negative integer"))?;
                Ok((i < n).then_some(i as u32))
            }
        }
    };
    for (key, slot) in [
        ("tokenizer.ggml.bos_token_id", &mut v.bos),
        ("tokenizer.ggml.eos_token_id", &mut v.eos),
        ("tokenizer.ggml.eot_token_id", &mut v.eot),
        ("tokenizer.ggml.eom_token_id", &mut v.eom),
    ] {
        if let Some(i) = id(key)? {
            *slot = Some(i);
        }
    }
    let flag = |key: &str| -> Result<Option<bool>, TokenizerError> {
        g.get(key)
            .map(|x| x.as_bool().ok_or_else(|| wrong(file, key, "a bool")))
            .transpose()
    };
    if let Some(b) = flag("tokenizer.ggml.add_bos_token")? {
        v.add_bos = Some(b);
    }
    if let Some(b) = flag("tokenizer.ggml.add_eos_token")? {
        v.add_eos = Some(b);
    }
    if let Some(t) = g.get("tokenizer.chat_template").and_then(Value::as_str) {
        v.chat_template = Some(t.to_string());
    }
    Ok(())
}

/// Read an HF BPE tokenizer.json into [`VocabData`] (pre-tokenizer DEFAULT, BOS/EOS by usual texts).
pub fn read_tokenizer_json(path: &Path) -> Result<VocabData, TokenizerError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| TokenizerError::Io {
        path: shown.clone(),
        msg: e.to_string(),
    })?;
    tokenizer_json_from_str(&text, &shown)
}

/// [`read_tokenizer_json`] of text already read; `source` names it in errors.
pub fn tokenizer_json_from_str(text: &str, source: &str) -> Result<VocabData, TokenizerError> {
    let json: Json = serde_json::from_str(text).map_err(|e| TokenizerError::Json {
        path: source.into(),
        msg: e.to_string(),
    })?;
    vocab_from_json(&json, source)
}

/// The vocabulary of an HF BPE tokenizer.json, mapped as `make_vocab_gguf.py` maps it: model vocab
/// tokens are NORMAL, added tokens CONTROL when `special`, else USER_DEFINED; merges as "a b" strings.
fn vocab_from_json(j: &Json, path: &str) -> Result<VocabData, TokenizerError> {
    let bad = |msg: &str| TokenizerError::Json {
        path: path.into(),
        msg: msg.into(),
    };
    let model = j.get("model").ok_or_else(|| bad("no \"model\""))?;
    if let Some(t) = model.get("type").and_then(Json::as_str) {
        if t != "BPE" {
            return Err(bad(&format!("model.type is {t:?}, only \"BPE\" is supported")));
        }
    }
    let vocab = model
        .get("vocab")
        .and_then(Json::as_object)
        .ok_or_else(|| bad("model.vocab is not an object"))?;
    let mut entries: Vec<(u32, String, TokenType)> = Vec::with_capacity(vocab.len());
    for (s, i) in vocab {
        let i = i
            .as_u64()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| bad(&format!("model.vocab[{s:?}] is not a token id")))?;
        entries.push((i, s.clone(), TokenType::Normal));
    }
    for a in j
        .get("added_tokens")
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let i = a
            .get("id")
            .and_then(Json::as_u64)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| bad("added_tokens[].id"))?;
        let s = a
            .get("content")
            .and_then(Json::as_str)
            .ok_or_else(|| bad("added_tokens[].content"))?;
        let special = a.get("special").and_then(Json::as_bool).unwrap_or(false);
        entries.push((
            i,
            s.to_string(),
            if special {
                TokenType::Control
            } else {
                TokenType::UserDefined
            },
        ));
    }
    let n = entries.iter().map(|e| e.0 as usize + 1).max().unwrap_or(0);
    let mut tokens: Vec<Option<String>> = vec![None; n];
    let mut types = vec![TokenType::Normal; n];
    for (i, s, t) in entries {
        tokens[i as usize] = Some(s);
        types[i as usize] = t;
    }
    let tokens = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            t.ok_or(TokenizerError::MissingTokenId {
                file: path.into(),
                id: i as u32,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let merges = model
        .get("merges")
        .and_then(Json::as_array)
        .ok_or_else(|| bad("model.merges is not an array"))?
        .iter()
        .map(|m| match m {
            Json::String(s) => Some(s.clone()),
            Json::Array(p) => p
                .iter()
                .map(Json::as_str)
                .collect::<Option<Vec<_>>>()
                .map(|p| p.join(" ")),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("model.merges holds something other than strings or string pairs"))?;
    let find = |texts: &[&str]| {
        texts
            .iter()
            .find_map(|t| tokens.iter().position(|x| x == t).map(|i| i as u32))
    };
    let bos = find(&["<|begin_of_text|>", "<s>", "<|startoftext|>"]);
    let eos = find(&["<|end_of_text|>", "</s>", "<|endoftext|>"]);
    Ok(VocabData {
        source: path.into(),
        tokens,
        types,
        merges,
        pre: PreType::Default,
        bos,
        eos,
        eot: None,
        eom: None,
        add_bos: Some(bos.is_some()),
        add_eos: None,
        chat_template: None,
    })
}
