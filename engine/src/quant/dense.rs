//! Dense F16 weights (the token embedding / LM head, and F16 linears), computed along the F16 matmul path
//! the session's numerics choose.

use std::sync::Arc;

use half::f16;

use crate::kernels::F16Matrix;

use super::{MatmulCx, Origin, Prepared, QuantMethod, Shape};

/// A dense f16 weight, row-major.
#[derive(Clone, Copy, Debug)]
pub struct DenseF16;

impl DenseF16 {
    /// F16 data at an odd address (possible in a GGUF file) is copied so that it can be read as `&[f16]`.
    pub(super) fn prepare(data: &[u8]) -> Prepared {
        Prepared {
            method: Arc::new(DenseF16),
            owned: (!(data.as_ptr() as usize).is_multiple_of(2)).then(|| data.to_vec()),
        }
    }
}

impl QuantMethod for DenseF16 {
    fn type_name(&self) -> &'static str {
        "f16"
    }

    fn origin(&self) -> Origin {
        Origin::Any
    }

    fn matmul(&self, data: &[u8], shape: Shape, cx: &MatmulCx, x: &[f32], n: usize, y: &mut [f32]) {
        let w = self.f16(data, shape).expect("F16 has an F16 view");
        cx.disp.f16_matmul_in(cx.order, &w, x, n, cx.f16_path(n, w.k), y);
    }

    fn f16<'a>(&self, data: &'a [u8], shape: Shape) -> Option<F16Matrix<'a>> {
        Some(F16Matrix {
            data: f16_slice(&data[..shape.rows * shape.k * 2]),
            rows: shape.rows,
            k: shape.k,
        })
    }

    #[cfg(feature = "cuda")]
    fn upload(&self, be: &crate::kernels::cuda::CudaBackend, data: &[u8], shape: Shape) -> super::Upload {
        be.upload_f16(&self.f16(data, shape).expect("F16 has an F16 view"))
    }
}

/// View little-endian f16 bytes as `&[f16]` (2-byte alignment is guaranteed by [`DenseF16::prepare`]).
fn f16_slice(b: &[u8]) -> &[f16] {
    assert_eq!(b.as_ptr() as usize % 2, 0, "f16 data must be 2-byte aligned");
    // SAFETY: f16 is a plain 2-byte value with no invalid bit patterns; length and alignment checked.
    unsafe { std::slice::from_raw_parts(b.as_ptr() as *const f16, b.len() / 2) }
}
