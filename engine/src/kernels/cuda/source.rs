//! The CUDA C source of every kernel, compiled at run time by NVRTC (no toolkit needed at build time).
//!
//! Compiled with `--fmad=false` so no multiply-add is contracted unless written as `fmaf`, and with
//! IEEE division and square root; each kernel follows the rounding points of its CPU counterpart
//! (`kernels::scalar`, `model::ops`). f16 values travel as raw `unsigned short` bits and are converted with
//! PTX `cvt` (round-to-nearest-even), so no `cuda_fp16.h` is needed.

/// NVRTC options besides the target architecture.
pub const NVRTC_OPTIONS: &[&str] = &[
    "--fmad=false",
    "--prec-div=true",
    "--prec-sqrt=true",
    "--ftz=false",
    "--std=c++14",
];

/// Names of the `extern "C"` kernels in [`SRC`], in load order.
pub const KERNELS: &[&str] = &[
    "i8s_quantize",
    "i2s_gemv",
    "f16_gemv",
    "f16_tinyblas",
    "rms_norm",
    "rope",
    "kv_store",
    "attention",
    "ffn_act",
    "mul_inplace",
    "add_inplace",
    "scale_inplace",
    "add_bias",
    "round_f16",
];

/// Every kernel, one translation unit.
pub const SRC: &str = r#"
typedef unsigned short u16;
typedef unsigned char u8;

#define FULL 0xffffffffu
#define INFINITY __int_as_float(0x7f800000)

__device__ __forceinline__ float h2f(u16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ u16 f2h(float f) { u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }

/* Block reductions (blockDim a multiple of 32, at most 1024); sh holds 32 entries. Max and integer sums are
   order-independent; the f64 sum is not, see rms_norm. */
__device__ double block_sum_f64(double v, double* sh) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(FULL, v, o);
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  if (wid == 0) {
    v = lane < nw ? sh[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(FULL, v, o);
    if (lane == 0) sh[0] = v;
  }
  __syncthreads();
  return sh[0];
}

__device__ double block_max_f64(double v, double* sh) {
  for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_down_sync(FULL, v, o));
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  if (wid == 0) {
    v = lane < nw ? sh[lane] : -1.0;
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_down_sync(FULL, v, o));
    if (lane == 0) sh[0] = v;
  }
  __syncthreads();
  return sh[0];
}

__device__ float block_max_f32(float v, float* sh) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(FULL, v, o));
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  if (wid == 0) {
    v = lane < nw ? sh[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(FULL, v, o));
    if (lane == 0) sh[0] = v;
  }
  __syncthreads();
  return sh[0];
}

__device__ int block_sum_i32(int v, int* sh) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(FULL, v, o);
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  if (wid == 0) {
    v = lane < nw ? sh[lane] : 0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(FULL, v, o);
    if (lane == 0) sh[0] = v;
  }
  __syncthreads();
  return sh[0];
}

/* scalar::tree16 across the 16 lanes of a half-warp (i+8, i+4, i+2, i+1); the result is valid in lane 0.
   All 32 lanes of the warp must call it. */
__device__ __forceinline__ float tree16(float r) {
  r = __fadd_rn(r, __shfl_down_sync(FULL, r, 8, 16));
  r = __fadd_rn(r, __shfl_down_sync(FULL, r, 4, 16));
  r = __fadd_rn(r, __shfl_down_sync(FULL, r, 2, 16));
  r = __fadd_rn(r, __shfl_down_sync(FULL, r, 1, 16));
  return r;
}

/* scalar::f16_dot (ggml_vec_dot_f16, AVX-512 order) by one half-warp, lane l: 4 accumulators x 16 lanes per
   64 elements, (a0+a2)+(a1+a3), tree16, tail in f64 by lane 0. b holds f16-exact floats. Valid in lane 0. */
__device__ float dot_vecdot(const u16* a, const float* b, int n, int l) {
  float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
  int np = n & ~63;
  for (int c = 0; c < np; c += 64) {
    a0 = __fadd_rn(a0, __fmul_rn(h2f(a[c + l]), b[c + l]));
    a1 = __fadd_rn(a1, __fmul_rn(h2f(a[c + 16 + l]), b[c + 16 + l]));
    a2 = __fadd_rn(a2, __fmul_rn(h2f(a[c + 32 + l]), b[c + 32 + l]));
    a3 = __fadd_rn(a3, __fmul_rn(h2f(a[c + 48 + l]), b[c + 48 + l]));
  }
  float r = tree16(__fadd_rn(__fadd_rn(a0, a2), __fadd_rn(a1, a3)));
  double s = np > 0 ? (double)r : 0.0;
  if (l == 0)
    for (int i = np; i < n; ++i) s += (double)__fmul_rn(h2f(a[i]), b[i]);
  return __double2float_rn(s);
}

