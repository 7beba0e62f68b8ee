//! [`Ffi`]: a live bitnet.cpp reference running in a `parity-ref-worker` subprocess.
//!
//! bitnet.cpp aborts on a failed `GGML_ASSERT` and may segfault on a bad model; running it in a child
//! process turns both into [`RefError::WorkerDied`] (with the signal and the last stderr lines) and a
//! hang into [`RefError::Timeout`], while the harness carries on. A worker that stops reading is an
//! [`RefError::InputClosed`] (its EPIPE never becomes a SIGPIPE of ours), a failed load carries
//! bitnet.cpp's own log lines, and the worker dies with the process that started it.

use std::io::{self, BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::backend::{Logits, Mode, RefTensor, ReferenceBackend, ReferenceIdentity, ReferenceKind};
use crate::error::RefError;
use crate::protocol::{self, Frame, Request, Response, SystemInfo};
use crate::stderr::StderrTail;

/// Environment variable naming the worker executable.
pub const WORKER_ENV: &str = "PARITY_REF_WORKER";
/// The worker's file name.
pub const WORKER_NAME: &str = "parity-ref-worker";
/// The default limit for loading and for each request, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 600;

/// How to start the worker and what to load.
#[derive(Debug, Clone)]
pub struct FfiOptions {
    /// GGUF to load.
    pub model: PathBuf,
    /// Context length (also n_batch and n_ubatch).
    pub n_ctx: u32,
    /// Threads.
    pub threads: u32,
    /// Worker executable; else `PARITY_REF_WORKER`, else next to the current executable (`ffi` builds).
    pub worker: Option<PathBuf>,
    /// Limit for loading the model.
    pub load_timeout: Duration,
    /// Limit for any other request.
    pub timeout: Duration,
}

impl FfiOptions {
    /// Options with [`DEFAULT_TIMEOUT_SECS`] limits for loading and for each request.
    pub fn new(model: impl Into<PathBuf>, n_ctx: u32, threads: u32) -> Self {
        FfiOptions {
            model: model.into(),
            n_ctx,
            threads,
            worker: None,
            load_timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
        }
    }

    /// The same limit for loading and for each request.
    pub fn with_timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self.load_timeout = limit;
        self
    }
}

type FrameResult = std::io::Result<Option<Frame<Response>>>;

/// A running worker with one model loaded.
pub struct Ffi {
    child: Child,
    worker: PathBuf,
    stdin: Option<ChildStdin>,
    frames: Receiver<FrameResult>,
    stderr: Arc<Mutex<StderrTail>>,
    stderr_thread: Option<JoinHandle<()>>,
    info: SystemInfo,
    n_vocab: usize,
    n_ctx: u32,
    timeout: Duration,
    dead: Option<(Option<i32>, Option<i32>)>,
}

impl std::fmt::Debug for Ffi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ffi")
            .field("pid", &self.child.id())
            .field("n_vocab", &self.n_vocab)
            .finish()
    }
}

/// The worker to run: explicit, `PARITY_REF_WORKER`, or (in `ffi` builds) beside the current executable
/// or its parent directory (test binaries live in `target/*/deps`).
pub fn find_worker(explicit: Option<&Path>) -> Result<PathBuf, RefError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(WORKER_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if !cfg!(feature = "ffi") {
        return Err(RefError::NotCompiled);
    }
    let exe = std::env::current_exe().map_err(|e| RefError::io("current executable", e))?;
    let tried: Vec<PathBuf> = exe.ancestors().skip(1).take(2).map(|d| d.join(WORKER_NAME)).collect();
    tried
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(RefError::WorkerNotFound { tried })
}

