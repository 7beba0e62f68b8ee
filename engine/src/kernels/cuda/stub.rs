//! The CUDA API in a build without the `cuda` feature (candle's `dummy_cuda`): the same types and methods,
//! every constructor returning [`CudaError::NotCompiledWithCudaSupport`], so callers compile and match alike.

use std::collections::BTreeMap;

use super::{AttnShape, CudaError, HostKv, Quantized};
use crate::kernels::{Dispatcher, F16Matrix, F16Path, I2sEpilogue, I2sMatrix};

const NO: CudaError = CudaError::NotCompiledWithCudaSupport;

/// Always false: this build cannot load the driver.
pub fn driver_present() -> bool {
    false
}

/// Always false: this build cannot load NVRTC.
pub fn nvrtc_present() -> bool {
    false
}

/// Always [`CudaError::NotCompiledWithCudaSupport`].
pub fn nvrtc_check(_arch: (i32, i32)) -> Result<String, CudaError> {
    Err(NO)
}

/// Never constructed in this build.
#[derive(Debug)]
pub struct CudaBackend {
    _never: std::convert::Infallible,
}

impl CudaBackend {
    pub fn new() -> Result<CudaBackend, CudaError> {
        Err(NO)
    }

    pub fn new_on(_ordinal: usize) -> Result<CudaBackend, CudaError> {
        Err(NO)
    }

    /// Any value: a backend of this build does not exist, so code holding one is unreachable.
    pub(crate) fn unreachable<T>(&self) -> T {
        match self._never {}
    }

    pub fn device_name(&self) -> String {
        match self._never {}
    }

    pub fn compute_capability(&self) -> (i32, i32) {
        match self._never {}
    }

    pub fn log(&self) -> BTreeMap<crate::kernels::KernelId, u64> {
        match self._never {}
    }

    pub fn record_into(&self, _disp: &Dispatcher) {
        match self._never {}
    }

    pub fn quantize_i8_s(&self, _x: &[f32], _k: usize) -> Result<Quantized, CudaError> {
        match self._never {}
    }

    pub fn i2s_sums(&self, _w: &I2sMatrix, _q: &[i8], _n: usize) -> Result<Vec<i32>, CudaError> {
        match self._never {}
    }

    pub fn i2s_gemv(&self, _w: &I2sMatrix, _x: &[f32], _n: usize, _epi: I2sEpilogue) -> Result<Vec<f32>, CudaError> {
        match self._never {}
    }

    pub fn f16_gemv(&self, _w: &F16Matrix, _x: &[f32], _n: usize, _path: F16Path) -> Result<Vec<f32>, CudaError> {
        match self._never {}
    }

    pub fn rms_norm(&self, _x: &[f32], _w: &[f32], _eps: f32) -> Result<Vec<f32>, CudaError> {
        match self._never {}
    }

    pub fn rope_neox(
        &self,
        _x: &[f32],
        _n_heads: usize,
        _head_dim: usize,
        _p0: usize,
        _base: f32,
        _freq_scale: f32,
    ) -> Result<Vec<f32>, CudaError> {
        match self._never {}
    }

    pub fn attention(&self, _q: &[f32], _kv: &HostKv, _a: &AttnShape) -> Result<Vec<f32>, CudaError> {
        match self._never {}
    }

    pub fn synchronize(&self) -> Result<(), CudaError> {
        match self._never {}
    }

    pub fn memory(&self) -> Result<(usize, usize), CudaError> {
        match self._never {}
    }
}
