//! bitnet.cpp's TL1/TL2 LUT formats: decoded once at load (with the tile parameters the flavor check
//! found) into x86-act128 I2_S codes and then computed as [`I2s`], with I2_S's kernels and numerics —
//! bitnet.cpp's TL2 build computes one-token decodes byte-identically to I2_S on the same weights.

use std::sync::Arc;

use crate::flavor::{i2s_pack, tl_decode, I2sLayout, TileParams, TlKind};
use crate::kernels::scalar::I2S_BLOCK;

use super::{I2s, Prepared, QuantError, Shape};

pub(super) fn prepare(
    name: &str,
    kind: TlKind,
    params: TileParams,
    scale: f32,
    data: &[u8],
    shape: Shape,
) -> Result<Prepared, QuantError> {
    shape.check_row_length(name, kind.name(), I2S_BLOCK)?;
    let codes = tl_decode(kind, data, shape.rows, shape.k, params).map_err(|source| QuantError::Tl {
        name: name.to_owned(),
        source,
    })?;
    Ok(Prepared {
        method: Arc::new(I2s { scale }),
        owned: Some(i2s_pack(&codes, I2sLayout::X86Act128, shape.rows, shape.k, scale)),
    })
}
