//! The crate's one error type.

use std::path::PathBuf;

/// Everything a reference backend can fail with. The worker running bitnet.cpp may crash, abort or hang:
/// those become [`RefError::WorkerDied`] and [`RefError::Timeout`], never a crash of the caller.
#[derive(Debug, thiserror::Error)]
pub enum RefError {
    /// The crate was built without the `ffi` feature, so no live bitnet.cpp is available.
    #[error(
        "this build has no live bitnet.cpp reference: rebuild with `--features ffi` and BITNET_CPP_DIR \
         pointing at a built bitnet.cpp checkout"
    )]
    NotCompiled,
    /// No `parity-ref-worker` executable was found.
    #[error("parity-ref-worker not found (tried: {}); set PARITY_REF_WORKER", fmt_paths(.tried))]
    WorkerNotFound {
        /// Every path that was looked at.
        tried: Vec<PathBuf>,
    },
    /// Starting the worker process failed.
    #[error("cannot start worker {path}: {source}")]
    Spawn {
        /// The executable.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The worker exited or was killed while a request was outstanding (or before it).
    #[error(
        "reference worker {} died during {request} ({}){}",
        .worker.display(), fmt_status(*.exit_code, *.signal), fmt_stderr(.stderr_tail)
    )]
    WorkerDied {
        /// The worker executable.
        worker: PathBuf,
        /// The request that was outstanding (or the one that found it dead).
        request: String,
        /// Exit code when it exited normally.
        exit_code: Option<i32>,
        /// Signal number when it was killed (6 = SIGABRT, e.g. a GGML_ASSERT).
        signal: Option<i32>,
        /// Its stderr lines that state an error, then its last lines, oldest first.
        stderr_tail: Vec<String>,
    },
    /// The worker stopped reading requests (closed its stdin) while still running; it was killed.
    #[error(
        "reference worker {} closed its input: sending {request} failed ({error}); the worker was killed{}",
        .worker.display(), fmt_stderr(.stderr_tail)
    )]
    InputClosed {
        /// The worker executable.
        worker: PathBuf,
        /// The request that could not be sent.
        request: String,
        /// The write error (EPIPE).
        error: String,
        /// Its stderr lines that state an error, then its last lines, oldest first.
        stderr_tail: Vec<String>,
    },
    /// A request took longer than the configured limit; the worker was killed.
    #[error(
        "reference worker {} timed out after {secs:.1} s on {request} and was killed (raise the limit with \
         --timeout SECS){}",
        .worker.display(), fmt_stderr(.stderr_tail)
    )]
    Timeout {
        /// The worker executable.
        worker: PathBuf,
        /// The request kind.
        request: String,
        /// The limit in seconds.
        secs: f64,
        /// Its stderr lines that state an error, then its last lines, oldest first.
        stderr_tail: Vec<String>,
    },
    /// bitnet.cpp refused the model; its own log lines say why.
    #[error("reference worker {}: {message}{}", .worker.display(), fmt_log(.log))]
    LoadFailed {
        /// The worker executable.
        worker: PathBuf,
        /// The worker's answer.
        message: String,
        /// bitnet.cpp's log lines that state an error, then its last lines.
        log: Vec<String>,
    },
    /// The worker answered with an error (bad model path, decode failure, ...).
    #[error("reference worker: {0}")]
    Worker(String),
    /// A malformed frame or an answer that does not fit the request.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Bad arguments (empty ids, prompt longer than n_ctx, ...).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A recorded-reference directory has no case for the request.
    #[error("no recorded case for {0}")]
    NoCase(String),
    /// A recorded reference is malformed.
    #[error("recorded reference {path}: {msg}")]
    Recorded {
        /// The offending file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A `.npy` file is unreadable, malformed or not the strict f32 layout.
    #[error(transparent)]
    Npy(#[from] vocab::npy::NpyError),
    /// File-system error with the path it concerns.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl RefError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RefError::Io {
            path: path.into(),
            source,
        }
    }
}

fn fmt_paths(p: &[PathBuf]) -> String {
    p.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn fmt_status(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (_, Some(s)) => format!(
            "killed by signal {s}{}",
            signal_name(s).map(|n| format!(" ({n})")).unwrap_or_default()
        ),
        (Some(c), None) => format!("exit code {c}"),
        (None, None) => "status unknown".to_string(),
    }
}

fn signal_name(s: i32) -> Option<&'static str> {
    Some(match s {
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => return None,
    })
}

fn fmt_stderr(lines: &[String]) -> String {
    if lines.is_empty() {
        "; it printed nothing on stderr".to_string()
    } else {
        format!("; its stderr:\n  {}", lines.join("\n  "))
    }
}

fn fmt_log(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; bitnet.cpp's log:\n  {}", lines.join("\n  "))
    }
}
