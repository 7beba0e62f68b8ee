//! A read-bandwidth probe: the rate at which this machine streams memory into registers, measured with the
//! simplest loop that can saturate it (several independent wide integer accumulators, no other work). Decode
//! is bounded by it, so benchmarks report decode as a fraction of what the probe measures in the same run.
//! Not an inference kernel: nothing computed here reaches a logit.

use rayon::prelude::*;

/// Wrapping sum of `buf` as little-endian u64 words (a trailing partial word is ignored), read with the widest
/// vectors this CPU has.
pub fn read_sum(buf: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was just detected.
            return unsafe { x86::sum_avx512(buf) };
        }
        if is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was just detected.
            return unsafe { x86::sum_avx2(buf) };
        }
    }
    sum_words(buf)
}

fn sum_words(buf: &[u8]) -> u64 {
    buf.chunks_exact(8)
        .fold(0u64, |s, c| s.wrapping_add(u64::from_le_bytes(c.try_into().unwrap())))
}

/// Read every slice once, split into pieces across the current rayon pool; returns GB/s (10⁹ bytes per
/// second) and the checksum (keep it, so the reads cannot be optimized away).
pub fn read_gbs(slices: &[&[u8]]) -> (f64, u64) {
    const PIECE: usize = 4 << 20;
    let pieces: Vec<&[u8]> = slices.iter().flat_map(|s| s.chunks(PIECE)).collect();
    let bytes: usize = pieces.iter().map(|p| p.len() & !7).sum();
    let t = std::time::Instant::now();
    let sum = pieces.par_iter().map(|p| read_sum(p)).reduce(|| 0, u64::wrapping_add);
    (bytes as f64 / t.elapsed().as_secs_f64().max(1e-9) / 1e9, sum)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// # Safety
    /// AVX-512F must be present.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn sum_avx512(buf: &[u8]) -> u64 {
        let mut acc = [_mm512_setzero_si512(); 4];
        let chunks = buf.chunks_exact(256);
        let tail = super::sum_words(chunks.remainder());
        for c in chunks {
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: c holds 256 bytes, 64·j + 64 ≤ 256; unaligned load.
                *a = _mm512_add_epi64(*a, unsafe { _mm512_loadu_si512(c.as_ptr().add(64 * j).cast()) });
            }
        }
        let s = _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3]));
        (_mm512_reduce_add_epi64(s) as u64).wrapping_add(tail)
    }

    /// # Safety
    /// AVX2 must be present.
    #[target_feature(enable = "avx2")]
    pub unsafe fn sum_avx2(buf: &[u8]) -> u64 {
        let mut acc = [_mm256_setzero_si256(); 4];
        let chunks = buf.chunks_exact(128);
        let tail = super::sum_words(chunks.remainder());
        for c in chunks {
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: c holds 128 bytes, 32·j + 32 ≤ 128; unaligned load.
                *a = _mm256_add_epi64(*a, unsafe { _mm256_loadu_si256(c.as_ptr().add(32 * j).cast()) });
            }
        }
        let mut total = tail;
        for a in acc {
            let mut l = [0u64; 4];
            // SAFETY: 4 writable u64; unaligned store.
            unsafe { _mm256_storeu_si256(l.as_mut_ptr().cast(), a) };
            total = l.iter().fold(total, |s, &v| s.wrapping_add(v));
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_sums_the_same_words() {
        let buf: Vec<u8> = (0..10_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for len in [0, 7, 8, 255, 256, 257, 1000, 9999] {
            assert_eq!(read_sum(&buf[..len]), sum_words(&buf[..len]), "len {len}");
        }
        let (gbs, sum) = read_gbs(&[&buf[..4096], &buf[5000..9000]]);
        assert!(gbs > 0.0);
        assert_eq!(sum, sum_words(&buf[..4096]).wrapping_add(sum_words(&buf[5000..9000])));
    }
}
