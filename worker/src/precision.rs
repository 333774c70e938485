//! Mixed precision and memory format: the `precision` and `channels_last` fields of `train`,
//! `embed` and the saliency explainers.
//!
//! bf16 and fp16 run under libtorch's autocast, as `torch.autocast(device, dtype)` does: weights
//! and optimizer state stay fp32, and libtorch's op lists decide which kernels run in the lower
//! precision. tch 0.24 wraps autocast for CUDA only and always in fp16 (`tch::autocast` uses the
//! deprecated `at::autocast::set_enabled`), so the per-device functions of `at::autocast` that
//! `torch.autocast` itself calls are looked up in the loaded libtorch by their exported names.
//! Missing ones (a libtorch older than 2.3) make a precision other than fp32 an error naming
//! them, never a silent fp32 run.
//!
//! fp16 training scales the loss ([`GradScaler`]) with libtorch's own kernels
//! (`_amp_foreach_non_finite_check_and_unscale_`, `_amp_update_scale_`), with PyTorch's defaults.

use crate::models::Network;
use crate::{Context, Result, StageError};
use lthlang::check::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use tch::{Device, Kind, Tensor};

/// The arithmetic of a stage's network passes, once `auto` is resolved for a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    Fp32,
    Bf16,
    Fp16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        }
    }

    /// `c10::ScalarType`'s number for the autocast dtype.
    fn scalar_type(self) -> i8 {
        match self {
            Precision::Fp16 => 5,
            Precision::Fp32 => 6,
            Precision::Bf16 => 15,
        }
    }

    /// The precision a field's word asks for on `device`. `auto` is bf16 on a GPU that supports
    /// it and fp32 elsewhere; bf16 asked for on a GPU without it is an error, not a slow emulation.
    pub fn resolve(word: &str, device: Device) -> Result<Precision> {
        match (word, device) {
            ("fp32", _) | ("auto", Device::Cpu) => Ok(Precision::Fp32),
            ("fp16", _) => Ok(Precision::Fp16),
            ("bf16", Device::Cuda(index)) => match cuda::capability(index) {
                Ok((major, minor)) if major < 8 => Err(StageError::new(format!(
                    "`precision = bf16` needs a GPU of compute capability 8.0 or newer; cuda:{index} has {major}.{minor}: write `precision = fp16` (with loss scaling) or `fp32`"
                ))),
                _ => Ok(Precision::Bf16),
            },
            ("bf16", _) => Ok(Precision::Bf16),
            ("auto", Device::Cuda(index)) => match cuda::capability(index) {
                Ok((major, _)) if major >= 8 => Ok(Precision::Bf16),
                _ => Ok(Precision::Fp32),
            },
            (other, _) => Err(StageError::new(format!("unknown precision `{other}`: expected `auto`, `fp32`, `bf16` or `fp16`"))),
        }
    }
}

/// How a stage runs its network: the precision and the memory format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compute {
    pub precision: Precision,
    pub channels_last: bool,
}

impl Compute {
    /// Plain fp32 in the default (NCHW) memory format.
    pub const FP32: Compute = Compute { precision: Precision::Fp32, channels_last: false };

    /// The settings a stage's fields give on `device`. A stage kind without the fields (or a
    /// request from a front end that predates them) runs in fp32, NCHW.
    pub fn from_fields(fields: &BTreeMap<String, Value>, device: Device) -> Result<Compute> {
        let precision = match fields.get("precision") {
            Some(Value::Word(w)) => Precision::resolve(w, device)?,
            Some(other) => return Err(StageError::new(format!("`precision`: expected a word, got {other:?}"))),
            None => Precision::Fp32,
        };
        let channels_last = matches!(fields.get("channels_last"), Some(Value::Bool(true)));
        if precision != Precision::Fp32 {
            // Fails here, before any work, when this libtorch lacks the functions.
            api()?;
        }
        Ok(Compute { precision, channels_last })
    }

    /// The settings of the node `ctx` runs, from its fields, as they run on its device.
    pub fn of_stage(ctx: &Context) -> Result<Compute> {
        Ok(Compute::from_fields(&ctx.request.fields, ctx.device)?.on_device_of(ctx))
    }

