//! Strict, zero-copy GGUF v2/v3 reader.
//!
//! Checks run in the order the bytes arrive: header, metadata (every count is weighed against the bytes
//! that remain before anything is allocated), tensor infos, then the data section (alignment, bounds,
//! overlaps, dialect). Every failure is a [`GgufError`] naming the field or tensor and the byte offset.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use super::dialect::{decide_dialect, DialectInput};
use super::error::{GgufError, LoadError};
use super::types::{align_up, Dialect, GgmlType, Storage};
use super::value::{Value, ValueType};

/// Default data alignment when `general.alignment` is absent (`GGUF_DEFAULT_ALIGNMENT`).
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Deepest array nesting accepted (llama.cpp writes none; GGUF allows it).
pub const MAX_ARRAY_DEPTH: u32 = 8;
/// Most metadata values (array elements included) one file may hold. A decoded [`Value`] takes up to
/// 32 bytes while a `u8` element takes one byte of file, so without a cap a small file could demand
/// 32× its size in memory. The 2B-4T file needs about 0.7 M values; this allows 16.7 M.
pub const MAX_METADATA_VALUES: u64 = 1 << 24;
/// ggml's `GGML_MAX_NAME` is 64 including the NUL, so a tensor name has at most 63 bytes.
pub const MAX_TENSOR_NAME: u64 = 63;

/// The bytes of a GGUF file: memory-mapped, or owned (tests, fuzzing).
enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// One tensor-info record, validated against the file.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml `ne`: `dims[0]` is the fastest-varying axis (the row length K). Never empty, no zeros.
    pub dims: Vec<u64>,
    /// The raw type id as stored.
    pub type_id: u32,
    /// The id resolved under the file's dialect.
    pub ggml_type: GgmlType,
    /// Offset relative to the data section, as stored.
    pub offset: u64,
    /// Absolute offset of the tensor's first byte in the file.
    pub file_offset: u64,
    /// Absolute offset of this tensor's info record (for error messages).
    pub info_offset: u64,
    pub n_elements: u64,
    /// Bytes the type needs for these dims.
    pub byte_size: u64,
    /// Bytes available before the next tensor (or the end of the file), padding included.
    pub span: u64,
    /// True for the tensor with the highest offset (its span runs to the end of the file).
    pub is_last: bool,
}

impl TensorInfo {
    /// Rows: the product of the dims after the first.
    pub fn n_rows(&self) -> u64 {
        self.n_elements / self.row_len()
    }

    /// Row length K (`ne[0]`).
    pub fn row_len(&self) -> u64 {
        self.dims[0]
    }
}

/// A parsed GGUF file. Tensor data is borrowed from the mapping, never copied.
pub struct GgufFile {
    bytes: Bytes,
    pub path: Option<String>,
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, Value)>,
    index: HashMap<String, usize>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_offset: u64,
    pub dialect: Dialect,
    /// Why that dialect was chosen, in words.
    pub dialect_reason: String,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("n_kv", &self.metadata.len())
            .field("n_tensors", &self.tensors.len())
            .field("dialect", &self.dialect)
            .finish()
    }
}

/// A bounds-checked little-endian reader over the file; `pos` never exceeds `buf.len()`.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Metadata values decoded so far (against [`MAX_METADATA_VALUES`]).
    values: u64,
}

