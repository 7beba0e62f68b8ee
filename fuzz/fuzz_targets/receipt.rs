//! Fuzz receipt reading as `parity verify` and `parity report` do it: JSON, schema kind, schema
//! validation, digest and signature checks, typed decoding. Any input gives a value or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use receipts::schema::{validate, SchemaKind};
use receipts::seal::{check_digest, check_signature, decode};
use receipts::{BenchReceipt, ParityReceipt};

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(kind) = SchemaKind::of_document(&doc) else {
        return;
    };
    if validate(kind, &doc).is_err() {
        return;
    }
    let _ = check_digest(&doc);
    let _ = check_signature(&doc, None);
    match kind {
        SchemaKind::ParityReceipt => {
            if let Ok(r) = decode::<ParityReceipt>(doc) {
                let _ = receipts::gates::evaluate_gates(&r);
            }
        }
        SchemaKind::BenchReceipt => {
            let _ = decode::<BenchReceipt>(doc);
        }
        _ => {}
    }
});
