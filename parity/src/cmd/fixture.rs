//! `parity fixture`: write a deterministic random BitNet GGUF model (the `fixtures` crate's generator).
//! Same arguments ⇒ byte-identical file; the same seed and shapes in another flavor ⇒ the same ternary
//! weights. The 2B-4T shape (1.2 GB) is streamed to disk with progress on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::ValueEnum;

use fixtures::{Arch, FixtureSpec, Flavor, ForeignLayout, Progress};

/// Arguments of `parity fixture`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  parity fixture --arch bitnet-b1.58 --flavor i2s --seed 1 --out tiny.gguf
  parity fixture --arch bitnet --flavor tq2_0 --seed 7 --hidden 512 --ffn 1280 --out legacy-tq2.gguf
  parity fixture --flavor i2s-arm --seed 1 --out tiny-arm.gguf     # same weights as the first, ARM packing
  parity fixture --shape 2b4t --flavor i2s --seed 0 --out 2b4t-random.gguf   # 1.2 GB, streamed
  parity fixture --shape falcon3-1b --seed 0 --out falcon3-1b.gguf   # arch llama, head_dim 256
  parity fixture --arch llama --hidden 384 --heads 3 --kv-heads 1 --head-dim 256 --out f3.gguf  # Q8_0 output
  parity fixture --foreign qk256-noscale --seed 3 --out foreign.gguf  # type-36 tensors in a foreign layout