    /// `self` as it runs on the stage's device. Channels-last applies on CUDA only: on the CPU the
    /// request is dropped, with a warning, and the network runs in the default format.
    ///
    /// Why: on this project's CPU (libtorch 2.11, oneDNN) channels-last training measured no
    /// faster than NCHW (ResNet-18 and ResNet-50 at 112 px, within the run-to-run noise), and in
    /// the generated-program soak three narrow networks (`resnet_tiny` at width 4) stalled inside
    /// oneDNN's channels-last kernels, spinning at an OpenMP barrier until the silence limit
    /// killed them. A format that buys nothing and can hang is not worth applying there; the
    /// cache keys results by device class, so CPU and GPU results of the same field never mix.
    pub fn on_device_of(self, ctx: &Context) -> Compute {
        if self.channels_last && !ctx.device.is_cuda() {
            ctx.warn(CHANNELS_LAST_ON_CPU);
            return Compute { channels_last: false, ..self };
        }
        self
    }

    /// Puts the network's convolution weights in the memory format (a no-op for NCHW). Done in
    /// place on the variables, so the optimizer, masks and checkpoints see the same tensors;
    /// checkpoints are written contiguous whatever the format.
    pub fn prepare(&self, net: &Network) -> Result<()> {
        if !self.channels_last {
            return Ok(());
        }
        let _guard = tch::no_grad_guard();
        for (_, mut var) in net.variables() {
            if var.dim() == 4 {
                let converted = channels_last(&var)?;
                var.set_data(&converted);
            }
        }
        Ok(())
    }

    /// A batch of images `[N, C, H, W]` in the memory format.
    pub fn input(&self, x: &Tensor) -> Result<Tensor> {
        if self.channels_last && x.dim() == 4 {
            channels_last(x)
        } else {
            Ok(x.shallow_clone())
        }
    }

    /// Runs `f` (a forward pass) under autocast in the precision, on `device`.
    pub fn run<T>(&self, device: Device, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.precision == Precision::Fp32 {
            return f();
        }
        let _autocast = Autocast::enter(device, self.precision)?;
        f()
    }
}

/// The warning a stage gives when it drops `channels_last = true` on the CPU.
pub const CHANNELS_LAST_ON_CPU: &str =
    "`channels_last = true` applies on a GPU only; on the CPU the network runs in the default (NCHW) format, which is as fast there";

/// `x` `[N, C, H, W]` with channels-last strides `[HWC, 1, WC, C]`: what
/// `x.contiguous(memory_format=torch.channels_last)` gives (tch exposes no memory formats).
pub fn channels_last(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_permute([0, 3, 1, 2])?)
}

/// Whether `x` `[N, C, H, W]` is laid out channels-last.
pub fn is_channels_last(x: &Tensor) -> bool {
    match (x.size().as_slice(), x.stride().as_slice()) {
        ([_, c, h, w], [sn, sc, sh, sw]) => *sc == 1 && *sw == *c && *sh == *w * *c && *sn == *h * *w * *c,
        _ => false,
    }
}

/// The `at::autocast` functions `torch.autocast` calls, by their C++ names in libtorch_cpu.
struct Api {
    set_enabled: unsafe extern "C" fn(i8, bool),
    is_enabled: unsafe extern "C" fn(i8) -> bool,
    set_dtype: unsafe extern "C" fn(i8, i8),
    get_dtype: unsafe extern "C" fn(i8) -> i8,
    increment_nesting: unsafe extern "C" fn() -> i32,
    decrement_nesting: unsafe extern "C" fn() -> i32,
    clear_cache: unsafe extern "C" fn(),
}

fn api() -> Result<&'static Api> {
    static API: OnceLock<std::result::Result<Api, String>> = OnceLock::new();
    API.get_or_init(load_api).as_ref().map_err(|e| StageError::new(e.clone()))
}

