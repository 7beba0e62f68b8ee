//! `parity`: prove a BitNet b1.58 engine correct.
//!
//! Each subcommand lives in its own module under `cmd/`; this file only wires them to clap and maps
//! outcomes to exit codes (0 pass, 1 gate failed, 2 usage or input error).

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod cmd;
mod common;
mod converse;
mod harness;
mod limits;
mod run;

/// Prove a BitNet b1.58 engine correct against bitnet.cpp: logits parity, receipts, benchmarks.
#[derive(Parser, Debug)]
#[command(name = "parity", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compare the engine with a reference (default: the bundled fixture and its recorded bitnet.cpp logits).
    Run(cmd::run::Args),
    /// Describe a GGUF file: metadata, hyper-parameters, tokenizer, every tensor and its flavor.
    Inspect(cmd::inspect::Args),
    /// Write all-position logits of a prompt as a float32 .npy array [n_tokens, n_vocab].
    Logits(cmd::logits::Args),
    /// Generate text from a prompt.
    Generate(cmd::generate::Args),
    /// Interactive chat with the model's template, history kept in the KV cache.
    Chat(cmd::chat::Args),
    /// Text to token ids.
    Tokenize(cmd::tokenize::Args),
    /// Token ids to text.
    Detokenize(cmd::tokenize::DetokenizeArgs),
    /// Check a receipt: schema, digests, then gates.
    Verify(cmd::verify::Args),
    /// Render a receipt as a self-contained HTML report with SVG plots.
    Report(cmd::report::Args),
    /// Write a deterministic tiny BitNet GGUF model.
    Fixture(cmd::fixture::Args),
    /// Record a reference directory from a live bitnet.cpp (needs the `ffi` feature).
    Record(cmd::record::Args),
    /// Benchmark prompt processing and generation (llama-bench definitions).
    Bench(cmd::bench::Args),
    /// Diff two receipts; exit 1 on regression.
    Compare(cmd::compare::Args),
    /// Rank numerics profiles and switches by how well they explain a reference's logits.
    Diagnose(cmd::diagnose::Args),
    /// Trace intermediate tensors of two computations and name the first that diverges.
    Trace(cmd::trace::Args),
}

/// Let a closed pipe (`parity inspect --json m.gguf | head`) end the process quietly, as it does for
/// other command-line tools, instead of panicking inside `println!`. Writes to the reference worker block
/// SIGPIPE on their own thread (`ffi_ref::ffi`), so a worker that stops reading is an error, not our death.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default at start-up, before any threads exist.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// `println!` panics when stdout cannot be written (a full disk, `> /dev/full`): say so and exit 2
/// instead of printing a panic and exiting 101.
fn stdout_errors_exit_cleanly() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if let Some(why) = msg.strip_prefix("failed printing to stdout: ") {
            eprintln!("error: cannot write to standard output: {why}");
            std::process::exit(2);
        }
        default(info);
    }));
}

/// An error and its causes, each said once: a cause whose text the message already holds is left out,
/// and a leading `path: ` that the message already names is dropped.
fn describe(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let mut text = cause.to_string();
        while let Some((head, rest)) = text.split_once(": ") {
            if !head.is_empty() && msg.contains(head) {
                text = rest.to_string();
            } else {
                break;
            }
        }
        if text.is_empty() || msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

fn main() -> ExitCode {
    restore_sigpipe();
    stdout_errors_exit_cleanly();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => cmd::run::main(a),
        Command::Inspect(a) => cmd::inspect::main(a),
        Command::Logits(a) => cmd::logits::main(a),
        Command::Generate(a) => cmd::generate::main(a),
        Command::Chat(a) => cmd::chat::main(a),
        Command::Tokenize(a) => cmd::tokenize::main(a),
        Command::Detokenize(a) => cmd::tokenize::detokenize(a),
        Command::Verify(a) => cmd::verify::main(a),
        Command::Report(a) => cmd::report::main(a),
        Command::Fixture(a) => cmd::fixture::main(a),
        Command::Record(a) => cmd::record::main(a),
        Command::Bench(a) => cmd::bench::main(a),
        Command::Compare(a) => cmd::compare::main(a),
        Command::Diagnose(a) => cmd::diagnose::main(a),
        Command::Trace(a) => cmd::trace::main(a),
    };
    let flushed = std::io::stdout().flush();
    match (result, flushed) {
        (Ok(_), Err(e)) => {
            eprintln!("error: cannot write to standard output: {e}");
            ExitCode::from(2)
        }
        (Ok(code), Ok(())) => code,
        (Err(e), _) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::describe;
    use anyhow::Context;

    #[test]
    fn causes_and_paths_are_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let inner = anyhow::Error::new(io).context("/x.json: entity not found");
        let e = Err::<(), _>(inner).context("reading /x.json").unwrap_err();
        assert_eq!(describe(&e), "reading /x.json: entity not found");
    }
}
