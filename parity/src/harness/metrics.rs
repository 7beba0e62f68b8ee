//! Per-position comparison of two logits arrays (`[n_positions, n_vocab]`, row-major f32).
//! All accumulation is in f64; the reference is P in KL(P ‖ Q).

use receipts::defs::summarize;
use receipts::{MetricsSummary, PositionMetrics};

/// Why two logits arrays cannot be compared.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricsError {
    /// `n_vocab` is zero.
    #[error("n_vocab must be positive")]
    ZeroVocab,
    /// The arrays have different lengths.
    #[error("ours has {ours} values, the reference {reference}")]
    LengthMismatch {
        /// Our length.
        ours: usize,
        /// The reference's length.
        reference: usize,
    },
    /// The length is not a whole number of rows, or there are no rows.
    #[error("{len} values is not a positive multiple of n_vocab {n_vocab}")]
    NotRows {
        /// Length.
        len: usize,
        /// Row width.
        n_vocab: usize,
    },
    /// A NaN or infinity; receipts cannot carry one, and it is a failure of its own.
    #[error("{side} logits have non-finite value {value} at position {position}, token {token}")]
    NonFinite {
        /// `ours` or `reference`.
        side: &'static str,
        /// Row.
        position: usize,
        /// Column.
        token: usize,
        /// The value.
        value: f32,
    },
    /// Fewer rows than tokens to score (KL statistics).
    #[error("{tokens} next tokens but only {rows} rows")]
    TooFewRows {
        /// Tokens given.
        tokens: usize,
        /// Rows available.
        rows: usize,
    },
    /// A token id outside the vocabulary (KL statistics).
    #[error("token {token} at row {position} is outside n_vocab {n_vocab}")]
    TokenOutOfRange {
        /// Row.
        position: usize,
        /// Id.
        token: u32,
        /// Row width.
        n_vocab: usize,
    },
}

/// Per-row metrics plus their summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// One entry per row.
    pub positions: Vec<PositionMetrics>,
    /// Aggregate (min cosine, top-1 rate, max |diff|, first differing row, bit-exact).
    pub summary: MetricsSummary,
}

/// Check shapes and finiteness; returns the number of rows.
pub fn check_shapes(ours: &[f32], reference: &[f32], n_vocab: usize) -> Result<usize, MetricsError> {
    if n_vocab == 0 {
        return Err(MetricsError::ZeroVocab);
    }
    if ours.len() != reference.len() {
        return Err(MetricsError::LengthMismatch {
            ours: ours.len(),
            reference: reference.len(),
        });
    }
    if ours.is_empty() || !ours.len().is_multiple_of(n_vocab) {
        return Err(MetricsError::NotRows {
            len: ours.len(),
            n_vocab,
        });
    }
    for (side, data) in [("ours", ours), ("reference", reference)] {
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(MetricsError::NonFinite {
                side,
                position: i / n_vocab,
                token: i % n_vocab,
                value: data[i],
            });
        }
    }
    Ok(ours.len() / n_vocab)
}

/// Compare two `[n_positions, n_vocab]` logits arrays row by row.
pub fn compare_logits(ours: &[f32], reference: &[f32], n_vocab: usize) -> Result<Comparison, MetricsError> {
    let rows = check_shapes(ours, reference, n_vocab)?;
    let positions: Vec<PositionMetrics> = (0..rows)
        .map(|i| {
            let span = i * n_vocab..(i + 1) * n_vocab;
            compare_row(i as u64, &ours[span.clone()], &reference[span])
        })
        .collect();
    let summary = summarize(&positions);
    Ok(Comparison { positions, summary })
}

