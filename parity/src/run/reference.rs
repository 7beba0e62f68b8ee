//! Opening the reference named by `--reference`, and what generation of numerics it computes.

use std::path::Path;

use anyhow::{bail, Context, Result};

use ffi_ref::{Ffi, FfiOptions, Recorded, ReferenceBackend, ReferenceKind};
use receipts::Generation;

use crate::cmd::run::AnyBackend;
use crate::common::EngineCtx;

/// `None` → the recorded directory beside the model; `recorded:DIR`; `ffi`.
pub fn open(
    spec: Option<&str>,
    default_dir: &Path,
    model: &Path,
    ctx: &EngineCtx,
    timeout: std::time::Duration,
) -> Result<AnyBackend> {
    let recorded = |dir: &Path| -> Result<AnyBackend> {
        let r = Recorded::open(dir)
            .with_context(|| format!("opening the recorded reference {}", dir.display()))?
            .with_model_sha256(ctx.model_sha256());
        Ok(AnyBackend::Recorded(Box::new(r)))
    };
    match spec {
        None => {
            if !default_dir.join("manifest.json").is_file() {
                bail!(
                    "no reference: {} has no manifest.json; give --reference recorded:DIR or --reference ffi",
                    default_dir.display()
                );
            }
            recorded(default_dir)
        }
        Some("ffi") => {
            let n_ctx = ctx.model.hparams.n_ctx_train.min(4096) as u32;
            let opts = FfiOptions::new(model, n_ctx, 1).with_timeout(timeout);
            let ffi = Ffi::spawn(&opts).context("starting the bitnet.cpp worker")?;
            Ok(AnyBackend::Live(Box::new(ffi)))
        }
        Some(s) => match s.strip_prefix("recorded:") {
            Some(dir) => recorded(Path::new(dir)),
            None => bail!("--reference must be `ffi` or `recorded:DIR`, not {s:?}"),
        },
    }
}

/// The numerics generation a reference computes: a recorded manifest says so in `reference.generation`
/// (recorded-reference/v1; manifests without it are bitnet.cpp 2025 goldens); a live library by its llama.h API.
pub fn generation(any: &AnyBackend) -> Generation {
    let backend: &dyn ReferenceBackend = match any {
        AnyBackend::Recorded(r) => r.as_ref(),
        AnyBackend::Live(b) => b.as_ref(),
    };
    if let Some(r) = any.recorded() {
        let text = std::fs::read(r.dir().join("manifest.json")).ok();
        let g = text
            .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
            .and_then(|v| {
                v.pointer("/reference/generation")
                    .and_then(|g| g.as_str())
                    .map(str::to_string)
            });
        return match g.as_deref() {
            Some("llama.cpp") => Generation::LlamaCpp,
            Some("bitnet.cpp-2026") => Generation::BitnetCpp2026,
            _ => Generation::BitnetCpp2025,
        };
    }
    let id = backend.identity();
    match (id.kind, id.generation.as_deref()) {
        (ReferenceKind::Ffi, Some(g)) if g.contains("new") => Generation::LlamaCpp,
        _ => Generation::BitnetCpp2025,
    }
}
