//! Decode-shaped gemv at the BitNet b1.58 2B-4T shapes, a batched I2_S matmul, and a read-bandwidth probe in
//! the same process, so kernel throughput is reported as a share of measured memory bandwidth.
//!
//! `cargo bench -p bitnet-engine --bench kernels` runs the criterion groups, then prints a markdown table
//! (kernel × shape × threads: GB/s of weight bytes, % of the probe at the same thread count) from its own
//! median timings. I2_S weights rotate through copies totalling ≥ 4× the last-level cache, so every call streams
//! from DRAM as in real decoding. `KERNEL_BENCH_TABLE_ONLY=1` skips criterion.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use engine::kernels::{probe, Dispatcher, F16Matrix, F16Path, Family, I2sEpilogue, I2sMatrix, KernelChoice};
use half::f16;

/// Bytes rotated through for I2_S gemv (the machine's L3 is 32 MiB).
const POOL_BYTES: usize = 128 << 20;
/// Read-bandwidth probe buffer, read one slice per call (slices rotate, so none is cache-resident; short calls
/// give the probe the same exposure to other load on the machine as the kernel calls).
const PROBE_BYTES: usize = 1 << 30;
const PROBE_SLICE: usize = 64 << 20;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

/// Ternary codes: every 2-bit field mapped into 0..=2.
fn codes(rng: &mut Rng, bytes: usize) -> Vec<u8> {
    let mut v = vec![0u8; bytes];
    rng.fill(&mut v);
    v.iter_mut()
        .for_each(|b| *b &= 0b1010_1010 | (!(*b >> 1) & 0b0101_0101));
    v
}

/// One benchmarked operation: its label, weight bytes read per call, and the call itself.
struct Case<'a> {
    name: String,
    bytes: usize,
    /// Multiply-accumulates per call (rows × K × tokens).
    macs: usize,
    run: Box<dyn FnMut() + Send + 'a>,
}

/// Median seconds per call over ≥ 7 calls and ≥ 0.4 s, after one warm-up call.
fn median_secs(run: &mut dyn FnMut()) -> f64 {
    run();
    let (mut times, start) = (Vec::new(), Instant::now());
    while times.len() < 7 || start.elapsed() < Duration::from_millis(400) {
        let t = Instant::now();
        run();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

/// I2_S gemv over a rotating pool of `rows × k` matrices.
fn i2s_case<'a>(d: &'a Dispatcher, rng: &mut Rng, rows: usize, k: usize, n: usize, label: &str) -> Case<'a> {
    let bytes = rows * k / 4;
    let copies = if n == 1 { POOL_BYTES.div_ceil(bytes) } else { 1 };
    let mats: Vec<Vec<u8>> = (0..copies).map(|_| codes(rng, bytes)).collect();
    let x: Vec<f32> = (0..n * k).map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 250.0).collect();
    let mut y = vec![0f32; n * rows];
    let mut i = 0;
    Case {
        name: format!(
            "{label} {rows}x{k}{}",
            if n > 1 { format!(" n={n}") } else { String::new() }
        ),
        bytes,
        macs: rows * k * n,
        run: Box::new(move || {
            let w = I2sMatrix {
                codes: &mats[i % copies],
                scale: 1.0,
                rows,
                k,
            };
            d.i2s_matmul(&w, &x, n, I2sEpilogue::Divide, &mut y);
            black_box(&y);
            i += 1;
        }),
    }
}

fn f16_case<'a>(d: &'a Dispatcher, w: &'a [f16], rows: usize, k: usize, label: &str) -> Case<'a> {
    let x: Vec<f32> = (0..k).map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 250.0).collect();
    let mut y = vec![0f32; rows];
    Case {
        name: format!("{label} {rows}x{k}"),
        bytes: rows * k * 2,
        macs: rows * k,
        run: Box::new(move || {
            d.f16_matmul(&F16Matrix { data: w, rows, k }, &x, 1, F16Path::VecDot, &mut y);
            black_box(&y);
        }),
    }
}

