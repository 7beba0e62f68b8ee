//! Tile walkers shared by the ISA modules: they cut a `rows × tokens` product into register tiles and call
//! one ISA's tile function on each. Each output element is computed by one tile call whose arithmetic does not
//! depend on which other rows or tokens share the tile, so tiling never changes a bit.

/// Defines `$name(codes, k, q, n, out, ld)` (an [`super::I2sRowsFn`] body, `unsafe`, with `$features`) over the
/// tile function `$tile::<R, T>(rows, tokens, blocks, next) -> [[i32; T]; R]`, where `next` is where the
/// following row tile starts (a prefetch hint; it may point past the matrix and is never dereferenced). Tokens go in the outer loop
/// (`$tm` at a time, so a token tile stays in L1 while the row chunk streams past); single tokens use
/// `$rg`-row tiles.
macro_rules! i2s_driver {
    ($name:ident, $features:literal, $tile:ident, gemv_rows = $rg:literal, gemm = ($rm:literal, $tm:literal)) => {
        /// Exact `Σ code·q` for every row of `codes` × every token of `q`, into `out[t·ld + r]`.
        ///
        /// # Safety
        /// The CPU must support every target feature this function enables.
        #[target_feature(enable = $features)]
        unsafe fn $name(codes: &[u8], k: usize, q: &[i8], n: usize, out: &mut [i32], ld: usize) {
            let (kb, nb) = (k / 4, k / 128);
            assert!(
                k % 128 == 0 && k > 0,
                "I2_S rows need K a positive multiple of 128"
            );
            let rows = codes.len() / kb;
            assert!(q.len() >= n * k && ld >= rows && (n == 0 || out.len() >= (n - 1) * ld + rows));
            let row = |r: usize| codes[r * kb..(r + 1) * kb].as_ptr();
            let next = |r: usize| codes.as_ptr().wrapping_add(r * kb);
            let tok = |t: usize| q[t * k..(t + 1) * k].as_ptr();
            let mut t = 0;
            while t < n {
                if n - t >= $tm {
                    let qs: [*const i8; $tm] = std::array::from_fn(|j| tok(t + j));
                    let mut r = 0;
                    while r + $rm <= rows {
                        // SAFETY: every pointer starts a full row / token slice (bounds-checked above),
                        // and the caller guarantees the target features.
                        let s =
                            unsafe { $tile::<$rm, $tm>(std::array::from_fn(|i| row(r + i)), qs, nb, next(r + $rm)) };
                        for j in 0..$tm {
                            for i in 0..$rm {
                                out[(t + j) * ld + r + i] = s[i][j];
                            }
                        }
                        r += $rm;
                    }
                    for r in r..rows {
                        // SAFETY: as above.
                        let s = unsafe { $tile::<1, $tm>([row(r)], qs, nb, next(r + 1)) };
                        for j in 0..$tm {
                            out[(t + j) * ld + r] = s[0][j];
                        }
                    }
                    t += $tm;
                } else {
                    let qs = [tok(t)];
                    let mut r = 0;
                    while r + $rg <= rows {
                        // SAFETY: as above.
                        let s = unsafe { $tile::<$rg, 1>(std::array::from_fn(|i| row(r + i)), qs, nb, next(r + $rg)) };
                        for (i, si) in s.iter().enumerate() {
                            out[t * ld + r + i] = si[0];
                        }
                        r += $rg;
                    }
                    for r in r..rows {
                        // SAFETY: as above.
                        out[t * ld + r] = unsafe { $tile::<1, 1>([row(r)], qs, nb, next(r + 1)) }[0][0];
                    }
                    t += 1;
                }
            }
        }
    };
}

/// Defines `$name(w, k, x, n, out)` (a [`super::TinyBlasRowsFn`] body) over
/// `$tile::<R, T>(rows, tokens, k16) -> [[f32; T]; R]`, same walk as [`i2s_driver`].
macro_rules! tinyblas_driver {
    ($name:ident, $features:literal, $tile:ident, ($rm:literal, $tm:literal)) => {
        /// tinyBLAS F16×F32 for every row of `w` × every token of `x`, into `out[r·n + t]`.
        ///
        /// # Safety
        /// The CPU must support every target feature this function enables.
        #[target_feature(enable = $features)]
        unsafe fn $name(w: &[f16], k: usize, x: &[f32], n: usize, out: &mut [f32]) {
            assert!(k > 0);
            let rows = w.len() / k;
            assert!(x.len() >= n * k && out.len() >= rows * n);
            let k16 = k / 16;
            let row = |r: usize| w[r * k..(r + 1) * k].as_ptr();
            let tok = |t: usize| x[t * k..(t + 1) * k].as_ptr();
            let mut t = 0;
            while t < n {
                if n - t >= $tm {
                    let xs: [*const f32; $tm] = std::array::from_fn(|j| tok(t + j));
                    let mut r = 0;
                    while r + $rm <= rows {
                        // SAFETY: every pointer starts a full row / token slice of `k ≥ 16·k16` elements,
                        // and the caller guarantees the target features.
                        let s = unsafe { $tile::<$rm, $tm>(std::array::from_fn(|i| row(r + i)), xs, k16) };
                        for (i, si) in s.iter().enumerate() {
                            out[(r + i) * n + t..(r + i) * n + t + $tm].copy_from_slice(si);
                        }
                        r += $rm;
                    }
                    for r in r..rows {
                        // SAFETY: as above.
                        let s = unsafe { $tile::<1, $tm>([row(r)], xs, k16) };
                        out[r * n + t..r * n + t + $tm].copy_from_slice(&s[0]);
                    }
                    t += $tm;
                } else {
                    for r in 0..rows {
                        // SAFETY: as above.
                        out[r * n + t] = unsafe { $tile::<1, 1>([row(r)], [tok(t)], k16) }[0][0];
                    }
                    t += 1;
                }
            }
        }
    };
}

pub(super) use {i2s_driver, tinyblas_driver};
