//! Strict, zero-copy GGUF v2/v3 reader.
//!
//! Checks run in the order the bytes arrive: header, metadata (every count is weighed against the bytes
//! that remain before anything is allocated), tensor infos, then the data section (alignment, bounds,
//! overlaps). Every failure is a [`GgufError`] naming the field or tensor and the byte offset.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use super::error::{GgufError, LoadError};
use super::types::{align_up, Dialect, GgmlType, Storage};
use super::value::{Value, ValueType};

/// Default data alignment when `general.alignment` is absent (`GGUF_DEFAULT_ALIGNMENT`).
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Deepest array nesting accepted (llama.cpp writes none; GGUF allows it).
pub const MAX_ARRAY_DEPTH: u32 = 8;

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
    /// ggml `ne`: `dims[0]` is the fastest-varying axis (the row length K).
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
}

impl TensorInfo {
    /// Rows (product of dims after the first).
    pub fn n_rows(&self) -> u64 {
        self.dims.iter().skip(1).product()
    }
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

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.pos as u64,
                need: n,
                have: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let at = self.pos as u64;
        let len = self.u64(what)?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::BadUtf8 { what: what(), offset: at })
    }

    fn value(&mut self, ty: ValueType, key: &str, depth: u32) -> Result<Value, GgufError> {
        let what = || format!("value of {key:?}");
        Ok(match ty {
            ValueType::U8 => Value::U8(self.take(1, &what)?[0]),
            ValueType::I8 => Value::I8(self.take(1, &what)?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.take(2, &what)?.try_into().unwrap())),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.take(2, &what)?.try_into().unwrap())),
            ValueType::U32 => Value::U32(self.u32(&what)?),
            ValueType::I32 => Value::I32(self.u32(&what)? as i32),
            ValueType::F32 => Value::F32(f32::from_bits(self.u32(&what)?)),
            ValueType::Bool => {
                let at = self.pos as u64;
                match self.take(1, &what)?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    b => {
                        return Err(GgufError::Tensor {
                            name: key.to_string(),
                            reason: format!("bool at offset {at} holds {b}, not 0 or 1"),
                        })
                    }
                }
            }
            ValueType::U64 => Value::U64(self.u64(&what)?),
            ValueType::I64 => Value::I64(self.u64(&what)? as i64),
            ValueType::F64 => Value::F64(f64::from_bits(self.u64(&what)?)),
            ValueType::String => Value::String(self.string(&what)?),
            ValueType::Array => {
                let at = self.pos as u64;
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::NestingTooDeep { key: key.into(), offset: at, max: MAX_ARRAY_DEPTH });
                }
                let elem_id = self.u32(&what)?;
                let elem = ValueType::from_id(elem_id).ok_or(GgufError::UnknownValueType {
                    key: key.into(),
                    offset: at,
                    type_id: elem_id,
                })?;
                let count_at = self.pos as u64;
                let count = self.u64(&what)?;
                // Strings need 8 bytes (their length), arrays 12, scalars their size.
                let min_each = elem.scalar_size().unwrap_or(if elem == ValueType::String { 8 } else { 12 });
                if count.checked_mul(min_each).is_none_or(|b| b > self.remaining()) {
                    return Err(GgufError::CountTooLarge {
                        what: format!("array {key:?}"),
                        offset: count_at,
                        count,
                        remaining: self.remaining(),
                        min_each,
                    });
                }
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(elem, key, depth + 1)?);
                }
                Value::Array(elem, items)
            }
        })
    }
}

