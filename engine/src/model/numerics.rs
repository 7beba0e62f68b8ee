//! Numerics profiles: which reference's arithmetic the forward pass reproduces.
//!
//! A profile is a small set of named switches, not a forked forward pass
//! (../shared/spec/reference-generations.md). `bitnet.cpp-2026` is a prediction, never run here.

use serde::Serialize;
use vocab::Generation;

use crate::kernels::SimdOrder;

/// A reference build whose numerics we can reproduce: a [`Generation`], and for bitnet.cpp 2025 also the
/// aarch64 builds, whose float order differs. Serialized as its [`name`](Profile::name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// microsoft/BitNet 404980e + llama.cpp fork 40ed0f29: verified against every golden.
    BitnetCpp2025,
    /// microsoft/BitNet 16da220 + fork 390c3077: PREDICTED from source reading, unverified.
    BitnetCpp2026,
    /// Upstream ggml-org/llama.cpp 0c1e57098 (TQ2_0/TQ1_0/F16, arch `bitnet`).
    LlamaCpp,
    /// bitnet.cpp 2025 cross-built for aarch64 with `-march=armv8-a` (plain NEON): verified against the
    /// `arm` goldens (qemu-user).
    BitnetCpp2025Arm,
    /// bitnet.cpp 2025 built for aarch64 with fp16 vector arithmetic (`-march=armv8.2-a+fp16+dotprod`, the code
    /// paths of an Apple M-series build): verified against the `arm-fp16` goldens (qemu-user).
    BitnetCpp2025ArmFp16,
}

impl Serialize for Profile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A generation's own (x86) build.
impl From<Generation> for Profile {
    fn from(g: Generation) -> Profile {
        match g {
            Generation::BitnetCpp2025 => Profile::BitnetCpp2025,
            Generation::BitnetCpp2026 => Profile::BitnetCpp2026,
            Generation::LlamaCpp => Profile::LlamaCpp,
        }
    }
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::BitnetCpp2025 => "bitnet.cpp-2025",
            Profile::BitnetCpp2026 => "bitnet.cpp-2026",
            Profile::LlamaCpp => "llama.cpp",
            Profile::BitnetCpp2025Arm => "bitnet.cpp-2025-arm",
            Profile::BitnetCpp2025ArmFp16 => "bitnet.cpp-2025-arm-fp16",
        }
    }

    /// The SIMD float order of the build this profile reproduces (docs/kernels.md, "ARM numerics").
    pub fn simd_order(self) -> SimdOrder {
        match self {
            Profile::BitnetCpp2025 | Profile::BitnetCpp2026 | Profile::LlamaCpp => SimdOrder::Avx512,
            Profile::BitnetCpp2025Arm => SimdOrder::Neon,
            Profile::BitnetCpp2025ArmFp16 => SimdOrder::NeonFp16,
        }
    }

    /// The reference build this profile stands for, in words (diagnosis).
    pub fn build(self) -> &'static str {
        match self {
            Profile::BitnetCpp2025 => "an x86 build of bitnet.cpp 2025",
            Profile::BitnetCpp2026 => "bitnet.cpp 2026 (predicted)",
            Profile::LlamaCpp => "upstream llama.cpp",
            Profile::BitnetCpp2025Arm => "an ARM (aarch64, plain NEON) build of bitnet.cpp 2025",
            Profile::BitnetCpp2025ArmFp16 => {
                "an ARM fp16 build of bitnet.cpp 2025 (armv8.2-a+fp16, as on Apple M-series)"
            }
        }
    }

    /// Whether this profile's numerics were checked against a real build.
    pub fn verified(self) -> bool {
        self != Profile::BitnetCpp2026
    }

    pub fn all() -> [Profile; 5] {
        [
            Profile::BitnetCpp2025,
            Profile::BitnetCpp2026,
            Profile::LlamaCpp,
            Profile::BitnetCpp2025Arm,
            Profile::BitnetCpp2025ArmFp16,
        ]
    }
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Profile, String> {
        Profile::all().into_iter().find(|p| p.name() == s).ok_or_else(|| {
            format!(
                "unknown numerics profile {s:?} (expected bitnet.cpp-2025, bitnet.cpp-2026, llama.cpp, \
                 bitnet.cpp-2025-arm, bitnet.cpp-2025-arm-fp16 or auto)"
            )
        })
    }
}

