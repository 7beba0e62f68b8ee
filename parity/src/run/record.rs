//! Writing a recorded-reference directory (`parity record`): the manifest's provenance and generation from
//! the worker, checking prompts, and merging new cases into an existing manifest of the same build.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use ffi_ref::protocol::SystemInfo;
use receipts::reference::{Provenance, ProvenanceFields, RecordedCase, RecordedReference, ReferenceInfo};
use receipts::schema::RecordedReferenceV1;

/// Every callback base name the engine's aligner knows, for either BitNet graph.
pub fn traced_names() -> Vec<String> {
    use engine::model::trace::LlamaNameMap;
    use engine::model::Arch;
    let maps = [
        LlamaNameMap::new(Arch::BitnetB158, false, |_| 0),
        LlamaNameMap::new(Arch::Bitnet, true, |_| 1),
    ];
    let set: std::collections::BTreeSet<&str> = maps.iter().flat_map(|m| m.entries.iter().map(|e| e.llama)).collect();
    set.into_iter().map(str::to_string).collect()
}

pub fn check_prompts(prompts: &[Vec<u32>], ctx: u32, greedy: usize) -> Result<()> {
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

/// Provenance of the manifest: the worker's commits and build, as strings (the schema's free-text fields).
pub fn provenance_of(info: &SystemInfo) -> Provenance {
    let extra = [
        ("bitnet_cpp_dir", info.dir.clone()),
        ("llama_h_api", info.api.clone()),
        ("build_flags", info.build_flags.clone()),
        ("system_info", info.system_info.clone()),
        ("recorder", format!("parity record {}", env!("CARGO_PKG_VERSION"))),
    ];
    Provenance::Fields(Box::new(ProvenanceFields {
        bitnet_cpp: Some(format!("microsoft/BitNet {}", info.commit)),
        llama_cpp: Some(format!("bitnet.cpp llama.cpp {}", info.llama_commit)),
        kernel: Some("CPU backend, no flash-attn, f16 KV cache, n_batch = n_ubatch = n_ctx".into()),
        extra: extra.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        ..Default::default()
    }))
}

/// Generation and numerics profile of the worker's library, as `parity run` tells a live reference apart
/// (run/reference.rs): the new llama.h API is upstream llama.cpp, the old one bitnet.cpp 2025.
pub fn reference_of(info: &SystemInfo) -> ReferenceInfo {
    let generation = if info.api.contains("new") {
        receipts::Generation::LlamaCpp
    } else {
        receipts::Generation::BitnetCpp2025
    };
    ReferenceInfo {
        generation,
        numerics_profile: generation.as_str().to_owned(),
    }
}

/// Combine with an existing manifest in `dir` (same bitnet.cpp commit required); new cases replace old
/// ones of the same id. The result is a `recorded-reference/v1` manifest.
pub fn merge(
    dir: &Path,
    provenance: Provenance,
    reference: ReferenceInfo,
    prompts: &[Vec<u32>],
    cases: Vec<RecordedCase>,
) -> Result<RecordedReference> {
    let path = dir.join("manifest.json");
    let mut m = match fs::read_to_string(&path) {
        Ok(text) => {
            let (old, _) =
                RecordedReference::from_json(&text).with_context(|| format!("reading {}", path.display()))?;
            let (a, b) = (old.provenance.get("bitnet_cpp"), provenance.get("bitnet_cpp"));
            if a != b {
                bail!(
                    "{} was recorded from {a:?}, this build is {b:?}: use another --out",
                    path.display()
                );
            }
            old
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => RecordedReference {
            schema_version: None,
            reference: None,
            description: None,
            provenance: provenance.clone(),
            prompts: BTreeMap::new(),
            cases: Vec::new(),
        },
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    m.schema_version = Some(RecordedReferenceV1);
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
    use vocab::Mode;

    fn case(id: &str) -> RecordedCase {
        RecordedCase {
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
            logits_shape: [1, 2],
            logits_sha256: Some("cd".repeat(32)),
            recorded_as: None,
            greedy_n: 1,
            greedy_ids: vec![0],
            reference_broken: None,
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
        let prov = Provenance::Fields(Box::new(ProvenanceFields {
            bitnet_cpp: Some("microsoft/BitNet abc".into()),
            ..Default::default()
        }));
        let m = merge(dir.path(), prov.clone(), bitnet_ref(), &[vec![1]], vec![case("a")]).unwrap();
        fs::write(dir.path().join("manifest.json"), m.to_json().unwrap()).unwrap();
        let mut b = case("a");
        b.greedy_ids = vec![1];
        let m = merge(dir.path(), prov, bitnet_ref(), &[vec![1]], vec![b.clone(), case("c")]).unwrap();
        assert_eq!(m.cases.len(), 2);
        assert_eq!(m.cases[0], b);
        assert_eq!(m.prompts["1"], [1]);
        let other = Provenance::Fields(Box::new(ProvenanceFields {
            bitnet_cpp: Some("microsoft/BitNet def".into()),
            ..Default::default()
        }));
        assert!(merge(dir.path(), other, bitnet_ref(), &[vec![1]], vec![case("a")]).is_err());
    }

    /// What `parity record` writes is a `recorded-reference/v1` manifest: built here as `main` builds it
    /// (provenance and reference from the worker's SystemInfo, `merge`, `RecordedReference::to_json`), then checked
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
            // `merge` as `main` calls it, for one more case; the manifest it makes must validate.
            let merged = |id: &str| {
                let m = merge(
                    dir.path(),
                    provenance_of(&info),
                    reference_of(&info),
                    &[vec![1]],
                    vec![case(id)],
                )
                .unwrap();
                let text = m.to_json().unwrap();
                let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
                validate(SchemaKind::RecordedReference, &doc)
                    .unwrap_or_else(|e| panic!("{api} case {id}: {e}\n{text}"));
                (m, text)
            };
            let (_, text) = merged("a");
            let (typed, _) = receipts::RecordedReference::from_json(&text).unwrap();
            assert_eq!(typed.identity().generation, generation);
            assert_eq!(typed.cases[0].logits_sha256.as_deref(), Some("cd".repeat(32).as_str()));
            // Extending the directory keeps it valid.
            fs::write(dir.path().join("manifest.json"), &text).unwrap();
            assert_eq!(merged("b").0.cases.len(), 2);
            fs::remove_file(dir.path().join("manifest.json")).unwrap();
        }
    }
}
