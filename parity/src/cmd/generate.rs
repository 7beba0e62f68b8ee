//! `parity generate`: text from a prompt, streamed, with llama-cli's sampling chain.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use engine::generate::{generate, sampler};
use engine::sampling::SamplerParams;
use engine::tokenizer::chat::{ChatMessage, ChatTemplate};

use crate::common::{DeviceArgs, EngineArgs};

/// Sampling options shared by `generate` and `chat` (defaults: llama-cli's).
#[derive(clap::Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Temperature (≤ 0, negative included: greedy).
    #[arg(long = "temp", default_value_t = 0.8, allow_negative_numbers = true,
          value_parser = crate::limits::temperature)]
    pub temperature: f32,
    /// Greedy decoding (same as --temp 0).
    #[arg(long)]
    pub greedy: bool,
    /// Keep the k most likely tokens (≤ 0: all).
    #[arg(long, default_value_t = 40, allow_negative_numbers = true)]
    pub top_k: i32,
    /// Nucleus sampling, in (0, 1] (1: off).
    #[arg(long, default_value_t = 0.95, value_parser = crate::limits::top_p)]
    pub top_p: f32,
    /// Minimum probability relative to the most likely token, in [0, 1] (0: off).
    #[arg(long, default_value_t = 0.05, value_parser = crate::limits::min_p)]
    pub min_p: f32,
    /// Repeat penalty over the last --repeat-last-n tokens (1.0: off).
    #[arg(long, default_value_t = 1.0, value_parser = crate::limits::penalty)]
    pub repeat_penalty: f32,
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: usize,
    /// RNG seed (same seed, same logits ⇒ same tokens, for any thread count).
    #[arg(long, default_value_t = 0)]
    pub seed: u32,
    /// Stop when this string appears in the output (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
}

impl SamplingArgs {
    pub fn params(&self) -> SamplerParams {
        SamplerParams {
            temperature: if self.greedy { 0.0 } else { self.temperature },
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
            seed: self.seed,
            ..SamplerParams::default()
        }
    }
}

/// Arguments of `parity generate`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  parity generate fixtures/reference/trained/tiny-trained-b158.i2_s.gguf --prompt 'def ' -n 64 --greedy\n  parity generate model.gguf --prompt 'Hello' --template auto --temp 0.7 --seed 42 --json"
)]
pub struct Args {
    /// GGUF model file.
    pub model: PathBuf,
    /// Prompt text.
    #[arg(long)]
    pub prompt: String,
    /// Tokens to generate at most.
    #[arg(short = 'n', long = "n-predict", default_value_t = 128)]
    pub n_predict: usize,
    /// Chat template to wrap the prompt in as one user turn: raw (none), auto, bitnet, llama3, chatml.
    #[arg(long, default_value = "raw")]
    pub template: String,
    /// Context size (default 2048, or the prompt plus one if longer); must hold the prompt and one token.
    #[arg(long, value_parser = crate::limits::ctx)]
    pub ctx: Option<usize>,
    /// Use this tokenizer.json instead of the GGUF's vocabulary.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Print prompt ids, generated ids, text and timings as JSON instead of streaming.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn main(a: Args) -> Result<ExitCode> {
    let ctx = a.engine.load(&a.model)?.on(&a.device)?;
    let tok = ctx.tokenizer(a.tokenizer.as_deref())?;
    let template = ChatTemplate::from_name(&a.template, tok.chat_template())?;
    let text = match template {
        ChatTemplate::Raw => a.prompt.clone(),
        t => t.apply(&[ChatMessage::new("user", &a.prompt)], true),
    };
    let prompt = tok.encode(&text, true, true)?;
    anyhow::ensure!(!prompt.is_empty(), "the prompt tokenizes to no tokens");
    let n_ctx = a.ctx.unwrap_or(2048.max(prompt.len() + 1));
    crate::limits::check_ctx(prompt.len(), 1, n_ctx)?;
    let mut session = ctx.session(n_ctx)?;
    let mut s = sampler(a.sampling.params(), &tok);
    let stdout = std::io::stdout();
    let mut print = |piece: &str| {
        if !a.json {
            let mut out = stdout.lock();
            let _ = out.write_all(piece.as_bytes());
            let _ = out.flush();
        }
    };
    if !a.json {
        print(&a.prompt);
    }
    let g = generate(
        &mut session,
        &tok,
        &prompt,
        &mut s,
        &a.sampling.stop,
        a.n_predict,
        &mut print,
    )?;
    let t = &g.timings;
    if a.json {
        let doc = serde_json::json!({
            "prompt_ids": prompt,
            "generated_ids": g.ids,
            "text": g.text,
            "stop": g.stop,
            "timings": t,
            "prompt_tokens_per_second": t.prompt_tps(),
            "generation_tokens_per_second": t.generation_tps(),
            "numerics": ctx.numerics.label(),
            "kernels": ctx.disp.log(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!();
        eprintln!(
            "\n[{} prompt tokens at {:.1} tok/s, {} generated at {:.1} tok/s; stop: {:?}]",
            t.prompt_tokens,
            t.prompt_tps(),
            t.generated_tokens,
            t.generation_tps(),
            g.stop
        );
    }
    Ok(ExitCode::SUCCESS)
}
