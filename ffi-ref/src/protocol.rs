//! The worker protocol: one request frame in, one response frame out, over the worker's stdin/stdout.
//!
//! A frame is `u32` header length, `u64` payload length (both little-endian), the JSON header, then the
//! payload: raw little-endian `f32`s for [`Response::Logits`], empty otherwise.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use crate::backend::Mode;

/// Largest JSON header accepted (16 MiB).
pub const MAX_HEADER: usize = 16 << 20;
/// Largest payload accepted (8 GiB).
pub const MAX_PAYLOAD: u64 = 8 << 30;

/// What the harness asks of the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Build information; valid before `Load`.
    SystemInfo,
    /// Load a GGUF and create one context (`n_batch = n_ubatch = n_ctx`, f16 KV cache, no flash-attn).
    Load {
        /// GGUF path.
        model: String,
        /// Context length.
        n_ctx: u32,
        /// Threads for both single-token and batch decodes.
        threads: u32,
    },
    /// Text to ids (`llama_tokenize`; `add_bos` is its `add_special`).
    Tokenize {
        /// The text.
        text: String,
        /// Let the model's config add BOS/EOS.
        add_bos: bool,
        /// Parse special-token strings such as `<|begin_of_text|>`.
        parse_special: bool,
    },
    /// Ids to text (`llama_detokenize`, specials rendered, none removed).
    Detokenize {
        /// Token ids.
        ids: Vec<u32>,
    },
    /// All-position logits of one sequence starting from an empty KV cache.
    EvalLogits {
        /// Prompt ids.
        ids: Vec<u32>,
        /// One decode for all ids, or one per id.
        mode: Mode,
    },
    /// Like [`Request::EvalLogits`], also streaming back the graph tensors llama.cpp's eval callback
    /// (`cb_eval`) sees whose name, without its `-{layer}` suffix, is in `names`.
    EvalTrace {
        /// Prompt ids.
        ids: Vec<u32>,
        /// One decode for all ids, or one per id.
        mode: Mode,
        /// Callback base names to keep (`attn_norm`, `ffn_sqr(relu)`, `result_output`, ...).
        names: Vec<String>,
    },
    /// Evaluate `ids` as `mode` says, then generate `n` tokens greedily, one per decode.
    Greedy {
        /// Prompt ids.
        ids: Vec<u32>,
        /// How the prompt is decoded.
        mode: Mode,
        /// Tokens to generate.
        n: u32,
    },
}

impl Request {
    /// The request's name, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            Request::SystemInfo => "system_info",
            Request::Load { .. } => "load",
            Request::Tokenize { .. } => "tokenize",
            Request::Detokenize { .. } => "detokenize",
            Request::EvalLogits { .. } => "eval_logits",
            Request::EvalTrace { .. } => "eval_trace",
            Request::Greedy { .. } => "greedy",
        }
    }
}

/// What the worker answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Response {
    /// Answer to [`Request::SystemInfo`].
    SystemInfo(SystemInfo),
    /// Answer to [`Request::Load`].
    Loaded {
        /// Vocabulary size (logit row length).
        n_vocab: u32,
        /// Context length actually allocated.
        n_ctx: u32,
    },
    /// Answer to [`Request::Tokenize`] and [`Request::Greedy`].
    Ids {
        /// Token ids.
        ids: Vec<u32>,
    },
    /// Answer to [`Request::Detokenize`].
    Text {
        /// The text (lossy UTF-8 if the pieces were not valid UTF-8).
        text: String,
    },
    /// Answer to [`Request::EvalLogits`]; the payload holds `n_tokens * n_vocab` f32s, row-major.
    Logits {
        /// Rows.
        n_tokens: u32,
        /// Columns.
        n_vocab: u32,
    },
    /// Answer to [`Request::EvalTrace`]: the payload holds the logits as for [`Response::Logits`], then each
    /// tensor's f32 values in callback order.
    Traced {
        /// Rows of logits.
        n_tokens: u32,
        /// Columns of logits.
        n_vocab: u32,
        /// The tensors, in the order the callback saw them.
        tensors: Vec<TensorHeader>,
    },
    /// The request failed; the worker stays usable.
    Error {
        /// What went wrong.
        message: String,
    },
}

