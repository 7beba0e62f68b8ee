//! The kernel table (tract's "generic first, then plug"): every slot starts with the scalar oracle, then each
//! instruction-set tier of the requested family overwrites the slots it implements. A table is built at
//! most once per family per process and only for a family whose features were detected, which is what makes
//! the ISA modules' safe wrappers sound. Every kernel is declared here with its typed [`KernelId`].

use std::sync::OnceLock;

use super::id::{Isa, KernelId, Op};
use super::q8_0::{self, Q8QuantizeFn, Q8RowsFn};
use super::{
    elementwise, scalar, scalar_arm, tq, F16DotFn, F16RowsFn, Family, FfnActFn, I2sPackFn, I2sPackedFn, I2sRowsFn,
    LaneBoundFn, Q8kFn, QuantizeFn, RopeFn, SimdOrder, SoftmaxFn, TinyBlasFn, TinyBlasRowsFn, TqDotFn,
};

/// A kernel and its stable ID.
#[derive(Clone, Copy, Debug)]
pub struct Kernel<F> {
    pub id: KernelId,
    pub run: F,
}

/// An I2_S integer-dot kernel: one function, reported as `gemv` (one token) or `gemm` (several).
#[derive(Clone, Copy, Debug)]
pub struct I2sKernel {
    pub isa: Isa,
    pub run: I2sRowsFn,
}

impl I2sKernel {
    /// The ID this kernel is reported under for `n` tokens.
    pub fn id(&self, n: usize) -> KernelId {
        KernelId::i2s(self.isa, if n == 1 { "gemv" } else { "gemm" })
    }
    pub fn gemv(&self) -> KernelId {
        self.id(1)
    }
    pub fn gemm(&self) -> KernelId {
        self.id(2)
    }
}

/// An I2_S gemm kernel over packed activations (`i2s.<layout>.<isa>.gemm`): the dispatcher packs a matmul's
/// activations once with `pack` and runs `run` on every row chunk; fewer than `min_tokens` tokens take the
/// table's [`I2sKernel`].
#[derive(Clone, Copy, Debug)]
pub struct I2sGemmKernel {
    pub isa: Isa,
    pub min_tokens: usize,
    /// Row chunks are rounded up to a multiple of this (the kernel's row panel; only the last one is short).
    pub row_align: usize,
    pub pack: I2sPackFn,
    pub run: I2sPackedFn,
}

impl I2sGemmKernel {
    pub fn id(&self) -> KernelId {
        KernelId::i2s(self.isa, "gemm")
    }
}

/// A Q8_0 × Q8_0 kernel: one function, reported as `gemv` (one token) or `gemm` (several).
#[derive(Clone, Copy, Debug)]
pub struct Q8Kernel {
    pub isa: Isa,
    pub run: Q8RowsFn,
}

impl Q8Kernel {
    /// The ID this kernel is reported under for `n` tokens.
    pub fn id(&self, n: usize) -> KernelId {
        KernelId::new(Op::Q8_0, self.isa, if n == 1 { "gemv" } else { "gemm" })
    }
}

/// The Q8_0 kernels of one reference build's order ([`SimdOrder`]): the activation quantizer, the kernel for
/// one activation row and the one for several (ggml's `vec_dot` vs llamafile's tinyBLAS where they differ).
#[derive(Clone, Copy, Debug)]
pub struct Q8Set {
    pub quantize: Kernel<Q8QuantizeFn>,
    pub gemv: Kernel<Q8RowsFn>,
    pub gemm: Kernel<Q8RowsFn>,
}

impl Q8Set {
    /// The kernel for `n` activation rows.
    pub fn rows(&self, n: usize) -> Kernel<Q8RowsFn> {
        if n == 1 {
            self.gemv
        } else {
            self.gemm
        }
    }
}

/// ID of the exact emulation of bitnet.cpp's int16-lane wrap (`scalar::i2s_dot_wrap16`).
pub const I2S_WRAP16: KernelId = KernelId::i2s(Isa::Scalar, "gemv_wrap16");

