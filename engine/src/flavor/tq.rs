//! Upstream ggml's ternary block types TQ2_0 (id 35) and TQ1_0 (id 34), spec §4.1–§4.2.
//!
//! Both hold 256 weights per block with one f16 scale `d`; a weight is `(t − 1)·d` with trit
//! `t ∈ {0, 1, 2}`. The structs mirror ggml's `block_tq2_0` / `block_tq1_0` byte for byte and are
//! built by copying from the file, so no alignment is assumed of the mapping.

use half::f16;

/// Weights per TQ block (ggml's `QK_K`).
pub const QK_K: usize = 256;

/// `block_tq2_0`: `qs[64]` 2-bit trits, then `d` (66 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockTq2_0 {
    pub qs: [u8; 64],
    pub d: f16,
}
const _: () = assert!(std::mem::size_of::<BlockTq2_0>() == 66);

/// `block_tq1_0`: `qs[48]` (5 trits per byte), `qh[4]` (4 trits per byte), then `d` (54 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockTq1_0 {
    pub qs: [u8; 48],
    pub qh: [u8; 4],
    pub d: f16,
}
const _: () = assert!(std::mem::size_of::<BlockTq1_0>() == 54);

impl BlockTq2_0 {
    pub const BYTES: usize = 66;

    /// Read a block from its 66 file bytes.
    pub fn from_bytes(b: &[u8; Self::BYTES]) -> Self {
        let mut qs = [0u8; 64];
        qs.copy_from_slice(&b[..64]);
        BlockTq2_0 {
            qs,
            d: f16::from_le_bytes([b[64], b[65]]),
        }
    }

    /// The block's 256 ternary values (−1, 0, +1; a never-written trit 3 gives +2).
    /// Within each 32-byte half, byte `m` holds weights `m + 32l` at bits `2l` (LSB first).
    pub fn ternary(&self) -> [i8; QK_K] {
        let mut out = [0i8; QK_K];
        for half in 0..2 {
            for l in 0..4 {
                for m in 0..32 {
                    out[half * 128 + l * 32 + m] = ((self.qs[half * 32 + m] >> (2 * l)) & 3) as i8 - 1;
                }
            }
        }
        out
    }
}

/// Decode the `n`-th base-3 digit (most significant first) of a TQ1_0 byte, as ggml does:
/// `((u8)(byte·3ⁿ) · 3) >> 8`.
fn trit(byte: u8, n: usize) -> i8 {
    const POW3: [u8; 5] = [1, 3, 9, 27, 81];
    let q = byte.wrapping_mul(POW3[n]);
    ((u16::from(q) * 3) >> 8) as i8
}

impl BlockTq1_0 {
    pub const BYTES: usize = 54;

    /// Read a block from its 54 file bytes.
    pub fn from_bytes(b: &[u8; Self::BYTES]) -> Self {
        let mut qs = [0u8; 48];
        qs.copy_from_slice(&b[..48]);
        let mut qh = [0u8; 4];
        qh.copy_from_slice(&b[48..52]);
        BlockTq1_0 {
            qs,
            qh,
            d: f16::from_le_bytes([b[52], b[53]]),
        }
    }

    /// The block's 256 ternary values, in ggml's `dequantize_row_tq1_0` order: qs bytes 0..31 hold
    /// weights `m + 32n` (n = 0..4), bytes 32..47 weights `160 + m + 16n`, qh weights `240 + j + 4n`.
    pub fn ternary(&self) -> [i8; QK_K] {
        let mut out = [0i8; QK_K];
        for n in 0..5 {
            for m in 0..32 {
                out[n * 32 + m] = trit(self.qs[m], n) - 1;
            }
            for m in 0..16 {
                out[160 + n * 16 + m] = trit(self.qs[32 + m], n) - 1;
            }
        }
        for n in 0..4 {
            for j in 0..4 {
                out[240 + n * 4 + j] = trit(self.qh[j], n) - 1;
            }
        }
        out
    }
}

/// Iterate the blocks of a TQ tensor's data; a trailing partial block is ignored (the reader only
/// accepts row lengths that are multiples of 256, so there is none).
pub fn tq2_0_blocks(data: &[u8]) -> impl Iterator<Item = BlockTq2_0> + '_ {
    data.chunks_exact(BlockTq2_0::BYTES).map(|c| {
        let mut b = [0u8; BlockTq2_0::BYTES];
        b.copy_from_slice(c);
        BlockTq2_0::from_bytes(&b)
    })
}

/// See [`tq2_0_blocks`].
pub fn tq1_0_blocks(data: &[u8]) -> impl Iterator<Item = BlockTq1_0> + '_ {
    data.chunks_exact(BlockTq1_0::BYTES).map(|c| {
        let mut b = [0u8; BlockTq1_0::BYTES];
        b.copy_from_slice(c);
        BlockTq1_0::from_bytes(&b)
    })
}
