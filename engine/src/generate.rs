//! Text generation: prompt prefill in llama.cpp-sized ubatches, then sample → stream → stop.

use std::time::Instant;

use serde::Serialize;

use crate::model::{Logits, ModelError, Session};
use crate::sampling::{Sampler, SamplerParams, StopStrings};
use crate::tokenizer::{StreamDecoder, Tokenizer, TokenizerError};

/// llama-cli's default physical batch: longer prompts are split into ubatches of this many tokens.
pub const N_UBATCH: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// Sampling from NaN or infinite logits would print garbage (NUL text) and exit 0.
    #[error(
        "the model computed a non-finite logit ({value}) for token {token} at generation step {step}: its \
         weights or hyper-parameters are broken"
    )]
    NonFinite { value: f32, token: usize, step: usize },
}

/// Why generation ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// An end-of-generation token (EOS, EOT, ...) was sampled.
    EndOfGeneration,
    /// A `--stop` string appeared in the output.
    StopString(String),
    /// The token budget ran out.
    MaxTokens,
    /// The KV cache is full.
    ContextFull,
}

/// Prompt and generation timings.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timings {
    pub prompt_tokens: usize,
    pub prompt_ms: f64,
    pub generated_tokens: usize,
    pub generation_ms: f64,
}

impl Timings {
    pub fn prompt_tps(&self) -> f64 {
        rate(self.prompt_tokens, self.prompt_ms)
    }
    pub fn generation_tps(&self) -> f64 {
        rate(self.generated_tokens, self.generation_ms)
    }
}

fn rate(n: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        n as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

/// What one generation produced.
#[derive(Clone, Debug, Serialize)]
pub struct Generated {
    pub ids: Vec<u32>,
    pub text: String,
    pub stop: StopReason,
    pub timings: Timings,
}

/// Feed `prompt` (in ubatches of [`N_UBATCH`]) and return the logits of its last token.
pub fn prefill(session: &mut Session, prompt: &[u32]) -> Result<Vec<f32>, ModelError> {
    let mut last = Vec::new();
    for chunk in prompt.chunks(N_UBATCH) {
        last = session.decode(chunk, Logits::Last)?;
    }
    Ok(last)
}

/// Generate up to `max_tokens` after `prompt`, calling `on_text` with each printable piece.
/// The sampler has already accepted whatever history it should penalise.
pub fn generate(
    session: &mut Session,
    tok: &Tokenizer,
    prompt: &[u32],
    sampler: &mut Sampler,
    stops: &[String],
    max_tokens: usize,
    on_text: &mut dyn FnMut(&str),
) -> Result<Generated, GenerateError> {
    let t0 = Instant::now();
    let mut logits = prefill(session, prompt)?;
    let mut timings = Timings {
        prompt_tokens: prompt.len(),
        prompt_ms: t0.elapsed().as_secs_f64() * 1e3,
        ..Timings::default()
    };
    for &t in prompt {
        sampler.accept(t);
    }
    let t1 = Instant::now();
    let stop_strings = StopStrings::new(stops.to_vec(), 2);
    let mut stream = StreamDecoder::new();
    let (mut ids, mut text, mut printed) = (Vec::new(), String::new(), 0usize);
    let stop = loop {
        if ids.len() >= max_tokens {
            break StopReason::MaxTokens;
        }
        if let Some((token, &value)) = logits.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(GenerateError::NonFinite {
                value,
                token,
                step: ids.len(),
            });
        }
        let id = sampler.sample(&logits);
        sampler.accept(id);
        if tok.is_eog(id) {
            break StopReason::EndOfGeneration;
        }
        ids.push(id);
        let piece = stream.push(tok, id, false)?;
        text.push_str(&piece);
        if let Some((s, at)) = stop_strings.find(&text) {
            let s = s.to_string();
            text.truncate(at);
            if at > printed {
                on_text(&text[printed..]);
            }
            break StopReason::StopString(s);
        }
        on_text(&piece);
        printed = text.len();
        if session.n_past() + 1 > session.n_ctx() {
            break StopReason::ContextFull;
        }
        logits = session.decode(&[id], Logits::Last)?;
    };
    let rest = stream.finish();
    if !rest.is_empty() && !matches!(stop, StopReason::StopString(_)) {
        on_text(&rest);
        text.push_str(&rest);
    }
    timings.generated_tokens = ids.len();
    timings.generation_ms = t1.elapsed().as_secs_f64() * 1e3;
    Ok(Generated {
        ids,
        text,
        stop,
        timings,
    })
}

/// A sampler for greedy decoding when `temperature ≤ 0`, else the given settings.
pub fn sampler(params: SamplerParams, tok: &Tokenizer) -> Sampler {
    Sampler::new(SamplerParams {
        nl_token: tok.linefeed_id(),
        ..params
    })
}