/// One traced tensor of a [`Response::Traced`] payload: `ne[0]*ne[1]*ne[2]*ne[3]` f32s, `ne[0]` fastest
/// (ggml's order; f16 tensors are widened, views made contiguous).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorHeader {
    /// The callback name, e.g. `attn_norm-0` or `result_output`.
    pub name: String,
    /// ggml's `ne`.
    pub ne: [u64; 4],
}

impl TensorHeader {
    /// Number of values.
    pub fn len(&self) -> u64 {
        self.ne.iter().product()
    }

    /// Whether it holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Build facts the worker was compiled with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// `llama_print_system_info()`.
    pub system_info: String,
    /// BITNET_CPP_DIR at build time.
    pub dir: String,
    /// `git rev-parse HEAD` of that directory, or `unknown`.
    pub commit: String,
    /// Same for its llama.cpp (3rdparty/llama.cpp), or `unknown`.
    pub llama_commit: String,
    /// Per symbol family: `load=old,context=old,free=old,vocab=old,memory=kv_cache`.
    pub api: String,
    /// Numerics-relevant CMake cache entries, `KEY=VALUE;...`.
    pub build_flags: String,
}

impl SystemInfo {
    /// For a library built for aarch64 (`NEON = 1` in `llama_print_system_info()`, from the fork's
    /// `ggml_cpu_has_neon()`), the ggml features that decide its float arithmetic, e.g.
    /// `aarch64: NEON = 1 | FP16_VA = 1` (`ggml_cpu_has_fp16_va()`); `None` for other builds. DOTPROD changes
    /// no value (the I2_S integer sums are exact either way), so it is not reported.
    pub fn arm_build(&self) -> Option<String> {
        let flag = |name: &str| {
            self.system_info
                .split('|')
                .map(str::trim)
                .find_map(|f| f.strip_prefix(name)?.trim_start().strip_prefix('=').map(str::trim))
                .map(|v| v == "1")
        };
        if flag("NEON") != Some(true) {
            return None;
        }
        let fp16 = u8::from(flag("FP16_VA") == Some(true));
        Some(format!("aarch64: NEON = 1 | FP16_VA = {fp16}"))
    }
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame<T> {
    /// The JSON header.
    pub header: T,
    /// The raw payload.
    pub payload: Vec<u8>,
}

/// Write one frame and flush.
pub fn write_frame<T: Serialize>(w: &mut impl Write, header: &T, payload: &[u8]) -> io::Result<()> {
    let json = serde_json::to_vec(header).map_err(io::Error::other)?;
    let hlen = u32::try_from(json.len()).map_err(|_| io::Error::other("header too large"))?;
    w.write_all(&hlen.to_le_bytes())?;
    w.write_all(&(payload.len() as u64).to_le_bytes())?;
    w.write_all(&json)?;
    w.write_all(payload)?;
    w.flush()
}

/// Read one frame. `Ok(None)` on a clean end of stream before the first byte.
pub fn read_frame<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> io::Result<Option<Frame<T>>> {
    let mut lens = [0u8; 12];
    let mut got = 0;
    while got < lens.len() {
        match r.read(&mut lens[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let hlen = u32::from_le_bytes([lens[0], lens[1], lens[2], lens[3]]) as usize;
    let plen = u64::from_le_bytes([lens[4], lens[5], lens[6], lens[7], lens[8], lens[9], lens[10], lens[11]]);
    if hlen > MAX_HEADER || plen > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame too large: header {hlen}, payload {plen}"),
        ));
    }
    let json = read_exact_len(r, hlen as u64)?;
    let header = serde_json::from_slice(&json).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let payload = read_exact_len(r, plen)?;
    Ok(Some(Frame { header, payload }))
}

/// Exactly `n` bytes, with memory growing as they arrive: a length prefix alone (a corrupt or hostile
/// frame) never makes us allocate gigabytes up front.
fn read_exact_len(r: &mut impl Read, n: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n.min(1 << 20) as usize);
    r.take(n).read_to_end(&mut buf)?;
    if (buf.len() as u64) < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(buf)
}

