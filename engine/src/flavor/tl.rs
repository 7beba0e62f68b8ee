//! bitnet.cpp's LUT weight formats TL1 (fork type 38, ARM) and TL2 (fork type 39, x86).
//!
//! bitnet.cpp's converter (`utils/convert-hf-to-gguf-bitnet.py`, `preprocess_weights_tl1/tl2`) groups
//! each row's ternary weights, turns each group into a small table index, and shuffles the indices
//! into the order its generated kernels stream them. The shuffle depends on tile parameters
//! ([`TileParams`]: BM rows per tile, BK columns per tile, bm rows per SIMD block) that are *not* in
//! the file, only in the `kernel_config.ini` the file was converted with (see [`super::tl_config`]).
//!
//! - **TL1**: pairs `(a, b)` → nibble `3a + b + 4` (0..=8); two nibbles per byte; `n/4` bytes, then
//!   the f32 scale at byte `n/4` (ggml's `ggml_bitnet_transform_tensor` for TL1).
//! - **TL2**: the first `K − K mod BK` columns in triples `(a, b, c)` → `v = 9a + 3b + c`, stored as
//!   a magnitude nibble `|v|` (0..=13; two per byte) and a sign bit (`v < 0`; 16 per u16); the
//!   remaining `K mod BK` columns in pairs like TL1, tiled with BM and a fixed 32×32 tile. The bytes are
//!   zero-padded to `(K−256)·M/3·5/8 + 256·M/2·4/8`, and the scale is the f32 at that size rounded
//!   up to 32 (the fork's gguf-py writes the `<name>_scale` tensor into that slot).
//!
//! Here every shuffle is reproduced step by step as the converter's reshape/transpose chain over
//! element indices ([`Plan`]), so packing is the converter's function and decoding is its exact
//! inverse. Decoding checks what the converter can never write (a nibble out of range, a sign bit on
//! a zero magnitude, non-zero padding): that is how a wrong tile configuration shows itself.

use serde::Serialize;
use thiserror::Error;

/// Which LUT format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlKind {
    Tl1,
    Tl2,
}

impl TlKind {
    pub fn name(self) -> &'static str {
        match self {
            TlKind::Tl1 => "tl1",
            TlKind::Tl2 => "tl2",
        }
    }
}

/// One kernel's tile parameters, as `kernel_config.ini` names them: `bm` (BM, rows per tile),
/// `bk` (BK, columns per tile), `bmm` (bm, rows per SIMD block).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct TileParams {
    pub bm: usize,
    pub bk: usize,
    pub bmm: usize,
}

impl std::fmt::Display for TileParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BM={} BK={} bm={}", self.bm, self.bk, self.bmm)
    }
}

/// Why TL bytes cannot be decoded (or packed) with the given tile parameters.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum TlError {
    #[error("{kind} {m}x{k} cannot be tiled with {params}: {why}")]
    BadTiling {
        kind: &'static str,
        m: usize,
        k: usize,
        params: TileParams,
        why: String,
    },
    #[error("{kind} {m}x{k}: {len} bytes given, the packing needs {need}")]
    TooShort {
        kind: &'static str,
        m: usize,
        k: usize,
        len: usize,
        need: usize,
    },
    #[error("{kind} {m}x{k} with {params}: byte {at} holds {what}, which the converter never writes")]
    Invalid {
        kind: &'static str,
        m: usize,
        k: usize,
        params: TileParams,
        at: usize,
        what: String,
    },
}

