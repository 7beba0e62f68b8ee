//! `parity record MODEL --tokens 1,2,3 [--mode batch|seq|both] [--threads N[,N]] [--ctx N] [--greedy N]
//! --out DIR`: record a reference directory from a live bitnet.cpp.
//!
//! The directory has `shared/reference`'s layout (`manifest.json`, one `<model>_p<N>_<mode>_t<T>.logits.npy`
//! per case, greedy ids in the manifest) and the manifest validates against `schemas/recorded-reference.v1.json`:
//! `schema_version`, `reference {generation, numerics_profile}` from the worker's llama.h API, per-case
//! `logits_sha256`, and string-valued provenance from the worker: BitNet and llama.cpp commits,
//! llama.h API generation, CMake flags and `llama_print_system_info`. Recording into a directory that
//! already has a manifest from the same build adds or replaces cases. Needs the `ffi` feature (or a
//! `parity-ref-worker` named by `--worker` / `PARITY_REF_WORKER`); otherwise exit 2.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;

use ffi_ref::{npy, sha256_hex, Ffi, FfiOptions, RecordedCase, ReferenceBackend};
use vocab::Mode;

use crate::common::parse_ids;
use crate::run::record::{check_prompts, merge, provenance_of, reference_of, traced_names};

/// Arguments of `parity record`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The GGUF model bitnet.cpp loads.
    pub model: PathBuf,
    /// Prompt token ids, comma-separated; repeat the flag for several prompts (distinct lengths).
    #[arg(long = "tokens", required = true)]
    pub tokens: Vec<String>,
    /// Decode the prompt in one batch, one token at a time, or both.
    #[arg(long, value_enum, default_value_t = ModeArg::Both)]
    pub mode: ModeArg,
    /// Thread counts, comma-separated (one worker each).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub threads: Vec<u32>,
    /// Context length (also n_batch and n_ubatch).
    #[arg(long, default_value_t = 128)]
    pub ctx: u32,
    /// Greedy tokens to record after each prompt.
    #[arg(long, default_value_t = 32)]
    pub greedy: usize,
    /// Output directory (created; an existing manifest from the same build is extended).
    #[arg(long)]
    pub out: PathBuf,
    /// Case-name prefix (default: the model file name without `.gguf`).
    #[arg(long)]
    pub name: Option<String>,
    /// Copy the model into the output directory too.
    #[arg(long)]
    pub copy_model: bool,
    /// The worker executable (default: next to this binary).
    #[arg(long, env = "PARITY_REF_WORKER")]
    pub worker: Option<PathBuf>,
    /// Also record each case's graph tensors (llama.cpp's eval callback) under traces/<case id>/.
    #[arg(long)]
    pub trace: bool,
    /// With --trace: keep only these layers, e.g. 0 (the output tensors are always kept).
    #[arg(long, value_delimiter = ',', requires = "trace")]
    pub trace_layers: Vec<usize>,
    /// Seconds allowed per request (and for loading the model).
    #[arg(long, default_value_t = ffi_ref::ffi::DEFAULT_TIMEOUT_SECS, value_parser = crate::limits::seconds)]
    pub timeout: u64,
}

/// `--mode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// One decode for the whole prompt.
    Batch,
    /// One decode per token.
    Seq,
    /// Both, as in shared/reference.
    Both,
}

impl ModeArg {
    fn modes(self) -> &'static [Mode] {
        match self {
            ModeArg::Batch => &[Mode::Batch],
            ModeArg::Seq => &[Mode::Seq],
            ModeArg::Both => &[Mode::Batch, Mode::Seq],
        }
    }
}

