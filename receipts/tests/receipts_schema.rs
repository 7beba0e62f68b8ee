//! Structs and schemas agree: every example validates and round-trips; every mutated document is
//! rejected by both the schema and the typed deserializer; the bundled goldens' manifests validate.

use receipts::examples;
use receipts::schema::{validate, SchemaKind};
use receipts::{BenchReceipt, InferenceReceipt, ParityReceipt, RecordedReference};
use serde_json::{json, Value};

fn docs() -> Vec<(SchemaKind, Value)> {
    let v = |x: &dyn erased::Ser| x.value();
    vec![
        (
            SchemaKind::ParityReceipt,
            v(&examples::parity_receipt().expect("example")),
        ),
        (
            SchemaKind::ParityReceipt,
            v(&examples::parity_receipt_drifting().expect("example")),
        ),
        (
            SchemaKind::BenchReceipt,
            v(&examples::bench_receipt(120.0).expect("example")),
        ),
        (
            SchemaKind::InferenceReceipt,
            v(&examples::inference_receipt().expect("example")),
        ),
        (
            SchemaKind::RecordedReference,
            v(&examples::recorded_reference().expect("example")),
        ),
    ]
}

mod erased {
    pub trait Ser {
        fn value(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn value(&self) -> serde_json::Value {
            serde_json::to_value(self).expect("serialisable")
        }
    }
}

/// Typed decoding of `doc` as `kind`; `Ok` when the struct accepts it.
fn typed(kind: SchemaKind, doc: &Value) -> Result<Value, String> {
    fn rt<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> Result<Value, String> {
        let t: T = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
        Ok(serde_json::to_value(t).expect("serialisable"))
    }
    match kind {
        SchemaKind::ParityReceipt => rt::<ParityReceipt>(doc),
        SchemaKind::BenchReceipt => rt::<BenchReceipt>(doc),
        SchemaKind::InferenceReceipt => rt::<InferenceReceipt>(doc),
        SchemaKind::RecordedReference => rt::<RecordedReference>(doc),
    }
}

#[test]
fn every_example_validates_and_round_trips_through_its_struct() {
    for (kind, doc) in docs() {
        validate(kind, &doc).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(typed(kind, &doc).expect("typed decode"), doc, "{kind:?} round trip");
        if kind != SchemaKind::RecordedReference {
            assert_eq!(doc["schema_version"], kind.version());
        }
    }
}

#[test]
fn bundled_golden_manifests_validate_unchanged() {
    for (name, text) in [
        ("bitnet.cpp-2025", include_str!("data/bitnet-cpp-2025.manifest.json")),
        ("upstream", include_str!("data/upstream.manifest.json")),
    ] {
        let (m, sha) = RecordedReference::from_json(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sha.len(), 64);
        assert!(!m.cases.is_empty());
        assert_eq!(m.identity().generation, receipts::Generation::BitnetCpp2025);
        // Typed round trip loses nothing.
        let original: Value = serde_json::from_str(text).expect("json");
        assert_eq!(serde_json::to_value(&m).expect("ser"), original, "{name}");
    }
}

type Edit = fn(&mut Value);
type Mutation = (&'static str, SchemaKind, Edit);

fn obj(v: &mut Value) -> &mut serde_json::Map<String, Value> {
    v.as_object_mut().expect("object")
}

/// Each mutation makes the document invalid; both validators must say so.
const MUTATIONS: &[Mutation] = &[
    ("unknown top-level field", SchemaKind::ParityReceipt, |d| {
        obj(d).insert("extra".into(), json!(1));
    }),
    ("missing digest", SchemaKind::ParityReceipt, |d| {
        obj(d).remove("digest");
    }),
    ("missing tool", SchemaKind::ParityReceipt, |d| {
        obj(d).remove("tool");
    }),
    ("wrong schema_version", SchemaKind::ParityReceipt, |d| {
        d["schema_version"] = json!("parity-receipt/v2")
    }),
    ("unknown host field", SchemaKind::ParityReceipt, |d| {
        d["host"]["gpu"] = json!("x")
    }),
    ("threads as string", SchemaKind::ParityReceipt, |d| {
        d["host"]["threads"] = json!("2")
    }),
    ("negative token id", SchemaKind::ParityReceipt, |d| {
        d["token_ids"][0] = json!(-1)
    }),
    ("token id beyond u32", SchemaKind::ParityReceipt, |d| {
        d["token_ids"][0] = json!(4_294_967_296u64)
    }),
    ("unknown generation", SchemaKind::ParityReceipt, |d| {
        d["reference"]["generation"] = json!("bitnet.cpp-2024")
    }),
    ("unknown reference kind", SchemaKind::ParityReceipt, |d| {
        d["reference"]["kind"] = json!("live")
    }),
    ("recorded reference with ffi field", SchemaKind::ParityReceipt, |d| {
        d["reference"]["llama_cpp_commit"] = json!("abcdef0")
    }),
    ("recorded reference without dir", SchemaKind::ParityReceipt, |d| {
        obj(&mut d["reference"]).remove("dir");
    }),
    ("mode name", SchemaKind::ParityReceipt, |d| {
        d["modes"][0]["mode"] = json!("parallel")
    }),
    (
        "missing first_diff_position (nullable, required)",
        SchemaKind::ParityReceipt,
        |d| {
            obj(&mut d["summary"]).remove("first_diff_position");
        },
    ),
    ("missing greedy.first_divergence", SchemaKind::ParityReceipt, |d| {
        obj(&mut d["modes"][0]["greedy"]).remove("first_divergence");
    }),
    ("cosine as string", SchemaKind::ParityReceipt, |d| {
        d["modes"][0]["positions"][0]["cosine"] = json!("1.0")
    }),
    ("top1_match as number", SchemaKind::ParityReceipt, |d| {
        d["modes"][0]["positions"][0]["top1_match"] = json!(1)
    }),
    ("top5_overlap above u8", SchemaKind::ParityReceipt, |d| {
        d["modes"][0]["positions"][0]["top5_overlap"] = json!(300)
    }),
    ("kernel count negative", SchemaKind::ParityReceipt, |d| {
        d["kernels"]["gemv.i2s_x86_128.avx2"] = json!(-1)
    }),
    ("pass as string", SchemaKind::ParityReceipt, |d| {
        d["pass"] = json!("true")
    }),
    ("gate without reason", SchemaKind::ParityReceipt, |d| {
        obj(&mut d["gates"][0]).remove("reason");
    }),
    ("thresholds unknown field", SchemaKind::ParityReceipt, |d| {
        d["thresholds"]["min_kld"] = json!(0.1)
    }),
    ("signature with extra field", SchemaKind::ParityReceipt, |d| {
        d["signature"] =
            json!({"algorithm": "ed25519", "public_key": "00".repeat(32), "signature": "00".repeat(64), "x": 1})
    }),
    ("signature missing public key", SchemaKind::ParityReceipt, |d| {
        d["signature"] = json!({"algorithm": "ed25519", "signature": "00".repeat(64)})
    }),
    ("trace values not an array", SchemaKind::ParityReceipt, |d| {
        d["trace"] = json!({"metric": "m", "layers": [], "tensors": [], "values": 3})
    }),
    ("diagnosis without verdict", SchemaKind::ParityReceipt, |d| {
        d["diagnosis"] = json!({"best_profile": "x"})
    }),
    ("bench row unknown field", SchemaKind::BenchReceipt, |d| {
        d["rows"][0]["n_batch"] = json!(512)
    }),
    ("bench row missing avg_ts", SchemaKind::BenchReceipt, |d| {
        obj(&mut d["rows"][0]).remove("avg_ts");
    }),
    ("bench peak rss negative", SchemaKind::BenchReceipt, |d| {
        d["peak_rss_bytes"] = json!(-5)
    }),
    ("bench reference row missing ratio", SchemaKind::BenchReceipt, |d| {
        obj(&mut d["reference"][0]).remove("ratio");
    }),
    ("inference sampling unknown field", SchemaKind::InferenceReceipt, |d| {
        d["sampling"]["min_p"] = json!(0.1)
    }),
    ("inference missing timings", SchemaKind::InferenceReceipt, |d| {
        obj(d).remove("timings");
    }),
    ("inference seed negative", SchemaKind::InferenceReceipt, |d| {
        d["sampling"]["seed"] = json!(-1)
    }),
    ("manifest case unknown field", SchemaKind::RecordedReference, |d| {
        d["cases"][0]["temperature"] = json!(0)
    }),
    ("manifest case missing logits", SchemaKind::RecordedReference, |d| {
        obj(&mut d["cases"][0]).remove("logits");
    }),
    ("manifest mode", SchemaKind::RecordedReference, |d| {
        d["cases"][0]["mode"] = json!("both")
    }),
    ("manifest unknown generation", SchemaKind::RecordedReference, |d| {
        d["reference"]["generation"] = json!("ggml")
    }),
    ("manifest provenance number", SchemaKind::RecordedReference, |d| {
        d["provenance"] = json!(5)
    }),
    (
        "manifest provenance extra key not a string",
        SchemaKind::RecordedReference,
        |d| d["provenance"]["builder"] = json!({"name": "me"}),
    ),
    (
        "manifest provenance extra key a number",
        SchemaKind::RecordedReference,
        |d| d["provenance"]["threads"] = json!(2),
    ),
    ("manifest provenance host as text", SchemaKind::RecordedReference, |d| {
        d["provenance"]["host"] = json!("epyc")
    }),
    (
        "manifest description not a string",
        SchemaKind::RecordedReference,
        |d| d["description"] = json!(["random", "models"]),
    ),
    (
        "manifest case recorded_as not a string",
        SchemaKind::RecordedReference,
        |d| d["cases"][0]["recorded_as"] = json!(1),
    ),
    ("manifest unknown top-level field", SchemaKind::RecordedReference, |d| {
        d["source"] = json!("shared/reference/manifest.json")
    }),
    (
        "manifest case per-case generation",
        SchemaKind::RecordedReference,
        |d| d["cases"][0]["generation"] = json!("bitnet.cpp-2025"),
    ),
    ("manifest prompt ids as string", SchemaKind::RecordedReference, |d| {
        d["prompts"]["4"] = json!("1,2,3")
    }),
];

#[test]
fn mutated_documents_are_rejected_by_schema_and_struct_alike() {
    let all = docs();
    let mut failures = Vec::new();
    for (name, kind, mutate) in MUTATIONS {
        let (_, base) = all.iter().find(|(k, _)| k == kind).expect("an example of every kind");
        let mut doc = base.clone();
        mutate(&mut doc);
        let schema_rejects = validate(*kind, &doc).is_err();
        let struct_rejects = typed(*kind, &doc).is_err();
        if !(schema_rejects && struct_rejects) {
            failures.push(format!(
                "{name}: schema rejects={schema_rejects}, struct rejects={struct_rejects}"
            ));
        }
    }
    assert!(failures.is_empty(), "disagreements:\n{}", failures.join("\n"));
}

/// Schema-valid optional additions are accepted by both.
#[test]
fn optional_fields_are_accepted_by_both() {
    let all = docs();
    let base = &all[0].1;
    let additions: [(&str, Edit); 4] = [
        (
            "diagnosis",
            |d| d["diagnosis"] = json!({"verdict": "matches bitnet.cpp-2025", "best_profile": "bitnet.cpp-2025"}),
        ),
        (
            "trace",
            |d| {
                d["trace"] =
                    json!({"metric": "max_abs_diff", "layers": ["0"], "tensors": ["attn_q"], "values": [[0.5, null]]})
            },
        ),
        ("accelerators", |d| {
            d["host"]["accelerators"] = json!(["cuda:NVIDIA H100"])
        }),
        (
            "ffi reference",
            |d| d["reference"] = json!({"kind": "ffi", "generation": "llama.cpp", "numerics_profile": "llama.cpp", "llama_cpp_commit": "0c1e57098"}),
        ),
    ];
    for (name, add) in additions {
        let mut doc = base.clone();
        add(&mut doc);
        validate(SchemaKind::ParityReceipt, &doc).unwrap_or_else(|e| panic!("{name}: {e}"));
        typed(SchemaKind::ParityReceipt, &doc).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// The recorded-reference additions (description, recorded_as, free-text provenance strings) are
/// accepted by both and survive the typed round trip.
#[test]
fn recorded_reference_optional_fields_are_accepted_by_both() {
    let base = docs()
        .into_iter()
        .find(|(k, _)| *k == SchemaKind::RecordedReference)
        .expect("example")
        .1;
    let additions: [(&str, Edit); 4] = [
        ("description", |d| d["description"] = json!("random seeded models")),
        ("recorded_as", |d| {
            d["cases"][0]["recorded_as"] = json!("m_p4_batch_t1.logits.npy")
        }),
        ("provenance note/readme/source", |d| {
            d["provenance"]["note"] = json!("see README.md");
            d["provenance"]["readme"] = json!("# A model\n");
            d["provenance"]["source"] = json!("shared/reference/manifest.json");
        }),
        ("provenance as text", |d| d["provenance"] = json!("see README.md")),
    ];
    for (name, add) in additions {
        let mut doc = base.clone();
        add(&mut doc);
        validate(SchemaKind::RecordedReference, &doc).unwrap_or_else(|e| panic!("{name}: {e}"));
        let back = typed(SchemaKind::RecordedReference, &doc).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back, doc, "{name}: typed round trip");
    }
}
