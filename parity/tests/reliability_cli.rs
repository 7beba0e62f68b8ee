//! Hostile conditions through the built binary: a reference worker that stops reading, hangs or outlives
//! us; arguments out of range; semantically broken models; outputs that cannot be written. Every case ends
//! with exit 2 and a message that names what happened, never a panic, abort, hang or silent death.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::parity;
use engine::gguf::{GgufFile, GgufWriter, Value};
use ffi_ref::protocol::{write_frame, Response, SystemInfo};

fn trained() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/reference/trained/tiny-trained-b158.i2_s.gguf")
}

fn frame(h: &Response) -> Vec<u8> {
    let mut b = Vec::new();
    write_frame(&mut b, h, &[]).unwrap();
    b
}

/// A stand-in `parity-ref-worker`: answers system_info and load (reading each request frame by its
/// length prefix), records its pid in `pid`, then runs `tail`.
fn stand_in(dir: &Path, tail: &str) -> PathBuf {
    let info = Response::SystemInfo(SystemInfo {
        system_info: "FAKE = 1".into(),
        dir: "/fake".into(),
        commit: "0".repeat(40),
        llama_commit: "unknown".into(),
        api: "load=old,context=old,free=old,vocab=old,memory=kv_cache".into(),
        build_flags: String::new(),
    });
    fs::write(dir.join("info.bin"), frame(&info)).unwrap();
    fs::write(
        dir.join("loaded.bin"),
        frame(&Response::Loaded {
            n_vocab: 1024,
            n_ctx: 4096,
        }),
    )
    .unwrap();
    let d = dir.display();
    let script = format!(
        "#!/bin/sh\nulimit -c 0\necho $$ > '{d}/pid'\n\
         skip() {{ set -- $(head -c 12 | od -An -tu4); head -c $(($1 + $2)) >/dev/null; }}\n\
         skip; cat '{d}/info.bin'\nskip; cat '{d}/loaded.bin'\n{tail}\n"
    );
    let path = dir.join("stand-in-worker.sh");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `parity run` of three tokens of the trained model against `--reference ffi`, served by `worker`.
fn run_ffi(worker: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_parity"));
    cmd.args([
        "run",
        trained().to_str().unwrap(),
        "--reference",
        "ffi",
        "--tokens",
        "1,2,3",
    ])
    .env("PARITY_REF_WORKER", worker);
    cmd
}

fn run_with_worker(worker: &Path, extra: &[&str]) -> (i32, String, Duration) {
    let start = Instant::now();
    let out = run_ffi(worker).args(extra).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into(),
        start.elapsed(),
    )
}

/// A stand-in worker running `script` makes `parity run --timeout timeout` exit 2 (not SIGPIPE, 141/-1)
/// within `within_s`, naming the worker and `why` on stderr.
fn assert_worker_fails(script: &str, timeout: &str, why: &str, within_s: u64) {
    let dir = tempfile::tempdir().unwrap();
    let w = stand_in(dir.path(), script);
    let (code, err, took) = run_with_worker(&w, &["--timeout", timeout]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&w.display().to_string()) && err.contains(why), "{err}");
    assert!(took < Duration::from_secs(within_s), "took {took:?}");
}

#[test]
fn a_worker_that_closes_its_stdin_is_exit_2_naming_it() {
    assert_worker_fails("exec 0<&-\nexec sleep 60", "30", "closed its input", 20);
}

#[test]
fn a_worker_that_never_answers_times_out_with_exit_2() {
    assert_worker_fails("exec sleep 60", "1", "timed out", 15);
}

