//! Every kernel family's dispatcher against the scalar oracle, bit for bit: one suite (`suite::*`), stamped out
//! per family by `kernel_suite!`. It tests what the dispatcher composes from the kernels — row chunking, the
//! int16-wrap path and its choice per token, fused products, F16 paths, Q8_0/TQ matmuls, thread counts, the kernel
//! log; each kernel on its own is tested against its oracle in `kernels_each.rs`. A family this CPU lacks prints a
//! SKIP line; `EXPECT_ISA=avx2|avx512` (comma-separated) turns that skip into a failure.

use engine::flavor::{BlockTq1_0, BlockTq2_0, QK_K};
use engine::kernels::tq::{self, TqMatrix, TqType};
use engine::kernels::{
    scalar, Dispatcher, F16Matrix, F16Path, Family, I2sEpilogue, I2sMatrix, I2sProduct, KernelChoice, KernelError,
    KernelTable, Q8Matrix, I2S_WRAP16,
};
use half::f16;

mod common;
use common::{bits, Rng};

/// The dispatcher forced to `family`, or `None` (after a SKIP line) when this CPU lacks it.
fn forced(family: Family) -> Option<Dispatcher> {
    if family.available() {
        return Some(Dispatcher::new(KernelChoice::Force(family)).expect("available family must build"));
    }
    let expected = std::env::var("EXPECT_ISA").unwrap_or_default();
    if expected.split(',').any(|s| s.trim() == family.name()) {
        panic!(
            "EXPECT_ISA={expected} but kernel family {} is not available on this CPU",
            family.name()
        );
    }
    eprintln!("SKIP: kernel family {} not available on this CPU", family.name());
    None
}

fn oracle() -> Dispatcher {
    Dispatcher::new(KernelChoice::Force(Family::Scalar)).unwrap()
}

/// Run `f` on a fresh rayon pool of `threads` threads.
fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// `Σ code·q` over all weights of a constant all-+1 K=4096 row against q = 127: every int16 lane collects
/// 256 products of 254 = 65 024, so bitnet.cpp's lanes wrap.
fn wrap_case(rows: usize) -> (Vec<u8>, Vec<f32>, usize) {
    let k = 4096;
    (vec![0b1010_1010; rows * k / 4], vec![0.75; k], k)
}

/// Random Q8_0 rows: f16 scales over many binades, int8 weights including −128 (files may hold it).
fn q8_0_weights(rng: &mut Rng, rows: usize, k: usize) -> Vec<u8> {
    let mut w = Vec::with_capacity(rows * k / 32 * 34);
    for _ in 0..rows * k / 32 {
        w.extend_from_slice(&f16::from_f32(rng.wide()).to_le_bytes());
        w.extend((0..32).map(|_| rng.next() as u8));
    }
    w
}

mod suite {
    use super::*;

    pub fn q8_0_matmul(d: &Dispatcher) {
        let mut rng = Rng(9);
        for &(rows, k, n) in &[
            (1, 32, 1),
            (3, 64, 2),
            (7, 96, 5),
            (8, 160, 4),
            (9, 384, 1),
            (17, 32, 9),
            (33, 2048, 3),
            (5, 3200, 6),
        ] {
            let w = q8_0_weights(&mut rng, rows, k);
            let mut x = rng.f32s(n * k);
            // Ties of x·id (a block of multiples of 0.5 scaled by 1) and an all-zero block.
            if k >= 64 {
                for (j, v) in x[..32].iter_mut().enumerate() {
                    *v = if j == 0 { 127.0 } else { (j as f32 - 16.0) * 0.5 };
                }
                x[32..64].fill(0.0);
            }
            let m = Q8Matrix { data: &w, rows, k };
            let (mut a, mut b) = (vec![0f32; rows * n], vec![0f32; rows * n]);
            oracle().q8_0_matmul(&m, &x, n, &mut a);
            d.clear_log();
            d.q8_0_matmul(&m, &x, n, &mut b);
            assert_eq!(bits(&a), bits(&b), "rows {rows} k {k} n {n}");
            let want = d.table().q8_0.id(n).to_string();
            assert!(d.log().contains_key(&want), "{want} not recorded: {:?}", d.log());
        }
    }

