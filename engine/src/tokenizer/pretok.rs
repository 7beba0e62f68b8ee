//! Pre-tokenizers of llama.cpp's BPE vocabularies, built from the `tokenizers` crate's `Split` and
//! `ByteLevel` pre-tokenizers.
//!
//! llama.cpp (`unicode.cpp: unicode_regex_split`) applies a *sequence* of regexes; each one splits every
//! piece produced by the previous one, and both the matches and the text between matches become pieces
//! (`unicode_regex_split_stl`). That is exactly `Split(regex, Isolated)` chained in a `Sequence`. The GPT-2
//! and LLaMA-3 regexes are run in llama.cpp by hand-written matchers (`unicode_regex_split_custom_gpt2`,
//! `..._llama3`) that give the same pieces as the regexes; the DEFAULT sequence's punctuation and digit
//! regexes run through `std::regex` on a "collapsed" text whose classes equal Unicode `\p{P}`/`\p{N}`.
//! Finally every piece is mapped byte-by-byte to GPT-2's printable alphabet (`ByteLevel`, no regex).

use std::sync::{Arc, OnceLock};

use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{
    OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, PreTokenizerWrapper, SplitDelimiterBehavior,
};

/// GPT-2's pre-tokenizer regex (`LLAMA_VOCAB_PRE_TYPE_GPT2`, and the 2nd step of DEFAULT).
pub const GPT2_REGEX: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";

/// LLaMA-3's regex in llama.cpp's adapted form (explicit case classes instead of `(?i:...)`, which in a
/// Unicode regex engine would also fold e.g. `ſ` into `s`; llama.cpp's matcher only lowercases ASCII).
pub const LLAMA3_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// llama.cpp's DEFAULT sequence (used when `tokenizer.ggml.pre` is absent, as in the official 2B-4T file).
pub const DEFAULT_REGEXES: [&str; 4] = [r"[\p{P}\$\+<=>\^~\|]+", GPT2_REGEX, r"\p{N}+", r"[0-9][0-9][0-9]"];

/// The punctuation step of the Falcon pre-tokenizers: DEFAULT's class plus the backtick (category Sk).
pub const FALCON_PUNCT_REGEX: &str = r"[\p{P}\$\+<=>\^~\|`]+";

/// Which pre-tokenizer a vocabulary uses (llama.cpp's `llama_vocab_pre_type`, the BitNet-relevant subset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreType {
    /// `tokenizer.ggml.pre` absent or `"default"`: the four-regex DEFAULT sequence.
    Default,
    /// `"gpt-2"` (and the other names llama.cpp maps to GPT2).
    Gpt2,
    /// `"llama3"`, `"llama-v3"`, `"llama-bpe"`: LLaMA-3 regex; also sets ignore_merges and add_bos.
    Llama3,
    /// `"falcon"`: punctuation (with backtick), GPT-2, then digit runs split in threes.
    Falcon,
    /// `"falcon3"` and Falcon-E's `"falcon_e"` (the fork gives both the same regexes): punctuation (with
    /// backtick), GPT-2, then every digit alone.
    Falcon3,
}

impl PreType {
    /// Map a `tokenizer.ggml.pre` value as llama.cpp's `llm_load_vocab` does; `None` for a name it would
    /// also accept but whose regexes are not implemented here, or one it rejects.
    pub fn from_gguf(pre: Option<&str>) -> Option<PreType> {
        match pre {
            None | Some("") | Some("default") => Some(PreType::Default),
            Some("llama3" | "llama-v3" | "llama-bpe") => Some(PreType::Llama3),
            Some("falcon") => Some(PreType::Falcon),
            Some("falcon3" | "falcon_e") => Some(PreType::Falcon3),
            Some(
                "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "jina-v2-es" | "jina-v2-de" | "jina-v2-code" | "mpt"
                | "olmo" | "jais",
            ) => Some(PreType::Gpt2),
            Some(_) => None,
        }
    }

    /// The name used in receipts and hashes.
    pub fn name(self) -> &'static str {
        match self {
            PreType::Default => "default",
            PreType::Gpt2 => "gpt-2",
            PreType::Llama3 => "llama3",
            PreType::Falcon => "falcon",
            PreType::Falcon3 => "falcon3",
        }
    }

    /// The regexes llama.cpp applies, in order.
    pub fn regexes(self) -> &'static [&'static str] {
        match self {
            PreType::Default => &DEFAULT_REGEXES,
            PreType::Gpt2 => &[GPT2_REGEX],
            PreType::Llama3 => &[LLAMA3_REGEX],
            PreType::Falcon => &[FALCON_PUNCT_REGEX, GPT2_REGEX, r"[0-9][0-9][0-9]"],
            PreType::Falcon3 => &[FALCON_PUNCT_REGEX, GPT2_REGEX, r"[0-9]"],
        }
    }
}

