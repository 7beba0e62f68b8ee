//! `Recorded` against the recorded bitnet.cpp goldens in shared/reference, and against a directory
//! written here (runs everywhere).

use ffi_ref::{npy, Mode, Recorded, RecordedCase, RecordedReference, RefError, ReferenceBackend, ReferenceKind};
use receipts::reference::Provenance;

#[test]
fn every_shared_case_is_found_and_shaped() {
    let Some(dir) = test_support::reference_set("") else {
        return;
    };
    let all = Recorded::open(&dir).unwrap();
    let cases = all.manifest().cases.clone();
    assert!(cases.len() >= 24);
    for c in &cases {
        let mut r = Recorded::open(&dir)
            .unwrap()
            .with_model_sha256(&c.model_sha256)
            .with_threads(c.threads);
        let logits = r.eval_logits(&c.prompt_ids, c.mode).unwrap();
        assert_eq!([logits.n_tokens, logits.n_vocab], [c.prompt_len, 1024], "{}", c.id);
        assert!(logits.data.iter().all(|v| v.is_finite()), "{}", c.id);
        assert_eq!(
            r.greedy(&c.prompt_ids, c.mode, 5).unwrap(),
            c.greedy_ids[..5],
            "{}",
            c.id
        );
        let last = logits.row(c.prompt_len - 1).unwrap();
        assert_eq!(
            ffi_ref::argmax(last),
            Some(c.greedy_ids[0] as usize),
            "{}: greedy starts at argmax",
            c.id
        );
    }
}

#[test]
fn model_file_filter_threads_and_misses() {
    let Some(dir) = test_support::reference_set("") else {
        return;
    };
    let ids = [714, 232, 805, 323, 208, 814, 656, 691];
    let mut any = Recorded::open(&dir).unwrap();
    assert!(
        matches!(any.eval_logits(&ids, Mode::Batch), Err(RefError::Invalid(_))),
        "two models: ambiguous"
    );

    let mut r = Recorded::open(&dir)
        .unwrap()
        .with_model_file(dir.join("tiny-b158-gqa.i2_s.gguf"))
        .unwrap();
    let t1 = r.eval_logits(&ids, Mode::Batch).unwrap();
    let mut r2 = r.clone().with_threads(2);
    assert_eq!(
        r2.eval_logits(&ids, Mode::Batch).unwrap(),
        t1,
        "t1 and t2 goldens are bit-identical"
    );
    assert_ne!(
        r.eval_logits(&ids, Mode::Seq).unwrap(),
        t1,
        "batch and seq differ in bitnet.cpp"
    );
    assert!(matches!(
        r.eval_logits(&ids[..7], Mode::Batch),
        Err(RefError::NoCase(_))
    ));
    assert!(matches!(r.greedy(&ids, Mode::Batch, 33), Err(RefError::NoCase(_))));
    assert!(matches!(
        r.clone().with_threads(3).eval_logits(&ids, Mode::Batch),
        Err(RefError::NoCase(_))
    ));

    let id = r.identity();
    assert_eq!(id.kind, ReferenceKind::Recorded);
    assert!(id.commit.unwrap().contains("404980eecae38affa4871c3e419eae3f44536a95"));
    assert_eq!(id.manifest_sha256.unwrap().len(), 64);
}

#[test]
fn recorded_tokenizer_probes() {
    let Some(dir) = test_support::reference_set("") else {
        return;
    };
    let mut r = Recorded::open(&dir)
        .unwrap()
        .with_model_file(dir.join("tiny-b158-gqa.i2_s.gguf"))
        .unwrap();
    assert_eq!(r.tokenize("Hello world", true, true).unwrap(), [72, 322, 111, 520, 313]);
    assert!(matches!(
        r.tokenize("not a probe text", true, true),
        Err(RefError::NoCase(_))
    ));
    assert!(matches!(
        r.tokenize("Hello world", false, true),
        Err(RefError::NoCase(_))
    ));
}

#[test]
fn trained_upstream_and_tl2_manifests_parse() {
    for sub in ["trained", "upstream", "tl2"] {
        let Some(dir) = test_support::reference_set(sub) else {
            return;
        };
        let r = Recorded::open(&dir).unwrap();
        let c = &r.manifest().cases[0];
        assert_eq!(r.case_logits(c).unwrap().n_tokens, c.prompt_len, "{sub}");
    }
}