    pub fn q8_0_threads(d: &Dispatcher) {
        let mut rng = Rng(10);
        let (rows, k, n) = (301, 2048, 3);
        let w = q8_0_weights(&mut rng, rows, k);
        let x = rng.f32s(n * k);
        let run = |threads| {
            with_threads(threads, || {
                let mut y = vec![0f32; rows * n];
                d.q8_0_matmul(&Q8Matrix { data: &w, rows, k }, &x, n, &mut y);
                bits(&y)
            })
        };
        assert_eq!(run(1), run(2));
    }

    pub fn i2s_sums(d: &Dispatcher) {
        let mut rng = Rng(2);
        for &(rows, k, n) in &[
            (1, 128, 1),
            (3, 128, 2),
            (7, 256, 5),
            (8, 384, 4),
            (9, 640, 1),
            (17, 128, 9),
            (33, 2560, 3),
            (13, 4224, 6),
        ] {
            // Alternate quantizer-made codes (0..=2) with raw bytes, whose code 3 files may also hold.
            let codes = if rows % 2 == 0 {
                rng.codes(rows * k)
            } else {
                rng.i8s(rows * k / 4).into_iter().map(|b| b as u8).collect()
            };
            let q = rng.i8s(n * k);
            let mut out = vec![0i32; rows * n];
            d.i2s_sums(
                &I2sMatrix {
                    codes: &codes,
                    scale: 1.0,
                    rows,
                    k,
                },
                &q,
                n,
                &mut out,
            );
            for r in 0..rows {
                for t in 0..n {
                    let want = scalar::i2s_dot(&codes[r * k / 4..(r + 1) * k / 4], &q[t * k..(t + 1) * k]);
                    assert_eq!(out[r * n + t], want, "rows {rows} k {k} n {n}: row {r} token {t}");
                }
            }
        }
    }

    pub fn i2s_matmul(d: &Dispatcher) {
        let (o, mut rng) = (oracle(), Rng(3));
        // 1100 rows of K=1024 span several row chunks.
        for &(rows, k, n) in &[
            (1, 128, 1),
            (5, 128, 3),
            (31, 256, 1),
            (64, 512, 4),
            (65, 1280, 7),
            (1100, 1024, 2),
        ] {
            let codes = rng.codes(rows * k);
            let x = rng.f32s(n * k);
            let w = I2sMatrix {
                codes: &codes,
                scale: 0.37,
                rows,
                k,
            };
            for epi in [I2sEpilogue::Divide, I2sEpilogue::MultiplyRatio] {
                let (mut a, mut b) = (vec![0f32; rows * n], vec![0f32; rows * n]);
                o.i2s_matmul(&w, &x, n, epi, &mut a);
                d.i2s_matmul(&w, &x, n, epi, &mut b);
                assert_eq!(bits(&a), bits(&b), "rows {rows} k {k} n {n} {epi:?}");
            }
        }
        let log = d.log();
        let t = d.table();
        for id in [t.quantize.id, t.i2s.gemv(), t.i2s.gemm()] {
            assert!(log.contains_key(&id.to_string()), "{id} not in {log:?}");
        }
        assert!(
            !log.contains_key(&I2S_WRAP16.to_string()),
            "random activations must not take the wrap path: {log:?}"
        );
    }

