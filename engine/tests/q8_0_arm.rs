//! A Q8_0 LM head under the ARM profiles, end to end on the families' Q8_0 models (Falcon3-like `output.weight`,
//! bitnet-3B-like tied `token_embd`): every traced `result_output` is the product of the traced `result_norm`
//! in the ARM build's Q8_0 order (not the x86 one, which gives other logits), through the dispatcher, with
//! the order's kernel IDs recorded.

use std::collections::BTreeSet;

use engine::kernels::{Dispatcher, KernelChoice, Q8Matrix, SimdOrder};
use engine::model::trace::{trace_prompt, LayerFilter, TracedTensor};
use engine::model::{Model, Numerics, Profile};

mod common;

/// The families' prompt "8" (`numpy.random.default_rng(8).integers(1, 1024, 8)`).
const P8: [u32; 8] = [737, 335, 240, 1010, 181, 327, 658, 807];

fn rows_of<'a>(t: &'a [TracedTensor], name: &str) -> Vec<&'a TracedTensor> {
    t.iter().filter(|x| x.key.name == name).collect()
}

/// Max |Δ| of the x86-order head against the traced one over one model × profile, both modes; asserts the
/// traced head is exactly the profile's order.
fn check(m: &Model, profile: Profile) -> f32 {
    let disp = Dispatcher::new(KernelChoice::Auto).unwrap();
    let order = profile.simd_order();
    let head = m.weights.lm_head();
    assert_eq!(head.type_name(), "q8_0", "{}", head.name);
    let w = Q8Matrix {
        data: head.data(&m.file),
        rows: head.rows,
        k: head.k,
    };
    let mut worst = 0f32;
    for batch in [true, false] {
        let numerics = Numerics::profile(profile, "test");
        let t = trace_prompt(m, &disp, numerics, &P8, batch, 64, LayerFilter::Only(BTreeSet::new())).unwrap();
        let (norms, outs) = (rows_of(&t.tensors, "result_norm"), rows_of(&t.tensors, "result_output"));
        assert!(!norms.is_empty() && norms.len() == outs.len());
        for (x, out) in norms.iter().zip(&outs) {
            let n = x.rows;
            let (mut arm, mut x86) = (vec![0f32; n * w.rows], vec![0f32; n * w.rows]);
            disp.q8_0_matmul_in(order, &w, &x.data, n, &mut arm);
            disp.q8_0_matmul_in(SimdOrder::Avx512, &w, &x.data, n, &mut x86);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&arm), bits(&out.data), "{profile:?} batch={batch} n={n}");
            worst = x86.iter().zip(&arm).map(|(a, b)| (a - b).abs()).fold(worst, f32::max);
        }
    }
    let recorded: Vec<String> = disp.kernels().keys().map(|k| k.to_string()).collect();
    let set = disp.table().q8_set(order);
    for id in [set.quantize.id, set.gemv.id, set.gemm.id] {
        assert!(recorded.contains(&id.to_string()), "{id} not recorded: {recorded:?}");
    }
    worst
}

#[test]
fn arm_profiles_compute_a_q8_0_head_in_their_build_order() {
    let mut worst = 0f32;
    for rel in ["families/tiny-falcon3.i2_s.gguf", "families/tiny-bitnet3b.i2_s.gguf"] {
        let Some(p) = common::committed_or_shared(rel) else {
            return;
        };
        let m = Model::open(p).unwrap();
        for profile in [Profile::BitnetCpp2025Arm, Profile::BitnetCpp2025ArmFp16] {
            let d = check(&m, profile);
            eprintln!("{rel} {}: max |Δlogit| x86 vs ARM Q8_0 order {d:e}", profile.name());
            worst = worst.max(d);
        }
    }
    assert!(
        worst > 0.0,
        "the ARM Q8_0 orders must change some logit on these models"
    );
}