/// The F16 kernels of one reference build's order ([`SimdOrder`]): `ggml_vec_dot_f16` and llamafile's tinyBLAS.
#[derive(Clone, Copy, Debug)]
pub struct F16Set {
    pub f16_dot: Kernel<F16DotFn>,
    pub f16_gemv: Kernel<F16RowsFn>,
    pub tinyblas: Kernel<TinyBlasFn>,
    pub tinyblas_gemm: Kernel<TinyBlasRowsFn>,
}

/// The f32 row operations whose arithmetic depends on the reference build's ISA.
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
    /// The gemm kernel for batches of at least its `min_tokens` tokens, where one beats [`Self::i2s`].
    pub i2s_gemm: Option<I2sGemmKernel>,
    pub f16_dot: Kernel<F16DotFn>,
    pub f16_gemv: Kernel<F16RowsFn>,
    pub tinyblas: Kernel<TinyBlasFn>,
    pub tinyblas_gemm: Kernel<TinyBlasRowsFn>,
    pub q8k_quantize: Kernel<Q8kFn>,
    pub tq2_0: Kernel<TqDotFn>,
    pub tq1_0: Kernel<TqDotFn>,
    pub softmax: Kernel<SoftmaxFn>,
    pub ffn_act: Kernel<FfnActFn>,
    pub rope: Kernel<RopeFn>,
    /// F16 kernels of the plain aarch64 build (`bitnet.cpp-2025-arm`).
    pub neon: F16Set,
    /// F16 kernels of the aarch64 fp16 build (`bitnet.cpp-2025-arm-fp16`).
    pub neon_fp16: F16Set,
    /// Softmax and FFN activation of both aarch64 builds (4-lane sums, NEON `ggml_v_expf`).
    pub neon_ops: FloatOps,
    /// NORM RoPE (adjacent pairs, arch `llama`).
    pub rope_norm: Kernel<RopeFn>,
    /// `quantize_row_q8_0` of the activations of a Q8_0 matmul.
    pub q8_0_quantize: Kernel<Q8QuantizeFn>,
    pub q8_0: Q8Kernel,
    /// Q8_0 kernels of the plain aarch64 build (`bitnet.cpp-2025-arm`).
    pub neon_q8: Q8Set,
    /// Q8_0 kernels of the aarch64 fp16 + dotprod build (`bitnet.cpp-2025-arm-fp16`).
    pub neon_fp16_q8: Q8Set,
}

/// The ARM builds' activation quantizer (identical in both), scalar oracle.
const Q8_QUANTIZE_NEON_SCALAR: Kernel<Q8QuantizeFn> =
    k(Op::Q8_0, Isa::Scalar, "quantize_neon", scalar_arm::quantize_q8_0_neon);
/// The plain aarch64 build's Q8_0 dot (every row count), scalar oracle.
const Q8_VEC_DOT_NEON_SCALAR: Kernel<Q8RowsFn> = k(
    Op::Q8_0,
    Isa::Scalar,
    "vec_dot_neon",
    scalar_arm::q8_0_rows_vec_dot_neon,
);

const fn k<F>(op: Op, isa: Isa, variant: &'static str, run: F) -> Kernel<F> {
    Kernel {
        id: KernelId::new(op, isa, variant),
        run,
    }
}