    /// Crafted int16-lane overflow (spec §5.2): the wrap path is taken, equals the emulation, differs from the
    /// exact sum; a token without overflow in the same batch stays on the exact kernel.
    pub fn i2s_wrap16(d: &Dispatcher) {
        let (rows, mut rng) = (3, Rng(4));
        let (codes, xw, k) = wrap_case(rows);
        let mut x = rng.f32s(k);
        x.extend_from_slice(&xw);
        let w = I2sMatrix {
            codes: &codes,
            scale: 1.5,
            rows,
            k,
        };
        let mut q = vec![0i8; k];
        let (s, sum) = scalar::quantize_i8_s(&xw, &mut q);
        assert!(scalar::i2s_lane_bound(&q) >= 32768);
        let (wrapped, exact) = (
            scalar::i2s_dot_wrap16(&codes[..k / 4], &q),
            scalar::i2s_dot(&codes[..k / 4], &q),
        );
        assert_ne!(wrapped, exact);
        let epi = |sumi: i32| ((sumi as f32 - sum as f32) / s) * w.scale;

        d.clear_log();
        let mut y = vec![0f32; 2 * rows];
        d.i2s_matmul(&w, &x, 2, I2sEpilogue::Divide, &mut y);
        for r in 0..rows {
            assert_eq!(y[rows + r].to_bits(), epi(wrapped).to_bits(), "row {r}");
            assert_ne!(y[rows + r].to_bits(), epi(exact).to_bits(), "row {r}");
        }
        let log = d.log();
        assert!(
            log.contains_key(&I2S_WRAP16.to_string()) && log.contains_key(&d.table().i2s.gemm().to_string()),
            "{log:?}"
        );
        let mut want = vec![0f32; 2 * rows];
        oracle().i2s_matmul(&w, &x, 2, I2sEpilogue::Divide, &mut want);
        assert_eq!(bits(&y), bits(&want));

        // The 2026 epilogue has int32 lanes: the same activations take the exact kernel.
        d.clear_log();
        d.i2s_matmul(&w, &x[k..], 1, I2sEpilogue::MultiplyRatio, &mut y[..rows]);
        assert!(!d.kernels().contains_key(&I2S_WRAP16));
        assert_eq!(y[0].to_bits(), ((exact as f32 - sum as f32) * (w.scale / s)).to_bits());
    }

    /// One fused call over several matrices (shared activations, one with a wrapping token) equals separate
    /// oracle calls, bit for bit.
    pub fn i2s_fused(d: &Dispatcher) {
        let mut rng = Rng(8);
        let (wrap_codes, xw, k) = wrap_case(24);
        let mut x = rng.f32s(2 * k);
        x.extend_from_slice(&xw);
        let n = 3;
        let other: Vec<Vec<u8>> = [200, 8, 1].iter().map(|&r| rng.codes(r * k)).collect();
        let mats: Vec<I2sMatrix> = std::iter::once((&wrap_codes, 24))
            .chain(other.iter().zip([200, 8, 1]))
            .map(|(c, rows)| I2sMatrix {
                codes: c,
                scale: 0.5 + rows as f32 / 64.0,
                rows,
                k,
            })
            .collect();
        for epi in [I2sEpilogue::Divide, I2sEpilogue::MultiplyRatio] {
            let mut ys: Vec<Vec<f32>> = mats.iter().map(|w| vec![f32::NAN; n * w.rows]).collect();
            let mut products: Vec<I2sProduct> = mats
                .iter()
                .zip(ys.iter_mut())
                .map(|(w, y)| I2sProduct { w: *w, y })
                .collect();
            d.i2s_matmuls(&x, n, epi, &mut products);
            for (w, y) in mats.iter().zip(&ys) {
                let mut want = vec![0f32; n * w.rows];
                oracle().i2s_matmul(w, &x, n, epi, &mut want);
                assert_eq!(bits(y), bits(&want), "rows {} {epi:?}", w.rows);
            }
        }
    }

