//! The llama-cli sampling chain: greedy tie-break, penalties, top-k/top-p/min-p filtering, seeded and
//! thread-independent draws, stop strings.

use engine::sampling::{discrete_distribution, Mt19937, Sampler, SamplerParams, StopStrings};

fn params(f: impl FnOnce(&mut SamplerParams)) -> SamplerParams {
    let mut p = SamplerParams::default();
    f(&mut p);
    p
}

#[test]
fn greedy_takes_argmax_and_lowest_id_on_ties() {
    let mut s = Sampler::new(SamplerParams::greedy());
    assert_eq!(s.sample(&[0.5, 2.0, -1.0, 2.0]), 1);
    assert_eq!(s.sample(&[f32::NEG_INFINITY, -3.0, -3.0]), 1);
}

#[test]
fn repeat_penalty_divides_positive_and_multiplies_negative_logits() {
    let mut s = Sampler::new(params(|p| {
        p.temperature = 0.0;
        p.repeat_penalty = 2.0;
    }));
    s.accept(0);
    // 3.0 / 2 = 1.5 < 2.0: token 1 wins now.
    assert_eq!(s.sample(&[3.0, 2.0]), 1);
    // -1.0 * 2 = -2.0 < -1.5: token 1 wins.
    assert_eq!(s.sample(&[-1.0, -1.5]), 1);
    // Out of the window: repeat_last_n = 1 and a newer token was accepted.
    let mut s = Sampler::new(params(|p| {
        p.temperature = 0.0;
        p.repeat_penalty = 2.0;
        p.repeat_last_n = 1;
    }));
    s.accept(0);
    s.accept(1);
    assert_eq!(s.sample(&[3.0, 2.0]), 0);
}

#[test]
fn newline_is_not_penalized_by_default() {
    let mut s = Sampler::new(params(|p| {
        p.temperature = 0.0;
        p.repeat_penalty = 4.0;
        p.nl_token = Some(0);
    }));
    s.accept(0);
    assert_eq!(s.sample(&[3.0, 2.0]), 0);
}

#[test]
fn top_k_one_is_argmax_whatever_the_seed() {
    for seed in 0..50 {
        let mut s = Sampler::new(params(|p| {
            p.top_k = 1;
            p.temperature = 5.0;
            p.seed = seed;
        }));
        assert_eq!(s.sample(&[0.1, 0.3, 0.2]), 1);
    }
}

#[test]
fn min_p_drops_unlikely_tokens() {
    // p(1)/p(0) = e^-4 ≈ 0.018 < 0.05: only token 0 survives min_p.
    for seed in 0..50 {
        let mut s = Sampler::new(params(|p| {
            p.seed = seed;
            p.top_p = 1.0;
            p.temperature = 10.0;
        }));
        assert_eq!(s.sample(&[4.0, 0.0]), 0);
    }
}

#[test]
fn top_p_keeps_the_smallest_prefix_reaching_p() {
    // Probabilities ≈ 0.665, 0.245, 0.090: top_p 0.6 keeps only the first.
    for seed in 0..50 {
        let mut s = Sampler::new(params(|p| {
            p.seed = seed;
            p.top_p = 0.6;
            p.min_p = 0.0;
        }));
        assert_eq!(s.sample(&[2.0, 1.0, 0.0]), 0);
    }
}

#[test]
fn same_seed_same_tokens_and_seeds_matter() {
    fn run(seed: u32) -> Vec<u32> {
        let logits: Vec<f32> = (0..64).map(|i| ((i * 37 % 17) as f32) * 0.1).collect();
        let mut s = Sampler::new(params(|p| {
            p.seed = seed;
            p.top_k = 0;
            p.top_p = 1.0;
            p.min_p = 0.0;
            p.temperature = 1.0;
        }));
        (0..200).map(|_| s.sample(&logits)).collect()
    }
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
    // Sampling in other threads, concurrently, gives the same sequence.
    let handles: Vec<_> = (0..4).map(|_| std::thread::spawn(move || run(42))).collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), run(42));
    }
}

#[test]
fn draws_follow_the_distribution() {
    let mut rng = Mt19937::new(7);
    let mut hits = [0usize; 2];
    for _ in 0..10_000 {
        hits[discrete_distribution(&[0.25, 0.75], &mut rng)] += 1;
    }
    assert!((2300..2700).contains(&hits[0]), "{hits:?}");
}

#[test]
fn stop_strings_match_at_the_tail_only() {
    let stops = StopStrings::new(vec!["User:".into(), String::new()], 2);
    assert_eq!(stops.find("Hello.\nUser:"), Some(("User:", 7)));
    assert_eq!(stops.find("Hello.\nUser: "), Some(("User:", 7)));
    assert_eq!(stops.find("User: said hello to everyone"), None);
    assert_eq!(stops.find("héllo"), None);
}
