//! Benchmark measurement with llama-bench's definitions (spec §9): pp = one ubatch of `p` tokens with
//! logits for the last one only; tg = `n` single-token decodes; t/s per repetition, then mean and
//! sample standard deviation; one warm-up run excluded; the KV cache cleared before every repetition.

pub mod reference;

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use engine::model::Logits;

use crate::common::EngineCtx;

/// A llama-bench test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestKind {
    /// Prompt processing of `p` tokens in one batch.
    Prompt(usize),
    /// Generation of `n` tokens one at a time.
    Gen(usize),
}

impl TestKind {
    pub fn name(self) -> String {
        match self {
            TestKind::Prompt(p) => format!("pp{p}"),
            TestKind::Gen(n) => format!("tg{n}"),
        }
    }

    pub fn n_prompt(self) -> usize {
        if let TestKind::Prompt(p) = self {
            p
        } else {
            0
        }
    }

    pub fn n_gen(self) -> usize {
        if let TestKind::Gen(n) = self {
            n
        } else {
            0
        }
    }
}

/// One result row; field names follow llama-bench's JSON output where it has them.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    /// `parity` (this engine) or `bitnet.cpp`.
    pub engine: String,
    pub build_commit: String,
    pub cpu_info: String,
    pub model_filename: String,
    pub model_type: String,
    pub model_size: u64,
    pub model_n_params: u64,
    pub n_batch: usize,
    pub n_ubatch: usize,
    pub n_threads: usize,
    pub type_k: String,
    pub type_v: String,
    pub n_prompt: usize,
    pub n_gen: usize,
    pub test: String,
    /// Kernel IDs this test dispatched, with call counts over its measured repetitions: JSON rows list the IDs,
    /// the receipt sums the counts over rows.
    #[serde(serialize_with = "kernel_ids")]
    pub kernels: std::collections::BTreeMap<String, u64>,
    /// The ISA of each kernel in `kernels` (for the receipt's `kernel_isa`; not a row column).
    #[serde(skip)]
    pub kernel_isa: receipts::KernelIsaLog,
    /// tg rows of this engine: bytes of matmul weights one decoded token reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_bytes_per_token: Option<u64>,
    /// tg rows of this engine: the read probe over those same weights, right after the test, same threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_probe_gbs: Option<f64>,
    pub avg_ns: u64,
    pub stddev_ns: u64,
    pub avg_ts: f64,
    pub stddev_ts: f64,
    pub samples_ns: Vec<u64>,
    pub samples_ts: Vec<f64>,
}

/// Mean and sample standard deviation.
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Deterministic token ids in `0..n_vocab` (llama-bench uses `std::rand() % n_vocab`).
pub fn random_tokens(n: usize, n_vocab: usize, first: Option<u32>, seed: u64) -> Vec<u32> {
    let mut s = seed;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.push(match (i, first) {
            (0, Some(b)) => b,
            _ => (z % n_vocab as u64) as u32,
        });
    }
    out
}

/// Run one test of our engine in the current rayon pool.
pub fn run_test(ctx: &EngineCtx, model: &Path, kind: TestKind, threads: usize, reps: usize) -> Result<BenchRow> {
    let hp = &ctx.model.hparams;
    let n_tokens = kind.n_prompt() + kind.n_gen();
    let mut session = ctx.session(n_tokens.max(1))?;
    let bos = engine::tokenizer::Tokenizer::from_gguf(&ctx.model.file)
        .ok()
        .and_then(|t| if t.add_bos() { t.bos() } else { None });
    let tokens = random_tokens(n_tokens, hp.n_vocab, bos, 0x5eed);
    let once = |session: &mut engine::model::Session, warm: bool| -> Result<()> {
        session.clear()?;
        match kind {
            TestKind::Prompt(p) => {
                session.decode(&tokens[..p], Logits::Last)?;
            }
            TestKind::Gen(n) => {
                for &t in &tokens[..if warm { 1 } else { n }] {
                    session.decode(&[t], Logits::Last)?;
                }
            }
        }
        Ok(())
    };
    once(&mut session, true)?;
    ctx.disp.clear_log();
    let mut samples_ns = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        once(&mut session, false)?;
        samples_ns.push(t0.elapsed().as_nanos() as u64);
    }
    let (kernels, kernel_isa) = crate::common::kernel_records(&ctx.disp.kernels());
    let samples_ts: Vec<f64> = samples_ns.iter().map(|&ns| 1e9 * n_tokens as f64 / ns as f64).collect();
    let (avg_ts, stddev_ts) = mean_sd(&samples_ts);
    let (avg_ns, sd_ns) = mean_sd(&samples_ns.iter().map(|&v| v as f64).collect::<Vec<_>>());
    Ok(BenchRow {
        engine: "parity".into(),
        build_commit: option_env!("PARITY_GIT_COMMIT").unwrap_or("unknown").into(),
        cpu_info: cpu_model(),
        model_filename: model.display().to_string(),
        model_type: format!("{} {}", hp.arch.name(), ctx.model.weights.layers[0].wq.type_name()),
        model_size: ctx.model.file.file_len(),
        model_n_params: ctx.model.file.tensors.iter().map(|t| t.n_elements).sum(),
        n_batch: kind.n_prompt().max(1),
        n_ubatch: kind.n_prompt().max(1),
        n_threads: threads,
        type_k: "f16".into(),
        type_v: "f16".into(),
        n_prompt: kind.n_prompt(),
        n_gen: kind.n_gen(),
        test: kind.name(),
        kernels,
        kernel_isa,
        weight_bytes_per_token: None,
        read_probe_gbs: None,
        avg_ns: avg_ns as u64,
        stddev_ns: sd_ns as u64,
        avg_ts,
        stddev_ts,
        samples_ns,
        samples_ts,
    })
}

