//! Ternary and dense kernels: the scalar oracle, SIMD implementations, and the dispatcher.
//!
//! Layout (tract's shape): [`scalar`] holds the portable reference of every primitive; each
//! instruction-set module holds only intrinsics with the same signatures. [`Dispatcher`] is the one
//! place that chooses among them. It is built once per run from a [`KernelChoice`], hands out the chosen
//! implementation, and records the stable name (`KernelId`) of every kernel it hands out, with call counts,
//! in its own log — that log is what receipts report. The per-family kernel tables live in [`registry`];
//! docs/kernels.md lists the IDs, the dispatch policy and the reduction orders.

pub mod cuda;
pub mod elementwise;
pub mod id;
pub mod probe;
pub mod q8_0;
pub mod scalar;
pub mod scalar_arm;
pub mod tq;

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
pub mod neon;
mod registry;
#[cfg(target_arch = "x86_64")]
mod tiling;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Mutex;

use half::f16;
use rayon::prelude::*;

/// Environment variable that forces a kernel family (same values as `--kernel`).
pub const KERNEL_ENV: &str = "PARITY_KERNEL";

/// A family of kernels, one per instruction set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Scalar,
    Avx2,
    Avx512,
    /// AArch64 Advanced SIMD.
    Neon,
    /// The AVX-512 family with AMX-INT8 tiles for I2_S prefill (`i2s.x86.amx.gemm`); `avx512` alone keeps
    /// prefill on `vpdpbusd`, so the two can be compared on one machine.
    Amx,
}

impl Family {
    pub const ALL: [Family; 5] = [Family::Scalar, Family::Avx2, Family::Avx512, Family::Neon, Family::Amx];

    pub fn name(self) -> &'static str {
        match self {
            Family::Scalar => "scalar",
            Family::Avx2 => "avx2",
            Family::Avx512 => "avx512",
            Family::Neon => "neon",
            Family::Amx => "amx",
        }
    }

    /// Whether this CPU can run the family (and this build has it): AVX2 needs AVX2 + FMA + F16C, AVX-512 needs
    /// those and AVX-512 F + BW + VL (VNNI is optional: see [`has_avx512_vnni`]).
    pub fn available(self) -> bool {
        match self {
            Family::Scalar => true,
            Family::Avx2 => Isa::Avx2.available(),
            Family::Avx512 => Isa::Avx512.available(),
            Family::Neon => Isa::Neon.available(),
            Family::Amx => Isa::Amx.available(),
        }
    }
}

/// Whether the AVX-512 family's I2_S kernel can use `vpdpbusd` (AVX512-VNNI); otherwise it uses `vpmaddubsw`.
pub fn has_avx512_vnni() -> bool {
    Isa::Avx512vnni.available()
}

/// What the user asked for: a family, or the best available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelChoice {
    Auto,
    Force(Family),
}

