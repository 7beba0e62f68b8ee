//! Kernel IDs as data: what a kernel computes (op), which weight layout it reads, which instruction set it
//! needs and which variant it is. [`KernelId`] renders to the dotted strings receipts report
//! (`<op>[.<layout>].<isa>[.<variant>]`, e.g. `i2s.x86.avx512vnni.gemv`: `x86` is the I2_S *weight layout*,
//! not the host); the ISA travels as its own field, so a gate reads [`Isa::requires`] instead of the string.

use std::fmt;

/// What a kernel computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// `quantize_row_i8_s` (I2_S activations).
    I8sQuantize,
    /// I2_S integer dots.
    I2s,
    /// Dense f16 weights.
    F16,
    /// `quantize_row_q8_K` (TQ activations).
    Q8kQuantize,
    Tq2_0,
    Tq1_0,
    /// Q8_0 weights × Q8_0 activations (and `quantize_row_q8_0` of the activations, variant `quantize`).
    Q8_0,
    /// Element-wise f32 ops of the forward pass (softmax, activation, RoPE).
    Softmax,
    FfnAct,
    Rope,
    /// CUDA-only ops (the CPU's are inline f32 arithmetic or several kernels).
    RmsNorm,
    Attn,
    /// Element-wise product and sum (CUDA).
    Mul,
    Add,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::I8sQuantize => "i8s",
            Op::I2s => "i2s",
            Op::F16 => "f16",
            Op::Q8kQuantize => "q8k",
            Op::Tq2_0 => "tq2_0",
            Op::Tq1_0 => "tq1_0",
            Op::Q8_0 => "q8_0",
            Op::Softmax => "softmax",
            Op::FfnAct => "ffn_act",
            Op::Rope => "rope",
            Op::RmsNorm => "rms_norm",
            Op::Mul => "mul",
            Op::Add => "add",
            Op::Attn => "attn",
        }
    }
}

/// The weight layout a kernel reads (only for weight types with several packings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WeightLayout {
    /// I2_S x86-act128 (what every I2_S kernel reads; other packings are repacked at load).
    X86,
    /// I2_S arm64 64-block packing.
    Arm,
}

impl WeightLayout {
    pub fn name(self) -> &'static str {
        match self {
            WeightLayout::X86 => "x86",
            WeightLayout::Arm => "arm",
        }
    }
}

/// The instruction set a kernel is compiled for; [`Isa::requires`] lists the CPU features it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Isa {
    /// Portable Rust: the oracle.
    Scalar,
    /// Portable Rust compiled with FMA enabled (same single-rounding FMAs as the scalar code).
    Fma,
    /// AVX2 + FMA + F16C.
    Avx2,
    /// AVX-512 F/BW/VL (on top of the AVX2 set).
    Avx512,
    /// AVX-512 F/BW/VL, named for its `vpmaddubsw` I2_S kernel.
    Avx512bw,
    /// AVX-512 F/BW/VL + VNNI (`vpdpbusd`).
    Avx512vnni,
    /// AVX-512 F/BW/VL + AMX-TILE + AMX-INT8 (`tdpbusd`), with the tile state granted by the OS.
    Amx,
    /// AArch64 Advanced SIMD.
    Neon,
    /// AArch64 Advanced SIMD + FEAT_DotProd (`sdot`).
    Dotprod,
    /// AArch64 Advanced SIMD + FEAT_FP16 (half-precision vector arithmetic).
    NeonFp16,
    /// A CUDA device (needs a recorded accelerator, no CPU feature).
    Cuda,
}

impl Isa {
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Fma => "fma",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Avx512bw => "avx512bw",
            Isa::Avx512vnni => "avx512vnni",
            Isa::Amx => "amx",
            Isa::Neon => "neon",
            Isa::Dotprod => "dotprod",
            Isa::NeonFp16 => "neonfp16",
            Isa::Cuda => "cuda",
        }
    }

    /// The CPU features (as receipts' `host.isa_features` spells them) a kernel of this ISA needs.
    pub fn requires(self) -> &'static [&'static str] {
        const AVX2: &[&str] = &["avx2", "fma", "f16c"];
        const AVX512: &[&str] = &["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl"];
        match self {
            Isa::Scalar | Isa::Cuda => &[],
            Isa::Fma => &["fma"],
            Isa::Avx2 => AVX2,
            Isa::Avx512 | Isa::Avx512bw => AVX512,
            Isa::Avx512vnni => &["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512vnni"],
            Isa::Amx => &[
                "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "amx_tile", "amx_int8",
            ],
            Isa::Neon => &["neon"],
            Isa::Dotprod => &["neon", "dotprod"],
            Isa::NeonFp16 => &["neon", "fp16"],
        }
    }

    /// Whether this CPU (and this build) can run kernels of this ISA.
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::Cuda => false,
            #[cfg(target_arch = "x86_64")]
            Isa::Fma => is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Avx512bw => {
                Isa::Avx2.available()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512vnni => Isa::Avx512.available() && is_x86_feature_detected!("avx512vnni"),
            #[cfg(target_arch = "x86_64")]
            Isa::Amx => Isa::Avx512.available() && super::amx::available(),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "aarch64")]
            Isa::Dotprod => Isa::Neon.available() && std::arch::is_aarch64_feature_detected!("dotprod"),
            #[cfg(target_arch = "aarch64")]
            Isa::NeonFp16 => Isa::Neon.available() && std::arch::is_aarch64_feature_detected!("fp16"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

/// A kernel's stable identity, declared next to its function in the kernel table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelId {
    pub op: Op,
    pub layout: Option<WeightLayout>,
    pub isa: Isa,
    /// The kernel's own name within (op, layout, isa): `gemv`, `vec_dot.gemv`, ... (may be empty).
    pub variant: &'static str,
}

impl KernelId {
    pub const fn new(op: Op, isa: Isa, variant: &'static str) -> KernelId {
        KernelId {
            op,
            layout: None,
            isa,
            variant,
        }
    }

    /// An I2_S kernel reading the x86-act128 weight layout.
    pub const fn i2s(isa: Isa, variant: &'static str) -> KernelId {
        KernelId {
            op: Op::I2s,
            layout: Some(WeightLayout::X86),
            isa,
            variant,
        }
    }

    /// The same kernel reported under another variant (an I2_S kernel run as `gemv` or `gemm`).
    pub const fn with_variant(self, variant: &'static str) -> KernelId {
        KernelId { variant, ..self }
    }
}

impl fmt::Display for KernelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.name())?;
        if let Some(l) = self.layout {
            write!(f, ".{}", l.name())?;
        }
        write!(f, ".{}", self.isa.name())?;
        if !self.variant.is_empty() {
            write!(f, ".{}", self.variant)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_render_to_the_receipt_strings() {
        assert_eq!(
            KernelId::i2s(Isa::Avx512vnni, "gemv").to_string(),
            "i2s.x86.avx512vnni.gemv"
        );
        assert_eq!(
            KernelId::new(Op::F16, Isa::Avx2, "vec_dot.gemv").to_string(),
            "f16.avx2.vec_dot.gemv"
        );
        assert_eq!(KernelId::i2s(Isa::Amx, "gemm").to_string(), "i2s.x86.amx.gemm");
        assert_eq!(KernelId::new(Op::RmsNorm, Isa::Cuda, "").to_string(), "rms_norm.cuda");
        assert_eq!(
            KernelId::new(Op::Tq2_0, Isa::Scalar, "gemv").to_string(),
            "tq2_0.scalar.gemv"
        );
    }
}