pub fn main(args: Args) -> Result<ExitCode> {
    if !ffi_ref::FFI_COMPILED && args.worker.is_none() {
        eprintln!(
            "error: parity record needs a live bitnet.cpp: rebuild with `cargo build --features ffi` and \
             BITNET_CPP_DIR set to a built bitnet.cpp checkout (see docs/ffi-ref.md), or name a \
             parity-ref-worker with --worker / PARITY_REF_WORKER"
        );
        return Ok(ExitCode::from(2));
    }
    let prompts = args.tokens.iter().map(|t| parse_ids(t)).collect::<Result<Vec<_>>>()?;
    check_prompts(&prompts, args.ctx, args.greedy)?;
    if args.threads.is_empty() || args.threads.contains(&0) {
        bail!("--threads needs positive counts");
    }
    let model_bytes = fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let model_sha256 = sha256_hex(&model_bytes);
    let model_name = args
        .model
        .file_name()
        .and_then(|n| n.to_str())
        .context("model path has no UTF-8 file name")?
        .to_string();
    let stem = match &args.name {
        Some(n) if n.is_empty() || n.contains('/') => {
            bail!("--name must be a plain non-empty name")
        }
        Some(n) => n.clone(),
        None => model_name.strip_suffix(".gguf").unwrap_or(&model_name).to_string(),
    };
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;

    let mut cases = Vec::new();
    let mut provenance = None;
    let mut reference = None;
    for &threads in &args.threads {
        let opts = FfiOptions {
            worker: args.worker.clone(),
            timeout: Duration::from_secs(args.timeout),
            load_timeout: Duration::from_secs(args.timeout),
            ..FfiOptions::new(&args.model, args.ctx, threads)
        };
        let mut ffi = Ffi::spawn(&opts)?;
        provenance.get_or_insert_with(|| provenance_of(ffi.system_info()));
        reference.get_or_insert_with(|| reference_of(ffi.system_info()));
        for ids in &prompts {
            for &mode in args.mode.modes() {
                let id = format!("{stem}_p{}_{mode}_t{threads}", ids.len());
                eprintln!("recording {id}");
                let logits = ffi.eval_logits(ids, mode).with_context(|| format!("case {id}"))?;
                let greedy_ids = ffi
                    .greedy(ids, mode, args.greedy)
                    .with_context(|| format!("case {id}"))?;
                if args.trace {
                    record_trace(&mut ffi, &args, ids, mode, &id)?;
                }
                let file = format!("{id}.logits.npy");
                let shape = [logits.n_tokens, logits.n_vocab];
                let npy_bytes = npy::encode_f32(&shape, &logits.data).map_err(|m| anyhow::anyhow!("case {id}: {m}"))?;
                let npy_path = args.out.join(&file);
                fs::write(&npy_path, &npy_bytes).with_context(|| format!("writing {}", npy_path.display()))?;
                cases.push(RecordedCase {
                    id,
                    model: model_name.clone(),
                    model_sha256: model_sha256.clone(),
                    prompt_len: ids.len(),
                    prompt_ids: ids.clone(),
                    mode,
                    threads,
                    n_ctx: args.ctx,
                    n_batch: Some(args.ctx),
                    n_ubatch: Some(args.ctx),
                    logits: file,
                    logits_shape: shape,
                    logits_sha256: Some(sha256_hex(&npy_bytes)),
                    recorded_as: None,
                    greedy_n: greedy_ids.len(),
                    greedy_ids,
                    reference_broken: None,
                });
            }
        }
    }
    let provenance = provenance.context("no worker was started")?;
    let reference = reference.context("no worker was started")?;
    let manifest = merge(&args.out, provenance, reference, &prompts, cases)?;
    let path = args.out.join("manifest.json");
    manifest
        .write(&args.out)
        .with_context(|| format!("writing {}", path.display()))?;
    if args.copy_model {
        let dest = args.out.join(&model_name);
        if dest != args.model {
            fs::write(&dest, &model_bytes).with_context(|| format!("writing {}", dest.display()))?;
        }
    }
    println!("{}: {} cases", path.display(), manifest.cases.len());
    Ok(ExitCode::SUCCESS)
}

/// Write the trace of one case (the layers `--trace-layers` keeps) beside its logits.
fn record_trace(ffi: &mut Ffi, args: &Args, ids: &[u32], mode: Mode, id: &str) -> Result<()> {
    let (_, tensors) = ffi
        .eval_trace(ids, mode, &traced_names())
        .with_context(|| format!("trace of case {id}"))?;
    let keep: Vec<_> = tensors
        .into_iter()
        .filter(|t| {
            let layer = ffi_ref::trace_store::layer_of(&t.name);
            args.trace_layers.is_empty() || layer.is_none_or(|l| args.trace_layers.contains(&l))
        })
        .collect();
    ffi_ref::trace_store::write(&args.out, id, &keep).with_context(|| format!("writing the trace of {id}"))?;
    Ok(())
}