#[test]
fn the_worker_dies_with_parity() {
    let dir = tempfile::tempdir().unwrap();
    let w = stand_in(dir.path(), "exec sleep 60");
    let mut child = run_ffi(&w).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let pid_file = dir.path().join("pid");
    let start = Instant::now();
    while !pid_file.is_file() || fs::read_to_string(&pid_file).unwrap().trim().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "the worker never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = fs::read_to_string(&pid_file).unwrap().trim().to_string();
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.split_whitespace().nth(2) == Some("Z") {
            break; // a zombie: dead, waiting for its reaper
        }
        assert!(start.elapsed() < Duration::from_secs(5), "worker {pid} outlived parity");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn thread_counts_are_bounded_before_any_work() {
    let m = trained();
    for bad in ["0", "100000000"] {
        let start = Instant::now();
        let (code, _, err) = parity(&[
            "logits",
            m.to_str().unwrap(),
            "--tokens",
            "1,2",
            "--threads",
            bad,
            "--out",
            "/dev/null",
        ]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("between 1 and 512"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }
    let (code, _, err) = parity(&["run", "--threads", "0"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_context_too_small_or_too_large_is_a_typed_error() {
    let m = trained();
    let m = m.to_str().unwrap();
    let (code, _, err) = parity(&["logits", m, "--tokens", "1,2,3", "--ctx", "2", "--out", "/dev/null"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--ctx 2 is too small") && err.contains("3 tokens"),
        "{err}"
    );
    let (code, _, err) = parity(&["generate", m, "--prompt", "def f", "--ctx", "1", "-n", "2"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("too small"), "{err}");
    let (code, _, err) = parity(&[
        "logits",
        m,
        "--tokens",
        "1,2,3",
        "--ctx",
        "100000000",
        "--out",
        "/dev/null",
    ]);
    assert_eq!(code, 2, "no abort (134): {err}");
    assert!(err.contains("not enough memory") && err.contains("KV cache"), "{err}");
}

#[test]
fn sampling_parameters_are_checked_and_negative_temp_is_greedy() {
    let m = trained();
    let m = m.to_str().unwrap();
    for (flag, value, says) in [
        ("--top-p", "5", "(0, 1]"),
        ("--temp", "nan", "finite"),
        ("--min-p", "1.5", "[0, 1]"),
    ] {
        let (code, _, err) = parity(&["generate", m, "--prompt", "def ", "-n", "2", flag, value]);
        assert_eq!(code, 2, "{flag} {value}: {err}");
        assert!(err.contains(says), "{err}");
    }
    let (code, neg, err) = parity(&["generate", m, "--prompt", "def ", "-n", "8", "--temp", "-1"]);
    assert_eq!(code, 0, "{err}");
    let (_, greedy, _) = parity(&["generate", m, "--prompt", "def ", "-n", "8", "--greedy"]);
    assert_eq!(neg, greedy);
}

/// A copy of `src` with `edit` applied to its metadata and tensor list.
fn rewrite(src: &Path, dst: &Path, edit: impl FnOnce(&mut GgufWriter)) {
    let g = GgufFile::open(src).unwrap();
    let mut w = GgufWriter::copy_of(&g).unwrap();
    edit(&mut w);
    fs::write(dst, w.to_bytes()).unwrap();
}

fn set(w: &mut GgufWriter, key: &str, v: Value) {
    let slot = w.metadata.iter_mut().find(|(k, _)| k == key).expect("key present");
    slot.1 = v;
}

#[test]
fn broken_models_are_refused_like_bitnet_cpp_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let src = trained();
    let lowered = dir.path().join("lowered.gguf");
    rewrite(&src, &lowered, |w| {
        let n = match w.metadata.iter().find(|(k, _)| k == "bitnet-b1.58.block_count") {
            Some((_, Value::U32(n))) => *n,
            other => panic!("block_count: {other:?}"),
        };
        set(w, "bitnet-b1.58.block_count", Value::U32(n - 1));
    });
    let (code, _, err) = parity(&["generate", lowered.to_str().unwrap(), "--prompt", "def ", "-n", "2"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("wrong number of tensors") && err.contains("blk."), "{err}");

    let nan_eps = dir.path().join("nan-eps.gguf");
    rewrite(&src, &nan_eps, |w| {
        set(w, "bitnet-b1.58.attention.layer_norm_rms_epsilon", Value::F32(f32::NAN))
    });
    let (code, _, err) = parity(&["generate", nan_eps.to_str().unwrap(), "--prompt", "def ", "-n", "2"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("layer_norm_rms_epsilon") && err.contains("finite"),
        "{err}"
    );

    let no_ctx = dir.path().join("ctx0.gguf");
    rewrite(&src, &no_ctx, |w| set(w, "bitnet-b1.58.context_length", Value::U32(0)));
    let (code, _, err) = parity(&["generate", no_ctx.to_str().unwrap(), "--prompt", "def ", "-n", "2"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bitnet-b1.58.context_length") && err.contains("zero"),
        "{err}"
    );
}

#[test]
fn a_sibling_tokenizer_json_of_another_vocabulary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.gguf");
    rewrite(&trained(), &model, |w| {
        w.metadata.retain(|(k, _)| !k.starts_with("tokenizer."))
    });
    let vocab: serde_json::Map<String, serde_json::Value> =
        (0..10).map(|i| (format!("t{i}"), serde_json::json!(i))).collect();
    let json = serde_json::json!({"model": {"type": "BPE", "vocab": vocab, "merges": []}, "added_tokens": []});
    fs::write(dir.path().join("tokenizer.json"), json.to_string()).unwrap();
    let (code, _, err) = parity(&["tokenize", model.to_str().unwrap(), "--prompt", "t1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has 10 tokens") && err.contains("1024"), "{err}");
}

#[test]
fn outputs_that_cannot_be_written_exit_2() {
    let m = trained();
    let full = fs::OpenOptions::new().write(true).open("/dev/full");
    let Ok(full) = full else {
        eprintln!("SKIP: no /dev/full");
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_parity"))
        .args(["inspect", m.to_str().unwrap(), "--json"])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "not a panic (101): {err}");
    assert!(
        err.contains("cannot write to standard output") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn messages_say_what_happened_once() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = parity(&["inspect", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("is a directory") && !err.contains("No such device"),
        "{err}"
    );

    let missing = dir.path().join("missing.json");
    let (code, _, err) = parity(&["report", missing.to_str().unwrap()]);
    assert_eq!(code, 2, "README: 2 for input errors");
    assert_eq!(err.matches("missing.json").count(), 1, "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
}

#[test]
fn a_recorded_reference_without_this_model_says_where_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.gguf");
    rewrite(&trained(), &other, |w| {
        w.kv("test.another_model", Value::Bool(true));
    });
    let recorded = trained().parent().unwrap().display().to_string();
    let spec = format!("recorded:{recorded}");
    let (code, _, err) = parity(&["run", other.to_str().unwrap(), "--reference", &spec]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&recorded) && err.contains("parity record"), "{err}");
}

#[test]
fn trace_without_a_traced_case_lists_the_traced_ones() {
    let dir = trained().parent().unwrap().to_path_buf();
    let manifest: serde_json::Value = serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let cases = manifest["cases"].as_array().unwrap();
    let traced = |c: &&serde_json::Value| dir.join("traces").join(c["id"].as_str().unwrap()).is_dir();
    let with = cases
        .iter()
        .find(traced)
        .expect("the bundled reference carries a trace");
    // A case whose prompt no traced case shares (cases differing only in threads share one).
    let Some(plain) = cases
        .iter()
        .find(|c| c["mode"] == "batch" && c["prompt_ids"] != with["prompt_ids"])
    else {
        eprintln!("SKIP: every batch case carries a trace");
        return;
    };
    let ids: Vec<String> = plain["prompt_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    let (code, _, err) = parity(&[
        "run",
        "--tokens",
        &ids.join(","),
        "--mode",
        "batch",
        "--trace",
        "--steps",
        "0",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(with["id"].as_str().unwrap()),
        "names the traced case: {err}"
    );
}

#[test]
fn chat_survives_a_full_context() {
    let m = trained();
    let mut child = Command::new(env!("CARGO_BIN_EXE_parity"))
        .args([
            "chat",
            m.to_str().unwrap(),
            "--template",
            "raw",
            "--ctx",
            "48",
            "-n",
            "24",
            "--greedy",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for _ in 0..4 {
        writeln!(stdin, "def parse_args(argv):").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("[context full"), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).lines().count() >= 4,
        "four replies"
    );
}

/// The trained fixture with `output_norm.weight` set to 1e38 (it loads: weights are not range-checked, as in
/// bitnet.cpp), next to a copy of its recorded reference re-keyed to the new file's digest.
fn overflowing_model(dir: &Path) -> PathBuf {
    let src = trained();
    let model = dir.join(src.file_name().unwrap());
    rewrite(&src, &model, |w| {
        let t = w.tensors.iter_mut().find(|t| t.name == "output_norm.weight").unwrap();
        assert_eq!(t.type_id, 0, "output_norm is F32");
        t.data = t.data.chunks(4).flat_map(|_| 1e38f32.to_le_bytes()).collect();
    });
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(fs::read(&model).unwrap()));
    let recorded = src.parent().unwrap();
    for e in fs::read_dir(recorded).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "npy") {
            fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(recorded.join("manifest.json")).unwrap()).unwrap();
    for c in manifest["cases"].as_array_mut().unwrap() {
        c["model_sha256"] = sha.clone().into();
    }
    fs::write(dir.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    model
}

#[test]
fn non_finite_logits_fail_the_logits_finite_gate() {
    let dir = tempfile::tempdir().unwrap();
    let model = overflowing_model(dir.path());
    let spec = format!("recorded:{}", dir.path().display());
    let receipt = dir.path().join("r.json");
    let args = [
        "run",
        model.to_str().unwrap(),
        "--reference",
        &spec,
        "--mode",
        "batch",
        "--receipt",
    ];
    let (code, out, err) = parity(&[&args[..], &[receipt.to_str().unwrap()]].concat());
    assert_eq!(code, 1, "a gate failed, not an input error: {out}{err}");
    assert!(
        out.contains("batch: logits.finite") && out.contains("non-finite"),
        "{out}{err}"
    );
    let r: serde_json::Value = serde_json::from_slice(&fs::read(&receipt).unwrap()).unwrap();
    assert!(r["modes"][0]["non_finite_logits"].as_u64().unwrap() > 0, "{r}");
    let gate = r["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "logits.finite");
    assert_eq!(gate.unwrap()["passed"], false, "{r}");
    let (code, out, err) = parity(&["verify", receipt.to_str().unwrap()]);
    assert_eq!(code, 1, "verify recomputes the failing gate: {out}{err}");
    assert!(out.contains("logits.finite"), "{out}{err}");
}