impl KernelTable {
    /// The cached table of `family`; `None` when the family is not available here.
    pub fn get(family: Family) -> Option<&'static KernelTable> {
        static TABLES: [OnceLock<KernelTable>; Family::ALL.len()] = [const { OnceLock::new() }; Family::ALL.len()];
        if !family.available() {
            return None;
        }
        Some(TABLES[family as usize].get_or_init(|| {
            let mut t = Self::generic();
            match family {
                Family::Scalar => {}
                Family::Avx2 => t.plug_avx2(),
                Family::Avx512 | Family::Amx => {
                    t.plug_avx2();
                    t.plug_avx512();
                    if family == Family::Amx {
                        t.i2s_gemm = i2s_gemm_kernels().next();
                    }
                }
                Family::Neon => t.plug_neon(),
            }
            t.family = family;
            t
        }))
    }

    /// The F16 kernels reproducing `order`.
    pub fn f16_set(&self, order: SimdOrder) -> F16Set {
        match order {
            SimdOrder::Avx512 => F16Set {
                f16_dot: self.f16_dot,
                f16_gemv: self.f16_gemv,
                tinyblas: self.tinyblas,
                tinyblas_gemm: self.tinyblas_gemm,
            },
            SimdOrder::Neon => self.neon,
            SimdOrder::NeonFp16 => self.neon_fp16,
        }
    }

    /// The Q8_0 kernels reproducing `order`.
    pub fn q8_set(&self, order: SimdOrder) -> Q8Set {
        match order {
            SimdOrder::Avx512 => Q8Set {
                quantize: self.q8_0_quantize,
                gemv: Kernel {
                    id: self.q8_0.id(1),
                    run: self.q8_0.run,
                },
                gemm: Kernel {
                    id: self.q8_0.id(2),
                    run: self.q8_0.run,
                },
            },
            SimdOrder::Neon => self.neon_q8,
            SimdOrder::NeonFp16 => self.neon_fp16_q8,
        }
    }

    /// The softmax and FFN activation reproducing `order`.
    pub fn float_ops(&self, order: SimdOrder) -> FloatOps {
        match order {
            SimdOrder::Avx512 => FloatOps {
                softmax: self.softmax,
                ffn_act: self.ffn_act,
            },
            SimdOrder::Neon | SimdOrder::NeonFp16 => self.neon_ops,
        }
    }

    /// Every slot filled with the scalar oracle.
    fn generic() -> KernelTable {
        KernelTable {
            family: Family::Scalar,
            quantize: k(Op::I8sQuantize, Isa::Scalar, "quantize", scalar::quantize_i8_s),
            lane_bound: Kernel {
                id: KernelId::i2s(Isa::Scalar, "lane_bound"),
                run: scalar::i2s_lane_bound,
            },
            i2s: I2sKernel {
                isa: Isa::Scalar,
                run: scalar::i2s_rows,
            },
            i2s_gemm: None,
            f16_dot: k(Op::F16, Isa::Scalar, "vec_dot", scalar::f16_dot),
            f16_gemv: k(Op::F16, Isa::Scalar, "vec_dot.gemv", scalar::f16_dot_rows),
            tinyblas: k(Op::F16, Isa::Scalar, "tinyblas", scalar::tinyblas_f16_f32),
            tinyblas_gemm: k(Op::F16, Isa::Scalar, "tinyblas.gemm", scalar::tinyblas_rows),
            q8k_quantize: k(Op::Q8kQuantize, Isa::Scalar, "quantize", tq::quantize_q8_k),
            tq2_0: k(Op::Tq2_0, Isa::Scalar, "gemv", tq::tq_dot),
            tq1_0: k(Op::Tq1_0, Isa::Scalar, "gemv", tq::tq_dot),
            softmax: k(Op::Softmax, Isa::Scalar, "f32", elementwise::softmax_masked),
            ffn_act: k(Op::FfnAct, Isa::Scalar, "f32", elementwise::ffn_act),
            rope: k(Op::Rope, Isa::Scalar, "neox", elementwise::rope_heads),
            neon: F16Set {
                f16_dot: k(Op::F16, Isa::Scalar, "vec_dot_neon", scalar_arm::f16_dot_neon),
                f16_gemv: k(Op::F16, Isa::Scalar, "vec_dot_neon.gemv", scalar_arm::f16_dot_rows_neon),
                tinyblas: k(Op::F16, Isa::Scalar, "tinyblas_neon", scalar_arm::tinyblas_neon),
                tinyblas_gemm: k(
                    Op::F16,
                    Isa::Scalar,
                    "tinyblas_neon.gemm",
                    scalar_arm::tinyblas_rows_neon,
                ),
            },
            neon_fp16: F16Set {
                f16_dot: k(Op::F16, Isa::Scalar, "vec_dot_neonfp16", scalar_arm::f16_dot_neon_fp16),
                f16_gemv: k(
                    Op::F16,
                    Isa::Scalar,
                    "vec_dot_neonfp16.gemv",
                    scalar_arm::f16_dot_rows_neon_fp16,
                ),
                tinyblas: k(
                    Op::F16,
                    Isa::Scalar,
                    "tinyblas_neonfp16",
                    scalar_arm::tinyblas_neon_fp16,
                ),
                tinyblas_gemm: k(
                    Op::F16,
                    Isa::Scalar,
                    "tinyblas_neonfp16.gemm",
                    scalar_arm::tinyblas_rows_neon_fp16,
                ),
            },
            neon_ops: FloatOps {
                softmax: k(Op::Softmax, Isa::Scalar, "f32_neon", scalar_arm::softmax_masked_neon),
                ffn_act: k(Op::FfnAct, Isa::Scalar, "f32_neon", scalar_arm::ffn_act_neon),
            },
            rope_norm: k(Op::Rope, Isa::Scalar, "norm", elementwise::rope_heads_norm),
            q8_0_quantize: k(Op::Q8_0, Isa::Scalar, "quantize", q8_0::quantize_q8_0),
            q8_0: Q8Kernel {
                isa: Isa::Scalar,
                run: q8_0::q8_0_rows,
            },
            neon_q8: Q8Set {
                quantize: Q8_QUANTIZE_NEON_SCALAR,
                gemv: Q8_VEC_DOT_NEON_SCALAR,
                gemm: Q8_VEC_DOT_NEON_SCALAR,
            },
            neon_fp16_q8: Q8Set {
                quantize: Q8_QUANTIZE_NEON_SCALAR,
                gemv: k(
                    Op::Q8_0,
                    Isa::Scalar,
                    "vec_dot_neonfp16",
                    scalar_arm::q8_0_rows_vec_dot_neon_fp16,
                ),
                gemm: k(
                    Op::Q8_0,
                    Isa::Scalar,
                    "tinyblas_neonfp16",
                    scalar_arm::q8_0_rows_tinyblas_neon_fp16,
                ),
            },
        }
    }

    /// AVX2 + FMA + F16C tier (caller checked [`Family::Avx2`] is available).
    #[cfg(target_arch = "x86_64")]
    fn plug_avx2(&mut self) {
        use super::avx2;
        use elementwise::fma;
        self.quantize = k(Op::I8sQuantize, Isa::Avx2, "quantize", avx2::quantize_i8_s);
        self.i2s = I2sKernel {
            isa: Isa::Avx2,
            run: avx2::i2s_rows,
        };
        self.f16_dot = k(Op::F16, Isa::Avx2, "vec_dot", avx2::f16_dot);
        self.f16_gemv = k(Op::F16, Isa::Avx2, "vec_dot.gemv", avx2::f16_dot_rows);
        self.tinyblas = k(Op::F16, Isa::Avx2, "tinyblas", avx2::tinyblas);
        self.tinyblas_gemm = k(Op::F16, Isa::Avx2, "tinyblas.gemm", avx2::tinyblas_rows);
        self.softmax = k(Op::Softmax, Isa::Fma, "f32", fma::softmax_masked);
        self.ffn_act = k(Op::FfnAct, Isa::Fma, "f32", fma::ffn_act);
        self.rope = k(Op::Rope, Isa::Fma, "neox", fma::rope_heads);
        self.rope_norm = k(Op::Rope, Isa::Fma, "norm", fma::rope_heads_norm);
        self.q8_0 = Q8Kernel {
            isa: Isa::Avx2,
            run: avx2::q8_0_rows,
        };
    }

    /// AVX-512 F/BW/VL tier, with VNNI's `vpdpbusd` for I2_S where detected (caller checked
    /// [`Family::Avx512`] is available).
    #[cfg(target_arch = "x86_64")]
    fn plug_avx512(&mut self) {
        use super::avx512;
        self.quantize = k(Op::I8sQuantize, Isa::Avx512, "quantize", avx512::quantize_i8_s);
        self.lane_bound = Kernel {
            id: KernelId::i2s(Isa::Avx512, "lane_bound"),
            run: avx512::i2s_lane_bound,
        };
        self.i2s = i2s_kernels()
            .find(|k| matches!(k.isa, Isa::Avx512vnni | Isa::Avx512bw))
            .expect("the AVX-512 family has the BW kernel");
        self.f16_dot = k(Op::F16, Isa::Avx512, "vec_dot", avx512::f16_dot);
        self.f16_gemv = k(Op::F16, Isa::Avx512, "vec_dot.gemv", avx512::f16_dot_rows);
        self.tinyblas = k(Op::F16, Isa::Avx512, "tinyblas", avx512::tinyblas);
        self.tinyblas_gemm = k(Op::F16, Isa::Avx512, "tinyblas.gemm", avx512::tinyblas_rows);
        self.softmax = k(Op::Softmax, Isa::Avx512, "f32", avx512::softmax_masked);
        self.ffn_act = k(Op::FfnAct, Isa::Avx512, "f32", avx512::ffn_act);
        self.q8_0 = q8_kernels()
            .find(|k| matches!(k.isa, Isa::Avx512vnni | Isa::Avx512bw))
            .expect("the AVX-512 family has the BW kernel");
    }

    /// AArch64 NEON tier: the quantizer, I2_S (`sdot` where FEAT_DotProd is detected), the plain-NEON F16 set,
    /// the fp16 F16 set where FEAT_FP16 is detected (else that order stays emulated by the oracle), and both
    /// ARM builds' Q8_0 sets (`sdot` for the fp16 build's order where detected).
    #[cfg(target_arch = "aarch64")]
    fn plug_neon(&mut self) {
        use super::neon;
        let q8 = |variant: &str| {
            arm_q8_kernels()
                .find(|(id, _)| id.variant == variant)
                .map(|(id, run)| Kernel { id, run })
                .expect("the NEON family declares every ARM Q8_0 order")
        };
        self.neon_q8 = Q8Set {
            quantize: k(Op::Q8_0, Isa::Neon, "quantize_neon", neon::quantize_q8_0_neon),
            gemv: q8("vec_dot_neon"),
            gemm: q8("vec_dot_neon"),
        };
        self.neon_fp16_q8 = Q8Set {
            quantize: self.neon_q8.quantize,
            gemv: q8("vec_dot_neonfp16"),
            gemm: q8("tinyblas_neonfp16"),
        };
        self.quantize = k(Op::I8sQuantize, Isa::Neon, "quantize", neon::quantize_i8_s);
        self.i2s = i2s_kernels()
            .find(|k| matches!(k.isa, Isa::Dotprod | Isa::Neon))
            .expect("the NEON family has the smull kernel");
        self.neon = F16Set {
            f16_dot: k(Op::F16, Isa::Neon, "vec_dot_neon", neon::f16_dot_neon),
            f16_gemv: k(Op::F16, Isa::Neon, "vec_dot_neon.gemv", neon::f16_dot_rows_neon),
            tinyblas: k(Op::F16, Isa::Neon, "tinyblas_neon", neon::tinyblas_neon),
            tinyblas_gemm: k(Op::F16, Isa::Neon, "tinyblas_neon.gemm", neon::tinyblas_rows_neon),
        };
        if Isa::NeonFp16.available() {
            self.neon_fp16 = F16Set {
                f16_dot: k(Op::F16, Isa::NeonFp16, "vec_dot_neonfp16", neon::f16_dot_neon_fp16),
                f16_gemv: k(
                    Op::F16,
                    Isa::NeonFp16,
                    "vec_dot_neonfp16.gemv",
                    neon::f16_dot_rows_neon_fp16,
                ),
                tinyblas: k(Op::F16, Isa::NeonFp16, "tinyblas_neonfp16", neon::tinyblas_neon_fp16),
                tinyblas_gemm: k(
                    Op::F16,
                    Isa::NeonFp16,
                    "tinyblas_neonfp16.gemm",
                    neon::tinyblas_rows_neon_fp16,
                ),
            };
        }
    }

    #[cfg(not(target_arch = "aarch64"))]
    fn plug_neon(&mut self) {}

    #[cfg(not(target_arch = "x86_64"))]
    fn plug_avx2(&mut self) {}

    #[cfg(not(target_arch = "x86_64"))]
    fn plug_avx512(&mut self) {}

    /// The IDs this table hands out, in slot order.
    pub fn ids(&self) -> Vec<KernelId> {
        vec![
            self.quantize.id,
            self.lane_bound.id,
            self.i2s.gemv(),
            self.i2s.gemm(),
            I2S_WRAP16,
        ]
        .into_iter()
        .chain(self.i2s_gemm.map(|g| g.id()))
        .chain([
            self.f16_dot.id,
            self.f16_gemv.id,
            self.tinyblas.id,
            self.tinyblas_gemm.id,
            self.q8k_quantize.id,
            self.tq2_0.id,
            self.tq1_0.id,
            self.softmax.id,
            self.ffn_act.id,
            self.rope.id,
            self.rope_norm.id,
            self.q8_0_quantize.id,
            self.q8_0.id(1),
            self.q8_0.id(2),
        ])
        .chain(self.arm_slots().into_iter().map(|(id, _)| id))
        .collect()
    }

    /// The slots of the aarch64 orders (F16 sets, softmax, FFN activation, Q8_0 sets; a kernel two slots
    /// share is listed once).
    fn arm_slots(&self) -> Vec<(KernelId, Slot)> {
        let mut v = Vec::new();
        for kq in [self.neon_q8.quantize, self.neon_fp16_q8.quantize] {
            v.push((kq.id, Slot::Q8Quantize(kq.run)));
        }
        for kr in [
            self.neon_q8.gemv,
            self.neon_q8.gemm,
            self.neon_fp16_q8.gemv,
            self.neon_fp16_q8.gemm,
        ] {
            v.push((kr.id, Slot::Q8Rows(kr.run)));
        }
        v.sort_by_key(|(id, _)| *id);
        v.dedup_by_key(|(id, _)| *id);
        for set in [self.neon, self.neon_fp16] {
            v.push((set.f16_dot.id, Slot::F16Dot(set.f16_dot.run)));
            v.push((set.f16_gemv.id, Slot::F16Rows(set.f16_gemv.run)));
            v.push((set.tinyblas.id, Slot::TinyBlas(set.tinyblas.run)));
            v.push((set.tinyblas_gemm.id, Slot::TinyBlasRows(set.tinyblas_gemm.run)));
        }
        v.push((self.neon_ops.softmax.id, Slot::Softmax(self.neon_ops.softmax.run)));
        v.push((self.neon_ops.ffn_act.id, Slot::FfnAct(self.neon_ops.ffn_act.run)));
        v
    }
}