/// The CPU model from /proc/cpuinfo.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// Peak resident set size of this process (VmHWM), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// A llama-bench-like table, with the ratio ours / bitnet.cpp where both were measured.
pub fn print_table(rows: &[BenchRow], rss: Option<u64>) {
    println!("| engine     | model | threads | test  |              t/s | ratio |");
    println!("|------------|-------|--------:|-------|-----------------:|------:|");
    for (i, r) in rows.iter().enumerate() {
        let ratio = match (r.engine.as_str(), rows.get(i + 1)) {
            ("parity", Some(next))
                if next.engine != "parity" && next.test == r.test && next.n_threads == r.n_threads =>
            {
                format!("{:.2}", r.avg_ts / next.avg_ts)
            }
            _ => String::new(),
        };
        println!(
            "| {:<10} | {:>5} | {:>7} | {:<5} | {:>8.2} ± {:>5.2} | {:>5} |",
            r.engine,
            format!("{:.0}M", r.model_size as f64 / 1e6),
            r.n_threads,
            r.test,
            r.avg_ts,
            r.stddev_ts,
            ratio
        );
    }
    for r in rows {
        if let (Some(bytes), Some(probe)) = (r.weight_bytes_per_token, r.read_probe_gbs) {
            let gbs = bytes as f64 * r.avg_ts / 1e9;
            println!(
                "{} t{}: {:.2} t/s × {:.3} GB of weights per token = {gbs:.1} GB/s = {:.0}% of the read probe \
                 ({probe:.1} GB/s over the same weights, same threads, right after)",
                r.test,
                r.n_threads,
                r.avg_ts,
                bytes as f64 / 1e9,
                100.0 * gbs / probe
            );
        }
    }
    if let Some(b) = rss {
        println!("peak RSS: {:.1} MiB", b as f64 / (1024.0 * 1024.0));
    }
}

fn kernel_ids<S: serde::Serializer>(k: &std::collections::BTreeMap<String, u64>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(k.keys())
}

/// Median GB/s of three read-probe passes over the model's matmul weights in the current pool.
pub fn weight_read_probe(ctx: &EngineCtx) -> (u64, f64) {
    let slices = ctx.model.weights.matmul_bytes(&ctx.model.file);
    let bytes = slices.iter().map(|s| s.len() as u64).sum();
    let mut gbs: Vec<f64> = (0..3)
        .map(|_| {
            let (g, sum) = engine::kernels::probe::read_gbs(&slices);
            std::hint::black_box(sum);
            g
        })
        .collect();
    gbs.sort_by(f64::total_cmp);
    (bytes, gbs[1])
}

/// Write a bench receipt: typed, sealed (digest, optional signature) and validated against schemas/
/// before it touches the disk. bitnet.cpp rows become `reference` rows with the ratio ours / theirs.
pub fn write_receipt(path: &Path, ctx: &EngineCtx, model: &Path, rows: &[BenchRow], rss: Option<u64>) -> Result<()> {
    let ours: Vec<&BenchRow> = rows.iter().filter(|r| r.engine == "parity").collect();
    let threads = ours.iter().map(|r| r.n_threads).max().unwrap_or(1) as u32;
    let reference = rows
        .iter()
        .filter(|r| r.engine != "parity")
        .filter_map(|t| {
            let o = ours.iter().find(|o| o.test == t.test && o.n_threads == t.n_threads)?;
            Some(receipts::ReferenceRow {
                implementation: t.engine.clone(),
                commit: if t.build_commit.is_empty() {
                    "unknown".into()
                } else {
                    t.build_commit.clone()
                },
                test: t.test.clone(),
                avg_ts: t.avg_ts,
                stddev_ts: t.stddev_ts,
                ratio: o.avg_ts / t.avg_ts,
            })
        })
        .collect();
    let receipt = receipts::BenchReceipt {
        schema_version: receipts::schema::BenchV1,
        tool: receipts::Tool {
            name: "parity".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            git_commit: env!("PARITY_GIT_COMMIT").into(),
        },
        created_at: receipts::now_rfc3339(),
        host: receipts::Host {
            accelerators: ctx.accelerators(),
            ..receipts::Host::detect(threads)
        },
        model: ctx.receipt_model(model),
        // Every kernel any measured test dispatched (each test clears the log after its warm-up).
        kernels: ours.iter().fold(Default::default(), |mut all, r| {
            for (id, n) in &r.kernels {
                *all.entry(id.clone()).or_default() += n;
            }
            all
        }),
        kernel_isa: ours.iter().flat_map(|r| r.kernel_isa.clone()).collect(),
        rows: ours
            .iter()
            .map(|r| receipts::BenchRow {
                test: r.test.clone(),
                n_prompt: r.n_prompt as u64,
                n_gen: r.n_gen as u64,
                n_threads: r.n_threads as u32,
                repetitions: r.samples_ts.len() as u32,
                model_size: r.model_size,
                model_n_params: r.model_n_params,
                avg_ns: r.avg_ns,
                stddev_ns: r.stddev_ns,
                avg_ts: r.avg_ts,
                stddev_ts: r.stddev_ts,
                samples_ts: r.samples_ts.clone(),
            })
            .collect(),
        peak_rss_bytes: rss.unwrap_or(0),
        reference,
        section_digests: Default::default(),
        digest: String::new(),
        signature: None,
    };
    let key = receipts::seal::signing_key_from_env()?;
    let sealed = receipts::seal(&receipt, key.as_ref())?;
    receipts::write_receipt(path, &sealed)?;
    Ok(())
}
