//! AMX-INT8 I2_S gemm (`i2s.x86.amx.gemm`): `tdpbusd` multiplies a 16 × 64 tile of unsigned weight codes by a
//! 64 × 16 tile of int8 activations into 16 × 16 int32 sums. Every product and every partial sum is an exact
//! int32 (|code·q| ≤ 384, so for K below 2²² no sum can overflow), so the sums equal the scalar oracle's whatever order the unit adds them in.
//!
//! The activations are packed once per matmul ([`pack`]) into AMX's B layout; each row panel of 32 weight rows
//! is decoded once (avx512's `decode`) into A tiles and reused by every token tile. Mnemonics go through
//! stable `asm!` (Rust's AMX intrinsics are unstable) with fixed tile registers: tmm0..3 hold the 2 × 2 C tiles
//! (rows × tokens), tmm4/5 the two row tiles of A, tmm6/7 the two token tiles of B. Rust code never uses tile
//! registers, so their state carries from one `asm!` block to the next within a call.
//!
//! The `pub(super)` kernels are sound only where [`available`] returned true; the registry installs them only
//! then, and this module is private to `kernels`.

use std::arch::asm;
use std::arch::x86_64::*;
use std::cell::RefCell;
use std::sync::OnceLock;

use super::avx512::decode;

/// Rows of every tile (weight rows of A and C, K/4 of B) and tokens per tile (columns of C, dwords of B).
const T: usize = 16;
/// Activations (= codes) per tile step along K.
const KC: usize = 64;
/// Bytes of one 16 × 64 tile.
const TILE_BYTES: usize = T * KC;
/// Fewest tokens the dispatcher hands this kernel (fewer take VNNI: a tile pair pads to 32 tokens).
pub(super) const MIN_TOKENS: usize = 16;
/// Weight rows per panel (two A tiles).
pub(super) const PANEL_ROWS: usize = 2 * T;

/// Whether this CPU has AMX-TILE and AMX-INT8 and Linux granted this process the tile data state (asked once).
/// Any failure means "not available": the registry then keeps the VNNI kernel.
pub(super) fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| is_x86_feature_detected!("avx512f") && cpu_has_amx_int8() && request_tile_data())
}

/// CPUID leaf 7 EDX bits 24 (AMX-TILE) and 25 (AMX-INT8); `is_x86_feature_detected!` knows AMX only on nightly.
fn cpu_has_amx_int8() -> bool {
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86_64 CPU; leaf 7 is read only when the maximum leaf reaches it.
    let has = unsafe { __get_cpuid_max(0).0 >= 7 && __cpuid_count(7, 0).edx & (3 << 24) == 3 << 24 };
    has
}