/// A kernel function of any slot, for code that walks every declared kernel (the per-kernel tests).
#[derive(Clone, Copy, Debug)]
pub enum Slot {
    Quantize(QuantizeFn),
    LaneBound(LaneBoundFn),
    I2sRows(I2sRowsFn),
    I2sPacked(I2sPackFn, I2sPackedFn),
    F16Dot(F16DotFn),
    F16Rows(F16RowsFn),
    TinyBlas(TinyBlasFn),
    TinyBlasRows(TinyBlasRowsFn),
    Q8k(Q8kFn),
    TqDot(TqDotFn),
    Softmax(SoftmaxFn),
    FfnAct(FfnActFn),
    Rope(RopeFn),
    RopeNorm(RopeFn),
    Q8Quantize(Q8QuantizeFn),
    Q8Rows(Q8RowsFn),
}

impl KernelTable {
    /// Every slot of this table with its kernel's ID (an I2_S kernel under its `gemv` ID).
    pub fn slots(&self) -> Vec<(KernelId, Slot)> {
        vec![
            (self.quantize.id, Slot::Quantize(self.quantize.run)),
            (self.lane_bound.id, Slot::LaneBound(self.lane_bound.run)),
            (self.i2s.gemv(), Slot::I2sRows(self.i2s.run)),
            (self.f16_dot.id, Slot::F16Dot(self.f16_dot.run)),
            (self.f16_gemv.id, Slot::F16Rows(self.f16_gemv.run)),
            (self.tinyblas.id, Slot::TinyBlas(self.tinyblas.run)),
            (self.tinyblas_gemm.id, Slot::TinyBlasRows(self.tinyblas_gemm.run)),
            (self.q8k_quantize.id, Slot::Q8k(self.q8k_quantize.run)),
            (self.tq2_0.id, Slot::TqDot(self.tq2_0.run)),
            (self.tq1_0.id, Slot::TqDot(self.tq1_0.run)),
            (self.softmax.id, Slot::Softmax(self.softmax.run)),
            (self.ffn_act.id, Slot::FfnAct(self.ffn_act.run)),
            (self.rope.id, Slot::Rope(self.rope.run)),
            (self.rope_norm.id, Slot::RopeNorm(self.rope_norm.run)),
            (self.q8_0_quantize.id, Slot::Q8Quantize(self.q8_0_quantize.run)),
            (self.q8_0.id(1), Slot::Q8Rows(self.q8_0.run)),
        ]
        .into_iter()
        .chain(self.i2s_gemm.map(|g| (g.id(), Slot::I2sPacked(g.pack, g.run))))
        .chain(self.arm_slots())
        .collect()
    }
}

