//! Every declared kernel against its scalar oracle, bit for bit, one test per kernel (stamped out by
//! `kernel_tests!`), including kernels no family picks on this CPU (the AVX-512 BW I2_S kernel on a VNNI host).
//! A kernel this CPU cannot run prints a SKIP line; `EXPECT_ISA=avx2|avx512|amx` (comma-separated) turns that skip
//! into a failure. `every_declared_kernel_is_stamped` fails when a kernel is added without a test here.

use engine::kernels::{declared, oracle, q8_0, scalar, KernelId, Slot};
use half::f16;

mod common;
use common::{bits, Rng};

/// The kernel declared as `id` on this CPU, or `None` (after a SKIP line) when this CPU or build lacks it.
fn kernel(id: &str) -> Option<(KernelId, Slot)> {
    if let Some(found) = declared().into_iter().find(|(k, _)| k.to_string() == id) {
        return Some(found);
    }
    let expected = std::env::var("EXPECT_ISA").unwrap_or_default();
    let isa = id
        .split('.')
        .find(|s| s.starts_with("avx") || ["amx", "neon", "dotprod", "neonfp16"].contains(s))
        .unwrap_or("");
    if !isa.is_empty()
        && expected
            .split(',')
            .any(|s| !s.trim().is_empty() && isa.starts_with(s.trim()))
    {
        panic!("EXPECT_ISA={expected} but kernel {id} is not available on this CPU");
    }
    eprintln!("SKIP: kernel {id} not available on this CPU or in this build");
    None
}

/// Run the check of `slot`'s kind against `want`, its scalar oracle ([`oracle`]).
fn check(slot: Slot, want: Slot) {
    match (slot, want) {
        (Slot::Quantize(f), Slot::Quantize(o)) => quantize(f, o),
        (Slot::LaneBound(f), Slot::LaneBound(o)) => lane_bound(f, o),
        (Slot::I2sRows(f), Slot::I2sRows(o)) => i2s_rows(f, o),
        (Slot::I2sPacked(p, f), Slot::I2sRows(o)) => i2s_packed(p, f, o),
        (Slot::F16Dot(f), Slot::F16Dot(o)) => f16_dot(f, o),
        (Slot::F16Rows(f), Slot::F16Rows(o)) => f16_rows(f, o),
        (Slot::TinyBlas(f), Slot::TinyBlas(o)) => tinyblas(f, o),
        (Slot::TinyBlasRows(f), Slot::TinyBlasRows(o)) => tinyblas_rows(f, o),
        (Slot::Q8k(f), Slot::Q8k(o)) => q8k(f, o),
        (Slot::TqDot(f), Slot::TqDot(o)) => tq_dot(f, o),
        (Slot::Softmax(f), Slot::Softmax(o)) => softmax(f, o),
        (Slot::FfnAct(f), Slot::FfnAct(o)) => ffn_act(f, o),
        (Slot::Rope(f), Slot::Rope(o)) => rope(f, o),
        (Slot::RopeNorm(f), Slot::RopeNorm(o)) => rope_norm(f, o),
        (Slot::Q8Quantize(f), Slot::Q8Quantize(o)) => q8_quantize(f, o),
        (Slot::Q8Rows(f), Slot::Q8Rows(o)) => q8_rows(f, o),
        (s, o) => panic!("oracle {o:?} is not of the kind of {s:?}"),
    }
}

fn quantize(f: engine::kernels::QuantizeFn, o: engine::kernels::QuantizeFn) {
    let mut rng = Rng(1);
    let mut cases: Vec<Vec<f32>> = (0..40).map(|i| rng.f32s(1 + i * 7)).collect();
    cases.push(vec![0.0; 100]);
    cases.push((0..64).map(|i| (i as f32 - 32.0) * 0.5).collect()); // ties after scaling
    cases.push(vec![
        1e30,
        -1e30,
        3.0,
        f32::MIN_POSITIVE,
        -0.0,
        0.0,
        1.0,
        -1.0,
        0.5,
        2.5,
        -2.5,
        1e-7,
        1e-6,
        7.0,
        8.0,
        9.0,
        10.0,
    ]);
    cases.push([f32::NAN, 1.0, -2.0, 3.0].repeat(9));
    cases.push([f32::INFINITY, 1.0, f32::NEG_INFINITY, 0.0, f32::NAN].repeat(7));
    for x in &cases {
        let (mut a, mut b) = (vec![0i8; x.len()], vec![0i8; x.len()]);
        let (sa, ma) = o(x, &mut a);
        let (sb, mb) = f(x, &mut b);
        assert_eq!((sa.to_bits(), ma, &a), (sb.to_bits(), mb, &b), "len {}", x.len());
    }
}

