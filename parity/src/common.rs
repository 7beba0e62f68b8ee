//! Helpers shared by subcommands: id lists, the bundled fixture's location.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// Parse `1,2,3` (spaces allowed) into token ids.
pub fn parse_ids(s: &str) -> Result<Vec<u32>> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<u32>().with_context(|| format!("not a token id: {t:?}")))
        .collect::<Result<Vec<_>>>()
        .and_then(|v| if v.is_empty() { bail!("empty token list") } else { Ok(v) })
}

/// The repository's `fixtures/` directory (compiled in; overridable with `PARITY_FIXTURES`).
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("PARITY_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures")))
}

use std::path::Path;

use engine::flavor::{FlavorOptions, I2sLayout, TlOptions};
use engine::kernels::cuda::{CudaBackend, Device};
use engine::kernels::{Dispatcher, KernelChoice, KernelId};
use engine::model::{Model, Numerics, Profile, Session, Switch};
use vocab::Mode;

/// Options shared by every command that computes.
#[derive(clap::Args, Debug, Clone)]
pub struct EngineArgs {
    /// Worker threads, 1 to 512 (results are bit-identical for any count).
    #[arg(long, short = 't', default_value_t = default_threads(), value_parser = crate::limits::threads)]
    pub threads: usize,
    /// Kernel family: auto, scalar, avx2, avx512 (VNNI prefill) or amx (AMX-INT8 prefill) (also PARITY_KERNEL).
    #[arg(long, default_value = "auto")]
    pub kernel: String,
    /// Numerics profile: auto, bitnet.cpp-2025, bitnet.cpp-2026 (predicted) or llama.cpp.
    #[arg(long, default_value = "auto")]
    pub numerics: String,
    /// Extra single switches on top of the profile, e.g. H1,H3.
    #[arg(long, value_delimiter = ',')]
    pub switch: Vec<String>,
    /// I2_S packing: x86 (default, assumed), arm, or x86-1x4 — sizes are identical, files do not say.
    #[arg(long, value_enum)]
    pub i2s_layout: Option<LayoutArg>,
    /// TL1/TL2 files: the kernel_config.ini they were converted with (else: beside the model,
    /// $BITNET_CPP_DIR/include/kernel_config.ini, bitnet.cpp's presets for known shapes).
    #[arg(long, value_name = "PATH")]
    pub tl_config: Option<PathBuf>,
    /// Compute from the memory-mapped file (zero-copy) instead of copying the matmul weights into
    /// huge-page-backed memory at load (the default: decode streams them faster; peak RSS stays ≈ the file).
    #[arg(long)]
    pub mmap: bool,
}

/// Where the forward pass runs (the commands that compute a forward pass and report it).
#[derive(clap::Args, Debug, Clone)]
pub struct DeviceArgs {
    /// cpu, cuda or cuda:N. CUDA needs a parity built with `--features cuda`, an NVIDIA driver (libcuda.so)
    /// and NVRTC 12 (libnvrtc.so.12); see docs/cuda.md (cosine-level, not bit-exact, against the CPU).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    pub device: Device,
}

fn parse_device(s: &str) -> Result<Device, String> {
    s.parse::<Device>().map_err(|e| e.to_string())
}

/// CLI names of the I2_S packings (spec §3.3–§3.5).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LayoutArg {
    /// x86 ACT_PARALLEL, 128-weight blocks (default).
    X86,
    /// ARM since BitNet 112f853, 64-weight blocks.
    Arm,
    /// x86 without ACT_PARALLEL, four rows interleaved.
    #[value(name = "x86-1x4")]
    X86_1x4,
}

impl From<LayoutArg> for I2sLayout {
    fn from(a: LayoutArg) -> Self {
        match a {
            LayoutArg::X86 => I2sLayout::X86Act128,
            LayoutArg::Arm => I2sLayout::Arm64,
            LayoutArg::X86_1x4 => I2sLayout::X86NoActParallel1x4,
        }
    }
}

