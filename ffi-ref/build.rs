//! With feature `ffi`: bindgen over BITNET_CPP_DIR's `llama.h`, link its built libraries, and detect the
//! llama.h API generation per symbol. Without it: nothing but cfg declarations.

/// cfgs describing the llama.h API generation (declared always so `unexpected_cfgs` stays quiet).
const API_CFGS: &[&str] = &[
    "llama_new_load",
    "llama_new_context",
    "llama_new_free",
    "llama_new_vocab",
    "llama_mem_memory",
    "llama_mem_kv_self",
    "llama_flash_attn_type",
];

fn main() {
    for cfg in API_CFGS {
        println!("cargo:rustc-check-cfg=cfg({cfg})");
    }
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "ffi")]
    if let Err(msg) = ffi::run() {
        eprintln!("\nerror: parity-ffi-ref (feature `ffi`): {msg}\n");
        std::process::exit(1);
    }
}

#[cfg(feature = "ffi")]
mod ffi {
    use std::env;
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const LIBS: &[&str] = &["llama", "ggml", "ggml-base", "ggml-cpu"];
    /// Written by scripts/setup-upstream-ref.sh: the commit of a tree that came without git history.
    const COMMIT_FILE: &str = ".parity-llama-commit";

    /// `d`'s commit: the setup script's note, else `git rev-parse HEAD` when `d` is itself a checkout's top
    /// (not a directory inside another repository), else `unknown`.
    fn commit(d: &Path) -> String {
        if let Ok(c) = fs::read_to_string(d.join(COMMIT_FILE)) {
            return c.trim().to_string();
        }
        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(d)
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let top = git(&["rev-parse", "--show-toplevel"]).map(PathBuf::from);
        let same = top.zip(d.canonicalize().ok()).is_some_and(|(t, d)| t == d);
        same.then(|| git(&["rev-parse", "HEAD"]))
            .flatten()
            .unwrap_or_else(|| "unknown".into())
    }

    pub fn run() -> Result<(), String> {
        println!("cargo:rerun-if-env-changed=BITNET_CPP_DIR");
        println!("cargo:rerun-if-env-changed=BITNET_CPP_BUILD_DIR");
        let dir = env::var_os("BITNET_CPP_DIR").map(PathBuf::from).ok_or(
            "BITNET_CPP_DIR is not set. Build bitnet.cpp as its README describes (it leaves libllama and \
             libggml under build/), then set BITNET_CPP_DIR to that checkout. See docs/ffi-ref.md.",
        )?;
        if !dir.is_dir() {
            return Err(format!("BITNET_CPP_DIR={} is not a directory", dir.display()));
        }
        // bitnet.cpp keeps llama.cpp in 3rdparty/; a plain llama.cpp checkout has it at the root.
        let llama_root = [dir.join("3rdparty/llama.cpp"), dir.clone()]
            .into_iter()
            .find(|r| r.join("include/llama.h").is_file())
            .ok_or_else(|| {
                format!(
                    "no llama.h under {0}/3rdparty/llama.cpp/include or {0}/include",
                    dir.display()
                )
            })?;
        let header = llama_root.join("include/llama.h");
        let ggml_include = llama_root.join("ggml/include");
        let build_dir = env::var_os("BITNET_CPP_BUILD_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join("build"));
        println!("cargo:rerun-if-changed={}", header.display());

        let text = fs::read_to_string(&header).map_err(|e| format!("{}: {e}", header.display()))?;
        let api = detect_api(&text)?;
        link(&build_dir)?;
        bindgen(&header, &ggml_include)?;

        println!("cargo:rerun-if-changed={}", llama_root.join(COMMIT_FILE).display());
        println!("cargo:rustc-env=PARITY_BITNET_CPP_DIR={}", dir.display());
        println!("cargo:rustc-env=PARITY_BITNET_COMMIT={}", commit(&dir));
        println!("cargo:rustc-env=PARITY_LLAMA_COMMIT={}", commit(&llama_root));
        println!("cargo:rustc-env=PARITY_LLAMA_API={api}");
        println!("cargo:rustc-env=PARITY_BUILD_FLAGS={}", build_flags(&build_dir));
        Ok(())
    }

    /// Pick the newest generation each symbol family offers; emit one cfg per new symbol.
    fn detect_api(h: &str) -> Result<String, String> {
        let has = |sym: &str| h.contains(&format!("{sym}("));
        let pick = |new: &str, old: &str, cfg: &str| -> Result<&'static str, String> {
            if has(new) {
                println!("cargo:rustc-cfg={cfg}");
                Ok("new")
            } else if has(old) {
                Ok("old")
            } else {
                Err(format!(
                    "llama.h declares neither {new} nor {old}: unsupported llama.cpp version"
                ))
            }
        };
        let load = pick(
            "llama_model_load_from_file",
            "llama_load_model_from_file",
            "llama_new_load",
        )?;
        let ctx = pick(
            "llama_init_from_model",
            "llama_new_context_with_model",
            "llama_new_context",
        )?;
        let free = pick("llama_model_free", "llama_free_model", "llama_new_free")?;
        let vocab = pick("llama_vocab_n_tokens", "llama_n_vocab", "llama_new_vocab")?;
        let mem = if has("llama_memory_clear") {
            println!("cargo:rustc-cfg=llama_mem_memory");
            "memory"
        } else if has("llama_kv_self_clear") {
            println!("cargo:rustc-cfg=llama_mem_kv_self");
            "kv_self"
        } else if has("llama_kv_cache_clear") {
            "kv_cache"
        } else {
            return Err("llama.h declares no llama_memory_clear / llama_kv_self_clear / llama_kv_cache_clear".into());
        };
        if h.contains("flash_attn_type") {
            println!("cargo:rustc-cfg=llama_flash_attn_type");
        }
        Ok(format!(
            "load={load},context={ctx},free={free},vocab={vocab},memory={mem}"
        ))
    }

