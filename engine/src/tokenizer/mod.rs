//! Tokenizer: llama.cpp's byte-level BPE (`tokenizer.ggml.model = "gpt2"`) built from GGUF metadata or
//! from an HF `tokenizer.json`, giving the same token ids as bitnet.cpp; detokenization; chat templates.
//!
//! Pipeline (llama.cpp `llama_tokenize_impl`, BPE branch): special-token partition (longest token first,
//! control tokens only with `parse_special`) → pre-tokenizer regex sequence chosen by `tokenizer.ggml.pre`
//! ([`pretok`], built from the `tokenizers` crate) → byte-level alphabet → BPE merges ([`bpe`]) → BOS/EOS
//! per `add_bos_token`/`add_eos_token`.

mod bpe;
pub mod chat;
mod error;
mod load;
pub mod pretok;

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

pub use bpe::TokenType;
pub use error::TokenizerError;
pub use load::{read_tokenizer_json, sibling_json, tokenizer_json_from_str};
pub use pretok::PreType;

use bpe::{Fragment, MergeRanks};
use pretok::PreTokenizerChain;

/// Texts llama.cpp auto-detects as end-of-turn when `tokenizer.ggml.eot_token_id` is absent (spec §7.1).
pub const EOT_TEXTS: [&str; 7] = [
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<EOT>",
    "<｜end▁of▁sentence｜>",
];

/// Everything that defines a BPE vocabulary, however it was read.
#[derive(Clone, Debug)]
pub struct VocabData {
    /// Where it came from (shown in errors).
    pub source: String,
    pub tokens: Vec<String>,
    pub types: Vec<TokenType>,
    pub merges: Vec<String>,
    pub pre: PreType,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    /// `None`: llama.cpp's default for the pre-tokenizer (true for LLaMA-3, else false).
    pub add_bos: Option<bool>,
    pub add_eos: Option<bool>,
    pub chat_template: Option<String>,
}

