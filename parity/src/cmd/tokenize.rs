//! `parity tokenize MODEL (--prompt TEXT | --file F) [--no-bos] [--no-parse-special] [--json]
//! [--tokenizer tokenizer.json]` and `parity detokenize MODEL --ids 1,2,3 [--tokenizer F]`.
//!
//! Defaults are llama-tokenize's, which produced shared/reference/tokenizer.json: BOS (and EOS) as the
//! vocabulary's add_bos_token/add_eos_token say, special-token texts parsed into their ids.
//! `--json` prints `{"ids", "n_tokens", "tokenizer_sha256", "pieces"}`; otherwise ids comma-separated.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;

use engine::tokenizer::Tokenizer;

use crate::common::parse_ids;

/// Arguments of `parity tokenize`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["prompt", "file"])))]
pub struct Args {
    /// The GGUF model (or a tokenizer.json).
    pub model: PathBuf,
    /// Text to tokenize.
    #[arg(long, short = 'p')]
    pub prompt: Option<String>,
    /// Read the text from this file (UTF-8).
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// Do not add BOS/EOS even if the vocabulary asks for them.
    #[arg(long)]
    pub no_bos: bool,
    /// Treat special-token texts such as <|eot_id|> as plain text.
    #[arg(long)]
    pub no_parse_special: bool,
    /// Print a JSON object with ids, count, tokenizer hash and pieces.
    #[arg(long)]
    pub json: bool,
    /// Use this tokenizer.json instead of the GGUF's vocabulary.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
}

/// Arguments of `parity detokenize`.
#[derive(clap::Args, Debug)]
pub struct DetokenizeArgs {
    /// The GGUF model (or a tokenizer.json).
    pub model: PathBuf,
    /// Token ids, comma-separated.
    #[arg(long)]
    pub ids: String,
    /// Print control tokens (e.g. <|eot_id|>) as nothing, as generated text is shown.
    #[arg(long)]
    pub no_special: bool,
    /// Print a JSON object with the text and each token's piece.
    #[arg(long)]
    pub json: bool,
    /// Use this tokenizer.json instead of the GGUF's vocabulary.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
}

fn load(model: &std::path::Path, tokenizer: Option<&std::path::Path>) -> Result<Tokenizer> {
    Tokenizer::load(model, tokenizer).with_context(|| format!("loading the tokenizer of {}", model.display()))
}

pub fn main(args: Args) -> Result<ExitCode> {
    let text = match (&args.prompt, &args.file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
        (None, None) => unreachable!("clap requires --prompt or --file"),
    };
    let tok = load(&args.model, args.tokenizer.as_deref())?;
    let ids = tok.encode(&text, !args.no_bos, !args.no_parse_special)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = json!({
            "ids": ids,
            "n_tokens": ids.len(),
            "tokenizer_sha256": tok.sha256(),
            "pieces": tok.pieces(&ids, true)?,
        });
        writeln!(out, "{doc}")?;
    } else {
        let list: Vec<String> = ids.iter().map(u32::to_string).collect();
        writeln!(out, "{}", list.join(","))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn detokenize(args: DetokenizeArgs) -> Result<ExitCode> {
    let ids = parse_ids(&args.ids)?;
    let tok = load(&args.model, args.tokenizer.as_deref())?;
    let special = !args.no_special;
    let text = tok.decode(&ids, special)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = json!({
            "text": text,
            "n_tokens": ids.len(),
            "tokenizer_sha256": tok.sha256(),
            "pieces": tok.pieces(&ids, special)?,
        });
        writeln!(out, "{doc}")?;
    } else {
        writeln!(out, "{text}")?;
    }
    Ok(ExitCode::SUCCESS)
}
