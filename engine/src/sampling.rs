//! Sampling as llama-cli does it (`common/sampling.cpp: common_sampler_init`, `src/llama-sampling.cpp`):
//! penalties → top-k → top-p → min-p → temperature → softmax → draw; temperature ≤ 0 is greedy (argmax,
//! lowest id wins ties). tfs_z and typical_p are no-ops at llama-cli's defaults and are not implemented.
//!
//! The draw reproduces `std::discrete_distribution<int>` over `std::mt19937(seed)` as libstdc++ does
//! (double normalisation, partial sums with the last forced to 1, `generate_canonical<double>` from two
//! 32-bit outputs, lower_bound), so a seed means the same thing here as in bitnet.cpp, and the result
//! depends on nothing but the logits, the accepted history and the seed — never on thread count.
//! One known gap: llama.cpp sorts candidates with unstable `std::sort`/`std::partial_sort`; exact f32
//! ties among the kept candidates are ordered here by id, which libstdc++ does not promise.

use std::collections::HashMap;

/// `std::mt19937`: the 32-bit Mersenne Twister with the standard's seeding.
#[derive(Clone, Debug)]
pub struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            state[i] = 1_812_433_253u32
                .wrapping_mul(state[i - 1] ^ (state[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Self { state, index: 624 }
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for i in 0..624 {
                let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
                let mut v = self.state[(i + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.state[i] = v;
            }
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// libstdc++'s `generate_canonical<double, 53>`: two draws, `(x1 + x2·2³²) / 2⁶⁴`, kept below 1.
    pub fn canonical_f64(&mut self) -> f64 {
        let r = 4_294_967_296.0f64;
        let mut sum = self.next_u32() as f64;
        sum += self.next_u32() as f64 * r;
        let ret = sum / (r * r);
        if ret >= 1.0 {
            1.0f64 - f64::EPSILON / 2.0
        } else {
            ret
        }
    }
}

/// libstdc++'s `std::discrete_distribution<int>(probs)(rng)`. Fewer than two weights draw nothing
/// from the generator and return 0, as libstdc++ does.
pub fn discrete_distribution(probs: &[f64], rng: &mut Mt19937) -> usize {
    if probs.len() < 2 {
        return 0;
    }
    let sum: f64 = probs.iter().sum();
    let mut cp = Vec::with_capacity(probs.len());
    let mut acc = 0.0f64;
    for p in probs {
        acc += p / sum;
        cp.push(acc);
    }
    *cp.last_mut().expect("len >= 2") = 1.0;
    let u = rng.canonical_f64();
    cp.partition_point(|&c| c < u)
}

/// Sampler settings; the defaults are llama-cli's (spec §7.3).
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerParams {
    /// ≤ 0: greedy.
    pub temperature: f32,
    /// ≤ 0: keep all.
    pub top_k: i32,
    /// ≥ 1: off.
    pub top_p: f32,
    /// ≤ 0: off.
    pub min_p: f32,
    /// 1.0: off.
    pub repeat_penalty: f32,
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    /// How many recent accepted tokens the penalties look at (0: off).
    pub repeat_last_n: usize,
    /// llama.cpp's `penalize_nl` (default false: the newline token's logit is restored after penalties).
    pub penalize_nl: bool,
    /// The vocabulary's linefeed id (`Tokenizer::linefeed_id`), for `penalize_nl = false`.
    pub nl_token: Option<u32>,
    pub seed: u32,
}

impl Default for SamplerParams {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            repeat_last_n: 64,
            penalize_nl: false,
            nl_token: None,
            seed: 0,
        }
    }
}

impl SamplerParams {
    /// Greedy decoding (what the golden `greedy_ids` use).
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Cand {
    id: u32,
    logit: f32,
    p: f32,
}

/// A seeded sampler with the penalty history of accepted tokens.
#[derive(Clone, Debug)]
pub struct Sampler {
    params: SamplerParams,
    rng: Mt19937,
    history: Vec<u32>,
}

impl Sampler {
    pub fn new(params: SamplerParams) -> Self {
        Self {
            rng: Mt19937::new(params.seed),
            params,
            history: Vec::new(),
        }
    }

    pub fn params(&self) -> &SamplerParams {
        &self.params
    }

    /// Record a token for the penalties (llama-cli accepts the prompt tokens too, then each sampled one).
    pub fn accept(&mut self, token: u32) {
        self.history.push(token);
        let n = self.params.repeat_last_n;
        if self.history.len() > n.max(1) * 2 {
            let cut = self.history.len() - n;
            self.history.drain(..cut);
        }
    }

    /// Pick the next token from one row of logits (does not accept it).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let mut c: Vec<Cand> = logits
            .iter()
            .enumerate()
            .map(|(i, &logit)| Cand {
                id: i as u32,
                logit,
                p: 0.0,
            })
            .collect();
        if c.is_empty() {
            return 0;
        }
        self.apply_penalties(&mut c);
        let p = &self.params;
        if p.temperature <= 0.0 {
            // llama_sampler_greedy: first strictly greater logit wins, candidates in id order.
            let mut best = 0;
            for i in 1..c.len() {
                if c[i].logit > c[best].logit {
                    best = i;
                }
            }
            return c[best].id;
        }
        let mut sorted = false;
        top_k(&mut c, p.top_k, &mut sorted);
        top_p(&mut c, p.top_p, &mut sorted);
        min_p(&mut c, p.min_p, &mut sorted);
        for x in c.iter_mut() {
            x.logit /= p.temperature;
        }
        softmax(&mut c, &mut sorted);
        let probs: Vec<f64> = c.iter().map(|x| x.p as f64).collect();
        c[discrete_distribution(&probs, &mut self.rng)].id
    }

    /// `llama_sampler_penalties_apply`: repeat (divide positive, multiply non-positive logits),
    /// frequency and presence penalties over the last `repeat_last_n` accepted tokens.
    fn apply_penalties(&self, c: &mut [Cand]) {
        let p = &self.params;
        let off = p.repeat_penalty == 1.0 && p.frequency_penalty == 0.0 && p.presence_penalty == 0.0;
        if p.repeat_last_n == 0 || off {
            return;
        }
        let nl_saved = (!p.penalize_nl)
            .then(|| p.nl_token.and_then(|nl| c.get(nl as usize).map(|x| (nl, x.logit))))
            .flatten();
        let start = self.history.len().saturating_sub(p.repeat_last_n);
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for &t in &self.history[start..] {
            *counts.entry(t).or_default() += 1;
        }
        for x in c.iter_mut() {
            let Some(&n) = counts.get(&x.id) else { continue };
            if x.logit <= 0.0 {
                x.logit *= p.repeat_penalty;
            } else {
                x.logit /= p.repeat_penalty;
            }
            x.logit -= n as f32 * p.frequency_penalty + (n > 0) as u32 as f32 * p.presence_penalty;
        }
        if let Some((nl, logit)) = nl_saved {
            c[nl as usize].logit = logit;
        }
    }
}

/// Sort by logit, highest first (ties: lower id first).
fn sort_desc(c: &mut [Cand]) {
    c.sort_by(|a, b| b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id)));
}