/// Random rows, extreme rows (all −128, all 127, which reach and pass the 32768 threshold) and lengths that end
/// in a partial 32-block group.
fn lane_bound(f: engine::kernels::LaneBoundFn, o: engine::kernels::LaneBoundFn) {
    let mut rng = Rng(7);
    let mut crossed = 0;
    for k in [128, 256, 2560, 4096, 4224, 6912, 8192, 12800] {
        for fill in [None, Some(-128i8), Some(127), Some(0)] {
            let q = fill.map_or_else(|| rng.i8s(k), |v| vec![v; k]);
            let want = o(&q);
            assert_eq!(f(&q), want, "k {k} fill {fill:?}");
            crossed += usize::from(want >= 32768);
        }
    }
    assert!(crossed > 0, "no case reached the wrap threshold");
}

fn i2s_rows(f: engine::kernels::I2sRowsFn, o: engine::kernels::I2sRowsFn) {
    let mut rng = Rng(2);
    for &(rows, k, n) in &[
        (1, 128, 1),
        (3, 128, 2),
        (7, 256, 5),
        (8, 384, 4),
        (17, 128, 9),
        (13, 4224, 6),
    ] {
        // Raw bytes: code 3, which files may hold, must agree too.
        let codes: Vec<u8> = rng.i8s(rows * k / 4).into_iter().map(|b| b as u8).collect();
        let q = rng.i8s(n * k);
        let ld = rows + 3;
        let (mut a, mut b) = (vec![0i32; n * ld], vec![0i32; n * ld]);
        o(&codes, k, &q, n, &mut a, ld);
        f(&codes, k, &q, n, &mut b, ld);
        for t in 0..n {
            assert_eq!(
                a[t * ld..t * ld + rows],
                b[t * ld..t * ld + rows],
                "rows {rows} k {k} n {n} token {t}"
            );
        }
    }
}

/// A packed-activation gemm kernel: shapes around its 16-row / 16-token tiles and 32-row panels (rows and
/// tokens off the tile grid, a lone short tile), K from one block to 8192, and extreme inputs (codes 3 with
/// activations −128 / 127, the largest |sum|).
fn i2s_packed(p: engine::kernels::I2sPackFn, f: engine::kernels::I2sPackedFn, o: engine::kernels::I2sRowsFn) {
    let mut rng = Rng(3);
    let mut packed = Vec::new();
    for &(rows, k, n) in &[
        (1, 128, 1),
        (16, 128, 16),
        (32, 256, 32),
        (33, 128, 17),
        (7, 384, 40),
        (48, 640, 31),
        (64, 1024, 64),
        (40, 2048, 3),
        (17, 8192, 19),
        (96, 4224, 48),
    ] {
        let codes: Vec<u8> = rng.i8s(rows * k / 4).into_iter().map(|b| b as u8).collect();
        let q = rng.i8s(n * k);
        check_packed(p, f, o, &codes, &q, (rows, k, n), &mut packed);
    }
    for fill in [-128i8, 127] {
        let (rows, k, n) = (20, 8192, 18);
        check_packed(
            p,
            f,
            o,
            &vec![0xff; rows * k / 4],
            &vec![fill; n * k],
            (rows, k, n),
            &mut packed,
        );
    }
}

/// One shape of [`i2s_packed`]: outputs into a strided buffer, whose padding must stay untouched.
fn check_packed(
    p: engine::kernels::I2sPackFn,
    f: engine::kernels::I2sPackedFn,
    o: engine::kernels::I2sRowsFn,
    codes: &[u8],
    q: &[i8],
    (rows, k, n): (usize, usize, usize),
    packed: &mut Vec<i8>,
) {
    let ld = rows + 5;
    let (mut a, mut b) = (vec![7i32; n * ld], vec![7i32; n * ld]);
    o(codes, k, q, n, &mut a, ld);
    p(q, k, n, packed);
    f(codes, k, packed, n, &mut b, ld);
    assert_eq!(a, b, "rows {rows} k {k} n {n}");
}

