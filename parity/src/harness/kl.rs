//! llama.cpp `llama-perplexity --kl-divergence` statistics, computed in f64 from full-precision logits.
//!
//! Definitions follow `tools/perplexity/perplexity.cpp` of ggml-org/llama.cpp (read at commit
//! 050fc7f32de16858ac667d775b43a51ed8976e6f):
//!
//! - Per row, the *base* model is the reference (P) and the evaluated model is ours (Q).
//!   `log_softmax(n_vocab, logits, base_log_prob, tok, kld)` computes
//!   `sum += p_base * (p_log_base - logits[i] + max_logit)` — i.e. KL(P_base ‖ Q) — and
//!   `if (imax == imax_base) ++kld.n_same_top` (argmax, first index wins ties on both sides).
//! - Δp is about the *actual next token* `tok = tokens[i+1]`, not the top token:
//!   `const float p_base = expf(-nll_base); const float p = expf(-nll); const float p_diff = p - p_base;`
//!   so Δp = Q(tok) − P(tok).
//! - `mean_and_uncertainty(sum, sum2, count)`: `f = sum/count; df = sum2/count - f*f;
//!   df = df > 0 && count > 10 ? sqrt(df/(count-1)) : 0.`
//! - `percentile(values, fraction)` on sorted values: `p = fraction*(values.size() - 1); ip = size_t(p);
//!   p -= ip; return (1 - p)*values[ip] + p*values[min(ip+1, size-1)]`, with `fraction <= 0` → front and
//!   `fraction >= 1` → back. The median is the mean of the two middle values for an even count.
//! - `RMS Δp = sqrt(mean(Δp²))`, uncertainty `0.5/rms * unc(mean Δp²)` from `sum_p_diff2`/`sum_p_diff4`.
//! - `Same top p = n_same_top/count ± sqrt(p*(1 - p)/(count - 1))`.
//!
//! Differences, on purpose: llama.cpp stores base log-probs as uint16 and skips terms with
//! `p_log_base <= -16`; here every term is kept in f64 (full precision). llama.cpp prints no summary
//! below 100 rows ("we do not wish to do statistics on so few values"); here the statistics are always
//! returned and `count` says how many rows they rest on. Where llama.cpp would divide by zero
//! (RMS uncertainty with RMS 0, same-top uncertainty with one row) the uncertainty is 0. Values are
//! fractions, not the percentages llama.cpp prints for Δp.

use receipts::{DeltaPDistribution, KlStatsRecord, KldDistribution, ValueUncertainty};

use vocab::argmax;

use super::metrics::{check_shapes, log_softmax, MetricsError};

/// KL statistics and the per-row values they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct KlStats {
    /// KL(P_ref ‖ Q_ours) of each scored row.
    pub kld: Vec<f64>,
    /// Q_ours(next) − P_ref(next) of each scored row.
    pub delta_p: Vec<f64>,
    /// Rows whose argmax agrees.
    pub n_same_top: usize,
}

impl KlStats {
    /// Score the first `next_tokens.len()` rows; row `i` is scored against `next_tokens[i]` (for a
    /// prompt, pass `&prompt[1..]`: the token each row predicts).
    pub fn compute(ours: &[f32], reference: &[f32], n_vocab: usize, next_tokens: &[u32]) -> Result<Self, MetricsError> {
        let rows = check_shapes(ours, reference, n_vocab)?;
        if next_tokens.is_empty() || next_tokens.len() > rows {
            return Err(MetricsError::TooFewRows {
                tokens: next_tokens.len(),
                rows,
            });
        }
        let mut out = Self {
            kld: Vec::with_capacity(next_tokens.len()),
            delta_p: Vec::new(),
            n_same_top: 0,
        };
        for (i, &tok) in next_tokens.iter().enumerate() {
            if tok as usize >= n_vocab {
                return Err(MetricsError::TokenOutOfRange {
                    position: i,
                    token: tok,
                    n_vocab,
                });
            }
            let span = i * n_vocab..(i + 1) * n_vocab;
            let (q, p) = (&ours[span.clone()], &reference[span]);
            let (lq, lp) = (log_softmax(q), log_softmax(p));
            let kld: f64 = lp.iter().zip(&lq).map(|(a, b)| a.exp() * (a - b)).sum::<f64>();
            out.kld.push(kld.max(0.0));
            out.delta_p.push(lq[tok as usize].exp() - lp[tok as usize].exp());
            out.n_same_top += usize::from(argmax(q) == argmax(p));
        }
        Ok(out)
    }

