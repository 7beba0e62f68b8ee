//! Type-36 spans crafted with the writer: real I2_S, the foreign "seed flavors" of spec §8, and
//! spans nothing explains; I2_S layouts (pack, decode, repack, overrides) and TQ block decoding.

use engine::flavor::{
    classify, i2s_bytes, i2s_code, i2s_pack, i2s_repack_to_x86, BlockTq1_0, BlockTq2_0, Flavor, FlavorError,
    FlavorOptions, ForeignReading, I2sLayout, ModelFlavors,
};
use engine::gguf::{GgufFile, GgufWriter, Value};

/// A b1.58 file holding one type-36 tensor `w` with `data`, then (unless `last`) an F32 tensor after it.
fn file_with(dims: &[u64], data: Vec<u8>, last: bool, alignment: Option<u32>) -> GgufFile {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", Value::String("bitnet-b1.58".into()));
    if let Some(a) = alignment {
        w.kv("general.alignment", Value::U32(a));
    }
    w.tensor("w", dims, 36, data);
    if !last {
        w.tensor("after", &[4], 0, vec![0; 16]);
    }
    GgufFile::from_bytes(w.to_bytes()).unwrap()
}

fn classify_w(g: &GgufFile, opts: FlavorOptions) -> Result<Flavor, FlavorError> {
    classify(g, g.tensor("w").unwrap(), &opts)
}

/// Deterministic codes 0..=2 (a small LCG; no code 3).
fn codes(n: usize, seed: u32) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((s >> 16) % 3) as u8
        })
        .collect()
}

#[test]
fn i2s_size_matches_the_spec_example() {
    // 2B-4T attn_q: ne = [2560, 2560] → 1 638 400 + 32 bytes.
    assert_eq!(i2s_bytes(2560 * 2560), 1_638_432);
}

#[test]
fn real_i2s_classifies_and_keeps_a_negative_scale() {
    let data = i2s_pack(&codes(256 * 4, 1), I2sLayout::X86Act128, 4, 256, -0.125);
    for last in [false, true] {
        let g = file_with(&[256, 4], data.clone(), last, None);
        let f = classify_w(&g, FlavorOptions::default()).unwrap();
        assert_eq!(
            f,
            Flavor::I2s {
                layout: I2sLayout::X86Act128,
                layout_assumed: true,
                scale: -0.125
            }
        );
    }
}

#[test]
fn last_tensor_may_end_without_padding() {
    // [128, 2] at alignment 64: n/4 + 32 = 96, padded 128. As the last tensor the file ends at 96.
    let data = i2s_pack(&codes(256, 2), I2sLayout::X86Act128, 2, 128, 0.5);
    let g = file_with(&[128, 2], data, true, Some(64));
    assert_eq!(g.tensor("w").unwrap().span, 96);
    assert!(matches!(classify_w(&g, FlavorOptions::default()), Ok(Flavor::I2s { scale, .. }) if scale == 0.5));
}

