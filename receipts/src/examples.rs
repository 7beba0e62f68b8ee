//! Deterministic example documents, one per type, for tests, docs and `parity report` previews.
//! They are sealed and schema-valid; none of their numbers come from a real run.

use std::collections::BTreeMap;

use crate::bench::{BenchReceipt, BenchRow, ReferenceRow};
use crate::defs::{Generation, Host, KernelIsa, Mode, Model, PositionMetrics, SectionDigests, Tool};
use crate::error::{ReceiptError, Result};
use crate::inference::{InferenceReceipt, Sampling, Timings};
use crate::parity::{GreedyComparison, ModeResult, ParityReceipt, ParityReceiptBuilder, ReferenceIdentity, Thresholds};
use crate::reference::RecordedReference;
use crate::schema::SchemaKind;
use crate::seal::seal;

const T0: &str = "2025-06-01T12:00:00Z";

/// Example tool identity.
pub fn tool() -> Tool {
    Tool {
        name: "parity".into(),
        version: "0.1.0".into(),
        git_commit: "0123456789abcdef0123456789abcdef01234567".into(),
    }
}

/// Example AVX2 host.
pub fn host() -> Host {
    Host {
        cpu_model: "Example CPU <with> \"markup\" & more".into(),
        arch: "x86_64".into(),
        os: "linux".into(),
        isa_features: vec!["avx".into(), "avx2".into(), "fma".into(), "f16c".into()],
        accelerators: None,
        threads: 2,
    }
}

/// Example I2_S model.
pub fn model() -> Model {
    Model {
        path: "fixtures/tiny-b158-gqa.i2_s.gguf".into(),
        sha256: "c3b7d641c9bbc59a84cd0a7434ad06feb84f76be85389aeb0352c2027123dce6".into(),
        architecture: "bitnet-b1.58".into(),
        flavor_summary: BTreeMap::from([("i2_s".into(), 21), ("f16".into(), 1), ("f32".into(), 13)]),
    }
}

/// `n` rows whose metrics drift slightly after position `diverge_at` (none when `diverge_at >= n`).
pub fn positions(n: u64, diverge_at: u64) -> Vec<PositionMetrics> {
    (0..n)
        .map(|i| {
            let d = if i >= diverge_at {
                (i - diverge_at + 1) as f64 * 0.01
            } else {
                0.0
            };
            let top1_ref = ((i * 37) % 1024) as u32;
            let top1_ours = if i >= diverge_at && i % 5 == 4 {
                (top1_ref + 1) % 1024
            } else {
                top1_ref
            };
            PositionMetrics {
                position: i,
                cosine: 1.0 - d * d * 0.01,
                max_abs_diff: d,
                mean_abs_diff: d / 10.0,
                rel_l2: d / 20.0,
                top1_ours,
                top1_reference: top1_ref,
                top1_match: top1_ours == top1_ref,
                top5_overlap: if d == 0.0 { 5 } else { 4 },
                kl_divergence: d * d * 0.001,
            }
        })
        .collect()
}

/// A passing, bit-exact parity receipt against the recorded bitnet.cpp-2025 goldens.
pub fn parity_receipt() -> Result<ParityReceipt> {
    parity_builder(8, 8, Thresholds::bit_exact()).build(None)
}

/// A parity receipt with drift from position 3 held to loose thresholds (passes) — for plots.
pub fn parity_receipt_drifting() -> Result<ParityReceipt> {
    let t = Thresholds {
        min_cosine: 0.99,
        max_abs_diff: 0.5,
        min_top1_match_rate: 0.5,
        max_mean_kld: None,
        require_bit_exact: false,
    };
    parity_builder(32, 3, t).build(None)
}

/// Builder of the example parity receipts (`n` positions per mode, drift from `diverge_at`).
pub fn parity_builder(n: u64, diverge_at: u64, thresholds: Thresholds) -> ParityReceiptBuilder {
    let ours: Vec<f32> = (0..n * 4).map(|i| i as f32 * 0.25).collect();
    let mut reference = ours.clone();
    if diverge_at < n {
        reference[(diverge_at * 4) as usize] += 0.5;
    }
    let modes = [Mode::Batch, Mode::Seq]
        .into_iter()
        .map(|mode| {
            let mut m = ModeResult::new(mode, 2, 1024, positions(n, diverge_at), &ours, &reference);
            m.greedy = Some(GreedyComparison::new(vec![1, 2, 3, 4], vec![1, 2, 3, 4]));
            m
        })
        .collect();
    ParityReceiptBuilder {
        tool: tool(),
        host: host(),
        model: model(),
        tokenizer_sha256: "ab".repeat(32),
        token_ids: (0..n as u32).map(|i| (i * 91) % 1024).collect(),
        reference: ReferenceIdentity::Recorded {
            generation: Generation::BitnetCpp2025,
            numerics_profile: "bitnet.cpp-2025".into(),
            dir: "/work/shared/reference".into(),
            manifest_sha256: "cd".repeat(32),
            case_ids: vec!["tiny-b158-gqa_p8_batch_t2".into(), "tiny-b158-gqa_p8_seq_t2".into()],
        },
        kernels: BTreeMap::from([
            ("i2s.x86.avx2.gemv".into(), 96),
            ("i2s.x86.avx2.gemm".into(), 24),
            ("f16.scalar.vec_dot.gemv".into(), 16),
        ]),
        kernel_isa: BTreeMap::from([
            ("i2s.x86.avx2.gemv".into(), avx2()),
            ("i2s.x86.avx2.gemm".into(), avx2()),
            (
                "f16.scalar.vec_dot.gemv".into(),
                KernelIsa {
                    isa: "scalar".into(),
                    requires: Vec::new(),
                },
            ),
        ]),
        modes,
        thresholds,
        diagnosis: None,
        trace: None,
        created_at: Some(T0.into()),
    }
}

