//! Which ggml type-id table a file uses (spec §2, "Dialect detection").
//!
//! The fork and upstream agree on ids 0..=30 and 34..=35. Ids 31..=33 and 36..=38 exist only in the fork;
//! id 39 is TL2 in the fork and MXFP4 upstream, so for it the bytes decide, never the id alone.

use super::error::GgufError;
use super::types::{align_up, Dialect, GgmlType};

/// The facts about one tensor that the dialect decision looks at.
#[derive(Clone, Copy, Debug)]
pub struct DialectInput<'a> {
    pub name: &'a str,
    pub type_id: u32,
    pub dims: &'a [u64],
    /// Bytes from the tensor's start to the next tensor (or the end of the file).
    pub span: u64,
    pub is_last: bool,
}

/// The architectures bitnet.cpp's fork defines (all read with the fork table).
pub const FORK_ARCHITECTURES: [&str; 3] = ["bitnet", "bitnet-25", "bitnet-b1.58"];

/// Whether `size` bytes explain a `span`: the span is the size plus the zero padding up to `alignment`
/// (the writer rule of spec §1.5). For the last tensor the padding may be missing, so any span in
/// `size..=align_up(size)` fits; for the others the next offset is aligned, which leaves only
/// `align_up(size)`.
pub fn span_fits(size: u64, span: u64, alignment: u64) -> bool {
    align_up(size, alignment).is_some_and(|padded| size <= span && span <= padded)
}

/// Pick the type-id table and say why, in words. Errors only for a type-39 tensor whose span fits
/// both MXFP4 and TL2, or neither, in a file whose architecture does not settle it.
pub fn decide_dialect<'a>(
    arch: &str,
    alignment: u64,
    tensors: impl Iterator<Item = DialectInput<'a>>,
) -> Result<(Dialect, String), GgufError> {
    if FORK_ARCHITECTURES.contains(&arch) {
        return Ok((
            Dialect::BitnetFork,
            format!("architecture {arch:?} is a bitnet.cpp architecture (spec §2 rule 1)"),
        ));
    }
    let mut verdict39: Option<(Dialect, String)> = None;
    for t in tensors {
        match t.type_id {
            31..=33 | 36..=38 => {
                let (name, id) = (t.name, t.type_id);
                let reason =
                    format!("tensor {name:?} has type id {id}, which exists only in the bitnet.cpp fork table");
                return Ok((Dialect::BitnetFork, reason));
            }
            39 => {
                let mxfp4 = GgmlType::MXFP4.byte_size(t.dims);
                let tl2 = GgmlType::TL2.byte_size(t.dims).filter(|_| t.dims[0] > 256);
                let fits = |s: Option<u64>| s.is_some_and(|s| span_fits(s, t.span, alignment));
                let this = match (fits(mxfp4), fits(tl2)) {
                    (true, false) => (
                        Dialect::Upstream,
                        format!(
                            "tensor {:?} has type id 39 and a {}-byte span that fits MXFP4 (17 bytes per 32), not TL2",
                            t.name, t.span
                        ),
                    ),
                    (false, true) => (
                        Dialect::BitnetFork,
                        format!(
                            "tensor {:?} has type id 39 and a {}-byte span that fits TL2 (spec §4.3), not MXFP4",
                            t.name, t.span
                        ),
                    ),
                    _ => {
                        return Err(GgufError::Type39Undecided {
                            name: t.name.into(),
                            span: t.span,
                            mxfp4,
                            tl2,
                        })
                    }
                };
                match &verdict39 {
                    Some((d, _)) if *d != this.0 => {
                        return Err(GgufError::Type39Undecided {
                            name: t.name.into(),
                            span: t.span,
                            mxfp4,
                            tl2,
                        })
                    }
                    Some(_) => {}
                    None => verdict39 = Some(this),
                }
            }
            _ => {}
        }
    }
    Ok(verdict39.unwrap_or_else(|| {
        (
            Dialect::Upstream,
            format!("architecture {arch:?} is not a bitnet.cpp one and no tensor uses a fork-only type id"),
        )
    }))
}