fn load_api() -> std::result::Result<Api, String> {
    fn symbol(name: &str, readable: &str) -> std::result::Result<*mut libc::c_void, String> {
        let c_name = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
        // SAFETY: dlsym reads a NUL-terminated name and returns an address or null.
        let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c_name.as_ptr()) };
        if address.is_null() {
            Err(format!(
                "mixed precision needs `{readable}` from libtorch (2.3 or newer), and the loaded libtorch does not export it: write `precision = fp32`"
            ))
        } else {
            Ok(address)
        }
    }
    // SAFETY: each address is the named C++ function, whose signature is that of the pointer type
    // it is cast to: `c10::DeviceType` and `c10::ScalarType` are `enum class : int8_t`, passed as
    // a signed char under the Itanium C++ ABI used by libtorch's Linux and macOS builds, which for
    // these argument and result types is the C calling convention.
    unsafe {
        Ok(Api {
            set_enabled: std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn(i8, bool)>(symbol(
                "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb",
                "at::autocast::set_autocast_enabled",
            )?),
            is_enabled: std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn(i8) -> bool>(symbol(
                "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE",
                "at::autocast::is_autocast_enabled",
            )?),
            set_dtype: std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn(i8, i8)>(symbol(
                "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE",
                "at::autocast::set_autocast_dtype",
            )?),
            get_dtype: std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn(i8) -> i8>(symbol(
                "_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE",
                "at::autocast::get_autocast_dtype",
            )?),
            increment_nesting: std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn() -> i32>(symbol(
                "_ZN2at8autocast17increment_nestingEv",
                "at::autocast::increment_nesting",
            )?),
            decrement_nesting: std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn() -> i32>(symbol(
                "_ZN2at8autocast17decrement_nestingEv",
                "at::autocast::decrement_nesting",
            )?),
            clear_cache: std::mem::transmute::<*mut libc::c_void, unsafe extern "C" fn()>(symbol(
                "_ZN2at8autocast11clear_cacheEv",
                "at::autocast::clear_cache",
            )?),
        })
    }
}

/// Autocast on for one device while alive; restores the previous state when dropped and empties
/// autocast's cache of cast weights when the outermost scope ends, as `torch.autocast` does (the
/// cache holds fp16/bf16 copies of weights the optimizer is about to change).
struct Autocast {
    api: &'static Api,
    device_type: i8,
    was_enabled: bool,
    previous_dtype: i8,
}

impl Autocast {
    fn enter(device: Device, precision: Precision) -> Result<Autocast> {
        let api = api()?;
        let device_type = match device {
            Device::Cpu => 0,
            Device::Cuda(_) => 1,
            other => return Err(StageError::new(format!("mixed precision is not available on {other:?}: write `precision = fp32`"))),
        };
        // SAFETY: plain calls into libtorch's thread-local autocast state (see `load_api`).
        unsafe {
            let was_enabled = (api.is_enabled)(device_type);
            let previous_dtype = (api.get_dtype)(device_type);
            (api.set_dtype)(device_type, precision.scalar_type());
            (api.set_enabled)(device_type, true);
            (api.increment_nesting)();
            Ok(Autocast { api, device_type, was_enabled, previous_dtype })
        }
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        // SAFETY: as in `enter`.
        unsafe {
            if (self.api.decrement_nesting)() == 0 {
                (self.api.clear_cache)();
            }
            (self.api.set_enabled)(self.device_type, self.was_enabled);
            (self.api.set_dtype)(self.device_type, self.previous_dtype);
        }
    }
}

/// Dynamic loss scaling for fp16 training, as `torch.amp.GradScaler` does with its defaults: the
/// loss is multiplied by the scale (65536 at first) before the backward pass; the gradients are
/// divided by it and checked for inf and NaN; a step with any is skipped and halves the scale,
/// and 2000 good steps in a row double it.
pub struct GradScaler {
    pub scale: Tensor,
    pub growth_tracker: Tensor,
    found_inf: Tensor,
}

impl GradScaler {
    pub const INIT_SCALE: f64 = 65536.0;
    pub const GROWTH_FACTOR: f64 = 2.0;
    pub const BACKOFF_FACTOR: f64 = 0.5;
    pub const GROWTH_INTERVAL: i64 = 2000;

    pub fn new(device: Device) -> Result<GradScaler> {
        Ok(GradScaler {
            scale: Tensor::f_full([1], Self::INIT_SCALE, (Kind::Float, device))?,
            growth_tracker: Tensor::f_zeros([1], (Kind::Int, device))?,
            found_inf: Tensor::f_zeros([1], (Kind::Float, device))?,
        })
    }

