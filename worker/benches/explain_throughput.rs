//! Grad-CAM maps per second and pooled embeddings per second for resnet18 at 224 px on the CPU,
//! through the worker's own code, beside the same computations in PyTorch eager
//! (`benches/torch_eager_explain.py`, a torchvision-free resnet18 built from the same layout),
//! run alternately on the same machine. PyTorch runs with glibc's malloc defaults and with the
//! worker's allocator settings (see `benches/train_throughput.rs`).
//!
//! Run with `source scripts/env.sh && cargo bench --bench explain_throughput`.

mod common;
use common::{reference, threads, Malloc};

use lthlang_worker::data::Split;
use lthlang_worker::models::Network;
use lthlang_worker::saliency::{self, Target};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

const IMAGES: i64 = 32;
const SIZE: i64 = 224;
const ROUNDS: usize = 3;

/// Best of `ROUNDS` timings of `f`, as items per second.
fn best(items: i64, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let mut best = f64::INFINITY;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        f();
        best = best.min(start.elapsed().as_secs_f64());
    }
    items as f64 / best
}

fn ours() -> (f64, f64) {
    tch::set_num_threads(threads());
    tch::manual_seed(0);
    let net = Network::build("resnet18", 10, 0, 0, Device::Cpu).expect("network");
    let images = Tensor::randint(256, [IMAGES, 3, SIZE, SIZE], (Kind::Uint8, Device::Cpu));
    let labels = Tensor::zeros([IMAGES], (Kind::Int64, Device::Cpu));
    let x = lthlang_worker::data::Normalisation::FIXED.apply(&images).expect("normalise");
    let cams = best(IMAGES, || {
        saliency::explain(&net, saliency::cam::Method::parse("gradcam").expect("gradcam"), "layer4", &x, &labels, Target::Predicted, 32)
            .expect("maps");
    });
    let split = Split::in_memory(images, labels, Device::Cpu);
    let embeddings = best(IMAGES, || {
        lthlang_worker::embed::embed_split(&net, &split, "layer4", 16).expect("embeddings");
    });
    (cams, embeddings)
}

fn pytorch(malloc: Malloc) -> (f64, f64) {
    let args = [IMAGES, SIZE, ROUNDS as i64, i64::from(threads())].map(|a| a.to_string());
    let result = reference("torch_eager_explain.py", &args, malloc);
    (result["gradcam_per_second"].as_f64().unwrap_or(0.0), result["embeddings_per_second"].as_f64().unwrap_or(0.0))
}

fn main() {
    common::allocator::keep_freed_memory();
    let mut ours_best = (0f64, 0f64);
    let mut torch = [(0f64, 0f64); 2];
    let max = |a: (f64, f64), b: (f64, f64)| (a.0.max(b.0), a.1.max(b.1));
    for _ in 0..2 {
        ours_best = max(ours_best, ours());
        torch[0] = max(torch[0], pytorch(Malloc::GlibcDefault));
        torch[1] = max(torch[1], pytorch(Malloc::LikeTheWorker));
    }
    println!("resnet18 at {SIZE} px on the CPU, {} threads, batches of 16 (per second; ratios are lthlang / PyTorch):", threads());
    println!("                 lthlang   PyTorch (glibc defaults)   PyTorch (worker's malloc)");
    for (name, ours, [default, like]) in
        [("Grad-CAM maps", ours_best.0, [torch[0].0, torch[1].0]), ("embeddings", ours_best.1, [torch[0].1, torch[1].1])]
    {
        println!("  {name:13} {ours:8.2}   {default:8.2} (ratio {:.2})      {like:8.2} (ratio {:.2})", ours / default, ours / like);
    }
}
