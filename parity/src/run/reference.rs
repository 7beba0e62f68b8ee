//! Opening the reference named by `--reference`, and what generation of numerics it computes.

use std::path::Path;

use anyhow::{bail, Context, Result};

use ffi_ref::{Ffi, FfiOptions, Recorded, ReferenceBackend, ReferenceKind};
use receipts::Generation;
use vocab::Mode;

use crate::common::EngineCtx;

/// `None` → the recorded directory beside the model; `recorded:DIR`; `ffi`.
pub fn open(spec: Option<&str>, default_dir: &Path, model: &Path, ctx: &EngineCtx) -> Result<AnyBackend> {
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
            let ffi = Ffi::spawn(&FfiOptions::new(model, n_ctx, 1)).context("starting the bitnet.cpp worker")?;
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
        return r.manifest().identity().generation;
    }
    let id = backend.identity();
    match (id.kind, id.generation.as_deref()) {
        (ReferenceKind::Ffi, Some(g)) if g.contains("new") => Generation::LlamaCpp,
        _ => Generation::BitnetCpp2025,
    }
}

/// Compare like with like: run the numerics of the generation the reference says it computes (an F16
/// `bitnet` model runs in either bitnet.cpp or upstream llama.cpp). Only verified generations: against
/// bitnet.cpp-2026 we keep the model's true math, so its bug shows.
pub fn match_numerics(ctx: &mut EngineCtx, backend: &AnyBackend) {
    let generation = generation(backend);
    if let Ok(profile) = generation.as_str().parse::<engine::model::Profile>() {
        if profile != ctx.numerics.profile && profile.verified() {
            let extra = ctx.numerics.switches.clone();
            let why = format!("auto: the reference computes {}", generation.as_str());
            ctx.numerics = engine::model::Numerics::profile(profile, why).with_switches(&extra);
        }
    }
}

/// The longest recorded prompt for this model (that is the most demanding case).
pub fn default_tokens(recorded: Option<&Recorded>, mode: Mode) -> Result<Vec<u32>> {
    let Some(r) = recorded else {
        bail!("give --tokens or --prompt (a live reference has no recorded prompts)")
    };
    let case = r
        .manifest()
        .cases
        .iter()
        .filter(|c| c.mode == mode && r.find_case(&c.prompt_ids, mode).is_ok())
        .max_by_key(|c| c.prompt_ids.len())
        .context("the recorded reference has no case for this model (sha256 differs?)")?;
    Ok(case.prompt_ids.clone())
}

/// A backend of either kind, keeping access to the recorded one's manifest.
pub enum AnyBackend {
    Recorded(Box<Recorded>),
    Live(Box<dyn ReferenceBackend>),
}

impl AnyBackend {
    pub fn recorded(&self) -> Option<&Recorded> {
        match self {
            AnyBackend::Recorded(r) => Some(r.as_ref()),
            AnyBackend::Live(_) => None,
        }
    }

    pub fn as_backend(&mut self) -> &mut dyn ReferenceBackend {
        match self {
            AnyBackend::Recorded(r) => r.as_mut(),
            AnyBackend::Live(b) => b.as_mut(),
        }
    }
}
