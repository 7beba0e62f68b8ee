#!/usr/bin/env python3
"""NumPy reference forward for arch `bitnet` GGUF files with TQ2_0 / TQ1_0 / F16 weights that reproduces the
logits of UPSTREAM llama.cpp (ggml-org/llama.cpp@0c1e57098 as vendored in llama-cpp-python 0.3.36; CPU build,
GCC 12, -O3 -march=native on an x86 AVX-512 host, flash attention off, F16 KV cache) bit-exactly.

Development aid only (the product never calls it). Spec with source locations: docs/upstream-numerics.md.
Needs numpy only (tested with numpy 2.4.6). Standalone: the helpers shared with
/work/shared/tools/ref_forward.py (bitnet.cpp-2025 profile) are copied here, not imported.

Numerics reproduced (every rounding point; see docs/upstream-numerics.md for the source lines):
  * get_rows: token_embd f16 -> f32 (exact).
  * rms_norm: sum of f32 squares accumulated sequentially in f64; mean = f32(sum/n); scale = 1.0f/sqrtf(mean+eps);
    y = (x*scale)*w in f32 (two roundings).
  * TQ2_0 / TQ1_0 matmul (vec_dot_type Q8_K, never llamafile/tiled): each activation row is quantized per 256-block
    by quantize_row_q8_K_ref: max = the signed value of largest |x| (first one wins), iscale = f32(-127/max),
    q = min(127, nearest_int(f32(iscale*x))) (round-half-even), d = f32(1/iscale); 0 block -> d=0, q=0.
    ggml_vec_dot_tq{1,2}_0_q8_K, AVX2 path: per block 8 int32 lanes, lane m = sum over weights w with
    (w%32)//4 == m of t_w*q_w (t = code 0..2) minus sum of q over w in [32m, 32m+32) (the bsums); per lane
    sumf_m = fma(f32(lane), d_blk, sumf_m) where d_blk = f32(q8.d * f16(w.d)) (GCC contracts the mul+add);
    result = hsum_float_8(sumf) = ((s4+s0)+(s6+s2)) + ((s5+s1)+(s7+s3)).
    TQ1_0 and TQ2_0 give identical lanes (same weight-to-lane map), hence identical logits.
  * F16 matmul (F16 weights, KQ, KQV, LM head): the f32 operand is ALWAYS rounded to f16 first (RNE);
    ubatch with >= 2 rows -> llamafile tinyBLAS<16,__m512,F16,F16>: per output one 16-lane FMA chain over k in
    steps of 16 then _mm512_reduce_add_ps (halving tree); 1 row -> ggml_vec_dot_f16 (4x16 FMA lanes per 64,
    tree reduce, tail in f64).
  * RoPE NEOX (arch bitnet): theta_scale = powf(base, -2/n_dims); theta by repeated f32 multiplication; cosf/sinf;
    out0 = fma(x0, cos, -(x1*sin)), out1 = fma(x0, sin, x1*cos).
  * K/V cache f16 (RNE), V transposed. n_ctx rounded up to 256; n_kv = min(kv_size, max(256, pad256(used))):
    with n_ctx <= 256 always 256 cells, unused cells masked with -inf.
  * softmax: f32 scale multiply, mask add, max, ggml_v_expf (AVX-512 polynomial), per-16 _mm512_reduce_add_ps
    partial sums accumulated in f64, multiply by f32(1/sum).
  * FFN: ggml_swiglu_split: silu(gate) * up with silu(x) = x / (1 + v_expf(0 - x)), all f32.
  * LM head: token_embd (tied; arch bitnet has no output.weight).

Usage: upstream_forward.py MODEL.gguf --tokens 1,2,3 [--mode batch|seq] [--n-ctx 128] [--out logits.npy]
                           [--compare golden.npy] [--gen N --compare-gen ids]
       upstream_forward.py --manifest /work/shared/reference/upstream/manifest.json [--cases substr]
"""
import argparse, ctypes, ctypes.util, json, os, struct, sys
import numpy as np

F32 = np.float32
F64 = np.float64
F16 = np.float16

# Variant switches (for investigation; defaults are the verified upstream numerics)
OPTS = {"tq_fma": False,      # TQ epilogue: fma(lane, d, sumf) (GCC -ffp-contract=fast) vs mul then add
        "q8k_fma": False}     # Q8_K: nearest_int(fma(iscale, x, 1.5*2^23)) vs two roundings

