//! `parity inspect MODEL.gguf [--json] [--i2s-layout x86|arm|x86-1x4]`: what a GGUF file holds and
//! how the engine would read it — version, type-id dialect and why, hyper-parameters with defaults
//! marked, tokenizer summary, LM-head choice, I2_S layout decision, and every tensor with its flavor.
//!
//! The JSON shape (`--json`) is stable and documented in `docs/inspect-json.md`. A file the reader or
//! flavor detection refuses is an input error: exit 2 with the typed error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::{json, Value as Json};

use engine::flavor::{FlavorOptions, I2sLayout, ModelFlavors};
use engine::gguf::{Dialect, GgufFile, Value};
use engine::model::hparams::model_family;
use engine::model::{Arch, HParams};

use crate::common::{tl_options, LayoutArg};

/// Version tag of the JSON document; bump on any incompatible change.
pub const SCHEMA: &str = "parity-inspect/1";

/// Arguments of `parity inspect`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The GGUF file.
    pub model: PathBuf,
    /// Print the stable JSON document instead of the human table.
    #[arg(long)]
    pub json: bool,
    /// Read I2_S tensors in this packing instead of assuming x86 (metadata cannot tell them apart).
    #[arg(long, value_enum)]
    pub i2s_layout: Option<LayoutArg>,
    /// TL1/TL2 files: the kernel_config.ini they were converted with (see `parity run --help`).
    #[arg(long, value_name = "PATH")]
    pub tl_config: Option<PathBuf>,
    /// Also run a short text through each I2_S layout and report which gives the lower perplexity.
    #[arg(long)]
    pub probe_layout: bool,
}

/// HParams field, the metadata key it comes from (after `{arch}.`), and a one-line meaning.
const HPARAM_FIELDS: [(&str, &str); 13] = [
    ("n_vocab", "vocab_size"),
    ("n_ctx_train", "context_length"),
    ("n_embd", "embedding_length"),
    ("n_layer", "block_count"),
    ("n_ff", "feed_forward_length"),
    ("n_head", "attention.head_count"),
    ("n_head_kv", "attention.head_count_kv"),
    ("head_dim", "attention.key_length"),
    ("head_dim_v", "attention.value_length"),
    ("n_rot", "rope.dimension_count"),
    ("rope_freq_base", "rope.freq_base"),
    ("rope_freq_scale", "rope.scaling.factor"),
    ("rms_eps", "attention.layer_norm_rms_epsilon"),
];

pub fn main(args: Args) -> Result<ExitCode> {
    let g = GgufFile::open(&args.model)?;
    let opts = FlavorOptions {
        i2s_layout: args.i2s_layout.map(I2sLayout::from),
        tl: tl_options(args.tl_config.as_deref(), &args.model),
    };
    let flavors = ModelFlavors::classify(&g, &opts).map_err(|e| anyhow::anyhow!("{}: {e}", args.model.display()))?;
    let mut doc = document(&g, &flavors);
    if args.probe_layout {
        let probe = probe(&args.model)?;
        if !args.json {
            eprintln!("layout probe ({} tokens): {}", probe.tokens, probe.reason);
            for s in &probe.scores {
                match s.perplexity {
                    Some(p) => eprintln!("  {:<11} perplexity {p:.2}", s.layout.name()),
                    None => eprintln!("  {:<11} n/a: {}", s.layout.name(), s.note.as_deref().unwrap_or("")),
                }
            }
        }
        doc["layout_probe"] = serde_json::to_value(&probe)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", human(&doc));
    }
    Ok(ExitCode::SUCCESS)
}

/// Run [`engine::model::probe::probe_layouts`] on the embedded tokenizer's reading of the probe text.
fn probe(path: &std::path::Path) -> Result<engine::model::probe::LayoutProbe> {
    let file = std::sync::Arc::new(GgufFile::open(path)?);
    let tok = engine::tokenizer::Tokenizer::load(path, None)?;
    let ids = tok.encode(engine::model::probe::PROBE_TEXT, true, false)?;
    let disp = engine::kernels::Dispatcher::new(engine::kernels::KernelChoice::Auto)?;
    Ok(engine::model::probe::probe_layouts(&file, &disp, &ids)?)
}

