//! Typed errors of the GGUF reader: each names the field or tensor and the byte offset.

use thiserror::Error;

/// A malformed or unsupported GGUF file. Offsets are absolute byte offsets in the file unless a
/// field says otherwise. One variant per distinct failure, so callers and tests can match on it.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum GgufError {
    #[error("I/O error: {0}")]
    Io(String),
    #[error("file is {len} bytes, too short for a GGUF header (24 bytes)")]
    TooShortForHeader { len: u64 },
    #[error("bad magic {found:?} at offset 0 (expected \"GGUF\")")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported GGUF version {version} at offset 4 (this reader accepts 2 and 3)")]
    UnsupportedVersion { version: u32 },
    #[error("unexpected end of file at offset {offset} while reading {what} ({need} bytes needed, {have} left)")]
    Truncated {
        what: String,
        offset: u64,
        need: u64,
        have: u64,
    },
    #[error("{what} at offset {offset} declares {count} items but only {remaining} bytes remain (at least {min_each} per item)")]
    CountTooLarge {
        what: String,
        offset: u64,
        count: u64,
        remaining: u64,
        min_each: u64,
    },
    #[error("metadata at offset {offset} would hold more than {limit} values in total (key {key:?})")]
    TooManyValues { key: String, offset: u64, limit: u64 },
    #[error("string for {what} at offset {offset} is not valid UTF-8")]
    BadUtf8 { what: String, offset: u64 },
    #[error("metadata key {key:?} at offset {offset} has unknown value type {type_id}")]
    UnknownValueType { key: String, offset: u64, type_id: u32 },
    #[error("metadata key {key:?}: bool at offset {offset} holds {byte}, not 0 or 1")]
    BadBool { key: String, offset: u64, byte: u8 },
    #[error("metadata key {key:?} at offset {offset}: arrays nested deeper than {max} levels")]
    NestingTooDeep { key: String, offset: u64, max: u32 },
    #[error("duplicate metadata key {key:?} at offset {offset}")]
    DuplicateKey { key: String, offset: u64 },
    #[error("empty metadata key at offset {offset}")]
    EmptyKey { offset: u64 },
    #[error("metadata key {key:?} has type {found}, expected {expected}")]
    WrongValueType {
        key: String,
        found: &'static str,
        expected: &'static str,
    },
    #[error("general.alignment = {value} is not a positive power of two")]
    BadAlignment { value: u64 },
    #[error("tensor name at offset {offset} is {len} bytes; ggml allows at most {max}")]
    TensorNameTooLong { offset: u64, len: u64, max: u64 },
    #[error("tensor {name:?} (info at offset {offset}): n_dims = {n_dims}, must be 1..=4")]
    BadDims { name: String, offset: u64, n_dims: u32 },
    #[error("tensor {name:?} (info at offset {offset}): dimension {index} is zero")]
    ZeroDim { name: String, offset: u64, index: usize },
    #[error("tensor {name:?} (info at offset {offset}): element count or byte size overflows ({dims:?})")]
    DimsOverflow { name: String, offset: u64, dims: Vec<u64> },
    #[error("duplicate tensor name {name:?} (info at offset {offset})")]
    DuplicateTensor { name: String, offset: u64 },
    #[error("tensor {name:?} (info at offset {offset}): ggml type id {type_id} is unknown in the {dialect} table")]
    UnknownTensorType {
        name: String,
        offset: u64,
        type_id: u32,
        dialect: &'static str,
    },
    #[error("tensor {name:?}: type {ty} needs a row length (ne[0]) {requirement}; dims are {dims:?}")]
    BadShapeForType {
        name: String,
        ty: &'static str,
        dims: Vec<u64>,
        requirement: String,
    },
    #[error("tensor {name:?}: type {ty} (I8_S) is an activation-only type and never valid in a file")]
    ActivationTypeInFile { name: String, ty: &'static str },
    #[error(
        "tensor {name:?}: type id 39 is TL2 in the bitnet.cpp fork and MXFP4 upstream, and its {span}-byte span \
         does not decide it (MXFP4 would need {mxfp4:?}, TL2 {tl2:?}); refusing to guess from the id alone"
    )]
    Type39Undecided {
        name: String,
        span: u64,
        mxfp4: Option<u64>,
        tl2: Option<u64>,
    },
    #[error("tensor {name:?}: data offset {offset} is not a multiple of the alignment {alignment}")]
    MisalignedTensor { name: String, offset: u64, alignment: u64 },
    #[error("tensor {name:?}: data [{start}, {end}) lies outside the file ({file_len} bytes)")]
    TensorOutOfBounds {
        name: String,
        start: u64,
        end: u64,
        file_len: u64,
    },
    #[error("tensor {name:?}: data [{start}, {end}) overlaps tensor {other:?}")]
    TensorOverlap {
        name: String,
        other: String,
        start: u64,
        end: u64,
    },
    #[error("tensor {name:?}: needs {need} bytes at offset {start} but only {span} lie before the next tensor or the end of the file")]
    SpanTooShort {
        name: String,
        start: u64,
        need: u64,
        span: u64,
    },
    #[error("data section offset overflows (tensor infos end at {end}, alignment {alignment})")]
    DataOffsetOverflow { end: u64, alignment: u64 },
    #[error("no tensor named {name:?}")]
    NoSuchTensor { name: String },
}

/// A [`GgufError`] together with the file it came from.
#[derive(Debug, Error)]
#[error("{path}: {source}")]
pub struct LoadError {
    pub path: String,
    #[source]
    pub source: GgufError,
}