    pub fn f16_matmul(d: &Dispatcher) {
        let (o, mut rng) = (oracle(), Rng(7));
        for &(rows, k, n, path) in &[
            (1, 64, 1, F16Path::VecDot),
            (5, 96, 1, F16Path::VecDot),
            (13, 200, 2, F16Path::VecDot),
            (70, 2560, 1, F16Path::VecDot),
            (1, 32, 2, F16Path::TinyBlas),
            (5, 64, 3, F16Path::TinyBlas),
            (13, 128, 5, F16Path::TinyBlas),
            (4, 96, 8, F16Path::TinyBlasF16Act),
            (70, 160, 9, F16Path::TinyBlasF16Act),
        ] {
            let wdata = rng.f16s(rows * k);
            let x = rng.f32s(n * k);
            let w = F16Matrix { data: &wdata, rows, k };
            let (mut a, mut b) = (vec![0f32; rows * n], vec![0f32; rows * n]);
            o.f16_matmul(&w, &x, n, path, &mut a);
            d.f16_matmul(&w, &x, n, path, &mut b);
            assert_eq!(bits(&a), bits(&b), "rows {rows} k {k} n {n} {path:?}");
        }
    }

    /// TQ2_0 / TQ1_0 matmuls through the dispatcher equal the oracle loop (Q8_K quantize, decode, `tq_dot`),
    /// with and without the fused lanes, on 1 and 2 threads.
    pub fn tq_matmul(d: &Dispatcher) {
        let mut rng = Rng(9);
        for (ty, bytes) in [(TqType::Tq2_0, BlockTq2_0::BYTES), (TqType::Tq1_0, BlockTq1_0::BYTES)] {
            for &(rows, k, n) in &[(1, 256, 1), (5, 512, 3), (70, 768, 2)] {
                let nb = k / QK_K;
                let mut data: Vec<u8> = rng.i8s(rows * nb * bytes).into_iter().map(|b| b as u8).collect();
                for blk in data.chunks_exact_mut(bytes) {
                    let scale = f16::from_f32(rng.unit() * 0.1).to_le_bytes();
                    blk[bytes - 2..].copy_from_slice(&scale);
                }
                let w = TqMatrix {
                    data: &data,
                    ty,
                    rows,
                    k,
                };
                let x = rng.f32s(n * k);
                let (mut q, mut qd) = (vec![0i8; n * k], vec![0f32; n * nb]);
                for t in 0..n {
                    tq::quantize_q8_k(&x[t * k..][..k], &mut q[t * k..][..k], &mut qd[t * nb..][..nb]);
                }
                let (mut tr, mut wd) = (vec![0u8; k], vec![0f32; nb]);
                for fused in [false, true] {
                    let mut want = vec![0f32; n * rows];
                    for r in 0..rows {
                        w.decode_row(r, &mut tr, &mut wd);
                        for t in 0..n {
                            want[t * rows + r] = tq::tq_dot(&tr, &wd, &q[t * k..][..k], &qd[t * nb..][..nb], fused);
                        }
                    }
                    for threads in [1, 2] {
                        let got = with_threads(threads, || {
                            let mut y = vec![f32::NAN; n * rows];
                            d.tq_matmul(&w, &x, n, fused, &mut y);
                            y
                        });
                        assert_eq!(bits(&got), bits(&want), "{ty:?} rows {rows} k {k} n {n} fused {fused}");
                    }
                }
            }
        }
        let log = d.log();
        assert!(
            log.contains_key("tq2_0.scalar.gemv") && log.contains_key("q8k.scalar.quantize"),
            "{log:?}"
        );
    }

