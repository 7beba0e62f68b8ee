//! Opening the reference named by `--reference`, and what generation of numerics it computes.

use std::path::Path;

use anyhow::{bail, Context, Result};

use engine::model::Profile;
use ffi_ref::{Ffi, FfiOptions, Recorded, ReferenceBackend, ReferenceKind};
use receipts::Generation;
use vocab::Mode;

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
    let profile = profile(backend);
    if profile != ctx.numerics.profile && profile.verified() {
        let extra = ctx.numerics.switches.clone();
        let why = format!("auto: the reference computes {}", profile.name());
        ctx.numerics = engine::model::Numerics::profile(profile, why).with_switches(&extra);
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
        .with_context(|| {
            format!(
                "{} has no recorded case for this model (its manifest records other models' sha256): give \
                 --reference recorded:DIR with this model's goldens, record them with `parity record MODEL \
                 --tokens .. --out DIR`, or use --reference ffi with --tokens or --prompt",
                r.dir().display()
            )
        })?;
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

/// The numerics profile a reference computes: a recorded manifest names it in `reference.numerics_profile`;
/// otherwise the manifest's provenance says which build made the goldens (an aarch64 build computes
/// `bitnet.cpp-2025-arm`, or `-arm-fp16` with fp16 vector arithmetic), and without either the profile is
/// the generation's own.
pub fn profile(any: &AnyBackend) -> Profile {
    let generation = generation(any);
    if let Some(m) = any.recorded().map(Recorded::manifest) {
        if let Some(p) = m.reference.as_ref().and_then(|r| r.numerics_profile.parse().ok()) {
            return p;
        }
        if generation == Generation::BitnetCpp2025 {
            if let Some(p) = serde_json::to_value(&m.provenance)
                .ok()
                .as_ref()
                .and_then(build_profile)
            {
                return p;
            }
        }
    }
    if let (AnyBackend::Live(b), Generation::BitnetCpp2025) = (any, generation) {
        if let Some(p) = b
            .identity()
            .build
            .map(serde_json::Value::String)
            .as_ref()
            .and_then(build_profile)
        {
            return p;
        }
    }
    generation.into()
}

/// The ARM profile a provenance record or a live worker's build line describes (a string, or an object of
/// strings): an aarch64 build, with fp16 vector arithmetic or without.
fn build_profile(prov: &serde_json::Value) -> Option<Profile> {
    let text = match prov {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => o.values().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(" "),
        _ => return None,
    };
    if !(text.contains("aarch64") || text.contains("arm64")) {
        return None;
    }
    let fp16 = text.contains("+fp16") || text.contains("FP16_VA = 1") || text.contains("arm64-apple");
    Some(if fp16 {
        Profile::BitnetCpp2025ArmFp16
    } else {
        Profile::BitnetCpp2025Arm
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_names_the_arm_builds() {
        let plain = serde_json::json!(
            "bitnet.cpp 2025 cross-built for aarch64 with clang-19 -march=armv8-a (no FP16 vector arithmetic)"
        );
        let fp16 =
            serde_json::json!("bitnet.cpp 2025 cross-built for aarch64 with clang-19 -march=armv8.2-a+fp16+dotprod");
        let x86 = serde_json::json!({"kernel": "I2_S (x86 AVX2 MAD kernel, TL2 off)"});
        assert_eq!(build_profile(&plain), Some(Profile::BitnetCpp2025Arm));
        assert_eq!(build_profile(&fp16), Some(Profile::BitnetCpp2025ArmFp16));
        assert_eq!(build_profile(&x86), None);
        let live = |s: &str| build_profile(&serde_json::json!(s));
        assert_eq!(
            live("GGML_NATIVE=OFF; aarch64: NEON = 1 | FP16_VA = 1"),
            Some(Profile::BitnetCpp2025ArmFp16)
        );
        assert_eq!(
            live("GGML_NATIVE=OFF; aarch64: NEON = 1 | FP16_VA = 0"),
            Some(Profile::BitnetCpp2025Arm)
        );
    }
}
