//! I2_S: 2-bit ternary codes and one per-tensor scale (bitnet.cpp's type 36), computed by the dispatcher's
//! I2_S kernels on the x86-act128 layout; other packings are repacked to it at load.

use std::sync::Arc;

use crate::flavor::{i2s_repack_to_x86, I2sLayout};
use crate::kernels::{scalar::I2S_BLOCK, I2sMatrix};

use super::{MatmulCx, Origin, Prepared, QuantError, QuantMethod, Shape};

/// An I2_S weight: its scale (decoded once, by the flavor check) and codes in the x86-act128 layout.
#[derive(Clone, Copy, Debug)]
pub struct I2s {
    pub scale: f32,
}

impl I2s {
    pub(super) fn prepare(
        name: &str,
        layout: I2sLayout,
        scale: f32,
        data: &[u8],
        shape: Shape,
    ) -> Result<Prepared, QuantError> {
        shape.check_row_length(name, "i2_s", I2S_BLOCK)?;
        let owned = (layout != I2sLayout::X86Act128).then(|| i2s_repack_to_x86(data, layout, shape.rows, shape.k));
        Ok(Prepared {
            method: Arc::new(I2s { scale }),
            owned,
        })
    }
}

impl QuantMethod for I2s {
    fn type_name(&self) -> &'static str {
        "i2_s"
    }

    fn origin(&self) -> Origin {
        Origin::BitnetCpp
    }

    fn matmul(&self, data: &[u8], shape: Shape, cx: &MatmulCx, x: &[f32], n: usize, y: &mut [f32]) {
        let w = self.i2s(data, shape).expect("I2_S has an I2_S view");
        cx.disp.i2s_matmul(&w, x, n, cx.i2s_epilogue, y);
    }

    fn i2s<'a>(&self, data: &'a [u8], shape: Shape) -> Option<I2sMatrix<'a>> {
        Some(I2sMatrix {
            codes: &data[..shape.rows * shape.k / 4],
            scale: self.scale,
            rows: shape.rows,
            k: shape.k,
        })
    }

    #[cfg(feature = "cuda")]
    fn upload(&self, be: &crate::kernels::cuda::CudaBackend, data: &[u8], shape: Shape) -> super::Upload {
        be.upload_i2s(&self.i2s(data, shape).expect("I2_S has an I2_S view"))
    }
}
