//! `parity diagnose`: rank numerics profiles and switches by how well they explain a reference's logits
//! (the ranking itself is [`crate::run::diagnose`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{ensure, Context, Result};
use vocab::Mode;

use crate::common::{mode_parser, EngineArgs, PromptArgs};
use crate::run::diagnose::{diagnose, Diagnosis};

/// Arguments of `parity diagnose`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Tries every profile and every single switch itself: --numerics and --switch are ignored.\n\
Exit status: 0 some candidate explains the reference (or it is a known reference bug, named in the verdict), \
1 none does, 2 bad input.\n\n\
Example:\n  parity diagnose model.gguf --tokens 1,2,3 --mode batch --against ref_logits.npy"
)]
pub struct Args {
    /// GGUF model file.
    pub model: PathBuf,
    #[command(flatten)]
    pub prompt: PromptArgs,
    #[arg(long, value_parser = mode_parser(), default_value = "batch")]
    pub mode: Mode,
    /// The reference's logits: float32 .npy of shape [n_tokens, n_vocab].
    #[arg(long)]
    pub against: PathBuf,
    /// Context size (KV cache cells).
    #[arg(long, default_value_t = 512, value_parser = crate::limits::ctx)]
    pub ctx: usize,
    /// Print the diagnosis as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Read a float32 `.npy` array (the strict reader shared with ffi-ref).
pub fn read_npy_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    ffi_ref::npy::read_f32(path).with_context(|| format!("{}: not a float32 .npy array", path.display()))
}

fn print_human(d: &Diagnosis) {
    println!(
        "{:<44} {:>6} {:>11} {:>12} {:>7}",
        "candidate", "exact", "max|Δ|", "min cosine", "top-1"
    );
    for c in &d.ranked {
        let exact = if c.exact { "yes" } else { "no" };
        println!(
            "{:<44} {:>6} {:>11.3e} {:>12.9} {:>3}/{:<3}",
            c.label, exact, c.max_abs_diff, c.min_cosine, c.top1_agree, c.positions
        );
    }
    println!("\nverdict: {}", d.verdict);
}

pub fn main(a: Args) -> Result<ExitCode> {
    let ctx = a.engine.load(&a.model)?;
    let tokens = a.prompt.resolve(&ctx)?;
    let (shape, reference) = read_npy_f32(&a.against)?;
    let n_vocab = ctx.model.hparams.n_vocab;
    ensure!(
        shape == [tokens.len(), n_vocab] || shape == [tokens.len() * n_vocab],
        "{}: shape {shape:?}, expected [{}, {n_vocab}] for {} tokens",
        a.against.display(),
        tokens.len(),
        tokens.len()
    );
    let d = diagnose(&ctx, &tokens, a.mode, a.ctx, &reference)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        print_human(&d);
    }
    Ok(if d.explained || d.reference_broken.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use ffi_ref::npy::parse_f32 as parse_npy_f32;

    fn npy(header: &str, body: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn npy_reader_is_strict() {
        let body: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let ok = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", &body);
        assert_eq!(parse_npy_f32(&ok).unwrap(), (vec![1, 2], vec![1.5, -2.0]));
        assert!(parse_npy_f32(&npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }",
            &body
        ))
        .is_err());
        assert!(parse_npy_f32(&npy(
            "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }",
            &body
        ))
        .is_err());
        assert!(parse_npy_f32(&npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }",
            &body
        ))
        .is_err());
        assert!(parse_npy_f32(&npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", &body)).is_ok());
        assert!(parse_npy_f32(b"\x93NUMPY\x01").is_err());
        assert!(parse_npy_f32(&ok[..ok.len() - 1]).is_err());
    }
}