#[test]
fn split32_and_qk256_coincide_for_multiples_of_256() {
    // n = 1024: both readings need exactly n/4 = 256 bytes; real I2_S would need 288.
    let g = file_with(&[256, 4], vec![0x55; 256], false, None);
    match classify_w(&g, FlavorOptions::default()) {
        Err(e @ FlavorError::ForeignLayout { .. }) => {
            let FlavorError::ForeignLayout {
                ref readings,
                span,
                expected,
                ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!(
                readings,
                &[ForeignReading::Split32WithSibling, ForeignReading::GgmlQk256NoScale]
            );
            assert_eq!((span, expected), (256, 288));
            let msg = e.to_string();
            assert!(
                msg.contains("Split32WithSibling") && msg.contains("GgmlQk256NoScale"),
                "{msg}"
            );
            assert!(msg.contains("scale"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bitnet32f16_span_is_recognised() {
    // n = 1024: ⌈n/32⌉·10 = 320 bytes (real I2_S: 288).
    let g = file_with(&[128, 8], vec![0; 320], false, None);
    assert!(matches!(
        classify_w(&g, FlavorOptions::default()),
        Err(FlavorError::ForeignLayout { readings, .. }) if readings == [ForeignReading::BitNet32F16]
    ));
}

#[test]
fn split32_alone_when_n_is_not_a_multiple_of_256() {
    // n = 384: Split32 = 96 bytes; QK256 = 128 = real I2_S, which 96 is not.
    let g = file_with(&[128, 3], vec![0; 96], false, None);
    assert!(matches!(
        classify_w(&g, FlavorOptions::default()),
        Err(FlavorError::ForeignLayout { readings, .. }) if readings == [ForeignReading::Split32WithSibling]
    ));
}

#[test]
fn qk256_alone_needs_an_odd_tensor_and_no_padding() {
    // n = 160 at alignment 1: QK256 = 64, Split32 = 40, BitNet32F16 = 50, real = 72.
    let g = file_with(&[160], vec![0; 64], false, Some(1));
    assert!(matches!(
        classify_w(&g, FlavorOptions::default()),
        Err(FlavorError::ForeignLayout { readings, .. }) if readings == [ForeignReading::GgmlQk256NoScale]
    ));
}

#[test]
fn unexplained_spans_are_their_own_error() {
    let g = file_with(&[256, 4], vec![0; 340], false, None);
    let e = classify_w(&g, FlavorOptions::default()).unwrap_err();
    assert!(
        matches!(
            e,
            FlavorError::UnexplainedSpan {
                span: 352,
                expected: 288,
                ..
            }
        ),
        "{e:?}"
    );
    // A whole-model classification fails on the first such tensor.
    assert!(ModelFlavors::classify(&g, &FlavorOptions::default()).is_err());
}

#[test]
fn non_finite_scale_is_refused() {
    let data = i2s_pack(&codes(512, 3), I2sLayout::X86Act128, 4, 128, f32::NAN);
    let g = file_with(&[128, 4], data, false, None);
    assert!(matches!(
        classify_w(&g, FlavorOptions::default()),
        Err(FlavorError::NonFiniteScale { offset: 128, .. })
    ));
}

#[test]
fn layout_override_and_its_shape_rules() {
    // K = 64 suits the ARM layout but not x86's 128-blocks.
    let data = i2s_pack(&codes(64 * 4, 4), I2sLayout::Arm64, 4, 64, 1.0);
    let g = file_with(&[64, 4], data, false, None);
    assert!(matches!(
        classify_w(&g, FlavorOptions::default()),
        Err(FlavorError::RowNotMultiple { k: 64, block: 128, .. })
    ));
    let arm = FlavorOptions {
        i2s_layout: Some(I2sLayout::Arm64),
        ..Default::default()
    };
    assert_eq!(
        classify_w(&g, arm).unwrap(),
        Flavor::I2s {
            layout: I2sLayout::Arm64,
            layout_assumed: false,
            scale: 1.0
        }
    );
    // 1x4 needs rows % 4 == 0.
    let g = file_with(
        &[128, 3],
        i2s_pack(&codes(384, 5), I2sLayout::X86Act128, 3, 128, 1.0),
        false,
        None,
    );
    let x1x4 = FlavorOptions {
        i2s_layout: Some(I2sLayout::X86NoActParallel1x4),
        ..Default::default()
    };
    assert!(matches!(
        classify_w(&g, x1x4.clone()),
        Err(FlavorError::RowsNotMultipleOf4 { rows: 3, .. })
    ));
    let summary = ModelFlavors::classify(&file_with(&[128, 4], vec![0; 160], false, None), &x1x4).unwrap();
    let d = summary.i2s_layout.unwrap();
    assert!(!d.assumed && d.layout == I2sLayout::X86NoActParallel1x4);
}

#[test]
fn x86_packing_matches_the_spec_bit_layout() {
    // Weight e of a 128-block: byte e % 32, shift 6 − 2·(e / 32).
    let mut c = vec![1u8; 128];
    c[0] = 2; // byte 0, bits 7..6
    c[32] = 0; // byte 0, bits 5..4
    c[97] = 2; // byte 1, bits 1..0
    let b = i2s_pack(&c, I2sLayout::X86Act128, 1, 128, 3.0);
    assert_eq!(b.len(), 32 + 32);
    assert_eq!(b[0], 0b10_00_01_01);
    assert_eq!(b[1], 0b01_01_01_10);
    assert_eq!(&b[32..36], &3.0f32.to_le_bytes());
    // ARM: 64-blocks of 16 bytes; weight 16 is byte 0, bits 5..4.
    let mut c = vec![1u8; 64];
    c[16] = 2;
    let b = i2s_pack(&c, I2sLayout::Arm64, 1, 64, 1.0);
    assert_eq!(b[0], 0b01_10_01_01);
    // 1x4: byte col holds rows 0..3 from the high bits down.
    let mut c = vec![1u8; 4 * 8];
    c[3 * 8 + 5] = 0; // row 3, col 5
    let b = i2s_pack(&c, I2sLayout::X86NoActParallel1x4, 4, 8, 1.0);
    assert_eq!(b[5], 0b01_01_01_00);
}

#[test]
fn every_layout_decodes_what_it_packed_and_repacks_to_x86() {
    let (rows, k) = (8usize, 256usize);
    let want = codes(rows * k, 6);
    let x86 = i2s_pack(&want, I2sLayout::X86Act128, rows, k, 0.25);
    for layout in I2sLayout::ALL {
        let packed = i2s_pack(&want, layout, rows, k, 0.25);
        assert_eq!(packed.len(), i2s_bytes((rows * k) as u64) as usize, "{layout:?}");
        for r in 0..rows {
            for col in 0..k {
                assert_eq!(
                    i2s_code(&packed, layout, k, r, col),
                    want[r * k + col],
                    "{layout:?} ({r}, {col})"
                );
            }
        }
        assert_eq!(i2s_repack_to_x86(&packed, layout, rows, k), x86, "{layout:?}");
    }
    // The layouts really differ (else the override would be meaningless).
    assert_ne!(i2s_pack(&want, I2sLayout::Arm64, rows, k, 0.25), x86);
}

#[test]
fn tq2_0_block_is_lsb_first_within_each_half() {
    let mut raw = [0x55u8; 66]; // every trit 1 → 0
    raw[5] = 0b10_01_00_10; // weights 5 (+1), 37 (−1), 69 (0), 101 (+1)
    raw[32 + 7] = 0b00_00_00_00; // second half: weights 135, 167, 199, 231 all −1
    raw[64..66].copy_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
    let b = BlockTq2_0::from_bytes(&raw);
    assert_eq!(b.d.to_f32(), 0.5);
    let t = b.ternary();
    assert_eq!((t[5], t[37], t[69], t[101]), (1, -1, 0, 1));
    assert_eq!((t[135], t[167], t[199], t[231]), (-1, -1, -1, -1));
    assert_eq!(t.iter().filter(|&&v| v != 0).count(), 3 + 4);
}

/// ggml's TQ1_0 byte for five trits (first most significant): ⌈v·256/243⌉.
fn pack5(trits: &[u8]) -> u8 {
    let v = trits.iter().fold(0u16, |a, &t| a * 3 + u16::from(t));
    (v * 256).div_ceil(243) as u8
}

#[test]
fn tq1_0_block_follows_ggml_trit_order() {
    let want: Vec<u8> = codes(256, 7);
    let mut raw = [0u8; 54];
    for m in 0..32 {
        raw[m] = pack5(&(0..5).map(|n| want[m + 32 * n]).collect::<Vec<_>>());
    }
    for m in 0..16 {
        raw[32 + m] = pack5(&(0..5).map(|n| want[160 + m + 16 * n]).collect::<Vec<_>>());
    }
    for j in 0..4 {
        // Four trits then one zero trit: the "extra ×3 shift" of qh.
        let mut t: Vec<u8> = (0..4).map(|n| want[240 + j + 4 * n]).collect();
        t.push(0);
        raw[48 + j] = pack5(&t);
    }
    raw[52..54].copy_from_slice(&half::f16::from_f32(2.0).to_le_bytes());
    let b = BlockTq1_0::from_bytes(&raw);
    let got = b.ternary();
    for i in 0..256 {
        assert_eq!(got[i], want[i] as i8 - 1, "weight {i}");
    }
    assert_eq!(b.d.to_f32(), 2.0);
}

#[test]
fn layout_json_names_match_the_cli_names() {
    for l in I2sLayout::ALL {
        assert_eq!(serde_json::to_value(l).unwrap(), l.name());
    }
}
