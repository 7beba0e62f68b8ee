//! I2_S (ggml type 36 in bitnet.cpp's fork): 2-bit ternary codes and one f32 per-tensor scale.
//!
//! Storage (spec §3.1): `[n/4 code bytes][32-byte tail]`, the scale is the f32 at byte `n/4` of the
//! whole tensor (tail bytes 4..31 are unspecified). Code `c` means `(c − 1)·scale`: 0 → −1, 1 → 0,
//! 2 → +1; code 3 is never written. Three packings share that size and nothing in the file says which
//! one was used (§3.6), hence [`I2sLayout`] and a default that is only *assumed*.

use serde::Serialize;

/// Bytes of the tail that follows the codes; its first four hold the scale.
pub const I2S_TAIL: u64 = 32;

/// True byte size of an I2_S tensor of `n` weights: `n/4 + 32` (spec §3.1).
pub const fn i2s_bytes(n: u64) -> u64 {
    n / 4 + I2S_TAIL
}

/// How the 2-bit codes of an I2_S tensor are arranged (spec §3.3–§3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum I2sLayout {
    /// x86 with `ACT_PARALLEL` (every build before BitNet `112f853`, and every Python-converted
    /// file): 128-weight blocks of 32 bytes over the flattened tensor, byte `p` holds weights
    /// `p, 32+p, 64+p, 96+p` from the high bits down.
    #[serde(rename = "x86-act128")]
    X86Act128,
    /// ARM builds since BitNet `112f853`: the same scheme with 64-weight blocks of 16 bytes.
    #[serde(rename = "arm64")]
    Arm64,
    /// x86 with `ACT_PARALLEL` undefined: four rows interleaved per byte, needs `rows % 4 == 0`.
    #[serde(rename = "x86-1x4")]
    X86NoActParallel1x4,
}

impl I2sLayout {
    pub const ALL: [I2sLayout; 3] = [I2sLayout::X86Act128, I2sLayout::Arm64, I2sLayout::X86NoActParallel1x4];

    /// Stable short name (CLI values and JSON; the serde names are the same).
    pub fn name(self) -> &'static str {
        match self {
            I2sLayout::X86Act128 => "x86-act128",
            I2sLayout::Arm64 => "arm64",
            I2sLayout::X86NoActParallel1x4 => "x86-1x4",
        }
    }

    /// The packing block along the flattened tensor, or `None` for the row-interleaved layout.
    pub fn block(self) -> Option<u64> {
        match self {
            I2sLayout::X86Act128 => Some(128),
            I2sLayout::Arm64 => Some(64),
            I2sLayout::X86NoActParallel1x4 => None,
        }
    }

    /// Byte index and right shift of the code of weight `(row, col)` in a tensor with rows of `k`.
    fn locate(self, k: usize, row: usize, col: usize) -> (usize, u32) {
        match self {
            I2sLayout::X86Act128 | I2sLayout::Arm64 => {
                let (qk, group) = if self == I2sLayout::X86Act128 {
                    (128, 32)
                } else {
                    (64, 16)
                };
                let e = row * k + col;
                let (b, j) = (e / qk, e % qk);
                (b * group + j % group, 6 - 2 * (j / group) as u32)
            }
            I2sLayout::X86NoActParallel1x4 => ((row / 4) * k + col, 6 - 2 * (row % 4) as u32),
        }
    }
}

/// The 2-bit code of weight `(row, col)` of a tensor with rows of `k` weights.
///
/// `bytes` is the tensor's data (at least its `n/4` code bytes). Callers pass coordinates inside the
/// tensor, which the flavor check has already sized; out-of-range coordinates are a programming
/// error and panic on the slice index.
pub fn i2s_code(bytes: &[u8], layout: I2sLayout, k: usize, row: usize, col: usize) -> u8 {
    debug_assert!(col < k, "column {col} outside a row of {k}");
    let (byte, shift) = layout.locate(k, row, col);
    (bytes[byte] >> shift) & 3
}

/// The per-tensor scale: the little-endian f32 at byte `n/4` (spec §3.1). Its sign is kept as stored
/// (a negative scale with flipped codes is self-consistent, §3.1). `None` if `bytes` is too short.
pub fn i2s_scale(bytes: &[u8], n: u64) -> Option<f32> {
    let at = usize::try_from(n / 4).ok()?;
    let s = bytes.get(at..at.checked_add(4)?)?;
    Some(f32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Pack codes (row-major, `rows × k`, each 0..=3) into `layout`, then append the 32-byte tail with
/// `scale` in its first four bytes and zeros after (what the Python converter writes).
///
/// Used by tests and fixture writers. Panics if `codes.len() != rows·k` or the shape does not suit
/// the layout (`k` a multiple of the block, or `rows % 4 == 0` for 1x4): inputs come from code, not files.
pub fn i2s_pack(codes: &[u8], layout: I2sLayout, rows: usize, k: usize, scale: f32) -> Vec<u8> {
    assert_eq!(codes.len(), rows * k, "codes must be rows × k");
    match layout.block() {
        Some(b) => assert!((k as u64).is_multiple_of(b), "row length {k} is not a multiple of {b}"),
        None => assert!(rows.is_multiple_of(4), "the 1x4 layout needs rows % 4 == 0, got {rows}"),
    }
    let n = rows * k;
    let mut out = vec![0u8; n / 4 + I2S_TAIL as usize];
    for row in 0..rows {
        for col in 0..k {
            let (byte, shift) = layout.locate(k, row, col);
            out[byte] |= (codes[row * k + col] & 3) << shift;
        }
    }
    out[n / 4..n / 4 + 4].copy_from_slice(&scale.to_le_bytes());
    out
}

/// Re-pack an I2_S tensor into the x86 128-block layout the engine's kernels read.
///
/// Cost: one pass over the `n` codes and a new `n/4 + 32`-byte buffer (the tensor is no longer
/// zero-copy from the mapping); for the 2B-4T model that is ~0.5 GB written once at load. The x86
/// layout itself is returned as a plain copy. The 32-byte tail is copied verbatim.
///
/// `bytes` must hold at least `rows·k/4 + 32` bytes and the shape must suit `from` (see
/// [`i2s_pack`]); the flavor check guarantees both for tensors it classified.
pub fn i2s_repack_to_x86(bytes: &[u8], from: I2sLayout, rows: usize, k: usize) -> Vec<u8> {
    let n = rows * k;
    let total = n / 4 + I2S_TAIL as usize;
    if from == I2sLayout::X86Act128 {
        return bytes[..total].to_vec();
    }
    let mut out = vec![0u8; total];
    let mut values = vec![0i8; k];
    for row in 0..rows {
        i2s_decode_row(bytes, from, row, &mut values);
        for (col, &v) in values.iter().enumerate() {
            let (byte, shift) = I2sLayout::X86Act128.locate(k, row, col);
            out[byte] |= ((v + 1) as u8) << shift;
        }
    }
    out[n / 4..].copy_from_slice(&bytes[n / 4..total]);
    out
}

/// Decode one row to ternary values `code − 1` (code 3, never written by any quantizer, gives +2 as
/// the kernels would compute it). `out.len()` is the row length. The load-time repack reads rows this way.
pub fn i2s_decode_row(bytes: &[u8], layout: I2sLayout, row: usize, out: &mut [i8]) {
    let k = out.len();
    for (col, v) in out.iter_mut().enumerate() {
        *v = i2s_code(bytes, layout, k, row, col) as i8 - 1;
    }
}
