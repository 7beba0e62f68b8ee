//! Strict reader and writer for `.npy` arrays of little-endian `float32` (`<f4`, C order).
//!
//! Accepts format versions 1.0, 2.0 and 3.0; rejects any other dtype, Fortran order, or a data section
//! whose length is not exactly the shape's element count times 4. The writer emits version 1.0 with
//! the header padded to 64 bytes, byte-identical to `numpy.save`.

use std::fs;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Why an `.npy` file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// File-system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not the strict little-endian float32 C-order layout, or a shape that does not fit the data.
    #[error("{path}: {msg}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
}

impl NpyError {
    /// The file the error concerns.
    pub fn path(&self) -> &Path {
        match self {
            NpyError::Io { path, .. } | NpyError::Format { path, .. } => path,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> NpyError + '_ {
    move |source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Read a `<f4` C-order array: its shape and its elements in row-major order.
pub fn read_f32(path: impl AsRef<Path>) -> Result<(Vec<usize>, Vec<f32>), NpyError> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(io_err(path))?;
    parse_f32(&bytes).map_err(|msg| NpyError::Format {
        path: path.to_path_buf(),
        msg,
    })
}

/// Write `data` with `shape` as a version 1.0 `<f4` array (as `numpy.save` would).
pub fn write_f32(path: impl AsRef<Path>, shape: &[usize], data: &[f32]) -> Result<(), NpyError> {
    let path = path.as_ref();
    let bytes = encode_f32(shape, data).map_err(|msg| NpyError::Format {
        path: path.to_path_buf(),
        msg,
    })?;
    fs::write(path, bytes).map_err(io_err(path))
}

/// Encode an array as `.npy` bytes.
pub fn encode_f32(shape: &[usize], data: &[f32]) -> Result<Vec<u8>, String> {
    let count = element_count(shape)?;
    if count != data.len() {
        return Err(format!(
            "shape {shape:?} holds {count} elements but {} were given",
            data.len()
        ));
    }
    let dims = match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let header_len = u16::try_from(header.len()).map_err(|_| "header too long for npy 1.0".to_string())?;
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

/// Decode `.npy` bytes holding a `<f4` C-order array.
pub fn parse_f32(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>), String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not an .npy file (bad magic)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => {
            let b = bytes.get(8..12).ok_or("truncated header length")?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
        v => return Err(format!("unsupported .npy version {v}.{}", bytes[7])),
    };
    let header = bytes.get(start..start + header_len).ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not UTF-8")?;
    let shape = parse_header(header)?;
    let count = element_count(&shape)?;
    let body = &bytes[start + header_len..];
    if Some(body.len()) != count.checked_mul(4) {
        return Err(format!(
            "data section is {} bytes, shape {shape:?} needs {} f32 values",
            body.len(),
            count
        ));
    }
    let data = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((shape, data))
}

fn element_count(shape: &[usize]) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} overflows"))
}

/// Parse the header dict: exactly the keys `descr`, `fortran_order`, `shape`, in any order.
fn parse_header(h: &str) -> Result<Vec<usize>, String> {
    let mut p = Cursor {
        s: h.trim_end_matches(['\n', ' ']).as_bytes(),
        i: 0,
    };
    p.expect(b'{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.skip_ws();
        p.expect(b':')?;
        p.skip_ws();
        match key.as_str() {
            "descr" => descr = Some(p.string()?),
            "fortran_order" => fortran = Some(p.boolean()?),
            "shape" => shape = Some(p.tuple()?),
            k => return Err(format!("unexpected header key {k:?}")),
        }
        p.skip_ws();
        if !p.eat(b',') {
            p.skip_ws();
            p.expect(b'}')?;
            break;
        }
    }
    p.skip_ws();
    if p.i != p.s.len() {
        return Err("trailing bytes after header dict".into());
    }
    match descr.as_deref() {
        Some("<f4") => {}
        Some(d) => return Err(format!("dtype {d:?} is not little-endian float32 '<f4'")),
        None => return Err("header lacks 'descr'".into()),
    }
    match fortran {
        Some(false) => {}
        Some(true) => return Err("Fortran-order arrays are not supported".into()),
        None => return Err("header lacks 'fortran_order'".into()),
    }
    shape.ok_or_else(|| "header lacks 'shape'".into())
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.s.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("header: expected {:?} at byte {}", c as char, self.i))
        }
    }
    fn string(&mut self) -> Result<String, String> {
        self.expect(b'\'')?;
        let start = self.i;
        while self.s.get(self.i).is_some_and(|&c| c != b'\'') {
            self.i += 1;
        }
        let v = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.expect(b'\'')?;
        Ok(v)
    }
    fn boolean(&mut self) -> Result<bool, String> {
        let rest = &self.s[self.i..];
        if rest.starts_with(b"False") {
            self.i += 5;
            Ok(false)
        } else if rest.starts_with(b"True") {
            self.i += 4;
            Ok(true)
        } else {
            Err(format!("header: expected True or False at byte {}", self.i))
        }
    }
    fn tuple(&mut self) -> Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(b')') {
                return Ok(dims);
            }
            let start = self.i;
            while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                self.i += 1;
            }
            let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default();
            dims.push(
                digits
                    .parse()
                    .map_err(|_| format!("header: bad dimension at byte {start}"))?,
            );
            self.skip_ws();
            if !self.eat(b',') {
                self.skip_ws();
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_2d_and_1d() {
        let data: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
        for shape in [vec![2, 3], vec![6], vec![1, 1, 6]] {
            let bytes = encode_f32(&shape, &data).unwrap();
            assert_eq!((bytes.len() - 4 * data.len()) % 64, 0, "header padded to 64 bytes");
            assert_eq!(parse_f32(&bytes).unwrap(), (shape, data.clone()));
        }
    }

    #[test]
    fn header_matches_numpy_save() {
        let bytes = encode_f32(&[8, 1024], &vec![0.0; 8 * 1024]).unwrap();
        let header = std::str::from_utf8(&bytes[10..128]).unwrap();
        assert_eq!(bytes[8..10], [118, 0]);
        assert!(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (8, 1024), }"));
        assert!(header.ends_with(" \n"));
        let one = encode_f32(&[3], &[1.0, 2.0, 3.0]).unwrap();
        assert!(std::str::from_utf8(&one[10..128]).unwrap().contains("'shape': (3,), }"));
    }

    #[test]
    fn rejects_wrong_dtype_order_and_length() {
        let good = encode_f32(&[2], &[1.0, 2.0]).unwrap();
        let swap = |from: &str, to: &str| {
            let at = good.windows(from.len()).position(|w| w == from.as_bytes()).unwrap();
            let mut b = good.clone();
            b[at..at + to.len()].copy_from_slice(to.as_bytes());
            b
        };
        assert!(parse_f32(&swap("<f4", "<f8")).unwrap_err().contains("float32"));
        assert!(parse_f32(&swap("False", "True ")).unwrap_err().contains("Fortran"));
        assert!(parse_f32(&good[..good.len() - 1]).unwrap_err().contains("data section"));
        assert!(parse_f32(b"NOTNPY....").is_err());
        assert!(encode_f32(&[3], &[1.0]).is_err());
    }
}