    /// Find the built libraries (shared preferred), add search paths, link them, rpath for shared ones.
    fn link(build_dir: &Path) -> Result<(), String> {
        if !build_dir.is_dir() {
            return Err(format!(
                "{} does not exist: bitnet.cpp is not built yet (or set BITNET_CPP_BUILD_DIR)",
                build_dir.display()
            ));
        }
        let mut files = Vec::new();
        walk(build_dir, 0, &mut files);
        let mut found_any = false;
        let mut static_link = false;
        for name in LIBS {
            let shared = files.iter().find(|p| file_is(p, &format!("lib{name}.so")));
            let archive = files.iter().find(|p| file_is(p, &format!("lib{name}.a")));
            let (path, kind) = match (shared, archive) {
                (Some(p), _) => (p, "dylib"),
                (None, Some(p)) => (p, "static"),
                (None, None) if *name == "llama" || *name == "ggml" => {
                    return Err(format!(
                        "lib{name}.so / lib{name}.a not found under {}: build bitnet.cpp first",
                        build_dir.display()
                    ))
                }
                (None, None) => continue,
            };
            let parent = path.parent().unwrap_or(build_dir);
            println!("cargo:rerun-if-changed={}", path.display());
            println!("cargo:rustc-link-search=native={}", parent.display());
            println!("cargo:rustc-link-lib={kind}={name}");
            if kind == "dylib" {
                println!("cargo:rustc-link-arg=-Wl,-rpath,{}", parent.display());
            } else {
                static_link = true;
            }
            found_any = true;
        }
        if static_link {
            println!("cargo:rustc-link-lib=dylib=stdc++");
            let cache = fs::read_to_string(build_dir.join("CMakeCache.txt")).unwrap_or_default();
            if cache.contains("-fopenmp=libomp") {
                println!("cargo:rustc-link-lib=dylib=omp");
            } else if cache.contains("OpenMP_C_FLAGS:STRING=-fopenmp") {
                println!("cargo:rustc-link-lib=dylib=gomp");
            }
        }
        if found_any {
            Ok(())
        } else {
            Err(format!("no libllama / libggml under {}", build_dir.display()))
        }
    }

    fn file_is(p: &Path, name: &str) -> bool {
        p.file_name().is_some_and(|n| n == name)
    }

    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() && depth < 6 && !p.ends_with("CMakeFiles") {
                walk(&p, depth + 1, out);
            } else if p.is_file() {
                out.push(p);
            }
        }
    }

    fn bindgen(header: &Path, ggml_include: &Path) -> Result<(), String> {
        let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR unset")?).join("llama_bindings.rs");
        bindgen::Builder::default()
            .header(header.display().to_string())
            .clang_arg(format!("-I{}", ggml_include.display()))
            .allowlist_function("llama_.*")
            .allowlist_function("ggml_backend_tensor_get")
            .allowlist_function("ggml_nbytes")
            .allowlist_type("llama_.*")
            .allowlist_var("LLAMA_.*")
            .layout_tests(false)
            .generate()
            .map_err(|e| format!("bindgen on {} failed: {e} (is libclang installed?)", header.display()))?
            .write_to_file(&out)
            .map_err(|e| format!("{}: {e}", out.display()))
    }

    /// The CMake options that decide numerics, as `KEY=VALUE` pairs separated by `;`.
    fn build_flags(build_dir: &Path) -> String {
        const KEYS: &[&str] = &[
            "CMAKE_BUILD_TYPE",
            "CMAKE_C_COMPILER",
            "CMAKE_CXX_COMPILER",
            "BUILD_SHARED_LIBS",
            "BITNET_X86_TL2",
            "BITNET_ARM_TL1",
            "GGML_NATIVE",
            "GGML_LLAMAFILE",
            "GGML_OPENMP",
            "GGML_AVX512",
            "GGML_AVX2",
            "GGML_CUDA",
        ];
        let cache = fs::read_to_string(build_dir.join("CMakeCache.txt")).unwrap_or_default();
        cache
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once('=')?;
                let key = k.split(':').next()?;
                KEYS.contains(&key).then(|| format!("{key}={v}"))
            })
            .collect::<Vec<_>>()
            .join(";")
    }
}
