//! Every reference GGUF in shared/reference classifies as its README says, and the decoders agree
//! with each other on real data: TQ2_0, TQ1_0 and F16 copies of one model hold the same weights.

use engine::flavor::{
    i2s_code, i2s_decode_row, tq1_0_blocks, tq2_0_blocks, Flavor, FlavorOptions, I2sLayout, ModelFlavors,
};
use engine::gguf::{Dialect, GgmlType, GgufFile};

mod common;
use common::reference;

fn load(rel: &str) -> Option<(GgufFile, ModelFlavors)> {
    let g = GgufFile::open(reference(rel)?).unwrap();
    let f = ModelFlavors::classify(&g, &FlavorOptions::default()).unwrap_or_else(|e| panic!("{rel}: {e}"));
    Some((g, f))
}

fn count(f: &ModelFlavors, name: &str) -> usize {
    f.counts.get(name).copied().unwrap_or(0)
}

#[test]
fn b158_models_are_i2s_x86_with_f16_embeddings() {
    // (file, layers, I2_S per layer = 7, F32 norms = 1 + 4 per layer)
    for (rel, layers) in [
        ("tiny-b158-gqa.i2_s.gguf", 3),
        ("tiny-b158-nopre.i2_s.gguf", 3),
        ("trained/tiny-trained-b158.i2_s.gguf", 4),
    ] {
        let Some((g, f)) = load(rel) else { continue };
        assert_eq!(g.dialect, Dialect::BitnetFork, "{rel}");
        assert_eq!(count(&f, "i2_s"), 7 * layers, "{rel}");
        assert_eq!(count(&f, "f32"), 1 + 4 * layers, "{rel}");
        assert_eq!(count(&f, "f16"), 1, "{rel}");
        assert_eq!(f.tensors.len(), g.tensors.len());
        assert_eq!(f.get("token_embd.weight"), Some(&Flavor::F16));
        let d = f.i2s_layout.as_ref().expect("I2_S present ⇒ a layout decision");
        assert_eq!(d.layout, I2sLayout::X86Act128);
        assert!(d.assumed && d.reason.contains("identical sizes"), "{}", d.reason);
        for tf in &f.tensors {
            if let Flavor::I2s {
                layout,
                layout_assumed,
                scale,
            } = &tf.flavor
            {
                assert_eq!((*layout, *layout_assumed), (I2sLayout::X86Act128, true));
                assert!(scale.is_finite() && *scale != 0.0, "{rel} {}: scale {scale}", tf.name);
            }
        }
    }
}

#[test]
fn i2s_reference_codes_are_ternary() {
    // make_tiny_model.py never writes code 3; reading every weight also exercises i2s_code bounds.
    let Some((g, _)) = load("tiny-b158-gqa.i2_s.gguf") else {
        return;
    };
    let t = g.tensor("blk.0.attn_k.weight").unwrap();
    let data = g.tensor_data(t).unwrap();
    let (k, rows) = (t.row_len() as usize, t.n_rows() as usize);
    let mut hist = [0usize; 4];
    for r in 0..rows {
        for c in 0..k {
            hist[i2s_code(data, I2sLayout::X86Act128, k, r, c) as usize] += 1;
        }
    }
    assert_eq!(hist[3], 0, "code 3 in a reference file");
    assert!(hist[0] > 0 && hist[1] > 0 && hist[2] > 0, "{hist:?}");
    let mut row = vec![0i8; k];
    i2s_decode_row(data, I2sLayout::X86Act128, rows - 1, &mut row);
    assert!(row.iter().all(|v| (-1..=1).contains(v)));
}

