//! Sampling: greedy, temperature, top-k, top-p, min-p, repeat penalty; seeded.
