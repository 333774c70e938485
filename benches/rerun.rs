//! How long `lthlang run` takes when everything is cached: the whole quickstart (target: at most
//! 1 s wall), and the cost of one cache hit, from two tiny experiments that differ only in their
//! number of nodes.
//!
//! Run with `source scripts/env.sh && cargo bench --bench rerun`. The first run trains the
//! quickstart into `target/bench-cache` (minutes); later runs reuse it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const BINARY: &str = env!("CARGO_BIN_EXE_lthlang");

fn run(file: &Path, cache: &Path) -> f64 {
    let start = Instant::now();
    let status = Command::new(BINARY)
        .arg("run")
        .arg(file)
        .arg("--cache")
        .arg(cache)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("lthlang runs");
    let seconds = start.elapsed().as_secs_f64();
    assert!(status.success(), "`lthlang run {}` failed", file.display());
    seconds
}

fn median_rerun(file: &Path, cache: &Path, times: usize) -> f64 {
    let mut samples: Vec<f64> = (0..times).map(|_| run(file, cache)).collect();
    samples.sort_by(f64::total_cmp);
    samples[times / 2]
}

fn tiny(rounds: u32, dir: &Path) -> PathBuf {
    let file = dir.join(format!("tiny{rounds}.lth"));
    let text = format!(
        "dataset data = shapes {{ classes = 4  train = 32  val = 16  test = 16 }}\n\
         model net = resnet_tiny {{ classes = data.classes  width = 4 }}\n\
         train dense = sgd {{ model = net  data = data.train  epochs = 1  batch = 32 }}\n\
         prune tickets = imp {{ from = dense  rounds = {rounds}  rate = 10% }}\n"
    );
    std::fs::write(&file, text).expect("write experiment");
    file
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-cache");
    std::fs::create_dir_all(&root).expect("bench folder");

    let (small, large) = (tiny(2, &root), tiny(40, &root));
    let cache = root.join("tiny-cache");
    run(&small, &cache);
    run(&large, &cache);
    let (t_small, t_large) = (median_rerun(&small, &cache, 11), median_rerun(&large, &cache, 11));
    let per_node = (t_large - t_small) / 38.0;
    println!("cached rerun, 5 nodes:  {:7.1} ms (median of 11)", t_small * 1e3);
    println!("cached rerun, 43 nodes: {:7.1} ms (median of 11)", t_large * 1e3);
    println!("per cache hit:          {:7.2} ms", per_node * 1e3);

    let quickstart = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("experiments/quickstart.lth");
    let qcache = root.join("quickstart-cache");
    let first = run(&quickstart, &qcache);
    println!("quickstart first run in this cache: {first:.1} s");
    let rerun = median_rerun(&quickstart, &qcache, 5);
    println!("quickstart cached rerun: {:7.1} ms (median of 5; target 1000 ms)", rerun * 1e3);
    if rerun > 1.0 {
        std::process::exit(1);
    }
}
