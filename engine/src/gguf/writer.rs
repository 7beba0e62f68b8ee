//! GGUF writer: metadata in insertion order, tensors placed at aligned offsets with zero padding,
//! each taking exactly the bytes it was given (spec §1.5), so files round-trip through
//! [`super::GgufFile`]. Tests build malformed files from its output plus byte surgery, using the
//! [`Layout`] it reports.

use std::io::Write;

use super::error::GgufError;
use super::reader::{GgufFile, DEFAULT_ALIGNMENT};
use super::value::Value;

/// A tensor to be written: raw bytes already in the target type's layout.
#[derive(Clone, Debug)]
pub struct WriterTensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub type_id: u32,
    pub data: Vec<u8>,
}

/// Where the writer put each part of the file (absolute byte offsets), for byte surgery in tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// Start of each metadata entry (its key's length field).
    pub kv_offsets: Vec<u64>,
    /// Start of each metadata entry's value type field.
    pub kv_type_offsets: Vec<u64>,
    /// Start of each tensor-info record (its name's length field).
    pub tensor_info_offsets: Vec<u64>,
    /// End of the tensor-info records (before padding).
    pub infos_end: u64,
    /// Start of the data section.
    pub data_offset: u64,
    /// Each tensor's offset relative to the data section, as written in its info record.
    pub tensor_offsets: Vec<u64>,
}

/// Builds a GGUF file in memory.
#[derive(Clone, Debug)]
pub struct GgufWriter {
    /// GGUF version written in the header (2 and 3 share a layout).
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<WriterTensor>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        GgufWriter {
            version: 3,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer holding `file`'s metadata and tensors, in their order, to edit and write again.
    pub fn copy_of(file: &GgufFile) -> Result<Self, GgufError> {
        let mut w = Self::new();
        for (k, v) in &file.metadata {
            w.kv(k, v.clone());
        }
        for t in &file.tensors {
            w.tensor(&t.name, &t.dims, t.type_id, file.tensor_data(t)?.to_vec());
        }
        Ok(w)
    }

    /// Add or replace a metadata entry (insertion order is kept).
    pub fn kv(&mut self, key: &str, value: Value) -> &mut Self {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.metadata.push((key.to_string(), value)),
        }
        self
    }

    pub fn tensor(&mut self, name: &str, dims: &[u64], type_id: u32, data: Vec<u8>) -> &mut Self {
        self.tensors.push(WriterTensor {
            name: name.into(),
            dims: dims.to_vec(),
            type_id,
            data,
        });
        self
    }

    /// The alignment used for placement: `general.alignment` when it is a u32 power of two, else 32.
    /// An invalid declared value is still written as given (tests use that to build bad files).
    pub fn alignment(&self) -> u64 {
        self.metadata
            .iter()
            .find(|(k, _)| k == "general.alignment")
            .and_then(|(_, v)| {
                if let Value::U32(a) = v {
                    Some(u64::from(*a))
                } else {
                    None
                }
            })
            .filter(|a| a.is_power_of_two())
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// Serialize to bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_with_layout().0
    }

    /// Serialize to bytes and report where each part went.
    pub fn to_bytes_with_layout(&self) -> (Vec<u8>, Layout) {
        let entries: Vec<TensorEntry<'_>> = self
            .tensors
            .iter()
            .map(|t| TensorEntry {
                name: &t.name,
                dims: &t.dims,
                type_id: t.type_id,
                size: t.data.len() as u64,
            })
            .collect();
        let (mut out, layout) = header(self.version, &self.metadata, &entries, self.alignment());
        for (t, &off) in self.tensors.iter().zip(&layout.tensor_offsets) {
            out.resize((layout.data_offset + off) as usize, 0);
            out.extend_from_slice(&t.data);
        }
        (out, layout)
    }

    pub fn write_to(&self, mut w: impl Write) -> std::io::Result<()> {
        w.write_all(&self.to_bytes())
    }
}

/// A tensor's directory entry: what the header says of it (its bytes are written after the header).
#[derive(Clone, Copy, Debug)]
pub struct TensorEntry<'a> {
    pub name: &'a str,
    pub dims: &'a [u64],
    pub type_id: u32,
    /// Bytes of data; the next tensor starts at the next multiple of the alignment.
    pub size: u64,
}

/// The file up to its data section: header, metadata in order, tensor infos with offsets at `align`
/// multiples, zero-padded to the data section's start. Lets a writer stream tensor data it has not
/// produced yet (the fixtures' 2B-4T shape is 1.2 GB) with the same layout [`GgufWriter`] uses.
pub fn header(
    version: u32,
    metadata: &[(String, Value)],
    tensors: &[TensorEntry<'_>],
    align: u64,
) -> (Vec<u8>, Layout) {
    let align = align.max(1);
    let mut layout = Layout::default();
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata {
        layout.kv_offsets.push(out.len() as u64);
        write_str(&mut out, k);
        layout.kv_type_offsets.push(out.len() as u64);
        out.extend_from_slice(&(v.value_type() as u32).to_le_bytes());
        write_value(&mut out, v);
    }
    let mut offset = 0u64;
    for t in tensors {
        layout.tensor_info_offsets.push(out.len() as u64);
        write_str(&mut out, t.name);
        out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for d in t.dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&t.type_id.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        layout.tensor_offsets.push(offset);
        offset = (offset + t.size).div_ceil(align) * align;
    }
    layout.infos_end = out.len() as u64;
    layout.data_offset = (out.len() as u64).div_ceil(align) * align;
    out.resize(layout.data_offset as usize, 0);
    (out, layout)
}

/// Append a GGUF string (u64 length, then the bytes).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Append a metadata value's encoding (without its type id).
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => write_str(out, s),
        Value::Array(t, items) => {
            out.extend_from_slice(&(*t as u32).to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for i in items {
                write_value(out, i);
            }
        }
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}
