//! CUDA kernels against the CPU oracle (`kernels::scalar`, `kernels::elementwise`, `model::ops`, the scalar `Dispatcher`).
//!
//! Without a CUDA driver every device test prints `SKIP: …` and returns; the NVRTC test compiles the kernel
//! source to PTX wherever `libnvrtc.so` can be opened (no GPU needed). Bit equality is asserted where the
//! arithmetic is integer or the kernel performs the same f32 operations in the same order (quantizer, I2_S
//! sums and epilogue, RoPE); the f16 dots, RMS norm and attention are built to follow the CPU orders too, but
//! are held to cosine ≥ 0.9999 (the target) and report their bit-identical fraction.

use engine::kernels::cuda::{self, AttnShape, CudaBackend, CudaError, HostKv};
use engine::kernels::{
    elementwise, scalar, Dispatcher, F16Matrix, F16Path, Family, I2sEpilogue, I2sMatrix, KernelChoice,
};
use engine::model::ops;
use half::f16;

mod common;
use common::cuda_backend as backend;

/// llama.cpp test-style deterministic values in about ±amp.
fn vals(n: usize, seed: u32, amp: f32) -> Vec<f32> {
    (0..n)
        .map(|i| amp * ((i as f32 * 0.618 + seed as f32 * 1.37).sin() + 0.3 * ((i * 7 + seed as usize) as f32).cos()))
        .collect()
}

/// Random-looking I2_S codes (0..=2 only) for `rows × k`.
fn codes(rows: usize, k: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..rows * k / 4)
        .map(|_| {
            let mut b = 0u8;
            for g in 0..4 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                b |= ((s % 3) as u8) << (2 * g);
            }
            b
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        ab += x as f64 * y as f64;
        aa += x as f64 * x as f64;
        bb += y as f64 * y as f64;
    }
    ab / (aa.sqrt() * bb.sqrt()).max(f64::MIN_POSITIVE)
}

fn bit_equal(a: &[f32], b: &[f32]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x.to_bits() == y.to_bits()).count()
}

/// Cosine ≥ 0.9999 and equal lengths; prints how many outputs are bit-identical.
fn close(what: &str, gpu: &[f32], cpu: &[f32]) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: length");
    let c = cosine(gpu, cpu);
    println!(
        "{what}: cosine {c:.9}, bit-identical {}/{}",
        bit_equal(gpu, cpu),
        cpu.len()
    );
    assert!(c >= 0.9999, "{what}: cosine {c}");
}

fn scalar_disp() -> Dispatcher {
    Dispatcher::new(KernelChoice::Force(Family::Scalar)).expect("scalar family always exists")
}

#[test]
fn nvrtc_compiles_every_kernel_to_ptx() {
    if !cuda::nvrtc_present() {
        println!("SKIP: no NVRTC (libnvrtc.so not found, or built without the cuda feature)");
        return;
    }
    for arch in [(6, 1), (8, 0), (9, 0)] {
        let ptx = cuda::nvrtc_check(arch).unwrap_or_else(|e| panic!("{e}"));
        for k in cuda::source::KERNELS {
            assert!(ptx.contains(&format!(".entry {k}(")), "{arch:?}: no entry {k}");
        }
        assert!(
            ptx.contains("dp4a.s32.s32"),
            "{arch:?}: the I2_S kernel does not use dp4a"
        );
    }
}

#[test]
fn without_a_device_the_error_is_typed() {
    if cuda::driver_present() {
        println!("SKIP: a CUDA driver is present");
        return;
    }
    let e = CudaBackend::new().expect_err("no driver, no backend");
    assert!(
        matches!(e, CudaError::NoDriver(_) | CudaError::NotCompiledWithCudaSupport),
        "{e}"
    );
}

#[test]
fn quantizer_is_bit_exact() {
    let Some(be) = backend() else { return };
    let k = 2560;
    let x = vals(3 * k, 1, 4.0);
    let g = be.quantize_i8_s(&x, k).expect("quantize");
    for t in 0..3 {
        let mut q = vec![0i8; k];
        let (s, sum) = scalar::quantize_i8_s(&x[t * k..(t + 1) * k], &mut q);
        assert_eq!(g.q[t * k..(t + 1) * k], q[..], "row {t}");
        assert_eq!((g.scales[t].to_bits(), g.sums[t]), (s.to_bits(), sum), "row {t}");
    }
}

#[test]
fn i2s_sums_and_epilogues_are_bit_exact() {
    let Some(be) = backend() else { return };
    let disp = scalar_disp();
    for &(rows, k, n) in &[(1, 128, 1), (37, 640, 1), (640, 2560, 1), (96, 6912, 3)] {
        let c = codes(rows, k, (rows * k) as u64);
        let w = I2sMatrix {
            codes: &c,
            scale: 0.731,
            rows,
            k,
        };
        let x = vals(n * k, rows as u32, 2.0);
        let mut q = vec![0i8; n * k];
        for (xt, qt) in x.chunks_exact(k).zip(q.chunks_exact_mut(k)) {
            scalar::quantize_i8_s(xt, qt);
        }
        let mut want = vec![0i32; rows * n];
        disp.i2s_sums(&w, &q, n, &mut want);
        assert_eq!(be.i2s_sums(&w, &q, n).expect("sums"), want, "sums {rows}x{k}x{n}");
        for epi in [I2sEpilogue::Divide, I2sEpilogue::MultiplyRatio] {
            let mut y = vec![0f32; rows * n];
            disp.i2s_matmul(&w, &x, n, epi, &mut y);
            let g = be.i2s_gemv(&w, &x, n, epi).expect("gemv");
            assert_eq!(bit_equal(&g, &y), y.len(), "{epi:?} {rows}x{k}x{n}");
        }
    }
    assert!(be.log().contains_key(&cuda::I2S_GEMV_ID) && be.log().contains_key(&cuda::I2S_GEMM_ID));
}