Defaults (tiny): hidden 256, ffn 512, 2 layers, 4 heads (b1.58: 2 KV heads; bitnet: 4), vocab 512, ctx 2048,
rope theta 500000, eps 1e-5. Given --heads without --kv-heads, kv-heads = heads. As llama-quantize does, the
LM head (arch llama: output.weight; otherwise the tied token_embd) is Q8_0 when hidden % 256 != 0.")]
pub struct Args {
    /// Architecture [default: bitnet-b1.58, or the shape's].
    #[arg(long, value_enum)]
    pub arch: Option<ArchArg>,
    /// Storage of the ternary matrices.
    #[arg(long, value_enum, default_value = "i2s")]
    pub flavor: FlavorArg,
    /// PRNG seed: every value in the file derives from it.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Start from exact model shapes (2b4t: BitNet b1.58 2B-4T, arch bitnet-b1.58; falcon3-1b and llama3-8b:
    /// arch llama); other flags override.
    #[arg(long, value_enum)]
    pub shape: Option<ShapeArg>,
    #[arg(long)]
    pub hidden: Option<usize>,
    #[arg(long)]
    pub ffn: Option<usize>,
    #[arg(long)]
    pub layers: Option<usize>,
    #[arg(long)]
    pub heads: Option<usize>,
    #[arg(long)]
    pub kv_heads: Option<usize>,
    /// Head size written as `attention.key_length` (arch llama only; default hidden / heads).
    #[arg(long)]
    pub head_dim: Option<usize>,
    #[arg(long)]
    pub vocab: Option<usize>,
    /// Training context length written to the metadata.
    #[arg(long)]
    pub ctx: Option<usize>,
    #[arg(long)]
    pub rope_theta: Option<f32>,
    #[arg(long)]
    pub eps: Option<f32>,
    /// Store the ternary matrices as type 36 in a layout no real tool writes (ignores --flavor).
    #[arg(long, value_enum)]
    pub foreign: Option<ForeignArg>,
    /// Output GGUF file.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ArchArg {
    #[value(name = "bitnet-b1.58")]
    BitnetB158,
    Bitnet,
    Llama,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FlavorArg {
    I2s,
    I2sArm,
    #[value(name = "tq2_0")]
    Tq2_0,
    #[value(name = "tq1_0")]
    Tq1_0,
    F16,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ShapeArg {
    #[value(name = "2b4t")]
    TwoB4T,
    #[value(name = "falcon3-1b")]
    Falcon3_1b,
    #[value(name = "llama3-8b")]
    Llama3_8b,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ForeignArg {
    Bitnet32f16,
    Split32Sibling,
    Qk256Noscale,
}

/// Turn the arguments into a spec (not yet validated).
pub fn spec_from_args(args: &Args) -> FixtureSpec {
    let shape_arch = match args.shape {
        Some(ShapeArg::Falcon3_1b | ShapeArg::Llama3_8b) => Arch::Llama,
        Some(ShapeArg::TwoB4T) | None => Arch::BitnetB158,
    };
    let arch = match args.arch {
        None => shape_arch,
        Some(ArchArg::BitnetB158) => Arch::BitnetB158,
        Some(ArchArg::Bitnet) => Arch::Bitnet,
        Some(ArchArg::Llama) => Arch::Llama,
    };
    let flavor = match args.flavor {
        FlavorArg::I2s => Flavor::I2s,
        FlavorArg::I2sArm => Flavor::I2sArm,
        FlavorArg::Tq2_0 => Flavor::Tq2_0,
        FlavorArg::Tq1_0 => Flavor::Tq1_0,
        FlavorArg::F16 => Flavor::F16,
    };
    let base = match args.shape {
        Some(ShapeArg::TwoB4T) => FixtureSpec::shape_2b4t(),
        Some(ShapeArg::Falcon3_1b) => FixtureSpec::shape_falcon3_1b(),
        Some(ShapeArg::Llama3_8b) => FixtureSpec::shape_llama3_8b(),
        None => FixtureSpec::tiny(arch, flavor, args.seed),
    };
    let mut s = FixtureSpec {
        arch,
        flavor,
        seed: args.seed,
        ..base
    };
    if args.head_dim.is_some() {
        s.key_length = args.head_dim;
    }
    let set = |slot: &mut usize, v: Option<usize>| {
        if let Some(v) = v {
            *slot = v;
        }
    };
    set(&mut s.hidden, args.hidden);
    set(&mut s.ffn, args.ffn);
    set(&mut s.layers, args.layers);
    set(&mut s.heads, args.heads);
    set(&mut s.kv_heads, args.kv_heads.or(args.heads));
    set(&mut s.vocab, args.vocab);
    set(&mut s.ctx, args.ctx);
    s.rope_theta = args.rope_theta.unwrap_or(s.rope_theta);
    s.eps = args.eps.unwrap_or(s.eps);
    s
}

pub fn main(args: Args) -> Result<ExitCode> {
    let spec = spec_from_args(&args);
    spec.validate().context("invalid model shape")?;
    let what = format!(
        "arch={} flavor={} seed={} hidden={} ffn={} layers={} heads={}/{} vocab={} ctx={}",
        spec.arch,
        args.foreign.map_or(spec.flavor.name(), |f| foreign(f).name()),
        spec.seed,
        spec.hidden,
        spec.ffn,
        spec.layers,
        spec.heads,
        spec.kv_heads,
        spec.vocab,
        spec.ctx
    );
    let bytes = match args.foreign {
        Some(f) => {
            let data = fixtures::foreign_fixture(&spec, foreign(f))?;
            std::fs::write(&args.out, &data).with_context(|| format!("writing {}", args.out.display()))?;
            data.len() as u64
        }
        None => {
            let mut last_pct = None;
            let mut report = |p: &Progress<'_>| {
                if p.total < 64 << 20 {
                    return;
                }
                let pct = p.written * 100 / p.total.max(1);
                if last_pct.is_none_or(|l| pct >= l + 5) {
                    eprintln!(
                        "[{:>3}%] {}/{} {} ({} / {} MB)",
                        pct,
                        p.index + 1,
                        p.count,
                        p.name,
                        p.written >> 20,
                        p.total >> 20
                    );
                    last_pct = Some(pct);
                }
            };
            fixtures::write_fixture_file(&spec, &args.out, &mut report)?
        }
    };
    println!("wrote {} ({bytes} bytes): {what}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn foreign(f: ForeignArg) -> ForeignLayout {
    match f {
        ForeignArg::Bitnet32f16 => ForeignLayout::BitNet32F16,
        ForeignArg::Split32Sibling => ForeignLayout::Split32WithSibling,
        ForeignArg::Qk256Noscale => ForeignLayout::Qk256NoScale,
    }
}
