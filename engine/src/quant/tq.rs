//! TQ2_0 / TQ1_0: upstream ggml's ternary block types, against Q8_K activations.

use std::sync::Arc;

use crate::flavor::QK_K;
use crate::kernels::tq::{TqMatrix, TqType};

use super::{MatmulCx, Origin, Prepared, QuantError, QuantMethod, Shape};

/// A TQ weight (blocks read straight from the file).
#[derive(Clone, Copy, Debug)]
pub struct Tq {
    pub ty: TqType,
}

impl Tq {
    pub(super) fn prepare(name: &str, ty: TqType, shape: Shape) -> Result<Prepared, QuantError> {
        let tq = Tq { ty };
        shape.check_row_length(name, tq.type_name(), QK_K)?;
        Ok(Prepared {
            method: Arc::new(tq),
            owned: None,
        })
    }
}

impl QuantMethod for Tq {
    fn type_name(&self) -> &'static str {
        match self.ty {
            TqType::Tq2_0 => "tq2_0",
            TqType::Tq1_0 => "tq1_0",
        }
    }

    fn origin(&self) -> Origin {
        Origin::LlamaCpp
    }

    fn matmul(&self, data: &[u8], shape: Shape, cx: &MatmulCx, x: &[f32], n: usize, y: &mut [f32]) {
        let w = TqMatrix {
            data,
            ty: self.ty,
            rows: shape.rows,
            k: shape.k,
        };
        cx.disp.tq_matmul(&w, x, n, cx.tq_fused, y);
    }
}