/* scalar::tinyblas_f16_f32 by one half-warp: an FMA chain per lane over steps of 16, then tree16. n % 16 == 0. */
__device__ float dot_tinyblas(const u16* a, const float* b, int n, int l) {
  float acc = 0.0f;
  for (int c = 0; c < n; c += 16) acc = fmaf(h2f(a[c + l]), b[c + l], acc);
  return tree16(acc);
}

/* model::ops::v_expf (ggml_v_expf, AVX-512 lanes). */
__device__ float v_expf(float x) {
  const float R = 12582912.0f;
  float z = fmaf(x, __int_as_float(0x3fb8aa3b), R);
  float n = __fsub_rn(z, R);
  float b = fmaf(-n, __int_as_float(0x35bfbe8e), fmaf(-n, __int_as_float(0x3f317200), x));
  float u = __fmul_rn(b, b);
  const float c5 = __int_as_float(0x3c072010), c4 = __int_as_float(0x3d2b9f17), c3 = __int_as_float(0x3e2aaf33);
  const float c2 = __int_as_float(0x3efffedb), c1 = __int_as_float(0x3f7ffff6);
  float j = fmaf(fmaf(fmaf(c5, b, c4), u, fmaf(c3, b, c2)), u, fmaf(c1, b, 1.0f));
  if (n != n) return n;
  if (fabsf(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
  return __double2float_rn(scalbn((double)j, (int)n));
}

__device__ __forceinline__ float silu(float x) { return __fdiv_rn(x, __fadd_rn(1.0f, v_expf(__fsub_rn(0.0f, x)))); }

/* quantize_row_i8_s, one block per row: f64 absmax from 1e-5, s = f32(127/amax), rint(x*s) clamped. */
extern "C" __global__ void i8s_quantize(const float* x, int k, signed char* q, float* scales, int* sums) {
  __shared__ double shd[32];
  __shared__ int shi[32];
  const float* xr = x + (long long)blockIdx.x * k;
  signed char* qr = q + (long long)blockIdx.x * k;
  double amax = 1e-5;
  for (int i = threadIdx.x; i < k; i += blockDim.x) amax = fmax(amax, fabs((double)xr[i]));
  amax = block_max_f64(amax, shd);
  float s = __double2float_rn(127.0 / amax);
  int sum = 0;
  for (int i = threadIdx.x; i < k; i += blockDim.x) {
    float v = rintf(__fmul_rn(xr[i], s));
    int iv = v != v ? 0 : (int)fminf(fmaxf(v, -128.0f), 127.0f);
    qr[i] = (signed char)iv;
    sum += iv;
  }
  sum = block_sum_i32(sum, shi);
  if (threadIdx.x == 0) { scales[blockIdx.x] = s; sums[blockIdx.x] = sum; }
}

/* I2_S (x86 128-block layout) x int8, one warp per row, grid.y = token. Lane: block lane/8 (+4 per step),
   byte word lane%8; each bit-group g of the word is 4 codes for 4 consecutive activations: one dp4a.
   Exact int32 sums (no int16 lane wrap), then the f32 epilogue: epi 0 = ((sumi - sum) / s) * w_scale,
   epi 1 = (sumi - sum) * (w_scale / s). sums[row*n + t], y[t*rows + row]. */
extern "C" __global__ void i2s_gemv(const u8* codes, int rows, int k, const signed char* q, const float* act_scale,
                                    const int* act_sum, float w_scale, int epi, int n, int* sums, float* y) {
  int lane = threadIdx.x & 31;
  int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  int t = blockIdx.y;
  if (row >= rows) return;
  const unsigned* wr = (const unsigned*)(codes + (long long)row * (k / 4));
  const int* qa = (const int*)(q + (long long)t * k);
  int nb = k / 128, w = lane & 7, acc = 0;
  for (int b = lane >> 3; b < nb; b += 4) {
    unsigned word = wr[b * 8 + w];
    const int* qb = qa + b * 32 + w;
    acc = __dp4a((int)((word >> 6) & 0x03030303u), qb[0], acc);
    acc = __dp4a((int)((word >> 4) & 0x03030303u), qb[8], acc);
    acc = __dp4a((int)((word >> 2) & 0x03030303u), qb[16], acc);
    acc = __dp4a((int)(word & 0x03030303u), qb[24], acc);
  }
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(FULL, acc, o);
  if (lane == 0) {
    sums[(long long)row * n + t] = acc;
    float d = __fsub_rn((float)acc, (float)act_sum[t]), s = act_scale[t];
    y[(long long)t * rows + row] = epi == 0 ? __fmul_rn(__fdiv_rn(d, s), w_scale) : __fmul_rn(d, __fdiv_rn(w_scale, s));
  }
}

/* F16 rows x f16-exact activations in ggml_vec_dot_f16 order; one half-warp per row, grid.y = token. */
extern "C" __global__ void f16_gemv(const u16* w, int rows, int k, const float* x, int n, float* y) {
  int l = threadIdx.x & 15;
  int row = blockIdx.x * (blockDim.x >> 4) + (threadIdx.x >> 4);
  int t = blockIdx.y;
  int r = row < rows ? row : rows - 1;
  float v = dot_vecdot(w + (long long)r * k, x + (long long)t * k, k, l);
  if (row < rows && l == 0) y[(long long)t * rows + row] = v;
}

/* F16 rows x f32 activations in tinyBLAS order; one half-warp per row, grid.y = token. k % 16 == 0. */
extern "C" __global__ void f16_tinyblas(const u16* w, int rows, int k, const float* x, int n, float* y) {
  int l = threadIdx.x & 15;
  int row = blockIdx.x * (blockDim.x >> 4) + (threadIdx.x >> 4);
  int t = blockIdx.y;
  int r = row < rows ? row : rows - 1;
  float v = dot_tinyblas(w + (long long)r * k, x + (long long)t * k, k, l);
  if (row < rows && l == 0) y[(long long)t * rows + row] = v;
}

/* rms_norm then the weight multiply, one block per row. Squares are summed in f64 by a tree, not in the CPU's
   sequential order: the f32 mean can differ only when the f64 sums straddle an f32 rounding boundary. */
extern "C" __global__ void rms_norm(const float* x, const float* w, int k, float eps, float* out) {
  __shared__ double sh[32];
  const float* xr = x + (long long)blockIdx.x * k;
  float* o = out + (long long)blockIdx.x * k;
  double s = 0.0;
  for (int i = threadIdx.x; i < k; i += blockDim.x) { float v = xr[i]; s += (double)__fmul_rn(v, v); }
  s = block_sum_f64(s, sh);
  float mean = __double2float_rn(s / (double)k);
  float scale = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(mean, eps)));
  for (int i = threadIdx.x; i < k; i += blockDim.x) o[i] = __fmul_rn(__fmul_rn(xr[i], scale), w[i]);
}

