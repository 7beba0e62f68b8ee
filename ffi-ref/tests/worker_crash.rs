//! Crash isolation without C++: shell-script workers that answer a few frames and then abort, exit, hang
//! or talk garbage. The harness must return typed errors and keep running.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ffi_ref::protocol::{write_frame, Request, Response, SystemInfo};
use ffi_ref::{Ffi, FfiOptions, Mode, RefError, ReferenceBackend};

const MODEL: &str = "/nonexistent/model.gguf";

fn frame<T: serde::Serialize>(h: &T, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    write_frame(&mut b, h, payload).unwrap();
    b
}

fn info() -> Response {
    Response::SystemInfo(SystemInfo {
        system_info: "FAKE = 1".into(),
        dir: "/fake".into(),
        commit: "0".repeat(40),
        llama_commit: "unknown".into(),
        api: "load=old,context=old,free=old,vocab=old,memory=kv_cache".into(),
        build_flags: String::new(),
    })
}

/// A script that, for each `(request, answer)` step, reads exactly the request's bytes and writes the
/// answer; then runs `tail` (shell).
fn fake_worker(dir: &Path, steps: &[(Request, Vec<u8>)], tail: &str) -> PathBuf {
    let mut script = String::from("#!/bin/sh\nulimit -c 0\n");
    for (i, (req, answer)) in steps.iter().enumerate() {
        let file = dir.join(format!("answer{i}.bin"));
        fs::write(&file, answer).unwrap();
        let n = frame(req, &[]).len();
        script.push_str(&format!("head -c {n} >/dev/null\ncat '{}'\n", file.display()));
    }
    script.push_str(tail);
    script.push('\n');
    let path = dir.join("fake-worker.sh");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn handshake() -> Vec<(Request, Vec<u8>)> {
    vec![
        (Request::SystemInfo, frame(&info(), &[])),
        (
            Request::Load {
                model: MODEL.into(),
                n_ctx: 16,
                threads: 1,
            },
            frame(&Response::Loaded { n_vocab: 4, n_ctx: 16 }, &[]),
        ),
    ]
}

fn opts(worker: PathBuf, timeout: Duration) -> FfiOptions {
    FfiOptions {
        worker: Some(worker),
        timeout,
        load_timeout: timeout,
        ..FfiOptions::new(MODEL, 16, 1)
    }
}

/// A worker (written to `dir`) that completes the handshake and then hangs, spawned with a 300 ms request timeout.
fn spawn_hanging(dir: &Path) -> (Ffi, PathBuf) {
    let w = fake_worker(dir, &handshake(), "exec sleep 60");
    let o = FfiOptions {
        timeout: Duration::from_millis(300),
        ..opts(w.clone(), Duration::from_secs(20))
    };
    (Ffi::spawn(&o).unwrap(), w)
}

/// The worker process `pid` has exited (and been reaped).
fn assert_gone(pid: u32) {
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "worker {pid} still running"
    );
}

#[test]
fn abort_after_handshake_is_worker_died_with_sigabrt_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let tail = "echo 'ggml.c:1234: GGML_ASSERT(fake) failed' >&2\nkill -ABRT $$";
    let w = fake_worker(dir.path(), &handshake(), tail);
    let mut ffi = Ffi::spawn(&opts(w, Duration::from_secs(20))).unwrap();
    assert_eq!(ffi.system_info().system_info, "FAKE = 1");
    assert_eq!(ffi.n_vocab(), 4);
    let err = ffi.eval_logits(&[1, 2], Mode::Batch).unwrap_err();
    let RefError::WorkerDied {
        signal,
        exit_code,
        stderr_tail,
        ..
    } = &err
    else {
        panic!("got {err:?}")
    };
    assert_eq!((*signal, *exit_code), (Some(6), None));
    assert!(
        stderr_tail.iter().any(|l| l.contains("GGML_ASSERT(fake)")),
        "{stderr_tail:?}"
    );
    assert!(err.to_string().contains("SIGABRT"), "{err}");
    // The handle stays dead and says so; nothing panics.
    assert!(matches!(
        ffi.greedy(&[1], Mode::Seq, 1),
        Err(RefError::WorkerDied { signal: Some(6), .. })
    ));
}

