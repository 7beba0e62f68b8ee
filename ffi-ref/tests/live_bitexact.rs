//! Live bitnet.cpp (feature `ffi`, BITNET_CPP_DIR at build time): the worker must reproduce every recorded
//! golden in shared/reference bit for bit, and a killed worker must surface as a typed error.

use std::path::PathBuf;
use std::process::Command;

use ffi_ref::{Ffi, FfiOptions, Mode, Recorded, RefError, ReferenceBackend, ReferenceKind};

fn worker() -> Option<PathBuf> {
    // Cargo may name the bin even when its required feature is off, so the feature decides.
    match option_env!("CARGO_BIN_EXE_parity-ref-worker").filter(|_| ffi_ref::FFI_COMPILED) {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!(
                "SKIP: no live bitnet.cpp: build bitnet.cpp, set BITNET_CPP_DIR to it and run with --features ffi"
            );
            None
        }
    }
}

/// Every case of a manifest: logits bit-identical, greedy ids equal. Returns (exact, total).
fn check_dir(sub: &str) -> Option<(usize, usize)> {
    let worker = worker()?;
    let dir = test_support::reference_set(sub)?;
    let rec = Recorded::open(&dir).unwrap();
    let (mut exact, mut total, mut failures) = (0, 0, Vec::new());
    let mut cases = rec.manifest().cases.clone();
    cases.sort_by(|a, b| (&a.model, a.threads, a.n_ctx).cmp(&(&b.model, b.threads, b.n_ctx)));
    let mut live: Option<(String, u32, u32, Ffi)> = None;
    for c in &cases {
        if live
            .as_ref()
            .is_none_or(|(m, t, n, _)| (m, *t, *n) != (&c.model, c.threads, c.n_ctx))
        {
            let opts = FfiOptions {
                worker: Some(worker.clone()),
                ..FfiOptions::new(dir.join(&c.model), c.n_ctx, c.threads)
            };
            live = Some((c.model.clone(), c.threads, c.n_ctx, Ffi::spawn(&opts).unwrap()));
        }
        let Some((_, _, _, ffi)) = live.as_mut() else {
            unreachable!()
        };
        let want = rec.case_logits(c).unwrap();
        let got = ffi.eval_logits(&c.prompt_ids, c.mode).unwrap();
        let same_bits = got.n_vocab == want.n_vocab
            && got.data.len() == want.data.len()
            && got.data.iter().zip(&want.data).all(|(a, b)| a.to_bits() == b.to_bits());
        let greedy = ffi.greedy(&c.prompt_ids, c.mode, c.greedy_n).unwrap();
        total += 1;
        if same_bits && greedy == c.greedy_ids {
            exact += 1;
        } else {
            let max = got
                .data
                .iter()
                .zip(&want.data)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            failures.push(format!(
                "{}: bits {same_bits} (max |d| {max:e}), greedy {}",
                c.id,
                greedy == c.greedy_ids
            ));
        }
    }
    eprintln!("{sub:?}: {exact}/{total} cases bit-exact");
    assert!(
        failures.is_empty(),
        "{} of {total} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Some((exact, total))
}

#[test]
fn worker_reproduces_every_bitnet_cpp_golden() {
    check_dir("");
}

#[test]
fn worker_reproduces_the_trained_model_goldens() {
    check_dir("trained");
}

/// Arch `llama` and Q8_0 tensors (Falcon3-, Llama3-8B- and bitnet-3B-like stand-ins) through the live worker.
#[test]
fn worker_reproduces_the_model_family_goldens() {
    check_dir("families");
}

/// A live worker on the shared GQA model (context 128, one thread) and the reference folder, or `None`
/// (after a SKIP line) without a worker or the folder.
fn spawn_gqa() -> Option<(Ffi, PathBuf)> {
    let (Some(worker), Some(dir)) = (worker(), test_support::reference_set("")) else {
        return None;
    };
    let opts = FfiOptions {
        worker: Some(worker),
        ..FfiOptions::new(dir.join("tiny-b158-gqa.i2_s.gguf"), 128, 1)
    };
    Some((Ffi::spawn(&opts).unwrap(), dir))
}

#[test]
fn worker_identity_tokenizer_and_detokenizer() {
    let Some((mut ffi, dir)) = spawn_gqa() else {
        return;
    };
    let id = ffi.identity();
    assert_eq!(id.kind, ReferenceKind::Ffi);
    assert!(id.generation.unwrap().contains("load="));
    assert!(ffi.system_info().system_info.contains("AVX"));
    let mut rec = Recorded::open(&dir)
        .unwrap()
        .with_model_file(dir.join("tiny-b158-gqa.i2_s.gguf"))
        .unwrap();
    let probes: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("tokenizer.json")).unwrap()).unwrap();
    let texts: Vec<&str> = probes["cases"]["with_pre_gpt2"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect();
    assert!(texts.len() >= 30);
    for t in texts {
        assert_eq!(
            ffi.tokenize(t, true, true).unwrap(),
            rec.tokenize(t, true, true).unwrap(),
            "{t:?}"
        );
    }
    let ids = ffi.tokenize("Hello world", false, false).unwrap();
    assert_eq!(ffi.detokenize(&ids).unwrap(), "Hello world");
}

#[test]
fn a_killed_live_worker_is_a_typed_error() {
    let Some((mut ffi, _)) = spawn_gqa() else {
        return;
    };
    assert!(ffi.eval_logits(&[1, 2, 3], Mode::Batch).is_ok());
    let status = Command::new("kill")
        .args(["-KILL", &ffi.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let err = ffi.eval_logits(&[1, 2, 3], Mode::Batch).unwrap_err();
    assert!(matches!(err, RefError::WorkerDied { signal: Some(9), .. }), "{err:?}");
    eprintln!("killed worker -> {err}");
}

#[test]
fn a_bad_model_is_a_worker_error_not_a_crash() {
    let Some(worker) = worker() else { return };
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"GGUF\x03\x00\x00\x00garbage").unwrap();
    let opts = FfiOptions {
        worker: Some(worker),
        ..FfiOptions::new(&junk, 128, 1)
    };
    match Ffi::spawn(&opts) {
        Err(e @ RefError::LoadFailed { .. }) => {
            let text = e.to_string();
            assert!(text.contains("could not load"), "{text}");
            assert!(
                text.contains("bitnet.cpp's log"),
                "bitnet.cpp's own reason is shown: {text}"
            );
        }
        Err(e @ RefError::WorkerDied { .. }) => {
            eprintln!("bitnet.cpp died on a junk model (isolated): {e}")
        }
        other => panic!("expected a typed error, got {other:?}"),
    }
}