/// A loaded tokenizer. Cheap to share by reference; encoding takes `&self`.
pub struct Tokenizer {
    source: String,
    tokens: Vec<String>,
    types: Vec<TokenType>,
    token_to_id: HashMap<String, u32>,
    merges: MergeRanks,
    pre: PreType,
    chain: Arc<PreTokenizerChain>,
    ignore_merges: bool,
    add_bos: bool,
    add_eos: bool,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    eom: Option<u32>,
    eog: Vec<u32>,
    /// Tokens matched verbatim in text, longest first.
    specials: Vec<(String, u32, TokenType)>,
    char_to_byte: HashMap<char, u8>,
    chat_template: Option<String>,
    sha256: String,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("source", &self.source)
            .field("n_vocab", &self.tokens.len())
            .field("pre", &self.pre)
            .field("add_bos", &self.add_bos)
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("eot", &self.eot)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Build from vocabulary data, applying llama.cpp's `llm_load_vocab` rules (EOT auto-detection,
    /// add_bos default, duplicate tokens rejected).
    pub fn from_vocab(v: VocabData) -> Result<Self, TokenizerError> {
        let file = v.source.clone();
        if v.types.len() != v.tokens.len() {
            return Err(TokenizerError::LengthMismatch {
                file,
                key: "tokenizer.ggml.token_type".into(),
                expected: v.tokens.len(),
                got: v.types.len(),
            });
        }
        let mut token_to_id = HashMap::with_capacity(v.tokens.len());
        for (i, t) in v.tokens.iter().enumerate() {
            if let Some(first) = token_to_id.insert(t.clone(), i as u32) {
                return Err(TokenizerError::DuplicateToken {
                    file,
                    text: t.clone(),
                    first,
                    second: i as u32,
                });
            }
        }
        let n = v.tokens.len() as u32;
        let valid = |id: Option<u32>| id.filter(|&i| i < n);
        let eot = valid(v.eot).or_else(|| EOT_TEXTS.iter().find_map(|t| token_to_id.get(*t).copied()));
        let eom = valid(v.eom).or_else(|| token_to_id.get("<|eom_id|>").copied());
        let (bos, eos) = (valid(v.bos), valid(v.eos));
        let mut eog: Vec<u32> = [eos, eot, eom].into_iter().flatten().collect();
        eog.extend(
            EOT_TEXTS
                .iter()
                .chain(["<|eom_id|>"].iter())
                .filter_map(|t| token_to_id.get(*t).copied()),
        );
        eog.sort_unstable();
        eog.dedup();

        let mut specials: Vec<(String, u32, TokenType)> = (0..n)
            .filter(|&i| v.types[i as usize].is_special_cached())
            .map(|i| (v.tokens[i as usize].clone(), i, v.types[i as usize]))
            .collect();
        // llama.cpp sorts by length only (std::sort, unstable); ties broken by id here, deterministically.
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));

        let char_to_byte = pretok::byte_to_char_table()
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect();
        let is_llama3 = v.pre == PreType::Llama3;
        let add_bos = v.add_bos.unwrap_or(is_llama3);
        let add_eos = v.add_eos.unwrap_or(false);
        if add_bos && bos.is_none() {
            return Err(TokenizerError::NoBos { file });
        }
        if add_eos && eos.is_none() {
            return Err(TokenizerError::NoEos { file });
        }
        let chain = PreTokenizerChain::shared(v.pre).map_err(TokenizerError::PreTokenizer)?;
        let sha256 = defining_hash(&v, bos, eos, add_bos, add_eos);
        Ok(Self {
            merges: MergeRanks::from_strings(v.merges.iter().map(String::as_str)),
            source: v.source,
            tokens: v.tokens,
            types: v.types,
            token_to_id,
            pre: v.pre,
            chain,
            ignore_merges: is_llama3,
            add_bos,
            add_eos,
            bos,
            eos,
            eot,
            eom,
            eog,
            specials,
            char_to_byte,
            chat_template: v.chat_template,
            sha256,
        })
    }

    /// Tokenize like `llama_tokenize(text, add_special, parse_special)`: `add_special` prepends BOS
    /// (and appends EOS) when the vocabulary asks for it; `parse_special` turns control-token texts such
    /// as `<|eot_id|>` into their ids (user-defined tokens are always matched).
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>, TokenizerError> {
        let mut out = Vec::new();
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        for frag in bpe::partition(text, &self.specials, parse_special) {
            match frag {
                Fragment::Token(id) => out.push(id),
                Fragment::Text(s) => {
                    for word in self.chain.words(s).map_err(TokenizerError::PreTokenizer)? {
                        bpe::encode_word(&word, &self.token_to_id, &self.merges, self.ignore_merges, &mut out);
                    }
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        Ok(out)
    }

    /// The bytes a token prints as (`llama_token_to_piece`): normal tokens are decoded from the byte-level
    /// alphabet, user-defined tokens are printed verbatim, control/unknown tokens only with `special`,
    /// other types print nothing.
    pub fn token_to_piece(&self, id: u32, special: bool) -> Result<Vec<u8>, TokenizerError> {
        let text = self.tokens.get(id as usize).ok_or(TokenizerError::BadTokenId {
            id,
            n_vocab: self.tokens.len(),
        })?;
        Ok(match self.types[id as usize] {
            TokenType::Control | TokenType::Unknown if special => text.as_bytes().to_vec(),
            TokenType::UserDefined => text.as_bytes().to_vec(),
            TokenType::Normal => self.decode_byte_level(text),
            _ => Vec::new(),
        })
    }

    /// `llama_decode_text`: chars outside the byte alphabet become `[UNK_BYTE_0x..<text>]`, as in llama.cpp.
    fn decode_byte_level(&self, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            match self.char_to_byte.get(&c) {
                Some(&b) => out.push(b),
                None => {
                    out.extend_from_slice(b"[UNK_BYTE_0x");
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.extend_from_slice(format!("{b:02x}").as_bytes());
                    }
                    out.extend_from_slice(text.as_bytes());
                    out.push(b']');
                }
            }
        }
        out
    }

    /// Detokenize like `llama_detokenize(remove_special = false, unparse_special = special)`, including
    /// its BPE `clean_spaces` passes (" ," → ",", " 's" → "'s", ...). Invalid UTF-8 is replaced.
    pub fn decode(&self, ids: &[u32], special: bool) -> Result<String, TokenizerError> {
        let mut bytes = Vec::new();
        for &id in ids {
            bytes.extend(self.token_to_piece(id, special)?);
        }
        Ok(String::from_utf8_lossy(&clean_spaces(&bytes)).into_owned())
    }

    /// Each token's printed text (lossy UTF-8 per token; multi-byte characters split across tokens show
    /// as U+FFFD here — use [`StreamDecoder`] to print a stream).
    pub fn pieces(&self, ids: &[u32], special: bool) -> Result<Vec<String>, TokenizerError> {
        ids.iter()
            .map(|&id| Ok(String::from_utf8_lossy(&self.token_to_piece(id, special)?).into_owned()))
            .collect()
    }

    pub fn n_vocab(&self) -> usize {
        self.tokens.len()
    }
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }
    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }
    pub fn pre_type(&self) -> PreType {
        self.pre
    }
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }
    pub fn eot(&self) -> Option<u32> {
        self.eot
    }
    pub fn eom(&self) -> Option<u32> {
        self.eom
    }
    /// llama.cpp's `linefeed_id` for BPE vocabularies: the first token of tokenizing the text "Ċ"
    /// (U+010A, as llama.cpp literally does), used by the repeat penalty's `penalize_nl = false`.
    pub fn linefeed_id(&self) -> Option<u32> {
        self.encode("\u{010A}", false, false).ok()?.first().copied()
    }
    /// End-of-generation ids: eos, eot, eom and every token whose text is an auto-detected EOT text.
    pub fn eog_ids(&self) -> &[u32] {
        &self.eog
    }
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }
    /// `tokenizer.chat_template` from the GGUF, if any.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }
    /// Where the vocabulary was read from.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// sha256 (hex) of the data that defines tokenization: model, pre-tokenizer, tokens with their
    /// types, merges, special ids, add_bos/add_eos. Equal for a GGUF and a tokenizer.json that tokenize
    /// identically by construction.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

