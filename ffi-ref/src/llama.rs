//! Safe wrapper over the bindgen'd llama.h of BITNET_CPP_DIR, used only inside `parity-ref-worker`.
//!
//! Calls are written once; the `llama_new_*` / `llama_mem_*` cfgs emitted by `build.rs` pick each symbol
//! family's generation (bitnet.cpp's 2024 fork: all old; upstream llama.cpp: all new).

use std::ffi::{CStr, CString};

use crate::backend::{argmax, Mode};

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
    unsafe { CStr::from_ptr(p) }
        .to_string_lossy()
        .trim()
        .to_string()
}

/// A loaded model with one context: `n_batch = n_ubatch = n_ctx`, default (f16) KV cache, no flash-attn.
pub struct Session {
    model: *mut sys::llama_model,
    ctx: *mut sys::llama_context,
    n_vocab: usize,
    n_ctx: u32,
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
            };
            s.n_vocab = usize::try_from(s.vocab_size())
                .map_err(|_| "negative vocabulary size".to_string())?;
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
    pub fn tokenize(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>, String> {
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
            return Err(format!(
                "{} ids: need 1..={} (n_ctx)",
                toks.len(),
                self.n_ctx
            ));
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

    /// Evaluate `ids` per `mode`, then `n` greedy tokens (argmax, lowest id wins ties), one per decode.
    pub fn greedy(&mut self, ids: &[u32], mode: Mode, n: usize) -> Result<Vec<u32>, String> {
        if ids.len() + n > self.n_ctx as usize {
            return Err(format!(
                "{} ids + {n} new exceed n_ctx {}",
                ids.len(),
                self.n_ctx
            ));
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
                return Err(format!(
                    "llama_decode returned {rc} ({n} tokens at position {pos0})"
                ));
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