impl GgufFile {
    /// Memory-map and parse a file.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, LoadError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let err = |source| LoadError { path: shown.clone(), source };
        let file = File::open(path).map_err(|e| err(GgufError::Io(e.to_string())))?;
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
        let mut c = Cursor { buf, pos: 0 };
        let magic: [u8; 4] = buf[0..4].try_into().unwrap();
        if &magic != b"GGUF" {
            return Err(GgufError::BadMagic { found: magic });
        }
        c.pos = 4;
        let version = c.u32(&|| "version".into())?;
        if version != 2 && version != 3 {
            return Err(GgufError::UnsupportedVersion { version });
        }
        let n_tensors_at = c.pos as u64;
        let n_tensors = c.u64(&|| "tensor count".into())?;
        let n_kv_at = c.pos as u64;
        let n_kv = c.u64(&|| "metadata count".into())?;
        // A KV needs at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at least 8 + 4 + 8 + 4 + 8.
        for (what, at, count, min_each) in [("metadata", n_kv_at, n_kv, 13u64), ("tensor infos", n_tensors_at, n_tensors, 32)] {
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

        let mut metadata = Vec::with_capacity(n_kv as usize);
        let mut index = HashMap::with_capacity(n_kv as usize);
        for i in 0..n_kv {
            let at = c.pos as u64;
            let key = c.string(&|| format!("key of metadata entry {i}"))?;
            if key.is_empty() {
                return Err(GgufError::EmptyKey { offset: at });
            }
            if index.contains_key(&key) {
                return Err(GgufError::DuplicateKey { key, offset: at });
            }
            let type_at = c.pos as u64;
            let type_id = c.u32(&|| format!("type of {key:?}"))?;
            let ty = ValueType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
                key: key.clone(),
                offset: type_at,
                type_id,
            })?;
            let value = c.value(ty, &key, 0)?;
            index.insert(key.clone(), metadata.len());
            metadata.push((key, value));
        }

        let alignment = match index.get("general.alignment").map(|&i| &metadata[i].1) {
            None => DEFAULT_ALIGNMENT,
            Some(Value::U32(a)) if *a > 0 && a.is_power_of_two() => *a as u64,
            Some(Value::U32(a)) => return Err(GgufError::BadAlignment { value: *a as u64 }),
            Some(v) => {
                return Err(GgufError::WrongValueType {
                    key: "general.alignment".into(),
                    found: v.value_type().name(),
                    expected: "u32",
                })
            }
        };

        struct RawInfo {
            name: String,
            dims: Vec<u64>,
            type_id: u32,
            offset: u64,
            info_offset: u64,
            n_elements: u64,
        }
        let mut raw = Vec::with_capacity(n_tensors as usize);
        let mut tensor_index = HashMap::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let at = c.pos as u64;
            let name = c.string(&|| format!("name of tensor info {i}"))?;
            if tensor_index.contains_key(&name) {
                return Err(GgufError::DuplicateTensor { name, offset: at });
            }
            let what = || format!("tensor info of {name:?}");
            let n_dims = c.u32(&what)?;
            if !(1..=4).contains(&n_dims) {
                return Err(GgufError::BadDims { name, offset: at, n_dims });
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(c.u64(&what)?);
            }
            if let Some(index) = dims.iter().position(|&d| d == 0) {
                return Err(GgufError::ZeroDim { name, offset: at, index });
            }
            let n_elements = dims
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .filter(|&n| n <= i64::MAX as u64)
                .ok_or_else(|| GgufError::DimsOverflow { name: name.clone(), offset: at, dims: dims.clone() })?;
            let type_id = c.u32(&what)?;
            let offset = c.u64(&what)?;
            tensor_index.insert(name.clone(), raw.len());
            raw.push(RawInfo { name, dims, type_id, offset, info_offset: at, n_elements });
        }
        let infos_end = c.pos as u64;
        let data_offset = align_up(infos_end, alignment).ok_or(GgufError::DataOffsetOverflow { end: infos_end })?;
        let file_len = buf.len() as u64;

        let arch = index.get("general.architecture").and_then(|&i| metadata[i].1.as_str()).unwrap_or("");
        let (dialect, dialect_reason) = decide_dialect(arch, raw.iter().map(|r| (r.type_id, r.n_elements, r.dims[0])));

        // Spans: bytes from each tensor's start to the next tensor's start (or EOF).
        let mut order: Vec<usize> = (0..raw.len()).collect();
        order.sort_by_key(|&i| raw[i].offset);
        let mut spans = vec![0u64; raw.len()];
        for (k, &i) in order.iter().enumerate() {
            let start = data_offset.checked_add(raw[i].offset);
            let next = order.get(k + 1).map(|&j| data_offset.saturating_add(raw[j].offset)).unwrap_or(file_len);
            spans[i] = match start {
                Some(s) => next.saturating_sub(s),
                None => 0,
            };
        }

        let mut tensors = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            let ggml_type = GgmlType::from_id(r.type_id, dialect).ok_or_else(|| GgufError::UnknownTensorType {
                name: r.name.clone(),
                offset: r.info_offset,
                type_id: r.type_id,
                dialect: dialect.name(),
            })?;
            if ggml_type == GgmlType::I8_S {
                return Err(GgufError::ActivationTypeInFile { name: r.name, ty: ggml_type.name() });
            }
            let byte_size = ggml_type.byte_size(&r.dims).ok_or_else(|| GgufError::BadShapeForType {
                name: r.name.clone(),
                ty: ggml_type.name(),
                dims: r.dims.clone(),
                block: match ggml_type.storage() {
                    Storage::Blocks { block, .. } => block,
                    _ => 1,
                },
            })?;
            if r.offset % alignment != 0 {
                return Err(GgufError::MisalignedTensor { name: r.name, offset: r.offset, alignment });
            }
            let start = data_offset.checked_add(r.offset);
            let end = start.and_then(|s| s.checked_add(byte_size));
            // bitnet.cpp's tail-carrying types are checked against their span by flavor detection,
            // which can say what a short span really holds; everything else must fit here.
            let lenient = matches!(ggml_type.storage(), Storage::QuarterPlusTail | Storage::Tl2);
            match (start, end) {
                (Some(s), Some(e)) if e <= file_len || (lenient && s <= file_len) => {}
                _ => {
                    return Err(GgufError::TensorOutOfBounds {
                        name: r.name,
                        start: start.unwrap_or(u64::MAX),
                        end: end.unwrap_or(u64::MAX),
                        file_len,
                    })
                }
            }
            tensors.push(TensorInfo {
                name: r.name,
                dims: r.dims,
                type_id: r.type_id,
                ggml_type,
                offset: r.offset,
                file_offset: start.unwrap(),
                info_offset: r.info_offset,
                n_elements: r.n_elements,
                byte_size,
                span: spans[i],
            });
        }
        // Overlaps between strictly sized tensors.
        for w in order.windows(2) {
            let (a, b) = (&tensors[w[0]], &tensors[w[1]]);
            let lenient = matches!(a.ggml_type.storage(), Storage::QuarterPlusTail | Storage::Tl2);
            if !lenient && a.byte_size > a.span {
                return Err(GgufError::TensorOverlap {
                    name: a.name.clone(),
                    other: b.name.clone(),
                    start: a.file_offset,
                    end: a.file_offset + a.byte_size,
                });
            }
        }

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

    /// A tensor's bytes (exactly `byte_size`), zero-copy. Errors if the span is too short.
    pub fn tensor_data(&self, t: &TensorInfo) -> Result<&[u8], GgufError> {
        let start = t.file_offset;
        let end = start.checked_add(t.byte_size).filter(|&e| e <= self.file_len()).ok_or_else(|| {
            GgufError::TensorOutOfBounds {
                name: t.name.clone(),
                start,
                end: start.saturating_add(t.byte_size),
                file_len: self.file_len(),
            }
        })?;
        Ok(&self.bytes()[start as usize..end as usize])
    }

    /// A tensor's bytes by name.
    pub fn tensor_data_by_name(&self, name: &str) -> Result<&[u8], GgufError> {
        let t = self
            .tensor(name)
            .ok_or_else(|| GgufError::Tensor { name: name.into(), reason: "no such tensor".into() })?;
        self.tensor_data(t)
    }
}

