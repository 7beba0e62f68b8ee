//! Types of the shared `defs` schema: tool, host, model, kernel log, metrics, KL statistics.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use vocab::{Generation, Mode};

/// Kernel ID → number of times the dispatcher handed it out.
pub type KernelLog = BTreeMap<String, u64>;

/// Kernel ID → the instruction set it runs on. The `kernels.isa` gate reads this, not the ID string (in
/// `i2s.x86.scalar.gemv` the `x86` names the weight layout, not the host).
pub type KernelIsaLog = BTreeMap<String, KernelIsa>;

/// The instruction set of one kernel and the CPU features it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelIsa {
    /// `scalar`, `fma`, `avx2`, `avx512`, `avx512bw`, `avx512vnni`, `neon` or `cuda` (needs an accelerator).
    pub isa: String,
    /// CPU features as `host.isa_features` spells them (empty for portable and device kernels).
    pub requires: Vec<String>,
}

/// The program that wrote a receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    /// Program name (`parity`).
    pub name: String,
    /// Program version.
    pub version: String,
    /// Commit it was built from, or `unknown`.
    pub git_commit: String,
}

/// The machine a run happened on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// CPU model string (`/proc/cpuinfo` "model name").
    pub cpu_model: String,
    /// `std::env::consts::ARCH`.
    pub arch: String,
    /// `std::env::consts::OS`.
    pub os: String,
    /// Features detected at run time, lower case (`avx2`, `avx512vnni`, `neon`, ...).
    pub isa_features: Vec<String>,
    /// Devices the run could use (`cuda:<name>`); absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerators: Option<Vec<String>>,
    /// Worker threads used.
    pub threads: u32,
}

impl Host {
    /// Describe this machine, with `threads` worker threads.
    pub fn detect(threads: u32) -> Self {
        Self {
            cpu_model: cpu_model(),
            arch: std::env::consts::ARCH.to_owned(),
            os: std::env::consts::OS.to_owned(),
            isa_features: isa_features(),
            accelerators: None,
            threads,
        }
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Declares the CPU features [`Host::detect`] probes, spelled as `is_x86_feature_detected!` /
/// `is_aarch64_feature_detected!` take them, as lists and as the probe that records them (`.` as `_`).
macro_rules! host_features {
    (x86_64: [$($x86:tt),*], aarch64: [$($arm:tt),*]) => {
        /// The x86-64 features a host record may list besides AMX's (the `kernels.isa` gate reads kernel-ID
        /// segments against them).
        pub const X86_64_FEATURES: &[&str] = &[$($x86),*];
        /// The aarch64 features a host record may list.
        pub const AARCH64_FEATURES: &[&str] = &[$($arm),*];

        #[cfg(target_arch = "x86_64")]
        fn isa_features() -> Vec<String> {
            let mut f = Vec::new();
            $(if std::is_x86_feature_detected!($x86) { f.push($x86.replace('.', "_")); })*
            f.extend(amx_features().iter().map(|s| s.to_string()));
            f
        }

        #[cfg(target_arch = "aarch64")]
        fn isa_features() -> Vec<String> {
            let mut f = Vec::new();
            $(if std::arch::is_aarch64_feature_detected!($arm) { f.push($arm.to_owned()); })*
            f
        }
    };
}

host_features!(
    x86_64: [
        "sse4.1", "ssse3", "fma", "f16c", "avx", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512vnni", "avxvnni"
    ],
    aarch64: ["neon", "dotprod", "fp16", "i8mm", "sve"]
);

/// `amx_tile` and `amx_int8` when CPUID leaf 7 reports them (EDX bits 24, 25) and the OS enables the tile state
/// (XCR0 bits 17, 18): `is_x86_feature_detected!` knows AMX only on nightly.
#[cfg(target_arch = "x86_64")]
fn amx_features() -> &'static [&'static str] {
    use std::arch::x86_64::{__cpuid, __cpuid_count, __get_cpuid_max, _xgetbv};
    #[target_feature(enable = "xsave")]
    fn xcr0() -> u64 {
        // SAFETY: XGETBV with ECX = 0 reads XCR0; the caller checked OSXSAVE.
        unsafe { _xgetbv(0) }
    }
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86_64 CPU (leaves read only up to the maximum); XGETBV only after
    // CPUID.1:ECX.OSXSAVE says the OS enabled it.
    let on = unsafe {
        __get_cpuid_max(0).0 >= 7
            && __cpuid(1).ecx & (1 << 27) != 0
            && __cpuid_count(7, 0).edx & (3 << 24) == 3 << 24
            && xcr0() & (3 << 17) == 3 << 17
    };
    if on {
        &["amx_tile", "amx_int8"]
    } else {
        &[]
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn isa_features() -> Vec<String> {
    Vec::new()
}

/// The model file that was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Path as given by the user.
    pub path: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// `general.architecture`.
    pub architecture: String,
    /// Tensor count per storage flavor (`I2_S`, `TQ2_0`, `F16`, ...).
    pub flavor_summary: BTreeMap<String, u64>,
}

/// Comparison of one logits row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionMetrics {
    /// Row index (token position).
    pub position: u64,
    /// Cosine similarity (f64 accumulation).
    pub cosine: f64,
    /// max |ours − reference|.
    pub max_abs_diff: f64,
    /// mean |ours − reference|.
    pub mean_abs_diff: f64,
    /// ‖ours − reference‖₂ / ‖reference‖₂.
    pub rel_l2: f64,
    /// argmax of ours (lowest id wins ties).
    pub top1_ours: u32,
    /// argmax of the reference.
    pub top1_reference: u32,
    /// `top1_ours == top1_reference`.
    pub top1_match: bool,
    /// |top-5(ours) ∩ top-5(reference)|.
    pub top5_overlap: u8,
    /// KL(P_reference ‖ P_ours) of the softmaxes, nats.
    pub kl_divergence: f64,
}

/// Aggregate of a run of [`PositionMetrics`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSummary {
    /// Rows compared.
    pub n_positions: u64,
    /// Minimum cosine.
    pub min_cosine: f64,
    /// Fraction of rows whose argmax agrees.
    pub top1_match_rate: f64,
    /// Largest |diff| over all rows.
    pub max_abs_diff: f64,
    /// Largest per-row KL divergence.
    pub max_kl_divergence: f64,
    /// First row that is not bit-identical (`null` when none).
    #[serde(deserialize_with = "Option::deserialize")]
    pub first_diff_position: Option<u64>,
    /// Every row bit-identical.
    pub bit_exact: bool,
}

