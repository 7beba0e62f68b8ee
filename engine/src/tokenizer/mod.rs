//! Tokenizer built from GGUF metadata (the `tokenizers` crate), chat templates.
