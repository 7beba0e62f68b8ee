//! Typed tokenizer errors; each names the file and the metadata field involved.

use thiserror::Error;

use crate::gguf::LoadError;

#[derive(Debug, Error)]
pub enum TokenizerError {
    /// The model file could not be read (its Display already includes the cause, so no `source`).
    #[error("{0}")]
    Gguf(LoadError),
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    #[error("{path}: not valid tokenizer JSON: {msg}")]
    Json { path: String, msg: String },
    #[error("{file}: missing {key}")]
    MissingKey { file: String, key: String },
    #[error("{file}: {key} is not {expected}")]
    WrongType {
        file: String,
        key: String,
        expected: &'static str,
    },
    #[error("{file}: tokenizer.ggml.model = {model:?} is not supported (only \"gpt2\" byte-level BPE)")]
    UnsupportedModel { file: String, model: String },
    #[error("{file}: unknown pre-tokenizer type tokenizer.ggml.pre = {pre:?} (llama.cpp refuses to load it)")]
    UnknownPre { file: String, pre: String },
    #[error("{file}: tokenizer.ggml.pre = {pre:?} is a llama.cpp pre-tokenizer this engine does not implement")]
    UnsupportedPre { file: String, pre: String },
    #[error("{file}: {key} has {got} entries, expected {expected} (one per token)")]
    LengthMismatch {
        file: String,
        key: String,
        expected: usize,
        got: usize,
    },
    #[error("{file}: token {text:?} appears twice (ids {first} and {second})")]
    DuplicateToken {
        file: String,
        text: String,
        first: u32,
        second: u32,
    },
    #[error("{file}: token id {id} is missing from the vocabulary")]
    MissingTokenId { file: String, id: u32 },
    #[error(
        "{model}: no tokenizer: the GGUF has no tokenizer.ggml.tokens and there is no {sibling}; \
         pass --tokenizer tokenizer.json"
    )]
    NoTokenizer { model: String, sibling: String },
    #[error(
        "{json} has {tokens} tokens but {model} has a vocabulary of {n_vocab} (token_embd.weight rows): \
         it is not this model's tokenizer (bitnet.cpp requires one token per row)"
    )]
    VocabMismatch {
        json: String,
        tokens: usize,
        model: String,
        n_vocab: usize,
    },
    #[error("{file}: add_bos_token is set but there is no valid BOS token id")]
    NoBos { file: String },
    #[error("{file}: add_eos_token is set but there is no valid EOS token id")]
    NoEos { file: String },
    #[error("token id {id} is out of range (vocabulary has {n_vocab} tokens)")]
    BadTokenId { id: u32, n_vocab: usize },
    #[error("pre-tokenizer: {0}")]
    PreTokenizer(String),
}

impl From<LoadError> for TokenizerError {
    fn from(e: LoadError) -> Self {
        TokenizerError::Gguf(e)
    }
}
