//! The CUDA backend proper (feature `cuda`): context, NVRTC-compiled module, launchers and host wrappers.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DeviceRepr, DriverError, LaunchConfig, PushKernelArg,
    ValidAsZeroBits,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileError, CompileOptions, Ptx};
use half::slice::HalfFloatSliceExt;

use super::source::{NVRTC_OPTIONS, SRC};
use super::{arg_i32, check, AttnShape, CudaError, HostKv, Quantized};
use super::{ADD_ID, ATTENTION_ID, F16_GEMV_ID, F16_TINYBLAS_ID, FFN_ACT_ID, I2S_GEMM_ID, I2S_GEMV_ID, MUL_ID};
use super::{QUANTIZE_ID, RMS_NORM_ID, ROPE_ID, ROPE_NORM_ID};
use crate::kernels::{scalar, Dispatcher, F16Matrix, F16Path, I2sEpilogue, I2sMatrix};

/// Whether `libcuda.so` can be opened.
pub fn driver_present() -> bool {
    // SAFETY: only tries `dlopen` on the driver's library names; nothing is called through it.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Whether `libnvrtc.so` can be opened.
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries `dlopen` on NVRTC's library names.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Compile [`SRC`] to PTX for `compute_XY` without a device (NVRTC only); returns the PTX text.
pub fn nvrtc_check(arch: (i32, i32)) -> Result<String, CudaError> {
    compile(arch).map(|p| p.to_src())
}

fn compile(arch: (i32, i32)) -> Result<Ptx, CudaError> {
    if !nvrtc_present() {
        return Err(CudaError::NoNvrtc("libnvrtc.so"));
    }
    let arch_s = format!("compute_{}{}", arch.0, arch.1);
    let mut options: Vec<String> = NVRTC_OPTIONS.iter().map(|s| s.to_string()).collect();
    options.push(format!("--gpu-architecture={arch_s}"));
    let opts = CompileOptions {
        options,
        ..Default::default()
    };
    let res = catch_unwind(AssertUnwindSafe(|| compile_ptx_with_opts(SRC, opts)));
    match res {
        Ok(Ok(ptx)) => Ok(ptx),
        Ok(Err(CompileError::CompileError { log, .. })) => Err(CudaError::Nvrtc {
            arch: arch_s,
            log: log.to_string_lossy().into_owned(),
        }),
        Ok(Err(e)) => Err(CudaError::Nvrtc {
            arch: arch_s,
            log: e.to_string(),
        }),
        Err(_) => Err(CudaError::Nvrtc {
            arch: arch_s,
            log: "NVRTC panicked (a missing symbol in libnvrtc?)".into(),
        }),
    }
}

/// Maps a driver error to [`CudaError::Driver`] naming the operation.
pub(crate) fn drv(op: &'static str) -> impl FnOnce(DriverError) -> CudaError {
    move |e| CudaError::Driver { op, msg: e.to_string() }
}

fn grid(op: &'static str, x: usize, y: usize, block: u32) -> Result<LaunchConfig, CudaError> {
    let gx = u32::try_from(x.max(1)).map_err(|_| CudaError::Shape {
        op,
        why: format!("grid x = {x} exceeds u32"),
    })?;
    let gy = u32::try_from(y.max(1)).map_err(|_| CudaError::Shape {
        op,
        why: format!("grid y = {y} exceeds u32"),
    })?;
    Ok(LaunchConfig {
        grid_dim: (gx, gy, 1),
        block_dim: (block, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// Int8 activations, per-row `act_scale` and `act_sum`, on the device.
pub(crate) type DevAct = (CudaSlice<i8>, CudaSlice<f32>, CudaSlice<i32>);

/// A linear layer's weight on the device, in the form a device kernel reads (built by
/// [`crate::quant::QuantMethod::upload`]).
pub enum DevWeight {
    /// I2_S codes in the x86-act128 layout and the per-tensor scale.
    I2s { codes: CudaSlice<u8>, scale: f32 },
    /// Dense f16 bits, row-major.
    F16(CudaSlice<u16>),
}

/// The compiled kernels (named as in [`super::source::KERNELS`]).
pub(super) struct Kernels {
    pub quantize: CudaFunction,
    pub i2s: CudaFunction,
    pub f16_gemv: CudaFunction,
    pub f16_tinyblas: CudaFunction,
    pub rms_norm: CudaFunction,
    pub rope: CudaFunction,
    pub kv_store: CudaFunction,
    pub attention: CudaFunction,
    pub ffn_act: CudaFunction,
    pub mul: CudaFunction,
    pub add: CudaFunction,
    pub scale: CudaFunction,
    pub bias: CudaFunction,
    pub round_f16: CudaFunction,
}

/// One CUDA device with the kernels loaded, and a log of the kernel IDs launched.
pub struct CudaBackend {
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    pub(super) k: Kernels,
    name: String,
    cc: (i32, i32),
    log: Mutex<BTreeMap<crate::kernels::KernelId, u64>>,
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBackend")
            .field("device", &self.name)
            .field("compute_capability", &self.cc)
            .finish()
    }
}

impl CudaBackend {
    /// Device 0.
    pub fn new() -> Result<CudaBackend, CudaError> {
        CudaBackend::new_on(0)
    }

    /// Open device `ordinal`, compile the kernels for its compute capability and load them.
    pub fn new_on(ordinal: usize) -> Result<CudaBackend, CudaError> {
        if !driver_present() {
            return Err(CudaError::NoDriver("libcuda.so"));
        }
        // cudarc panics on a symbol the installed driver lacks; report that as an error instead.
        catch_unwind(AssertUnwindSafe(|| CudaBackend::open(ordinal))).unwrap_or_else(|_| {
            Err(CudaError::Driver {
                op: "load driver symbols",
                msg: "a driver entry point is missing (driver too old?)".into(),
            })
        })
    }

    fn open(ordinal: usize) -> Result<CudaBackend, CudaError> {
        let count = match CudaContext::device_count() {
            Ok(c) => c.max(0) as usize,
            Err(DriverError(cudarc::driver::sys::CUresult::CUDA_ERROR_NO_DEVICE)) => 0,
            Err(e) => return Err(drv("cuInit/cuDeviceGetCount")(e)),
        };
        if ordinal >= count {
            return Err(CudaError::NoDevice { ordinal, count });
        }
        let ctx = CudaContext::new(ordinal).map_err(drv("create context"))?;
        let cc = ctx.compute_capability().map_err(drv("compute capability"))?;
        if cc < (6, 1) {
            return Err(CudaError::Unsupported(format!(
                "compute capability {}.{} has no dp4a (needs 6.1+)",
                cc.0, cc.1
            )));
        }
        let name = ctx.name().map_err(drv("device name"))?;
        let module = ctx.load_module(compile(cc)?).map_err(drv("load module"))?;
        let f = |name: &str| module.load_function(name).map_err(drv("load function"));
        let k = Kernels {
            quantize: f("i8s_quantize")?,
            i2s: f("i2s_gemv")?,
            f16_gemv: f("f16_gemv")?,
            f16_tinyblas: f("f16_tinyblas")?,
            rms_norm: f("rms_norm")?,
            rope: f("rope")?,
            kv_store: f("kv_store")?,
            attention: f("attention")?,
            ffn_act: f("ffn_act")?,
            mul: f("mul_inplace")?,
            add: f("add_inplace")?,
            scale: f("scale_inplace")?,
            bias: f("add_bias")?,
            round_f16: f("round_f16")?,
        };
        let stream = ctx.default_stream();
        Ok(CudaBackend {
            ctx,
            stream,
            k,
            name,
            cc,
            log: Mutex::new(BTreeMap::new()),
        })
    }

    /// The device's name, e.g. `NVIDIA H100 80GB HBM3`.
    pub fn device_name(&self) -> String {
        self.name.clone()
    }

    /// `(major, minor)` compute capability.
    pub fn compute_capability(&self) -> (i32, i32) {
        self.cc
    }

    pub(crate) fn record(&self, id: crate::kernels::KernelId) {
        *self
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id)
            .or_default() += 1;
    }

    /// Kernel IDs launched so far, with call counts.
    pub fn log(&self) -> BTreeMap<crate::kernels::KernelId, u64> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Move this backend's log into `disp`'s (so receipts list the CUDA kernel IDs).
    pub fn record_into(&self, disp: &Dispatcher) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        for (id, n) in std::mem::take(&mut *log) {
            disp.record(id, n);
        }
    }

    pub(crate) fn upload<T: DeviceRepr + ValidAsZeroBits>(&self, v: &[T]) -> Result<CudaSlice<T>, CudaError> {
        if v.is_empty() {
            return self.stream.alloc_zeros(1).map_err(drv("alloc"));
        }
        self.stream.clone_htod(v).map_err(drv("copy to device"))
    }

    pub(crate) fn zeros<T: DeviceRepr + ValidAsZeroBits>(&self, len: usize) -> Result<CudaSlice<T>, CudaError> {
        self.stream.alloc_zeros(len.max(1)).map_err(drv("alloc"))
    }

    pub(crate) fn download<T: DeviceRepr + Default + Clone>(
        &self,
        d: &CudaSlice<T>,
        len: usize,
    ) -> Result<Vec<T>, CudaError> {
        let mut v = self.stream.clone_dtoh(d).map_err(drv("copy to host"))?;
        v.truncate(len);
        Ok(v)
    }

    // ---- device-level launchers (used by the session) ----

    /// `quantize_row_i8_s` of `n` rows of `k`: (int8, scales, sums) on the device.
    pub(crate) fn quantize_dev(&self, x: &CudaSlice<f32>, n: usize, k: usize) -> Result<DevAct, CudaError> {
        let (mut q, mut s, mut sums) = (self.zeros::<i8>(n * k)?, self.zeros::<f32>(n)?, self.zeros::<i32>(n)?);
        let ki = arg_i32("quantize", "k", k)?;
        let mut b = self.stream.launch_builder(&self.k.quantize);
        b.arg(x).arg(&ki).arg(&mut q).arg(&mut s).arg(&mut sums);
        // SAFETY: x holds n·k floats, q n·k bytes, s and sums n entries; the kernel indexes only those.
        unsafe { b.launch(grid("quantize", n, 1, 256)?) }.map_err(drv("launch i8s_quantize"))?;
        self.record(QUANTIZE_ID);
        Ok((q, s, sums))
    }

    /// I2_S × quantized activations: `(sums[r·n + t], y[t·rows + r])`.
    pub(crate) fn i2s_dev(
        &self,
        codes: &CudaSlice<u8>,
        rows: usize,
        k: usize,
        w_scale: f32,
        act: &DevAct,
        n: usize,
        epi: I2sEpilogue,
    ) -> Result<(CudaSlice<i32>, CudaSlice<f32>), CudaError> {
        check("i2s_gemv", k.is_multiple_of(scalar::I2S_BLOCK) && k > 0, || {
            format!("K = {k} is not a positive multiple of 128")
        })?;
        let (mut sums, mut y) = (self.zeros::<i32>(rows * n)?, self.zeros::<f32>(rows * n)?);
        let (ri, ki, ni) = (
            arg_i32("i2s_gemv", "rows", rows)?,
            arg_i32("i2s_gemv", "k", k)?,
            arg_i32("i2s_gemv", "n", n)?,
        );
        let epi_i: i32 = match epi {
            I2sEpilogue::Divide | I2sEpilogue::DivideExact => 0,
            I2sEpilogue::MultiplyRatio => 1,
        };
        let mut b = self.stream.launch_builder(&self.k.i2s);
        b.arg(codes)
            .arg(&ri)
            .arg(&ki)
            .arg(&act.0)
            .arg(&act.1)
            .arg(&act.2)
            .arg(&w_scale)
            .arg(&epi_i)
            .arg(&ni)
            .arg(&mut sums)
            .arg(&mut y);
        // SAFETY: codes holds rows·k/4 bytes (4-aligned rows since K % 128 == 0), act n rows of k; outputs rows·n.
        unsafe { b.launch(grid("i2s_gemv", rows.div_ceil(8), n, 256)?) }.map_err(drv("launch i2s_gemv"))?;
        self.record(if n == 1 { I2S_GEMV_ID } else { I2S_GEMM_ID });
        Ok((sums, y))
    }

    /// `x` rounded to f16 and back.
    pub(crate) fn round_dev(&self, x: &CudaSlice<f32>, len: usize) -> Result<CudaSlice<f32>, CudaError> {
        let mut out = self.zeros::<f32>(len)?;
        let li = arg_i32("round_f16", "len", len)?;
        let mut b = self.stream.launch_builder(&self.k.round_f16);
        b.arg(x).arg(&mut out).arg(&li);
        // SAFETY: x and out hold len floats.
        unsafe { b.launch(grid("round_f16", len.div_ceil(256), 1, 256)?) }.map_err(drv("launch round_f16"))?;
        Ok(out)
    }

    /// `y[t·rows + r] = W_r · x_t` for an f16 matrix along `path` (the CPU's `f16_matmul` paths).
    pub(crate) fn f16_dev(
        &self,
        w: &CudaSlice<u16>,
        rows: usize,
        k: usize,
        x: &CudaSlice<f32>,
        n: usize,
        path: F16Path,
    ) -> Result<CudaSlice<f32>, CudaError> {
        let tiny = path != F16Path::VecDot;
        check("f16 matmul", k > 0 && (!tiny || k.is_multiple_of(16)), || {
            format!("K = {k} (tinyBLAS needs a multiple of 16)")
        })?;
        let rounded;
        let xs = if path == F16Path::TinyBlas {
            x
        } else {
            rounded = self.round_dev(x, n * k)?;
            &rounded
        };
        let mut y = self.zeros::<f32>(rows * n)?;
        let (ri, ki, ni) = (
            arg_i32("f16 matmul", "rows", rows)?,
            arg_i32("f16 matmul", "k", k)?,
            arg_i32("f16 matmul", "n", n)?,
        );
        let f = if tiny { &self.k.f16_tinyblas } else { &self.k.f16_gemv };
        let mut b = self.stream.launch_builder(f);
        b.arg(w).arg(&ri).arg(&ki).arg(xs).arg(&ni).arg(&mut y);
        // SAFETY: w holds rows·k f16, xs n·k floats, y rows·n floats; rows past the end are clamped in the kernel.
        unsafe { b.launch(grid("f16 matmul", rows.div_ceil(16), n, 256)?) }.map_err(drv("launch f16 matmul"))?;
        self.record(if tiny { F16_TINYBLAS_ID } else { F16_GEMV_ID });
        Ok(y)
    }

    /// RMS norm of `n` rows of `k`, times `w`.
    pub(crate) fn rms_norm_dev(
        &self,
        x: &CudaSlice<f32>,
        w: &CudaSlice<f32>,
        n: usize,
        k: usize,
        eps: f32,
    ) -> Result<CudaSlice<f32>, CudaError> {
        let mut out = self.zeros::<f32>(n * k)?;
        let ki = arg_i32("rms_norm", "k", k)?;
        let mut b = self.stream.launch_builder(&self.k.rms_norm);
        b.arg(x).arg(w).arg(&ki).arg(&eps).arg(&mut out);
        // SAFETY: x and out hold n·k floats, w k floats.
        unsafe { b.launch(grid("rms_norm", n, 1, 256)?) }.map_err(drv("launch rms_norm"))?;
        self.record(RMS_NORM_ID);
        Ok(out)
    }

    /// RoPE in place on `n` tokens × `n_heads` heads of `hd`, token t at position `p0 + t`: NEOX pairs, or
    /// NORM pairs (arch llama) when not `neox`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn rope_dev(
        &self,
        x: &mut CudaSlice<f32>,
        n: usize,
        n_heads: usize,
        hd: usize,
        cos: &CudaSlice<f32>,
        sin: &CudaSlice<f32>,
        p0: usize,
        neox: bool,
    ) -> Result<(), CudaError> {
        let (hi, di, pi) = (
            arg_i32("rope", "heads", n_heads)?,
            arg_i32("rope", "head_dim", hd)?,
            arg_i32("rope", "p0", p0)?,
        );
        let mut b = self.stream.launch_builder(&self.k.rope);
        let mode = i32::from(neox);
        b.arg(x).arg(&hi).arg(&di).arg(cos).arg(sin).arg(&pi).arg(&mode);
        // SAFETY: x holds n·n_heads·hd floats; the tables cover positions up to p0 + n (checked by callers).
        unsafe { b.launch(grid("rope", (n_heads * hd / 2).div_ceil(128), n, 128)?) }.map_err(drv("launch rope"))?;
        self.record(if neox { ROPE_ID } else { ROPE_NORM_ID });
        Ok(())
    }

    /// Store `n` tokens' K and V (f32) into the f16 caches of `layer`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn kv_store_dev(
        &self,
        k: &CudaSlice<f32>,
        v: &CudaSlice<f32>,
        kc: &mut CudaSlice<u16>,
        vc: &mut CudaSlice<u16>,
        layer: usize,
        n: usize,
        kv: (usize, usize, usize),
        p0: usize,
    ) -> Result<(), CudaError> {
        let (n_head_kv, hd, size) = kv;
        let op = "kv_store";
        let (li, hi, di) = (
            arg_i32(op, "layer", layer)?,
            arg_i32(op, "n_head_kv", n_head_kv)?,
            arg_i32(op, "head_dim", hd)?,
        );
        let (si, pi) = (arg_i32(op, "size", size)?, arg_i32(op, "p0", p0)?);
        let mut b = self.stream.launch_builder(&self.k.kv_store);
        b.arg(k)
            .arg(v)
            .arg(kc)
            .arg(vc)
            .arg(&li)
            .arg(&hi)
            .arg(&di)
            .arg(&si)
            .arg(&pi);
        // SAFETY: k, v hold n·n_head_kv·hd floats; p0 + n <= size (checked by callers); caches hold every layer.
        unsafe { b.launch(grid("kv_store", (n_head_kv * hd).div_ceil(128), n, 128)?) }
            .map_err(drv("launch kv_store"))?;
        Ok(())
    }

    /// Attention of `a.n` queries over the f16 caches of `layer` (K `[head][cell][hd]`, V `[head][hd][cell]`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn attention_dev(
        &self,
        q: &CudaSlice<f32>,
        kc: &CudaSlice<u16>,
        vc: &CudaSlice<u16>,
        layer: usize,
        kv: (usize, usize, usize),
        a: &AttnShape,
    ) -> Result<CudaSlice<f32>, CudaError> {
        let (n_head_kv, hd, size) = kv;
        let op = "attention";
        check(op, hd > 0 && hd <= 256 && hd % 16 == 0, || {
            format!("head_dim {hd} must be a multiple of 16 up to 256")
        })?;
        check(
            op,
            a.n_kv.is_multiple_of(32) && a.n_kv > 0 && a.n_kv <= size && size % 32 == 0,
            || format!("n_kv {} / size {size} must be multiples of 32, n_kv <= size", a.n_kv),
        )?;
        check(op, n_head_kv > 0 && a.n_head.is_multiple_of(n_head_kv), || {
            format!("{} heads over {n_head_kv} KV heads", a.n_head)
        })?;
        check(op, a.p0 + a.n <= a.n_kv, || {
            format!("queries up to {} beyond n_kv {}", a.p0 + a.n, a.n_kv)
        })?;
        let mut scores = self.zeros::<f32>(a.n * a.n_head * (size + size / 16))?;
        let mut out = self.zeros::<f32>(a.n * a.n_head * hd)?;
        let (li, nh, nkv) = (
            arg_i32(op, "layer", layer)?,
            arg_i32(op, "n_head", a.n_head)?,
            arg_i32(op, "n_head_kv", n_head_kv)?,
        );
        let (di, si) = (arg_i32(op, "head_dim", hd)?, arg_i32(op, "size", size)?);
        let (nk, pi) = (arg_i32(op, "n_kv", a.n_kv)?, arg_i32(op, "p0", a.p0)?);
        let kq_scale = 1.0f32 / (hd as f32).sqrt();
        let kq_tb = i32::from(a.kq_tinyblas);
        let pv: i32 = match a.pv {
            F16Path::VecDot => 0,
            F16Path::TinyBlas => 1,
            F16Path::TinyBlasF16Act => 2,
        };
        let mut b = self.stream.launch_builder(&self.k.attention);
        b.arg(q)
            .arg(kc)
            .arg(vc)
            .arg(&mut scores)
            .arg(&mut out)
            .arg(&li)
            .arg(&nh)
            .arg(&nkv)
            .arg(&di)
            .arg(&si)
            .arg(&nk)
            .arg(&pi)
            .arg(&kq_scale)
            .arg(&kq_tb)
            .arg(&pv);
        // SAFETY: shapes checked above; q holds n·n_head·hd floats, scores and out are sized here.
        unsafe { b.launch(grid(op, a.n_head, a.n, 128)?) }.map_err(drv("launch attention"))?;
        self.record(ATTENTION_ID);
        Ok(out)
    }

    /// The FFN activation of `len` values in place (squared ReLU or SiLU).
    pub(crate) fn ffn_act_dev(&self, gate: &mut CudaSlice<f32>, len: usize, relu2: bool) -> Result<(), CudaError> {
        let (li, r) = (arg_i32("ffn_act", "len", len)?, i32::from(relu2));
        let mut b = self.stream.launch_builder(&self.k.ffn_act);
        b.arg(gate).arg(&li).arg(&r);
        // SAFETY: gate holds len floats.
        unsafe { b.launch(grid("ffn_act", len.div_ceil(256), 1, 256)?) }.map_err(drv("launch ffn_act"))?;
        self.record(FFN_ACT_ID);
        Ok(())
    }

    /// `x = x · o`.
    pub(crate) fn mul_dev(&self, x: &mut CudaSlice<f32>, o: &CudaSlice<f32>, len: usize) -> Result<(), CudaError> {
        self.binary_dev(&self.k.mul, ("mul", "launch mul_inplace"), MUL_ID, x, o, len)
    }

    /// `x = o + x`.
    pub(crate) fn add_dev(&self, x: &mut CudaSlice<f32>, o: &CudaSlice<f32>, len: usize) -> Result<(), CudaError> {
        self.binary_dev(&self.k.add, ("add", "launch add_inplace"), ADD_ID, x, o, len)
    }

    /// An element-wise kernel `f(x, o, len)` writing `x`, named `op` and recorded as `id`.
    fn binary_dev(
        &self,
        f: &CudaFunction,
        (op, launch): (&'static str, &'static str),
        id: crate::kernels::KernelId,
        x: &mut CudaSlice<f32>,
        o: &CudaSlice<f32>,
        len: usize,
    ) -> Result<(), CudaError> {
        let li = arg_i32(op, "len", len)?;
        let mut b = self.stream.launch_builder(f);
        b.arg(x).arg(o).arg(&li);
        // SAFETY: x and o hold len floats.
        unsafe { b.launch(grid(op, len.div_ceil(256), 1, 256)?) }.map_err(drv(launch))?;
        self.record(id);
        Ok(())
    }

    /// `y *= s`.
    pub(crate) fn scale_dev(&self, y: &mut CudaSlice<f32>, s: f32, len: usize) -> Result<(), CudaError> {
        let li = arg_i32("scale", "len", len)?;
        let mut b = self.stream.launch_builder(&self.k.scale);
        b.arg(y).arg(&s).arg(&li);
        // SAFETY: y holds len floats.
        unsafe { b.launch(grid("scale", len.div_ceil(256), 1, 256)?) }.map_err(drv("launch scale_inplace"))?;
        Ok(())
    }

    /// `y[i] += bias[i % rows]`.
    pub(crate) fn bias_dev(
        &self,
        y: &mut CudaSlice<f32>,
        bias: &CudaSlice<f32>,
        rows: usize,
        len: usize,
    ) -> Result<(), CudaError> {
        let (ri, li) = (arg_i32("bias", "rows", rows)?, arg_i32("bias", "len", len)?);
        let mut b = self.stream.launch_builder(&self.k.bias);
        b.arg(y).arg(bias).arg(&ri).arg(&li);
        // SAFETY: y holds len floats, bias rows floats.
        unsafe { b.launch(grid("bias", len.div_ceil(256), 1, 256)?) }.map_err(drv("launch add_bias"))?;
        Ok(())
    }

    /// An I2_S weight on the device.
    pub(crate) fn upload_i2s(&self, w: &I2sMatrix) -> Result<DevWeight, CudaError> {
        Ok(DevWeight::I2s {
            codes: self.upload(&w.codes[..w.rows * w.k / 4])?,
            scale: w.scale,
        })
    }

    /// A dense f16 weight on the device.
    pub(crate) fn upload_f16(&self, w: &F16Matrix) -> Result<DevWeight, CudaError> {
        Ok(DevWeight::F16(self.upload(w.data[..w.rows * w.k].reinterpret_cast())?))
    }

    // ---- host wrappers: upload, launch, download (for tests and single-kernel use) ----

    /// `quantize_row_i8_s` of every row of `k` values of `x`.
    pub fn quantize_i8_s(&self, x: &[f32], k: usize) -> Result<Quantized, CudaError> {
        check("quantize", k > 0 && x.len().is_multiple_of(k), || {
            format!("{} values are not rows of {k}", x.len())
        })?;
        let n = x.len() / k;
        let (q, s, sums) = self.quantize_dev(&self.upload(x)?, n, k)?;
        Ok(Quantized {
            q: self.download(&q, n * k)?,
            scales: self.download(&s, n)?,
            sums: self.download(&sums, n)?,
        })
    }

    /// Exact integer dots `out[r·n + t]` of every I2_S row × `n` int8 rows (as `Dispatcher::i2s_sums`).
    pub fn i2s_sums(&self, w: &I2sMatrix, q: &[i8], n: usize) -> Result<Vec<i32>, CudaError> {
        let (rows, k) = (w.rows, w.k);
        check("i2s_sums", q.len() >= n * k && w.codes.len() >= rows * k / 4, || {
            "buffers shorter than the shape".into()
        })?;
        let act = (self.upload(&q[..n * k])?, self.zeros::<f32>(n)?, self.zeros::<i32>(n)?);
        let (sums, _) = self.i2s_dev(
            &self.upload(&w.codes[..rows * k / 4])?,
            rows,
            k,
            w.scale,
            &act,
            n,
            I2sEpilogue::Divide,
        )?;
        self.download(&sums, rows * n)
    }

    /// `y[t·rows + r] = W_r · x_t`: quantize each token, exact dp4a sums, the CPU's f32 epilogue.
    pub fn i2s_gemv(&self, w: &I2sMatrix, x: &[f32], n: usize, epi: I2sEpilogue) -> Result<Vec<f32>, CudaError> {
        let (rows, k) = (w.rows, w.k);
        check(
            "i2s_gemv",
            k > 0 && x.len() >= n * k && w.codes.len() >= rows * k / 4,
            || "buffers shorter than the shape".into(),
        )?;
        let act = self.quantize_dev(&self.upload(&x[..n * k])?, n, k)?;
        let (_, y) = self.i2s_dev(&self.upload(&w.codes[..rows * k / 4])?, rows, k, w.scale, &act, n, epi)?;
        self.download(&y, rows * n)
    }

    /// `y[t·rows + r] = W_r · x_t` for an f16 matrix along `path`.
    pub fn f16_gemv(&self, w: &F16Matrix, x: &[f32], n: usize, path: F16Path) -> Result<Vec<f32>, CudaError> {
        let (rows, k) = (w.rows, w.k);
        check("f16_gemv", x.len() >= n * k && w.data.len() >= rows * k, || {
            "buffers shorter than the shape".into()
        })?;
        let wd = self.upload(w.data[..rows * k].reinterpret_cast())?;
        let y = self.f16_dev(&wd, rows, k, &self.upload(&x[..n * k])?, n, path)?;
        self.download(&y, rows * n)
    }

    /// RMS norm of every row of `w.len()` values of `x`, times `w`.
    pub fn rms_norm(&self, x: &[f32], w: &[f32], eps: f32) -> Result<Vec<f32>, CudaError> {
        let k = w.len();
        check("rms_norm", k > 0 && x.len().is_multiple_of(k), || {
            format!("{} values are not rows of {k}", x.len())
        })?;
        let y = self.rms_norm_dev(&self.upload(x)?, &self.upload(w)?, x.len() / k, k, eps)?;
        self.download(&y, x.len())
    }

    /// NEOX RoPE of `n` tokens × `n_heads` heads of `head_dim` (= n_rot) at positions `p0..`.
    pub fn rope_neox(
        &self,
        x: &[f32],
        n_heads: usize,
        head_dim: usize,
        p0: usize,
        base: f32,
        freq_scale: f32,
    ) -> Result<Vec<f32>, CudaError> {
        let row = n_heads * head_dim;
        check(
            "rope",
            row > 0 && head_dim.is_multiple_of(2) && x.len().is_multiple_of(row),
            || format!("{} values are not rows of {n_heads}×{head_dim}", x.len()),
        )?;
        let n = x.len() / row;
        let (cos, sin) = super::rope_tables(head_dim, base, freq_scale, p0 + n);
        let mut xd = self.upload(x)?;
        self.rope_dev(
            &mut xd,
            n,
            n_heads,
            head_dim,
            &self.upload(&cos)?,
            &self.upload(&sin)?,
            p0,
            true,
        )?;
        self.download(&xd, x.len())
    }

    /// Attention of `a.n` queries (`[n][n_head][head_dim]`) over one layer's host KV cache.
    pub fn attention(&self, q: &[f32], kv: &HostKv, a: &AttnShape) -> Result<Vec<f32>, CudaError> {
        let cells = kv.n_head_kv * kv.head_dim * kv.size;
        check(
            "attention",
            kv.k.len() >= cells && kv.v.len() >= cells && q.len() >= a.n * a.n_head * kv.head_dim,
            || "buffers shorter than the shape".into(),
        )?;
        let kc = self.upload(kv.k[..cells].reinterpret_cast())?;
        let vc = self.upload(kv.v[..cells].reinterpret_cast())?;
        let o = self.attention_dev(
            &self.upload(&q[..a.n * a.n_head * kv.head_dim])?,
            &kc,
            &vc,
            0,
            (kv.n_head_kv, kv.head_dim, kv.size),
            a,
        )?;
        self.download(&o, a.n * a.n_head * kv.head_dim)
    }

    /// Wait for every queued kernel (errors surface here).
    pub fn synchronize(&self) -> Result<(), CudaError> {
        self.stream.synchronize().map_err(drv("synchronize"))
    }

    /// Free and total device memory in bytes.
    pub fn memory(&self) -> Result<(usize, usize), CudaError> {
        self.ctx.mem_get_info().map_err(drv("memory info"))
    }
}
