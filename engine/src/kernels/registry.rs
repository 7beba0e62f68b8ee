//! The kernel table (tract's "generic first, then plug"): every slot starts with the scalar oracle, then each
//! instruction-set tier up to the requested family overwrites the slots it implements. A table is built at
//! most once per family per process and only for a family whose features were detected, which is what makes
//! the ISA modules' safe wrappers sound.

use std::sync::OnceLock;

use super::{
    scalar, scalar_arm, F16DotFn, F16RowsFn, Family, FfnActFn, I2sRowsFn, LaneBoundFn, QuantizeFn, SimdOrder,
    SoftmaxFn, TinyBlasFn, TinyBlasRowsFn,
};

/// A kernel and its stable ID (`<op>.<isa>.<kernel>`, as receipts report it).
#[derive(Clone, Copy, Debug)]
pub struct Kernel<F> {
    pub id: &'static str,
    pub run: F,
}

/// An I2_S integer-dot kernel: one function, reported as `gemv` (one token) or `gemm` (several).
#[derive(Clone, Copy, Debug)]
pub struct I2sKernel {
    pub gemv: &'static str,
    pub gemm: &'static str,
    pub run: I2sRowsFn,
}

/// ID of the exact emulation of bitnet.cpp's int16-lane wrap (`scalar::i2s_dot_wrap16`).
pub const I2S_WRAP16: &str = "i2s.x86.scalar.gemv_wrap16";

/// The F16 kernels of one reference build's order ([`SimdOrder`]): `ggml_vec_dot_f16` and llamafile's tinyBLAS.
#[derive(Clone, Copy, Debug)]
pub struct F16Set {
    pub order: SimdOrder,
    pub f16_dot: Kernel<F16DotFn>,
    pub f16_gemv: Kernel<F16RowsFn>,
    pub tinyblas: Kernel<TinyBlasFn>,
    pub tinyblas_gemm: Kernel<TinyBlasRowsFn>,
}

/// The f32 row operations whose arithmetic depends on the reference's ISA (ARM builds: 4-lane softmax sums,
/// NEON `ggml_v_expf`).
#[derive(Clone, Copy, Debug)]
pub struct FloatOps {
    pub softmax: Kernel<SoftmaxFn>,
    pub ffn_act: Kernel<FfnActFn>,
}

/// One family's kernels, one per operation.
#[derive(Clone, Copy, Debug)]
pub struct KernelTable {
    pub family: Family,
    pub quantize: Kernel<QuantizeFn>,
    /// The int16-lane bound that decides whether a token needs the wrap emulation.
    pub lane_bound: Kernel<LaneBoundFn>,
    pub i2s: I2sKernel,
    pub f16_dot: Kernel<F16DotFn>,
    pub f16_gemv: Kernel<F16RowsFn>,
    pub tinyblas: Kernel<TinyBlasFn>,
    pub tinyblas_gemm: Kernel<TinyBlasRowsFn>,
    /// F16 kernels of the plain aarch64 build (`bitnet.cpp-2025-arm`).
    pub neon: F16Set,
    /// F16 kernels of the aarch64 fp16 build (`bitnet.cpp-2025-arm-fp16`).
    pub neon_fp16: F16Set,
    /// Softmax and SiLU of both aarch64 builds.
    pub neon_ops: FloatOps,
}

impl KernelTable {
    /// The F16 kernels reproducing `order`.
    pub fn f16_set(&self, order: SimdOrder) -> F16Set {
        match order {
            SimdOrder::Avx512 => F16Set {
                order,
                f16_dot: self.f16_dot,
                f16_gemv: self.f16_gemv,
                tinyblas: self.tinyblas,
                tinyblas_gemm: self.tinyblas_gemm,
            },
            SimdOrder::Neon => self.neon,
            SimdOrder::NeonFp16 => self.neon_fp16,
        }
    }

    /// The softmax/SiLU kernels of an aarch64 order; `None` for x86 (the forward pass's own `model::ops`).
    pub fn float_ops(&self, order: SimdOrder) -> Option<&FloatOps> {
        match order {
            SimdOrder::Avx512 => None,
            SimdOrder::Neon | SimdOrder::NeonFp16 => Some(&self.neon_ops),
        }
    }

    /// The cached table of `family`; `None` when the family is not available here.
    pub fn get(family: Family) -> Option<&'static KernelTable> {
        static TABLES: [OnceLock<KernelTable>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        if !family.available() {
            return None;
        }
        Some(TABLES[family as usize].get_or_init(|| {
            let mut t = Self::generic();
            if family >= Family::Avx2 {
                t.plug_avx2();
            }
            if family >= Family::Avx512 {
                t.plug_avx512();
            }
            t.family = family;
            t
        }))
    }