/// The scalar oracle a declared kernel is tested against: the slot of the same operation and order in the
/// scalar table (`scalar_arm` for the aarch64 orders, whose IDs' variants end in `_neon` / `_neonfp16`); an
/// I2_S gemm kernel's is the I2_S oracle (declared under `gemv`).
pub fn oracle(id: KernelId) -> Option<Slot> {
    let scalar = KernelTable::get(Family::Scalar)?;
    let variant = if id.op == Op::I2s && id.variant == "gemm" {
        "gemv"
    } else {
        id.variant
    };
    scalar
        .slots()
        .into_iter()
        .find(|(k, _)| k.op == id.op && k.variant == variant)
        .map(|(_, s)| s)
}

/// Every kernel this build declares and this CPU can run, once each: the slots of every available family's
/// table and every runnable I2_S kernel (including those no family picks on this CPU).
pub fn declared() -> Vec<(KernelId, Slot)> {
    let mut out: Vec<(KernelId, Slot)> = Family::ALL
        .into_iter()
        .filter_map(KernelTable::get)
        .flat_map(KernelTable::slots)
        .chain(i2s_kernels().map(|k| (k.gemv(), Slot::I2sRows(k.run))))
        .chain(q8_kernels().map(|k| (k.id(1), Slot::Q8Rows(k.run))))
        .chain(i2s_gemm_kernels().map(|g| (g.id(), Slot::I2sPacked(g.pack, g.run))))
        .chain(arm_q8_kernels().map(|(id, run)| (id, Slot::Q8Rows(run))))
        .collect();
    out.sort_by_key(|(id, _)| *id);
    out.dedup_by_key(|(id, _)| *id);
    out
}

