//! ggml's Q8_0 (type 8): 32 int8 weights per block with one f16 scale `d` (34 bytes); a weight is `qs[j]·d`.
//!
//! llama-quantize stores `output.weight` / `token_embd.weight` in Q8_0 when `n_embd % 256 ≠ 0`
//! (`llama_tensor_get_type`; bitnet_b1_58-3B, Falcon3). Blocks are copied out of the file byte for byte, so no
//! alignment is assumed of the mapping.

use half::f16;

/// Weights per Q8_0 block (ggml's `QK8_0`).
pub const QK8_0: usize = 32;

/// `block_q8_0`: `d`, then `qs[32]` (34 bytes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockQ8_0 {
    pub d: f16,
    pub qs: [i8; QK8_0],
}

impl BlockQ8_0 {
    pub const BYTES: usize = 34;

    /// Read a block from its 34 file bytes.
    pub fn from_bytes(b: &[u8; Self::BYTES]) -> Self {
        let mut qs = [0i8; QK8_0];
        for (q, &v) in qs.iter_mut().zip(&b[2..]) {
            *q = v as i8;
        }
        BlockQ8_0 {
            d: f16::from_le_bytes([b[0], b[1]]),
            qs,
        }
    }

    /// The block's 34 file bytes.
    pub fn to_bytes(&self) -> [u8; Self::BYTES] {
        let mut b = [0u8; Self::BYTES];
        b[..2].copy_from_slice(&self.d.to_le_bytes());
        for (o, &q) in b[2..].iter_mut().zip(&self.qs) {
            *o = q as u8;
        }
        b
    }
}

/// Bytes of `n` Q8_0 weights (`n % 32 == 0`).
pub fn q8_0_bytes(n: usize) -> usize {
    n / QK8_0 * BlockQ8_0::BYTES
}

/// Iterate the blocks of Q8_0 data; a trailing partial block is ignored (row lengths are checked to be
/// multiples of 32 at load, so there is none).
pub fn q8_0_blocks(data: &[u8]) -> impl Iterator<Item = BlockQ8_0> + '_ {
    data.chunks_exact(BlockQ8_0::BYTES).map(|c| {
        let mut b = [0u8; BlockQ8_0::BYTES];
        b.copy_from_slice(c);
        BlockQ8_0::from_bytes(&b)
    })
}

/// `dequantize_row_q8_0` (what `ggml_get_rows` runs on a Q8_0 embedding): `y = f32(q) · f32(d)`, one rounding.
pub fn q8_0_dequantize_row(row: &[u8], out: &mut [f32]) {
    for (blk, o) in q8_0_blocks(row).zip(out.chunks_exact_mut(QK8_0)) {
        let d = blk.d.to_f32();
        for (v, &q) in o.iter_mut().zip(&blk.qs) {
            *v = q as f32 * d;
        }
    }
}

/// `quantize_row_q8_0_ref`, what llama-quantize writes into files: `d = amax/127`, `id = 1/d`,
/// `q = roundf(x·id)` (ties away from zero). Not the activation quantizer of a matmul
/// (`kernels::q8_0::quantize_q8_0`), which rounds ties to even and computes `id` as `127/amax`.
pub fn q8_0_quantize_row_ref(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(q8_0_bytes(x.len()));
    for xb in x.chunks_exact(QK8_0) {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut qs = [0i8; QK8_0];
        for (q, &v) in qs.iter_mut().zip(xb) {
            *q = (v * id).round() as i8;
        }
        out.extend_from_slice(
            &BlockQ8_0 {
                d: f16::from_f32(d),
                qs,
            }
            .to_bytes(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_quantizer_rounds_ties_away_and_dequantizes_to_the_grid() {
        let mut x = [0f32; QK8_0];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -2.5;
        x[3] = -127.0;
        let b = q8_0_quantize_row_ref(&x);
        let blk = q8_0_blocks(&b).next().unwrap();
        assert_eq!(blk.d.to_f32(), 1.0);
        assert_eq!(&blk.qs[..4], &[127, 3, -3, -127]);
        let mut y = [0f32; QK8_0];
        q8_0_dequantize_row(&b, &mut y);
        assert_eq!(&y[..4], &[127.0, 3.0, -3.0, -127.0]);
        assert_eq!(
            BlockQ8_0::from_bytes(&b[..34].try_into().unwrap()).to_bytes().to_vec(),
            b
        );
    }
}
