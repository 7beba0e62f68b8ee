//! Canonical JSON and the receipt digest.
//!
//! Canonical form: object keys sorted by their UTF-8 bytes, no whitespace, strings escaped as
//! `serde_json` escapes them, numbers printed as `serde_json` prints them (integers in decimal,
//! floats in the shortest form that reads back to the same `f64`). The digest is the SHA-256 of the
//! canonical form of the receipt with the top-level `digest` and `signature` removed.

use serde_json::Value;

/// Top-level fields the digest does not cover.
pub const UNDIGESTED: [&str; 2] = ["digest", "signature"];
/// Top-level fields that get no section digest of their own.
const NO_SECTION: [&str; 3] = ["digest", "signature", "section_digests"];

/// Canonical JSON text of `value`.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json's string escaping cannot fail for a &str.
    out.push_str(&Value::String(s.to_owned()).to_string());
}

pub use vocab::sha256_hex;

/// The digest of a receipt document: SHA-256 of the canonical JSON without `digest`/`signature`.
pub fn digest_of(doc: &Value) -> String {
    match doc {
        Value::Object(map) => {
            let mut m = map.clone();
            for k in UNDIGESTED {
                m.remove(k);
            }
            sha256_hex(canonical_json(&Value::Object(m)).as_bytes())
        }
        other => sha256_hex(canonical_json(other).as_bytes()),
    }
}

/// Section digests: SHA-256 of the canonical JSON of each top-level field except
/// `digest`, `signature` and `section_digests` itself.
pub fn section_digests_of(doc: &Value) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    if let Value::Object(map) = doc {
        for (k, v) in map {
            if !NO_SECTION.contains(&k.as_str()) {
                out.insert(k.clone(), Value::String(sha256_hex(canonical_json(v).as_bytes())));
            }
        }
    }
    out
}

/// Top-level fields whose recorded section digest differs from their contents (also fields added
/// or removed since sealing).
pub fn edited_sections(doc: &Value) -> Vec<String> {
    let computed = section_digests_of(doc);
    let recorded = doc.get("section_digests").and_then(Value::as_object);
    let mut edited = Vec::new();
    for (k, v) in &computed {
        if recorded.and_then(|r| r.get(k)) != Some(v) {
            edited.push(k.clone());
        }
    }
    if let Some(recorded) = recorded {
        for k in recorded.keys() {
            if !computed.contains_key(k) {
                edited.push(k.clone());
            }
        }
    }
    edited.sort();
    edited
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_recursively_and_drops_whitespace() {
        let v = json!({"b": [1, {"z": 1.5, "a": null}], "a": "x\"y\n", "é": true, "Z": false});
        assert_eq!(
            canonical_json(&v),
            r#"{"Z":false,"a":"x\"y\n","b":[1,{"a":null,"z":1.5}],"é":true}"#
        );
    }

    #[test]
    fn numbers_print_as_serde_json_does() {
        let v = json!([1.0, 0.1, 1e-7, -0.0, 12345678901234567890u64, -3, 1e300]);
        assert_eq!(canonical_json(&v), "[1.0,0.1,1e-7,-0.0,12345678901234567890,-3,1e+300]");
    }

    #[test]
    fn floats_survive_text_round_trip() {
        let mut x = 0.123_456_789_f64;
        for _ in 0..2000 {
            x = (x * 1.618_033_988_749_895 + 0.377).fract() * 10f64.powi(((x * 1000.0) as i32 % 40) - 20);
            let v = json!({"x": x});
            let back: Value = serde_json::from_str(&v.to_string()).expect("parse");
            assert_eq!(digest_of(&v), digest_of(&back), "{x:e}");
        }
    }

    #[test]
    fn digest_ignores_digest_and_signature_only() {
        let a = json!({"a": 1, "digest": "x", "signature": {"s": 1}});
        let b = json!({"a": 1});
        assert_eq!(digest_of(&a), digest_of(&b));
        assert_ne!(digest_of(&json!({"a": 2})), digest_of(&b));
    }

    #[test]
    fn edited_sections_names_changed_added_and_removed_fields() {
        let mut doc = json!({"a": 1, "b": 2, "c": 3});
        let sd = section_digests_of(&doc);
        doc["section_digests"] = Value::Object(sd);
        assert!(edited_sections(&doc).is_empty());
        doc["a"] = json!(5);
        doc["d"] = json!(0);
        doc.as_object_mut().expect("object").remove("c");
        assert_eq!(edited_sections(&doc), vec!["a", "c", "d"]);
    }
}
