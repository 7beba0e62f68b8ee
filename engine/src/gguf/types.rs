//! ggml tensor type ids and the two tables that assign them.
//!
//! bitnet.cpp's llama.cpp fork and upstream ggml agree on ids 0..=35 (except 31..=33, which upstream
//! removed) and disagree above: the fork has I2_S=36, I8_S=37, TL1=38, TL2=39 while upstream left 36..=38
//! unassigned and gave 39 to MXFP4. Which table applies is a property of the whole file ([`Dialect`]),
//! decided by the reader from the architecture, the ids present and byte spans (spec §2).

use serde::Serialize;

/// Which ggml type-id table a file was written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// bitnet.cpp's llama.cpp fork (I2_S = 36, TL2 = 39).
    BitnetFork,
    /// Upstream ggml (36..=38 unassigned, 39 = MXFP4).
    Upstream,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::BitnetFork => "bitnet.cpp fork",
            Dialect::Upstream => "upstream ggml",
        }
    }
}

/// A ggml tensor type, resolved against a [`Dialect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    Q4_0_4_4,
    Q4_0_4_8,
    Q4_0_8_8,
    TQ1_0,
    TQ2_0,
    /// bitnet.cpp: 2-bit ternary codes + one f32 per-tensor scale in a 32-byte tail.
    I2_S,
    /// bitnet.cpp: int8 activations; never valid in a file.
    I8_S,
    /// bitnet.cpp LUT kernel layout (2 weights per 4-bit index).
    TL1,
    /// bitnet.cpp LUT kernel layout (3 weights per sign + 4-bit index).
    TL2,
    /// Upstream: microscaling FP4 (17 bytes per 32).
    MXFP4,
}

/// How many bytes a tensor of a type occupies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// `block` elements per `bytes` bytes; rows must hold whole blocks.
    Blocks { block: u64, bytes: u64 },
    /// bitnet.cpp's I2_S / TL1: `n/4` code bytes then a 32-byte tail (spec §3.1).
    QuarterPlusTail,
    /// bitnet.cpp's TL2: `align32((K−256)·M/3·5/8 + 256·M/2·4/8) + 32` (spec §4.3).
    Tl2,
    /// Not storable in a file.
    Invalid,
}

impl GgmlType {
    /// Resolve a raw id under a dialect; `None` if the id means nothing there.
    pub fn from_id(id: u32, dialect: Dialect) -> Option<GgmlType> {
        use GgmlType::*;
        Some(match id {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            9 => Q8_1,
            10 => Q2_K,
            11 => Q3_K,
            12 => Q4_K,
            13 => Q5_K,
            14 => Q6_K,
            15 => Q8_K,
            16 => IQ2_XXS,
            17 => IQ2_XS,
            18 => IQ3_XXS,
            19 => IQ1_S,
            20 => IQ4_NL,
            21 => IQ3_S,
            22 => IQ2_S,
            23 => IQ4_XS,
            24 => I8,
            25 => I16,
            26 => I32,
            27 => I64,
            28 => F64,
            29 => IQ1_M,
            30 => BF16,
            31 if dialect == Dialect::BitnetFork => Q4_0_4_4,
            32 if dialect == Dialect::BitnetFork => Q4_0_4_8,
            33 if dialect == Dialect::BitnetFork => Q4_0_8_8,
            34 => TQ1_0,
            35 => TQ2_0,
            36 if dialect == Dialect::BitnetFork => I2_S,
            37 if dialect == Dialect::BitnetFork => I8_S,
            38 if dialect == Dialect::BitnetFork => TL1,
            39 if dialect == Dialect::BitnetFork => TL2,
            39 => MXFP4,
            _ => return None,
        })
    }