#[test]
fn exit_during_load_is_worker_died_with_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let steps = &handshake()[..1];
    let w = fake_worker(
        dir.path(),
        steps,
        "echo 'llama_model_load: error loading model' >&2\nexit 3",
    );
    let err = Ffi::spawn(&opts(w, Duration::from_secs(20))).unwrap_err();
    let RefError::WorkerDied {
        signal: None,
        exit_code: Some(3),
        stderr_tail,
        ..
    } = &err
    else {
        panic!("got {err:?}")
    };
    assert_eq!(
        stderr_tail.last().map(String::as_str),
        Some("llama_model_load: error loading model")
    );
}

#[test]
fn a_hang_is_a_timeout_and_the_worker_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ffi, _) = spawn_hanging(dir.path());
    let pid = ffi.pid();
    let start = Instant::now();
    let err = ffi.eval_logits(&[1], Mode::Seq).unwrap_err();
    assert!(
        matches!(err, RefError::Timeout { ref request, .. } if request == "eval_logits"),
        "{err:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_gone(pid);
}

#[test]
fn dropping_a_handle_ends_a_worker_that_ignores_eof() {
    let dir = tempfile::tempdir().unwrap();
    let w = fake_worker(dir.path(), &handshake(), "exec sleep 60");
    let ffi = Ffi::spawn(&opts(w, Duration::from_secs(20))).unwrap();
    let pid = ffi.pid();
    let start = Instant::now();
    drop(ffi);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_gone(pid);
}

#[test]
fn garbage_and_mismatched_answers_are_protocol_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut steps = handshake();
    steps.push((
        Request::EvalLogits {
            ids: vec![1, 2],
            mode: Mode::Batch,
        },
        frame(
            &Response::Logits {
                n_tokens: 2,
                n_vocab: 4,
            },
            &[0u8; 12],
        ),
    ));
    let w = fake_worker(dir.path(), &steps, "exec sleep 60");
    let mut ffi = Ffi::spawn(&opts(w, Duration::from_secs(20))).unwrap();
    assert!(matches!(
        ffi.eval_logits(&[1, 2], Mode::Batch),
        Err(RefError::Protocol(_))
    ));
    drop(ffi);

    let w = fake_worker(
        dir.path(),
        &[],
        "printf 'not a frame at all, definitely too long'\nexec sleep 60",
    );
    assert!(matches!(
        Ffi::spawn(&opts(w, Duration::from_secs(20))),
        Err(RefError::Protocol(_))
    ));
}

#[test]
fn worker_errors_are_typed_and_leave_it_usable() {
    let dir = tempfile::tempdir().unwrap();
    let mut steps = handshake();
    steps.push((
        Request::Tokenize {
            text: "x".into(),
            add_bos: true,
            parse_special: true,
        },
        frame(
            &Response::Error {
                message: "tokenize failed".into(),
            },
            &[],
        ),
    ));
    steps.push((
        Request::Tokenize {
            text: "x".into(),
            add_bos: true,
            parse_special: true,
        },
        frame(&Response::Ids { ids: vec![3] }, &[]),
    ));
    let w = fake_worker(dir.path(), &steps, "exit 0");
    let mut ffi = Ffi::spawn(&opts(w, Duration::from_secs(20))).unwrap();
    assert!(matches!(ffi.tokenize("x", true, true), Err(RefError::Worker(m)) if m == "tokenize failed"));
    assert_eq!(ffi.tokenize("x", true, true).unwrap(), [3]);
    assert!(
        matches!(ffi.eval_logits(&[9], Mode::Batch), Err(RefError::Invalid(_))),
        "id >= n_vocab caught locally"
    );
    assert!(matches!(
        ffi.eval_logits(&[1], Mode::Batch),
        Err(RefError::WorkerDied { exit_code: Some(0), .. })
    ));
}

#[test]
fn missing_worker_is_a_spawn_error() {
    let err = Ffi::spawn(&opts(
        PathBuf::from("/nonexistent/parity-ref-worker"),
        Duration::from_secs(1),
    ))
    .unwrap_err();
    assert!(matches!(err, RefError::Spawn { .. }), "{err:?}");
}