/// f32s as little-endian bytes.
pub fn f32_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian bytes as f32s; `None` unless the length is a multiple of 4.
pub fn bytes_to_f32(b: &[u8]) -> Option<Vec<f32>> {
    b.len().is_multiple_of(4).then(|| {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_info_names_the_arm_build() {
        let info = |s: &str| SystemInfo {
            system_info: s.into(),
            dir: String::new(),
            commit: String::new(),
            llama_commit: String::new(),
            api: String::new(),
            build_flags: String::new(),
        };
        let arm = "AVX = 0 | AVX2 = 0 | NEON = 1 | ARM_FMA = 1 | F16C = 0 | FP16_VA = 1 | MATMUL_INT8 = 0 | SVE = 0 | ";
        assert_eq!(
            info(arm).arm_build().as_deref(),
            Some("aarch64: NEON = 1 | FP16_VA = 1")
        );
        let plain = arm.replace("FP16_VA = 1", "FP16_VA = 0");
        assert_eq!(
            info(&plain).arm_build().as_deref(),
            Some("aarch64: NEON = 1 | FP16_VA = 0")
        );
        assert_eq!(info("AVX = 1 | AVX2 = 1 | NEON = 0 | FP16_VA = 0 | ").arm_build(), None);
    }

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        let req = Request::EvalLogits {
            ids: vec![1, 2, 3],
            mode: Mode::Seq,
        };
        write_frame(&mut buf, &req, &[]).unwrap();
        let logits = [1.5f32, -0.0, f32::MIN_POSITIVE];
        write_frame(
            &mut buf,
            &Response::Logits {
                n_tokens: 1,
                n_vocab: 3,
            },
            &f32_to_bytes(&logits),
        )
        .unwrap();
        let mut r = buf.as_slice();
        let f: Frame<Request> = read_frame(&mut r).unwrap().unwrap();
        assert_eq!(f.header, req);
        let f: Frame<Response> = read_frame(&mut r).unwrap().unwrap();
        assert_eq!(
            f.header,
            Response::Logits {
                n_tokens: 1,
                n_vocab: 3
            }
        );
        let back = bytes_to_f32(&f.payload).unwrap();
        assert_eq!(
            back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            logits.map(f32::to_bits)
        );
        assert!(read_frame::<Response>(&mut r).unwrap().is_none());
    }

    #[test]
    fn header_is_tagged_json() {
        let mut buf = Vec::new();
        write_frame(
            &mut buf,
            &Request::Load {
                model: "m.gguf".into(),
                n_ctx: 128,
                threads: 2,
            },
            &[],
        )
        .unwrap();
        let json = std::str::from_utf8(&buf[12..]).unwrap();
        assert_eq!(json, r#"{"op":"load","model":"m.gguf","n_ctx":128,"threads":2}"#);
    }

    #[test]
    fn truncated_and_oversized_frames_are_errors() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Request::SystemInfo, &[]).unwrap();
        assert!(read_frame::<Request>(&mut &buf[..buf.len() - 1]).is_err());
        let mut huge = (u32::MAX).to_le_bytes().to_vec();
        huge.extend_from_slice(&0u64.to_le_bytes());
        assert!(read_frame::<Request>(&mut huge.as_slice()).is_err());
    }

    #[test]
    fn a_large_length_prefix_without_the_bytes_is_eof_not_an_allocation() {
        // Header `{}`-sized, payload claimed 8 GiB (the limit), no payload bytes.
        let mut frame = 2u32.to_le_bytes().to_vec();
        frame.extend_from_slice(&MAX_PAYLOAD.to_le_bytes());
        frame.extend_from_slice(b"{}");
        let err = read_frame::<serde_json::Value>(&mut frame.as_slice()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
