//! Training throughput (images per second) of `resnet_tiny` on 32-px images and of ResNet-18 on
//! 224-px images, through the worker's own training loop, beside the same networks trained in
//! PyTorch eager mode on the same machine (`benches/torch_eager_throughput.py`, run as a child
//! process with the same settings), in one run.
//!
//! Run with `source scripts/env.sh && cargo bench --bench train_throughput`. resnet_tiny: 2048
//! images of 32 px, batch 64, width 16. ResNet-18: 96 images of 224 px, batch 32 (a CPU trains a
//! few dozen such images a second). Each side trains one warm-up epoch and then the timed ones;
//! the best epoch counts, so a busy moment on the machine does not decide the figure.
//!
//! PyTorch runs twice per round: with glibc's malloc defaults, which is what a PyTorch user
//! gets, and with the allocator settings the worker gives itself (`worker/src/allocator.rs`),
//! which compares the training loops alone.

mod common;
use common::{reference, threads, Malloc};

use lthlang::exec::job::{Event, NodeRequest};
use lthlang_worker::data::{Dataset, Meta, Split};
use lthlang_worker::models::Network;
use lthlang_worker::train::{self, Optimizer, Recipe, Schedule};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// One network and its settings.
struct Case {
    architecture: &'static str,
    images: i64,
    size: i64,
    width: i64,
    batch: i64,
    epochs: u32,
    rounds: usize,
}

const CASES: [Case; 2] = [
    Case { architecture: "resnet_tiny", images: 2048, size: 32, width: 16, batch: 64, epochs: 3, rounds: 3 },
    Case { architecture: "resnet18", images: 96, size: 224, width: 0, batch: 32, epochs: 2, rounds: 2 },
];

fn ours(case: &Case) -> f64 {
    let Case { architecture, images: count, size, width, batch, epochs, .. } = *case;
    tch::set_num_threads(threads());
    tch::manual_seed(0);
    let images = Tensor::randint(256, [count, 3, size, size], (Kind::Uint8, Device::Cpu));
    let labels = Tensor::randint(8, [count], (Kind::Int64, Device::Cpu));
    let meta = Meta {
        classes: 8,
        class_names: vec![],
        concept_names: vec![],
        class_concepts: vec![],
        image: usize::try_from(size).unwrap_or(32),
        splits: BTreeMap::new(),
        masks: false,
        skipped: 0,
        ..Meta::default()
    };
    let data = Dataset { meta, splits: BTreeMap::from([("train".to_owned(), Split::in_memory(images, labels, Device::Cpu))]) };
    let net = Network::build(architecture, 8, width, 0, Device::Cpu).expect("network");
    let recipe = Recipe {
        optimizer: Optimizer::Sgd { momentum: 0.9, nesterov: false },
        lr: 0.05,
        weight_decay: 5e-4,
        schedule: Schedule::Constant,
        epochs: epochs + 1,
        batch,
        data_split: "train".to_owned(),
        val_split: None,
        keep_epochs: Vec::new(),
        precision: "fp32".to_owned(),
        channels_last: false,
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
        smoke: None,
    };
    let marks = RefCell::new(vec![Instant::now()]);
    let emit = |e: Event| {
        if matches!(e, Event::Epoch { .. }) {
            marks.borrow_mut().push(Instant::now());
        }
    };
    let ctx = lthlang_worker::Context { request: &request, device: Device::Cpu, emit: &emit };
    train::train(&ctx, &net, &data, &recipe, &BTreeMap::new(), None).expect("training");
    let _ = std::fs::remove_dir_all(&scratch);
    let marks = marks.into_inner();
    // The saving of per-epoch resume state sits between the marks too: it is part of our cost.
    let best = marks.windows(2).skip(1).map(|w| (w[1] - w[0]).as_secs_f64()).fold(f64::INFINITY, f64::min);
    count as f64 / best
}

fn pytorch(case: &Case, malloc: Malloc) -> f64 {
    let numbers = [case.images, case.size, case.width, case.batch, i64::from(case.epochs), i64::from(threads())].map(|a| a.to_string());
    let mut args = numbers.to_vec();
    args.push(case.architecture.to_owned());
    let result = reference("torch_eager_throughput.py", &args, malloc);
    result["images_per_second"].as_f64().unwrap_or(0.0)
}

fn main() {
    // As the worker does at start-up; the bench calls the worker's training loop in-process.
    common::allocator::keep_freed_memory();
    for case in &CASES {
        // Alternate the sides so a change in machine load hits all of them.
        let (mut ours_best, mut torch_default, mut torch_like_worker) = (0f64, 0f64, 0f64);
        for _ in 0..case.rounds {
            ours_best = ours_best.max(ours(case));
            torch_default = torch_default.max(pytorch(case, Malloc::GlibcDefault));
            torch_like_worker = torch_like_worker.max(pytorch(case, Malloc::LikeTheWorker));
        }
        let Case { architecture, size, batch, .. } = case;
        println!("{architecture} training on {size} px images, batch {batch}, {} threads:", threads());
        println!("  lthlang worker                              {ours_best:8.1} images/s");
        println!("  PyTorch eager, glibc's malloc defaults      {torch_default:8.1} images/s   ratio {:.2}", ours_best / torch_default);
        println!(
            "  PyTorch eager, the worker's malloc settings {torch_like_worker:8.1} images/s   ratio {:.2}",
            ours_best / torch_like_worker
        );
    }
}