#[test]
fn f16_paths_match_the_oracle() {
    let Some(be) = backend() else { return };
    let disp = scalar_disp();
    for &(rows, k, n) in &[(1000, 2560, 1), (333, 2560, 2), (64, 2592, 1)] {
        let w: Vec<f16> = vals(rows * k, 9, 0.05).into_iter().map(f16::from_f32).collect();
        let m = F16Matrix { data: &w, rows, k };
        let x = vals(n * k, 3, 1.5);
        let paths: &[F16Path] = if n == 1 {
            &[F16Path::VecDot]
        } else {
            &[F16Path::VecDot, F16Path::TinyBlas, F16Path::TinyBlasF16Act]
        };
        for &path in paths {
            let mut y = vec![0f32; rows * n];
            disp.f16_matmul(&m, &x, n, path, &mut y);
            let g = be.f16_gemv(&m, &x, n, path).expect("f16");
            close(&format!("f16 {path:?} {rows}x{k}x{n}"), &g, &y);
        }
    }
}

#[test]
fn rms_norm_and_rope_match() {
    let Some(be) = backend() else { return };
    let (k, n) = (2560, 3);
    let x = vals(n * k, 5, 3.0);
    let w = vals(k, 6, 1.0);
    let mut want = vec![0f32; n * k];
    ops::rms_norm_rows(&x, &w, 1e-5, &mut want);
    close("rms_norm", &be.rms_norm(&x, &w, 1e-5).expect("rms"), &want);
    let (heads, hd, p0) = (20, 128, 7);
    let q = vals(n * heads * hd, 8, 2.0);
    let g = be.rope_neox(&q, heads, hd, p0, 500000.0, 1.0).expect("rope");
    let cache = ops::RopeCache::new(hd, 500000.0, 1.0, p0 + n);
    let mut want = q.clone();
    let oracle = Dispatcher::new(KernelChoice::Force(Family::Scalar)).unwrap();
    for (i, head) in want.chunks_exact_mut(hd).enumerate() {
        cache.apply(&oracle, head, p0 + i / heads);
    }
    assert_eq!(bit_equal(&g, &want), want.len(), "rope");
}

/// The CPU attention of `model::Session::attention` for one layer of a host cache.
fn cpu_attention(q: &[f32], kv: &HostKv, a: &AttnShape) -> Vec<f32> {
    let (hd, size) = (kv.head_dim, kv.size);
    let group = a.n_head / kv.n_head_kv;
    let scale = 1.0f32 / (hd as f32).sqrt();
    let mut out = vec![0f32; a.n * a.n_head * hd];
    for t in 0..a.n {
        for h in 0..a.n_head {
            let kh = h / group;
            let qr = &q[(t * a.n_head + h) * hd..][..hd];
            let q16: Vec<f16> = qr.iter().map(|&v| f16::from_f32(v)).collect();
            let q16f: Vec<f32> = q16.iter().map(|v| v.to_f32()).collect();
            let mut s: Vec<f32> = (0..a.n_kv)
                .map(|j| {
                    let kr = &kv.k[(kh * size + j) * hd..][..hd];
                    if a.kq_tinyblas {
                        scalar::tinyblas_f16_f32(kr, &q16f)
                    } else {
                        scalar::f16_dot(&q16, kr)
                    }
                })
                .collect();
            elementwise::softmax_masked(&mut s, scale, a.p0 + t + 1);
            for d in 0..hd {
                let vr = &kv.v[(kh * hd + d) * size..][..a.n_kv];
                out[(t * a.n_head + h) * hd + d] = match a.pv {
                    F16Path::VecDot => scalar::f16_dot(&s.iter().map(|&v| f16::from_f32(v)).collect::<Vec<_>>(), vr),
                    F16Path::TinyBlas => scalar::tinyblas_f16_f32(vr, &s),
                    F16Path::TinyBlasF16Act => {
                        scalar::tinyblas_f16_f32(vr, &s.iter().map(|&v| f16::from_f32(v).to_f32()).collect::<Vec<_>>())
                    }
                };
            }
        }
    }
    out
}

#[test]
fn attention_matches_the_cpu_order() {
    let Some(be) = backend() else { return };
    let (n_head, n_head_kv, hd, size) = (8, 2, 128, 96);
    let k: Vec<f16> = vals(n_head_kv * size * hd, 11, 1.0)
        .into_iter()
        .map(f16::from_f32)
        .collect();
    let v: Vec<f16> = vals(n_head_kv * size * hd, 12, 1.0)
        .into_iter()
        .map(f16::from_f32)
        .collect();
    let kv = HostKv {
        k: &k,
        v: &v,
        n_head_kv,
        head_dim: hd,
        size,
    };
    let cases = [
        AttnShape {
            n_head,
            n: 1,
            p0: 40,
            n_kv: 64,
            kq_tinyblas: false,
            pv: F16Path::VecDot,
        },
        AttnShape {
            n_head,
            n: 4,
            p0: 50,
            n_kv: 64,
            kq_tinyblas: false,
            pv: F16Path::TinyBlas,
        },
        AttnShape {
            n_head,
            n: 4,
            p0: 60,
            n_kv: 96,
            kq_tinyblas: true,
            pv: F16Path::TinyBlasF16Act,
        },
    ];
    for a in &cases {
        let q = vals(a.n * n_head * hd, a.p0 as u32, 2.0);
        let g = be.attention(&q, &kv, a).expect("attention");
        close(&format!("attention {a:?}"), &g, &cpu_attention(&q, &kv, a));
    }
}