/// A compiled pre-tokenizer: regex splits then the byte-level alphabet.
pub struct PreTokenizerChain {
    inner: Sequence,
}

impl std::fmt::Debug for PreTokenizerChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreTokenizerChain").finish_non_exhaustive()
    }
}

impl PreTokenizerChain {
    /// Compile the chain for `pre`. Fails only if a regex does not compile (a bug, reported as text).
    pub fn new(pre: PreType) -> Result<Self, String> {
        let mut steps: Vec<PreTokenizerWrapper> = Vec::new();
        for re in pre.regexes() {
            let split = Split::new(
                SplitPattern::Regex((*re).to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| format!("pre-tokenizer regex {re:?}: {e}"))?;
            steps.push(PreTokenizerWrapper::Split(split));
        }
        steps.push(PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, false)));
        Ok(Self {
            inner: Sequence::new(steps),
        })
    }

    /// The process-wide compiled chain for `pre`: compiling the Unicode regexes costs tens of milliseconds,
    /// far more than loading a vocabulary, and a chain holds no per-vocabulary state.
    pub fn shared(pre: PreType) -> Result<Arc<Self>, String> {
        static CHAINS: [OnceLock<Result<Arc<PreTokenizerChain>, String>>; 5] = [const { OnceLock::new() }; 5];
        let slot = match pre {
            PreType::Default => 0,
            PreType::Gpt2 => 1,
            PreType::Llama3 => 2,
            PreType::Falcon => 3,
            PreType::Falcon3 => 4,
        };
        CHAINS[slot].get_or_init(|| Self::new(pre).map(Arc::new)).clone()
    }

    /// Split `text` into byte-level-encoded words (the input of the BPE merge loop).
    pub fn words(&self, text: &str) -> Result<Vec<String>, String> {
        let mut pts = PreTokenizedString::from(text);
        self.inner
            .pre_tokenize(&mut pts)
            .map_err(|e| format!("pre-tokenizing: {e}"))?;
        Ok(pts
            .get_splits(OffsetReferential::Original, OffsetType::None)
            .into_iter()
            .map(|(s, _, _)| s.to_string())
            .filter(|s| !s.is_empty())
            .collect())
    }
}

/// GPT-2's byte → printable char table (`unicode_byte_to_utf8`): printable Latin-1 bytes map to
/// themselves, the other 68 bytes to U+0100.. in byte order.
pub fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..256u32 {
        let printable = (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        table[b as usize] = if printable {
            char::from_u32(b).unwrap_or('\0')
        } else {
            let c = char::from_u32(next).unwrap_or('\0');
            next += 1;
            c
        };
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(pre: PreType, text: &str) -> Vec<String> {
        PreTokenizerChain::new(pre).unwrap().words(text).unwrap()
    }

    #[test]
    fn falcon3_splits_every_digit_and_isolates_backticks() {
        assert_eq!(
            words(PreType::Falcon3, "x=`a` 2024"),
            ["x", "=`", "a", "`", "Ġ", "2", "0", "2", "4"]
        );
        assert_eq!(PreType::from_gguf(Some("falcon_e")), Some(PreType::Falcon3));
        assert_eq!(words(PreType::Falcon, "12345"), ["123", "45"]);
    }

    #[test]
    fn default_splits_punctuation_then_digits_in_threes() {
        // [\p{P}...]+ isolates "." and ","; \p{N}+ then [0-9]{3} split the digit run.
        assert_eq!(
            words(PreType::Default, "3.14159 and 2,718"),
            ["3", ".", "141", "59", "Ġand", "Ġ", "2", ",", "718"]
        );
    }

    #[test]
    fn gpt2_keeps_space_before_digits() {
        assert_eq!(words(PreType::Gpt2, "and 2,718"), ["and", "Ġ2", ",", "718"]);
    }

    #[test]
    fn llama3_contractions_are_case_insensitive_and_digits_grouped() {
        assert_eq!(words(PreType::Llama3, "IT'S 12345"), ["IT", "'S", "Ġ", "123", "45"]);
    }

    #[test]
    fn byte_table_matches_gpt2() {
        let t = byte_to_char_table();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[0], 'Ā');
        assert_eq!(t[b'A' as usize], 'A');
        let mut seen: Vec<char> = t.to_vec();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 256);
    }

    #[test]
    fn pre_names_follow_llama_cpp() {
        assert_eq!(PreType::from_gguf(None), Some(PreType::Default));
        assert_eq!(PreType::from_gguf(Some("llama-bpe")), Some(PreType::Llama3));
        assert_eq!(PreType::from_gguf(Some("gpt-2")), Some(PreType::Gpt2));
        assert_eq!(PreType::from_gguf(Some("no-such-pre")), None);
    }
}