fn case(id: &str, ids: Vec<u32>, mode: Mode) -> RecordedCase {
    RecordedCase {
        id: id.into(),
        model: "m.gguf".into(),
        model_sha256: "ab".repeat(32),
        prompt_len: ids.len(),
        logits: format!("{id}.logits.npy"),
        logits_shape: [ids.len(), 4],
        prompt_ids: ids,
        mode,
        threads: 1,
        n_ctx: 16,
        n_batch: Some(16),
        n_ubatch: Some(16),
        greedy_n: 2,
        greedy_ids: vec![3, 1],
        logits_sha256: None,
        recorded_as: None,
        reference_broken: None,
    }
}

fn manifest(cases: Vec<RecordedCase>) -> RecordedReference {
    RecordedReference {
        schema_version: None,
        reference: None,
        description: None,
        provenance: Provenance::Text("written by a test".into()),
        prompts: cases
            .iter()
            .map(|c| (c.prompt_len.to_string(), c.prompt_ids.clone()))
            .collect(),
        cases,
    }
}

#[test]
fn a_directory_written_here_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let c = case("c1", vec![1, 2], Mode::Seq);
    let data: Vec<f32> = (0..8).map(|i| i as f32 - 3.5).collect();
    npy::write_f32(dir.path().join(&c.logits), &c.logits_shape, &data).unwrap();
    let m = manifest(vec![c]);
    std::fs::write(dir.path().join("manifest.json"), m.to_json().unwrap()).unwrap();

    let mut r = Recorded::open(dir.path()).unwrap();
    assert_eq!(r.manifest(), &m);
    let l = r.eval_logits(&[1, 2], Mode::Seq).unwrap();
    assert_eq!(l.data, data);
    assert_eq!(r.greedy(&[1, 2], Mode::Seq, 2).unwrap(), [3, 1]);
    assert!(matches!(r.eval_logits(&[1, 2], Mode::Batch), Err(RefError::NoCase(_))));
}

#[test]
fn inconsistent_or_escaping_manifests_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = case("c1", vec![1, 2], Mode::Batch);
    bad.prompt_len = 3;
    let mut escape = case("c2", vec![1], Mode::Batch);
    escape.logits = "../x.npy".into();
    for c in [bad, escape] {
        let m = manifest(vec![c]);
        assert!(m.to_json().is_err(), "an inconsistent manifest is never written");
        std::fs::write(dir.path().join("manifest.json"), serde_json::to_string(&m).unwrap()).unwrap();
        assert!(matches!(Recorded::open(dir.path()), Err(RefError::Recorded { .. })));
    }
    std::fs::write(dir.path().join("manifest.json"), "{").unwrap();
    assert!(matches!(Recorded::open(dir.path()), Err(RefError::Recorded { .. })));
}

#[test]
fn shape_mismatch_between_npy_and_manifest_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let c = case("c1", vec![1, 2], Mode::Batch);
    npy::write_f32(dir.path().join(&c.logits), &[2, 3], &[0.0; 6]).unwrap();
    let m = manifest(vec![c]);
    std::fs::write(dir.path().join("manifest.json"), m.to_json().unwrap()).unwrap();
    let mut r = Recorded::open(dir.path()).unwrap();
    assert!(matches!(
        r.eval_logits(&[1, 2], Mode::Batch),
        Err(RefError::Recorded { .. })
    ));
}

/// The committed `fixtures/reference/*` sets (recorded-reference/v1) parse, keep their v1 fields, and their
/// hashed logits are readable.
#[test]
fn committed_fixture_sets_parse_with_their_v1_fields() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/reference");
    for (set, generation) in [
        ("random", "bitnet.cpp-2025"),
        ("trained", "bitnet.cpp-2025"),
        ("upstream", "llama.cpp"),
    ] {
        let r = Recorded::open(root.join(set)).unwrap();
        let m = r.manifest();
        assert!(m.schema_version.is_some(), "{set}: recorded-reference/v1");
        assert_eq!(
            m.reference.as_ref().map(|g| g.generation.as_str()),
            Some(generation),
            "{set}"
        );
        let c = &m.cases[0];
        assert!(c.logits_sha256.is_some() && c.recorded_as.is_some(), "{set}");
        assert_eq!(r.case_logits(c).unwrap().n_tokens, c.prompt_len, "{set}");
        // Rewriting (as `parity record` does when extending a directory) loses no field.
        let original: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.join(set).join("manifest.json")).unwrap()).unwrap();
        let rewritten: serde_json::Value = serde_json::from_str(&m.to_json().unwrap()).unwrap();
        assert_eq!(rewritten, original, "{set}");
    }
}