#[test]
fn without_ffi_and_without_a_worker_spawn_is_not_compiled() {
    if ffi_ref::FFI_COMPILED || std::env::var_os(ffi_ref::ffi::WORKER_ENV).is_some() {
        eprintln!("SKIP: built with ffi or PARITY_REF_WORKER set");
        return;
    }
    assert!(matches!(
        Ffi::spawn(&FfiOptions::new(MODEL, 16, 1)),
        Err(RefError::NotCompiled)
    ));
}

#[test]
fn a_worker_that_closes_its_input_is_a_typed_error_not_sigpipe() {
    // The harness keeps SIGPIPE's default action (as `parity` does for its stdout); writing to a worker
    // that no longer reads must still come back as an error.
    // SAFETY: setting a signal's disposition; the test only needs it to be the default.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let dir = tempfile::tempdir().unwrap();
    let w = fake_worker(dir.path(), &handshake(), "exec 0<&-\nexec sleep 60");
    let mut ffi = Ffi::spawn(&opts(w.clone(), Duration::from_secs(20))).unwrap();
    let pid = ffi.pid();
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let err = ffi.eval_logits(&[1], Mode::Seq).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(&err, RefError::InputClosed { request, .. } if request == "eval_logits"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&w.display().to_string()) && text.contains("closed its input"),
        "{text}"
    );
    assert_gone(pid);
}

#[test]
fn the_assert_line_outlives_a_long_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let tail = "echo 'ggml.c:1234: GGML_ASSERT(fake) failed' >&2\n\
                i=0; while [ $i -lt 60 ]; do echo \"#$i 0x0000 in frame_$i ()\" >&2; i=$((i+1)); done\n\
                kill -ABRT $$";
    let w = fake_worker(dir.path(), &handshake(), tail);
    let mut ffi = Ffi::spawn(&opts(w, Duration::from_secs(20))).unwrap();
    let err = ffi.eval_logits(&[1, 2], Mode::Batch).unwrap_err();
    let RefError::WorkerDied { stderr_tail, .. } = &err else {
        panic!("got {err:?}")
    };
    assert!(
        stderr_tail.iter().any(|l| l.contains("GGML_ASSERT(fake)")),
        "{stderr_tail:?}"
    );
    assert!(stderr_tail.iter().any(|l| l.contains("frame_59")), "{stderr_tail:?}");
}

#[test]
fn a_refused_load_carries_bitnet_cpps_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut steps = handshake();
    steps[1].1 = frame(
        &Response::Error {
            message: format!("bitnet.cpp could not load {MODEL}"),
        },
        &[],
    );
    let w = fake_worker(dir.path(), &steps, "exec sleep 60");
    // bitnet.cpp logs why, then the worker answers; the log may still be in the pipe when the answer is read.
    let answer = format!("cat '{}'", dir.path().join("answer1.bin").display());
    let log = "echo 'llama_model_load: error loading model: llama_model_loader: wrong number of tensors; \
               expected 30, got 25' >&2";
    let script = fs::read_to_string(&w)
        .unwrap()
        .replace(&answer, &format!("{log}\n{answer}"));
    fs::write(&w, script).unwrap();
    let err = Ffi::spawn(&opts(w, Duration::from_secs(20))).unwrap_err();
    let RefError::LoadFailed { message, log, .. } = &err else {
        panic!("got {err:?}")
    };
    assert!(message.contains("could not load"), "{message}");
    assert!(log.iter().any(|l| l.contains("wrong number of tensors")), "{log:?}");
}

#[test]
fn errors_name_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ffi, w) = spawn_hanging(dir.path());
    let text = ffi.eval_logits(&[1], Mode::Seq).unwrap_err().to_string();
    assert!(text.contains(&w.display().to_string()), "{text}");
    assert!(text.contains("timed out") && text.contains("--timeout"), "{text}");
}

#[test]
fn a_request_left_unread_in_a_closed_input_is_found_before_the_timeout() {
    // The request reaches the pipe while the worker still holds it open; then the worker closes it
    // unread. No write fails: the harness notices the pipe has no reader left.
    let dir = tempfile::tempdir().unwrap();
    let w = fake_worker(dir.path(), &handshake(), "sleep 0.5\nexec 0<&-\nexec sleep 60");
    let mut ffi = Ffi::spawn(&opts(w, Duration::from_secs(30))).unwrap();
    let start = Instant::now();
    let err = ffi.eval_logits(&[1], Mode::Seq).unwrap_err();
    assert!(matches!(&err, RefError::InputClosed { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
}