impl Ffi {
    /// Start the worker, read its build info, load the model.
    ///
    /// Without the `ffi` feature this returns [`RefError::NotCompiled`] unless a worker is named explicitly
    /// or through `PARITY_REF_WORKER` (a worker built elsewhere works just as well).
    pub fn spawn(opts: &FfiOptions) -> Result<Self, RefError> {
        let path = find_worker(opts.worker.as_deref())?;
        let mut cmd = Command::new(&path);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|source| RefError::Spawn {
            path: path.clone(),
            source,
        })?;
        let (Some(stdin), Some(mut stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            return Err(RefError::Protocol("worker pipes unavailable".into()));
        };
        let (tx, frames) = mpsc::channel();
        thread::spawn(move || loop {
            let r = protocol::read_frame::<Response>(&mut stdout);
            let stop = !matches!(r, Ok(Some(_)));
            if tx.send(r).is_err() || stop {
                break;
            }
        });
        let tail = Arc::new(Mutex::new(StderrTail::default()));
        let sink = Arc::clone(&tail);
        let stderr_thread = thread::spawn(move || {
            for line in BufReader::new(stderr).split(b'\n').map_while(Result::ok) {
                if let Ok(mut t) = sink.lock() {
                    t.push(&line);
                }
            }
        });
        let placeholder = SystemInfo {
            system_info: String::new(),
            dir: String::new(),
            commit: String::new(),
            llama_commit: String::new(),
            api: String::new(),
            build_flags: String::new(),
        };
        let mut ffi = Ffi {
            child,
            worker: path,
            stdin: Some(stdin),
            frames,
            stderr: tail,
            stderr_thread: Some(stderr_thread),
            info: placeholder,
            n_vocab: 0,
            n_ctx: opts.n_ctx,
            timeout: opts.timeout,
            dead: None,
        };
        ffi.info = match ffi.call(&Request::SystemInfo, opts.timeout)?.header {
            Response::SystemInfo(info) => info,
            other => return Err(unexpected("system_info", &other)),
        };
        let load = Request::Load {
            model: opts.model.display().to_string(),
            n_ctx: opts.n_ctx,
            threads: opts.threads,
        };
        match ffi.call(&load, opts.load_timeout) {
            Ok(Frame {
                header: Response::Loaded { n_vocab, .. },
                ..
            }) => ffi.n_vocab = n_vocab as usize,
            Ok(other) => return Err(unexpected("load", &other.header)),
            Err(RefError::Worker(message)) => {
                return Err(RefError::LoadFailed {
                    worker: ffi.worker.clone(),
                    message,
                    log: ffi.settled_stderr(),
                })
            }
            Err(e) => return Err(e),
        }
        Ok(ffi)
    }

    /// What the worker was built from.
    pub fn system_info(&self) -> &SystemInfo {
        &self.info
    }

