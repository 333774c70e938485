//! Training throughput of `resnet_tiny` (images per second), through the worker's own training
//! loop, beside the same network trained in PyTorch eager mode on the same machine
//! (`benches/torch_eager_throughput.py`, run as a child process with the same settings).
//!
//! Run with `source scripts/env.sh && cargo bench --bench train_throughput`. Settings follow the
//! issue: 32 px images, batch 64; the network is the default width 16. Each side trains one
//! warm-up epoch and then `EPOCHS` timed ones; the best epoch counts, so a busy moment on the
//! machine does not decide the figure.

#[path = "common/threads.rs"]
mod common_threads;
use common_threads::threads;

#[path = "../src/stages/mod.rs"]
#[allow(dead_code, unused_imports)]
mod stages;

use lthlang::exec::job::{Event, NodeRequest};
use stages::data::{Dataset, Meta, Split};
use stages::models::Network;
use stages::train::{self, Optimizer, Recipe, Schedule};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

const IMAGES: i64 = 2048;
const SIZE: i64 = 32;
const WIDTH: i64 = 16;
const BATCH: i64 = 64;
const EPOCHS: u32 = 3;


fn ours() -> f64 {
    tch::set_num_threads(threads());
    tch::manual_seed(0);
    let images = Tensor::randint(256, [IMAGES, 3, SIZE, SIZE], (Kind::Uint8, Device::Cpu));
    let labels = Tensor::randint(8, [IMAGES], (Kind::Int64, Device::Cpu));
    let meta = Meta { classes: 8, class_names: vec![], concept_names: vec![], class_concepts: vec![], image: 32, splits: BTreeMap::new(), masks: false, skipped: 0, ..Meta::default() };
    let data = Dataset { meta, splits: BTreeMap::from([("train".to_owned(), Split { images, labels, concepts: None, masks: None })]) };
    let net = Network::build("resnet_tiny", 8, WIDTH, 0, Device::Cpu).expect("network");
    let recipe = Recipe {
        optimizer: Optimizer::Sgd { momentum: 0.9, nesterov: false },
        lr: 0.05,
        weight_decay: 5e-4,
        schedule: Schedule::Constant,
        epochs: EPOCHS + 1,
        batch: BATCH,
        data_split: "train".to_owned(),
        val_split: None,
        keep_epochs: Vec::new(),
    };
    let scratch = std::env::temp_dir().join(format!("lthlang-bench-{}", std::process::id()));
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
        device: "cpu".to_owned(),
    };
    let marks = RefCell::new(vec![Instant::now()]);
    let emit = |e: Event| {
        if matches!(e, Event::Epoch { .. }) {
            marks.borrow_mut().push(Instant::now());
        }
    };
    let ctx = stages::Context { request: &request, device: Device::Cpu, emit: &emit };
    train::train(&ctx, &net, &data, &recipe, &BTreeMap::new(), None).expect("training");
    let _ = std::fs::remove_dir_all(&scratch);
    let marks = marks.into_inner();
    // The saving of per-epoch resume state sits between the marks too: it is part of our cost.
    let best = marks.windows(2).skip(1).map(|w| (w[1] - w[0]).as_secs_f64()).fold(f64::INFINITY, f64::min);
    IMAGES as f64 / best
}

fn pytorch() -> Option<f64> {
    let python = std::env::var("VIRTUAL_ENV").map(|v| format!("{v}/bin/python")).unwrap_or_else(|_| "python3".to_owned());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/torch_eager_throughput.py");
    let args = [IMAGES, SIZE, WIDTH, BATCH, i64::from(EPOCHS), i64::from(threads())].map(|a| a.to_string());
    let output = Command::new(&python).arg(script).args(&args).output().ok()?;
    if !output.status.success() {
        eprintln!("PyTorch reference failed: {}", String::from_utf8_lossy(&output.stderr));
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let value: serde_json::Value = serde_json::from_str(text.lines().last()?).ok()?;
    value["images_per_second"].as_f64()
}

fn main() {
    // Alternate the two sides so a change in machine load hits both.
    let mut ours_best: f64 = 0.0;
    let mut torch_best: f64 = 0.0;
    for _ in 0..2 {
        ours_best = ours_best.max(ours());
        match pytorch() {
            Some(t) => torch_best = torch_best.max(t),
            None => {
                eprintln!("could not run the PyTorch reference (is the venv of scripts/env.sh active?)");
                std::process::exit(2);
            }
        }
    }
    println!("resnet_tiny (width {WIDTH}) training on {SIZE} px images, batch {BATCH}, {} threads:", threads());
    println!("  lthlang worker   {ours_best:8.1} images/s");
    println!("  PyTorch eager    {torch_best:8.1} images/s");
    println!("  ratio            {:8.2}", ours_best / torch_best);
}
