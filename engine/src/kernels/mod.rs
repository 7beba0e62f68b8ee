//! Ternary and dense kernels: scalar oracle, AVX2, AVX-512; the dispatcher and its kernel log.
