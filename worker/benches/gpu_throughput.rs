//! Training throughput of ResNet-50 on 448-px images on a CUDA device through the worker's own
//! training loop, in mixed precision and channels-last (what the CUB experiment runs). The PyTorch
//! eager reference with AMP and channels-last is `benches/torch_eager_gpu.py`; `scripts/gpu-check.sh`
//! runs the two in turn, samples the device's memory around each, and prints the ratio.
//!
//! Settings come from the environment so the script can pass the same ones to both sides:
//! `LTHLANG_GPU_BENCH_IMAGES` (default 2048), `_SIZE` (448), `_BATCH` (64), `_EPOCHS` (3 timed,
//! after one warm-up epoch), `_PRECISION` (bf16) and `_CLASSES` (200). Prints one JSON line:
//! images per second over the best timed epoch, and every epoch's seconds. Without a CUDA device
//! it says so and exits with status 2.

use lthlang::exec::job::{Event, NodeRequest};
use lthlang_worker::data::{Dataset, Meta, Split};
use lthlang_worker::models::Network;
use lthlang_worker::train::{self, Optimizer, Recipe, Schedule};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn setting(name: &str, default: i64) -> i64 {
    std::env::var(format!("LTHLANG_GPU_BENCH_{name}")).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    lthlang_worker::allocator::keep_freed_memory();
    if let Err(e) = lthlang_worker::precision::cuda::load() {
        eprintln!("gpu_throughput: {e}");
    }
    if !tch::Cuda::is_available() {
        eprintln!("gpu_throughput: libtorch sees no CUDA device");
        std::process::exit(2);
    }
    let device = Device::Cuda(0);
    let (images, size, batch, epochs, classes) =
        (setting("IMAGES", 2048), setting("SIZE", 448), setting("BATCH", 64), setting("EPOCHS", 3), setting("CLASSES", 200));
    let precision = std::env::var("LTHLANG_GPU_BENCH_PRECISION").unwrap_or_else(|_| "bf16".to_owned());
    tch::manual_seed(0);
    // Bytes on the host, as a dataset's row file holds them; batches are gathered and copied to
    // the device by the worker's own data path.
    let pixels = Tensor::randint(256, [images, 3, size, size], (Kind::Uint8, Device::Cpu));
    let labels = Tensor::randint(classes, [images], (Kind::Int64, Device::Cpu));
    let meta = Meta { classes: usize::try_from(classes).unwrap_or(1), image: usize::try_from(size).unwrap_or(1), ..Meta::default() };
    let data = Dataset { meta, splits: BTreeMap::from([("train".to_owned(), Split::in_memory(pixels, labels, device))]) };
    let net = Network::build("resnet50", classes, 0, 0, device).expect("network");
    let recipe = Recipe {
        optimizer: Optimizer::Sgd { momentum: 0.9, nesterov: false },
        lr: 0.01,
        weight_decay: 5e-4,
        schedule: Schedule::Constant,
        epochs: u32::try_from(epochs + 1).unwrap_or(2),
        batch,
        data_split: "train".to_owned(),
        val_split: None,
        keep_epochs: Vec::new(),
        precision: precision.clone(),
        channels_last: true,
    };
    let scratch = std::env::temp_dir().join(format!("lthlang-gpu-bench-{}", std::process::id()));
    let request = NodeRequest {
        id: "bench".to_owned(),
        stage: "bench".to_owned(),
        category: lthlang::kinds::Category::Train,
        method: "sgd".to_owned(),
        round: None,
        seed: 0,
        fields: BTreeMap::new(),
        upstream: Vec::new(),
        output: scratch.clone(),
        partial: scratch.clone(),
        device: "cuda:0".to_owned(),
        smoke: None,
    };
    let marks = RefCell::new(vec![Instant::now()]);
    let emit = |e: Event| {
        if matches!(e, Event::Epoch { .. }) {
            marks.borrow_mut().push(Instant::now());
        }
    };
    let ctx = lthlang_worker::Context { request: &request, device, emit: &emit };
    let outcome = train::train(&ctx, &net, &data, &recipe, &BTreeMap::new(), None).expect("training");
    let _ = std::fs::remove_dir_all(&scratch);
    // An epoch ends when its loss is read back, so the marks bound finished device work. The
    // per-epoch resume state (weights and momentum, about 200 MB for ResNet-50) is written
    // between the marks: it is part of the worker's cost.
    let marks = marks.into_inner();
    let seconds: Vec<f64> = marks.windows(2).skip(1).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    let best = seconds.iter().copied().fold(f64::INFINITY, f64::min);
    let result = serde_json::json!({
        "images_per_second": images as f64 / best,
        "epoch_seconds": seconds,
        "precision": outcome.precision.name(),
        "losses": outcome.history.iter().map(|e| e.loss).collect::<Vec<_>>(),
    });
    println!("{result}");
}