    /// The raw id this type has in its own table.
    pub fn id(self) -> u32 {
        use GgmlType::*;
        match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q5_0 => 6,
            Q5_1 => 7,
            Q8_0 => 8,
            Q8_1 => 9,
            Q2_K => 10,
            Q3_K => 11,
            Q4_K => 12,
            Q5_K => 13,
            Q6_K => 14,
            Q8_K => 15,
            IQ2_XXS => 16,
            IQ2_XS => 17,
            IQ3_XXS => 18,
            IQ1_S => 19,
            IQ4_NL => 20,
            IQ3_S => 21,
            IQ2_S => 22,
            IQ4_XS => 23,
            I8 => 24,
            I16 => 25,
            I32 => 26,
            I64 => 27,
            F64 => 28,
            IQ1_M => 29,
            BF16 => 30,
            Q4_0_4_4 => 31,
            Q4_0_4_8 => 32,
            Q4_0_8_8 => 33,
            TQ1_0 => 34,
            TQ2_0 => 35,
            I2_S => 36,
            I8_S => 37,
            TL1 => 38,
            TL2 => 39,
            MXFP4 => 39,
        }
    }

    /// ggml's name for the type (as `ggml_type_name` prints it).
    pub fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "f32",
            F16 => "f16",
            Q4_0 => "q4_0",
            Q4_1 => "q4_1",
            Q5_0 => "q5_0",
            Q5_1 => "q5_1",
            Q8_0 => "q8_0",
            Q8_1 => "q8_1",
            Q2_K => "q2_K",
            Q3_K => "q3_K",
            Q4_K => "q4_K",
            Q5_K => "q5_K",
            Q6_K => "q6_K",
            Q8_K => "q8_K",
            IQ2_XXS => "iq2_xxs",
            IQ2_XS => "iq2_xs",
            IQ3_XXS => "iq3_xxs",
            IQ1_S => "iq1_s",
            IQ4_NL => "iq4_nl",
            IQ3_S => "iq3_s",
            IQ2_S => "iq2_s",
            IQ4_XS => "iq4_xs",
            I8 => "i8",
            I16 => "i16",
            I32 => "i32",
            I64 => "i64",
            F64 => "f64",
            IQ1_M => "iq1_m",
            BF16 => "bf16",
            Q4_0_4_4 => "q4_0_4x4",
            Q4_0_4_8 => "q4_0_4x8",
            Q4_0_8_8 => "q4_0_8x8",
            TQ1_0 => "tq1_0",
            TQ2_0 => "tq2_0",
            I2_S => "i2_s",
            I8_S => "i8_s",
            TL1 => "tl1",
            TL2 => "tl2",
            MXFP4 => "mxfp4",
        }
    }

    /// How the type's bytes are laid out in a file.
    pub fn storage(self) -> Storage {
        use GgmlType::*;
        let b = |block, bytes| Storage::Blocks { block, bytes };
        match self {
            F32 | I32 => b(1, 4),
            F16 | BF16 | I16 => b(1, 2),
            I8 => b(1, 1),
            I64 | F64 => b(1, 8),
            Q4_0 | IQ4_NL | Q4_0_4_4 | Q4_0_4_8 | Q4_0_8_8 => b(32, 18),
            Q4_1 => b(32, 20),
            Q5_0 => b(32, 22),
            Q5_1 => b(32, 24),
            Q8_0 => b(32, 34),
            Q8_1 => b(32, 36),
            Q2_K => b(256, 84),
            Q3_K => b(256, 110),
            Q4_K => b(256, 144),
            Q5_K => b(256, 176),
            Q6_K => b(256, 210),
            Q8_K => b(256, 292),
            IQ2_XXS => b(256, 66),
            IQ2_XS => b(256, 74),
            IQ3_XXS => b(256, 98),
            IQ1_S => b(256, 50),
            IQ3_S => b(256, 110),
            IQ2_S => b(256, 82),
            IQ4_XS => b(256, 136),
            IQ1_M => b(256, 56),
            TQ1_0 => b(256, 54),
            TQ2_0 => b(256, 66),
            MXFP4 => b(32, 17),
            I2_S | TL1 => Storage::QuarterPlusTail,
            TL2 => Storage::Tl2,
            I8_S => Storage::Invalid,
        }
    }

    /// True byte size of a tensor with dims `ne` (ne[0] = row length), or `None` on overflow or a
    /// row length that does not hold whole blocks.
    pub fn byte_size(self, ne: &[u64]) -> Option<u64> {
        let n = ne.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
        let k = *ne.first().unwrap_or(&1);
        match self.storage() {
            Storage::Blocks { block, bytes } => {
                if !k.is_multiple_of(block) {
                    return None;
                }
                (n / block).checked_mul(bytes)
            }
            Storage::QuarterPlusTail => (n / 4).checked_add(32),
            Storage::Tl2 => {
                let m = n / k.max(1);
                let big = k.checked_sub(256)?.checked_mul(m)? / 3 * 5 / 8;
                let small = 256u64.checked_mul(m)? / 2 * 4 / 8;
                align_up(big.checked_add(small)?, 32)?.checked_add(32)
            }
            Storage::Invalid => None,
        }
    }
}

/// Round `x` up to a multiple of `align` (a power of two or any positive value), checked.
pub fn align_up(x: u64, align: u64) -> Option<u64> {
    if align == 0 {
        return None;
    }
    let r = x % align;
    if r == 0 {
        Some(x)
    } else {
        x.checked_add(align - r)
    }
}