impl<'a> Cursor<'a> {
    fn at(&self) -> u64 {
        self.pos as u64
    }

    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.at(),
                need: n,
                have: self.remaining(),
            });
        }
        // n <= remaining <= usize::MAX, so the cast and the addition cannot overflow.
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let at = self.at();
        let len = self.u64(what)?;
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| GgufError::BadUtf8 {
                what: what(),
                offset: at,
            })
    }

    fn count_value(&mut self, key: &str, n: u64) -> Result<(), GgufError> {
        match self.values.checked_add(n).filter(|&v| v <= MAX_METADATA_VALUES) {
            Some(v) => {
                self.values = v;
                Ok(())
            }
            None => Err(GgufError::TooManyValues {
                key: key.into(),
                offset: self.at(),
                limit: MAX_METADATA_VALUES,
            }),
        }
    }

    fn value(&mut self, ty: ValueType, key: &str, depth: u32) -> Result<Value, GgufError> {
        let what = || format!("value of {key:?}");
        Ok(match ty {
            ValueType::U8 => Value::U8(u8::from_le_bytes(self.array(&what)?)),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array(&what)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(&what)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(&what)?)),
            ValueType::U32 => Value::U32(self.u32(&what)?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(&what)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(&what)?)),
            ValueType::Bool => {
                let at = self.at();
                match self.array::<1>(&what)?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    byte => {
                        return Err(GgufError::BadBool {
                            key: key.into(),
                            offset: at,
                            byte,
                        })
                    }
                }
            }
            ValueType::U64 => Value::U64(self.u64(&what)?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(&what)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(&what)?)),
            ValueType::String => Value::String(self.string(&what)?),
            ValueType::Array => {
                let at = self.at();
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::NestingTooDeep {
                        key: key.into(),
                        offset: at,
                        max: MAX_ARRAY_DEPTH,
                    });
                }
                let elem_id = self.u32(&what)?;
                let elem = ValueType::from_id(elem_id).ok_or(GgufError::UnknownValueType {
                    key: key.into(),
                    offset: at,
                    type_id: elem_id,
                })?;
                let count_at = self.at();
                let count = self.u64(&what)?;
                // Strings need at least 8 bytes (their length), arrays 12 (type + count), scalars their size.
                let min_each = elem
                    .scalar_size()
                    .unwrap_or(if elem == ValueType::String { 8 } else { 12 });
                if count.checked_mul(min_each).is_none_or(|b| b > self.remaining()) {
                    return Err(GgufError::CountTooLarge {
                        what: format!("array {key:?}"),
                        offset: count_at,
                        count,
                        remaining: self.remaining(),
                        min_each,
                    });
                }
                self.count_value(key, count)?;
                // count * min_each <= remaining bytes, so this capacity is bounded by the file size.
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(elem, key, depth + 1)?);
                }
                Value::Array(elem, items)
            }
        })
    }
}

/// A tensor-info record before the data section is known.
struct RawInfo {
    name: String,
    dims: Vec<u64>,
    type_id: u32,
    offset: u64,
    info_offset: u64,
    n_elements: u64,
}

