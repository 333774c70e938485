//! Decoding and resizing throughput of the dataset node (`datasets::decoder`, which turns image
//! files into the stored `[3, side, side]` bytes) against PIL plus torchvision's transforms in a
//! torch DataLoader (`benches/torch_eager_decode.py`), on the same files, at the same output side,
//! with two workers on each side (two rayon threads; two DataLoader processes), in one run.
//!
//! The files are a CUB-200-layout folder from `benches/make_cub.py` (published image sizes,
//! photograph-like JPEGs), made once under `target/` and reused. Ours includes writing the rows
//! to their memory-mapped files, as the node does; theirs ends at the batch tensors.
//!
//!     source scripts/env.sh && cargo bench --bench decode_throughput [-- --fraction F --side S]
//!
//! Defaults: a twentieth of CUB (589 images), side 448 (the study's ResNet-50 input). Each side
//! makes three passes and the best counts. Target: ours at least 1.5 times theirs.

#[allow(dead_code)] // this bench uses only `reference` and `Malloc` of the shared helpers
mod common;
use common::{reference, Malloc};

use lthlang_worker::datasets::catalogue::Record;
use lthlang_worker::datasets::decoder::Decoder;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const WORKERS: usize = 2;
const ROUNDS: usize = 3;

fn main() {
    let mut fraction = 0.05f64;
    let mut side = 448usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--fraction" => fraction = args.next().and_then(|v| v.parse().ok()).expect("--fraction needs a number"),
            "--side" => side = args.next().and_then(|v| v.parse().ok()).expect("--side needs a number"),
            _ => {} // `cargo bench` passes --bench
        }
    }
    let files = cub_files(fraction);
    let list = std::env::temp_dir().join(format!("lthlang-decode-bench-{}.txt", std::process::id()));
    std::fs::write(&list, files.iter().map(|p| format!("{}\n", p.display())).collect::<String>()).expect("file list");

    let pool = rayon::ThreadPoolBuilder::new().num_threads(WORKERS).build().expect("thread pool");
    let records: Vec<Record> =
        files.iter().map(|path| Record { path: path.clone(), label: 0, concepts: Vec::new(), region: None }).collect();
    let mut best = f64::INFINITY;
    for _ in 0..ROUNDS {
        let out = tempfile::tempdir().expect("temporary folder");
        let decoder = Decoder { side, skip_corrupt: false, out: out.path().to_owned() };
        let start = Instant::now();
        let decoded = pool.install(|| decoder.decode("train", &records, false)).unwrap_or_else(|e| panic!("decode: {e}"));
        best = best.min(start.elapsed().as_secs_f64());
        assert_eq!(decoded.split.labels.len(), records.len());
    }
    let ours = files.len() as f64 / best;
    // The share of it that is JPEG decoding alone (the `image` crate, zune-jpeg), for the breakdown.
    let mut decode_only = f64::INFINITY;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        pool.install(|| {
            use rayon::prelude::*;
            files.par_iter().for_each(|path| {
                let bytes = std::fs::read(path).expect("read");
                let image = image::load_from_memory(&bytes).expect("decode").into_rgb8();
                assert!(image.width() > 0);
            })
        });
        decode_only = decode_only.min(start.elapsed().as_secs_f64());
    }

    let theirs = reference(
        "torch_eager_decode.py",
        &[
            list.display().to_string(),
            "--side".into(),
            side.to_string(),
            "--workers".into(),
            WORKERS.to_string(),
            "--rounds".into(),
            ROUNDS.to_string(),
        ],
        Malloc::GlibcDefault,
    );
    let _ = std::fs::remove_file(&list);
    let theirs = theirs["images_per_second"].as_f64().expect("images_per_second");
    println!("decode + resize to {side} px, {} CUB-layout JPEGs, {WORKERS} workers each, best of {ROUNDS}", files.len());
    println!("{:<34} {:>10}", "", "images/s");
    println!("{:<34} {ours:>10.1}", "lthlang dataset node");
    println!("{:<34} {:>10.1}", "  of which JPEG decoding alone", files.len() as f64 / decode_only);
    println!("{:<34} {theirs:>10.1}", "PIL + torchvision (DataLoader)");
    println!("ratio {:.2}x (target >= 1.5)", ours / theirs);
}

/// The JPEGs of a CUB-layout folder made by benches/make_cub.py at `fraction`, made once.
fn cub_files(fraction: f64) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../target/bench-cub-{fraction}"));
    let cub = root.join("CUB_200_2011");
    if !cub.join("images.txt").exists() {
        let python = std::env::var("VIRTUAL_ENV").map(|v| format!("{v}/bin/python")).unwrap_or_else(|_| "python3".to_owned());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/make_cub.py");
        let status = Command::new(python)
            .arg(script)
            .arg(&root)
            .args(["--fraction", &fraction.to_string(), "--jobs", &WORKERS.to_string()])
            .status()
            .expect("run make_cub.py");
        assert!(status.success(), "make_cub.py failed");
    }
    let listing = std::fs::read_to_string(cub.join("images.txt")).expect("images.txt");
    listing.lines().filter_map(|line| line.split_whitespace().nth(1)).map(|name| cub.join("images").join(name)).collect()
}
