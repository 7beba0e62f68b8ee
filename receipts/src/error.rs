//! Typed errors of the receipts crate.

use std::path::PathBuf;

/// Everything that can go wrong reading, checking, sealing or writing a receipt.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File concerned.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The text is not JSON.
    #[error("not JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The document does not carry a known `schema_version`.
    #[error("unknown schema_version {found:?} (expected one of {expected})")]
    UnknownSchema {
        /// What the document says (or `<missing>`).
        found: String,
        /// Versions this build understands.
        expected: String,
    },
    /// The document violates its JSON Schema; one line per violation (instance path: message).
    #[error("{schema} schema violation:\n  {}", .errors.join("\n  "))]
    Schema {
        /// Schema `$id` the document was checked against.
        schema: &'static str,
        /// Violations, `"/path: message"`.
        errors: Vec<String>,
    },
    /// The document passed the schema but the typed deserializer rejected it (schema and structs disagree).
    #[error("{schema}: typed decoding failed: {source}")]
    Decode {
        /// Schema the document claimed.
        schema: &'static str,
        /// serde error.
        source: serde_json::Error,
    },
    /// A value could not be encoded (e.g. a NaN metric).
    #[error("cannot encode receipt: {0}")]
    Encode(#[source] serde_json::Error),
    /// The receipt's digest does not match its contents.
    #[error("digest mismatch: recorded {recorded}, computed {computed}; edited: {}", if .edited.is_empty() { "section_digests or digest".to_string() } else { .edited.join(", ") })]
    DigestMismatch {
        /// Digest written in the receipt.
        recorded: String,
        /// Digest of the contents.
        computed: String,
        /// Top-level fields whose section digest no longer matches.
        edited: Vec<String>,
    },
    /// Signing key or signature problems.
    #[error("signature: {0}")]
    Signature(String),
    /// A recorded-reference manifest is inconsistent with itself or with its directory.
    #[error("recorded-reference manifest: {0}")]
    Manifest(String),
    /// A `.npy` array named by a manifest is unreadable or malformed.
    #[error(transparent)]
    Npy(#[from] vocab::npy::NpyError),
    /// Another error, in the file named.
    #[error("{path}: {source}")]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<ReceiptError>,
    },
    /// A built-in schema failed to compile (a bug in this crate).
    #[error("built-in schema {schema} does not compile: {message}")]
    BadSchema {
        /// Schema `$id`.
        schema: &'static str,
        /// Compiler message.
        message: String,
    },
}

impl ReceiptError {
    /// This error, naming the file it concerns (I/O errors name theirs already).
    pub fn in_file(self, path: &std::path::Path) -> Self {
        match self {
            e @ (ReceiptError::Io { .. } | ReceiptError::InFile { .. }) => e,
            e => ReceiptError::InFile {
                path: path.to_owned(),
                source: Box::new(e),
            },
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = ReceiptError> = std::result::Result<T, E>;