/// Every I2_S integer-dot kernel of this build that this CPU can run, best first (the kernel tests run each
/// against the oracle, including those no family picks here, e.g. the AVX-512 BW kernel on a VNNI host).
pub fn i2s_kernels() -> impl Iterator<Item = I2sKernel> {
    declared_i2s_kernels().iter().copied().filter(|k| k.isa.available())
}

fn declared_i2s_kernels() -> &'static [I2sKernel] {
    #[cfg(target_arch = "x86_64")]
    {
        use super::{avx2, avx512};
        const ALL: [I2sKernel; 4] = [
            I2sKernel {
                isa: Isa::Avx512vnni,
                run: avx512::i2s_rows_vnni,
            },
            I2sKernel {
                isa: Isa::Avx512bw,
                run: avx512::i2s_rows_bw,
            },
            I2sKernel {
                isa: Isa::Avx2,
                run: avx2::i2s_rows,
            },
            I2sKernel {
                isa: Isa::Scalar,
                run: scalar::i2s_rows,
            },
        ];
        &ALL
    }
    #[cfg(target_arch = "aarch64")]
    {
        use super::neon;
        const ALL: [I2sKernel; 3] = [
            I2sKernel {
                isa: Isa::Dotprod,
                run: neon::i2s_rows_dotprod,
            },
            I2sKernel {
                isa: Isa::Neon,
                run: neon::i2s_rows,
            },
            I2sKernel {
                isa: Isa::Scalar,
                run: scalar::i2s_rows,
            },
        ];
        &ALL
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        const ALL: [I2sKernel; 1] = [I2sKernel {
            isa: Isa::Scalar,
            run: scalar::i2s_rows,
        }];
        &ALL
    }
}

