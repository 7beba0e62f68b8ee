//! Safe wrapper over the bindgen'd llama.h of BITNET_CPP_DIR, used only inside `parity-ref-worker`.
//!
//! Calls are written once; the `llama_new_*` / `llama_mem_*` cfgs emitted by `build.rs` pick each symbol
//! family's generation (bitnet.cpp's 2024 fork: all old; upstream llama.cpp: all new).

use std::collections::BTreeSet;
use std::ffi::{c_void, CStr, CString};

use crate::backend::{argmax, Mode};
use crate::protocol::TensorHeader;

#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    unsafe_op_in_unsafe_fn
)]
#[allow(clippy::all)]
mod sys {
    include!(concat!(env!("OUT_DIR"), "/llama_bindings.rs"));
}

/// `llama_print_system_info()`.
pub fn system_info() -> String {
    // SAFETY: returns a pointer to a static NUL-terminated buffer (or null).
    let p = unsafe { sys::llama_print_system_info() };
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-null, NUL-terminated, lives for the program.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().trim().to_string()
}

/// A loaded model with one context: `n_batch = n_ubatch = n_ctx`, default (f16) KV cache, no flash-attn.
pub struct Session {
    model: *mut sys::llama_model,
    ctx: *mut sys::llama_context,
    n_vocab: usize,
    n_ctx: u32,
    /// The eval callback's state; its address is the context's `cb_eval_user_data`, so it is boxed.
    trace: Box<TraceState>,
}

/// What the eval callback keeps while a traced evaluation runs.
#[derive(Default)]
struct TraceState {
    /// Base names (callback name without `-{layer}`) to keep; empty = tracing off.
    names: BTreeSet<String>,
    headers: Vec<TensorHeader>,
    data: Vec<f32>,
}

impl TraceState {
    fn wants(&self, name: &str) -> bool {
        let base = match name.rsplit_once('-') {
            Some((b, l)) if !b.is_empty() && !l.is_empty() && l.bytes().all(|c| c.is_ascii_digit()) => b,
            _ => name,
        };
        self.names.contains(base)
    }
}

