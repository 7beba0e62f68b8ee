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
    #[error("reference worker died ({}){}", fmt_status(*.exit_code, *.signal), fmt_stderr(.stderr_tail))]
    WorkerDied {
        /// Exit code when it exited normally.
        exit_code: Option<i32>,
        /// Signal number when it was killed (6 = SIGABRT, e.g. a GGML_ASSERT).
        signal: Option<i32>,
        /// Its last stderr lines, oldest first.
        stderr_tail: Vec<String>,
    },
    /// A request took longer than the configured limit; the worker was killed.
    #[error("reference worker timed out after {secs:.1} s on {request}{}", fmt_stderr(.stderr_tail))]
    Timeout {
        /// The request kind.
        request: String,
        /// The limit in seconds.
        secs: f64,
        /// Its last stderr lines, oldest first.
        stderr_tail: Vec<String>,
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
        String::new()
    } else {
        format!("; last stderr lines:\n  {}", lines.join("\n  "))
    }
}