/// Aggregate per-row metrics. An empty slice gives `n_positions = 0`, which no schema accepts.
pub fn summarize(rows: &[PositionMetrics]) -> MetricsSummary {
    let matches = rows.iter().filter(|r| r.top1_match).count();
    MetricsSummary {
        n_positions: rows.len() as u64,
        min_cosine: rows.iter().map(|r| r.cosine).fold(1.0, f64::min),
        top1_match_rate: if rows.is_empty() {
            0.0
        } else {
            matches as f64 / rows.len() as f64
        },
        max_abs_diff: rows.iter().map(|r| r.max_abs_diff).fold(0.0, f64::max),
        max_kl_divergence: rows.iter().map(|r| r.kl_divergence).fold(0.0, f64::max),
        first_diff_position: rows.iter().find(|r| r.max_abs_diff != 0.0).map(|r| r.position),
        bit_exact: rows.iter().all(|r| r.max_abs_diff == 0.0),
    }
}

/// Aggregate several summaries (rates weighted by row count; first diff = smallest position).
pub fn combine_summaries<'a>(parts: impl IntoIterator<Item = &'a MetricsSummary>) -> MetricsSummary {
    let mut out = MetricsSummary {
        n_positions: 0,
        min_cosine: 1.0,
        top1_match_rate: 0.0,
        max_abs_diff: 0.0,
        max_kl_divergence: 0.0,
        first_diff_position: None,
        bit_exact: true,
    };
    let mut matches = 0.0;
    for s in parts {
        out.n_positions += s.n_positions;
        out.min_cosine = out.min_cosine.min(s.min_cosine);
        matches += s.top1_match_rate * s.n_positions as f64;
        out.max_abs_diff = out.max_abs_diff.max(s.max_abs_diff);
        out.max_kl_divergence = out.max_kl_divergence.max(s.max_kl_divergence);
        out.first_diff_position = match (out.first_diff_position, s.first_diff_position) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        out.bit_exact &= s.bit_exact;
    }
    if out.n_positions > 0 {
        out.top1_match_rate = matches / out.n_positions as f64;
    }
    out
}

/// A value with llama.cpp's "±" uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueUncertainty {
    /// The estimate.
    pub value: f64,
    /// Its standard error (0 when llama.cpp would print 0).
    pub uncertainty: f64,
}

/// llama-perplexity's "KL divergence statistics" block (nats).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct KldDistribution {
    pub mean: ValueUncertainty,
    pub maximum: f64,
    pub p99_9: f64,
    pub p99: f64,
    pub p95: f64,
    pub p90: f64,
    pub median: f64,
    pub p10: f64,
    pub p5: f64,
    pub p1: f64,
    pub p0_1: f64,
    pub minimum: f64,
}

/// llama-perplexity's "Token probability statistics" block, as fractions (llama.cpp prints %).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct DeltaPDistribution {
    pub mean: ValueUncertainty,
    pub maximum: f64,
    pub p99_9: f64,
    pub p99: f64,
    pub p95: f64,
    pub p90: f64,
    pub p75: f64,
    pub median: f64,
    pub p25: f64,
    pub p10: f64,
    pub p5: f64,
    pub p1: f64,
    pub p0_1: f64,
    pub minimum: f64,
    /// RMS Δp ± uncertainty.
    pub rms: ValueUncertainty,
}

/// llama.cpp-compatible KL statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KlStatsRecord {
    /// Rows the statistics cover.
    pub count: u64,
    /// KLD distribution.
    pub kld: KldDistribution,
    /// Δp distribution.
    pub delta_p: DeltaPDistribution,
    /// "Same top p" ± uncertainty.
    pub same_top_p: ValueUncertainty,
}

/// ed25519 signature over the 32 raw bytes of the digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Always `ed25519`.
    pub algorithm: String,
    /// Hex public key (32 bytes).
    pub public_key: String,
    /// Hex signature (64 bytes).
    pub signature: String,
}

/// Top-level field → SHA-256 of its canonical JSON.
pub type SectionDigests = BTreeMap<String, String>;

/// Current time as RFC 3339 UTC with second precision (`2025-01-31T12:00:00Z`).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339_from_unix(secs)
}

/// RFC 3339 UTC text of a Unix time in seconds.
pub fn rfc3339_from_unix(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339_from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_from_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_from_unix(1_735_689_599), "2024-12-31T23:59:59Z");
    }
}