    /// The loss to call `backward` on.
    pub fn scale(&self, loss: &Tensor) -> Result<Tensor> {
        Ok(loss.f_mul(&self.scale.f_to_kind(loss.kind())?)?)
    }

    /// Divides the gradients by the scale in place and says whether they are all finite, which
    /// reads one number from the device (as `GradScaler.step` does).
    pub fn unscale<'a>(&mut self, params: impl IntoIterator<Item = &'a Tensor>) -> Result<bool> {
        let _guard = tch::no_grad_guard();
        let _ = self.found_inf.f_zero_()?;
        let inverse = self.scale.f_double_reciprocal()?;
        for p in params {
            let mut g = p.grad();
            if g.defined() {
                g.f_internal_amp_non_finite_check_and_unscale(&mut self.found_inf, &inverse)?;
            }
        }
        Ok(self.found_inf.f_double_value(&[0])? == 0.0)
    }

    /// Updates the scale after a step (taken or skipped).
    pub fn update(&mut self) -> Result<()> {
        let _ = self.scale.f_internal_amp_update_scale_(
            &self.growth_tracker,
            &self.found_inf,
            Self::GROWTH_FACTOR,
            Self::BACKOFF_FACTOR,
            Self::GROWTH_INTERVAL,
        )?;
        Ok(())
    }

    /// The current scale.
    pub fn value(&self) -> Result<f64> {
        Ok(self.scale.f_double_value(&[0])?)
    }
}

trait Reciprocal {
    fn f_double_reciprocal(&self) -> Result<Tensor>;
}

impl Reciprocal for Tensor {
    /// 1/scale computed in double and stored as fp32, as `GradScaler` does.
    fn f_double_reciprocal(&self) -> Result<Tensor> {
        Ok(self.f_to_kind(Kind::Double)?.f_reciprocal()?.f_to_kind(Kind::Float)?)
    }
}

/// CUDA device facts libtorch does not expose through tch, and the loading of libtorch's CUDA half.
pub mod cuda {
    use std::sync::OnceLock;

    /// The libtorch folder the worker was built against (set by build.rs).
    const LIBTORCH_LIB: Option<&str> = option_env!("LTHLANG_LIBTORCH_LIB");

    /// Address of the loaded `libtorch_cuda`, as an integer so it can live in a static.
    static HANDLE: OnceLock<Option<usize>> = OnceLock::new();

    /// Loads `libtorch_cuda` once, so libtorch registers its CUDA backend. The linker drops the
    /// library from the worker because no symbol of it is named (tch's `Cuda::is_available` lives
    /// in libtorch_cpu and answers false until the CUDA half has registered itself), so without
    /// this a GPU machine would report no device. A libtorch built without CUDA has no such file:
    /// then nothing is loaded and the devices stay the CPU. Returns why loading failed, if it did.
    pub fn load() -> Result<(), String> {
        let mut failure = None;
        HANDLE.get_or_init(|| {
            let path = std::path::Path::new(LIBTORCH_LIB?).join("libtorch_cuda.so");
            if !path.is_file() {
                return None;
            }
            let c_path = std::ffi::CString::new(path.to_string_lossy().as_bytes()).ok()?;
            // SAFETY: dlopen reads a NUL-terminated path; the library's initialisers only register
            // libtorch's CUDA backend.
            let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if handle.is_null() {
                // SAFETY: dlerror returns a message owned by libc, or null.
                let message = unsafe { libc::dlerror() };
                let message = if message.is_null() {
                    "unknown error".to_owned()
                } else {
                    // SAFETY: a non-null dlerror result is a NUL-terminated string.
                    unsafe { std::ffi::CStr::from_ptr(message) }.to_string_lossy().into_owned()
                };
                failure = Some(format!("cannot load {}: {message}", path.display()));
                return None;
            }
            Some(handle as usize)
        });
        failure.map_or(Ok(()), Err)
    }