fn dialect_id(d: Dialect) -> &'static str {
    match d {
        Dialect::BitnetFork => "bitnet-fork",
        Dialect::Upstream => "upstream",
    }
}

/// Hyper-parameters as the engine reads them; `default` is true when the key is absent from the file.
fn hparams(g: &GgufFile) -> Json {
    let hp = match HParams::from_gguf(g) {
        Ok(hp) => hp,
        Err(e) => return json!({ "error": e.to_string(), "fields": [] }),
    };
    let values = serde_json::to_value(&hp).unwrap_or(Json::Null);
    let arch = g.architecture();
    let fields: Vec<Json> = HPARAM_FIELDS
        .iter()
        .map(|(field, key)| {
            let full = format!("{arch}.{key}");
            let present = g.get(&full).is_some()
                || (*field == "rope_freq_scale" && g.get(&format!("{arch}.rope.scale_linear")).is_some());
            json!({ "field": field, "key": full, "value": values.get(field).cloned().unwrap_or(Json::Null), "default": !present })
        })
        .collect();
    json!({ "error": null, "fields": fields })
}

fn tokenizer(g: &GgufFile) -> Json {
    let len = |k: &str| g.get(k).and_then(Value::as_array).map(<[Value]>::len);
    let id = |k: &str| g.get(k).and_then(Value::as_u64);
    let pre = g.get_str("tokenizer.ggml.pre");
    json!({
        "model": g.get_str("tokenizer.ggml.model"),
        "n_tokens": len("tokenizer.ggml.tokens"),
        "n_merges": len("tokenizer.ggml.merges"),
        "bos_token_id": id("tokenizer.ggml.bos_token_id"),
        "eos_token_id": id("tokenizer.ggml.eos_token_id"),
        "add_bos_token": g.get("tokenizer.ggml.add_bos_token").and_then(Value::as_bool),
        "pre": pre,
        "pre_shown": pre.map_or_else(|| "absent (llama.cpp default)".to_string(), str::to_string),
        "chat_template_present": g.get("tokenizer.chat_template").is_some(),
    })
}

/// The LM head the engine multiplies by: `token_embd` in the BitNet archs, which ignore `output.weight` (spec
/// §6.6, pitfall 9); `output.weight` when present in arch `llama` (`build_llama`), else the tied `token_embd`.
fn lm_head(g: &GgufFile) -> Json {
    let output_present = g.tensor("output.weight").is_some();
    let untied = output_present && g.architecture() == Arch::Llama.name();
    let tensor = if untied { "output.weight" } else { "token_embd.weight" };
    let ty = g.tensor(tensor).map(|t| t.ggml_type.name());
    let why = if untied {
        " — arch llama uses its untied output.weight"
    } else if g.architecture() == Arch::Llama.name() {
        " — arch llama without output.weight ties the head to token_embd"
    } else if output_present {
        " — bitnet.cpp ignores output.weight even when present (it is present here)"
    } else {
        " — bitnet.cpp ignores output.weight even when present"
    };
    let shown = format!("{tensor} ({}){why}", ty.unwrap_or("missing").to_uppercase());
    json!({ "tensor": tensor, "type": ty, "output_weight_present": output_present, "shown": shown })
}

/// The public model family (see [`model_family`]), or null when the hyper-parameters cannot be read.
fn family(g: &GgufFile) -> Json {
    HParams::from_gguf(g).map_or(Json::Null, |hp| {
        Json::from(model_family(&hp, g.get_str("tokenizer.ggml.pre")))
    })
}