fn f16_dot(f: engine::kernels::F16DotFn, o: engine::kernels::F16DotFn) {
    let mut rng = Rng(5);
    let mut order_visible = 0;
    for n in [
        0, 1, 15, 16, 32, 63, 64, 65, 96, 127, 128, 130, 160, 200, 256, 1000, 2567,
    ] {
        for _ in 0..4 {
            let (x, y) = (rng.f16s(n), rng.f16s(n));
            let want = o(&x, &y);
            assert_eq!(f(&x, &y).to_bits(), want.to_bits(), "n {n}");
            let sequential = x.iter().zip(&y).fold(0f32, |s, (a, b)| s + a.to_f32() * b.to_f32());
            order_visible += usize::from(sequential.to_bits() != want.to_bits());
        }
    }
    assert!(
        order_visible > 10,
        "test data too tame: summation order barely changes results"
    );
}

fn f16_rows(f: engine::kernels::F16RowsFn, o: engine::kernels::F16RowsFn) {
    let mut rng = Rng(6);
    for &(rows, k) in &[(1, 64), (5, 96), (13, 200), (70, 2560)] {
        let (w, x) = (rng.f16s(rows * k), rng.f16s(k));
        let (mut a, mut b) = (vec![0f32; rows], vec![0f32; rows]);
        o(&w, k, &x, &mut a);
        f(&w, k, &x, &mut b);
        assert_eq!(bits(&a), bits(&b), "rows {rows} k {k}");
    }
}

fn tinyblas(f: engine::kernels::TinyBlasFn, o: engine::kernels::TinyBlasFn) {
    let mut rng = Rng(6);
    for n in [0, 16, 32, 48, 64, 96, 128, 160, 2560, 20, 70] {
        for _ in 0..4 {
            let (a, b) = (rng.f16s(n), rng.f32s(n));
            assert_eq!(f(&a, &b).to_bits(), o(&a, &b).to_bits(), "n {n}");
        }
    }
    // An f16-rounded activation is told apart from the f32 one exactly when the oracle tells them apart (the
    // x86 and plain-NEON orders multiply f32 activations; the fp16 order converts them to f16 first).
    let (a, b) = (rng.f16s(2560), rng.f32s(2560));
    let b16: Vec<f32> = b.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
    let apart = |g: engine::kernels::TinyBlasFn| g(&a, &b).to_bits() != g(&a, &b16).to_bits();
    assert_eq!(apart(f), apart(o));
}

fn tinyblas_rows(f: engine::kernels::TinyBlasRowsFn, o: engine::kernels::TinyBlasRowsFn) {
    let mut rng = Rng(7);
    for &(rows, k, n) in &[(1, 32, 2), (5, 64, 3), (13, 128, 5), (70, 160, 9)] {
        let (w, x) = (rng.f16s(rows * k), rng.f32s(n * k));
        let (mut a, mut b) = (vec![0f32; rows * n], vec![0f32; rows * n]);
        o(&w, k, &x, n, &mut a);
        f(&w, k, &x, n, &mut b);
        assert_eq!(bits(&a), bits(&b), "rows {rows} k {k} n {n}");
    }
}

fn q8k(f: engine::kernels::Q8kFn, o: engine::kernels::Q8kFn) {
    let mut rng = Rng(8);
    let x = rng.f32s(1024);
    let (mut qa, mut qb, mut da, mut db) = (vec![0i8; 1024], vec![0i8; 1024], vec![0f32; 4], vec![0f32; 4]);
    o(&x, &mut qa, &mut da);
    f(&x, &mut qb, &mut db);
    assert_eq!((qa, bits(&da)), (qb, bits(&db)));
}

fn tq_dot(f: engine::kernels::TqDotFn, o: engine::kernels::TqDotFn) {
    let mut rng = Rng(9);
    let t: Vec<u8> = (0..512).map(|_| rng.below(3) as u8).collect();
    let (wd, q, qd) = (rng.f32s(2), rng.i8s(512), rng.f32s(2));
    for fused in [false, true] {
        assert_eq!(
            f(&t, &wd, &q, &qd, fused).to_bits(),
            o(&t, &wd, &q, &qd, fused).to_bits()
        );
    }
}