    /// Identical bits on 1 and 2 threads, with shapes that span several row chunks.
    pub fn threads(d: &Dispatcher) {
        let mut rng = Rng(8);
        let (rows, k, n) = (2100, 640, 3);
        let codes = rng.codes(rows * k);
        let wdata = rng.f16s(rows * k);
        let x = rng.f32s(n * k);
        let run = |threads| {
            with_threads(threads, || {
                let mut outs = Vec::new();
                for (epi, m) in [(I2sEpilogue::Divide, n), (I2sEpilogue::MultiplyRatio, 1)] {
                    let mut y = vec![0f32; rows * m];
                    d.i2s_matmul(
                        &I2sMatrix {
                            codes: &codes,
                            scale: 0.5,
                            rows,
                            k,
                        },
                        &x,
                        m,
                        epi,
                        &mut y,
                    );
                    outs.push(bits(&y));
                }
                for (path, m) in [(F16Path::VecDot, 1), (F16Path::TinyBlas, n)] {
                    let mut y = vec![0f32; rows * m];
                    d.f16_matmul(&F16Matrix { data: &wdata, rows, k }, &x, m, path, &mut y);
                    outs.push(bits(&y));
                }
                outs
            })
        };
        assert_eq!(run(1), run(2));
    }
}

/// Module `$module` with one test per suite function (`test name => suite::function`), each on the dispatcher
/// forced to `$family` (skipped when this CPU lacks it).
macro_rules! kernel_suite {
    ($module:ident, $family:expr) => {
        kernel_suite!($module, $family,
            i2s_sums_match_scalar => i2s_sums,
            i2s_matmul_matches_scalar => i2s_matmul,
            i2s_int16_wrap_takes_emulation => i2s_wrap16,
            fused_i2s_products_match_separate_calls => i2s_fused,
            f16_matmul_matches_scalar => f16_matmul,
            q8_0_matmul_matches_scalar => q8_0_matmul,
            q8_0_one_and_two_threads_agree => q8_0_threads,
            tq_matmul_matches_scalar => tq_matmul,
            one_and_two_threads_agree => threads,
        );
    };
    ($module:ident, $family:expr, $($test:ident => $check:ident,)*) => {
        mod $module {
            use super::*;

            $(
                #[test]
                fn $test() {
                    if let Some(d) = forced($family) {
                        assert_eq!(d.family(), $family);
                        suite::$check(&d);
                    }
                }
            )*
        }
    };
}

kernel_suite!(scalar_family, Family::Scalar);
kernel_suite!(avx2_family, Family::Avx2);
kernel_suite!(avx512_family, Family::Avx512);

#[test]
fn unknown_or_unavailable_family_is_an_error() {
    assert!(matches!(
        "avx9".parse::<KernelChoice>(),
        Err(KernelError::UnknownFamily(_))
    ));
    for f in [Family::Avx2, Family::Avx512, Family::Neon, Family::Amx] {
        match Dispatcher::new(KernelChoice::Force(f)) {
            Ok(d) => assert!(f.available() && d.family() == f),
            Err(e) => assert!(!f.available() && matches!(e, KernelError::Unavailable(..)), "{e}"),
        }
    }
}

#[test]
fn auto_picks_the_best_available_family() {
    if std::env::var_os("PARITY_KERNEL").is_some() {
        eprintln!("SKIP: PARITY_KERNEL is set");
        return;
    }
    let best = [Family::Amx, Family::Avx512, Family::Avx2, Family::Neon, Family::Scalar]
        .into_iter()
        .find(|f| f.available())
        .unwrap();
    assert_eq!(Dispatcher::new(KernelChoice::Auto).unwrap().family(), best);
}

/// `avx512` keeps I2_S prefill on `vpdpbusd`; only `amx` (auto's first choice where granted) uses the tiles.
#[test]
fn only_the_amx_family_has_the_amx_prefill_kernel() {
    let gemm = |f: Family| KernelTable::get(f).map(|t| t.i2s_gemm.map(|g| g.id().to_string()));
    assert_eq!(gemm(Family::Avx512).flatten(), None);
    match gemm(Family::Amx) {
        Some(id) => assert_eq!(id.as_deref(), Some("i2s.x86.amx.gemm")),
        None => eprintln!("SKIP: no AMX-INT8 here (or Linux refused the tile state)"),
    }
}