/* RoPE in place on [n][n_heads][hd] with host-built tables [pos][hd/2]; token t is at position p0 + t. Pairs
   (x[i], x[i + hd/2]) when neox (the BitNet archs), else (x[2i], x[2i + 1]) (NORM, arch llama). */
extern "C" __global__ void rope(float* x, int n_heads, int hd, const float* cosv, const float* sinv, int p0, int neox) {
  int half = hd / 2, t = blockIdx.y;
  int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= n_heads * half) return;
  int h = idx / half, i = idx % half;
  float* xh = x + ((long long)t * n_heads + h) * hd;
  long long p = (long long)(p0 + t) * half + i;
  int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
  float c = cosv[p], s = sinv[p], x0 = xh[i0], x1 = xh[i1];
  xh[i0] = fmaf(x0, c, -__fmul_rn(x1, s));
  xh[i1] = fmaf(x0, s, __fmul_rn(x1, c));
}

/* Store K and V rows of n tokens (f32 -> f16 RNE): K as [layer][head][cell][hd], V as [layer][head][hd][cell]. */
extern "C" __global__ void kv_store(const float* k, const float* v, u16* kc, u16* vc, int layer, int n_head_kv, int hd,
                                    int size, int p0) {
  int t = blockIdx.y;
  int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= n_head_kv * hd) return;
  int h = idx / hd, d = idx % hd;
  long long base = ((long long)layer * n_head_kv + h) * hd * size, pos = p0 + t, src = (long long)t * n_head_kv * hd + idx;
  kc[base + pos * hd + d] = f2h(k[src]);
  vc[base + (long long)d * size + pos] = f2h(v[src]);
}

/* One (head, query) per block of 8 half-warps. scores: scratch of stride size + size/16 per (query, head).
   KQ: q rounded to f16; vec_dot (kq_tinyblas 0) or tinyBLAS on the f16-rounded q (1). Softmax as
   model::ops::softmax_masked (f32 max, v_expf, per-16 tree sums accumulated in f64 in chunk order).
   PV: pv 0 = vec_dot with p rounded to f16, 1 = tinyBLAS with f32 p, 2 = tinyBLAS with p rounded to f16. */