fn softmax(f: engine::kernels::SoftmaxFn, o: engine::kernels::SoftmaxFn) {
    let mut rng = Rng(10);
    for (len, valid) in [(16, 1), (32, 17), (256, 256), (512, 300)] {
        let s = rng.f32s(len).iter().map(|v| v * 40.0).collect::<Vec<_>>();
        let (mut a, mut b) = (s.clone(), s);
        o(&mut a, 0.088, valid);
        f(&mut b, 0.088, valid);
        assert_eq!(bits(&a), bits(&b), "len {len} valid {valid}");
    }
}

fn ffn_act(f: engine::kernels::FfnActFn, o: engine::kernels::FfnActFn) {
    let mut rng = Rng(11);
    let mut g = rng.f32s(4096).iter().map(|v| v * 30.0).collect::<Vec<_>>();
    // Lanes where `v_expf` leaves the polynomial (|n| > 192: 0 or +∞), the subnormal range, and non-finite input.
    let edges = [
        200.0,
        -200.0,
        88.0,
        -88.0,
        103.0,
        -103.0,
        150.0,
        -150.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    g[..edges.len()].copy_from_slice(&edges);
    g[20] = f32::NAN;
    g[21] = -0.0;
    for len in [4096, 4093, 7] {
        for relu2 in [false, true] {
            let (mut a, mut b) = (g[..len].to_vec(), g[..len].to_vec());
            o(&mut a, relu2);
            f(&mut b, relu2);
            assert_eq!(bits(&a), bits(&b), "relu2 {relu2} len {len}");
        }
    }
}

/// A RoPE kernel against its oracle on 20 rows of 128 with random tables drawn from `seed`.
fn rope_from(seed: u64, f: engine::kernels::RopeFn, o: engine::kernels::RopeFn) {
    let mut rng = Rng(seed);
    let (c, s, x) = (rng.f32s(64), rng.f32s(64), rng.f32s(20 * 128));
    let (mut a, mut b) = (x.clone(), x);
    o(&mut a, &c, &s);
    f(&mut b, &c, &s);
    assert_eq!(bits(&a), bits(&b));
}

fn rope(f: engine::kernels::RopeFn, o: engine::kernels::RopeFn) {
    rope_from(12, f, o);
}

fn rope_norm(f: engine::kernels::RopeFn, o: engine::kernels::RopeFn) {
    rope_from(13, f, o);
}

/// Random blocks, plus a zero block, a block whose scale is subnormal (the ARM quantizer's `1/d` overflows
/// there) and one with a value on a rounding tie.
fn q8_quantize(f: engine::kernels::Q8QuantizeFn, o: engine::kernels::Q8QuantizeFn) {
    let mut rng = Rng(14);
    let mut x = rng.f32s(32 * 40);
    x[..32].fill(0.0);
    for (j, v) in x[32..64].iter_mut().enumerate() {
        *v = j as f32 * 1e-40;
    }
    x[64..68].copy_from_slice(&[127.0, 2.5, -3.5, 0.0]);
    let (mut qa, mut da) = (vec![0i8; x.len()], vec![0f32; 40]);
    let (mut qb, mut db) = (qa.clone(), da.clone());
    o(&x, &mut qa, &mut da);
    f(&x, &mut qb, &mut db);
    assert_eq!((qa, bits(&da)), (qb, bits(&db)));
}

/// Q8_0 weights (random f16 scales, int8 including −128) × quantized activations (never −128).
fn q8_rows(f: engine::kernels::Q8RowsFn, o: engine::kernels::Q8RowsFn) {
    let mut rng = Rng(15);
    for &(rows, k, n) in &[(1, 32, 1), (7, 96, 5), (9, 384, 4), (5, 3200, 3)] {
        let mut w = Vec::new();
        for _ in 0..rows * k / 32 {
            w.extend_from_slice(&f16::from_f32(rng.f32s(1)[0]).to_le_bytes());
            w.extend((0..32).map(|_| rng.next() as u8));
        }
        let x = rng.f32s(n * k);
        let (mut q, mut d) = (vec![0i8; n * k], vec![0f32; n * k / 32]);
        q8_0::quantize_q8_0(&x, &mut q, &mut d);
        let (mut a, mut b) = (vec![0f32; rows * n], vec![0f32; rows * n]);
        o(&w, k, &q, &d, n, &mut a);
        f(&w, k, &q, &d, n, &mut b);
        assert_eq!(bits(&a), bits(&b), "rows {rows} k {k} n {n}");
    }
}

macro_rules! kernel_tests {
    ($($name:ident => $id:literal,)*) => {
        $(
            #[test]
            fn $name() {
                if let Some((id, slot)) = kernel($id) {
                    check(slot, oracle(id).expect("every declared kernel has a scalar oracle"));
                }
            }
        )*
        /// Every kernel ID that has a test (a new kernel must be added to the list below).
        fn stamped() -> Vec<&'static str> {
            vec![$($id),*]
        }
    };
}

