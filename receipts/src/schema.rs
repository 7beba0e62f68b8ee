//! The embedded JSON Schemas and validation against them.
//!
//! Sources live in `schemas/src/` (one file per document kind plus `defs.v1.json`, the shared definitions).
//! What users validate with is `schemas/<kind>.v1.json`: a 2020-12 compound document, the kind's source with
//! the defs schema embedded under `$defs` as a resource with its own `$id`, so every `$ref` to
//! `https://bitnet-parity.dev/schemas/defs/v1.json#...` resolves inside the file and any validator works
//! offline (`check-jsonschema --schemafile schemas/parity-receipt.v1.json r.json`). [`bundle`] generates those
//! files; a test checks the committed ones are up to date (`PARITY_BLESS=1` rewrites them). This crate
//! validates with the same bundled files.

use std::sync::OnceLock;

use serde_json::Value;

use crate::error::{ReceiptError, Result};

/// `$id` of the shared definitions schema.
pub const DEFS_ID: &str = "https://bitnet-parity.dev/schemas/defs/v1.json";
const DEFS_SRC: &str = include_str!("../../schemas/src/defs.v1.json");

/// Key of the embedded defs resource in a bundled schema's `$defs`.
pub const DEFS_KEY: &str = "defs.v1";

/// One member of the schema family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaKind {
    /// `parity-receipt/v1`.
    ParityReceipt,
    /// `bench-receipt/v1`.
    BenchReceipt,
    /// `inference-receipt/v1`.
    InferenceReceipt,
    /// `recorded-reference/v1` (a recorded-reference directory's manifest.json).
    RecordedReference,
}

impl SchemaKind {
    /// Every kind, in a fixed order.
    pub const ALL: [SchemaKind; 4] = [
        Self::ParityReceipt,
        Self::BenchReceipt,
        Self::InferenceReceipt,
        Self::RecordedReference,
    ];

    /// The `schema_version` string documents of this kind carry.
    pub const fn version(self) -> &'static str {
        match self {
            Self::ParityReceipt => "parity-receipt/v1",
            Self::BenchReceipt => "bench-receipt/v1",
            Self::InferenceReceipt => "inference-receipt/v1",
            Self::RecordedReference => "recorded-reference/v1",
        }
    }

    /// The schema's `$id`.
    pub const fn id(self) -> &'static str {
        match self {
            Self::ParityReceipt => "https://bitnet-parity.dev/schemas/parity-receipt/v1.json",
            Self::BenchReceipt => "https://bitnet-parity.dev/schemas/bench-receipt/v1.json",
            Self::InferenceReceipt => "https://bitnet-parity.dev/schemas/inference-receipt/v1.json",
            Self::RecordedReference => "https://bitnet-parity.dev/schemas/recorded-reference/v1.json",
        }
    }

    /// The file name under `schemas/` (bundled) and `schemas/src/` (source).
    pub const fn file_name(self) -> &'static str {
        match self {
            Self::ParityReceipt => "parity-receipt.v1.json",
            Self::BenchReceipt => "bench-receipt.v1.json",
            Self::InferenceReceipt => "inference-receipt.v1.json",
            Self::RecordedReference => "recorded-reference.v1.json",
        }
    }

    /// The bundled, self-contained schema as committed under `schemas/` (what this crate validates with).
    pub const fn source(self) -> &'static str {
        match self {
            Self::ParityReceipt => include_str!("../../schemas/parity-receipt.v1.json"),
            Self::BenchReceipt => include_str!("../../schemas/bench-receipt.v1.json"),
            Self::InferenceReceipt => include_str!("../../schemas/inference-receipt.v1.json"),
            Self::RecordedReference => include_str!("../../schemas/recorded-reference.v1.json"),
        }
    }

    /// The hand-written source under `schemas/src/`, whose `$ref`s point at the defs schema's `$id`.
    pub const fn unbundled(self) -> &'static str {
        match self {
            Self::ParityReceipt => include_str!("../../schemas/src/parity-receipt.v1.json"),
            Self::BenchReceipt => include_str!("../../schemas/src/bench-receipt.v1.json"),
            Self::InferenceReceipt => include_str!("../../schemas/src/inference-receipt.v1.json"),
            Self::RecordedReference => include_str!("../../schemas/src/recorded-reference.v1.json"),
        }
    }

    /// The kind whose `schema_version` is `version`.
    pub fn from_version(version: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.version() == version)
    }

    /// The kind a document declares in its `schema_version`.
    pub fn of_document(doc: &Value) -> Result<Self> {
        let found = doc.get("schema_version").and_then(Value::as_str);
        found
            .and_then(Self::from_version)
            .ok_or_else(|| ReceiptError::UnknownSchema {
                found: found.unwrap_or("<missing>").to_owned(),
                expected: Self::ALL.map(Self::version).join(", "),
            })
    }

    fn index(self) -> usize {
        match self {
            Self::ParityReceipt => 0,
            Self::BenchReceipt => 1,
            Self::InferenceReceipt => 2,
            Self::RecordedReference => 3,
        }
    }
}

