//! Known answer from a real reference weight: `blk.0.attn_q.weight` of tiny-b158-gqa, decoded here straight from
//! the spec's layout formula (§3.3) and multiplied in i64, must equal every kernel family's I2_S matmul bit for bit.

use engine::gguf::{GgmlType, GgufFile};
use engine::kernels::{scalar, Dispatcher, Family, I2sEpilogue, I2sMatrix, KernelChoice};

mod common;
use common::reference;

/// Spec §3.3: element `e = row·K + col` lives in byte `(e/128)·32 + e%32`, bits `6 − 2·((e%128)/32)`.
fn code(bytes: &[u8], e: usize) -> i64 {
    let (b, j) = (e / 128, e % 128);
    ((bytes[b * 32 + j % 32] >> (6 - 2 * (j / 32))) & 3) as i64
}

#[test]
fn attn_q_of_tiny_b158_matches_an_independent_decode() {
    let Some(path) = reference("tiny-b158-gqa.i2_s.gguf") else {
        return;
    };
    let g = GgufFile::open(path).unwrap();
    let t = g.tensor("blk.0.attn_q.weight").expect("tensor present").clone();
    assert_eq!(t.ggml_type, GgmlType::I2_S);
    let (k, rows) = (t.row_len() as usize, t.n_rows() as usize);
    let data = g.tensor_data(&t).unwrap();
    let n = rows * k;
    let scale = f32::from_le_bytes(data[n / 4..n / 4 + 4].try_into().unwrap());
    let codes = &data[..n / 4];

    // A fixed activation, quantized as spec §5.1 says (f64 amax, f32 scale, f32 product, ties to even).
    let x: Vec<f32> = (0..k)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 29.0 + (i % 7) as f32 * 0.01)
        .collect();
    let amax = x.iter().fold(1e-5f64, |m, &v| m.max((v as f64).abs()));
    let s = (127.0 / amax) as f32;
    let q: Vec<i64> = x
        .iter()
        .map(|&v| (v * s).round_ties_even().clamp(-128.0, 127.0) as i64)
        .collect();
    let act_sum: i64 = q.iter().sum();
    let q8: Vec<i8> = q.iter().map(|&v| v as i8).collect();
    assert!(
        scalar::i2s_lane_bound(&q8) < 32768,
        "this activation must not reach the int16-wrap path"
    );

    let expected: Vec<f32> = (0..rows)
        .map(|r| {
            let sumi: i64 = (0..k).map(|c| code(codes, r * k + c) * q[c]).sum();
            ((sumi as f32 - act_sum as f32) / s) * scale
        })
        .collect();
    // The decode means what the spec says: Σ (code − 1)·x·scale, within the int8 rounding bound
    // (½ step of amax/127 per element).
    let bound = 0.5 * k as f64 * amax / 127.0 * scale.abs() as f64 * 1.001;
    for (r, &e) in expected.iter().enumerate().step_by(7) {
        let real: f64 = (0..k)
            .map(|c| (code(codes, r * k + c) - 1) as f64 * x[c] as f64)
            .sum::<f64>()
            * scale as f64;
        assert!(
            (real - e as f64).abs() <= bound,
            "row {r}: real {real} vs {e} (bound {bound})"
        );
    }

    let w = I2sMatrix { codes, scale, rows, k };
    let mut checked = 0;
    for family in [Family::Scalar, Family::Avx2, Family::Avx512] {
        let Ok(d) = Dispatcher::new(KernelChoice::Force(family)) else {
            eprintln!("SKIP: kernel family {} not available on this CPU", family.name());
            continue;
        };
        let mut y = vec![0f32; rows];
        d.i2s_matmul(&w, &x, 1, I2sEpilogue::Divide, &mut y);
        for r in 0..rows {
            assert_eq!(y[r].to_bits(), expected[r].to_bits(), "{}: row {r}", family.name());
        }
        checked += 1;
    }
    assert!(checked >= 1);
}