# ----------------------------------------------------------------------------- GGUF reader (F32, F16, TQ1_0, TQ2_0)
GGUF_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
QK_K = 256


def tq2_0_decode(raw, rows, cols):
    """block_tq2_0 {uint8 qs[64]; f16 d}: returns codes t in {0,1,2} [rows, cols] (int8) and d [rows, nb] f32."""
    nb = cols // QK_K
    b = raw.reshape(rows, nb, 66)
    qs = b[..., :64]
    d = b[..., 64:66].copy().view(F16).reshape(rows, nb).astype(F32)
    t = np.zeros((rows, nb, QK_K), np.int8)
    for j in range(2):            # 32-byte halves -> 128 weights
        for l in range(4):        # bit pair l -> weights j*128 + l*32 + m
            t[:, :, j * 128 + l * 32: j * 128 + l * 32 + 32] = (qs[:, :, j * 32: j * 32 + 32] >> (2 * l)) & 3
    return t.reshape(rows, cols), d


def tq1_0_decode(raw, rows, cols):
    """block_tq1_0 {uint8 qs[48]; uint8 qh[4]; f16 d}: codes t in {0,1,2} and d, as dequantize_row_tq1_0."""
    nb = cols // QK_K
    b = raw.reshape(rows, nb, 54).astype(np.uint16)
    qs = b[..., :48]; qh = b[..., 48:52]
    d = raw.reshape(rows, nb, 54)[..., 52:54].copy().view(F16).reshape(rows, nb).astype(F32)
    pow3 = [1, 3, 9, 27, 81, 243]
    trit = lambda byte, n: (((byte * pow3[n]) & 0xFF) * 3) >> 8
    t = np.zeros((rows, nb, QK_K), np.int8)
    for n in range(5):
        t[:, :, n * 32: n * 32 + 32] = trit(qs[..., 0:32], n)            # weights m + 32n
    for n in range(5):
        t[:, :, 160 + n * 16: 160 + n * 16 + 16] = trit(qs[..., 32:48], n)  # weights 160 + m + 16n
    for n in range(4):
        t[:, :, 240 + n * 4: 240 + n * 4 + 4] = trit(qh, n)               # weights 240 + j + 4n
    return t.reshape(rows, cols), d