impl std::str::FromStr for KernelChoice {
    type Err = KernelError;
    fn from_str(s: &str) -> Result<Self, KernelError> {
        Ok(match s {
            "auto" => KernelChoice::Auto,
            "scalar" => KernelChoice::Force(Family::Scalar),
            "avx2" => KernelChoice::Force(Family::Avx2),
            "avx512" => KernelChoice::Force(Family::Avx512),
            "neon" => KernelChoice::Force(Family::Neon),
            "amx" => KernelChoice::Force(Family::Amx),
            _ => return Err(KernelError::UnknownFamily(s.to_string())),
        })
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum KernelError {
    #[error("unknown kernel family {0:?} (expected auto, scalar, avx2, avx512, amx or neon)")]
    UnknownFamily(String),
    #[error("kernel family {0} is not available on this CPU or in this build (available: {1})")]
    Unavailable(&'static str, String),
}

/// Whose SIMD float arithmetic the F16 kernels, the softmax and SiLU reproduce: the lane widths, reduction
/// orders and accumulation precision that the reference build's ggml compiled (`Numerics::simd_order`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdOrder {
    /// x86 with AVX-512 (the bundled goldens; AVX2 kernels emulate this order too).
    Avx512,
    /// aarch64 NEON without fp16 arithmetic (`-march=armv8-a`): 4 f32 lanes.
    Neon,
    /// aarch64 NEON with `__ARM_FEATURE_FP16_VECTOR_ARITHMETIC` (Apple M-series): F16 dots accumulate in fp16.
    NeonFp16,
}

/// How an I2_S matmul turns the integer dot into f32 (spec §5.3; H2 of reference-generations.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum I2sEpilogue {
    /// bitnet.cpp 2025 on x86: `f32(f32(sumi − act_sum) / act_scale) · w_scale`, int16-lane wrap emulated.
    Divide,
    /// bitnet.cpp 2025 on aarch64: the same epilogue over exact sums (NEON's int16 lanes add at most 128
    /// products of magnitude ≤ 256 per group of 32 blocks, so they cannot wrap; `vdotq_s32` is int32).
    DivideExact,
    /// Predicted bitnet.cpp 2026 (H2): `(f32(sumi) − f32(act_sum)) · f32(w_scale / act_scale)`, int32 sums.
    MultiplyRatio,
}

/// How an F16-weight matmul treats its f32 activations (spec §6.5–6.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum F16Path {
    /// One row: activations rounded to f16, `ggml_vec_dot_f16`.
    VecDot,
    /// ≥ 2 rows: llamafile tinyBLAS with f32 activations.
    TinyBlas,
    /// ≥ 2 rows with activations first rounded to f16, then tinyBLAS (H3).
    TinyBlasF16Act,
}

/// An I2_S weight matrix in the x86 128-block layout: `rows` rows of `k` weights.
#[derive(Clone, Copy, Debug)]
pub struct I2sMatrix<'a> {
    pub codes: &'a [u8],
    pub scale: f32,
    pub rows: usize,
    pub k: usize,
}

/// A dense f16 matrix, row-major, `rows` × `k`.
#[derive(Clone, Copy, Debug)]
pub struct F16Matrix<'a> {
    pub data: &'a [f16],
    pub rows: usize,
    pub k: usize,
}

/// Signature of an f16·f16 dot with `ggml_vec_dot_f16`'s order.
pub type F16DotFn = fn(&[f16], &[f16]) -> f32;
/// Signature of one tinyBLAS F16×F32 output.
pub type TinyBlasFn = fn(&[f16], &[f32]) -> f32;
/// `quantize_row_i8_s` of one row: returns `(act_scale, act_sum)` (spec §5.1).
pub type QuantizeFn = fn(&[f32], &mut [i8]) -> (f32, i32);
/// Exact I2_S dots of every row of `codes` (rows of `k/4` bytes, x86 layout) × `n` int8 token rows of length
/// `k`, into `out[t·ld + r]` (token-major, as the f32 outputs are laid out; `ld ≥ rows`).
pub type I2sRowsFn = fn(codes: &[u8], k: usize, q: &[i8], n: usize, out: &mut [i32], ld: usize);
/// Packs `n` int8 token rows of length `k` into the layout an [`I2sPackedFn`] reads (once per matmul).
pub type I2sPackFn = fn(q: &[i8], k: usize, n: usize, packed: &mut Vec<i8>);
/// An [`I2sRowsFn`] over activations packed by its kernel's [`I2sPackFn`].
pub type I2sPackedFn = fn(codes: &[u8], k: usize, packed: &[i8], n: usize, out: &mut [i32], ld: usize);
/// `scalar::i2s_lane_bound` of one quantized token row.
pub type LaneBoundFn = fn(&[i8]) -> i32;
/// `out[r] = vec_dot_f16(w_r, x)` for every row of `w` (rows of `k`).
pub type F16RowsFn = fn(w: &[f16], k: usize, x: &[f16], out: &mut [f32]);
/// tinyBLAS F16×F32 for every row of `w` × `n` f32 token rows, into `out[r·n + t]`.
pub type TinyBlasRowsFn = fn(w: &[f16], k: usize, x: &[f32], n: usize, out: &mut [f32]);
/// `quantize_row_q8_K` of one row into int8 values and per-256-block scales.
pub type Q8kFn = fn(x: &[f32], q: &mut [i8], d: &mut [f32]);
/// One TQ output from decoded trits and block scales against Q8_K activations (`fused`: see [`tq::tq_dot`]).
pub type TqDotFn = fn(t: &[u8], wd: &[f32], q: &[i8], qd: &[f32], fused: bool) -> f32;
/// Masked softmax of one score row in place (`scale`, number of unmasked leading entries).
pub type SoftmaxFn = fn(s: &mut [f32], scale: f32, valid: usize);
/// The FFN activation in place (`relu2`: squared ReLU, else SiLU).
pub type FfnActFn = fn(gate: &mut [f32], relu2: bool);
/// NEOX RoPE of consecutive heads by one position's cos/sin rows.
pub type RopeFn = fn(x: &mut [f32], c: &[f32], s: &[f32]);

