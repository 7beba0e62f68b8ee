//! The data vocabulary shared by the engine, the reference backends, the fixtures, the receipts and the
//! `parity` CLI. It sits below all of them (it depends on no workspace crate), so each concept here has
//! exactly one type or function:
//!
//! - [`Mode`]: how a prompt is fed to the model (one batch, or one token per decode).
//! - [`Generation`]: which C++ reference (bitnet.cpp 2025, 2026, upstream llama.cpp) computed a set of logits.
//! - [`npy`]: the strict little-endian float32 `.npy` reader and the `numpy.save`-identical writer.
//! - [`argmax`] and [`cosine`]: the two row statistics every comparison uses, with one NaN rule (below).
//! - [`sha256_hex`]: the digest every manifest, receipt and fixture records.
//!
//! **NaN rule.** A NaN is never the largest value: [`argmax`] skips NaNs (the lowest index wins ties, as
//! llama.cpp's greedy sampler does) and answers `None` only for a row with no number at all. [`cosine`]
//! propagates NaN (a NaN input gives a NaN similarity), so a comparison can never pass on one; callers
//! that cannot record NaN (receipts) reject non-finite logits before computing.

pub mod npy;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How a prompt is fed to `llama_decode` (and to our engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The whole prompt in one decode (one ubatch, all logits requested).
    Batch,
    /// One token per decode, through the KV cache.
    Seq,
}

impl Mode {
    /// Both modes, batch first.
    pub const ALL: [Mode; 2] = [Mode::Batch, Mode::Seq];

    /// `batch` or `seq`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Batch => "batch",
            Mode::Seq => "seq",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mode name other than `batch` or `seq`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mode must be batch or seq, not {0:?}")]
pub struct ParseModeError(pub String);

impl FromStr for Mode {
    type Err = ParseModeError;
    fn from_str(s: &str) -> Result<Self, ParseModeError> {
        match s {
            "batch" => Ok(Mode::Batch),
            "seq" => Ok(Mode::Seq),
            other => Err(ParseModeError(other.to_owned())),
        }
    }
}

/// Which C++ reference produced the reference logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Generation {
    /// microsoft/BitNet 404980e + llama.cpp fork 40ed0f29 (ReLU² FFN; the bundled goldens).
    #[serde(rename = "bitnet.cpp-2025")]
    BitnetCpp2025,
    /// microsoft/BitNet 16da220 + fork 390c3077 (SiLU FFN bug, new epilogues).
    #[serde(rename = "bitnet.cpp-2026")]
    BitnetCpp2026,
    /// Upstream ggml-org/llama.cpp.
    #[serde(rename = "llama.cpp")]
    LlamaCpp,
}

impl Generation {
    /// The name used in receipts and manifests.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BitnetCpp2025 => "bitnet.cpp-2025",
            Self::BitnetCpp2026 => "bitnet.cpp-2026",
            Self::LlamaCpp => "llama.cpp",
        }
    }
}

/// Index of the largest value; the lowest index wins ties (bitnet.cpp's greedy pick) and NaN never wins.
/// `None` when the row is empty or all NaN.
pub fn argmax(row: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in row.iter().enumerate() {
        let better = match best {
            None => !v.is_nan(),
            Some((_, b)) => v > b,
        };
        if better {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// Cosine similarity accumulated in f64: 1 when both rows are all zeros, 0 when only one is, NaN when an
/// input is NaN. Computed as `a·b / sqrt(|a|²·|b|²)` and clamped to [-1, 1], so bit-identical rows give
/// exactly 1 (IEEE `sqrt(x²) = x`), which a bit-exact gate of `cosine >= 1` relies on.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if ab.is_nan() || aa.is_nan() || bb.is_nan() {
        return f64::NAN;
    }
    match (aa == 0.0, bb == 0.0) {
        (true, true) => 1.0,
        (true, false) | (false, true) => 0.0,
        (false, false) => (ab / (aa * bb).sqrt()).clamp(-1.0, 1.0),
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_lowest_index_wins_ties_and_skips_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), Some(1));
        assert_eq!(argmax(&[f32::NAN, -1.0, -1.0]), Some(1));
        assert_eq!(argmax(&[0.0, f32::NAN, 5.0]), Some(2));
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), None);
        assert_eq!(argmax(&[]), None);
        assert_eq!(argmax(&[f32::NEG_INFINITY]), Some(0));
    }

    #[test]
    fn cosine_is_exactly_one_for_identical_rows_and_nan_for_nan() {
        let row: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin() * 13.0).collect();
        assert_eq!(cosine(&row, &row), 1.0);
        assert_eq!(cosine(&[0.0, 0.0], &[0.0, 0.0]), 1.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[1.0, 0.0], &[-1.0, 0.0]), -1.0);
        assert!(cosine(&[f32::NAN, 1.0], &[1.0, 1.0]).is_nan());
    }

    #[test]
    fn mode_parses_and_prints() {
        assert_eq!("seq".parse::<Mode>().unwrap(), Mode::Seq);
        assert_eq!(Mode::Batch.to_string(), "batch");
        assert!("both".parse::<Mode>().unwrap_err().to_string().contains("both"));
    }
}
