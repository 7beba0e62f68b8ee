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

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use serde_json::json;

use ffi_ref::protocol::SystemInfo;
use ffi_ref::{npy, sha256_hex, Case, Ffi, FfiOptions, Manifest, Mode, ReferenceBackend, ReferenceInfo};

use crate::common::parse_ids;

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
                cases.push(Case {
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
                    logits_shape: shape.to_vec(),
                    logits_sha256: Some(sha256_hex(&npy_bytes)),
                    recorded_as: None,
                    greedy_n: greedy_ids.len(),
                    greedy_ids,
                });
            }
        }
    }
    let provenance = provenance.context("no worker was started")?;
    let reference = reference.context("no worker was started")?;
    let manifest = merge(&args.out, provenance, reference, &prompts, cases)?;
    let path = args.out.join("manifest.json");
    fs::write(&path, manifest.to_json()).with_context(|| format!("writing {}", path.display()))?;
    if args.copy_model {
        let dest = args.out.join(&model_name);
        if dest != args.model {
            fs::write(&dest, &model_bytes).with_context(|| format!("writing {}", dest.display()))?;
        }
    }
    println!("{}: {} cases", path.display(), manifest.cases.len());
    Ok(ExitCode::SUCCESS)
}

/// Every callback base name the engine's aligner knows, for either BitNet graph.
fn traced_names() -> Vec<String> {
    use engine::model::trace::LlamaNameMap;
    use engine::model::Arch;
    let maps = [
        LlamaNameMap::new(Arch::BitnetB158, false, |_| 0),
        LlamaNameMap::new(Arch::Bitnet, true, |_| 1),
    ];
    let set: std::collections::BTreeSet<&str> = maps.iter().flat_map(|m| m.entries.iter().map(|e| e.llama)).collect();
    set.into_iter().map(str::to_string).collect()
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

fn check_prompts(prompts: &[Vec<u32>], ctx: u32, greedy: usize) -> Result<()> {
    let mut lens = BTreeMap::new();
    for p in prompts {
        if p.len() + greedy > ctx as usize {
            bail!("{} prompt ids + {greedy} greedy exceed --ctx {ctx}", p.len());
        }
        if lens.insert(p.len(), p).is_some_and(|q| q != p) {
            bail!("two different prompts of length {}: case names would collide", p.len());
        }
    }
    Ok(())
}

/// Provenance object of the manifest: strings only (the schema's free-text provenance fields).
fn provenance_of(info: &SystemInfo) -> serde_json::Value {
    json!({
        "bitnet_cpp": format!("microsoft/BitNet {}", info.commit),
        "llama_cpp": format!("bitnet.cpp llama.cpp {}", info.llama_commit),
        "bitnet_cpp_dir": info.dir,
        "llama_h_api": info.api,
        "build_flags": info.build_flags,
        "system_info": info.system_info,
        "kernel": "CPU backend, no flash-attn, f16 KV cache, n_batch = n_ubatch = n_ctx",
        "recorder": format!("parity record {}", env!("CARGO_PKG_VERSION")),
    })
}

/// Generation and numerics profile of the worker's library, as `parity run` tells a live reference apart
/// (run/reference.rs): the new llama.h API is upstream llama.cpp, the old one bitnet.cpp 2025.
fn reference_of(info: &SystemInfo) -> ReferenceInfo {
    let generation = if info.api.contains("new") {
        receipts::Generation::LlamaCpp
    } else {
        receipts::Generation::BitnetCpp2025
    };
    ReferenceInfo {
        generation: generation.as_str().to_owned(),
        numerics_profile: generation.as_str().to_owned(),
    }
}

/// Combine with an existing manifest in `dir` (same bitnet.cpp commit required); new cases replace old
/// ones of the same id. The result is a `recorded-reference/v1` manifest.
fn merge(
    dir: &Path,
    provenance: serde_json::Value,
    reference: ReferenceInfo,
    prompts: &[Vec<u32>],
    cases: Vec<Case>,
) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let mut m = match fs::read(&path) {
        Ok(bytes) => {
            let old = Manifest::parse(&bytes, &path)?;
            let (a, b) = (
                old.provenance_str("bitnet_cpp"),
                provenance.get("bitnet_cpp").and_then(|v| v.as_str()),
            );
            if a != b {
                bail!(
                    "{} was recorded from {a:?}, this build is {b:?}: use another --out",
                    path.display()
                );
            }
            old
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    m.schema_version = Some(ffi_ref::manifest::SCHEMA_VERSION.to_owned());
    m.reference = Some(reference);
    m.provenance = provenance;
    for p in prompts {
        m.prompts.insert(p.len().to_string(), p.clone());
    }
    for c in cases {
        match m.cases.iter_mut().find(|old| old.id == c.id) {
            Some(old) => *old = c,
            None => m.cases.push(c),
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: &str) -> Case {
        Case {
            id: id.into(),
            model: "m.gguf".into(),
            model_sha256: "0".repeat(64),
            prompt_len: 1,
            prompt_ids: vec![1],
            mode: Mode::Batch,
            threads: 1,
            n_ctx: 8,
            n_batch: Some(8),
            n_ubatch: Some(8),
            logits: format!("{id}.logits.npy"),
            logits_shape: vec![1, 2],
            logits_sha256: Some("cd".repeat(32)),
            recorded_as: None,
            greedy_n: 1,
            greedy_ids: vec![0],
        }
    }

    fn info(api: &str) -> SystemInfo {
        SystemInfo {
            system_info: "AVX = 1 | AVX2 = 1 | ".into(),
            dir: "/opt/BitNet".into(),
            commit: "404980eecae38affa4871c3e419eae3f44536a95".into(),
            llama_commit: "40ed0f290203a9a78540b8f7eb18bd828043fe21".into(),
            api: api.into(),
            build_flags: "GGML_NATIVE=ON;BITNET_X86_TL2=OFF".into(),
        }
    }

    fn bitnet_ref() -> ReferenceInfo {
        reference_of(&info("load=old,context=old,free=old,vocab=old,memory=kv_cache"))
    }

    #[test]
    fn prompts_must_fit_and_not_collide() {
        assert!(check_prompts(&[vec![1, 2], vec![3]], 8, 4).is_ok());
        assert!(check_prompts(&[vec![1, 2], vec![1, 2]], 8, 4).is_ok());
        assert!(check_prompts(&[vec![1, 2], vec![2, 1]], 8, 4).is_err());
        assert!(check_prompts(&[vec![1; 5]], 8, 4).is_err());
    }

    #[test]
    fn merge_replaces_same_ids_and_refuses_another_build() {
        let dir = tempfile::tempdir().unwrap();
        let prov = json!({"bitnet_cpp": "microsoft/BitNet abc"});
        let m = merge(dir.path(), prov.clone(), bitnet_ref(), &[vec![1]], vec![case("a")]).unwrap();
        fs::write(dir.path().join("manifest.json"), m.to_json()).unwrap();
        let mut b = case("a");
        b.greedy_ids = vec![1];
        let m = merge(dir.path(), prov, bitnet_ref(), &[vec![1]], vec![b.clone(), case("c")]).unwrap();
        assert_eq!(m.cases.len(), 2);
        assert_eq!(m.cases[0], b);
        assert_eq!(m.prompts["1"], [1]);
        let other = json!({"bitnet_cpp": "microsoft/BitNet def"});
        assert!(merge(dir.path(), other, bitnet_ref(), &[vec![1]], vec![case("a")]).is_err());
    }

    /// What `parity record` writes is a `recorded-reference/v1` manifest: built here as `main` builds it
    /// (provenance and reference from the worker's SystemInfo, `merge`, `Manifest::to_json`), then checked
    /// with the receipts crate's schema validation and typed reader — a new directory and an extended one.
    #[test]
    fn recorded_manifest_validates_against_the_recorded_reference_schema() {
        use receipts::schema::{validate, SchemaKind};
        let dir = tempfile::tempdir().unwrap();
        for (api, generation) in [
            (
                "load=old,context=old,free=old,vocab=old,memory=kv_cache",
                receipts::Generation::BitnetCpp2025,
            ),
            (
                "load=new,context=new,free=new,vocab=new,memory=memory",
                receipts::Generation::LlamaCpp,
            ),
        ] {
            let info = info(api);
            let m = merge(
                dir.path(),
                provenance_of(&info),
                reference_of(&info),
                &[vec![1]],
                vec![case("a")],
            )
            .unwrap();
            let text = m.to_json();
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            validate(SchemaKind::RecordedReference, &doc).unwrap_or_else(|e| panic!("{api}: {e}\n{text}"));
            let (typed, _) = receipts::RecordedReference::from_json(&text).unwrap();
            assert_eq!(typed.identity().generation, generation);
            assert_eq!(typed.cases[0].logits_sha256.as_deref(), Some("cd".repeat(32).as_str()));
            // Extending the directory keeps it valid.
            fs::write(dir.path().join("manifest.json"), &text).unwrap();
            let m = merge(
                dir.path(),
                provenance_of(&info),
                reference_of(&info),
                &[vec![1]],
                vec![case("b")],
            )
            .unwrap();
            let doc: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
            validate(SchemaKind::RecordedReference, &doc).unwrap_or_else(|e| panic!("{api} extended: {e}"));
            assert_eq!(m.cases.len(), 2);
            fs::remove_file(dir.path().join("manifest.json")).unwrap();
        }
    }
}