/// Transpose a row-major array of `shape` by `perm` (numpy's `a.reshape(shape).transpose(perm)`,
/// made contiguous). A few lines instead of an n-d array crate: only index vectors are moved.
fn transpose(src: &[u32], shape: &[usize], perm: &[usize]) -> Vec<u32> {
    let nd = shape.len();
    let mut strides = vec![1usize; nd];
    for d in (0..nd.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let out_strides: Vec<usize> = perm.iter().map(|&p| strides[p]).collect();
    let mut out = Vec::with_capacity(src.len());
    let mut idx = vec![0usize; nd];
    let mut at = 0usize;
    for _ in 0..src.len() {
        out.push(src[at]);
        for d in (0..nd).rev() {
            idx[d] += 1;
            at += out_strides[d];
            if idx[d] < out_shape[d] {
                break;
            }
            at -= out_strides[d] * out_shape[d];
            idx[d] = 0;
        }
    }
    out
}

/// Where each packed element comes from: `src[j]` is the (row-major) index of the group value that
/// the converter's chain of reshapes and transposes puts at flat position `j`.
struct Plan {
    src: Vec<u32>,
}

impl Plan {
    /// Run `steps` (shape, axis permutation) over `n` indices; every shape must hold exactly `n`.
    fn run(n: usize, steps: &[(&[usize], &[usize])]) -> Result<Plan, String> {
        let n32 = u32::try_from(n).map_err(|_| format!("{n} groups is more than this decoder indexes"))?;
        let mut src: Vec<u32> = (0..n32).collect();
        for (shape, perm) in steps {
            let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if count != Some(n) || shape.contains(&0) {
                return Err(format!("shape {shape:?} does not hold the {n} groups"));
            }
            src = transpose(&src, shape, perm);
        }
        Ok(Plan { src })
    }
}

/// Swap the second and third 8-byte rows of every `bm`-byte row (the converter's
/// `weight[:, [0,1,2,3], :] = weight[:, [0,2,1,3], :]`): the byte position a value lands at.
fn swap_rows_1_2(pos: usize, bm: usize) -> usize {
    let (row, within) = (pos / bm, pos % bm);
    let (r, c) = (within / 8, within % 8);
    let r = match r {
        1 => 2,
        2 => 1,
        other => other,
    };
    row * bm + r * 8 + c
}

fn divides(what: &str, d: usize, n: usize) -> Result<(), String> {
    if d == 0 || !n.is_multiple_of(d) {
        return Err(format!("{what} ({n}) is not a multiple of {d}"));
    }
    Ok(())
}

/// TL1's pair ("two") packing of an `m × k2` block of pair nibbles: byte `b` holds the nibbles of
/// `src[2b]` (high) and `src[2b+1]` (low) after the row swap. TL2's tail shares its first steps ([`pair_plan`]).
fn pair_plan_tl1(m: usize, k: usize, p: TileParams) -> Result<Plan, String> {
    let (bm_, by_, bm, by) = (p.bm, p.bk, p.bmm, 256 / p.bmm.max(1));
    divides("M", bm_, m)?;
    divides("K", by_, k)?;
    divides("BM", bm, bm_)?;
    divides("BK", by, by_)?;
    divides("bm", 16, bm)?;
    divides("256/bm", 4, by)?;
    pair_plan(m, k, [bm_, by_, bm, by], true)
}

/// TL2's "two" part: BM from the config, BK = bm = 32, by = 4 (`preprocess_two_weights_tl2`).
/// Byte `b` (before the row swap) holds `src[2b]` high, `src[2b+1]` low.
fn pair_plan_tl2(m: usize, k: usize, bm_: usize) -> Result<Plan, String> {
    let (by_, bm, by) = (32, 32, 4);
    divides("M", bm_, m)?;
    divides("the two-weight part's K", by_, k)?;
    divides("BM", bm, bm_)?;
    pair_plan(m, k, [bm_, by_, bm, by], false)
}

/// The pair packing's steps for tiles `[BM, BK, bm, by]` (checked by the caller); `lanes` adds TL1's two
/// steps that interleave 16-row lanes.
fn pair_plan(m: usize, k: usize, [bm_, by_, bm, by]: [usize; 4], lanes: bool) -> Result<Plan, String> {
    let (mt, kt) = (m / bm_, k / by_);
    let blocks: [(&[usize], &[usize]); 4] = [
        (&[mt, bm_, k / 2], &[0, 2, 1]),
        (&[mt, kt, by_ / 2, bm_], &[0, 1, 3, 2]),
        (&[mt, kt, bm_ / bm, bm, by_ / 2], &[0, 1, 2, 4, 3]),
        (&[mt, kt, bm_ / bm, by_ / by, by / 2, bm], &[0, 1, 2, 3, 5, 4]),
    ];
    if !lanes {
        return Plan::run(m * k / 2, &blocks);
    }
    let lane_steps: [(&[usize], &[usize]); 2] = [
        (
            &[mt, kt, bm_ / bm, by_ / by, bm / 16, 16, by / 2],
            &[0, 1, 2, 3, 4, 6, 5],
        ),
        (
            &[mt, kt, bm_ / bm, by_ / by, bm / 16, by / 4, 2, 16],
            &[0, 1, 2, 3, 4, 5, 7, 6],
        ),
    ];
    Plan::run(m * k / 2, &[blocks.as_slice(), lane_steps.as_slice()].concat())
}

/// TL2's "three" part: (magnitude plan, sign plan) over the `m × k3/3` triples.
/// Magnitude byte `b` (before the row swap) holds `src[2b]` high, `src[2b+1]` low; sign u16 `w`
/// holds `src[16w' + i]` at bit `15 − i` (see [`sign_word_members`]).
fn triple_plans(m: usize, k3: usize, p: TileParams) -> Result<(Plan, Plan), String> {
    let (bm_, by_, bm) = (p.bm, p.bk, p.bmm);
    if bm != 32 {
        return Err(format!(
            "bm must be 32 for TL2 (codegen_tl2.py asserts it; the converter's packing fails or drops weights otherwise), got {bm}"
        ));
    }
    let by = 192 / bm;
    divides("M", bm_, m)?;
    divides("BK", 3, by_)?;
    divides("the three-weight part's K", by_, k3)?;
    divides("BM", bm, bm_)?;
    divides("BK", by * 4, by_)?;
    let (mt, kt) = (m / bm_, k3 / by_);
    let n = m * k3 / 3;
    let head: [(&[usize], &[usize]); 3] = [
        (&[mt, bm_, k3 / 3], &[0, 2, 1]),
        (&[mt, kt, by_ / 3, bm_], &[0, 1, 3, 2]),
        (&[mt, kt, bm_ / bm, bm, by_ / 3], &[0, 1, 2, 4, 3]),
    ];
    let mag_shape = [mt, kt, bm_ / bm, by_ / by, by / 3, bm];
    let mut mag_steps = head.to_vec();
    mag_steps.push((&mag_shape, &[0, 1, 2, 3, 5, 4]));
    let mag = Plan::run(n, &mag_steps)?;
    let s1 = [mt, kt, bm_ / bm, by_ / (by * 4), by / 3 * 4, bm];
    let s2 = [mt, kt, bm_ / bm, by_ / (by * 4), bm, by / 3 * 4];
    let mut sign_steps = head.to_vec();
    sign_steps.push((&s1, &[0, 1, 2, 3, 5, 4]));
    sign_steps.push((&s2, &[0, 1, 2, 3, 5, 4]));
    let sign = Plan::run(n, &sign_steps)?;
    Ok((mag, sign))
}

/// The triples packed into sign word `w` (little-endian u16 at bytes `2w, 2w+1`): the converter
/// views the sign array as `(…, 16, bm/2)` and puts row `i` at bit `15 − i`. Returns the 16 flat
/// positions in the sign plan, bit 15 first.
fn sign_word_members(w: usize, bm: usize) -> impl Iterator<Item = usize> {
    let half = bm / 2;
    let (block, col) = (w / half, w % half);
    (0..16).map(move |i| block * 16 * half + i * half + col)
}

/// TL2's padded code size: `(K−256)·M/3·5/8 + 256·M/2·4/8` in ggml's integer order (needs K ≥ 256).
pub fn tl2_packed_len(m: usize, k: usize) -> Option<usize> {
    let big = k.checked_sub(256)?.checked_mul(m)? / 3 * 5 / 8;
    big.checked_add(256usize.checked_mul(m)? / 2 * 4 / 8)
}

/// Where the scale sits: TL1 at `n/4`; TL2 at the padded code size rounded up to 32.
pub fn tl_scale_offset(kind: TlKind, m: usize, k: usize) -> Option<usize> {
    match kind {
        TlKind::Tl1 => m.checked_mul(k).map(|n| n / 4),
        TlKind::Tl2 => tl2_packed_len(m, k).map(|p| p.next_multiple_of(32)),
    }
}

/// Bits per weight a TL tensor of `m × k` occupies in the file (scale slot included).
pub fn tl_bits_per_weight(kind: TlKind, m: usize, k: usize) -> Option<f64> {
    let bytes = tl_scale_offset(kind, m, k)? + 32;
    Some(bytes as f64 * 8.0 / (m * k) as f64)
}

fn tiling_error(kind: TlKind, m: usize, k: usize, params: TileParams, why: String) -> TlError {
    TlError::BadTiling {
        kind: kind.name(),
        m,
        k,
        params,
        why,
    }
}

/// Columns in TL2's three-weight part (the rest, `k mod BK`, are packed in pairs).
fn tl2_split(k: usize, p: TileParams) -> usize {
    if p.bk == 0 {
        0
    } else {
        k - k % p.bk
    }
}

/// Pack a row-major `m × k` ternary matrix (values −1, 0, 1) exactly as the converter's
/// `preprocess_weights_tl1` / `preprocess_weights_tl2` does. The result is the code bytes only
/// (TL1: `m·k/4`; TL2: zero-padded to [`tl2_packed_len`]); the caller writes the scale slot.
pub fn tl_pack(kind: TlKind, w: &[i8], m: usize, k: usize, p: TileParams) -> Result<Vec<u8>, TlError> {
    assert_eq!(w.len(), m * k, "weights must be m × k");
    let bad = |why| tiling_error(kind, m, k, p, why);
    let pair = |row: usize, col2: usize, cols: usize, off: usize| -> u8 {
        let at = row * cols + off + 2 * col2;
        (3 * w[at] + w[at + 1] + 4) as u8
    };
    match kind {
        TlKind::Tl1 => {
            let plan = pair_plan_tl1(m, k, p).map_err(bad)?;
            let v = |i: u32| pair(i as usize / (k / 2), i as usize % (k / 2), k, 0);
            Ok(plan.src.chunks_exact(2).map(|c| (v(c[0]) << 4) | v(c[1])).collect())
        }
        TlKind::Tl2 => {
            let total = tl2_packed_len(m, k).ok_or_else(|| bad("K must be at least 256".into()))?;
            let k3 = tl2_split(k, p);
            let (mag, sign) = triple_plans(m, k3, p).map_err(bad)?;
            let triple = |i: u32| {
                let (r, c) = (i as usize / (k3 / 3), i as usize % (k3 / 3));
                let at = r * k + 3 * c;
                9 * w[at] + 3 * w[at + 1] + w[at + 2]
            };
            let mut out = vec![0u8; mag.src.len() / 2];
            for (b, c) in mag.src.chunks_exact(2).enumerate() {
                let byte = ((triple(c[0]).unsigned_abs()) << 4) | triple(c[1]).unsigned_abs();
                out[swap_rows_1_2(b, p.bmm)] = byte;
            }
            for word in 0..sign.src.len() / 16 {
                let mut bits = 0u16;
                for (i, pos) in sign_word_members(word, p.bmm).enumerate() {
                    if triple(sign.src[pos]) < 0 {
                        bits |= 1 << (15 - i);
                    }
                }
                out.extend_from_slice(&bits.to_le_bytes());
            }
            let k2 = k - k3;
            if k2 > 0 {
                let two = pair_plan_tl2(m, k2, p.bm).map_err(bad)?;
                let base = out.len();
                out.resize(base + two.src.len() / 2, 0);
                let v = |i: u32| pair(i as usize / (k2 / 2), i as usize % (k2 / 2), k, k3);
                for (b, c) in two.src.chunks_exact(2).enumerate() {
                    out[base + swap_rows_1_2(b, 32)] = (v(c[0]) << 4) | v(c[1]);
                }
            }
            if out.len() > total {
                return Err(bad(format!(
                    "the packing takes {} bytes, more than the {total} the format reserves",
                    out.len()
                )));
            }
            out.resize(total, 0);
            Ok(out)
        }
    }
}

/// Decode TL code bytes into row-major codes `value + 1` (0, 1, 2: the I2_S code of each weight),
/// checking everything the converter guarantees. `bytes` must hold at least the code bytes.
pub fn tl_decode(kind: TlKind, bytes: &[u8], m: usize, k: usize, p: TileParams) -> Result<Vec<u8>, TlError> {
    let bad = |why| tiling_error(kind, m, k, p, why);
    let invalid = |at: usize, what: String| TlError::Invalid {
        kind: kind.name(),
        m,
        k,
        params: p,
        at,
        what,
    };
    let need = match kind {
        TlKind::Tl1 => m * k / 4,
        TlKind::Tl2 => tl2_packed_len(m, k).ok_or_else(|| bad("K must be at least 256".into()))?,
    };
    if bytes.len() < need {
        return Err(TlError::TooShort {
            kind: kind.name(),
            m,
            k,
            len: bytes.len(),
            need,
        });
    }
    let mut codes = vec![0u8; m * k];
    // Pair group `i` of an `m × cols` block starting at column `off`, from nibble `nib` at byte `at`.
    let put_pair = |codes: &mut [u8], i: u32, nib: u8, cols: usize, off: usize, at: usize| -> Result<(), TlError> {
        if nib > 8 {
            return Err(invalid(at, format!("the pair index {nib} (valid: 0..=8)")));
        }
        let (r, c) = (i as usize / (cols / 2), i as usize % (cols / 2));
        let x = r * k + off + 2 * c;
        codes[x] = nib / 3;
        codes[x + 1] = nib % 3;
        Ok(())
    };
    match kind {
        TlKind::Tl1 => {
            let plan = pair_plan_tl1(m, k, p).map_err(bad)?;
            for (b, c) in plan.src.chunks_exact(2).enumerate() {
                put_pair(&mut codes, c[0], bytes[b] >> 4, k, 0, b)?;
                put_pair(&mut codes, c[1], bytes[b] & 15, k, 0, b)?;
            }
        }
        TlKind::Tl2 => {
            let k3 = tl2_split(k, p);
            let (mag, sign) = triple_plans(m, k3, p).map_err(bad)?;
            let mag_len = mag.src.len() / 2;
            let mut mags = vec![0u8; mag.src.len()];
            for b in 0..mag_len {
                let at = swap_rows_1_2(b, p.bmm);
                let (hi, lo) = (bytes[at] >> 4, bytes[at] & 15);
                for (v, pos) in [(hi, 2 * b), (lo, 2 * b + 1)] {
                    if v > 13 {
                        return Err(invalid(at, format!("the triple magnitude {v} (valid: 0..=13)")));
                    }
                    mags[mag.src[pos] as usize] = v;
                }
            }
            let mut negative = vec![false; sign.src.len()];
            for word in 0..sign.src.len() / 16 {
                let at = mag_len + 2 * word;
                let bits = u16::from_le_bytes([bytes[at], bytes[at + 1]]);
                for (i, pos) in sign_word_members(word, p.bmm).enumerate() {
                    negative[sign.src[pos] as usize] = bits & (1 << (15 - i)) != 0;
                }
            }
            let sign_end = mag_len + sign.src.len() / 8;
            for (g, (&mag, &neg)) in mags.iter().zip(&negative).enumerate() {
                if neg && mag == 0 {
                    return Err(invalid(sign_end, format!("a sign bit on a zero triple (triple {g})")));
                }
                let v = if neg { -(mag as i32) } else { mag as i32 };
                let u = (v + 13) as u8;
                let x = (g / (k3 / 3)) * k + 3 * (g % (k3 / 3));
                codes[x..x + 3].copy_from_slice(&[u / 9, u / 3 % 3, u % 3]);
            }
            let mut end = sign_end;
            let k2 = k - k3;
            if k2 > 0 {
                let two = pair_plan_tl2(m, k2, p.bm).map_err(bad)?;
                for (b, c) in two.src.chunks_exact(2).enumerate() {
                    let at = sign_end + swap_rows_1_2(b, 32);
                    put_pair(&mut codes, c[0], bytes[at] >> 4, k2, k3, at)?;
                    put_pair(&mut codes, c[1], bytes[at] & 15, k2, k3, at)?;
                }
                end += two.src.len() / 2;
            }
            if end > need {
                return Err(bad(format!(
                    "the packing takes {end} bytes, more than the {need} reserved"
                )));
            }
            if let Some(off) = bytes[end..need].iter().position(|&b| b != 0) {
                return Err(invalid(end + off, "non-zero padding".into()));
            }
        }
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg_ternary(n: usize, seed: u64) -> Vec<i8> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 33) % 3) as i8 - 1
            })
            .collect()
    }

    fn round_trip(kind: TlKind, m: usize, k: usize, p: TileParams) {
        let w = lcg_ternary(m * k, (m * 31 + k) as u64);
        let packed = tl_pack(kind, &w, m, k, p).unwrap();
        let codes = tl_decode(kind, &packed, m, k, p).unwrap();
        let back: Vec<i8> = codes.iter().map(|&c| c as i8 - 1).collect();
        assert_eq!(back, w, "{kind:?} {m}x{k} {p}");
    }

    #[test]
    fn tl2_round_trips_with_and_without_a_two_weight_tail() {
        let p = |bm, bk| TileParams { bm, bk, bmm: 32 };
        round_trip(TlKind::Tl2, 256, 1536, p(256, 96)); // no tail
        round_trip(TlKind::Tl2, 128, 1536, p(128, 192));
        round_trip(TlKind::Tl2, 64, 4096, p(64, 96)); // 4096 mod 96 = 64: a 64-column tail
        round_trip(TlKind::Tl2, 160, 320, p(160, 96)); // 320 mod 96 = 32
    }

    #[test]
    fn tl1_round_trips() {
        round_trip(
            TlKind::Tl1,
            256,
            512,
            TileParams {
                bm: 256,
                bk: 128,
                bmm: 32,
            },
        );
        round_trip(
            TlKind::Tl1,
            128,
            256,
            TileParams {
                bm: 128,
                bk: 64,
                bmm: 64,
            },
        );
    }

    #[test]
    fn tl2_size_matches_ggml() {
        assert_eq!(tl2_packed_len(1536, 1536), Some(507_904));
        assert_eq!(tl_scale_offset(TlKind::Tl2, 1536, 1536), Some(507_904));
        assert_eq!(tl2_packed_len(100, 255), None);
    }

    #[test]
    fn wrong_tiles_are_caught_or_scramble() {
        let (m, k) = (256, 1536);
        let w = lcg_ternary(m * k, 7);
        let good = TileParams {
            bm: 256,
            bk: 96,
            bmm: 32,
        };
        let packed = tl_pack(TlKind::Tl2, &w, m, k, good).unwrap();
        let other = TileParams {
            bm: 128,
            bk: 192,
            bmm: 32,
        };
        let back = tl_decode(TlKind::Tl2, &packed, m, k, other);
        assert!(back.map_or(true, |c| c.iter().zip(&w).any(|(&c, &v)| c as i8 - 1 != v)));
        let bm64 = TileParams {
            bm: 256,
            bk: 96,
            bmm: 64,
        };
        assert!(matches!(
            tl_decode(TlKind::Tl2, &packed, m, k, bm64),
            Err(TlError::BadTiling { .. })
        ));
    }

    #[test]
    fn bad_bytes_are_refused() {
        let p = TileParams {
            bm: 128,
            bk: 64,
            bmm: 64,
        };
        let mut bytes = tl_pack(TlKind::Tl1, &lcg_ternary(128 * 256, 3), 128, 256, p).unwrap();
        bytes[5] = 0x9f;
        assert!(matches!(
            tl_decode(TlKind::Tl1, &bytes, 128, 256, p),
            Err(TlError::Invalid { .. })
        ));
        assert!(matches!(
            tl_decode(TlKind::Tl1, &bytes[..10], 128, 256, p),
            Err(TlError::TooShort { .. })
        ));
    }
}