    /// The compute capability of CUDA device `index`, from the CUDA runtime libtorch loaded.
    pub fn capability(index: usize) -> Result<(i32, i32), String> {
        type GetAttribute = unsafe extern "C" fn(*mut i32, i32, i32) -> i32;
        let name = c"cudaDeviceGetAttribute";
        // The loaded libtorch_cuda's own dependencies are searched first (its CUDA runtime), then
        // everything loaded globally.
        let handle = HANDLE.get().copied().flatten().map_or(libc::RTLD_DEFAULT, |h| h as *mut libc::c_void);
        // SAFETY: dlsym reads a NUL-terminated name and returns an address or null.
        let address = unsafe { libc::dlsym(handle, name.as_ptr()) };
        if address.is_null() {
            return Err("the CUDA runtime is not loaded".to_owned());
        }
        // SAFETY: `cudaError_t cudaDeviceGetAttribute(int*, cudaDeviceAttr, int)` is a C function.
        let get = unsafe { std::mem::transmute::<*mut libc::c_void, GetAttribute>(address) };
        let device = i32::try_from(index).map_err(|e| e.to_string())?;
        // cudaDevAttrComputeCapabilityMajor = 75, cudaDevAttrComputeCapabilityMinor = 76.
        let (mut major, mut minor) = (0, 0);
        // SAFETY: both pointers are to live i32s.
        let status = unsafe { get(&mut major, 75, device) | get(&mut minor, 76, device) };
        if status != 0 {
            return Err(format!("cudaDeviceGetAttribute failed with error {status}"));
        }
        Ok((major, minor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint;
    use std::path::Path;

    fn max_difference(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn channels_last_gives_the_logits_of_the_contiguous_network() {
        // Two copies of the same network, one converted; training-mode passes move the batch-norm
        // statistics, so each mode is compared on copies that start alike.
        for (architecture, side) in [("resnet_tiny", 32), ("resnet18", 64)] {
            tch::manual_seed(1);
            let x = Tensor::randn([4, 3, side, side], (Kind::Float, Device::Cpu));
            for train in [false, true] {
                let plain = Network::build(architecture, 5, 8, 3, Device::Cpu).unwrap();
                let converted = Network::build(architecture, 5, 8, 3, Device::Cpu).unwrap();
                // The copy gets the plain network's weights: building draws from libtorch's one
                // generator, which tests running beside this one also draw from.
                checkpoint::restore(&converted.variables(), &checkpoint::snapshot(&plain.variables()), Path::new("copy")).unwrap();
                let compute = Compute { channels_last: true, ..Compute::FP32 };
                compute.prepare(&converted).unwrap();
                let conv = &converted.variables()["conv1.weight"];
                assert!(is_channels_last(conv), "{architecture}: conv1.weight has strides {:?}", conv.stride());
                let xl = compute.input(&x).unwrap();
                assert!(is_channels_last(&xl) && !is_channels_last(&x));
                let _guard = tch::no_grad_guard();
                let (a, b) = (plain.forward(&x, train).unwrap(), converted.forward(&xl, train).unwrap());
                let difference = max_difference(&a, &b);
                assert!(difference < 1e-5, "{architecture} (train {train}): logits differ by {difference}");
                assert!(max_difference(&a, &Tensor::zeros_like(&a)) > 1e-3, "the logits should not be trivially zero");
            }
        }
    }

    #[test]
    fn autocast_runs_convolutions_in_the_asked_precision_and_only_inside_the_scope() {
        let net = Network::build("resnet_tiny", 3, 4, 0, Device::Cpu).unwrap();
        let x = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        for (precision, kind) in [(Precision::Bf16, Kind::BFloat16), (Precision::Fp16, Kind::Half), (Precision::Fp32, Kind::Float)] {
            let compute = Compute { precision, channels_last: false };
            let (_, activation) = compute.run(Device::Cpu, || net.forward_with(&x, false, "layer1")).unwrap();
            assert_eq!(activation.kind(), kind, "{precision:?}");
            // Nested scopes restore the outer state, and nothing stays on afterwards.
            let inner = compute.run(Device::Cpu, || Compute::FP32.run(Device::Cpu, || net.forward_with(&x, false, "layer1"))).unwrap();
            assert_eq!(inner.1.kind(), kind);
        }
        let (_, after) = net.forward_with(&x, false, "layer1").unwrap();
        assert_eq!(after.kind(), Kind::Float);
    }

    #[test]
    fn auto_is_fp32_on_the_cpu_and_words_resolve() {
        assert_eq!(Precision::resolve("auto", Device::Cpu).unwrap(), Precision::Fp32);
        assert_eq!(Precision::resolve("bf16", Device::Cpu).unwrap(), Precision::Bf16);
        assert_eq!(Precision::resolve("fp16", Device::Cpu).unwrap(), Precision::Fp16);
        assert!(Precision::resolve("fp8", Device::Cpu).is_err());
        let fields =
            BTreeMap::from([("precision".to_owned(), Value::Word("bf16".to_owned())), ("channels_last".to_owned(), Value::Bool(true))]);
        assert_eq!(Compute::from_fields(&fields, Device::Cpu).unwrap(), Compute { precision: Precision::Bf16, channels_last: true });
        assert_eq!(Compute::from_fields(&BTreeMap::new(), Device::Cpu).unwrap(), Compute::FP32);
    }

    #[test]
    fn channels_last_is_dropped_on_the_cpu_with_a_warning() {
        let request = crate::fixtures::Workspace::new().request("dense", lthlang::kinds::Category::Train, "sgd", &[]);
        let events = std::cell::RefCell::new(Vec::new());
        let emit = |e| events.borrow_mut().push(e);
        let ctx = Context { request: &request, device: Device::Cpu, emit: &emit };
        let asked = Compute { precision: Precision::Fp32, channels_last: true };
        assert_eq!(asked.on_device_of(&ctx), Compute::FP32);
        assert_eq!(Compute::FP32.on_device_of(&ctx), Compute::FP32);
        let warnings: Vec<String> = events
            .borrow()
            .iter()
            .map(|e| match e {
                lthlang::exec::job::Event::Warning { message, .. } => message.clone(),
                other => panic!("unexpected event {other:?}"),
            })
            .collect();
        assert_eq!(warnings, [CHANNELS_LAST_ON_CPU]);
    }

    #[test]
    fn the_grad_scaler_follows_pytorchs_defaults() {
        // torch.amp.GradScaler(): init_scale 2**16, growth_factor 2, backoff_factor 0.5,
        // growth_interval 2000. A step with an inf gradient is skipped and halves the scale; 2000
        // finite steps in a row double it; unscaling divides the gradients by the scale.
        let mut scaler = GradScaler::new(Device::Cpu).unwrap();
        assert_eq!(scaler.value().unwrap(), 65536.0);
        let p = Tensor::zeros([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let set_grad = |values: &[f32]| {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
            (&p * Tensor::from_slice(values)).sum(Kind::Float).backward();
        };
        set_grad(&[65536.0, -131072.0, 32768.0]);
        assert!(scaler.unscale([&p]).unwrap());
        assert_eq!(Vec::<f32>::try_from(p.grad()).unwrap(), vec![1.0, -2.0, 0.5]);
        scaler.update().unwrap();
        assert_eq!(scaler.value().unwrap(), 65536.0);
        set_grad(&[1.0, f32::INFINITY, 1.0]);
        assert!(!scaler.unscale([&p]).unwrap(), "an inf gradient must skip the step");
        scaler.update().unwrap();
        assert_eq!(scaler.value().unwrap(), 32768.0);
        set_grad(&[f32::NAN, 1.0, 1.0]);
        assert!(!scaler.unscale([&p]).unwrap(), "a NaN gradient must skip the step");
        scaler.update().unwrap();
        assert_eq!(scaler.value().unwrap(), 16384.0);
        for step in 1..=GradScaler::GROWTH_INTERVAL {
            set_grad(&[1.0, 1.0, 1.0]);
            assert!(scaler.unscale([&p]).unwrap());
            scaler.update().unwrap();
            let expected = if step < GradScaler::GROWTH_INTERVAL { 16384.0 } else { 32768.0 };
            assert_eq!(scaler.value().unwrap(), expected, "after {step} good steps");
        }
        assert_eq!(scaler.growth_tracker.int64_value(&[0]), 0, "the count of good steps restarts after growing");
    }
}