/// Every I2_S gemm kernel of this build that this CPU can run, best first.
pub fn i2s_gemm_kernels() -> impl Iterator<Item = I2sGemmKernel> {
    declared_i2s_gemm_kernels()
        .iter()
        .copied()
        .filter(|k| k.isa.available())
}

fn declared_i2s_gemm_kernels() -> &'static [I2sGemmKernel] {
    #[cfg(target_arch = "x86_64")]
    {
        use super::amx;
        const ALL: [I2sGemmKernel; 1] = [I2sGemmKernel {
            isa: Isa::Amx,
            min_tokens: amx::MIN_TOKENS,
            row_align: amx::PANEL_ROWS,
            pack: amx::pack,
            run: amx::i2s_rows_packed,
        }];
        &ALL
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        &[]
    }
}

/// Every Q8_0 kernel of this build that this CPU can run, best first (tested each against the oracle).
pub fn q8_kernels() -> impl Iterator<Item = Q8Kernel> {
    declared_q8_kernels().iter().copied().filter(|k| k.isa.available())
}

fn declared_q8_kernels() -> &'static [Q8Kernel] {
    #[cfg(target_arch = "x86_64")]
    {
        use super::{avx2, avx512};
        const ALL: [Q8Kernel; 4] = [
            Q8Kernel {
                isa: Isa::Avx512vnni,
                run: avx512::q8_0_rows_vnni,
            },
            Q8Kernel {
                isa: Isa::Avx512bw,
                run: avx512::q8_0_rows_bw,
            },
            Q8Kernel {
                isa: Isa::Avx2,
                run: avx2::q8_0_rows,
            },
            Q8Kernel {
                isa: Isa::Scalar,
                run: q8_0::q8_0_rows,
            },
        ];
        &ALL
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        const ALL: [Q8Kernel; 1] = [Q8Kernel {
            isa: Isa::Scalar,
            run: q8_0::q8_0_rows,
        }];
        &ALL
    }
}