    /// The statistics under llama.cpp's names, as a receipt records them.
    pub fn record(&self) -> KlStatsRecord {
        let count = self.kld.len();
        let sorted = |v: &[f64]| {
            let mut s = v.to_vec();
            s.sort_by(f64::total_cmp);
            s
        };
        let k = sorted(&self.kld);
        let d = sorted(&self.delta_p);
        let sum = |v: &[f64], pow: i32| v.iter().map(|x| x.powi(pow)).sum::<f64>();
        let mean_kld = mean_and_uncertainty(sum(&k, 1), sum(&k, 2), count);
        let mean_dp = mean_and_uncertainty(sum(&d, 1), sum(&d, 2), count);
        let mse = mean_and_uncertainty(sum(&d, 2), sum(&d, 4), count);
        let rms = mse.value.sqrt();
        let rms_unc = if rms > 0.0 { 0.5 / rms * mse.uncertainty } else { 0.0 };
        let same = self.n_same_top as f64 / count.max(1) as f64;
        let same_unc = if count > 1 {
            (same * (1.0 - same) / (count - 1) as f64).sqrt()
        } else {
            0.0
        };
        KlStatsRecord {
            count: count as u64,
            kld: KldDistribution {
                mean: mean_kld,
                maximum: k.last().copied().unwrap_or(0.0),
                p99_9: percentile(&k, 0.999),
                p99: percentile(&k, 0.99),
                p95: percentile(&k, 0.95),
                p90: percentile(&k, 0.90),
                median: median(&k),
                p10: percentile(&k, 0.10),
                p5: percentile(&k, 0.05),
                p1: percentile(&k, 0.01),
                p0_1: percentile(&k, 0.001),
                minimum: k.first().copied().unwrap_or(0.0),
            },
            delta_p: DeltaPDistribution {
                mean: mean_dp,
                maximum: d.last().copied().unwrap_or(0.0),
                p99_9: percentile(&d, 0.999),
                p99: percentile(&d, 0.99),
                p95: percentile(&d, 0.95),
                p90: percentile(&d, 0.90),
                p75: percentile(&d, 0.75),
                median: median(&d),
                p25: percentile(&d, 0.25),
                p10: percentile(&d, 0.10),
                p5: percentile(&d, 0.05),
                p1: percentile(&d, 0.01),
                p0_1: percentile(&d, 0.001),
                minimum: d.first().copied().unwrap_or(0.0),
                rms: ValueUncertainty {
                    value: rms,
                    uncertainty: rms_unc,
                },
            },
            same_top_p: ValueUncertainty {
                value: same,
                uncertainty: same_unc,
            },
        }
    }
}

/// llama.cpp's `mean_and_uncertainty` lambda.
pub fn mean_and_uncertainty(sum: f64, sum2: f64, count: usize) -> ValueUncertainty {
    if count < 1 {
        return ValueUncertainty {
            value: 0.0,
            uncertainty: 0.0,
        };
    }
    let f = sum / count as f64;
    let df = sum2 / count as f64 - f * f;
    let uncertainty = if df > 0.0 && count > 10 {
        (df / (count - 1) as f64).sqrt()
    } else {
        0.0
    };
    ValueUncertainty { value: f, uncertainty }
}

/// llama.cpp's `percentile` lambda on sorted values (0 for an empty slice).
pub fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let (Some(&first), Some(&last)) = (sorted.first(), sorted.last()) else {
        return 0.0;
    };
    if fraction <= 0.0 {
        return first;
    }
    if fraction >= 1.0 {
        return last;
    }
    let p = fraction * (sorted.len() - 1) as f64;
    let ip = p as usize;
    let p = p - ip as f64;
    (1.0 - p) * sorted[ip] + p * sorted[(ip + 1).min(sorted.len() - 1)]
}