/// A bench receipt with one pp and one tg row and a bitnet.cpp reference row.
pub fn bench_receipt(tg_ts: f64) -> Result<BenchReceipt> {
    let row = |test: &str, n_prompt, n_gen, ts: f64| BenchRow {
        test: test.into(),
        n_prompt,
        n_gen,
        n_threads: 2,
        repetitions: 3,
        model_size: 28_000,
        model_n_params: 2_000_000,
        avg_ns: ((n_prompt + n_gen) as f64 / ts * 1e9) as u64,
        stddev_ns: 1000,
        avg_ts: ts,
        stddev_ts: ts * 0.01,
        samples_ts: vec![ts * 0.99, ts, ts * 1.01],
    };
    let r = BenchReceipt {
        schema_version: crate::schema::BenchV1,
        tool: tool(),
        created_at: T0.into(),
        host: host(),
        model: model(),
        kernels: BTreeMap::from([("i2s.x86.avx2.gemv".into(), 4096)]),
        kernel_isa: BTreeMap::from([("i2s.x86.avx2.gemv".into(), avx2())]),
        rows: vec![row("pp128", 128, 0, 900.0), row("tg128", 0, 128, tg_ts)],
        peak_rss_bytes: 50_000_000,
        reference: vec![ReferenceRow {
            implementation: "bitnet.cpp".into(),
            commit: "404980eecae38affa4871c3e419eae3f44536a95".into(),
            test: "tg128".into(),
            avg_ts: 100.0,
            stddev_ts: 1.0,
            ratio: tg_ts / 100.0,
        }],
        section_digests: SectionDigests::new(),
        digest: String::new(),
        signature: None,
    };
    seal(&r, None)
}

/// An inference receipt.
pub fn inference_receipt() -> Result<InferenceReceipt> {
    let r = InferenceReceipt {
        schema_version: crate::schema::InferenceV1,
        tool: tool(),
        created_at: T0.into(),
        host: host(),
        model: model(),
        tokenizer_sha256: "ab".repeat(32),
        numerics_profile: "bitnet.cpp-2025".into(),
        kernels: BTreeMap::from([("i2s.x86.avx2.gemv".into(), 64)]),
        kernel_isa: BTreeMap::from([("i2s.x86.avx2.gemv".into(), avx2())]),
        prompt_ids: vec![1022, 5, 6],
        generated_ids: vec![7, 8],
        sampling: Sampling {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 42,
        },
        timings: Timings {
            prompt_ms: 1.5,
            gen_ms: 3.0,
            prompt_tps: 2000.0,
            gen_tps: 666.7,
        },
        section_digests: SectionDigests::new(),
        digest: String::new(),
        signature: None,
    };
    seal(&r, None)
}

/// A v1 recorded-reference manifest with one case.
pub fn recorded_reference() -> Result<RecordedReference> {
    serde_json::from_value(serde_json::json!({
        "schema_version": "recorded-reference/v1",
        "reference": {"generation": "bitnet.cpp-2025", "numerics_profile": "bitnet.cpp-2025"},
        "provenance": {"bitnet_cpp": "microsoft/BitNet 404980e", "recorded_at": T0},
        "prompts": {"4": [1, 2, 3, 4]},
        "cases": [{
            "id": "m_p4_batch_t1", "model": "m.gguf", "model_sha256": "ef".repeat(32),
            "prompt_len": 4, "prompt_ids": [1, 2, 3, 4], "mode": "batch", "threads": 1, "n_ctx": 128,
            "logits": "m_p4_batch_t1.logits.npy", "logits_shape": [4, 1024], "logits_sha256": "01".repeat(32),
            "greedy_n": 2, "greedy_ids": [5, 6]
        }]
    }))
    .map_err(|source| ReceiptError::Decode {
        schema: SchemaKind::RecordedReference.id(),
        source,
    })
}

/// What the engine records for an AVX2 kernel.
fn avx2() -> KernelIsa {
    KernelIsa {
        isa: "avx2".into(),
        requires: vec!["avx2".into(), "fma".into(), "f16c".into()],
    }
}