impl GgufFile {
    /// Memory-map and parse a file.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, LoadError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let err = |source| LoadError {
            path: shown.clone(),
            source,
        };
        let file = File::open(path).map_err(|e| err(GgufError::Io(e.to_string())))?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(err(GgufError::Io("is a directory, not a GGUF file".into())));
        }
        // SAFETY: the mapping is read-only; the file is opened read-only. A concurrent truncation
        // by another process is outside what any mmap-based loader (llama.cpp included) can guard.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| err(GgufError::Io(e.to_string())))?;
        let mut g = Self::parse(Bytes::Mapped(map)).map_err(err)?;
        g.path = Some(shown);
        Ok(g)
    }

    /// Parse an in-memory file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        Self::parse(Bytes::Owned(bytes))
    }

    fn parse(bytes: Bytes) -> Result<GgufFile, GgufError> {
        let buf = bytes.as_slice();
        if buf.len() < 24 {
            return Err(GgufError::TooShortForHeader { len: buf.len() as u64 });
        }
        let mut c = Cursor { buf, pos: 0, values: 0 };
        let (version, n_tensors, n_kv) = read_header(&mut c)?;

        let (metadata, index) = read_metadata(&mut c, n_kv)?;
        let alignment = read_alignment(&metadata, &index)?;
        let (raw, tensor_index) = read_tensor_infos(&mut c, n_tensors)?;

        let infos_end = c.at();
        let data_offset = align_up(infos_end, alignment).ok_or(GgufError::DataOffsetOverflow {
            end: infos_end,
            alignment,
        })?;
        let file_len = buf.len() as u64;

        let (order, spans) = tensor_spans(&raw, data_offset, file_len);
        let last = order.last().copied();

        let arch = index
            .get("general.architecture")
            .and_then(|&i| metadata[i].1.as_str())
            .unwrap_or("");
        let (dialect, dialect_reason) = decide_dialect(
            arch,
            alignment,
            raw.iter().enumerate().map(|(i, r)| DialectInput {
                name: &r.name,
                type_id: r.type_id,
                dims: &r.dims,
                span: spans[i],
                is_last: Some(i) == last,
            }),
        )?;

        let mut tensors = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            tensors.push(validate_tensor(
                r,
                dialect,
                alignment,
                data_offset,
                file_len,
                spans[i],
                Some(i) == last,
            )?);
        }
        check_overlaps(&tensors, &order)?;

        Ok(GgufFile {
            bytes,
            path: None,
            version,
            metadata,
            index,
            tensors,
            tensor_index,
            alignment,
            data_offset,
            dialect,
            dialect_reason,
        })
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// Drop the whole pages inside `range` from this process's resident set (`MADV_DONTNEED`). The mapping is
    /// shared and read-only, so they stay in the page cache and a later read maps them again, unchanged:
    /// every outstanding `&[u8]` stays valid. Used once a tensor has been copied elsewhere, so that a copy
    /// does not double the RSS. No-op for owned bytes and off Unix.
    pub fn release(&self, range: std::ops::Range<usize>) {
        #[cfg(unix)]
        if let Bytes::Mapped(m) = &self.bytes {
            const PAGE: usize = 4096;
            let (start, end) = (range.start.next_multiple_of(PAGE), range.end.min(m.len()) & !(PAGE - 1));
            if end > start {
                // SAFETY: a MAP_SHARED read-only file mapping; DONTNEED only unmaps pages, whose contents the
                // kernel re-reads from the page cache on the next access (see above). Failure is harmless.
                let _ = unsafe { m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start) };
            }
        }
    }

    pub fn file_len(&self) -> u64 {
        self.bytes().len() as u64
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index.get(key).map(|&i| &self.metadata[i].1)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// `general.architecture`, or "" when absent.
    pub fn architecture(&self) -> &str {
        self.get_str("general.architecture").unwrap_or("")
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// A tensor's bytes (exactly `byte_size`), zero-copy. Errors if they run past the tensor's span
    /// (into the next tensor or past the end of the file).
    pub fn tensor_data(&self, t: &TensorInfo) -> Result<&[u8], GgufError> {
        self.span_bytes(t, t.byte_size)
    }

    /// The first `len` bytes of a tensor's span; `len` may differ from `byte_size` (flavor detection
    /// reads foreign layouts this way) but never exceeds the span.
    pub fn span_bytes(&self, t: &TensorInfo, len: u64) -> Result<&[u8], GgufError> {
        let start = t.file_offset;
        let short = || GgufError::SpanTooShort {
            name: t.name.clone(),
            start,
            need: len,
            span: t.span,
        };
        if len > t.span {
            return Err(short());
        }
        let end = start
            .checked_add(len)
            .filter(|&e| e <= self.file_len())
            .ok_or_else(short)?;
        // start <= end <= file_len, which fits in usize because the file is in memory.
        Ok(&self.bytes()[start as usize..end as usize])
    }

    /// A tensor's bytes by name.
    pub fn tensor_data_by_name(&self, name: &str) -> Result<&[u8], GgufError> {
        let t = self
            .tensor(name)
            .ok_or_else(|| GgufError::NoSuchTensor { name: name.into() })?;
        self.tensor_data(t)
    }
}

/// Types whose bytes may be a foreign layout of another size (see the overlap check in `parse`).
fn is_lenient(ty: GgmlType) -> bool {
    ty.storage() == Storage::QuarterPlusTail
}

type MetadataIndex = HashMap<String, usize>;

fn read_metadata(c: &mut Cursor<'_>, n_kv: u64) -> Result<(Vec<(String, Value)>, MetadataIndex), GgufError> {
    // n_kv * 14 <= remaining bytes (checked by the caller): bounded by the file size.
    let mut metadata = Vec::with_capacity(n_kv as usize);
    let mut index = HashMap::with_capacity(n_kv as usize);
    for i in 0..n_kv {
        let at = c.at();
        let key = c.string(&|| format!("key of metadata entry {i}"))?;
        if key.is_empty() {
            return Err(GgufError::EmptyKey { offset: at });
        }
        if index.contains_key(&key) {
            return Err(GgufError::DuplicateKey { key, offset: at });
        }
        let type_at = c.at();
        let type_id = c.u32(&|| format!("type of {key:?}"))?;
        let ty = ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
            key: key.clone(),
            offset: type_at,
            type_id,
        })?;
        c.count_value(&key, 1)?;
        let value = c.value(ty, &key, 0)?;
        index.insert(key.clone(), metadata.len());
        metadata.push((key, value));
    }
    Ok((metadata, index))
}