kernel_tests! {
    i8s_avx2_quantize => "i8s.avx2.quantize",
    i8s_avx512_quantize => "i8s.avx512.quantize",
    i2s_x86_avx512_lane_bound => "i2s.x86.avx512.lane_bound",
    i2s_x86_avx2 => "i2s.x86.avx2.gemv",
    i2s_x86_avx512bw => "i2s.x86.avx512bw.gemv",
    i2s_x86_avx512vnni => "i2s.x86.avx512vnni.gemv",
    i2s_x86_amx_gemm => "i2s.x86.amx.gemm",
    f16_avx2_vec_dot => "f16.avx2.vec_dot",
    f16_avx512_vec_dot => "f16.avx512.vec_dot",
    f16_avx2_vec_dot_gemv => "f16.avx2.vec_dot.gemv",
    f16_avx512_vec_dot_gemv => "f16.avx512.vec_dot.gemv",
    f16_avx2_tinyblas => "f16.avx2.tinyblas",
    f16_avx512_tinyblas => "f16.avx512.tinyblas",
    f16_avx2_tinyblas_gemm => "f16.avx2.tinyblas.gemm",
    f16_avx512_tinyblas_gemm => "f16.avx512.tinyblas.gemm",
    softmax_fma => "softmax.fma.f32",
    ffn_act_fma => "ffn_act.fma.f32",
    softmax_avx512 => "softmax.avx512.f32",
    ffn_act_avx512 => "ffn_act.avx512.f32",
    rope_fma => "rope.fma.neox",
    rope_norm_fma => "rope.fma.norm",
    q8_0_avx2 => "q8_0.avx2.gemv",
    q8_0_avx512bw => "q8_0.avx512bw.gemv",
    q8_0_avx512vnni => "q8_0.avx512vnni.gemv",
    i8s_neon_quantize => "i8s.neon.quantize",
    i2s_x86_neon => "i2s.x86.neon.gemv",
    i2s_x86_dotprod => "i2s.x86.dotprod.gemv",
    f16_neon_vec_dot => "f16.neon.vec_dot_neon",
    f16_neon_vec_dot_gemv => "f16.neon.vec_dot_neon.gemv",
    f16_neon_tinyblas => "f16.neon.tinyblas_neon",
    f16_neon_tinyblas_gemm => "f16.neon.tinyblas_neon.gemm",
    f16_neonfp16_vec_dot => "f16.neonfp16.vec_dot_neonfp16",
    f16_neonfp16_vec_dot_gemv => "f16.neonfp16.vec_dot_neonfp16.gemv",
    f16_neonfp16_tinyblas => "f16.neonfp16.tinyblas_neonfp16",
    f16_neonfp16_tinyblas_gemm => "f16.neonfp16.tinyblas_neonfp16.gemm",
    q8_0_neon_quantize_neon => "q8_0.neon.quantize_neon",
    q8_0_neon_vec_dot_neon => "q8_0.neon.vec_dot_neon",
    q8_0_neon_vec_dot_neonfp16 => "q8_0.neon.vec_dot_neonfp16",
    q8_0_dotprod_vec_dot_neonfp16 => "q8_0.dotprod.vec_dot_neonfp16",
    q8_0_neon_tinyblas_neonfp16 => "q8_0.neon.tinyblas_neonfp16",
    q8_0_dotprod_tinyblas_neonfp16 => "q8_0.dotprod.tinyblas_neonfp16",
}