/// Every NEON Q8_0 kernel of the aarch64 orders that this CPU can run, best first per variant (the kernel tests
/// run each, including the fp16 build's order without `sdot` on a CPU that has it).
pub fn arm_q8_kernels() -> impl Iterator<Item = (KernelId, Q8RowsFn)> {
    declared_arm_q8_kernels()
        .iter()
        .copied()
        .filter(|(id, _)| id.isa.available())
}

fn declared_arm_q8_kernels() -> &'static [(KernelId, Q8RowsFn)] {
    #[cfg(target_arch = "aarch64")]
    {
        use super::neon;
        const ALL: [(KernelId, Q8RowsFn); 5] = [
            (
                KernelId::new(Op::Q8_0, Isa::Neon, "vec_dot_neon"),
                neon::q8_0_rows_vec_dot_neon,
            ),
            (
                KernelId::new(Op::Q8_0, Isa::Dotprod, "vec_dot_neonfp16"),
                neon::q8_0_rows_vec_dot_neon_fp16_sdot,
            ),
            (
                KernelId::new(Op::Q8_0, Isa::Neon, "vec_dot_neonfp16"),
                neon::q8_0_rows_vec_dot_neon_fp16,
            ),
            (
                KernelId::new(Op::Q8_0, Isa::Dotprod, "tinyblas_neonfp16"),
                neon::q8_0_rows_tinyblas_neon_fp16_sdot,
            ),
            (
                KernelId::new(Op::Q8_0, Isa::Neon, "tinyblas_neonfp16"),
                neon::q8_0_rows_tinyblas_neon_fp16,
            ),
        ];
        &ALL
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        &[]
    }
}
