//! `parity chat`: an interactive REPL; each turn is formatted incrementally with the chat template
//! (as llama-cli's `common_chat_format_single` does) and appended to the same KV cache. Lines are edited
//! with rustyline (arrow keys, history); Ctrl-C stops a reply and keeps the session; a full context is
//! shifted as llama-cli shifts it ([`crate::converse`]) instead of ending the chat.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use rustyline::error::ReadlineError;

use engine::generate::sampler;
use engine::tokenizer::chat::{format_single, ChatMessage, ChatTemplate};

use super::generate::SamplingArgs;
use crate::common::{DeviceArgs, EngineArgs};
use crate::converse::{self, Conversation};

/// Arguments of `parity chat`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  parity chat model.gguf\n  parity chat model.gguf --system 'You are terse.' --template bitnet --greedy\n\nType a message and press Enter (arrow keys edit and recall); Ctrl-C stops a reply; /exit or Ctrl-D quits.\nA full context keeps the system message and discards the older half of the rest, as llama-cli does."
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
    /// Context size (history lives in the KV cache; when full, the older half of it is discarded).
    #[arg(long, default_value_t = 2048, value_parser = crate::limits::ctx)]
    pub ctx: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn main(a: Args) -> Result<ExitCode> {
    let ctx = a.engine.load(&a.model)?.on(&a.device)?;
    let tok = ctx.tokenizer(None)?;
    let template = ChatTemplate::from_name(&a.template, tok.chat_template())?;
    let mut conv = Conversation::new(ctx.session(a.ctx)?);
    let mut s = sampler(a.sampling.params(), &tok);
    let mut history: Vec<ChatMessage> = Vec::new();
    if let Some(sys) = &a.system {
        // The system message (and BOS) are the tokens a full context keeps, like llama-cli's --keep -1.
        let m = ChatMessage::new("system", sys);
        let ids = tok.encode(&format_single(template, &history, &m, false), true, true)?;
        conv.feed(&ids)?;
        conv.n_keep = conv.len();
        history.push(m);
    }
    let mut editor = rustyline::DefaultEditor::new()?;
    eprintln!(
        "parity chat: template {}, numerics {} (Ctrl-C stops a reply; /exit or Ctrl-D quits)",
        template.name(),
        ctx.numerics.label()
    );
    converse::catch_ctrl_c();
    loop {
        let line = match editor.readline("> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                eprintln!("(/exit or Ctrl-D quits)");
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        if line.trim() == "/exit" {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line.as_str());
        let user = ChatMessage::new("user", &line);
        let text = format_single(template, &history, &user, true);
        let ids = tok.encode(&text, conv.len() == 0, true)?;
        if conv.n_keep == 0 && tok.add_bos() && ids.first().is_some_and(|&t| Some(t) == tok.bos()) {
            // llama-cli always keeps the BOS token (`n_keep += add_bos`).
            conv.n_keep = 1;
        }
        let shifts = conv.shifts;
        let mut out = std::io::stdout();
        let r = converse::reply(&mut conv, &tok, &mut s, &ids, &a.sampling.stop, a.n_predict, &mut |p| {
            let _ = out.write_all(p.as_bytes());
            let _ = out.flush();
        });
        println!();
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                // The turn failed (e.g. a message longer than the context); the session goes on.
                eprintln!("error: {e:#}");
                continue;
            }
        };
        if r.interrupted {
            eprintln!("[stopped]");
        }
        if conv.shifts > shifts {
            eprintln!(
                "[context full: kept the first {} tokens and the newer half of the rest; {} in context now]",
                conv.n_keep,
                conv.len()
            );
        }
        history.push(user);
        history.push(ChatMessage::new("assistant", &r.text));
    }
    Ok(ExitCode::SUCCESS)
}
