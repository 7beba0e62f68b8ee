//! Sealing (section digests, digest, optional ed25519 signature), integrity checks, and the
//! validate-then-write / read-then-validate file functions.

use std::io::Write;
use std::path::Path;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use crate::canonical::{digest_of, edited_sections, section_digests_of};
use crate::error::{ReceiptError, Result};
use crate::schema::{validate, SchemaKind};

/// Environment variable holding the hex ed25519 seed (32 bytes) used to sign receipts.
pub const SIGNING_KEY_ENV: &str = "PARITY_SIGNING_KEY";

/// A sealed document type of the family (it has `section_digests`, `digest`, optional `signature`).
pub trait Receipt: Serialize + DeserializeOwned {
    /// Its schema.
    const KIND: SchemaKind;
}

/// Parse a hex ed25519 seed (64 hex digits).
pub fn signing_key_from_hex(hex_seed: &str) -> Result<SigningKey> {
    let bytes =
        hex::decode(hex_seed.trim()).map_err(|e| ReceiptError::Signature(format!("signing key is not hex: {e}")))?;
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| ReceiptError::Signature(format!("signing key must be 32 bytes, got {}", b.len())))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The signing key from `PARITY_SIGNING_KEY`, if set.
pub fn signing_key_from_env() -> Result<Option<SigningKey>> {
    match std::env::var(SIGNING_KEY_ENV) {
        Ok(s) if !s.trim().is_empty() => signing_key_from_hex(&s).map(Some),
        _ => Ok(None),
    }
}

/// Hex public key of a signing key.
pub fn public_key_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().to_bytes())
}

/// Seal `receipt`: recompute `section_digests` and `digest` (and sign the digest with `key`),
/// then validate the result against its schema.
pub fn seal<R: Receipt>(receipt: &R, key: Option<&SigningKey>) -> Result<R> {
    let mut doc = serde_json::to_value(receipt).map_err(ReceiptError::Encode)?;
    let Some(map) = doc.as_object_mut() else {
        return Err(ReceiptError::Schema {
            schema: R::KIND.id(),
            errors: vec!["/: not an object".into()],
        });
    };
    for k in ["digest", "signature", "section_digests"] {
        map.remove(k);
    }
    let sections = section_digests_of(&doc);
    doc["section_digests"] = Value::Object(sections);
    let digest = digest_of(&doc);
    if let Some(key) = key {
        let digest_bytes = hex::decode(&digest).map_err(|e| ReceiptError::Signature(e.to_string()))?;
        let sig = key.sign(&digest_bytes);
        doc["signature"] = serde_json::json!({
            "algorithm": "ed25519",
            "public_key": public_key_hex(key),
            "signature": hex::encode(sig.to_bytes()),
        });
    }
    doc["digest"] = Value::String(digest);
    validate(R::KIND, &doc)?;
    serde_json::from_value(doc).map_err(|source| ReceiptError::Decode {
        schema: R::KIND.id(),
        source,
    })
}

/// Check that `doc`'s `digest` matches its contents; on mismatch, name the edited top-level fields.
pub fn check_digest(doc: &Value) -> Result<()> {
    let recorded = doc.get("digest").and_then(Value::as_str).unwrap_or("").to_owned();
    let computed = digest_of(doc);
    if recorded == computed {
        Ok(())
    } else {
        Err(ReceiptError::DigestMismatch {
            recorded,
            computed,
            edited: edited_sections(doc),
        })
    }
}

/// Verify `doc`'s signature if it has one. Returns the signer's hex public key, `None` if unsigned.
/// With `trusted` set, the signer must be that key.
pub fn check_signature(doc: &Value, trusted: Option<&str>) -> Result<Option<String>> {
    let Some(sig) = doc.get("signature") else {
        return Ok(None);
    };
    let field = |k: &str| {
        sig.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| ReceiptError::Signature(format!("signature.{k} missing")))
    };
    if field("algorithm")? != "ed25519" {
        return Err(ReceiptError::Signature("only ed25519 is supported".into()));
    }
    let pk_hex = field("public_key")?;
    let pk: [u8; 32] = hex::decode(pk_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ReceiptError::Signature("public_key is not 32 hex bytes".into()))?;
    let sig_bytes: [u8; 64] = hex::decode(field("signature")?)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ReceiptError::Signature("signature is not 64 hex bytes".into()))?;
    let vk = VerifyingKey::from_bytes(&pk).map_err(|e| ReceiptError::Signature(format!("bad public key: {e}")))?;
    let digest = hex::decode(doc.get("digest").and_then(Value::as_str).unwrap_or(""))
        .map_err(|e| ReceiptError::Signature(format!("digest is not hex: {e}")))?;
    vk.verify_strict(&digest, &ed25519_dalek::Signature::from_bytes(&sig_bytes))
        .map_err(|_| ReceiptError::Signature("does not verify against the digest".into()))?;
    if let Some(t) = trusted {
        if !t.trim().eq_ignore_ascii_case(pk_hex) {
            return Err(ReceiptError::Signature(format!(
                "signed by {pk_hex}, not by the trusted key {t}"
            )));
        }
    }
    Ok(Some(pk_hex.to_owned()))
}

/// Validate `receipt` (schema, digest, signature if present), then write it as pretty JSON.
/// The file is written next to `path` and renamed into place, so a reader never sees half a receipt.
pub fn write_receipt<R: Receipt>(path: &Path, receipt: &R) -> Result<()> {
    let doc = serde_json::to_value(receipt).map_err(ReceiptError::Encode)?;
    validate(R::KIND, &doc)?;
    check_digest(&doc)?;
    check_signature(&doc, None)?;
    let mut text = serde_json::to_string_pretty(&doc).map_err(ReceiptError::Encode)?;
    text.push('\n');
    let io = |source| ReceiptError::Io {
        path: path.to_owned(),
        source,
    };
    // A temporary file of its own in the same directory, renamed over `path`: concurrent writers never
    // share a temporary name, and readers see either the old receipt or a whole new one.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".receipt-").suffix(".tmp");
    // Like `fs::write`: 0o666 less the umask, not tempfile's private 0o600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir).map_err(io)?;
    tmp.write_all(text.as_bytes()).and_then(|()| tmp.flush()).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Read a JSON document and find its kind from `schema_version`, validating it against that schema.
pub fn read_document(path: &Path) -> Result<(Value, SchemaKind)> {
    let text = std::fs::read_to_string(path).map_err(|source| ReceiptError::Io {
        path: path.to_owned(),
        source,
    })?;
    let doc: Value = serde_json::from_str(&text).map_err(ReceiptError::Json)?;
    let kind = SchemaKind::of_document(&doc)?;
    validate(kind, &doc)?;
    Ok((doc, kind))
}

/// Decode a validated document into its typed form.
pub fn decode<R: Receipt>(doc: Value) -> Result<R> {
    serde_json::from_value(doc).map_err(|source| ReceiptError::Decode {
        schema: R::KIND.id(),
        source,
    })
}

/// Read a receipt of type `R`: schema, then digest, then signature if present, then typed decoding.
pub fn read_receipt<R: Receipt>(path: &Path) -> Result<R> {
    let (doc, kind) = read_document(path)?;
    if kind != R::KIND {
        return Err(ReceiptError::UnknownSchema {
            found: kind.version().into(),
            expected: R::KIND.version().into(),
        });
    }
    check_digest(&doc)?;
    check_signature(&doc, None)?;
    decode(doc)
}
