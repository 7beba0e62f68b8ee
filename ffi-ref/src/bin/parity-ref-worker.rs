//! `parity-ref-worker`: runs bitnet.cpp (linked from BITNET_CPP_DIR) behind the framed protocol of
//! `ffi_ref::protocol` on stdin/stdout. One request at a time; exits on end of input.
//!
//! Anything bitnet.cpp prints goes to stderr: the protocol stream is a private duplicate of stdout,
//! and file descriptor 1 is pointed at stderr before any C code runs.

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::os::fd::FromRawFd;
use std::process::ExitCode;

use ffi_ref::llama::{self, Session};
use ffi_ref::protocol::{self, Request, Response, SystemInfo};

fn main() -> ExitCode {
    // SAFETY: dup/dup2 on the process's own standard descriptors, before any other thread exists.
    let proto_fd = unsafe {
        let fd = libc::dup(1);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            eprintln!("parity-ref-worker: cannot redirect stdout");
            return ExitCode::from(3);
        }
        fd
    };
    // SAFETY: proto_fd is a fresh descriptor owned by nobody else.
    let mut out = BufWriter::new(unsafe { File::from_raw_fd(proto_fd) });
    let mut input = BufReader::new(io::stdin().lock());
    let mut session: Option<Session> = None;
    loop {
        let req = match protocol::read_frame::<Request>(&mut input) {
            Ok(Some(f)) => f.header,
            Ok(None) => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("parity-ref-worker: bad request frame: {e}");
                return ExitCode::from(4);
            }
        };
        let (resp, payload) = handle(&mut session, req);
        if let Err(e) = protocol::write_frame(&mut out, &resp, &payload) {
            eprintln!("parity-ref-worker: cannot answer: {e}");
            return ExitCode::from(5);
        }
    }
}

fn handle(session: &mut Option<Session>, req: Request) -> (Response, Vec<u8>) {
    let result = match req {
        Request::SystemInfo => Ok(Response::SystemInfo(SystemInfo {
            system_info: llama::system_info(),
            dir: env!("PARITY_BITNET_CPP_DIR").into(),
            commit: env!("PARITY_BITNET_COMMIT").into(),
            llama_commit: env!("PARITY_LLAMA_COMMIT").into(),
            api: env!("PARITY_LLAMA_API").into(),
            build_flags: env!("PARITY_BUILD_FLAGS").into(),
        })),
        Request::Load { model, n_ctx, threads } => {
            *session = None;
            Session::load(&model, n_ctx, threads).map(|s| {
                let r = Response::Loaded {
                    n_vocab: s.n_vocab() as u32,
                    n_ctx: s.n_ctx(),
                };
                *session = Some(s);
                r
            })
        }
        other => match session.as_mut() {
            None => Err(format!("{} before load", other.name())),
            Some(s) => return run(s, other),
        },
    };
    (result.unwrap_or_else(|message| Response::Error { message }), Vec::new())
}

fn run(s: &mut Session, req: Request) -> (Response, Vec<u8>) {
    let result = match req {
        Request::Tokenize {
            text,
            add_bos,
            parse_special,
        } => s
            .tokenize(&text, add_bos, parse_special)
            .map(|ids| Response::Ids { ids }),
        Request::Detokenize { ids } => s.detokenize(&ids).map(|text| Response::Text { text }),
        Request::EvalLogits { ids, mode } => match s.eval(&ids, mode) {
            Ok(data) => {
                let head = Response::Logits {
                    n_tokens: ids.len() as u32,
                    n_vocab: s.n_vocab() as u32,
                };
                return (head, protocol::f32_to_bytes(&data));
            }
            Err(e) => Err(e),
        },
        Request::EvalTrace { ids, mode, names } => match s.eval_traced(&ids, mode, &names) {
            Ok((logits, tensors, data)) => {
                let head = Response::Traced {
                    n_tokens: ids.len() as u32,
                    n_vocab: s.n_vocab() as u32,
                    tensors,
                };
                let mut payload = protocol::f32_to_bytes(&logits);
                payload.extend(protocol::f32_to_bytes(&data));
                return (head, payload);
            }
            Err(e) => Err(e),
        },
        Request::Greedy { ids, mode, n } => s.greedy(&ids, mode, n as usize).map(|ids| Response::Ids { ids }),
        Request::SystemInfo | Request::Load { .. } => Err("internal: dispatched twice".into()),
    };
    (result.unwrap_or_else(|message| Response::Error { message }), Vec::new())
}
