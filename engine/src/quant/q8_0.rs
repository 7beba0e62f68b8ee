//! Q8_0: ggml's 8-bit blocks, llama-quantize's type for an LM head (or tied embedding) whose rows are not a
//! multiple of 256. Multiplied against Q8_0 activations in the reference build's order (`kernels::q8_0` for
//! x86, `kernels::scalar_arm` for aarch64); looked up by `dequantize_row_q8_0` (exact products of an int8 and
//! an f16 scale, so identical on every ISA).

use std::sync::Arc;

use crate::flavor::{q8_0_dequantize_row, QK8_0};
use crate::kernels::Q8Matrix;

use super::{MatmulCx, Origin, Prepared, QuantError, QuantMethod, Shape};

/// A Q8_0 weight (blocks read straight from the file).
#[derive(Clone, Copy, Debug)]
pub struct Q8_0;

impl Q8_0 {
    pub(super) fn prepare(name: &str, shape: Shape) -> Result<Prepared, QuantError> {
        shape.check_row_length(name, "q8_0", QK8_0)?;
        Ok(Prepared {
            method: Arc::new(Q8_0),
            owned: None,
        })
    }

    fn matrix(data: &[u8], shape: Shape) -> Q8Matrix<'_> {
        Q8Matrix {
            data,
            rows: shape.rows,
            k: shape.k,
        }
    }
}

impl QuantMethod for Q8_0 {
    fn type_name(&self) -> &'static str {
        "q8_0"
    }

    fn origin(&self) -> Origin {
        Origin::Any
    }

    fn matmul(&self, data: &[u8], shape: Shape, cx: &MatmulCx, x: &[f32], n: usize, y: &mut [f32]) {
        cx.disp.q8_0_matmul_in(cx.order, &Self::matrix(data, shape), x, n, y);
    }

    fn get_row(&self, data: &[u8], shape: Shape, r: usize, out: &mut [f32]) -> Option<()> {
        let rb = Self::matrix(data, shape).row_bytes();
        q8_0_dequantize_row(&data[r * rb..(r + 1) * rb], out);
        Some(())
    }
}
