#![cfg_attr(not(test), allow(dead_code))] // `parity run` (written separately) is the main consumer.
//! Comparison machinery shared by `parity run`, `verify`, `report` and `compare`.
//!
//! - [`metrics`]: per-position logits comparison and its summary.
//! - [`kl`]: llama.cpp `llama-perplexity --kl-divergence` statistics.

pub mod kl;
pub mod metrics;