/// The aarch64 orders' scalar oracles agree with bitnet.cpp's ARM goldens (scoreboard), so here they only
/// have to be distinct from the x86 order on shapes where lane grouping matters — a kernel tested against the
/// wrong oracle would then fail.
#[test]
fn arm_oracles_differ_from_the_x86_order() {
    let mut rng = Rng(21);
    let (x, y) = (rng.f16s(2560), rng.f16s(2560));
    let dot = |id: &str| match oracle(declared().into_iter().find(|(k, _)| k.to_string() == id).unwrap().0) {
        Some(Slot::F16Dot(f)) => f(&x, &y),
        other => panic!("{other:?}"),
    };
    let (x86, neon, fp16) = (
        dot("f16.scalar.vec_dot"),
        dot("f16.scalar.vec_dot_neon"),
        dot("f16.scalar.vec_dot_neonfp16"),
    );
    assert_ne!(x86.to_bits(), neon.to_bits());
    assert_ne!(neon.to_bits(), fp16.to_bits());
}

/// The same for Q8_0: the aarch64 orders' oracles (`vmull` lanes, `sdot` lanes, tinyBLAS's single accumulator)
/// differ from the x86 order and from each other on a bitnet-3B-wide row, and the ARM quantizer from x86's.
#[test]
fn arm_q8_0_oracles_differ_from_the_x86_order() {
    let mut rng = Rng(22);
    let (rows, k) = (16, 3200);
    let mut w = Vec::new();
    for _ in 0..rows * k / 32 {
        w.extend_from_slice(&f16::from_f32(rng.f32s(1)[0] * 0.01).to_le_bytes());
        w.extend((0..32).map(|_| rng.next() as u8));
    }
    let x = rng.f32s(k);
    let (mut q, mut d) = (vec![0i8; k], vec![0f32; k / 32]);
    q8_0::quantize_q8_0(&x, &mut q, &mut d);
    let rows_of = |id: &str| {
        let Some(Slot::Q8Rows(f)) = oracle(declared().into_iter().find(|(i, _)| i.to_string() == id).unwrap().0) else {
            panic!("{id}")
        };
        let mut out = vec![0f32; rows];
        f(&w, k, &q, &d, 1, &mut out);
        bits(&out)
    };
    let all = [
        rows_of("q8_0.scalar.gemv"),
        rows_of("q8_0.scalar.vec_dot_neon"),
        rows_of("q8_0.scalar.vec_dot_neonfp16"),
        rows_of("q8_0.scalar.tinyblas_neonfp16"),
    ];
    for i in 0..all.len() {
        for j in i + 1..all.len() {
            assert_ne!(all[i], all[j], "orders {i} and {j}");
        }
    }
    // amax 3.8202732: x86's id = 127/amax and ARM's 1/(amax/127) differ by an ulp, and x·id lands on either
    // side of 1.5 (f32 bits found by search).
    let mut x = [0f32; 32];
    x[0] = f32::from_bits(1081376603);
    x[1] = f32::from_bits(1027133734);
    let Some(Slot::Q8Quantize(arm)) = oracle(
        declared()
            .into_iter()
            .find(|(i, _)| i.to_string() == "q8_0.scalar.quantize_neon")
            .unwrap()
            .0,
    ) else {
        panic!("the ARM Q8_0 quantizer is declared")
    };
    let (mut qa, mut qx, mut da) = ([0i8; 32], [0i8; 32], [0f32; 1]);
    arm(&x, &mut qa, &mut da);
    q8_0::quantize_q8_0(&x, &mut qx, &mut da);
    assert_eq!((qx[1], qa[1]), (1, 2));
}

/// Every non-scalar kernel declared on this CPU has a test above (scalar kernels are the oracles).
#[test]
fn every_declared_kernel_is_stamped() {
    let stamped = stamped();
    let missing: Vec<KernelId> = declared()
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| id.isa != engine::kernels::Isa::Scalar && !stamped.contains(&id.to_string().as_str()))
        .collect();
    assert!(missing.is_empty(), "kernels without a per-kernel test: {missing:?}");
}

/// Sanity: the oracle checks can fail (a perturbed f16 dot is caught).
#[test]
#[should_panic]
fn a_wrong_kernel_fails_its_check() {
    fn off_by_one(x: &[f16], y: &[f16]) -> f32 {
        f32::from_bits(scalar::f16_dot(x, y).to_bits() ^ 1)
    }
    check(Slot::F16Dot(off_by_one), Slot::F16Dot(scalar::f16_dot));
}