/// `general.alignment`: must be a u32 power of two (gguf_get_val_u32); 32 when absent.
fn read_alignment(metadata: &[(String, Value)], index: &MetadataIndex) -> Result<u64, GgufError> {
    match index.get("general.alignment").map(|&i| &metadata[i].1) {
        None => Ok(DEFAULT_ALIGNMENT),
        Some(Value::U32(a)) if a.is_power_of_two() => Ok(u64::from(*a)),
        Some(Value::U32(a)) => Err(GgufError::BadAlignment { value: u64::from(*a) }),
        Some(v) => Err(GgufError::WrongValueType {
            key: "general.alignment".into(),
            found: v.value_type().name(),
            expected: "u32",
        }),
    }
}

fn read_tensor_infos(c: &mut Cursor<'_>, n_tensors: u64) -> Result<(Vec<RawInfo>, MetadataIndex), GgufError> {
    // n_tensors * 32 <= remaining bytes (checked by the caller): bounded by the file size.
    let mut raw = Vec::with_capacity(n_tensors as usize);
    let mut tensor_index = HashMap::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let at = c.at();
        let name = c.string(&|| format!("name of tensor info {i}"))?;
        if name.len() as u64 > MAX_TENSOR_NAME {
            return Err(GgufError::TensorNameTooLong {
                offset: at,
                len: name.len() as u64,
                max: MAX_TENSOR_NAME,
            });
        }
        if tensor_index.contains_key(&name) {
            return Err(GgufError::DuplicateTensor { name, offset: at });
        }
        let what = || format!("tensor info of {name:?}");
        let n_dims = c.u32(&what)?;
        if !(1..=4).contains(&n_dims) {
            return Err(GgufError::BadDims {
                name,
                offset: at,
                n_dims,
            });
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(c.u64(&what)?);
        }
        if let Some(index) = dims.iter().position(|&d| d == 0) {
            return Err(GgufError::ZeroDim {
                name,
                offset: at,
                index,
            });
        }
        // ggml keeps element counts in int64_t.
        let n_elements = dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| GgufError::DimsOverflow {
                name: name.clone(),
                offset: at,
                dims: dims.clone(),
            })?;
        let type_id = c.u32(&what)?;
        let offset = c.u64(&what)?;
        tensor_index.insert(name.clone(), raw.len());
        raw.push(RawInfo {
            name,
            dims,
            type_id,
            offset,
            info_offset: at,
            n_elements,
        });
    }
    Ok((raw, tensor_index))
}

/// Resolve the type and check shape, alignment and bounds of one tensor.
fn validate_tensor(
    r: RawInfo,
    dialect: Dialect,
    alignment: u64,
    data_offset: u64,
    file_len: u64,
    span: u64,
    is_last: bool,
) -> Result<TensorInfo, GgufError> {
    let ggml_type = GgmlType::from_id(r.type_id, dialect).ok_or_else(|| GgufError::UnknownTensorType {
        name: r.name.clone(),
        offset: r.info_offset,
        type_id: r.type_id,
        dialect: dialect.name(),
    })?;
    if ggml_type == GgmlType::I8_S {
        return Err(GgufError::ActivationTypeInFile {
            name: r.name,
            ty: ggml_type.name(),
        });
    }
    let requirement = match ggml_type.storage() {
        Storage::Blocks { block, .. } if !r.dims[0].is_multiple_of(block) => Some(format!("a multiple of {block}")),
        Storage::Tl2 if r.dims[0] < 256 => {
            Some("at least 256 (ggml's TL2 size formula reserves (K−256)·M/3·5/8 + 256·M/4 bytes)".into())
        }
        _ => None,
    };
    if let Some(requirement) = requirement {
        return Err(GgufError::BadShapeForType {
            name: r.name,
            ty: ggml_type.name(),
            dims: r.dims,
            requirement,
        });
    }
    let byte_size = ggml_type.byte_size(&r.dims).ok_or_else(|| GgufError::DimsOverflow {
        name: r.name.clone(),
        offset: r.info_offset,
        dims: r.dims.clone(),
    })?;
    if !r.offset.is_multiple_of(alignment) {
        return Err(GgufError::MisalignedTensor {
            name: r.name,
            offset: r.offset,
            alignment,
        });
    }
    let start = data_offset.checked_add(r.offset);
    let end = start.and_then(|s| s.checked_add(byte_size));
    let file_offset = match (start, end) {
        (Some(s), Some(e)) if e <= file_len => s,
        (Some(s), Some(_))
            if is_lenient(ggml_type) && s.checked_add(r.n_elements / 4).is_some_and(|e| e <= file_len) =>
        {
            s
        }
        _ => {
            return Err(GgufError::TensorOutOfBounds {
                name: r.name,
                start: start.unwrap_or(u64::MAX),
                end: end.unwrap_or(u64::MAX),
                file_len,
            })
        }
    };
    Ok(TensorInfo {
        name: r.name,
        dims: r.dims,
        type_id: r.type_id,
        ggml_type,
        offset: r.offset,
        file_offset,
        info_offset: r.info_offset,
        n_elements: r.n_elements,
        byte_size,
        span,
        is_last,
    })
}