/// The whole inspect document (shape documented in docs/inspect-json.md).
pub fn document(g: &GgufFile, flavors: &ModelFlavors) -> Json {
    let tensors: Vec<Json> = g
        .tensors
        .iter()
        .zip(&flavors.tensors)
        .map(|(t, f)| {
            json!({
                "name": t.name,
                "type": t.ggml_type.name(),
                "type_id": t.type_id,
                "table": dialect_id(g.dialect),
                "flavor": f.flavor.name(),
                "flavor_detail": f.flavor.describe(),
                "shape": t.dims,
                "n_elements": t.n_elements,
                "byte_size": t.byte_size,
                "span": t.span,
                "offset": t.offset,
                "file_offset": t.file_offset,
            })
        })
        .collect();
    json!({
        "schema": SCHEMA,
        "file": g.path,
        "file_size": g.file_len(),
        "gguf_version": g.version,
        "alignment": g.alignment,
        "data_offset": g.data_offset,
        "n_kv": g.metadata.len(),
        "n_tensors": g.tensors.len(),
        "dialect": { "table": dialect_id(g.dialect), "name": g.dialect.name(), "reason": g.dialect_reason },
        "architecture": g.get_str("general.architecture"),
        "name": g.get_str("general.name"),
        "family": family(g),
        "hparams": hparams(g),
        "tokenizer": tokenizer(g),
        "lm_head": lm_head(g),
        "i2s_layout": flavors.i2s_layout,
        "tl_tiles": tl_tiles(flavors),
        "flavor_counts": flavors.counts,
        "tensors": tensors,
    })
}

/// The TL tile decision with a one-line source, or null for files without TL tensors.
fn tl_tiles(flavors: &ModelFlavors) -> Json {
    let Some(d) = &flavors.tl_tiles else { return Json::Null };
    let bpw: Vec<Json> = flavors
        .tensors
        .iter()
        .filter_map(|t| match &t.flavor {
            engine::flavor::Flavor::Tl { bits_per_weight, .. } => Some(json!(bits_per_weight)),
            _ => None,
        })
        .take(1)
        .collect();
    json!({
        "source": d.source,
        "shown": d.source.to_string(),
        "entries": d.table.entries,
        "tried": d.tried,
        "also_decodes": d.also_decodes,
        "first_bits_per_weight": bpw.first(),
    })
}

