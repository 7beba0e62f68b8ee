//! Helpers shared by the engine's integration tests (each test binary uses some of them).
#![allow(dead_code)]

use std::path::Path;

use engine::flavor::{FlavorOptions, I2sLayout};
use engine::kernels::cuda::{CudaBackend, CudaError};
use engine::model::Model;
use engine::tokenizer::Tokenizer;
use half::f16;
use serde_json::Value;
#[allow(unused_imports)] // each test binary uses some of them
pub use test_support::{committed_or_shared, reference};

/// The model at `path`, its I2_S layout forced to `layout` (`None`: as the file says); panics naming the file.
pub fn open_with_layout(path: &Path, layout: Option<I2sLayout>) -> Model {
    Model::open_with(
        path,
        &FlavorOptions {
            i2s_layout: layout,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The CUDA backend, or `None` after printing why every test using it is skipped (no driver, a build without
/// the `cuda` feature, no device). A driver that is present but fails to start is a failure.
pub fn cuda_backend() -> Option<CudaBackend> {
    match CudaBackend::new() {
        Ok(b) => Some(b),
        Err(CudaError::NoDriver(lib)) => {
            println!("SKIP: no CUDA driver ({lib} not found)");
            None
        }
        Err(e @ (CudaError::NotCompiledWithCudaSupport | CudaError::NoDevice { .. })) => {
            println!("SKIP: {e}");
            None
        }
        Err(e) => panic!("a CUDA driver is present but the backend failed to start: {e}"),
    }
}

/// Encode every probe case (`{"text", "ids"}` objects) with BOS and special tokens; the mismatches with
/// bitnet.cpp's ids as readable lines.
pub fn probe_mismatches(tok: &Tokenizer, cases: &[Value]) -> Vec<String> {
    let mut bad = Vec::new();
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let want: Vec<u32> = c["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        let got = tok.encode(text, true, true).unwrap();
        if got != want {
            bad.push(format!("{text:?}: got {got:?}, bitnet.cpp {want:?}"));
        }
    }
    bad
}

/// The bit patterns of `v`, for bit-exact comparisons with readable failures.
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Deterministic xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    /// Values spread over many binades, so that summation order shows in the low bits.
    pub fn wide(&mut self) -> f32 {
        self.unit() * 2f32.powi(self.below(12) as i32 - 6)
    }
    pub fn f16s(&mut self, n: usize) -> Vec<f16> {
        (0..n).map(|_| f16::from_f32(self.wide())).collect()
    }
    pub fn f32s(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.wide()).collect()
    }
    /// Packed I2_S codes, each 0..=2 (the quantizer never writes 3).
    pub fn codes(&mut self, n_weights: usize) -> Vec<u8> {
        (0..n_weights / 4)
            .map(|_| (0..4).fold(0u8, |b, _| (b << 2) | self.below(3) as u8))
            .collect()
    }
    pub fn i8s(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.next() as i8).collect()
    }
}