/// The tensor's name as a string.
///
/// # Safety
/// `t` points to a live tensor.
unsafe fn tensor_name(t: *const sys::ggml_tensor) -> String {
    // SAFETY: `name` is a NUL-terminated fixed array inside the tensor.
    unsafe { CStr::from_ptr((*t).name.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// f16 bits to f32 (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            let shift = m.leading_zeros() - 21;
            sign | ((113 - shift) << 23) | (((m << shift) & 0x3ff) << 13)
        }
        (31, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// llama.cpp's `cb_eval`: asked first whether a tensor is wanted (`ask`), then called with it computed.
/// Keeps F32 and F16 tensors whose names the [`TraceState`] wants, made contiguous, as f32.
unsafe extern "C" fn eval_callback(t: *mut sys::ggml_tensor, ask: bool, user: *mut c_void) -> bool {
    if t.is_null() || user.is_null() {
        return true;
    }
    // SAFETY: `user` is the session's boxed TraceState, alive while its context is; `t` is a live tensor.
    let (state, name) = unsafe { (&mut *user.cast::<TraceState>(), tensor_name(t)) };
    if state.names.is_empty() || !state.wants(&name) {
        return !ask;
    }
    // SAFETY: as above; `type_`, `ne`, `nb` are plain fields.
    let (ty, ne, nb) = unsafe { ((*t).type_, (*t).ne, (*t).nb) };
    let size = match ty {
        sys::ggml_type_GGML_TYPE_F32 => 4,
        sys::ggml_type_GGML_TYPE_F16 => 2,
        _ => return !ask,
    };
    if ask {
        return true;
    }
    // SAFETY: ggml_nbytes spans every element of the (possibly strided) tensor; tensor_get copies that
    // range from whatever buffer holds it.
    let raw = unsafe {
        let n = sys::ggml_nbytes(t);
        let mut raw = vec![0u8; n];
        sys::ggml_backend_tensor_get(t, raw.as_mut_ptr().cast(), 0, n);
        raw
    };
    let ne_u: [u64; 4] = ne.map(|d| d.max(0) as u64);
    let nb_u: [usize; 4] = nb.map(|b| b as usize);
    let [n0, n1, n2, n3] = ne_u.map(|d| d as usize);
    for i3 in 0..n3 {
        for i2 in 0..n2 {
            for i1 in 0..n1 {
                for i0 in 0..n0 {
                    let off = i0 * nb_u[0] + i1 * nb_u[1] + i2 * nb_u[2] + i3 * nb_u[3];
                    let Some(b) = raw.get(off..off + size) else {
                        return true;
                    };
                    state.data.push(if size == 4 {
                        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
                    } else {
                        f16_to_f32(u16::from_le_bytes([b[0], b[1]]))
                    });
                }
            }
        }
    }
    state.headers.push(TensorHeader { name, ne: ne_u });
    true
}

impl Session {
    /// Load `path` and create the context.
    pub fn load(path: &str, n_ctx: u32, threads: u32) -> Result<Self, String> {
        let cpath = CString::new(path).map_err(|_| "model path contains NUL".to_string())?;
        let threads = i32::try_from(threads.max(1)).map_err(|_| "too many threads".to_string())?;
        // SAFETY: plain C calls with valid arguments; every pointer is checked before use.
        unsafe {
            sys::llama_backend_init();
            let mut mp = sys::llama_model_default_params();
            mp.n_gpu_layers = 0;
            #[cfg(llama_new_load)]
            let model = sys::llama_model_load_from_file(cpath.as_ptr(), mp);
            #[cfg(not(llama_new_load))]
            let model = sys::llama_load_model_from_file(cpath.as_ptr(), mp);
            if model.is_null() {
                return Err(format!("bitnet.cpp could not load {path}"));
            }
            let mut cp = sys::llama_context_default_params();
            cp.n_ctx = n_ctx;
            cp.n_batch = n_ctx;
            cp.n_ubatch = n_ctx;
            cp.n_seq_max = 1;
            cp.n_threads = threads;
            cp.n_threads_batch = threads;
            cp.no_perf = true;
            set_no_flash_attn(&mut cp);
            let mut trace = Box::<TraceState>::default();
            cp.cb_eval = Some(eval_callback);
            cp.cb_eval_user_data = std::ptr::from_mut::<TraceState>(&mut trace).cast();
            #[cfg(llama_new_context)]
            let ctx = sys::llama_init_from_model(model, cp);
            #[cfg(not(llama_new_context))]
            let ctx = sys::llama_new_context_with_model(model, cp);
            if ctx.is_null() {
                free_model(model);
                return Err(format!(
                    "bitnet.cpp could not create a context (n_ctx {n_ctx}) for {path}"
                ));
            }
            let mut s = Session {
                model,
                ctx,
                n_vocab: 0,
                n_ctx,
                trace,
            };
            s.n_vocab = usize::try_from(s.vocab_size()).map_err(|_| "negative vocabulary size".to_string())?;
            Ok(s)
        }
    }

    /// Vocabulary size.
    pub fn n_vocab(&self) -> usize {
        self.n_vocab
    }

    /// The context length asked for.
    pub fn n_ctx(&self) -> u32 {
        self.n_ctx
    }

    /// `llama_tokenize` (`add_special`, `parse_special`).
    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>, String> {
        let len = i32::try_from(text.len()).map_err(|_| "text too long".to_string())?;
        let mut buf = vec![0i32; text.len() + 8];
        for _ in 0..2 {
            let cap = i32::try_from(buf.len()).map_err(|_| "text too long".to_string())?;
            // SAFETY: `text` is valid for `len` bytes, `buf` for `cap` tokens.
            let n = unsafe {
                sys::llama_tokenize(
                    self.vocab(),
                    text.as_ptr().cast(),
                    len,
                    buf.as_mut_ptr(),
                    cap,
                    add_special,
                    parse_special,
                )
            };
            if n >= 0 {
                buf.truncate(n as usize);
                return Ok(buf.into_iter().map(|t| t as u32).collect());
            }
            buf.resize(n.unsigned_abs() as usize, 0);
        }
        Err("llama_tokenize kept asking for a larger buffer".into())
    }

    /// `llama_detokenize` (no specials removed, specials rendered).
    pub fn detokenize(&self, ids: &[u32]) -> Result<String, String> {
        let toks = self.tokens(ids)?;
        let n = i32::try_from(toks.len()).map_err(|_| "too many ids".to_string())?;
        let mut buf = vec![0u8; toks.len() * 16 + 64];
        for _ in 0..2 {
            let cap = i32::try_from(buf.len()).map_err(|_| "text too long".to_string())?;
            // SAFETY: `toks` valid for `n` tokens, `buf` for `cap` bytes.
            let got = unsafe {
                sys::llama_detokenize(
                    self.vocab(),
                    toks.as_ptr(),
                    n,
                    buf.as_mut_ptr().cast(),
                    cap,
                    false,
                    true,
                )
            };
            if got >= 0 {
                buf.truncate(got as usize);
                return Ok(String::from_utf8_lossy(&buf).into_owned());
            }
            buf.resize(got.unsigned_abs() as usize, 0);
        }
        Err("llama_detokenize kept asking for a larger buffer".into())
    }

    /// All-position logits of `ids` from an empty KV cache, `ids.len() * n_vocab` values.
    pub fn eval(&mut self, ids: &[u32], mode: Mode) -> Result<Vec<f32>, String> {
        let toks = self.tokens(ids)?;
        if toks.is_empty() || toks.len() > self.n_ctx as usize {
            return Err(format!("{} ids: need 1..={} (n_ctx)", toks.len(), self.n_ctx));
        }
        self.clear();
        let mut out = Vec::with_capacity(toks.len() * self.n_vocab);
        match mode {
            Mode::Batch => {
                self.decode(&toks, 0)?;
                for i in 0..toks.len() {
                    out.extend_from_slice(self.logits_row(i)?);
                }
            }
            Mode::Seq => {
                for (i, t) in toks.iter().enumerate() {
                    self.decode(std::slice::from_ref(t), i)?;
                    out.extend_from_slice(self.logits_row(0)?);
                }
            }
        }
        Ok(out)
    }

    /// [`Session::eval`] while the eval callback keeps the tensors whose base names are in `names`; returns
    /// the logits, then the tensors' headers and values in callback order.
    pub fn eval_traced(
        &mut self,
        ids: &[u32],
        mode: Mode,
        names: &[String],
    ) -> Result<(Vec<f32>, Vec<TensorHeader>, Vec<f32>), String> {
        *self.trace = TraceState {
            names: names.iter().cloned().collect(),
            ..TraceState::default()
        };
        let logits = self.eval(ids, mode);
        let state = std::mem::take(&mut *self.trace);
        Ok((logits?, state.headers, state.data))
    }

    /// Evaluate `ids` per `mode`, then `n` greedy tokens (argmax, lowest id wins ties), one per decode.
    pub fn greedy(&mut self, ids: &[u32], mode: Mode, n: usize) -> Result<Vec<u32>, String> {
        if ids.len() + n > self.n_ctx as usize {
            return Err(format!("{} ids + {n} new exceed n_ctx {}", ids.len(), self.n_ctx));
        }
        let prompt = self.eval(ids, mode)?;
        let mut last = prompt[prompt.len() - self.n_vocab..].to_vec();
        let mut out = Vec::with_capacity(n);
        for k in 0..n {
            let next = argmax(&last).ok_or("logits row is all NaN")?;
            out.push(next as u32);
            if k + 1 < n {
                let tok = i32::try_from(next).map_err(|_| "token id overflow".to_string())?;
                self.decode(&[tok], ids.len() + k)?;
                last = self.logits_row(0)?.to_vec();
            }
        }
        Ok(out)
    }

    fn tokens(&self, ids: &[u32]) -> Result<Vec<i32>, String> {
        ids.iter()
            .map(|&t| {
                if (t as usize) < self.n_vocab {
                    Ok(t as i32)
                } else {
                    Err(format!("token id {t} >= n_vocab {}", self.n_vocab))
                }
            })
            .collect()
    }

    /// One `llama_decode` of `toks` at positions `pos0..`, sequence 0, logits requested for every row.
    fn decode(&mut self, toks: &[i32], pos0: usize) -> Result<(), String> {
        let n = i32::try_from(toks.len()).map_err(|_| "batch too large".to_string())?;
        // SAFETY: llama_batch_init allocates n slots (with one seq id each) that are filled in bounds, then freed.
        unsafe {
            let mut b = sys::llama_batch_init(n, 0, 1);
            for (i, &t) in toks.iter().enumerate() {
                *b.token.add(i) = t;
                *b.pos.add(i) = (pos0 + i) as i32;
                *b.n_seq_id.add(i) = 1;
                **b.seq_id.add(i) = 0;
                *b.logits.add(i) = 1;
            }
            b.n_tokens = n;
            let rc = sys::llama_decode(self.ctx, b);
            sys::llama_batch_free(b);
            if rc != 0 {
                return Err(format!("llama_decode returned {rc} ({n} tokens at position {pos0})"));
            }
        }
        Ok(())
    }

    fn logits_row(&self, i: usize) -> Result<&[f32], String> {
        let idx = i32::try_from(i).map_err(|_| "row index overflow".to_string())?;
        // SAFETY: the context owns a buffer of n_vocab floats per output row; null means no such row.
        let p = unsafe { sys::llama_get_logits_ith(self.ctx, idx) };
        if p.is_null() {
            return Err(format!("no logits for row {i}"));
        }
        // SAFETY: non-null row of n_vocab floats, valid until the next decode (callers copy before that).
        Ok(unsafe { std::slice::from_raw_parts(p, self.n_vocab) })
    }

    fn clear(&mut self) {
        // SAFETY: ctx is a live context.
        unsafe {
            #[cfg(llama_mem_memory)]
            sys::llama_memory_clear(sys::llama_get_memory(self.ctx), true);
            #[cfg(llama_mem_kv_self)]
            sys::llama_kv_self_clear(self.ctx);
            #[cfg(not(any(llama_mem_memory, llama_mem_kv_self)))]
            sys::llama_kv_cache_clear(self.ctx);
        }
    }

    #[cfg(llama_new_vocab)]
    fn vocab(&self) -> *const sys::llama_vocab {
        // SAFETY: model is live.
        unsafe { sys::llama_model_get_vocab(self.model) }
    }

    #[cfg(not(llama_new_vocab))]
    fn vocab(&self) -> *const sys::llama_model {
        self.model
    }

    fn vocab_size(&self) -> i32 {
        // SAFETY: vocab()/model are live.
        unsafe {
            #[cfg(llama_new_vocab)]
            let n = sys::llama_vocab_n_tokens(self.vocab());
            #[cfg(not(llama_new_vocab))]
            let n = sys::llama_n_vocab(self.model);
            n
        }
    }
}

#[cfg(llama_flash_attn_type)]
fn set_no_flash_attn(cp: &mut sys::llama_context_params) {
    cp.flash_attn_type = sys::llama_flash_attn_type_LLAMA_FLASH_ATTN_TYPE_DISABLED;
}

#[cfg(not(llama_flash_attn_type))]
fn set_no_flash_attn(cp: &mut sys::llama_context_params) {
    cp.flash_attn = false;
}

/// # Safety
/// `model` must be a live model not used afterwards.
unsafe fn free_model(model: *mut sys::llama_model) {
    // SAFETY: per the contract.
    unsafe {
        #[cfg(llama_new_free)]
        sys::llama_model_free(model);
        #[cfg(not(llama_new_free))]
        sys::llama_free_model(model);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: both pointers are live and owned by this session.
        unsafe {
            sys::llama_free(self.ctx);
            free_model(self.model);
        }
    }
}