/// Pick the type-id table (spec §2, "Dialect detection"); `tensors` yields (type id, n elements, ne[0]).
pub fn decide_dialect(arch: &str, tensors: impl Iterator<Item = (u32, u64, u64)>) -> (Dialect, String) {
    if matches!(arch, "bitnet" | "bitnet-25" | "bitnet-b1.58") {
        return (Dialect::BitnetFork, format!("architecture {arch:?} is a bitnet.cpp architecture"));
    }
    let mut saw39 = None;
    for (id, n, k) in tensors {
        match id {
            31..=33 | 36..=38 => {
                return (Dialect::BitnetFork, format!("type id {id} exists only in the bitnet.cpp fork table"))
            }
            39 => saw39 = Some((n, k)),
            _ => {}
        }
    }
    match saw39 {
        Some((n, k)) if k % 32 == 0 && GgmlType::TL2.byte_size(&[k, n / k]).is_some() && k > 256 => (
            Dialect::Upstream,
            format!("type id 39 with architecture {arch:?}: read as upstream MXFP4 (TL2 appears only in bitnet.cpp architectures)"),
        ),
        Some(_) => (Dialect::Upstream, "type id 39 read as upstream MXFP4".into()),
        None => (Dialect::Upstream, format!("architecture {arch:?} and no fork-only type ids: upstream table")),
    }
}
