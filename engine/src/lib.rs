//! Pure-Rust BitNet b1.58 inference, bit-exact with bitnet.cpp.
//!
//! Table of contents, in the order data flows:
//! - [`gguf`]: the container (strict reader, writer, type tables).
//! - [`flavor`]: what a tensor's bytes really are (I2_S layouts, TQ2_0/TQ1_0, dense, foreign layouts).
//! - [`quant`]: one quantization method per weight type (I2_S, TQ2_0/TQ1_0, F16), built from the flavor.
//! - [`kernels`]: scalar oracle and SIMD kernels, the dispatcher and its log of kernel IDs.
//! - [`model`]: hyper-parameters, the BitNet forward pass, KV cache, numerics profiles.
//! - [`tokenizer`], [`sampling`]: text in, tokens out.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod flavor;
pub mod generate;
pub mod gguf;
pub mod kernels;
pub mod model;
pub mod quant;
pub mod sampling;
pub mod tokenizer;
