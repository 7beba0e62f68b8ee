//! Fuzz HF tokenizer.json parsing and the tokenizer built from it: any text gives a vocabulary or a typed
//! error; a vocabulary that loads encodes and decodes the input without panicking.
#![no_main]

use engine::tokenizer::{tokenizer_json_from_str, Tokenizer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(v) = tokenizer_json_from_str(text, "fuzz.json") else {
        return;
    };
    let Ok(tok) = Tokenizer::from_vocab(v) else { return };
    if let Ok(ids) = tok.encode(text, true, true) {
        let _ = tok.decode(&ids, true);
    }
});