#[test]
fn legacy_bitnet_has_sibling_scales() {
    let Some((g, f)) = load("tiny-bitnet-legacy.i2_s.gguf") else {
        return;
    };
    assert_eq!(g.architecture(), "bitnet");
    assert_eq!(count(&f, "i2_s"), 14);
    assert_eq!(count(&f, "sibling_scale"), 14);
    assert_eq!(count(&f, "f32"), 9);
    assert_eq!(count(&f, "f16"), 1);
    match f.get("blk.0.attn_q.scale") {
        Some(Flavor::SiblingScale { of, value }) => {
            assert_eq!(of, "blk.0.attn_q.weight");
            let raw = g.tensor_data_by_name("blk.0.attn_q.scale").unwrap();
            assert_eq!(value.to_le_bytes(), raw[..4]);
        }
        other => panic!("blk.0.attn_q.scale is {other:?}"),
    }
    // README: the I2_S inner scale of the legacy model is 1.0.
    assert!(matches!(f.get("blk.0.attn_q.weight"), Some(Flavor::I2s { scale, .. }) if *scale == 1.0));
}

#[test]
fn upstream_tq_and_f16_files_classify_by_type() {
    for (rel, flavor, n) in [
        ("upstream/tiny-bitnet-tq.tq2_0.gguf", "tq2_0", 14),
        ("upstream/tiny-bitnet-tq.tq1_0.gguf", "tq1_0", 14),
        ("upstream/tiny-bitnet-tq.f16.gguf", "f16", 15),
    ] {
        let Some((_, f)) = load(rel) else { continue };
        assert_eq!(count(&f, flavor), n, "{rel}: {:?}", f.counts);
        assert_eq!(count(&f, "f32"), 9, "{rel}");
        assert!(f.i2s_layout.is_none());
        assert_eq!(f.unsupported().count(), 0);
    }
}

/// Ternary values and per-block d of a TQ tensor, via the block decoders.
fn tq_values(g: &GgufFile, name: &str) -> Vec<f32> {
    let t = g.tensor(name).unwrap();
    let data = g.tensor_data(t).unwrap();
    let mut out = Vec::with_capacity(t.n_elements as usize);
    match t.ggml_type {
        GgmlType::TQ2_0 => tq2_0_blocks(data).for_each(|b| {
            let d = b.d.to_f32();
            out.extend(b.ternary().iter().map(|&q| f32::from(q) * d));
        }),
        GgmlType::TQ1_0 => tq1_0_blocks(data).for_each(|b| {
            let d = b.d.to_f32();
            out.extend(b.ternary().iter().map(|&q| f32::from(q) * d));
        }),
        other => panic!("{name} is {other:?}"),
    }
    out
}

#[test]
fn tq2_0_and_tq1_0_decode_to_the_f16_weights() {
    // The upstream README: the conversion is lossless, TQ tensors dequantize exactly to the F16 ones.
    let (Some(tq2), Some(tq1), Some(f16)) = (
        reference("upstream/tiny-bitnet-tq.tq2_0.gguf"),
        reference("upstream/tiny-bitnet-tq.tq1_0.gguf"),
        reference("upstream/tiny-bitnet-tq.f16.gguf"),
    ) else {
        return;
    };
    let (tq2, tq1, f16) = (
        GgufFile::open(tq2).unwrap(),
        GgufFile::open(tq1).unwrap(),
        GgufFile::open(f16).unwrap(),
    );
    let mut checked = 0;
    for t in tq2.tensors.iter().filter(|t| t.ggml_type == GgmlType::TQ2_0) {
        let a = tq_values(&tq2, &t.name);
        let b = tq_values(&tq1, &t.name);
        let dense: Vec<f32> = f16
            .tensor_data_by_name(&t.name)
            .unwrap()
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect();
        assert_eq!(a.len(), dense.len());
        assert!(a.iter().any(|&v| v != 0.0));
        for (i, ((x, y), z)) in a.iter().zip(&b).zip(&dense).enumerate() {
            assert!(x == z && y == z, "{} weight {i}: tq2 {x} tq1 {y} f16 {z}", t.name);
        }
        checked += 1;
    }
    assert_eq!(checked, 14);
}