fn main() {
    let table_only = std::env::var_os("KERNEL_BENCH_TABLE_ONLY").is_some();
    let best = Dispatcher::new(KernelChoice::Auto).expect("auto dispatcher");
    let scalar = Dispatcher::new(KernelChoice::Force(Family::Scalar)).unwrap();
    let mut rng = Rng(0x5eed);

    let probe_buf: Vec<u8> = (0..PROBE_BYTES)
        .map(|i| (i as u64).wrapping_mul(0x9e37_79b9) as u8)
        .collect();
    let (vocab, embd) = (128_256, 2560);
    let head: Vec<f16> = (0..vocab * embd)
        .map(|i| f16::from_f32(((i % 251) as f32 - 125.0) / 500.0))
        .collect();

    let fam = best.family().name();
    let i2s_id = &best.table().i2s.gemv().to_string();
    // The kernel a 64-token batch takes (the AMX gemm where granted).
    let t = best.table();
    let gemm_id = t
        .i2s_gemm
        .filter(|g| g.min_tokens <= 64)
        .map_or(t.i2s.gemm(), |g| g.id())
        .to_string();
    let mut cases = [
        i2s_case(&best, &mut rng, 2560, 2560, 1, i2s_id),
        i2s_case(&best, &mut rng, 640, 2560, 1, i2s_id),
        i2s_case(&best, &mut rng, 6912, 2560, 1, i2s_id),
        i2s_case(&best, &mut rng, 2560, 6912, 1, i2s_id),
        f16_case(&best, &head, vocab, embd, &best.table().f16_gemv.id.to_string()),
        i2s_case(&best, &mut rng, 2560, 2560, 64, &gemm_id),
        i2s_case(&scalar, &mut rng, 2560, 2560, 1, "i2s.x86.scalar.gemv"),
    ];
    let probe_name = format!("read probe ({fam}, 64 MiB slices of 1 GiB)");
    let slices = PROBE_BYTES / PROBE_SLICE;
    let mut probe_i = 0;
    let mut probe_call = |threads: usize| {
        let w = PROBE_SLICE;
        let slice = &probe_buf[(probe_i % slices) * w..(probe_i % slices + 1) * w];
        probe_i += 1;
        probe_par(slice, threads)
    };

    if !table_only {
        let mut c = Criterion::default()
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .configure_from_args();
        for threads in [1, 2] {
            let tp = pool(threads);
            let mut g = c.benchmark_group(format!("kernels/{threads}t"));
            g.throughput(Throughput::Bytes(PROBE_SLICE as u64));
            g.bench_function(&probe_name, |b| b.iter(|| tp.install(|| probe_call(threads))));
            for case in cases.iter_mut() {
                g.throughput(Throughput::Bytes(case.bytes as u64));
                g.bench_function(&case.name, |b| b.iter(|| tp.install(|| (case.run)())));
            }
            g.finish();
        }
    }

    println!(
        "\n| kernel × shape | threads | ms/call | GB/s | % of read probe | GMAC/s |\n|---|---:|---:|---:|---:|---:|"
    );
    for threads in [1, 2] {
        let tp = pool(threads);
        let probe_s = median_secs(&mut || {
            black_box(tp.install(|| probe_call(threads)));
        });
        let probe_gbs = PROBE_SLICE as f64 / probe_s / 1e9;
        println!(
            "| {probe_name} | {threads} | {:.2} | {probe_gbs:.1} | 100 | |",
            probe_s * 1e3
        );
        for case in cases.iter_mut() {
            let s = median_secs(&mut || tp.install(|| (case.run)()));
            let gbs = case.bytes as f64 / s / 1e9;
            let gmacs = case.macs as f64 / s / 1e9;
            println!(
                "| {} | {threads} | {:.3} | {gbs:.1} | {:.0} | {gmacs:.1} |",
                case.name,
                s * 1e3,
                100.0 * gbs / probe_gbs
            );
        }
    }
}

/// The probe split into `threads` contiguous parts, one per worker.
fn probe_par(buf: &[u8], threads: usize) -> u64 {
    use rayon::prelude::*;
    buf.par_chunks(buf.len().div_ceil(threads))
        .map(probe::read_sum)
        .reduce(|| 0, u64::wrapping_add)
}