/// Metrics of one row (finite values of equal length assumed; see [`check_shapes`]).
pub fn compare_row(position: u64, ours: &[f32], reference: &[f32]) -> PositionMetrics {
    let (mut n_r, mut n_d, mut sum_abs, mut max_abs) = (0f64, 0f64, 0f64, 0f64);
    for (&o, &r) in ours.iter().zip(reference) {
        let (o, r) = (f64::from(o), f64::from(r));
        let d = o - r;
        n_r += r * r;
        n_d += d * d;
        sum_abs += d.abs();
        max_abs = max_abs.max(d.abs());
    }
    let cosine = vocab::cosine(ours, reference);
    // With an all-zero reference the relative error is undefined; report the absolute L2 instead.
    let rel_l2 = if n_r == 0.0 {
        n_d.sqrt()
    } else {
        n_d.sqrt() / n_r.sqrt()
    };
    // Finite, non-empty rows (check_shapes): argmax always has an answer.
    let top1_ours = vocab::argmax(ours).unwrap_or(0);
    let top1_reference = vocab::argmax(reference).unwrap_or(0);
    let (t_o, t_r) = (top_k(ours, 5), top_k(reference, 5));
    let top5_overlap = t_o.iter().filter(|i| t_r.contains(i)).count() as u8;
    PositionMetrics {
        position,
        cosine,
        max_abs_diff: max_abs,
        mean_abs_diff: sum_abs / ours.len().max(1) as f64,
        rel_l2,
        top1_ours: top1_ours as u32,
        top1_reference: top1_reference as u32,
        top1_match: top1_ours == top1_reference,
        top5_overlap,
        kl_divergence: kl_divergence(reference, ours),
    }
}

/// Indices of the `k` largest values, largest first, lower index first among equals.
pub fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// log-softmax of a row in f64 (max-subtracted).
pub fn log_softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
    let lse = max + sum.ln();
    row.iter().map(|&v| f64::from(v) - lse).collect()
}

/// KL(P ‖ Q) in nats with P = softmax(`p_logits`), Q = softmax(`q_logits`); clamped at 0 against
/// rounding (it is non-negative mathematically).
pub fn kl_divergence(p_logits: &[f32], q_logits: &[f32]) -> f64 {
    let (lp, lq) = (log_softmax(p_logits), log_softmax(q_logits));
    lp.iter().zip(&lq).map(|(a, b)| a.exp() * (a - b)).sum::<f64>().max(0.0)
}