def read_gguf(path):
    data = np.memmap(path, dtype=np.uint8, mode="r")
    buf = memoryview(data)
    off = 0

    def rd(fmt):
        nonlocal off
        v = struct.unpack_from(fmt, buf, off)[0]
        off += struct.calcsize(fmt)
        return v

    def rstr():
        nonlocal off
        n = rd("<Q")
        s = bytes(buf[off:off + n]).decode("utf-8", errors="replace")
        off += n
        return s

    def rval(t):
        if t in GGUF_SCALAR:
            return rd(GGUF_SCALAR[t])
        if t == 8:
            return rstr()
        if t == 9:
            et = rd("<I"); n = rd("<Q")
            return [rval(et) for _ in range(n)]
        raise ValueError(f"bad kv type {t}")

    assert bytes(buf[0:4]) == b"GGUF"; off = 4
    rd("<I"); nt = rd("<Q"); nkv = rd("<Q")
    kv = {}
    for _ in range(nkv):
        k = rstr(); t = rd("<I"); kv[k] = rval(t)
    infos = []
    for _ in range(nt):
        name = rstr(); nd = rd("<I"); ne = [rd("<Q") for _ in range(nd)]; typ = rd("<I"); o = rd("<Q")
        infos.append((name, ne, typ, o))
    align = kv.get("general.alignment", 32)
    base = (off + align - 1) // align * align
    tensors = {}
    for name, ne, typ, o in infos:
        n = int(np.prod(ne))
        start = base + o
        if typ == 0:
            arr = np.frombuffer(data, dtype=F32, count=n, offset=start).reshape(ne[::-1])
        elif typ == 1:
            arr = np.frombuffer(data, dtype=F16, count=n, offset=start).reshape(ne[::-1])
        elif typ in (34, 35):
            rows, cols = int(np.prod(ne[1:])), ne[0]
            bsz = 54 if typ == 34 else 66
            raw = np.frombuffer(data, dtype=np.uint8, count=rows * cols // QK_K * bsz, offset=start)
            t, d = (tq1_0_decode if typ == 34 else tq2_0_decode)(np.asarray(raw), rows, cols)
            arr = ("tq", t, d)
        else:
            raise ValueError(f"{name}: unsupported ggml type {typ}")
        tensors[name] = arr
    return kv, tensors


# ----------------------------------------------------------------------------- float helpers
def fma32(a, b, c):
    """Correctly rounded f32 fma(a, b, c) for f32 inputs: a*b is exact in f64; the f64 sum is corrected for the
    double-rounding case with a TwoSum error term."""
    a = np.asarray(a, F32).astype(F64); b = np.asarray(b, F32).astype(F64); c = np.asarray(c, F32).astype(F64)
    with np.errstate(all="ignore"):
        p = a * b
        s = p + c
        bb = s - p
        e = (p - (s - bb)) + (c - bb)            # exact: p + c = s + e
        f = s.astype(F32)
        # double rounding can only bite when s is exactly halfway between two f32 values and e != 0
        f64 = f.astype(F64)
        nxt = np.where(s > f64, np.nextafter(f, F32(np.inf)), np.nextafter(f, F32(-np.inf))).astype(F64)
        half = (s - f64) == (nxt - f64) / 2
        fix = half & (e != 0) & np.isfinite(s)
        if np.any(fix):
            # true value is s + e: round toward the side of e
            up = np.nextafter(f, F32(np.inf)); dn = np.nextafter(f, F32(-np.inf))
            lo = np.where(s > f64, f, dn); hi = np.where(s > f64, up, f)      # s lies between lo and hi
            f = np.where(fix, np.where(e > 0, hi, lo), f)
    return f.astype(F32)


def tree16(v):
    """_mm512_reduce_add_ps on the last axis (16 lanes): halving tree i+8, i+4, i+2, i+1 in f32."""
    v = v.astype(F32)
    v = (v[..., :8] + v[..., 8:]).astype(F32)
    v = (v[..., :4] + v[..., 4:]).astype(F32)
    v = (v[..., :2] + v[..., 2:]).astype(F32)
    return (v[..., 0] + v[..., 1]).astype(F32)


def hsum_float_8(v):
    """arch/x86/quants.c hsum_float_8: (hi128 + lo128), then movehl add, then movehdup add_ss."""
    v = v.astype(F32)
    t = (v[..., 4:8] + v[..., 0:4]).astype(F32)
    u0 = (t[..., 0] + t[..., 2]).astype(F32)
    u1 = (t[..., 1] + t[..., 3]).astype(F32)
    return (u0 + u1).astype(F32)


_libm = ctypes.CDLL(ctypes.util.find_library("m"))
for _fn in ("cosf", "sinf", "powf"):
    getattr(_libm, _fn).restype = ctypes.c_float
_libm.cosf.argtypes = _libm.sinf.argtypes = [ctypes.c_float]
_libm.powf.argtypes = [ctypes.c_float, ctypes.c_float]

C = {k: F32(float.fromhex(v)) for k, v in dict(
    r="0x1.8p23", l2e="0x1.715476p+0", ln2hi="0x1.62e4p-1", ln2lo="0x1.7f7d1cp-20", c5="0x1.0e4020p-7",
    c4="0x1.573e2ep-5", c3="0x1.555e66p-3", c2="0x1.fffdb6p-2", c1="0x1.ffffecp-1").items()}


def v_expf(x):
    """ggml_v_expf (AVX-512 variant, vec.h) in f32."""
    x = np.asarray(x, F32)
    with np.errstate(all="ignore"):
        z = fma32(x, C["l2e"], C["r"])
        n = (z - C["r"]).astype(F32)
        b = fma32(-n, C["ln2lo"], fma32(-n, C["ln2hi"], x))
        u = (b * b).astype(F32)
        j = fma32(fma32(fma32(C["c5"], b, C["c4"]), u, fma32(C["c3"], b, C["c2"])), u, fma32(C["c1"], b, F32(1.0)))
        res = (j.astype(F64) * np.exp2(n.astype(F64))).astype(F32)  # scalef: exact power-of-two scaling
        d = np.abs(n) > 192
        res = np.where(d, np.where(n <= 0, F32(0), F32(np.inf)), res)
    return res.astype(F32)


def vec_dot_f16(x, y):
    """ggml_vec_dot_f16 (AVX-512 without AVX512-FP16) along the last axis; x, y f16 (broadcastable). -> f32."""
    x = np.asarray(x, F16); y = np.asarray(y, F16)
    n = x.shape[-1]
    npart = n & ~63
    shape = np.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    sumf = np.zeros(shape, F64)
    if npart:
        p = (x[..., :npart].astype(F32) * y[..., :npart].astype(F32))  # exact in f32 (11x11 bits)
        p = np.broadcast_to(p, shape + (npart,)).reshape(shape + (npart // 64, 4, 16))
        acc = p[..., 0, :, :].copy()
        for c in range(1, npart // 64):
            acc = (acc + p[..., c, :, :]).astype(F32)       # fma(x, y, acc) with exact x*y == one rounding
        a0 = (acc[..., 0, :] + acc[..., 2, :]).astype(F32)
        a1 = (acc[..., 1, :] + acc[..., 3, :]).astype(F32)
        sumf += tree16((a0 + a1).astype(F32)).astype(F64)
    for i in range(npart, n):
        sumf += (x[..., i].astype(F32) * y[..., i].astype(F32)).astype(F64)
    return sumf.astype(F32)


def tinyblas_f16(a16, b16):
    """llamafile tinyBLAS<16, __m512, __m512, ggml_fp16_t, ggml_fp16_t, float>:
    C[..., j, i] = reduce_add(fma-chain_l(A[i, l*16:(l+1)*16] * B[j, l*16:(l+1)*16])).
    a16: [..., M, K] f16, b16: [..., N, K] f16 -> [..., N, M] f32 (K % 16 == 0). Products of f16 are exact in f32,
    so each fma is one f32 rounding of (exact product + acc)."""
    K = a16.shape[-1]
    assert K % 16 == 0
    A = np.asarray(a16, F16).astype(F64)
    B = np.asarray(b16, F16).astype(F64)
    acc = None
    for c in range(K // 16):
        sl = slice(16 * c, 16 * c + 16)
        prod = A[..., None, :, sl] * B[..., :, None, sl]          # [..., N, M, 16] exact (22 bits)
        acc = prod.astype(F32) if acc is None else (prod + acc.astype(F64)).astype(F32)  # exact sum in f64
    return tree16(acc)


def f16_matmul(w16, x32):
    """mul_mat(F16 weight [M, K], f32 activations [n, K]) -> [n, M]: activations rounded to f16 first; n >= 2
    -> tinyBLAS, n == 1 -> ggml_vec_dot_f16."""
    x16 = np.asarray(x32, F32).astype(F16)
    if x16.shape[-2] >= 2:
        return tinyblas_f16(w16, x16)
    return vec_dot_f16(x16[..., :, None, :], np.asarray(w16, F16)[..., None, :, :])


def rms_norm(x, w, eps):
    x = np.asarray(x, F32)
    ssum = np.cumsum((x * x).astype(F32).astype(F64), axis=-1)[..., -1]
    mean = (ssum / x.shape[-1]).astype(F32)
    scale = (F32(1.0) / np.sqrt((mean + F32(eps)).astype(F32))).astype(F32)
    return ((x * scale[..., None]).astype(F32) * w).astype(F32)


# ----------------------------------------------------------------------------- Q8_K + TQ dot
def quantize_q8_K(x):
    """quantize_row_q8_K_ref (ggml-quants.c). x [n, K] f32 -> q int [n, nb, 256], d f32 [n, nb]."""
    x = np.asarray(x, F32)
    n, K = x.shape
    nb = K // QK_K
    xb = x.reshape(n, nb, QK_K)
    idx = np.argmax(np.abs(xb), axis=-1)                                  # first max of |x|
    mx = np.take_along_axis(xb, idx[..., None], -1)[..., 0]
    zero = mx == 0
    with np.errstate(all="ignore"):
        iscale = (F32(-127.0) / mx).astype(F32)
        if OPTS["q8k_fma"]:
            v = fma32(iscale[..., None], xb, F32(12582912.0))
        else:
            v = ((iscale[..., None] * xb).astype(F32) + F32(12582912.0)).astype(F32)
        q = (v.view(np.int32) & 0x007FFFFF) - 0x00400000
        q = np.minimum(q, 127)
        d = (F32(1.0) / iscale).astype(F32)
    q = np.where(zero[..., None], 0, q).astype(np.int64)
    d = np.where(zero, F32(0), d).astype(F32)
    return q, d


def tq_matmul(x, w):
    """x [n, K] f32, w = ('tq', codes [N, K] in {0,1,2}, d [N, nb]) -> [n, N], as ggml_vec_dot_tq2_0_q8_K (AVX2)."""
    _, t, wd = w
    q, yd = quantize_q8_K(x)                                              # [n, nb, 256], [n, nb]
    n, nb, _ = q.shape
    N = t.shape[0]
    # lane m (0..7) of block b: sum_{w: (w%32)//4 == m} t*q  -  sum_{w in [32m, 32m+32)} q
    qq = q.reshape(n, nb, 8, 8, 4).astype(np.int32)                        # [t, b, chunk32, m, e]
    tt = t.reshape(N, nb, 8, 8, 4).astype(np.int32)
    cross = np.einsum("tbcme,rbcme->trbm", qq, tt, optimize=True)          # [n, N, nb, 8]
    bs = q.reshape(n, nb, 8, 32).sum(-1)                                   # [n, nb, 8] (bsums pairs)
    lane = (cross - bs[:, None, :, :]).astype(F32)                         # exact (|lane| < 2^15)
    d = (yd[:, None, :] * wd[None, :, :]).astype(F32)                      # y.d * fp16(x.d), [n, N, nb]
    sumf = np.zeros((n, N, 8), F32)
    for b in range(nb):
        if OPTS["tq_fma"]:
            sumf = fma32(lane[:, :, b, :], d[:, :, b, None], sumf)
        else:
            sumf = ((lane[:, :, b, :] * d[:, :, b, None]).astype(F32) + sumf).astype(F32)
    return hsum_float_8(sumf)


def softmax_rows(kq, scale, mask):
    """ggml_compute_forward_soft_max_f32 on last axis (len multiple of 16); mask: bool (True = -inf)."""
    wp = (kq * F32(scale)).astype(F32)
    wp = np.where(mask, F32(-np.inf), wp)
    mx = wp.max(-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        e = v_expf((wp - mx).astype(F32))
    n = wp.shape[-1]
    assert n % 16 == 0
    sums = tree16(e.reshape(e.shape[:-1] + (n // 16, 16))).astype(F64)   # per 16-chunk f32 tree
    total = np.cumsum(sums, axis=-1)[..., -1]
    inv = (1.0 / total).astype(F32)
    return (e * inv[..., None]).astype(F32)


# ----------------------------------------------------------------------------- model
class Model:
    def __init__(self, path, n_ctx):
        self.kv, self.t = read_gguf(path)
        self.arch = self.kv["general.architecture"]
        assert self.arch == "bitnet", f"upstream profile supports arch bitnet only, got {self.arch}"
        g = lambda k, d=None: self.kv.get(f"{self.arch}.{k}", d)
        self.H = g("embedding_length"); self.L = g("block_count"); self.F = g("feed_forward_length")
        self.nh = g("attention.head_count"); self.nkv = g("attention.head_count_kv", self.nh)
        self.eps = F32(g("attention.layer_norm_rms_epsilon")); self.base = F32(g("rope.freq_base", 10000.0))
        self.hd = self.H // self.nh
        self.n_rot = g("rope.dimension_count", self.hd)
        self.emb = self.t["token_embd.weight"]                           # f16 [V, H]
        self.V = self.emb.shape[0]
        self.n_ctx = (n_ctx + 255) // 256 * 256                          # llama_context: GGML_PAD(n_ctx, 256)
        self.kc = np.zeros((self.L, self.nkv, self.n_ctx, self.hd), F16)
        self.vc = np.zeros((self.L, self.nkv, self.n_ctx, self.hd), F16)
        ts = F32(_libm.powf(float(self.base), float(F32(-2.0) / F32(self.n_rot))))
        self.cos = np.zeros((self.n_ctx, self.hd // 2), F32); self.sin = np.zeros_like(self.cos)
        for p in range(self.n_ctx):
            th = F32(p)
            for i in range(self.hd // 2):
                self.cos[p, i] = _libm.cosf(float(th)); self.sin[p, i] = _libm.sinf(float(th))
                th = F32(th * ts)

    def mm(self, x, il, name):
        w = self.t[f"blk.{il}.{name}.weight"]
        y = tq_matmul(x, w) if isinstance(w, tuple) else f16_matmul(w, x)
        s = self.t.get(f"blk.{il}.{name}.scale")                          # build_lora_mm: ggml_mul(res, w_s)
        if s is not None:
            y = (y * F32(np.asarray(s).reshape(-1)[0])).astype(F32)
        return y

    def rope(self, x, pos):
        # x [n, heads, hd]; NEOX: pairs (i, i + n_rot/2)
        h = self.n_rot // 2
        c = self.cos[pos][:, None, :h]; s = self.sin[pos][:, None, :h]
        x0 = x[..., :h]; x1 = x[..., h:self.n_rot]
        out = x.copy()
        out[..., :h] = fma32(x0, c, -(x1 * s).astype(F32))
        out[..., h:self.n_rot] = fma32(x0, s, (x1 * c).astype(F32))
        return out

    def ubatch(self, toks, p0):
        n = len(toks)
        pos = np.arange(p0, p0 + n)
        x = self.emb[np.asarray(toks)].astype(F32)
        n_kv = min(self.n_ctx, max(256, ((p0 + n) + 255) // 256 * 256))   # llama_kv_cache::get_n_kv
        grp = self.nh // self.nkv
        mask = np.arange(n_kv)[None, :] > pos[:, None]                      # [n, n_kv]
        kq_scale = F32(1.0) / np.sqrt(F32(self.hd))
        for il in range(self.L):
            h = rms_norm(x, self.t[f"blk.{il}.attn_norm.weight"], self.eps)
            q = self.mm(h, il, "attn_q").reshape(n, self.nh, self.hd)
            k = self.mm(h, il, "attn_k").reshape(n, self.nkv, self.hd)
            v = self.mm(h, il, "attn_v").reshape(n, self.nkv, self.hd)
            q = self.rope(q, pos); k = self.rope(k, pos)
            self.kc[il][:, pos] = k.transpose(1, 0, 2).astype(F16)
            self.vc[il][:, pos] = v.transpose(1, 0, 2).astype(F16)
            Kh = np.repeat(self.kc[il][:, :n_kv], grp, axis=0)                 # [nh, n_kv, hd]
            Vh = np.repeat(self.vc[il][:, :n_kv].transpose(0, 2, 1), grp, axis=0)  # [nh, hd, n_kv]
            kq = f16_matmul(Kh, q.transpose(1, 0, 2))                          # [nh, n, n_kv]
            p = softmax_rows(kq, kq_scale, mask[None])
            o = f16_matmul(Vh, p)                                              # [nh, n, hd]
            o = o.transpose(1, 0, 2).reshape(n, self.H).astype(F32)
            o = rms_norm(o, self.t[f"blk.{il}.attn_sub_norm.weight"], self.eps)
            o = self.mm(o, il, "attn_output")
            x = (o + x).astype(F32)
            h = rms_norm(x, self.t[f"blk.{il}.ffn_norm.weight"], self.eps)
            up = self.mm(h, il, "ffn_up")
            gate = self.mm(h, il, "ffn_gate")
            act = (gate / (F32(1) + v_expf((F32(0) - gate).astype(F32))).astype(F32)).astype(F32)
            f = (act * up).astype(F32)
            f = rms_norm(f, self.t[f"blk.{il}.ffn_sub_norm.weight"], self.eps)
            f = self.mm(f, il, "ffn_down")
            x = (f + x).astype(F32)
        x = rms_norm(x, self.t["output_norm.weight"], self.eps)
        return f16_matmul(self.emb, x)                                         # [n, V]

    def reset(self):
        self.kc[:] = 0; self.vc[:] = 0

    def forward(self, toks, mode):
        self.reset()
        if mode == "batch":
            return self.ubatch(toks, 0)
        return np.concatenate([self.ubatch([t], i) for i, t in enumerate(toks)], axis=0)

    def greedy(self, last_logits, p0, n_gen):
        """Greedy continuation after a prompt of length p0 (one token per decode, first max wins)."""
        out, nxt, pos = [], int(np.argmax(last_logits)), p0
        for g in range(n_gen):
            out.append(nxt)
            if g == n_gen - 1:
                break
            nxt = int(np.argmax(self.ubatch([nxt], pos)[0])); pos += 1
        return out


def compare(ref, gold):
    d = np.abs(ref.astype(F64) - gold.astype(F64))
    r64, g64 = ref.astype(F64), gold.astype(F64)
    cos = (r64 * g64).sum(-1) / (np.linalg.norm(r64, axis=-1) * np.linalg.norm(g64, axis=-1))
    return dict(max_abs=float(d.max()), min_cos=float(cos.min()), n_exact_rows=int((d.max(-1) == 0).sum()),
                n_rows=int(ref.shape[0]), argmax_agree=int((ref.argmax(-1) == gold.argmax(-1)).sum()))


def run_manifest(path, only, gen):
    root = os.path.dirname(os.path.abspath(path))
    man = json.load(open(path))
    models = {}
    n_ok = 0; n_all = 0
    for c in man["cases"]:
        if only and not any(o in c["id"] for o in only):
            continue
        key = (c["model"], c["n_ctx"])
        if key not in models:
            models[key] = Model(os.path.join(root, c["model"]), c["n_ctx"])
        m = models[key]
        logits = m.forward(c["prompt_ids"], c["mode"])
        gold = np.load(os.path.join(root, c["logits"]))
        r = compare(logits, gold)
        ok = r["max_abs"] == 0
        line = f'{c["id"]:45s} max|d|={r["max_abs"]:.3g} min_cos={r["min_cos"]:.9f} exact_rows={r["n_exact_rows"]}/{r["n_rows"]}'
        if gen:
            ids = m.greedy(logits[-1], len(c["prompt_ids"]), c["greedy_n"])
            gok = ids == c["greedy_ids"]
            ok = ok and gok
            line += f" greedy={'ok' if gok else 'DIFF'}"
        n_ok += ok; n_all += 1
        print(("EXACT " if ok else "FAIL  ") + line, flush=True)
    print(f"{n_ok}/{n_all} cases exact")
    return n_ok == n_all


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?"); ap.add_argument("--tokens")
    ap.add_argument("--mode", default="batch", choices=["batch", "seq"]); ap.add_argument("--n-ctx", type=int, default=128)
    ap.add_argument("--out"); ap.add_argument("--compare")
    ap.add_argument("--gen", type=int, default=0, help="greedy-generate N tokens after the prompt")
    ap.add_argument("--compare-gen", help="comma-separated golden greedy ids")
    ap.add_argument("--manifest", help="run every case of a manifest.json (upstream layout)")
    ap.add_argument("--cases", default="", help="comma-separated substrings selecting manifest cases")
    ap.add_argument("--no-greedy", action="store_true", help="manifest mode: skip the greedy check")
    ap.add_argument("--opt", default="", help="investigation switches, e.g. tq_fma=0,q8k_fma=1")
    a = ap.parse_args()
    for kv in filter(None, a.opt.split(",")):
        k, v = kv.split("="); assert k in OPTS, k; OPTS[k] = bool(int(v))
    if a.manifest:
        sys.exit(0 if run_manifest(a.manifest, [s for s in a.cases.split(",") if s], not a.no_greedy) else 1)
    if not a.model or not a.tokens:
        ap.error("MODEL and --tokens are required (or --manifest)")
    toks = [int(t) for t in a.tokens.split(",")]
    m = Model(a.model, a.n_ctx)
    logits = m.forward(toks, a.mode)
    if a.out:
        np.save(a.out, logits.astype(F32))
    if a.compare:
        gold = np.load(a.compare)
        print(compare(logits, gold))
    else:
        print(logits.shape, logits[-1, :8])
    if a.gen:
        ids = m.greedy(logits[-1], len(toks), a.gen)
        print("greedy:", ",".join(map(str, ids)))
        if a.compare_gen:
            gold = [int(t) for t in a.compare_gen.split(",")]
            print("greedy_match:", ids == gold)


if __name__ == "__main__":
    main()