/// Render a JSON scalar without quotes around strings.
fn plain(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The human table: the same facts as the JSON, one section each.
fn human(d: &Json) -> String {
    let mut o = String::new();
    header_section(&mut o, d);
    tokenizer_section(&mut o, &d["tokenizer"]);
    layout_section(&mut o, d);
    tensor_section(&mut o, d);
    o
}

/// File, dialect, architecture and hyper-parameters.
fn header_section(o: &mut String, d: &Json) {
    use std::fmt::Write;
    let p = |k: &str| plain(&d[k]);
    let _ = writeln!(o, "file          {} ({} bytes)", p("file"), p("file_size"));
    let _ = writeln!(
        o,
        "gguf          v{}, alignment {}, data at {}",
        p("gguf_version"),
        p("alignment"),
        p("data_offset")
    );
    let _ = writeln!(
        o,
        "dialect       {}: {}",
        plain(&d["dialect"]["name"]),
        plain(&d["dialect"]["reason"])
    );
    let _ = writeln!(o, "architecture  {} ({})", p("architecture"), p("name"));
    let _ = writeln!(o, "family        {}", p("family"));
    let _ = writeln!(o, "\nhyper-parameters");
    match d["hparams"]["error"].as_str() {
        Some(e) => {
            let _ = writeln!(o, "  unavailable: {e}");
        }
        None => {
            for f in d["hparams"]["fields"].as_array().into_iter().flatten() {
                let mark = if f["default"] == true { "  (default)" } else { "" };
                let _ = writeln!(
                    o,
                    "  {:<16} {:<14} {}{mark}",
                    plain(&f["field"]),
                    plain(&f["value"]),
                    plain(&f["key"])
                );
            }
        }
    }
}

/// The tokenizer block.
fn tokenizer_section(o: &mut String, t: &Json) {
    use std::fmt::Write;
    let _ = writeln!(o, "\ntokenizer");
    let _ = writeln!(
        o,
        "  model {}, {} tokens, {} merges",
        plain(&t["model"]),
        plain(&t["n_tokens"]),
        plain(&t["n_merges"])
    );
    let _ = writeln!(
        o,
        "  bos {}, eos {}, add_bos {}",
        plain(&t["bos_token_id"]),
        plain(&t["eos_token_id"]),
        plain(&t["add_bos_token"])
    );
    let _ = writeln!(o, "  pre-tokenizer {}", plain(&t["pre_shown"]));
    let _ = writeln!(
        o,
        "  chat template {}",
        if t["chat_template_present"] == true {
            "present"
        } else {
            "absent"
        }
    );
}

/// LM head, I2_S layout, TL tiles and flavor counts.
fn layout_section(o: &mut String, d: &Json) {
    use std::fmt::Write;
    let _ = writeln!(o, "\nlm head       {}", plain(&d["lm_head"]["shown"]));
    match d["i2s_layout"].as_object() {
        Some(l) => {
            let assumed = if l.get("assumed") == Some(&Json::Bool(true)) {
                " (assumed)"
            } else {
                ""
            };
            let reason = l.get("reason").map(plain).unwrap_or_default();
            let layout = l.get("layout").map(plain).unwrap_or_default();
            let _ = writeln!(o, "i2_s layout   {layout}{assumed}: {reason}");
        }
        None => {
            let _ = writeln!(o, "i2_s layout   - (no I2_S tensors)");
        }
    }
    if let Some(tl) = d["tl_tiles"].as_object() {
        let _ = writeln!(
            o,
            "tl tiles      from {}",
            tl.get("shown").map(plain).unwrap_or_default()
        );
        for e in tl.get("entries").and_then(Json::as_array).into_iter().flatten() {
            let p = &e["params"];
            let _ = writeln!(
                o,
                "  M={} K={}: BM={} BK={} bm={}",
                plain(&e["m"]),
                plain(&e["k"]),
                plain(&p["bm"]),
                plain(&p["bk"]),
                plain(&p["bmm"])
            );
        }
        for t in tl.get("tried").and_then(Json::as_array).into_iter().flatten() {
            let _ = writeln!(o, "  passed over: {}", plain(t));
        }
        for a in tl.get("also_decodes").and_then(Json::as_array).into_iter().flatten() {
            let _ = writeln!(
                o,
                "  also decodes under {} (weights differ; on a trained model perplexity decides, or pass --tl-config)",
                plain(a)
            );
        }
    }
    let counts: Vec<String> = d["flavor_counts"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(o, "flavors       {}", counts.join(", "));
}

/// One row per tensor.
fn tensor_section(o: &mut String, d: &Json) {
    use std::fmt::Write;
    let _ = writeln!(
        o,
        "\n{:<36} {:<12} {:<34} {:<16} {:>10} {:>10}",
        "tensor", "type (id)", "flavor", "shape", "bytes", "offset"
    );
    for t in d["tensors"].as_array().into_iter().flatten() {
        let shape: Vec<String> = t["shape"]
            .as_array()
            .into_iter()
            .flatten()
            .map(Json::to_string)
            .collect();
        let ty = format!("{} ({})", plain(&t["type"]), plain(&t["type_id"]));
        let _ = writeln!(
            o,
            "{:<36} {:<12} {:<34} {:<16} {:>10} {:>10}",
            plain(&t["name"]),
            ty,
            plain(&t["flavor_detail"]),
            format!("[{}]", shape.join(", ")),
            plain(&t["byte_size"]),
            plain(&t["offset"])
        );
    }
}
