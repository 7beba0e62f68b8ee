//! Hyper-parameters, the BitNet forward pass, KV cache, numerics profiles.