extern "C" __global__ void attention(const float* q, const u16* kc, const u16* vc, float* scores, float* out, int layer,
                                     int n_head, int n_head_kv, int hd, int size, int n_kv, int p0, float kq_scale,
                                     int kq_tinyblas, int pv) {
  __shared__ float qf[256];
  __shared__ float shf[32];
  __shared__ double shd[1];
  int h = blockIdx.x, t = blockIdx.y, kh = h / (n_head / n_head_kv);
  int g = threadIdx.x >> 4, l = threadIdx.x & 15, ng = blockDim.x >> 4;
  const float* qr = q + ((long long)t * n_head + h) * hd;
  for (int d = threadIdx.x; d < hd; d += blockDim.x) qf[d] = h2f(f2h(qr[d]));
  __syncthreads();
  long long base = ((long long)layer * n_head_kv + kh) * hd * size;
  float* s = scores + ((long long)t * n_head + h) * (size + size / 16);
  for (int j0 = 0; j0 < n_kv; j0 += ng) {
    int j = j0 + g, jj = j < n_kv ? j : n_kv - 1;
    const u16* kr = kc + base + (long long)jj * hd;
    float v = kq_tinyblas ? dot_tinyblas(kr, qf, hd, l) : dot_vecdot(kr, qf, hd, l);
    if (j < n_kv && l == 0) s[j] = v;
  }
  __syncthreads();
  int valid = p0 + t + 1;
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < n_kv; j += blockDim.x) {
    float w = j < valid ? __fmul_rn(s[j], kq_scale) : -INFINITY;
    s[j] = w;
    mx = fmaxf(mx, w);
  }
  mx = block_max_f32(mx, shf);
  for (int j = threadIdx.x; j < n_kv; j += blockDim.x) s[j] = v_expf(__fsub_rn(s[j], mx));
  __syncthreads();
  float* cs = s + size;
  int nch = n_kv / 16;
  for (int c = threadIdx.x; c < nch; c += blockDim.x) {
    const float* e = s + 16 * c;
    float a[8];
    for (int i = 0; i < 8; ++i) a[i] = __fadd_rn(e[i], e[i + 8]);
    float b0 = __fadd_rn(a[0], a[4]), b1 = __fadd_rn(a[1], a[5]), b2 = __fadd_rn(a[2], a[6]), b3 = __fadd_rn(a[3], a[7]);
    cs[c] = __fadd_rn(__fadd_rn(b0, b2), __fadd_rn(b1, b3));
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double sum = 0.0;
    for (int c = 0; c < nch; ++c) sum += (double)cs[c];
    shd[0] = sum;
  }
  __syncthreads();
  float inv = __double2float_rn(1.0 / shd[0]);
  for (int j = threadIdx.x; j < n_kv; j += blockDim.x) {
    float p = __fmul_rn(s[j], inv);
    s[j] = pv == 1 ? p : h2f(f2h(p));
  }
  __syncthreads();
  float* o = out + ((long long)t * n_head + h) * hd;
  for (int d0 = 0; d0 < hd; d0 += ng) {
    int d = d0 + g, dd = d < hd ? d : hd - 1;
    const u16* vr = vc + base + (long long)dd * size;
    float v = pv == 0 ? dot_vecdot(vr, s, n_kv, l) : dot_tinyblas(vr, s, n_kv, l);
    if (d < hd && l == 0) o[d] = v;
  }
}

/* FFN activation in place: relu2 (bitnet-b1.58) or ggml's SiLU (bitnet, llama). */
extern "C" __global__ void ffn_act(float* g, int len, int relu2) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= len) return;
  float v = g[i];
  if (relu2) { float r = v > 0.0f ? v : 0.0f; g[i] = __fmul_rn(r, r); } else { g[i] = silu(v); }
}

/* x = x * o (activation times up). */
extern "C" __global__ void mul_inplace(float* x, const float* o, int len) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < len) x[i] = __fmul_rn(x[i], o[i]);
}

/* x = o + x (the residual, in the reference's operand order). */
extern "C" __global__ void add_inplace(float* x, const float* o, int len) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < len) x[i] = __fadd_rn(o[i], x[i]);
}

extern "C" __global__ void scale_inplace(float* y, float s, int len) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < len) y[i] = __fmul_rn(y[i], s);
}

extern "C" __global__ void add_bias(float* y, const float* b, int rows, int len) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < len) y[i] = __fadd_rn(y[i], b[i % rows]);
}

/* x rounded to f16 and back (f16-exact floats for vec_dot and the H3 paths). */
extern "C" __global__ void round_f16(const float* x, float* out, int len) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < len) out[i] = h2f(f2h(x[i]));
}
"#;