fn defining_hash(v: &VocabData, bos: Option<u32>, eos: Option<u32>, add_bos: bool, add_eos: bool) -> String {
    let mut h = Sha256::new();
    let id = |x: Option<u32>| x.map_or(-1i64, i64::from);
    h.update(
        format!(
            "bitnet-parity tokenizer v1\nmodel=gpt2\npre={}\nadd_bos={add_bos}\nadd_eos={add_eos}\nbos={}\neos={}\n",
            v.pre.name(),
            id(bos),
            id(eos)
        )
        .as_bytes(),
    );
    h.update((v.tokens.len() as u64).to_le_bytes());
    for (t, ty) in v.tokens.iter().zip(&v.types) {
        h.update((t.len() as u64).to_le_bytes());
        h.update(t.as_bytes());
        h.update(ty.to_i32().to_le_bytes());
    }
    h.update((v.merges.len() as u64).to_le_bytes());
    for m in &v.merges {
        h.update((m.len() as u64).to_le_bytes());
        h.update(m.as_bytes());
    }
    hex::encode(h.finalize())
}

/// llama.cpp's three `clean_spaces` passes over detokenized bytes.
fn clean_spaces(text: &[u8]) -> Vec<u8> {
    // Pass 1: " ?", " !", " .", " ," lose the space.
    let mut a: Vec<u8> = Vec::with_capacity(text.len());
    for (i, &x) in text.iter().enumerate() {
        if i > 0 && text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            a.pop();
        }
        a.push(x);
    }
    // Pass 2: a lone apostrophe between spaces loses both spaces.
    // The skipped space is zeroed first, as llama.cpp does, so it cannot start another match.
    let mut b: Vec<u8> = Vec::with_capacity(a.len());
    let mut i = 0;
    while i < a.len() {
        let x = a[i];
        if i > 0 && x == b'\'' && i + 1 < a.len() && a[i - 1] == b' ' && a[i + 1] == b' ' {
            b.pop();
            b.push(x);
            a[i + 1] = 0;
            i += 2;
            continue;
        }
        b.push(x);
        i += 1;
    }
    // Pass 3: " 's", " 'm", " 're", " 've" lose the space.
    let mut c: Vec<u8> = Vec::with_capacity(b.len());
    for (i, &x) in b.iter().enumerate() {
        if i > 0 && b[i - 1] == b' ' && x == b'\'' && i + 1 < b.len() {
            let x1 = b[i + 1];
            let x2 = b.get(i + 2).copied();
            if matches!(x1, b's' | b'm') || (x2 == Some(b'e') && matches!(x1, b'r' | b'v')) {
                c.pop();
            }
        }
        c.push(x);
    }
    c
}

/// Turns a stream of token ids into printable text, holding back bytes of an incomplete UTF-8
/// character until the token that completes it arrives (what llama-cli's output amounts to).
#[derive(Debug, Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one token; returns the text that became printable.
    pub fn push(&mut self, tok: &Tokenizer, id: u32, special: bool) -> Result<String, TokenizerError> {
        self.pending.extend(tok.token_to_piece(id, special)?);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(), // invalid, not merely incomplete: flush lossily
        };
        let out = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
        self.pending.drain(..valid);
        Ok(out)
    }

    /// Whatever is still held back (lossy).
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_spaces_matches_llama_cpp_passes() {
        assert_eq!(clean_spaces(b"a , b ."), b"a, b.");
        assert_eq!(clean_spaces(b"x ' y"), b"x'y");
        assert_eq!(clean_spaces(b"x ' ' y"), b"x'' y");
        assert_eq!(clean_spaces(b"it 's we 're I 'd"), b"it's we're I 'd");
    }
}