/// llama.cpp's median: mean of the two middle values for an even count (0 for an empty slice).
pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n.is_multiple_of(2) => 0.5 * (sorted[n / 2] + sorted[n / 2 - 1]),
        _ => sorted[n / 2],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-7
    }

    #[test]
    fn one_row_of_known_distributions() {
        // Reference P = (1/2, 1/4, 1/4), ours Q uniform, next token 0.
        let p = [0.5f32.ln(), 0.25f32.ln(), 0.25f32.ln()];
        let q = [0.0f32; 3];
        let s = KlStats::compute(&q, &p, 3, &[0]).expect("computable");
        assert!(close(s.kld[0], 0.5 * 1.125f64.ln()));
        assert!(close(s.delta_p[0], 1.0 / 3.0 - 0.5), "Δp = Q(tok) − P(tok)");
        assert_eq!(s.n_same_top, 1, "uniform argmax is id 0, as is P's");
        let r = s.record();
        assert_eq!(r.count, 1);
        assert_eq!(r.kld.mean.uncertainty, 0.0, "no uncertainty with ≤ 10 rows");
        assert!(close(r.delta_p.rms.value, 1.0 / 6.0));
        assert_eq!(
            r.same_top_p,
            ValueUncertainty {
                value: 1.0,
                uncertainty: 0.0
            }
        );
    }

    #[test]
    fn identical_logits_give_zero_divergence() {
        let l: Vec<f32> = (0..40).map(|i| (i % 7) as f32 * 0.3).collect();
        let r = KlStats::compute(&l, &l, 4, &[0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
            .expect("computable")
            .record();
        assert_eq!(r.kld.maximum, 0.0);
        assert_eq!(
            r.delta_p.rms,
            ValueUncertainty {
                value: 0.0,
                uncertainty: 0.0
            }
        );
        assert_eq!(r.same_top_p.value, 1.0);
    }

    #[test]
    fn percentile_and_median_follow_llama_cpp() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 1.0), 5.0);
        assert!(close(percentile(&v, 0.9), 4.6)); // p = 3.6 → 0.4·4 + 0.6·5
        assert!(close(percentile(&v, 0.1), 1.4));
        assert_eq!(median(&v), 3.0);
        assert_eq!(median(&[1.0, 2.0, 3.0, 10.0]), 2.5);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn uncertainty_needs_more_than_ten_rows() {
        // Values 0..=10 (11 rows): mean 5, population variance 10, unc = sqrt(10/10) = 1.
        let vals: Vec<f64> = (0..=10).map(f64::from).collect();
        let s1: f64 = vals.iter().sum();
        let s2: f64 = vals.iter().map(|x| x * x).sum();
        let m = mean_and_uncertainty(s1, s2, 11);
        assert!(close(m.value, 5.0) && close(m.uncertainty, 1.0));
        assert_eq!(mean_and_uncertainty(s1 - 10.0, s2 - 100.0, 10).uncertainty, 0.0);
        assert_eq!(
            mean_and_uncertainty(0.0, 0.0, 0),
            ValueUncertainty {
                value: 0.0,
                uncertainty: 0.0
            }
        );
    }

    #[test]
    fn same_top_uncertainty_is_binomial() {
        // 12 rows, ours agrees on the top token in 9: p = 0.75 ± sqrt(0.75·0.25/11).
        let n_vocab = 2;
        let reference: Vec<f32> = (0..12).flat_map(|_| [1.0, 0.0]).collect();
        let ours: Vec<f32> = (0..12)
            .flat_map(|i| if i < 9 { [1.0, 0.0] } else { [0.0, 1.0] })
            .collect();
        let r = KlStats::compute(&ours, &reference, n_vocab, &[0; 12])
            .expect("computable")
            .record();
        assert!(close(r.same_top_p.value, 0.75));
        assert!(close(r.same_top_p.uncertainty, (0.75f64 * 0.25 / 11.0).sqrt()));
        assert!(r.kld.maximum > 0.0 && r.kld.minimum == 0.0);
        assert!(close(r.kld.median, 0.0));
    }

    #[test]
    fn bad_tokens_are_typed_errors() {
        let l = [0.0f32; 4];
        assert!(matches!(
            KlStats::compute(&l, &l, 2, &[0, 1, 0]),
            Err(MetricsError::TooFewRows { .. })
        ));
        assert!(matches!(
            KlStats::compute(&l, &l, 2, &[5]),
            Err(MetricsError::TokenOutOfRange { .. })
        ));
    }
}