/// First greedy step where two continuations differ (over their common length).
pub fn greedy_first_divergence(ours: &[u32], reference: &[u32]) -> Option<usize> {
    ours.iter().zip(reference).position(|(a, b)| a != b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_rows_are_bit_exact() {
        let a = [1.0f32, -2.0, 3.5, 0.0, 7.0, 7.0];
        let c = compare_logits(&a, &a, 3).expect("comparable");
        assert_eq!(c.positions.len(), 2);
        assert!(c.summary.bit_exact);
        assert_eq!(c.summary.first_diff_position, None);
        assert_eq!(c.summary.min_cosine, 1.0);
        assert_eq!(c.positions[1].top1_ours, 1, "ties go to the lower id");
        assert_eq!(c.positions[0].kl_divergence, 0.0);
    }

    #[test]
    fn known_values_on_a_small_row() {
        // ours = (1, 0), ref = (0, 1): orthogonal, max diff 1, mean diff 1, rel L2 sqrt(2).
        let m = compare_row(0, &[1.0, 0.0], &[0.0, 1.0]);
        assert_eq!(m.cosine, 0.0);
        assert_eq!(m.max_abs_diff, 1.0);
        assert_eq!(m.mean_abs_diff, 1.0);
        assert!((m.rel_l2 - 2f64.sqrt()).abs() < 1e-15);
        assert!(!m.top1_match);
        assert_eq!(m.top5_overlap, 2);
        // KL(P||Q), P = softmax(0,1), Q = softmax(1,0): (p1 - p0) * 1 where p1 = e/(1+e).
        let p1 = std::f64::consts::E / (1.0 + std::f64::consts::E);
        assert!((m.kl_divergence - (p1 - (1.0 - p1))).abs() < 1e-15);
    }

    #[test]
    fn kl_of_known_distributions() {
        // P = (1/2, 1/4, 1/4), Q uniform: KL = 1/2 ln 1.5 + 1/2 ln 0.75 = 1/2 ln 1.125.
        let p = [0.5f32.ln(), 0.25f32.ln(), 0.25f32.ln()];
        let q = [0.0f32; 3];
        assert!((kl_divergence(&p, &q) - 0.5 * 1.125f64.ln()).abs() < 1e-7);
        // Shifting logits by a constant changes nothing.
        assert!(kl_divergence(&q, &[5.0; 3]) < 1e-15);
    }

    #[test]
    fn first_difference_and_summary() {
        let a = [0.0f32, 1.0, 0.0, 1.0, 0.0, 1.0];
        let mut b = a;
        b[4] = 0.5;
        let c = compare_logits(&a, &b, 2).expect("comparable");
        assert_eq!(c.summary.first_diff_position, Some(2));
        assert!(!c.summary.bit_exact);
        assert_eq!(c.summary.max_abs_diff, 0.5);
        assert_eq!(c.summary.top1_match_rate, 1.0);
    }

    #[test]
    fn shape_and_value_errors_are_typed() {
        assert_eq!(compare_logits(&[1.0], &[1.0], 0), Err(MetricsError::ZeroVocab));
        assert!(matches!(
            compare_logits(&[1.0], &[1.0, 2.0], 1),
            Err(MetricsError::LengthMismatch { .. })
        ));
        assert!(matches!(
            compare_logits(&[1.0; 3], &[1.0; 3], 2),
            Err(MetricsError::NotRows { .. })
        ));
        assert!(matches!(compare_logits(&[], &[], 2), Err(MetricsError::NotRows { .. })));
        assert!(matches!(
            compare_logits(&[1.0, f32::NAN], &[1.0, 1.0], 2),
            Err(MetricsError::NonFinite {
                side: "ours",
                position: 0,
                token: 1,
                ..
            })
        ));
    }

    #[test]
    fn zero_rows_and_top_k() {
        let m = compare_row(0, &[0.0; 4], &[0.0; 4]);
        assert_eq!((m.cosine, m.rel_l2), (1.0, 0.0));
        assert_eq!(compare_row(0, &[0.0; 2], &[1.0, 0.0]).cosine, 0.0);
        assert_eq!(top_k(&[1.0, 3.0, 3.0, 2.0], 3), vec![1, 2, 3]);
        assert_eq!(greedy_first_divergence(&[1, 2, 3], &[1, 2, 4, 5]), Some(2));
        assert_eq!(greedy_first_divergence(&[1, 2], &[1, 2, 4]), None);
    }
}

/// The metrics on bitnet.cpp's own batch-vs-seq goldens reproduce the differences its README documents.
#[cfg(test)]
mod golden_tests {
    use super::*;
    use crate::harness::kl::KlStats;

    fn load(name: &str) -> Option<(Vec<usize>, Vec<f32>)> {
        let path = crate::common::fixtures_dir().join("reference/random").join(name);
        if !path.exists() {
            eprintln!("skipped: {} not present", path.display());
            return None;
        }
        Some(ffi_ref::npy::read_f32(&path).expect("readable golden"))
    }

    #[test]
    fn batch_vs_seq_goldens_match_the_documented_ranges() {
        for model in ["tiny-b158-gqa", "tiny-bitnet-legacy"] {
            let (Some((shape, batch)), Some((_, seq))) = (
                load(&format!("{model}_p64_batch.logits.npy")),
                load(&format!("{model}_p64_seq.logits.npy")),
            ) else {
                return;
            };
            let c = compare_logits(&batch, &seq, shape[1]).expect("comparable");
            let s = &c.summary;
            // README: max |Δlogit| 0.16–0.26, min cosine per row 0.9993–0.9998, argmax differs on ≤ 4 of 64
            // rows, and batch and seq already differ at row 0.
            assert!((0.1..0.3).contains(&s.max_abs_diff), "{model}: {s:?}");
            assert!((0.999..1.0).contains(&s.min_cosine), "{model}: {s:?}");
            assert!(s.top1_match_rate >= 60.0 / 64.0, "{model}: {s:?}");
            assert_eq!(s.first_diff_position, Some(0), "{model}");
            let same = compare_logits(&batch, &batch, shape[1]).expect("comparable");
            assert!(same.summary.bit_exact);
            let next: Vec<u32> = (0..63).map(|i| c.positions[i + 1].top1_reference).collect();
            let kl = KlStats::compute(&batch, &seq, shape[1], &next)
                .expect("computable")
                .record();
            assert!(
                kl.kld.mean.value > 0.0 && kl.kld.mean.value < 1e-2,
                "{model}: {:?}",
                kl.kld
            );
            assert!(kl.kld.maximum <= s.max_kl_divergence, "same KL, fewer rows");
            assert!(
                (kl.kld.maximum - c.positions[..63].iter().map(|p| p.kl_divergence).fold(0.0, f64::max)).abs() < 1e-12
            );
            assert!(kl.same_top_p.value >= 59.0 / 63.0, "{model}: {:?}", kl.same_top_p);
        }
    }
}