    /// Every slot filled with the scalar oracle.
    fn generic() -> KernelTable {
        KernelTable {
            family: Family::Scalar,
            quantize: Kernel {
                id: "i8s.scalar.quantize",
                run: scalar::quantize_i8_s,
            },
            lane_bound: Kernel {
                id: "i2s.x86.scalar.lane_bound",
                run: scalar::i2s_lane_bound,
            },
            i2s: I2sKernel {
                gemv: "i2s.x86.scalar.gemv",
                gemm: "i2s.x86.scalar.gemm",
                run: scalar::i2s_rows,
            },
            f16_dot: Kernel {
                id: "f16.scalar.vec_dot",
                run: scalar::f16_dot,
            },
            f16_gemv: Kernel {
                id: "f16.scalar.vec_dot.gemv",
                run: scalar::f16_dot_rows,
            },
            tinyblas: Kernel {
                id: "f16.scalar.tinyblas",
                run: scalar::tinyblas_f16_f32,
            },
            tinyblas_gemm: Kernel {
                id: "f16.scalar.tinyblas.gemm",
                run: scalar::tinyblas_rows,
            },
            neon: F16Set {
                order: SimdOrder::Neon,
                f16_dot: Kernel {
                    id: "f16.scalar.vec_dot_neon",
                    run: scalar_arm::f16_dot_neon,
                },
                f16_gemv: Kernel {
                    id: "f16.scalar.vec_dot_neon.gemv",
                    run: scalar_arm::f16_dot_rows_neon,
                },
                tinyblas: Kernel {
                    id: "f16.scalar.tinyblas_neon",
                    run: scalar_arm::tinyblas_neon,
                },
                tinyblas_gemm: Kernel {
                    id: "f16.scalar.tinyblas_neon.gemm",
                    run: scalar_arm::tinyblas_rows_neon,
                },
            },
            neon_fp16: F16Set {
                order: SimdOrder::NeonFp16,
                f16_dot: Kernel {
                    id: "f16.scalar.vec_dot_neonfp16",
                    run: scalar_arm::f16_dot_neon_fp16,
                },
                f16_gemv: Kernel {
                    id: "f16.scalar.vec_dot_neonfp16.gemv",
                    run: scalar_arm::f16_dot_rows_neon_fp16,
                },
                tinyblas: Kernel {
                    id: "f16.scalar.tinyblas_neonfp16",
                    run: scalar_arm::tinyblas_neon_fp16,
                },
                tinyblas_gemm: Kernel {
                    id: "f16.scalar.tinyblas_neonfp16.gemm",
                    run: scalar_arm::tinyblas_rows_neon_fp16,
                },
            },
            neon_ops: FloatOps {
                softmax: Kernel {
                    id: "softmax.scalar.f32_neon",
                    run: scalar_arm::softmax_masked_neon,
                },
                ffn_act: Kernel {
                    id: "ffn_act.scalar.f32_neon",
                    run: scalar_arm::ffn_act_neon,
                },
            },
        }
    }

    /// AVX2 + FMA + F16C tier (caller checked [`Family::Avx2`] is available).
    #[cfg(target_arch = "x86_64")]
    fn plug_avx2(&mut self) {
        use super::avx2;
        self.quantize = Kernel {
            id: "i8s.avx2.quantize",
            run: avx2::quantize_i8_s,
        };
        self.i2s = I2sKernel {
            gemv: "i2s.x86.avx2.gemv",
            gemm: "i2s.x86.avx2.gemm",
            run: avx2::i2s_rows,
        };
        self.f16_dot = Kernel {
            id: "f16.avx2.vec_dot",
            run: avx2::f16_dot,
        };
        self.f16_gemv = Kernel {
            id: "f16.avx2.vec_dot.gemv",
            run: avx2::f16_dot_rows,
        };
        self.tinyblas = Kernel {
            id: "f16.avx2.tinyblas",
            run: avx2::tinyblas,
        };
        self.tinyblas_gemm = Kernel {
            id: "f16.avx2.tinyblas.gemm",
            run: avx2::tinyblas_rows,
        };
    }

    /// AVX-512 F/BW/VL tier, with VNNI's `vpdpbusd` for I2_S where detected (caller checked
    /// [`Family::Avx512`] is available).
    #[cfg(target_arch = "x86_64")]
    fn plug_avx512(&mut self) {
        use super::avx512;
        self.quantize = Kernel {
            id: "i8s.avx512.quantize",
            run: avx512::quantize_i8_s,
        };
        self.lane_bound = Kernel {
            id: "i2s.x86.avx512.lane_bound",
            run: avx512::i2s_lane_bound,
        };
        self.i2s = if super::has_avx512_vnni() {
            I2sKernel {
                gemv: "i2s.x86.avx512vnni.gemv",
                gemm: "i2s.x86.avx512vnni.gemm",
                run: avx512::i2s_rows_vnni,
            }
        } else {
            I2sKernel {
                gemv: "i2s.x86.avx512bw.gemv",
                gemm: "i2s.x86.avx512bw.gemm",
                run: avx512::i2s_rows_bw,
            }
        };
        self.f16_dot = Kernel {
            id: "f16.avx512.vec_dot",
            run: avx512::f16_dot,
        };
        self.f16_gemv = Kernel {
            id: "f16.avx512.vec_dot.gemv",
            run: avx512::f16_dot_rows,
        };
        self.tinyblas = Kernel {
            id: "f16.avx512.tinyblas",
            run: avx512::tinyblas,
        };
        self.tinyblas_gemm = Kernel {
            id: "f16.avx512.tinyblas.gemm",
            run: avx512::tinyblas_rows,
        };
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn plug_avx2(&mut self) {}

    #[cfg(not(target_arch = "x86_64"))]
    fn plug_avx512(&mut self) {}

    /// The IDs this table hands out, in slot order.
    pub fn ids(&self) -> Vec<&'static str> {
        vec![
            self.quantize.id,
            self.lane_bound.id,
            self.i2s.gemv,
            self.i2s.gemm,
            I2S_WRAP16,
            self.f16_dot.id,
            self.f16_gemv.id,
            self.tinyblas.id,
            self.tinyblas_gemm.id,
        ]
        .into_iter()
        .chain(
            [self.neon, self.neon_fp16]
                .iter()
                .flat_map(|s| [s.f16_dot.id, s.f16_gemv.id, s.tinyblas.id, s.tinyblas_gemm.id]),
        )
        .chain([self.neon_ops.softmax.id, self.neon_ops.ffn_act.id])
        .collect()
    }
}