/// A single documented difference between reference generations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Switch {
    /// SiLU instead of ReLU² in the bitnet-b1.58 FFN (microsoft/BitNet #588).
    H1,
    /// I2_S epilogue `(f32(dot) − f32(sum)) · f32(w_scale / act_scale)`, int32 sums (no int16 wrap).
    H2,
    /// F16 matmuls of ≥ 2 rows round their activations to f16 (KQ, probs×V, LM head via tinyBLAS).
    H3,
    /// KV window padded to 256 cells.
    H4,
    /// Upstream llama.cpp built with GCC: the TQ dot's per-lane `sumf + lane·d` contracted to an FMA.
    U1,
}

impl Switch {
    pub fn all() -> [Switch; 5] {
        [Switch::H1, Switch::H2, Switch::H3, Switch::H4, Switch::U1]
    }

    pub fn name(self) -> &'static str {
        match self {
            Switch::H1 => "H1",
            Switch::H2 => "H2",
            Switch::H3 => "H3",
            Switch::H4 => "H4",
            Switch::U1 => "U1",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Switch::H1 => "SiLU instead of ReLU² in the bitnet-b1.58 FFN",
            Switch::H2 => "I2_S epilogue multiplies by w_scale/act_scale, int32 sums",
            Switch::H3 => "f16-rounded activations in F16 matmuls of >= 2 rows",
            Switch::H4 => "KV window padded to 256 cells",
            Switch::U1 => "TQ dot epilogue fused into FMA (upstream built with GCC)",
        }
    }
}

impl std::str::FromStr for Switch {
    type Err = String;
    fn from_str(s: &str) -> Result<Switch, String> {
        Switch::all()
            .into_iter()
            .find(|w| w.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown switch {s:?} (expected H1, H2, H3, H4 or U1)"))
    }
}

/// The arithmetic one forward pass follows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Numerics {
    pub profile: Profile,
    /// Switches in force (the profile's own plus any added by `--switch`).
    pub switches: Vec<Switch>,
    /// Why this profile was chosen (for `auto`), in words.
    pub reason: String,
}

impl Numerics {
    /// A profile with exactly its own switches.
    pub fn profile(profile: Profile, reason: impl Into<String>) -> Numerics {
        let switches = match profile {
            Profile::BitnetCpp2026 => vec![Switch::H1, Switch::H2, Switch::H3, Switch::H4],
            Profile::BitnetCpp2025 | Profile::LlamaCpp | Profile::BitnetCpp2025Arm | Profile::BitnetCpp2025ArmFp16 => {
                Vec::new()
            }
        };
        Numerics {
            profile,
            switches,
            reason: reason.into(),
        }
    }

    pub fn bitnet_2025() -> Numerics {
        Numerics::profile(Profile::BitnetCpp2025, "default")
    }

    /// Add single switches (for experiments and diagnosis).
    pub fn with_switches(mut self, extra: &[Switch]) -> Numerics {
        for s in extra {
            if !self.switches.contains(s) {
                self.switches.push(*s);
            }
        }
        self.switches.sort();
        self
    }

    pub fn has(&self, s: Switch) -> bool {
        self.switches.contains(&s)
    }

    /// Whether F16 matmuls of >= 2 rows round their f32 operand to f16 (H3; always so upstream).
    pub fn f16_rounded_activations(&self) -> bool {
        self.has(Switch::H3) || self.profile == Profile::LlamaCpp
    }

    /// The SIMD float order of the reference build (F16 kernels, softmax, SiLU).
    pub fn simd_order(&self) -> SimdOrder {
        self.profile.simd_order()
    }

    /// KV window granularity in cells.
    pub fn kv_pad(&self) -> usize {
        if self.has(Switch::H4) || self.profile == Profile::LlamaCpp {
            256
        } else {
            32
        }
    }

    /// A label such as `bitnet.cpp-2025` or `bitnet.cpp-2025+H1`, with "(predicted)" where unverified.
    pub fn label(&self) -> String {
        let own = Numerics::profile(self.profile, "").switches;
        let extra: Vec<&str> = self
            .switches
            .iter()
            .filter(|s| !own.contains(s))
            .map(|s| s.name())
            .collect();
        let mut l = self.profile.name().to_string();
        if !extra.is_empty() {
            l.push('+');
            l.push_str(&extra.join("+"));
        }
        if !self.profile.verified() {
            l.push_str(" (predicted, unverified)");
        }
        l
    }
}
