//! llama.cpp's byte-level BPE (`llama-vocab.cpp: llm_tokenizer_bpe::tokenize`) and its special-token
//! partition (`tokenizer_st_partition`), ported rather than delegated to `tokenizers::models::bpe::BPE`
//! because that model differs from llama.cpp where vocabularies are irregular: it rejects merges whose
//! parts or result are missing from the vocabulary (llama.cpp merges them and then falls back to
//! single-byte tokens), lets a later duplicate merge overwrite an earlier rank (llama.cpp keeps the
//! first), and its added-token matcher is leftmost-longest whereas llama.cpp splits by one special token
//! at a time, longest first.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

/// Token attributes from `tokenizer.ggml.token_type` (llama.cpp's `llama_token_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    Undefined,
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    /// From the GGUF integer (unknown values map to `Undefined`, as llama.cpp does).
    pub fn from_i64(v: i64) -> TokenType {
        match v {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Undefined,
        }
    }

    /// The GGUF integer.
    pub fn to_i32(self) -> i32 {
        match self {
            TokenType::Undefined => 0,
            TokenType::Normal => 1,
            TokenType::Unknown => 2,
            TokenType::Control => 3,
            TokenType::UserDefined => 4,
            TokenType::Unused => 5,
            TokenType::Byte => 6,
        }
    }

    /// Tokens llama.cpp matches verbatim in text (`cache_special_tokens`).
    pub fn is_special_cached(self) -> bool {
        matches!(self, TokenType::Control | TokenType::UserDefined | TokenType::Unknown)
    }
}

/// Merge ranks keyed by (left, right); the first occurrence of a pair wins (`std::map::emplace`).
#[derive(Clone, Debug, Default)]
pub struct MergeRanks {
    ranks: HashMap<(String, String), u32>,
}

impl MergeRanks {
    /// Parse `"left right"` strings, split at the first space after position 0 (a merge with no such
    /// space becomes the pair ("", ""), which never matches, as in llama.cpp).
    pub fn from_strings<'a>(merges: impl IntoIterator<Item = &'a str>) -> Self {
        let mut ranks = HashMap::new();
        for (i, m) in merges.into_iter().enumerate() {
            // Byte search from byte 1 (`find(' ', 1)`); a space is ASCII, so both halves stay valid UTF-8.
            let pair = match m.bytes().skip(1).position(|b| b == b' ') {
                Some(p) => (m[..p + 1].to_string(), m[p + 2..].to_string()),
                None => (String::new(), String::new()),
            };
            ranks.entry(pair).or_insert(i as u32);
        }
        Self { ranks }
    }

    fn rank(&self, left: &str, right: &str) -> Option<u32> {
        // The map is keyed by owned strings; a lookup allocates, which is cheap next to the regexes.
        self.ranks.get(&(left.to_string(), right.to_string())).copied()
    }
}

/// One candidate merge in the priority queue: lowest rank first, then leftmost.
#[derive(Debug, PartialEq, Eq)]
struct Bigram {
    rank: u32,
    left: usize,
    right: usize,
    text: String,
}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        other.rank.cmp(&self.rank).then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Clone, Copy, Debug)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// Merge one byte-level word and append its token ids (`llm_tokenizer_bpe::tokenize`, per word).
/// Symbols that end up outside the vocabulary are emitted byte by byte, skipping bytes that are not
/// tokens themselves, exactly as llama.cpp does.
pub fn encode_word(
    word: &str,
    token_to_id: &HashMap<String, u32>,
    merges: &MergeRanks,
    ignore_merges: bool,
    out: &mut Vec<u32>,
) {
    if word.is_empty() {
        return;
    }
    if ignore_merges {
        if let Some(&id) = token_to_id.get(word) {
            out.push(id);
            return;
        }
    }
    let mut symbols: Vec<Symbol> = Vec::new();
    let char_starts: Vec<usize> = word.char_indices().map(|(i, _)| i).collect();
    for (k, &start) in char_starts.iter().enumerate() {
        let end = char_starts.get(k + 1).copied().unwrap_or(word.len());
        symbols.push(Symbol {
            start,
            len: end - start,
            prev: k.checked_sub(1),
            next: (k + 1 < char_starts.len()).then_some(k + 1),
        });
    }
    let text_of = |s: &Symbol| &word[s.start..s.start + s.len];
    let mut queue = BinaryHeap::new();
    let push = |queue: &mut BinaryHeap<Bigram>, symbols: &[Symbol], left: Option<usize>, right: Option<usize>| {
        let (Some(l), Some(r)) = (left, right) else { return };
        let (lt, rt) = (text_of(&symbols[l]), text_of(&symbols[r]));
        if let Some(rank) = merges.rank(lt, rt) {
            queue.push(Bigram {
                rank,
                left: l,
                right: r,
                text: format!("{lt}{rt}"),
            });
        }
    };
    for i in 1..symbols.len() {
        push(&mut queue, &symbols, Some(i - 1), Some(i));
    }
    while let Some(b) = queue.pop() {
        let (l, r) = (symbols[b.left], symbols[b.right]);
        if l.len == 0 || r.len == 0 {
            continue;
        }
        let (lt, rt) = (text_of(&l), text_of(&r));
        if lt.len() + rt.len() != b.text.len() || !b.text.starts_with(lt) || !b.text.ends_with(rt) {
            continue; // outdated: the pair's texts changed since it was queued
        }
        symbols[b.left].len += r.len;
        symbols[b.right].len = 0;
        symbols[b.left].next = r.next;
        if let Some(n) = r.next {
            symbols[n].prev = Some(b.left);
        }
        push(&mut queue, &symbols, symbols[b.left].prev, Some(b.left));
        push(&mut queue, &symbols, Some(b.left), symbols[b.left].next);
    }
    for s in symbols.iter().filter(|s| s.len > 0) {
        let piece = text_of(s);
        match token_to_id.get(piece) {
            Some(&id) => out.push(id),
            None => {
                for b in piece.bytes() {
                    // Single-byte strings are only valid UTF-8 for ASCII; others can never be tokens.
                    if b.is_ascii() {
                        if let Some(&id) = token_to_id.get(&(b as char).to_string()) {
                            out.push(id);
                        }
                    }
                }
            }
        }
    }
}

