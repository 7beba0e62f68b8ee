//! bitnet.cpp's own `llama-bench`, found in the user's build at `BITNET_CPP_DIR`, run per test so its
//! numbers and ours come from the same minutes of the same machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::{cpu_model, BenchRow, TestKind};

/// `$BITNET_CPP_DIR/build/bin/llama-bench`.
pub fn find_llama_bench() -> Result<PathBuf> {
    let dir = std::env::var_os("BITNET_CPP_DIR")
        .context("--reference ffi needs BITNET_CPP_DIR: the root of a bitnet.cpp checkout built per its README")?;
    let p = Path::new(&dir).join("build/bin/llama-bench");
    if !p.is_file() {
        bail!(
            "{} not found: build bitnet.cpp (its README) so that llama-bench exists",
            p.display()
        );
    }
    Ok(p)
}

/// One llama-bench test, parsed from its JSON output. `mmap` is the weight placement ours used, passed on as
/// `-mmp`: `false` (our resident copy) gives llama-bench's own copy into anonymous memory (`-mmp 0`, faster for
/// it too), so both engines are compared with their weights placed alike.
pub fn run_llama_bench(
    bin: &Path,
    model: &Path,
    kind: TestKind,
    threads: usize,
    reps: usize,
    mmap: bool,
) -> Result<BenchRow> {
    let out = Command::new(bin)
        .arg("-m")
        .arg(model)
        .args(["-p", &kind.n_prompt().to_string(), "-n", &kind.n_gen().to_string()])
        .args(["-t", &threads.to_string(), "-r", &reps.to_string(), "-o", "json"])
        .args(["-mmp", if mmap { "1" } else { "0" }])
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "llama-bench failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        );
    }
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).context("parsing llama-bench JSON")?;
    let r = rows
        .iter()
        .find(|r| {
            r["n_prompt"].as_u64() == Some(kind.n_prompt() as u64) && r["n_gen"].as_u64() == Some(kind.n_gen() as u64)
        })
        .context("llama-bench printed no row for this test")?;
    let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
    let u = |k: &str| r[k].as_u64().unwrap_or(0);
    let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
    Ok(BenchRow {
        engine: "bitnet.cpp".into(),
        build_commit: s("build_commit"),
        cpu_info: if s("cpu_info").is_empty() {
            cpu_model()
        } else {
            s("cpu_info")
        },
        model_filename: model.display().to_string(),
        model_type: s("model_type"),
        model_size: u("model_size"),
        model_n_params: u("model_n_params"),
        n_batch: u("n_batch") as usize,
        n_ubatch: u("n_ubatch") as usize,
        n_threads: threads,
        type_k: s("type_k"),
        type_v: s("type_v"),
        n_prompt: kind.n_prompt(),
        n_gen: kind.n_gen(),
        test: kind.name(),
        kernels: Default::default(),
        kernel_isa: Default::default(),
        weight_bytes_per_token: None,
        read_probe_gbs: None,
        avg_ns: u("avg_ns"),
        stddev_ns: u("stddev_ns"),
        avg_ts: f("avg_ts"),
        stddev_ts: f("stddev_ts"),
        samples_ns: r["samples_ns"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
            .unwrap_or_default(),
        samples_ts: r["samples_ts"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_f64()).collect())
            .unwrap_or_default(),
    })
}
