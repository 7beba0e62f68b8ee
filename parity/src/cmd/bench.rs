//! `parity bench`: prompt processing and generation throughput with llama-bench's definitions
//! (spec §9), optionally side by side with bitnet.cpp's own llama-bench, interleaved.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::bench::{reference, run_test, BenchRow, TestKind};
use crate::common::{DeviceArgs, EngineArgs};

/// Arguments of `parity bench`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  parity bench model.gguf -p 128 -n 128 -r 5 --threads 1,2\n  BITNET_CPP_DIR=~/BitNet parity bench model.gguf --reference ffi --json\n  BITNET_CPP_DIR=~/BitNet parity bench model.gguf --reference ffi --mmap   # both engines on memory-mapped weights\n  parity bench model.gguf --kernel avx512 -n 0   # prefill on VNNI instead of AMX tiles, to compare\n  parity bench model.gguf --device cuda          # needs a build with --features cuda and an NVIDIA driver"
)]
pub struct Args {
    /// GGUF model file.
    pub model: PathBuf,
    /// Prompt lengths to test (pp tests; 0 disables).
    #[arg(short = 'p', long = "n-prompt", value_delimiter = ',', default_value = "128")]
    pub n_prompt: Vec<usize>,
    /// Generation lengths to test (tg tests; 0 disables).
    #[arg(short = 'n', long = "n-gen", value_delimiter = ',', default_value = "128")]
    pub n_gen: Vec<usize>,
    /// Repetitions per test (after one warm-up run).
    #[arg(short = 'r', long, default_value_t = 5)]
    pub reps: usize,
    /// Thread counts to test, comma-separated.
    #[arg(long = "threads", value_delimiter = ',', default_value = "2", value_parser = crate::limits::threads)]
    pub thread_list: Vec<usize>,
    /// Also measure bitnet.cpp's llama-bench from BITNET_CPP_DIR, interleaved with ours.
    #[arg(long, value_parser = ["ffi"])]
    pub reference: Option<String>,
    /// Print rows as JSON with llama-bench's field names.
    #[arg(long)]
    pub json: bool,
    /// Write a bench receipt here.
    #[arg(long)]
    pub receipt: Option<PathBuf>,
    /// Kernel family: auto, scalar, avx2, avx512 (VNNI prefill) or amx (AMX-INT8 prefill) (also PARITY_KERNEL).
    #[arg(long, default_value = "auto")]
    pub kernel: String,
    /// Numerics profile (auto, bitnet.cpp-2025, bitnet.cpp-2026, llama.cpp).
    #[arg(long, default_value = "auto")]
    pub numerics: String,
    /// Compute from the memory-mapped file instead of copying the weights into huge-page-backed memory.
    /// With `--reference ffi`, llama-bench gets the matching placement (`-mmp 1` with this flag, else `-mmp 0`).
    #[arg(long)]
    pub mmap: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn main(a: Args) -> Result<ExitCode> {
    if a.reps == 0 {
        bail!("--reps must be at least 1");
    }
    let engine = EngineArgs {
        threads: 1,
        kernel: a.kernel.clone(),
        numerics: a.numerics.clone(),
        switch: Vec::new(),
        i2s_layout: None,
        tl_config: None,
        mmap: a.mmap,
    };
    let ctx = engine.load(&a.model)?.on(&a.device)?;
    let llama_bench = match a.reference.as_deref() {
        Some(_) => Some(reference::find_llama_bench()?),
        None => None,
    };
    let mut tests = Vec::new();
    for &t in &a.thread_list {
        for &p in a.n_prompt.iter().filter(|&&p| p > 0) {
            tests.push((TestKind::Prompt(p), t));
        }
        for &n in a.n_gen.iter().filter(|&&n| n > 0) {
            tests.push((TestKind::Gen(n), t));
        }
    }
    let bar = ProgressBar::new(tests.len() as u64 * if llama_bench.is_some() { 2 } else { 1 });
    bar.set_style(
        ProgressStyle::with_template("{spinner} bench [{bar:30}] {pos}/{len} {msg}").context("progress style")?,
    );
    let mut rows: Vec<BenchRow> = Vec::new();
    for (kind, threads) in tests {
        bar.set_message(format!("ours {} t{threads}", kind.name()));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build()
            .context("thread pool")?;
        let mut row = pool.install(|| run_test(&ctx, &a.model, kind, threads, a.reps))?;
        // The read probe measures host memory: meaningless for weights on a device.
        if kind.n_gen() > 0 && ctx.cuda.is_none() {
            let (bytes, gbs) = pool.install(|| crate::bench::weight_read_probe(&ctx));
            row.weight_bytes_per_token = Some(bytes);
            row.read_probe_gbs = Some(gbs);
        }
        bar.inc(1);
        if let Some(lb) = &llama_bench {
            bar.set_message(format!("bitnet.cpp {} t{threads}", kind.name()));
            let theirs = reference::run_llama_bench(lb, &a.model, kind, threads, a.reps, a.mmap)?;
            bar.inc(1);
            rows.push(row);
            rows.push(theirs);
        } else {
            rows.push(row);
        }
    }
    bar.finish_and_clear();
    let rss = crate::bench::peak_rss_bytes();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        crate::bench::print_table(&rows, rss);
    }
    if let Some(path) = &a.receipt {
        crate::bench::write_receipt(path, &ctx, &a.model, &rows, rss)?;
        eprintln!("bench receipt written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
