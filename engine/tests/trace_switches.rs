//! Each reference-generation switch (shared/spec/reference-generations.md) changes what the spec says
//! it changes and nothing else, shown by tracing the forward pass with and without it.

use engine::kernels::{Dispatcher, KernelChoice};
use engine::model::trace::{trace_prompt, LayerFilter, TraceComparison, DEFAULT_NMSE_THRESHOLD, LAYER_NAMES};
use engine::model::{Model, Numerics, Switch};

mod common;

/// 16 held-out tokens of the trained model's manifest (prompt "16").
const P16: [u32; 16] = [
    501, 333, 82, 76, 111, 356, 58, 262, 374, 84, 802, 793, 273, 562, 422, 115,
];
/// The random models' manifest prompt "32".
const P32: [u32; 32] = [
    1010, 399, 857, 340, 579, 611, 217, 190, 234, 687, 626, 962, 721, 253, 935, 969, 748, 681, 133, 98, 272, 451, 73,
    905, 484, 712, 217, 333, 118, 750, 791, 224,
];

fn model(rel: &str) -> Option<Model> {
    common::committed_or_shared(rel).map(|p| Model::open(p).unwrap())
}

fn trained() -> Option<Model> {
    model("trained/tiny-trained-b158.i2_s.gguf")
}

fn legacy() -> Option<Model> {
    model("tiny-bitnet-legacy.i2_s.gguf")
}

/// The model's own profile against the same profile plus `switch`.
fn compare(m: &Model, switch: Switch, tokens: &[u32], batch: bool) -> TraceComparison {
    let disp = Dispatcher::new(KernelChoice::Auto).unwrap();
    let base = m.auto_numerics();
    let with: Numerics = base.clone().with_switches(&[switch]);
    let a = trace_prompt(m, &disp, base, tokens, batch, 256, LayerFilter::All).unwrap();
    let b = trace_prompt(m, &disp, with, tokens, batch, 256, LayerFilter::All).unwrap();
    assert_eq!(a.tensors.len(), b.tensors.len());
    let c = TraceComparison::new(&a.tensors, &b.tensors, DEFAULT_NMSE_THRESHOLD);
    assert_eq!(
        a.logits != b.logits,
        c.divergent_labels().iter().any(|l| l.starts_with("result_output"))
    );
    c
}

/// Everything before the first divergence is bit-exact, by construction of `first_divergence`; this
/// also checks that the trace is complete (every layer name present, in the spec's order).
fn assert_complete(c: &TraceComparison, n_layer: usize, decodes: usize) {
    assert_eq!(c.diffs.len(), decodes * (n_layer * LAYER_NAMES.len() + 2));
    for (i, name) in LAYER_NAMES.iter().enumerate() {
        assert_eq!(c.diffs[i].key.name, *name);
    }
}

#[test]
fn h1_changes_b158_ffn_from_ffn_act_on() {
    let Some(m) = trained() else { return };
    for batch in [true, false] {
        let c = compare(&m, Switch::H1, &P16, batch);
        assert_complete(&c, m.hparams.n_layer, if batch { 1 } else { P16.len() });
        assert_eq!(c.first_divergent().unwrap().label, "ffn_act-0", "batch={batch}");
        assert_eq!(c.first_exceeding().unwrap().label, "ffn_act-0");
        // Layer 0's attention half is untouched; its FFN from the activation on is not.
        let layer0: Vec<&str> = c.diffs[..LAYER_NAMES.len()]
            .iter()
            .filter(|d| !d.bit_exact)
            .map(|d| d.key.name.as_str())
            .collect();
        assert_eq!(layer0, ["ffn_act", "ffn_out", "ffn_sub_norm", "ffn_down", "l_out"]);
    }
}

#[test]
fn h1_changes_nothing_on_the_legacy_arch() {
    let Some(m) = legacy() else { return };
    for batch in [true, false] {
        let c = compare(&m, Switch::H1, &P32[..8], batch);
        assert_eq!(c.first_divergent(), None, "batch={batch}");
    }
}