pub use id::{Isa, KernelId, Op, WeightLayout};
pub use q8_0::{Q8Matrix, Q8QuantizeFn, Q8RowsFn};
pub use registry::{
    arm_q8_kernels, declared, i2s_gemm_kernels, i2s_kernels, oracle, q8_kernels, F16Set, FloatOps, I2sGemmKernel,
    I2sKernel, Kernel, KernelTable, Q8Kernel, Q8Set, Slot, I2S_WRAP16,
};

/// Weight bytes per parallel task: big enough to amortise scheduling, small enough to balance two threads.
/// Chunks only partition output rows; no result depends on them (or on the thread count).
const CHUNK_BYTES: usize = 128 << 10;

/// Rows per parallel task for rows of `row_bytes`: a multiple of 8 (the widest row tile).
fn row_chunk(row_bytes: usize) -> usize {
    (CHUNK_BYTES / row_bytes.max(1)).max(8) & !7
}

/// Per-token quantization facts for one I2_S matmul.
#[derive(Clone, Copy, Debug)]
struct TokenQuant {
    scale: f32,
    sum: i32,
    /// bitnet.cpp's int16 lanes may wrap for this token (`scalar::i2s_lane_bound` ≥ 32768).
    wrap: bool,
}

/// Buffers reused across matmul calls on one thread (no allocation per call once warm).
#[derive(Default)]
struct Scratch {
    q: Vec<i8>,
    /// `q` packed for the table's gemm kernel ([`I2sGemmKernel`]).
    packed: Vec<i8>,
    tokens: Vec<TokenQuant>,
    f: Vec<f32>,
    xs: Vec<f32>,
    h: Vec<f16>,
    /// Q8_K block scales of the TQ activations.
    qd: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    /// Integer dots of one row chunk (separate from [`SCRATCH`], which the calling thread may hold).
    static CHUNK_SUMS: RefCell<Vec<i32>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` with this thread's row-chunk buffer resized to `len` (contents unspecified).
fn with_chunk_sums<R>(len: usize, f: impl FnOnce(&mut [i32]) -> R) -> R {
    let run = |v: &mut Vec<i32>| {
        v.resize(len.max(v.len()), 0);
        f(&mut v[..len])
    };
    CHUNK_SUMS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => run(&mut v),
        Err(_) => run(&mut Vec::new()),
    })
}

/// One I2_S product of a fused call: its weights and its `n × rows` f32 outputs (token-major).
#[derive(Debug)]
pub struct I2sProduct<'w, 'y> {
    pub w: I2sMatrix<'w>,
    pub y: &'y mut [f32],
}

/// A raw view of one product's output that row-chunk jobs write through, each into its own rows.
#[derive(Clone, Copy)]
struct OutRows {
    ptr: *mut f32,
    rows: usize,
}

// SAFETY: jobs write disjoint `r0..r1` column ranges of every token row (see `Dispatcher::i2s_matmuls`); the
// buffer outlives the parallel region.
unsafe impl Send for OutRows {}
unsafe impl Sync for OutRows {}

/// Run `f` with this thread's scratch, or a fresh one if it is in use (a re-entrant call from a rayon job).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// `y = f(sumi)` for one token's integer dots: bitnet.cpp 2025 divides by the activation scale, the predicted
/// 2026 epilogue multiplies by the ratio (spec §5.3, H2).
#[inline]
fn epilogue(epi: I2sEpilogue, w_scale: f32, tq: &TokenQuant, sums: &[i32], y: &mut [f32]) {
    let (sum, s) = (tq.sum as f32, tq.scale);
    match epi {
        I2sEpilogue::Divide | I2sEpilogue::DivideExact => {
            for (v, &si) in y.iter_mut().zip(sums) {
                *v = ((si as f32 - sum) / s) * w_scale;
            }
        }
        I2sEpilogue::MultiplyRatio => {
            let ratio = w_scale / s;
            for (v, &si) in y.iter_mut().zip(sums) {
                *v = (si as f32 - sum) * ratio;
            }
        }
    }
}

/// Chooses kernels and logs what it chose.
#[derive(Debug)]
pub struct Dispatcher {
    table: &'static KernelTable,
    log: Mutex<BTreeMap<KernelId, u64>>,
}

impl Dispatcher {
    /// Build from an explicit choice; `Auto` consults [`KERNEL_ENV`] first, then the CPU (best available family).
    /// A forced family this CPU or build cannot run is an error, never a silent fallback.
    pub fn new(choice: KernelChoice) -> Result<Dispatcher, KernelError> {
        let choice = match choice {
            KernelChoice::Auto => match std::env::var(KERNEL_ENV) {
                Ok(v) if !v.is_empty() => v.parse()?,
                _ => KernelChoice::Auto,
            },
            c => c,
        };
        let family = match choice {
            KernelChoice::Auto => [Family::Amx, Family::Avx512, Family::Avx2, Family::Neon, Family::Scalar]
                .into_iter()
                .find(|f| f.available())
                .unwrap_or(Family::Scalar),
            KernelChoice::Force(f) => f,
        };
        let table =
            KernelTable::get(family).ok_or_else(|| KernelError::Unavailable(family.name(), Self::available_names()))?;
        Ok(Dispatcher {
            table,
            log: Mutex::new(BTreeMap::new()),
        })
    }

    /// Names of the families this CPU and build can run.
    pub fn available_names() -> String {
        Family::ALL
            .into_iter()
            .filter(|f| f.available())
            .map(Family::name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn family(&self) -> Family {
        self.table.family
    }

    /// The kernel table this dispatcher hands out from (read-only: benches and tests look up IDs in it; the
    /// forward pass gets its kernels through the dispatcher's methods, which record them).
    pub fn table(&self) -> &'static KernelTable {
        self.table
    }

    /// Record that kernel `id` ran `calls` more times.
    pub fn record(&self, id: KernelId, calls: u64) {
        *self
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id)
            .or_default() += calls;
    }

    /// Kernels dispatched since the log was last taken or cleared, with call counts.
    pub fn kernels(&self) -> BTreeMap<KernelId, u64> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Kernel IDs (rendered) dispatched so far, with call counts.
    pub fn log(&self) -> BTreeMap<String, u64> {
        render(&self.kernels())
    }

    /// The log so far, leaving it empty: what ran between two calls is exactly one piece of work (a
    /// comparison), so a receipt can report it without the runs made before or after.
    pub fn take_log(&self) -> BTreeMap<KernelId, u64> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// `quantize_row_i8_s` of one row into `out`, returning `(act_scale, act_sum)`; recorded per call.
    pub fn quantize_i8_s(&self, x: &[f32], out: &mut [i8]) -> (f32, i32) {
        self.record(self.table.quantize.id, 1);
        (self.table.quantize.run)(x, out)
    }

    /// Exact integer dots `out[r·n + t] = Σ code·q` of every row of `w` × `n` int8 token rows (no wrap
    /// emulation), parallel over rows; recorded per call as the table's `gemv` (n = 1) or `gemm` ID.
    pub fn i2s_sums(&self, w: &I2sMatrix, q: &[i8], n: usize, out: &mut [i32]) {
        let (k, rows) = (w.k, w.rows);
        assert!(
            k % scalar::I2S_BLOCK == 0 && q.len() >= n * k && out.len() >= rows * n && w.codes.len() >= rows * k / 4
        );
        if n == 0 || rows == 0 {
            return;
        }
        self.record(self.table.i2s.id(n), 1);
        let run = self.table.i2s.run;
        let chunk = row_chunk(k / 4);
        out[..rows * n]
            .par_chunks_mut(chunk * n)
            .enumerate()
            .for_each(|(c, o)| {
                let (r0, cr) = (c * chunk, o.len() / n);
                with_chunk_sums(cr * n, |tm| {
                    run(&w.codes[r0 * k / 4..(r0 + cr) * k / 4], k, &q[..n * k], n, tm, cr);
                    for (i, oi) in o.chunks_exact_mut(n).enumerate() {
                        for (t, v) in oi.iter_mut().enumerate() {
                            *v = tm[t * cr + i];
                        }
                    }
                });
            });
    }

    /// `y[t·rows + r] = W_r · x_t` for `n` activation rows of length `w.k` (spec §5).
    pub fn i2s_matmul(&self, w: &I2sMatrix, x: &[f32], n: usize, epi: I2sEpilogue, y: &mut [f32]) {
        self.i2s_matmuls(x, n, epi, &mut [I2sProduct { w: *w, y }]);
    }

    /// Several I2_S products of the same activations (Q/K/V, gate/up) in one parallel region: the activations
    /// are quantized once (the reference quantizes per product, with identical results) and every product's
    /// row chunks are jobs of the same fork-join.
    ///
    /// Per token: quantize (§5.1); with the `Divide` epilogue (bitnet.cpp 2025, int16 lanes) a token whose
    /// lane bound (`scalar::i2s_lane_bound`) reaches 32768 may wrap a lane, so its outputs use the exact
    /// emulation `scalar::i2s_dot_wrap16` ([`I2S_WRAP16`]); every other token uses the table's exact int32
    /// kernel, which is then bit-identical. From [`I2sGemmKernel::min_tokens`] tokens on, that kernel is the
    /// table's gemm kernel (AMX where granted) over activations packed once here. Each job computes the integer dots of its rows for every token and
    /// applies the epilogue in place; results do not depend on chunking or on the thread count.
    pub fn i2s_matmuls(&self, x: &[f32], n: usize, epi: I2sEpilogue, products: &mut [I2sProduct]) {
        let Some(k) = products.first().map(|p| p.w.k) else {
            return;
        };
        assert!(
            k % scalar::I2S_BLOCK == 0 && k > 0,
            "I2_S needs K a positive multiple of 128, got {k}"
        );
        assert!(x.len() >= n * k);
        for p in products.iter() {
            let w = &p.w;
            assert!(w.k == k && p.y.len() >= n * w.rows && w.codes.len() >= w.rows * k / 4);
        }
        if n == 0 {
            return;
        }
        let table = self.table;
        with_scratch(|s| {
            let Scratch { q, packed, tokens, .. } = s;
            q.clear();
            q.resize(n * k, 0);
            tokens.clear();
            let check_wrap = epi == I2sEpilogue::Divide;
            for (xt, qt) in x.chunks_exact(k).zip(q.chunks_exact_mut(k)) {
                let (scale, sum) = (table.quantize.run)(xt, qt);
                let wrap = check_wrap && (table.lane_bound.run)(qt) >= 32768;
                tokens.push(TokenQuant { scale, sum, wrap });
            }
            self.record(table.quantize.id, 1);
            if check_wrap {
                self.record(table.lane_bound.id, 1);
            }
            let n_wrap = tokens.iter().filter(|t| t.wrap).count();
            if n_wrap > 0 {
                self.record(I2S_WRAP16, products.len() as u64);
            }
            let gemm = table.i2s_gemm.filter(|g| n >= g.min_tokens && n_wrap < n);
            if n_wrap < n {
                let id = gemm.map_or(table.i2s.id(n), |g| g.id());
                self.record(id, products.len() as u64);
            }
            let (q, tokens) = (&q[..], &tokens[..]);
            let mut chunk = row_chunk(k / 4);
            if let Some(g) = gemm {
                (g.pack)(q, k, n, packed);
                chunk = chunk.next_multiple_of(g.row_align);
            }
            let packed = &packed[..];
            let outs: Vec<(OutRows, I2sMatrix)> = products
                .iter_mut()
                .map(|p| {
                    (
                        OutRows {
                            ptr: p.y.as_mut_ptr(),
                            rows: p.w.rows,
                        },
                        p.w,
                    )
                })
                .collect();
            let jobs: Vec<(usize, usize)> = outs
                .iter()
                .enumerate()
                .flat_map(|(m, (_, w))| (0..w.rows.div_ceil(chunk)).map(move |c| (m, c * chunk)))
                .collect();
            jobs.par_iter().for_each(|&(m, r0)| {
                let (out, w) = outs[m];
                let cr = chunk.min(w.rows - r0);
                let codes = &w.codes[r0 * k / 4..(r0 + cr) * k / 4];
                with_chunk_sums(cr * n, |sums| {
                    match gemm {
                        Some(g) => (g.run)(codes, k, packed, n, sums, cr),
                        None if n_wrap < n => (table.i2s.run)(codes, k, q, n, sums, cr),
                        None => {}
                    }
                    for (t, tq) in tokens.iter().enumerate() {
                        if tq.wrap {
                            for (i, row) in codes.chunks_exact(k / 4).enumerate() {
                                sums[t * cr + i] = scalar::i2s_dot_wrap16(row, &q[t * k..(t + 1) * k]);
                            }
                        }
                        // SAFETY: `out.ptr` addresses `n·rows` f32 (asserted above); this job alone writes columns
                        // r0..r0+cr of each token row, and the products' buffers are distinct `&mut` borrows.
                        let yt = unsafe { std::slice::from_raw_parts_mut(out.ptr.add(t * out.rows + r0), cr) };
                        epilogue(epi, w.scale, tq, &sums[t * cr..(t + 1) * cr], yt);
                    }
                });
            });
        });
    }

    /// `y[t·rows + r] = W_r · x_t` for an f16 weight matrix along the chosen [`F16Path`], in the x86 order.
    pub fn f16_matmul(&self, w: &F16Matrix, x: &[f32], n: usize, path: F16Path, y: &mut [f32]) {
        self.f16_matmul_in(SimdOrder::Avx512, w, x, n, path, y);
    }

    /// [`Self::f16_matmul`] with the F16 kernels of `order` (the x86 set, or one aarch64 build's).
    pub fn f16_matmul_in(&self, order: SimdOrder, w: &F16Matrix, x: &[f32], n: usize, path: F16Path, y: &mut [f32]) {
        let (k, rows) = (w.k, w.rows);
        assert!(k > 0 && x.len() >= n * k && y.len() >= n * rows && w.data.len() >= rows * k);
        if n == 0 || rows == 0 {
            return;
        }
        let table = self.table.f16_set(order);
        let chunk = row_chunk(k * 2);
        with_scratch(|s| match path {
            F16Path::VecDot => {
                self.record(table.f16_gemv.id, 1);
                s.h.clear();
                s.h.extend(x[..n * k].iter().map(|&v| f16::from_f32(v)));
                let x16 = &s.h[..];
                for (t, yt) in y[..n * rows].chunks_exact_mut(rows).enumerate() {
                    let xt = &x16[t * k..(t + 1) * k];
                    yt.par_chunks_mut(chunk).enumerate().for_each(|(c, o)| {
                        let r0 = c * chunk;
                        (table.f16_gemv.run)(&w.data[r0 * k..(r0 + o.len()) * k], k, xt, o);
                    });
                }
            }
            F16Path::TinyBlas | F16Path::TinyBlasF16Act => {
                self.record(table.tinyblas_gemm.id, 1);
                let Scratch { f, xs, .. } = s;
                let xs: &[f32] = if path == F16Path::TinyBlasF16Act {
                    xs.clear();
                    xs.extend(x[..n * k].iter().map(|&v| f16::from_f32(v).to_f32()));
                    xs
                } else {
                    &x[..n * k]
                };
                f.clear();
                f.resize(rows * n, 0.0);
                f.par_chunks_mut(chunk * n).enumerate().for_each(|(c, o)| {
                    let r0 = c * chunk;
                    (table.tinyblas_gemm.run)(&w.data[r0 * k..(r0 + o.len() / n) * k], k, xs, n, o);
                });
                let f = &f[..];
                y[..n * rows].par_chunks_mut(rows).enumerate().for_each(|(t, yt)| {
                    for (r, v) in yt.iter_mut().enumerate() {
                        *v = f[r * n + t];
                    }
                });
            }
        });
    }

    /// The kernels of one attention call over an f16 KV cache: scores by tinyBLAS (`kq_tinyblas`) or the
    /// `vec_dot` gemv, the masked softmax, and the weighted values along `pv`. Recorded once per call.
    pub fn attention_kernels(&self, order: SimdOrder, kq_tinyblas: bool, pv: F16Path) -> AttentionKernels {
        let t = self.table.f16_set(order);
        let softmax = self.table.float_ops(order).softmax;
        let kq = if kq_tinyblas {
            self.record(t.tinyblas.id, 1);
            KqKernel::TinyBlas(t.tinyblas.run)
        } else {
            self.record(t.f16_gemv.id, 1);
            KqKernel::Gemv(t.f16_gemv.run)
        };
        let pv = if pv == F16Path::VecDot {
            self.record(t.f16_dot.id, 1);
            PvKernel::VecDot(t.f16_dot.run)
        } else {
            self.record(t.tinyblas_gemm.id, 1);
            PvKernel::TinyBlas {
                run: t.tinyblas_gemm.run,
                f16_act: pv == F16Path::TinyBlasF16Act,
            }
        };
        self.record(softmax.id, 1);
        AttentionKernels {
            kq,
            softmax: softmax.run,
            pv,
        }
    }
}

/// How attention computes the scores `k_j · q`.
#[derive(Clone, Copy, Debug)]
pub enum KqKernel {
    /// `ggml_vec_dot_f16` of every key against the f16-rounded query.
    Gemv(F16RowsFn),
    /// tinyBLAS of each key against the f16-rounded query as f32.
    TinyBlas(TinyBlasFn),
}

/// How attention computes the probability-weighted values.
#[derive(Clone, Copy, Debug)]
pub enum PvKernel {
    /// `ggml_vec_dot_f16` of the f16-rounded probabilities against each value column.
    VecDot(F16DotFn),
    /// tinyBLAS over the value rows × every query's probabilities (first rounded to f16 with `f16_act`).
    TinyBlas { run: TinyBlasRowsFn, f16_act: bool },
}

/// The kernels of one attention call (see [`Dispatcher::attention_kernels`]).
#[derive(Clone, Copy, Debug)]
pub struct AttentionKernels {
    pub kq: KqKernel,
    pub softmax: SoftmaxFn,
    pub pv: PvKernel,
}

/// A kernel log with its IDs rendered to the receipt strings.
pub fn render(log: &BTreeMap<KernelId, u64>) -> BTreeMap<String, u64> {
    log.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}