macro_rules! version_tag {
    ($(#[$doc:meta])* $name:ident = $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str($kind.version())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let found = String::deserialize(d)?;
                if found == $kind.version() {
                    Ok($name)
                } else {
                    Err(serde::de::Error::custom(format!(
                        "schema_version must be {:?}, found {found:?}",
                        $kind.version()
                    )))
                }
            }
        }
    };
}

version_tag!(
    /// The `schema_version` value `parity-receipt/v1`.
    ParityV1 = SchemaKind::ParityReceipt
);
version_tag!(
    /// The `schema_version` value `bench-receipt/v1`.
    BenchV1 = SchemaKind::BenchReceipt
);
version_tag!(
    /// The `schema_version` value `inference-receipt/v1`.
    InferenceV1 = SchemaKind::InferenceReceipt
);
version_tag!(
    /// The `schema_version` value `recorded-reference/v1`.
    RecordedReferenceV1 = SchemaKind::RecordedReference
);

/// Source text of the shared `defs` schema.
pub const fn defs_source() -> &'static str {
    DEFS_SRC
}

/// The bundled schema of `kind`: its source with the defs schema embedded under `$defs[`[`DEFS_KEY`]`]`.
/// Built from the texts (not re-serialised), so the sources' key order and layout are kept.
pub fn bundle(kind: SchemaKind, source: &str, defs: &str) -> std::result::Result<String, String> {
    let src: Value = serde_json::from_str(source).map_err(|e| format!("{}: {e}", kind.file_name()))?;
    if src.get("$defs").is_some() {
        return Err(format!(
            "{}: a source schema keeps its own definitions in defs.v1.json",
            kind.file_name()
        ));
    }
    let body = source.trim_end();
    let body = body
        .strip_suffix('}')
        .ok_or_else(|| format!("{}: not an object", kind.file_name()))?
        .trim_end();
    let defs = defs.trim_end().replace('\n', "\n    ");
    Ok(format!(
        "{body},\n  \"$comment\": \"Generated: schemas/src/{} with schemas/src/defs.v1.json embedded under $defs; edit the \
         sources, then PARITY_BLESS=1 cargo test -p parity-receipts --test schemas_bundled.\",\n  \"$defs\": {{\n    \"{DEFS_KEY}\": \
         {defs}\n  }}\n}}\n",
        kind.file_name()
    ))
}

type Compiled = std::result::Result<jsonschema::Validator, String>;

fn compile(kind: SchemaKind) -> Compiled {
    let schema: Value = serde_json::from_str(kind.source()).map_err(|e| e.to_string())?;
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .map_err(|e| e.to_string())
}

fn validator(kind: SchemaKind) -> Result<&'static jsonschema::Validator> {
    static CACHE: [OnceLock<Compiled>; 4] = [const { OnceLock::new() }; 4];
    CACHE[kind.index()]
        .get_or_init(|| compile(kind))
        .as_ref()
        .map_err(|message| ReceiptError::BadSchema {
            schema: kind.id(),
            message: message.clone(),
        })
}

/// Validate `doc` against the schema of `kind`; every violation is listed in the error.
pub fn validate(kind: SchemaKind, doc: &Value) -> Result<()> {
    let v = validator(kind)?;
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| {
            let path = e.instance_path().to_string();
            format!("{}: {e}", if path.is_empty() { "/" } else { path.as_str() })
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ReceiptError::Schema {
            schema: kind.id(),
            errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_compiles_and_declares_its_id() {
        for kind in SchemaKind::ALL {
            validator(kind).unwrap_or_else(|e| panic!("{e}"));
            for text in [kind.source(), kind.unbundled()] {
                let v: Value = serde_json::from_str(text).expect("schema is JSON");
                assert_eq!(v["$id"], kind.id());
                assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
            }
            let bundled: Value = serde_json::from_str(kind.source()).unwrap();
            assert_eq!(
                bundled["$defs"][DEFS_KEY]["$id"], DEFS_ID,
                "{kind:?}: defs embedded as a resource"
            );
        }
        let defs: Value = serde_json::from_str(DEFS_SRC).expect("defs is JSON");
        assert_eq!(defs["$id"], DEFS_ID);
    }

    #[test]
    fn unknown_version_is_named() {
        let err = SchemaKind::of_document(&serde_json::json!({"schema_version": "x/v9"})).expect_err("unknown");
        assert!(err.to_string().contains("x/v9"));
    }
}