    /// Vocabulary size of the loaded model.
    pub fn n_vocab(&self) -> usize {
        self.n_vocab
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ids to text.
    pub fn detokenize(&mut self, ids: &[u32]) -> Result<String, RefError> {
        match self
            .call(&Request::Detokenize { ids: ids.to_vec() }, self.timeout)?
            .header
        {
            Response::Text { text } => Ok(text),
            other => Err(unexpected("detokenize", &other)),
        }
    }

    /// Send one request and wait for its answer; any failure of the process is fatal for this handle.
    fn call(&mut self, req: &Request, limit: Duration) -> Result<Frame<Response>, RefError> {
        if let Some((exit_code, signal)) = self.dead {
            return Err(self.died(req, exit_code, signal));
        }
        let sent = match self.stdin.as_mut() {
            Some(w) => write_without_sigpipe(w, req),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        };
        if let Err(e) = sent {
            // Either it died (its status says how) or it stopped reading while alive.
            let (status, killed) = self.reap(Duration::from_millis(500));
            let (exit_code, signal) = (status.and_then(|s| s.code()), status.and_then(|s| s.signal()));
            self.dead = Some((exit_code, signal));
            if killed {
                return Err(RefError::InputClosed {
                    worker: self.worker.clone(),
                    request: req.name().into(),
                    error: e.to_string(),
                    stderr_tail: self.stderr_tail(),
                });
            }
            return Err(self.died(req, exit_code, signal));
        }
        match self.wait_answer(limit) {
            Err(Waited::InputClosed) => {
                // A worker that died closes its input too: then its status says how it ended.
                let (status, killed) = self.reap(Duration::from_millis(500));
                let (exit_code, signal) = (status.and_then(|s| s.code()), status.and_then(|s| s.signal()));
                self.dead = Some((exit_code, signal));
                if !killed {
                    return Err(self.died(req, exit_code, signal));
                }
                Err(RefError::InputClosed {
                    worker: self.worker.clone(),
                    request: req.name().into(),
                    error: "it closed its input with the request unread".into(),
                    stderr_tail: self.stderr_tail(),
                })
            }
            Ok(Ok(Some(frame))) => match frame.header {
                Response::Error { message } => Err(RefError::Worker(message)),
                _ => Ok(frame),
            },
            Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
                self.kill();
                Err(RefError::Protocol(format!(
                    "bad frame from worker {} on {}: {e}",
                    self.worker.display(),
                    req.name()
                )))
            }
            Err(Waited::Timeout) => {
                self.kill();
                Err(RefError::Timeout {
                    worker: self.worker.clone(),
                    request: req.name().into(),
                    secs: limit.as_secs_f64(),
                    stderr_tail: self.stderr_tail(),
                })
            }
            Ok(Ok(None)) | Ok(Err(_)) | Err(Waited::Disconnected) => {
                let (status, _) = self.reap(Duration::from_secs(5));
                let (exit_code, signal) = (status.and_then(|s| s.code()), status.and_then(|s| s.signal()));
                self.dead = Some((exit_code, signal));
                Err(self.died(req, exit_code, signal))
            }
        }
    }