/// Magic, version and the two counts, each count checked against the bytes left before anything is
/// allocated from it.
fn read_header(c: &mut Cursor) -> Result<(u32, u64, u64), GgufError> {
    let magic: [u8; 4] = c.array(&|| "magic".into())?;
    if &magic != b"GGUF" {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = c.u32(&|| "version".into())?;
    if version != 2 && version != 3 {
        return Err(GgufError::UnsupportedVersion { version });
    }
    let n_tensors_at = c.at();
    let n_tensors = c.u64(&|| "tensor count".into())?;
    let n_kv_at = c.at();
    let n_kv = c.u64(&|| "metadata count".into())?;
    // A KV needs at least 8 (key length) + 1 (key) + 4 (type) + 1 bytes; a tensor info at least
    // 8 + 4 + 8 + 4 + 8. Checked before anything is allocated from these counts.
    for (what, at, count, min_each) in [
        ("metadata", n_kv_at, n_kv, 14u64),
        ("tensor infos", n_tensors_at, n_tensors, 32),
    ] {
        if count.checked_mul(min_each).is_none_or(|b| b > c.remaining()) {
            return Err(GgufError::CountTooLarge {
                what: what.into(),
                offset: at,
                count,
                remaining: c.remaining(),
                min_each,
            });
        }
    }
    Ok((version, n_tensors, n_kv))
}

/// Tensor indices in offset order, and each tensor's span: the bytes from its start to the next tensor's start
/// (or EOF).
fn tensor_spans(raw: &[RawInfo], data_offset: u64, file_len: u64) -> (Vec<usize>, Vec<u64>) {
    let mut order: Vec<usize> = (0..raw.len()).collect();
    order.sort_by_key(|&i| (raw[i].offset, i));
    let mut spans = vec![0u64; raw.len()];
    for (k, &i) in order.iter().enumerate() {
        let start = data_offset.checked_add(raw[i].offset);
        let next = order
            .get(k + 1)
            .map(|&j| data_offset.saturating_add(raw[j].offset))
            .unwrap_or(file_len);
        spans[i] = start.map_or(0, |s| next.saturating_sub(s));
    }
    (order, spans)
}

/// Every tensor but the last must fit before the next one starts.
fn check_overlaps(tensors: &[TensorInfo], order: &[usize]) -> Result<(), GgufError> {
    // A strictly sized tensor must fit its span. I2_S and TL1 are judged by flavor
    // detection instead, which can say what a short span really holds (spec §8), but every layout
    // that could be meant needs at least the n/4 code bytes; [`GgufFile::tensor_data`] still
    // refuses to hand out bytes past the span.
    for w in order.windows(2) {
        let (a, b) = (&tensors[w[0]], &tensors[w[1]]);
        let need = if is_lenient(a.ggml_type) {
            a.n_elements / 4
        } else {
            a.byte_size
        };
        if need > a.span || a.span == 0 {
            return Err(GgufError::TensorOverlap {
                name: a.name.clone(),
                other: b.name.clone(),
                start: a.file_offset,
                end: a.file_offset.saturating_add(need),
            });
        }
    }
    Ok(())
}
