//! Grad-CAM maps per second and pooled embeddings per second for resnet18 at 224 px on the CPU,
//! through the worker's own code, beside the same computations in PyTorch eager
//! (`benches/torch_eager_explain.py`, a torchvision-free resnet18 built from the same layout),
//! run alternately on the same machine.
//!
//! Run with `source scripts/env.sh && cargo bench --bench explain_throughput`.

#[path = "common/threads.rs"]
mod common_threads;
use common_threads::threads;

#[path = "../src/stages/mod.rs"]
#[allow(dead_code, unused_imports)]
mod stages;

use stages::data::Split;
use stages::models::Network;
use stages::saliency::{self, Target};
use std::process::Command;
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
    let x = stages::data::normalise(&images).expect("normalise");
    let cams = best(IMAGES, || {
        saliency::explain(&net, saliency::cam::Method::parse("gradcam").expect("gradcam"), "layer4", &x, &labels, Target::Predicted, 32).expect("maps");
    });
    let split = Split { images, labels, concepts: None, masks: None };
    let embeddings = best(IMAGES, || {
        stages::embed::embed_split(&net, &split, "layer4", 16).expect("embeddings");
    });
    (cams, embeddings)
}

fn pytorch() -> Option<(f64, f64)> {
    let python = std::env::var("VIRTUAL_ENV").map(|v| format!("{v}/bin/python")).unwrap_or_else(|_| "python3".to_owned());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/torch_eager_explain.py");
    let args = [IMAGES, SIZE, ROUNDS as i64, i64::from(threads())].map(|a| a.to_string());
    let output = Command::new(&python).arg(script).args(&args).output().ok()?;
    if !output.status.success() {
        eprintln!("PyTorch reference failed: {}", String::from_utf8_lossy(&output.stderr));
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&output.stdout).lines().last()?).ok()?;
    Some((value["gradcam_per_second"].as_f64()?, value["embeddings_per_second"].as_f64()?))
}

fn main() {
    let (mut cam, mut emb, mut tcam, mut temb) = (0f64, 0f64, 0f64, 0f64);
    for _ in 0..2 {
        let (c, e) = ours();
        cam = cam.max(c);
        emb = emb.max(e);
        let Some((c, e)) = pytorch() else { std::process::exit(2) };
        tcam = tcam.max(c);
        temb = temb.max(e);
    }
    println!("resnet18 at {SIZE} px on the CPU, {} threads, batches of 16:", threads());
    println!("  Grad-CAM maps/s   lthlang {cam:7.2}   PyTorch eager {tcam:7.2}   ratio {:.2}", cam / tcam);
    println!("  embeddings/s      lthlang {emb:7.2}   PyTorch eager {temb:7.2}   ratio {:.2}", emb / temb);
}
