//! `parity chat`: an interactive REPL; each turn is formatted incrementally with the chat template
//! (as llama-cli's `common_chat_format_single` does) and appended to the same KV cache.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use engine::generate::{generate, sampler};
use engine::tokenizer::chat::{format_single, ChatMessage, ChatTemplate};

use super::generate::SamplingArgs;
use crate::common::EngineArgs;

/// Arguments of `parity chat`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  parity chat model.gguf\n  parity chat model.gguf --system 'You are terse.' --template bitnet --greedy\n\nType a message and press Enter; /exit or end of input quits."
)]
pub struct Args {
    /// GGUF model file.
    pub model: PathBuf,
    /// Chat template: auto (as llama.cpp picks it), bitnet, llama3, chatml, raw.
    #[arg(long, default_value = "auto")]
    pub template: String,
    /// Optional system message.
    #[arg(long)]
    pub system: Option<String>,
    /// Tokens per reply at most.
    #[arg(short = 'n', long = "n-predict", default_value_t = 256)]
    pub n_predict: usize,
    /// Context size (history lives in the KV cache).
    #[arg(long, default_value_t = 2048)]
    pub ctx: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn main(a: Args) -> Result<ExitCode> {
    let ctx = a.engine.load(&a.model)?;
    let tok = ctx.tokenizer(None)?;
    let template = ChatTemplate::from_name(&a.template, tok.chat_template())?;
    let mut session = ctx.session(a.ctx)?;
    let mut s = sampler(a.sampling.params(), &tok);
    let mut history: Vec<ChatMessage> = Vec::new();
    let mut pending = String::new();
    if let Some(sys) = &a.system {
        let m = ChatMessage::new("system", sys);
        pending = format_single(template, &history, &m, false);
        history.push(m);
    }
    eprintln!(
        "parity chat: template {}, numerics {} (/exit to quit)",
        template.name(),
        ctx.numerics.label()
    );
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        eprint!("> ");
        let Some(line) = lines.next() else { break };
        let line = line?;
        if line.trim() == "/exit" {
            break;
        }
        let user = ChatMessage::new("user", &line);
        let text = pending.clone() + &format_single(template, &history, &user, true);
        history.push(user);
        let ids = tok.encode(&text, session.n_past() == 0, true)?;
        let mut out = std::io::stdout();
        let g = generate(
            &mut session,
            &tok,
            &ids,
            &mut s,
            &a.sampling.stop,
            a.n_predict,
            &mut |p| {
                let _ = out.write_all(p.as_bytes());
                let _ = out.flush();
            },
        )?;
        println!();
        history.push(ChatMessage::new("assistant", &g.text));
        pending.clear();
        if session.n_past() + 1 >= session.n_ctx() {
            eprintln!("[context full after {} tokens; start a new chat]", session.n_past());
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}