fn top_k(c: &mut Vec<Cand>, k: i32, sorted: &mut bool) {
    let k = if k <= 0 { c.len() } else { (k as usize).min(c.len()) };
    if !*sorted {
        sort_desc(c);
        *sorted = true;
    }
    c.truncate(k);
}

/// Probabilities in f32 as `llama_sampler_softmax_impl` computes them (sorts first if needed).
fn softmax(c: &mut [Cand], sorted: &mut bool) {
    if !*sorted {
        sort_desc(c);
        *sorted = true;
    }
    let max = c[0].logit;
    let mut sum = 0.0f32;
    for x in c.iter_mut() {
        x.p = (x.logit - max).exp();
        sum += x.p;
    }
    for x in c.iter_mut() {
        x.p /= sum;
    }
}

fn top_p(c: &mut Vec<Cand>, p: f32, sorted: &mut bool) {
    if p >= 1.0 {
        return;
    }
    softmax(c, sorted);
    let mut cum = 0.0f32;
    let mut last = c.len();
    for (i, x) in c.iter().enumerate() {
        cum += x.p;
        if cum >= p {
            last = i + 1;
            break;
        }
    }
    c.truncate(last);
}

fn min_p(c: &mut Vec<Cand>, p: f32, sorted: &mut bool) {
    if p <= 0.0 || c.is_empty() {
        return;
    }
    if !*sorted {
        // Unsorted path: keep logits ≥ max + ln p, in their current order.
        let max = c.iter().map(|x| x.logit).fold(f32::MIN, f32::max);
        let min_logit = max + p.ln();
        c.retain(|x| x.logit >= min_logit);
        return;
    }
    let min_logit = c[0].logit + p.ln();
    let keep = 1 + c[1..].iter().take_while(|x| x.logit >= min_logit).count();
    c.truncate(keep);
}

/// Stop strings, checked the way llama-cli checks reverse prompts: a stop matches when it occurs in the
/// detokenized output within the last `stop.len() + padding` bytes (llama-cli uses padding 2 when not
/// interactive, because the stop may be tokenized together with a following character).
#[derive(Clone, Debug, Default)]
pub struct StopStrings {
    stops: Vec<String>,
    padding: usize,
}

impl StopStrings {
    pub fn new(stops: Vec<String>, padding: usize) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            padding,
        }
    }

    /// The first stop string found at the tail of `output`, with its byte offset in `output`.
    pub fn find(&self, output: &str) -> Option<(&str, usize)> {
        self.stops.iter().find_map(|s| {
            let from = output.len().saturating_sub(s.len() + self.padding);
            let from = (0..=from).rev().find(|&i| output.is_char_boundary(i)).unwrap_or(0);
            output[from..].find(s.as_str()).map(|at| (s.as_str(), from + at))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_standard() {
        // C++11 [rand.predef]: the 10000th output of a default-constructed mt19937 is 4123659995.
        let mut r = Mt19937::new(5489);
        assert_eq!(r.next_u32(), 3_499_211_612);
        for _ in 1..9999 {
            r.next_u32();
        }
        assert_eq!(r.next_u32(), 4_123_659_995);
    }

    #[test]
    fn canonical_combines_two_draws() {
        let mut r = Mt19937::new(5489);
        let u = r.canonical_f64();
        let want = (3_499_211_612f64 + 581_869_302f64 * 4_294_967_296.0) / 18_446_744_073_709_551_616.0;
        assert_eq!(u, want);
    }

    #[test]
    fn discrete_distribution_single_weight_draws_nothing() {
        let mut r = Mt19937::new(1);
        assert_eq!(discrete_distribution(&[1.0], &mut r), 0);
        assert_eq!(r.next_u32(), Mt19937::new(1).next_u32());
    }
}
