//! The kernel table (tract's "generic first, then plug"): every slot starts with the scalar oracle, then each
//! instruction-set tier up to the requested family overwrites the slots it implements. A table is built at
//! most once per family per process and only for a family whose features were detected, which is what makes
//! the ISA modules' safe wrappers sound.

use std::sync::OnceLock;

use super::q8_0::{self, Q8RowsFn};
use super::{scalar, F16DotFn, F16RowsFn, Family, I2sRowsFn, LaneBoundFn, QuantizeFn, TinyBlasFn, TinyBlasRowsFn};

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

/// A Q8_0 × Q8_0 kernel: one function, reported as `gemv` (one token) or `gemm` (several).
#[derive(Clone, Copy, Debug)]
pub struct Q8Kernel {
    pub gemv: &'static str,
    pub gemm: &'static str,
    pub run: Q8RowsFn,
}

/// ID of the exact emulation of bitnet.cpp's int16-lane wrap (`scalar::i2s_dot_wrap16`).
pub const I2S_WRAP16: &str = "i2s.x86.scalar.gemv_wrap16";

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
    pub q8_0: Q8Kernel,
}

impl KernelTable {
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
            q8_0: Q8Kernel {
                gemv: "q8_0.scalar.gemv",
                gemm: "q8_0.scalar.gemm",
                run: q8_0::q8_0_rows,
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
        self.q8_0 = Q8Kernel {
            gemv: "q8_0.avx2.gemv",
            gemm: "q8_0.avx2.gemm",
            run: avx2::q8_0_rows,
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
        self.q8_0 = if super::has_avx512_vnni() {
            Q8Kernel {
                gemv: "q8_0.avx512vnni.gemv",
                gemm: "q8_0.avx512vnni.gemm",
                run: avx512::q8_0_rows_vnni,
            }
        } else {
            Q8Kernel {
                gemv: "q8_0.avx512bw.gemv",
                gemm: "q8_0.avx512bw.gemm",
                run: avx512::q8_0_rows_bw,
            }
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
            q8_0::Q8_0_QUANTIZE,
            self.q8_0.gemv,
            self.q8_0.gemm,
        ]
    }
}