/// A piece of input after the special-token partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

/// Split `text` at occurrences of special tokens (`tokenizer_st_partition`). `specials` must be sorted
/// longest text first; each is applied to every remaining text fragment, left to right, without overlap.
/// Without `parse_special` only user-defined tokens are matched.
pub fn partition<'a>(text: &'a str, specials: &[(String, u32, TokenType)], parse_special: bool) -> Vec<Fragment<'a>> {
    let mut frags = vec![Fragment::Text(text)];
    if text.is_empty() {
        return Vec::new();
    }
    for (tok, id, ty) in specials {
        if tok.is_empty() || (!parse_special && matches!(ty, TokenType::Control | TokenType::Unknown)) {
            continue;
        }
        let mut next = Vec::with_capacity(frags.len());
        for f in frags {
            let Fragment::Text(s) = f else {
                next.push(f);
                continue;
            };
            let mut rest = s;
            while let Some(p) = rest.find(tok.as_str()) {
                if p > 0 {
                    next.push(Fragment::Text(&rest[..p]));
                }
                next.push(Fragment::Token(*id));
                rest = &rest[p + tok.len()..];
            }
            if !rest.is_empty() {
                next.push(Fragment::Text(rest));
            }
        }
        frags = next;
    }
    frags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(tokens: &[&str]) -> HashMap<String, u32> {
        tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), i as u32))
            .collect()
    }

    #[test]
    fn lowest_rank_merges_first() {
        let v = vocab(&["a", "b", "c", "ab", "bc", "abc"]);
        let m = MergeRanks::from_strings(["b c", "a b", "a bc"]);
        let mut out = Vec::new();
        encode_word("abc", &v, &m, false, &mut out);
        assert_eq!(out, [5]); // b+c first (rank 0), then a+bc
        let m2 = MergeRanks::from_strings(["a b", "b c"]);
        out.clear();
        encode_word("abc", &v, &m2, false, &mut out);
        assert_eq!(out, [3, 2]); // ab, c: no "ab c" merge
    }

    #[test]
    fn ties_go_to_the_leftmost_pair() {
        let v = vocab(&["a", "aa"]);
        let m = MergeRanks::from_strings(["a a"]);
        let mut out = Vec::new();
        encode_word("aaa", &v, &m, false, &mut out);
        assert_eq!(out, [1, 0]);
    }

    #[test]
    fn first_duplicate_merge_keeps_its_rank() {
        let m = MergeRanks::from_strings(["x y", "a b", "x y", "Ġ t", "  x"]);
        assert_eq!(m.rank("x", "y"), Some(0));
        assert_eq!(m.rank("Ġ", "t"), Some(3));
        assert_eq!(m.rank(" ", "x"), Some(4)); // split at the first space after byte 0
    }

    #[test]
    fn out_of_vocab_merge_falls_back_to_ascii_bytes() {
        let v = vocab(&["a", "b"]);
        let m = MergeRanks::from_strings(["a b"]);
        let mut out = Vec::new();
        encode_word("ab", &v, &m, false, &mut out);
        assert_eq!(out, [0, 1]);
    }

    #[test]
    fn ignore_merges_takes_whole_word() {
        let v = vocab(&["a", "b", "ab"]);
        let m = MergeRanks::default();
        let mut out = Vec::new();
        encode_word("ab", &v, &m, true, &mut out);
        assert_eq!(out, [2]);
        out.clear();
        encode_word("ab", &v, &m, false, &mut out);
        assert_eq!(out, [0, 1]);
    }

    #[test]
    fn partition_longest_special_first() {
        let specials = vec![
            ("<|eot|>x".to_string(), 7, TokenType::Control),
            ("<|eot|>".to_string(), 5, TokenType::Control),
        ];
        let f = partition("a<|eot|>b<|eot|>x", &specials, true);
        assert_eq!(
            f,
            [
                Fragment::Text("a"),
                Fragment::Token(5),
                Fragment::Text("b"),
                Fragment::Token(7)
            ]
        );
        let f = partition("a<|eot|>b", &specials, false);
        assert_eq!(f, [Fragment::Text("a<|eot|>b")]);
    }
}
