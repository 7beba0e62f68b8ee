//! A conversation that never runs out of context: when the KV cache is full it keeps the first `n_keep`
//! tokens and discards half of the rest, as llama-cli's context shifting does (examples/main/main.cpp:
//! `n_discard = (n_past - n_keep) / 2`). llama-cli then moves the kept cells with `llama_kv_cache_seq_add`
//! and re-rotates their K by RoPE; here the kept tokens are evaluated again from an empty cache, which
//! gives the same token window with the values a fresh evaluation of it gives.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Result};

use engine::generate::prefill;
use engine::model::Session;
use engine::sampling::{Sampler, StopStrings};
use engine::tokenizer::{StreamDecoder, Tokenizer};

/// Set by the SIGINT handler while a reply is being generated; the reply stops at the next token.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Route Ctrl-C to [`INTERRUPTED`] instead of ending the process.
pub fn catch_ctrl_c() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
}

/// Which tokens a full context keeps: the first `n_keep`, then the second half of the rest.
/// Returns the range to discard (llama-cli: `[n_keep, n_keep + (n_past - n_keep) / 2)`).
pub fn discard_range(n_past: usize, n_keep: usize) -> std::ops::Range<usize> {
    let n_keep = n_keep.min(n_past);
    let n_discard = (n_past - n_keep) / 2;
    n_keep..n_keep + n_discard
}

/// A session plus the tokens it holds.
pub struct Conversation<'m> {
    pub session: Session<'m>,
    tokens: Vec<u32>,
    /// Tokens never discarded (BOS and the system message).
    pub n_keep: usize,
    /// How many times the context was shifted.
    pub shifts: usize,
}

impl<'m> Conversation<'m> {
    pub fn new(session: Session<'m>) -> Self {
        Conversation {
            session,
            tokens: Vec::new(),
            n_keep: 0,
            shifts: 0,
        }
    }

    /// Tokens in the context.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Evaluate `ids` after what the context holds, shifting it first when they would not fit; returns
    /// the logits of the last id.
    pub fn feed(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        let n_ctx = self.session.n_ctx();
        if self.n_keep + ids.len() >= n_ctx {
            bail!(
                "{} new tokens do not fit a context of {n_ctx} (with {} kept); give a larger --ctx",
                ids.len(),
                self.n_keep
            );
        }
        while self.tokens.len() + ids.len() >= n_ctx {
            let r = discard_range(self.tokens.len(), self.n_keep);
            if r.is_empty() {
                self.tokens.truncate(self.n_keep);
            } else {
                self.tokens.drain(r);
            }
            self.shifts += 1;
            self.session.clear()?;
            if !self.tokens.is_empty() {
                prefill(&mut self.session, &self.tokens)?;
            }
        }
        let logits = prefill(&mut self.session, ids)?;
        self.tokens.extend_from_slice(ids);
        Ok(logits)
    }
}

/// One reply: what was generated and whether Ctrl-C cut it short.
pub struct Reply {
    pub text: String,
    pub interrupted: bool,
}

/// Sample up to `n_predict` tokens after `ids`, printing each piece; stops at an end-of-generation token, a
/// stop string or Ctrl-C. The context shifts as needed, so the reply never ends for lack of room.
pub fn reply(
    conv: &mut Conversation,
    tok: &Tokenizer,
    sampler: &mut Sampler,
    ids: &[u32],
    stops: &[String],
    n_predict: usize,
    print: &mut dyn FnMut(&str),
) -> Result<Reply> {
    INTERRUPTED.store(false, Ordering::SeqCst);
    let mut logits = conv.feed(ids)?;
    for &t in ids {
        sampler.accept(t);
    }
    let stop_strings = StopStrings::new(stops.to_vec(), 2);
    let mut stream = StreamDecoder::new();
    let (mut text, mut printed) = (String::new(), 0usize);
    for _ in 0..n_predict {
        if INTERRUPTED.load(Ordering::SeqCst) {
            break;
        }
        if let Some(bad) = logits.iter().find(|v| !v.is_finite()) {
            bail!("the model computed a non-finite logit ({bad}): its weights or hyper-parameters are broken");
        }
        let id = sampler.sample(&logits);
        sampler.accept(id);
        if tok.is_eog(id) {
            break;
        }
        let piece = stream.push(tok, id, false)?;
        text.push_str(&piece);
        if let Some((_, at)) = stop_strings.find(&text) {
            text.truncate(at);
            if at > printed {
                print(&text[printed..]);
            }
            return Ok(Reply {
                text,
                interrupted: false,
            });
        }
        print(&piece);
        printed = text.len();
        logits = conv.feed(&[id])?;
    }
    let rest = stream.finish();
    print(&rest);
    text.push_str(&rest);
    Ok(Reply {
        text,
        interrupted: INTERRUPTED.swap(false, Ordering::SeqCst),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discards_half_of_what_follows_the_kept_tokens() {
        // llama-cli: n_past 100, n_keep 10 → n_left 90, n_discard 45: [10, 55) goes.
        assert_eq!(discard_range(100, 10), 10..55);
        assert_eq!(discard_range(100, 0), 0..50);
        assert_eq!(discard_range(11, 10), 10..10);
        assert_eq!(discard_range(5, 10), 5..5);
    }
}