    /// The next frame, checking every 100 ms whether the worker still reads its input: a worker that closed
    /// it will never answer, and waiting for the full limit would only delay the error.
    fn wait_answer(&self, limit: Duration) -> Result<FrameResult, Waited> {
        let start = Instant::now();
        loop {
            let left = limit.saturating_sub(start.elapsed());
            match self.frames.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(r) => return Ok(r),
                Err(RecvTimeoutError::Disconnected) => return Err(Waited::Disconnected),
                Err(RecvTimeoutError::Timeout) if left.is_zero() => return Err(Waited::Timeout),
                Err(RecvTimeoutError::Timeout) if self.input_closed() => return Err(Waited::InputClosed),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Whether the worker's stdin has no reader left (Linux reports POLLERR on a pipe's write end then).
    fn input_closed(&self) -> bool {
        use std::os::fd::AsRawFd;
        let Some(w) = self.stdin.as_ref() else { return true };
        let mut p = libc::pollfd {
            fd: w.as_raw_fd(),
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n == 1 && p.revents & libc::POLLERR != 0
    }

    fn died(&self, req: &Request, exit_code: Option<i32>, signal: Option<i32>) -> RefError {
        RefError::WorkerDied {
            worker: self.worker.clone(),
            request: req.name().into(),
            exit_code,
            signal,
            stderr_tail: self.stderr_tail(),
        }
    }

    /// Wait up to `grace` for the worker to exit (killing it after that), then drain its stderr. Returns
    /// its status and whether it had to be killed.
    fn reap(&mut self, grace: Duration) -> (Option<ExitStatus>, bool) {
        self.stdin = None;
        let start = Instant::now();
        let mut killed = false;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if start.elapsed() < grace => thread::sleep(Duration::from_millis(10)),
                Ok(None) => {
                    killed = true;
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
                Err(_) => break None,
            }
        };
        if let Some(h) = self.stderr_thread.take() {
            let start = Instant::now();
            while !h.is_finished() && start.elapsed() < Duration::from_secs(2) {
                thread::sleep(Duration::from_millis(10));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
        (status, killed)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let (status, _) = self.reap(Duration::from_secs(5));
        self.dead = Some((status.and_then(|s| s.code()), status.and_then(|s| s.signal())));
    }

    /// The stderr report once the worker has stopped writing for a moment (at most one second): a failed
    /// load is answered right after bitnet.cpp logs why, and the log may still be in the pipe.
    fn settled_stderr(&self) -> Vec<String> {
        let total = || self.stderr.lock().map(|t| t.total()).unwrap_or(0);
        let start = Instant::now();
        let mut seen = total();
        while start.elapsed() < Duration::from_secs(1) {
            thread::sleep(Duration::from_millis(50));
            let now = total();
            if now == seen {
                break;
            }
            seen = now;
        }
        self.stderr_tail()
    }

    fn stderr_tail(&self) -> Vec<String> {
        self.stderr.lock().map(|t| t.report()).unwrap_or_default()
    }

    fn check_ids(&self, ids: &[u32]) -> Result<(), RefError> {
        if ids.is_empty() {
            return Err(RefError::Invalid("empty token list".into()));
        }
        if let Some(&bad) = ids.iter().find(|&&t| t as usize >= self.n_vocab) {
            return Err(RefError::Invalid(format!("token id {bad} >= n_vocab {}", self.n_vocab)));
        }
        Ok(())
    }
}

impl Drop for Ffi {
    fn drop(&mut self) {
        if self.dead.is_none() {
            // Closing stdin asks the worker to exit; it is killed if it does not.
            self.reap(Duration::from_secs(2));
        }
    }
}

/// Let the worker die with this process: Linux sends it SIGKILL when the thread that started it exits
/// (`PR_SET_PDEATHSIG`; every caller here starts it from the main thread), so killing `parity` never
/// leaves bitnet.cpp running. [`Drop`] ends it on every other path.
fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: getpid is async-signal-safe.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe
        // functions (prctl, getppid, _exit); it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// Write one request with SIGPIPE blocked on this thread, so a worker that no longer reads gives EPIPE
/// here instead of killing this process (`parity` keeps SIGPIPE's default action so that a closed stdout
/// ends it quietly). A SIGPIPE the write raised is consumed before the mask is restored.
fn write_without_sigpipe(w: &mut ChildStdin, req: &Request) -> io::Result<()> {
    // SAFETY: sigset operations on local, initialised sets; pthread_sigmask affects this thread only and
    // is restored before returning; sigtimedwait with a zero timeout never blocks.
    unsafe {
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old);
        let result = protocol::write_frame(w, req, &[]);
        if matches!(&result, Err(e) if e.kind() == io::ErrorKind::BrokenPipe) {
            let mut pending: libc::sigset_t = std::mem::zeroed();
            libc::sigpending(&mut pending);
            if libc::sigismember(&pending, libc::SIGPIPE) == 1 && libc::sigismember(&old, libc::SIGPIPE) == 0 {
                let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
                libc::sigtimedwait(&pipe, std::ptr::null_mut(), &zero);
            }
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        result
    }
}

/// How waiting for an answer ended without one.
enum Waited {
    Timeout,
    Disconnected,
    InputClosed,
}

fn unexpected(req: &str, got: &Response) -> RefError {
    RefError::Protocol(format!("unexpected answer to {req}: {got:?}"))
}

impl ReferenceBackend for Ffi {
    fn tokenize(&mut self, text: &str, add_bos: bool, parse_special: bool) -> Result<Vec<u32>, RefError> {
        let req = Request::Tokenize {
            text: text.into(),
            add_bos,
            parse_special,
        };
        match self.call(&req, self.timeout)?.header {
            Response::Ids { ids } => Ok(ids),
            other => Err(unexpected("tokenize", &other)),
        }
    }

    fn eval_logits(&mut self, ids: &[u32], mode: Mode) -> Result<Logits, RefError> {
        self.check_ids(ids)?;
        if ids.len() > self.n_ctx as usize {
            return Err(RefError::Invalid(format!(
                "{} ids exceed n_ctx {}",
                ids.len(),
                self.n_ctx
            )));
        }
        let frame = self.call(
            &Request::EvalLogits {
                ids: ids.to_vec(),
                mode,
            },
            self.timeout,
        )?;
        let Response::Logits { n_tokens, n_vocab } = frame.header else {
            return Err(unexpected("eval_logits", &frame.header));
        };
        let (n_tokens, n_vocab) = (n_tokens as usize, n_vocab as usize);
        let data = protocol::bytes_to_f32(&frame.payload)
            .filter(|d| n_tokens == ids.len() && d.len() == n_tokens * n_vocab)
            .ok_or_else(|| {
                RefError::Protocol(format!(
                    "logits payload of {} bytes for {n_tokens}x{n_vocab} ({} ids)",
                    frame.payload.len(),
                    ids.len()
                ))
            })?;
        Ok(Logits {
            n_tokens,
            n_vocab,
            data,
        })
    }

    fn greedy(&mut self, ids: &[u32], mode: Mode, n: usize) -> Result<Vec<u32>, RefError> {
        self.check_ids(ids)?;
        if ids.len() + n > self.n_ctx as usize {
            return Err(RefError::Invalid(format!(
                "{} ids + {n} new exceed n_ctx {}",
                ids.len(),
                self.n_ctx
            )));
        }
        let n32 = u32::try_from(n).map_err(|_| RefError::Invalid(format!("n = {n} too large")))?;
        match self
            .call(
                &Request::Greedy {
                    ids: ids.to_vec(),
                    mode,
                    n: n32,
                },
                self.timeout,
            )?
            .header
        {
            Response::Ids { ids } if ids.len() == n => Ok(ids),
            other => Err(unexpected("greedy", &other)),
        }
    }

    fn eval_trace(&mut self, ids: &[u32], mode: Mode, names: &[String]) -> Result<(Logits, Vec<RefTensor>), RefError> {
        self.check_ids(ids)?;
        let req = Request::EvalTrace {
            ids: ids.to_vec(),
            mode,
            names: names.to_vec(),
        };
        let frame = self.call(&req, self.timeout)?;
        let Response::Traced {
            n_tokens,
            n_vocab,
            tensors,
        } = frame.header
        else {
            return Err(unexpected("eval_trace", &frame.header));
        };
        let (n_tokens, n_vocab) = (n_tokens as usize, n_vocab as usize);
        let bad = |what: String| RefError::Protocol(format!("eval_trace payload: {what}"));
        let values =
            protocol::bytes_to_f32(&frame.payload).ok_or_else(|| bad(format!("{} bytes", frame.payload.len())))?;
        let n_logits = n_tokens * n_vocab;
        if n_tokens != ids.len() || values.len() < n_logits {
            return Err(bad(format!("{} values for {n_tokens}x{n_vocab}", values.len())));
        }
        let mut rest = &values[n_logits..];
        let mut out = Vec::with_capacity(tensors.len());
        for t in tensors {
            let n = usize::try_from(t.len()).map_err(|_| bad(format!("{} too large", t.name)))?;
            if n > rest.len() {
                return Err(bad(format!("{} needs {n} values, {} left", t.name, rest.len())));
            }
            let (data, tail) = rest.split_at(n);
            rest = tail;
            out.push(RefTensor {
                name: t.name,
                ne: t.ne.map(|d| d as usize),
                data: data.to_vec(),
            });
        }
        if !rest.is_empty() {
            return Err(bad(format!("{} values left over", rest.len())));
        }
        let logits = Logits {
            n_tokens,
            n_vocab,
            data: values[..n_logits].to_vec(),
        };
        Ok((logits, out))
    }

    fn identity(&self) -> ReferenceIdentity {
        ReferenceIdentity {
            kind: ReferenceKind::Ffi,
            commit: Some(self.info.commit.clone()),
            llama_commit: Some(self.info.llama_commit.clone()).filter(|c| c != "unknown"),
            dir: Some(self.info.dir.clone()),
            manifest_sha256: None,
            generation: Some(self.info.api.clone()),
            build: Some(match self.info.arm_build() {
                Some(arm) => format!("{}; {arm}", self.info.build_flags),
                None => self.info.build_flags.clone(),
            }),
        }
    }
}