/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`: Linux gives tile state only to processes that ask
/// (once per process; threads inherit it). Fails where the kernel or hypervisor does not support AMX.
#[cfg(target_os = "linux")]
fn request_tile_data() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: a plain syscall with integer arguments; it changes only this process's permitted xstate.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn request_tile_data() -> bool {
    false
}

/// Bytes [`pack`] writes for `n` tokens of `k`: token tiles come in pairs, the missing tokens zero.
pub(super) fn packed_len(k: usize, n: usize) -> usize {
    n.div_ceil(2 * T) * 2 * T * k
}

/// The B tiles of `n` int8 token rows of length `k`: per 16-token tile, per 64-K step, 16 rows of 64 bytes in
/// which row `kk` holds, for each token `t`, its activations `4·kk .. 4·kk+4` of the step (AMX's VNNI-4 layout,
/// one dword per token). Tokens past `n` (up to a whole tile pair) are zero. Requires [`available`].
pub(super) fn pack(q: &[i8], k: usize, n: usize, packed: &mut Vec<i8>) {
    assert!(k.is_multiple_of(KC) && q.len() >= n * k);
    packed.clear();
    packed.resize(packed_len(k, n), 0);
    // SAFETY: installed by the registry only after `available()` (AVX-512F); sizes checked above.
    unsafe { pack_impl(q, k, n, packed) }
}

/// `pack` body: each 16 tokens × 16 dwords block is one [`transpose16`].
///
/// # Safety
/// AVX-512F present; `q` holds `n·k` bytes and `packed` `packed_len(k, n)`.
#[target_feature(enable = "avx512f")]
unsafe fn pack_impl(q: &[i8], k: usize, n: usize, packed: &mut [i8]) {
    for (j, tile) in packed.chunks_exact_mut(T * k).enumerate() {
        let live = T.min(n.saturating_sub(j * T));
        if live == 0 {
            break;
        }
        for s in 0..k / KC {
            let mut v = [_mm512_setzero_si512(); T];
            for (t, vt) in v.iter_mut().enumerate().take(live) {
                // SAFETY: token j·16 + t < n, so its bytes s·64 .. s·64+64 lie within `q`.
                *vt = unsafe { _mm512_loadu_si512(q.as_ptr().add((j * T + t) * k + s * KC).cast()) };
            }
            for (kk, row) in transpose16(v).into_iter().enumerate() {
                // SAFETY: step s of this tile spans bytes s·1 KiB .. s·1 KiB + 1 KiB of its 16·k bytes.
                unsafe { _mm512_storeu_si512(tile.as_mut_ptr().add(s * TILE_BYTES + kk * KC).cast(), row) };
            }
        }
    }
}

/// Transpose a 16 × 16 matrix of 32-bit elements (one row per vector): `unpack{lo,hi}_epi32`, then
/// `unpack{lo,hi}_epi64` give, per 128-bit lane L, column 4L+m of each group of four rows; two rounds of
/// `shuffle_i32x4` then gather those lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose16(r: [__m512i; T]) -> [__m512i; T] {
    let mut v = [[_mm512_setzero_si512(); 4]; 4];
    for g in 0..4 {
        let [r0, r1, r2, r3] = [r[4 * g], r[4 * g + 1], r[4 * g + 2], r[4 * g + 3]];
        let (a, b) = (_mm512_unpacklo_epi32(r0, r1), _mm512_unpackhi_epi32(r0, r1));
        let (c, d) = (_mm512_unpacklo_epi32(r2, r3), _mm512_unpackhi_epi32(r2, r3));
        v[g] = [
            _mm512_unpacklo_epi64(a, c),
            _mm512_unpackhi_epi64(a, c),
            _mm512_unpacklo_epi64(b, d),
            _mm512_unpackhi_epi64(b, d),
        ];
    }
    let mut out = [_mm512_setzero_si512(); T];
    for m in 0..4 {
        let x0 = _mm512_shuffle_i32x4::<0b01_00_01_00>(v[0][m], v[1][m]);
        let x1 = _mm512_shuffle_i32x4::<0b11_10_11_10>(v[0][m], v[1][m]);
        let y0 = _mm512_shuffle_i32x4::<0b01_00_01_00>(v[2][m], v[3][m]);
        let y1 = _mm512_shuffle_i32x4::<0b11_10_11_10>(v[2][m], v[3][m]);
        out[m] = _mm512_shuffle_i32x4::<0b10_00_10_00>(x0, y0);
        out[4 + m] = _mm512_shuffle_i32x4::<0b11_01_11_01>(x0, y0);
        out[8 + m] = _mm512_shuffle_i32x4::<0b10_00_10_00>(x1, y1);
        out[12 + m] = _mm512_shuffle_i32x4::<0b11_01_11_01>(x1, y1);
    }
    out
}

/// `ldtilecfg` operand: palette 1, all eight tiles 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

const CONFIG: TileConfig = TileConfig {
    palette: 1,
    start_row: 0,
    reserved: [0; 14],
    colsb: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
    rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
};

/// One 64-byte line; buffers of them are 64-byte aligned (tile rows never straddle cache lines).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

thread_local! {
    /// This thread's decoded row panel (A tiles), reused across calls.
    static PANEL: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

/// Exact I2_S dots of every row of `codes` × `n` tokens packed by [`pack`], into `out[t·ld + r]`
/// (`i2s.x86.amx.gemm`). Requires [`available`].
pub(super) fn i2s_rows_packed(codes: &[u8], k: usize, packed: &[i8], n: usize, out: &mut [i32], ld: usize) {
    assert!(
        k.is_multiple_of(128) && k > 0,
        "I2_S rows need K a positive multiple of 128"
    );
    let rows = codes.len() / (k / 4);
    assert!(packed.len() >= packed_len(k, n) && ld >= rows && (n == 0 || out.len() >= (n - 1) * ld + rows));
    if n == 0 || rows == 0 {
        return;
    }
    PANEL.with(|cell| {
        let mut fresh = Vec::new();
        let mut held = cell.try_borrow_mut();
        let panel = match held.as_deref_mut() {
            Ok(v) => v,
            Err(_) => &mut fresh,
        };
        panel.resize(PANEL_ROWS * k / 64, Line([0; 64]));
        // SAFETY: installed by the registry only after `available()` (AVX-512F, AMX-TILE/INT8, tile permission);
        // the buffers were sized above.
        unsafe { rows_impl(codes, k, packed, n, out, ld, panel) }
    });
}

/// `i2s_rows_packed` body.
///
/// # Safety
/// [`available`] must have returned true; `packed` holds `packed_len(k, n)` bytes, `panel` `32·k` bytes, `out`
/// `(n−1)·ld + rows` elements.
#[target_feature(enable = "avx512f")]
unsafe fn rows_impl(codes: &[u8], k: usize, packed: &[i8], n: usize, out: &mut [i32], ld: usize, panel: &mut [Line]) {
    let (kb, steps) = (k / 4, k / KC);
    let rows = codes.len() / kb;
    let mut c = [Line([0; 64]); 4 * T];
    // SAFETY: CONFIG is a valid palette-1 configuration; `available()` holds (caller).
    unsafe { asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly)) };
    for r0 in (0..rows).step_by(PANEL_ROWS) {
        let pr = PANEL_ROWS.min(rows - r0);
        // SAFETY: rows r0..r0+pr lie within `codes`; `panel` holds 32·k bytes (caller).
        unsafe { decode_panel(&codes[r0 * kb..(r0 + pr) * kb], kb, pr, panel) };
        for t0 in (0..n).step_by(2 * T) {
            let a = panel.as_ptr().cast::<u8>();
            let b = packed[t0 * k..].as_ptr();
            // SAFETY: A tiles of step s lie at 2·s·1 KiB (+1 KiB) of the 32·k-byte panel; the B tiles of the
            // token pair at (s and steps + s) KiB from `b`, within `packed` (2·16·k bytes per pair).
            unsafe {
                asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "tilezero tmm2",
                    "tilezero tmm3",
                    options(nostack, nomem)
                );
                if n - t0 <= T {
                    // A lone last token tile: the pair's second tile would be all padding.
                    for s in 0..steps {
                        asm!(
                            "tileloadd tmm4, [{a} + {st}]",
                            "tileloadd tmm5, [{a} + {st} + 1024]",
                            "tileloadd tmm6, [{b0} + {st}]",
                            "tdpbusd tmm0, tmm4, tmm6",
                            "tdpbusd tmm2, tmm5, tmm6",
                            a = in(reg) a.add(2 * s * TILE_BYTES),
                            b0 = in(reg) b.add(s * TILE_BYTES),
                            st = in(reg) KC,
                            options(nostack, readonly),
                        );
                    }
                } else {
                    for s in 0..steps {
                        asm!(
                            "tileloadd tmm4, [{a} + {st}]",
                            "tileloadd tmm5, [{a} + {st} + 1024]",
                            "tileloadd tmm6, [{b0} + {st}]",
                            "tileloadd tmm7, [{b1} + {st}]",
                            "tdpbusd tmm0, tmm4, tmm6",
                            "tdpbusd tmm1, tmm4, tmm7",
                            "tdpbusd tmm2, tmm5, tmm6",
                            "tdpbusd tmm3, tmm5, tmm7",
                            a = in(reg) a.add(2 * s * TILE_BYTES),
                            b0 = in(reg) b.add(s * TILE_BYTES),
                            b1 = in(reg) b.add((steps + s) * TILE_BYTES),
                            st = in(reg) KC,
                            options(nostack, readonly),
                        );
                    }
                }
                let p = c.as_mut_ptr().cast::<u8>();
                asm!(
                    "tilestored [{p} + {st}], tmm0",
                    "tilestored [{p} + {st} + 1024], tmm1",
                    "tilestored [{p} + {st} + 2048], tmm2",
                    "tilestored [{p} + {st} + 3072], tmm3",
                    p = in(reg) p,
                    st = in(reg) KC,
                    options(nostack),
                );
            }
            // SAFETY: AVX-512F (caller).
            unsafe { scatter(&c, r0, pr, t0, n, out, ld) };
        }
    }
    // SAFETY: releases this thread's tile state (configured above).
    unsafe { asm!("tilerelease", options(nostack, nomem)) };
}

/// Decode `pr ≤ 32` rows of codes into the panel's A tiles: per 64-K step `s`, tile `2s` holds rows 0..16 and
/// tile `2s+1` rows 16..32, 64 codes per row; rows past `pr` are zero.
///
/// # Safety
/// `codes` holds `pr` rows of `kb` bytes, `panel` `32·4·kb` bytes; AVX-512F present.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn decode_panel(codes: &[u8], kb: usize, pr: usize, panel: &mut [Line]) {
    let nb = kb / 32;
    let p = panel.as_mut_ptr().cast::<u8>();
    for i in 0..PANEL_ROWS {
        let line = |s: usize| (2 * s + i / T) * TILE_BYTES + (i % T) * KC;
        for b in 0..nb {
            // SAFETY: block b of row i lies within `codes` for i < pr; lines 2b and 2b+1 of the panel exist
            // (caller: 32·k bytes = 2·nb steps of 2 KiB).
            unsafe {
                let (lo, hi) = if i < pr {
                    decode(codes.as_ptr().add(i * kb + 32 * b))
                } else {
                    (_mm512_setzero_si512(), _mm512_setzero_si512())
                };
                _mm512_store_si512(p.add(line(2 * b)).cast(), lo);
                _mm512_store_si512(p.add(line(2 * b + 1)).cast(), hi);
            }
        }
    }
}

/// Copy the 2 × 2 C tiles (row-major `[tile][row][token]`, tile = 2·row tile + token tile) of rows r0..r0+pr
/// and tokens t0.. into `out[t·ld + r]` (one [`transpose16`] per tile), skipping padded rows and tokens.
///
/// # Safety
/// AVX-512F present.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn scatter(c: &[Line; 4 * T], r0: usize, pr: usize, t0: usize, n: usize, out: &mut [i32], ld: usize) {
    for rt in 0..2 {
        let live_rows = T.min(pr.saturating_sub(rt * T));
        if live_rows == 0 {
            break;
        }
        let mask: __mmask16 = if live_rows == T { !0 } else { (1 << live_rows) - 1 };
        for tt in 0..2 {
            let tile = &c[(2 * rt + tt) * T..(2 * rt + tt + 1) * T];
            let mut rows = [_mm512_setzero_si512(); T];
            for (v, line) in rows.iter_mut().zip(tile) {
                // SAFETY: a 64-byte aligned line of 16 i32.
                *v = unsafe { _mm512_load_si512(line.0.as_ptr().cast()) };
            }
            let t1 = t0 + tt * T;
            for (j, col) in transpose16(rows).into_iter().enumerate().take(n.saturating_sub(t1)) {
                let at = (t1 + j) * ld + r0 + rt * T;
                assert!(at + live_rows <= out.len());
                // SAFETY: the masked store writes out[at .. at + live_rows], checked above.
                unsafe { _mm512_mask_storeu_epi32(out.as_mut_ptr().add(at).cast(), mask, col) };
            }
        }
    }
}