/// Where TL tile parameters may come from: the flag, the model's directory, `$BITNET_CPP_DIR`.
pub fn tl_options(config: Option<&Path>, model: &Path) -> TlOptions {
    TlOptions {
        config: config.map(Path::to_path_buf),
        model_path: Some(model.to_path_buf()),
        bitnet_cpp_dir: std::env::var_os("BITNET_CPP_DIR").map(PathBuf::from),
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// A loaded model with its dispatcher and numerics, and the CUDA device its sessions run on (`None`: the CPU).
pub struct EngineCtx {
    pub model: Model,
    pub disp: Dispatcher,
    pub numerics: Numerics,
    pub cuda: Option<CudaBackend>,
}

impl EngineArgs {
    /// Set up threads, kernels, and load the model.
    pub fn load(&self, path: &Path) -> Result<EngineCtx> {
        // A second call (tests, in-process use) keeps the first pool; thread count never changes results.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads.max(1))
            .build_global();
        let choice: KernelChoice = self.kernel.parse()?;
        let disp = Dispatcher::new(choice)?;
        let opts = FlavorOptions {
            i2s_layout: self.i2s_layout.map(I2sLayout::from),
            tl: tl_options(self.tl_config.as_deref(), path),
        };
        let mut model = Model::open_with(path, &opts)?;
        if !self.mmap {
            model.make_resident()?;
        }
        let numerics = self.numerics_for(&model)?;
        Ok(EngineCtx {
            model,
            disp,
            numerics,
            cuda: None,
        })
    }

    /// The numerics profile asked for (`auto` asks the model) plus single switches.
    pub fn numerics_for(&self, model: &Model) -> Result<Numerics> {
        numerics(model, &self.numerics, &self.switch, "chosen with --numerics")
    }
}

/// A numerics profile by name (`auto` asks the model) plus single switches by name; `why` is the reason recorded.
pub fn numerics(model: &Model, profile: &str, switches: &[String], why: &str) -> Result<Numerics> {
    let base = match profile {
        "auto" => model.auto_numerics(),
        p => Numerics::profile(p.parse::<Profile>().map_err(anyhow::Error::msg)?, why),
    };
    let extra = switches
        .iter()
        .map(|s| s.parse::<Switch>().map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    Ok(base.with_switches(&extra))
}

/// clap parser for `--mode batch|seq`.
pub fn mode_parser() -> impl clap::builder::TypedValueParser<Value = Mode> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["batch", "seq"]).try_map(|s| s.parse::<Mode>())
}

impl EngineCtx {
    /// The model's tokenizer: an explicit tokenizer.json, else the GGUF's vocabulary, else a sibling
    /// tokenizer.json.
    pub fn tokenizer(&self, json: Option<&Path>) -> Result<engine::tokenizer::Tokenizer> {
        let path = self.model.file.path.as_deref().map(Path::new).unwrap_or(Path::new(""));
        Ok(engine::tokenizer::Tokenizer::load(path, json)?)
    }

    /// The model as receipts describe it: path, SHA-256, architecture and tensor flavor counts.
    pub fn receipt_model(&self, path: &Path) -> receipts::Model {
        receipts::Model {
            path: path.display().to_string(),
            sha256: self.model_sha256(),
            architecture: self.model.hparams.arch_name.clone(),
            flavor_summary: self
                .model
                .flavors
                .counts
                .iter()
                .map(|(k, v)| (k.to_string(), *v as u64))
                .collect(),
        }
    }

    /// Run this context's sessions on `device`: a CUDA device is opened (driver, NVRTC, kernels compiled) here,
    /// and a build without the `cuda` feature or a machine without a driver is an error saying so.
    pub fn on(mut self, device: &DeviceArgs) -> Result<EngineCtx> {
        self.cuda = match device.device {
            Device::Cpu => None,
            Device::Cuda(ordinal) => {
                Some(CudaBackend::new_on(ordinal).with_context(|| format!("--device {}", device.device))?)
            }
        };
        Ok(self)
    }

    /// The devices receipts list under `host.accelerators` (`cuda:<name>`), `None` on the CPU.
    pub fn accelerators(&self) -> Option<Vec<String>> {
        self.cuda.as_ref().map(|b| vec![format!("cuda:{}", b.device_name())])
    }

    /// A session of `n_ctx` cells on this context's device.
    pub fn session(&self, n_ctx: usize) -> Result<Session<'_>> {
        let numerics = self.numerics.clone();
        Ok(Session::try_new_on(
            self.cuda.as_ref(),
            &self.model,
            &self.disp,
            numerics,
            n_ctx,
        )?)
    }

    /// SHA-256 of the model file, hashed in 8 MiB pieces; with resident weights each piece is released again
    /// after hashing, so the digest does not pull the whole file back into the resident set.
    pub fn model_sha256(&self) -> String {
        use sha2::{Digest, Sha256};
        const PIECE: usize = 8 << 20;
        let (file, mut h) = (&self.model.file, Sha256::new());
        let bytes = file.bytes();
        for start in (0..bytes.len()).step_by(PIECE) {
            let r = start..(start + PIECE).min(bytes.len());
            h.update(&bytes[r.clone()]);
            if self.model.weights.is_resident() {
                file.release(r);
            }
        }
        hex::encode(h.finalize())
    }
}

/// Where a prompt's tokens come from.
#[derive(clap::Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct PromptArgs {
    /// Token ids, comma-separated.
    #[arg(long)]
    pub tokens: Option<String>,
    /// Text, tokenized with the model's tokenizer (BOS as the model says; special tokens parsed).
    #[arg(long)]
    pub prompt: Option<String>,
    /// Use this tokenizer.json instead of the GGUF's embedded vocabulary.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
}

impl PromptArgs {
    pub fn resolve(&self, ctx: &EngineCtx) -> Result<Vec<u32>> {
        match (&self.tokens, &self.prompt) {
            (Some(t), _) => parse_ids(t),
            (None, Some(text)) => {
                let tok = ctx.tokenizer(self.tokenizer.as_deref())?;
                let ids = tok.encode(text, true, true)?;
                if ids.is_empty() {
                    bail!("the prompt tokenizes to no tokens");
                }
                Ok(ids)
            }
            (None, None) => bail!("give --tokens or --prompt"),
        }
    }
}

/// The receipt form of a dispatcher log: call counts by rendered kernel ID, and each kernel's ISA (what the
/// `kernels.isa` gate reads).
pub fn kernel_records(
    log: &std::collections::BTreeMap<KernelId, u64>,
) -> (receipts::KernelLog, receipts::KernelIsaLog) {
    let counts = log.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    let isa = log
        .keys()
        .map(|k| {
            let isa = receipts::KernelIsa {
                isa: k.isa.name().to_owned(),
                requires: k.isa.requires().iter().map(|f| (*f).to_owned()).collect(),
            };
            (k.to_string(), isa)
        })
        .collect();
    (counts, isa)
}