#[test]
fn h2_changes_i2s_matmul_outputs_in_low_bits() {
    const MATMULS: [&str; 7] = ["Qcur", "Kcur", "Vcur", "attn_out", "ffn_up", "ffn_gate", "ffn_down"];
    for m in [trained(), legacy()].into_iter().flatten() {
        let c = compare(&m, Switch::H2, &P16[..8], true);
        let first = c.first_divergent().expect("H2 changes some I2_S output");
        assert!(
            MATMULS.contains(&first.key.name.as_str()),
            "first divergence {} is not an I2_S matmul",
            first.label
        );
        // Same inputs, different epilogue: a few ulps at most (relative 2^-21 ≈ 4.8e-7).
        assert!(first.nmse < 1e-12, "{}: NMSE {}", first.label, first.nmse);
        let d = c.diffs.iter().position(|d| d.key == first.key).unwrap();
        assert!(c.diffs[..d].iter().all(|d| d.bit_exact));
    }
}

#[test]
fn h2_first_divergence_is_a_few_ulps_per_element() {
    let Some(m) = trained() else { return };
    let disp = Dispatcher::new(KernelChoice::Auto).unwrap();
    let base = m.auto_numerics();
    let a = trace_prompt(&m, &disp, base.clone(), &P16[..8], true, 256, LayerFilter::All).unwrap();
    let b = trace_prompt(
        &m,
        &disp,
        base.with_switches(&[Switch::H2]),
        &P16[..8],
        true,
        256,
        LayerFilter::All,
    )
    .unwrap();
    let i = a
        .tensors
        .iter()
        .zip(&b.tensors)
        .position(|(x, y)| x.data != y.data)
        .unwrap();
    for (x, y) in a.tensors[i].data.iter().zip(&b.tensors[i].data) {
        let ulps = (x.to_bits() as i64 - y.to_bits() as i64).abs();
        assert!(x.signum() == y.signum() || *x == 0.0 || *y == 0.0);
        assert!(
            ulps <= 4,
            "{} vs {} ({ulps} ulps) in {}",
            x,
            y,
            a.tensors[i].key.label()
        );
    }
}

#[test]
fn h3_changes_nothing_in_seq_mode() {
    for m in [trained(), legacy()].into_iter().flatten() {
        let c = compare(&m, Switch::H3, &P16[..8], false);
        assert_eq!(c.first_divergent(), None);
    }
}

#[test]
fn h3_changes_kq_first_in_batch_mode() {
    for m in [trained(), legacy()].into_iter().flatten() {
        let c = compare(&m, Switch::H3, &P16, true);
        assert_eq!(c.first_divergent().unwrap().label, "kq-0");
    }
}

#[test]
fn h4_changes_no_value_in_batch_mode() {
    for m in [trained(), legacy()].into_iter().flatten() {
        for n in [8, 32] {
            let c = compare(&m, Switch::H4, &P32[..n], true);
            // Only the attention score rows widen (32 -> 256 cells); their common cells, the padding
            // (masked to probability 0) and every other tensor are bit-identical.
            for d in &c.diffs {
                let widened = d.key.name == "kq" || d.key.name == "kq_soft_max";
                assert_eq!(d.bit_exact, !widened, "{}", d.label);
                assert_eq!(d.differing, 0, "{}", d.label);
                if widened {
                    assert_eq!(d.shape_ours.unwrap()[1], 32);
                    assert_eq!(d.shape_theirs.unwrap()[1], 256);
                }
            }
        }
    }
}

#[test]
fn h4_changes_seq_mode_attention_output() {
    let Some(m) = legacy() else { return };
    let c = compare(&m, Switch::H4, &P32, false);
    let first_value = c
        .diffs
        .iter()
        .find(|d| d.differing > 0)
        .expect("H4 changes a value in seq mode");
    assert_eq!(first_value.key.name, "kqv_out", "{}", first_value.label);
    assert!(c
        .diffs
        .iter()
        .take_while(|d| d.differing == 0)
        .all(|d| d.bit_exact || d.key.name.starts_with("kq")));
}
