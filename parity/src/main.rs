//! `parity`: prove a BitNet b1.58 engine correct.
//!
//! Each subcommand lives in its own module under `cmd/`; this file only wires them to clap and maps
//! outcomes to exit codes (0 pass, 1 gate failed, 2 usage or input error).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod cmd;
mod common;
mod harness;
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
/// other command-line tools, instead of panicking inside `println!`.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default at start-up, before any threads exist.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    restore_sigpipe();
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
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
