//! Wall time of `lthlang check experiments/cub200_resnet50.lth`, the whole process as a user meets
//! it: the release binary is spawned many times and min, median, p95 and max are reported. The
//! target is a median of at most 20 ms; `check` must also stay free of libtorch, so `ldd` of the
//! binary is printed and must name no torch library.
//!
//!   cargo bench --bench check
//!
//! `LTHLANG_BENCH_RUNS` sets the number of timed runs (default 300), `LTHLANG_BENCH_TARGET_MS` the
//! target (default 20). CUB_ROOT points at a fixture folder in the published CUB-200 layout.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXPERIMENT: &str = "experiments/cub200_resnet50.lth";

fn env_number(var: &str, default: u64) -> u64 {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A folder holding what `dataset ... = cub200` requires of CUB_200_2011.
fn cub_fixture(root: &Path) -> PathBuf {
    let cub = root.join("CUB_200_2011");
    std::fs::create_dir_all(cub.join("images")).unwrap();
    for file in ["images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt"] {
        std::fs::write(cub.join(file), "").unwrap();
    }
    cub
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The value below which `q` of the sorted samples lie (nearest rank).
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn summary(label: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / u32::try_from(samples.len()).unwrap();
    let median = quantile(&samples, 0.5);
    println!(
        "{label}: n={} min={:.2} ms median={:.2} ms p95={:.2} ms max={:.2} ms mean={:.2} ms",
        samples.len(),
        millis(samples[0]),
        millis(median),
        millis(quantile(&samples, 0.95)),
        millis(*samples.last().unwrap()),
        millis(mean),
    );
    median
}

/// Prints `ldd` of the binary and fails if it names libtorch.
fn no_libtorch(binary: &Path) {
    match Command::new("ldd").arg(binary).output() {
        Ok(output) => {
            let text = String::from_utf8_lossy(&output.stdout);
            println!("ldd {}:\n{text}", binary.display());
            let torch: Vec<&str> = text.lines().filter(|l| l.contains("torch")).collect();
            assert!(torch.is_empty(), "`lthlang` links libtorch; `check` must not load it:\n{}", torch.join("\n"));
        }
        Err(e) => println!("ldd unavailable ({e}); libtorch check skipped"),
    }
}

fn main() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_lthlang"));
    let runs = env_number("LTHLANG_BENCH_RUNS", 300).max(1);
    let target_ms = env_number("LTHLANG_BENCH_TARGET_MS", 20);
    let fixtures = tempfile::tempdir().unwrap();
    let cub = cub_fixture(fixtures.path());

    println!("binary: {}", binary.display());
    no_libtorch(&binary);

    let spawn = || {
        let start = Instant::now();
        let status = Command::new(&binary)
            .args(["check", EXPERIMENT])
            .current_dir(&manifest)
            .env("CUB_ROOT", &cub)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("lthlang runs");
        let elapsed = start.elapsed();
        assert!(status.success(), "`lthlang check {EXPERIMENT}` failed with {status}");
        elapsed
    };
    for _ in 0..10 {
        spawn();
    }
    let process: Vec<Duration> = (0..runs).map(|_| spawn()).collect();

    // The same check in-process, to tell the checker's share from process start-up.
    std::env::set_var("CUB_ROOT", &cub);
    let path = manifest.join(EXPERIMENT);
    let in_process: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let mut sources = lthlang::source::Sources::default();
            let (_, checked) = lthlang::check::check_path(&mut sources, &path).unwrap();
            let elapsed = start.elapsed();
            assert!(!checked.has_errors() && checked.program.is_some());
            elapsed
        })
        .collect();

    println!("`lthlang check {EXPERIMENT}` (CUB_ROOT = fixture):");
    let median = summary("  whole process ", process);
    summary("  check in-process", in_process);
    let verdict = if millis(median) <= target_ms as f64 { "within" } else { "OVER" };
    println!("  median {:.2} ms is {verdict} the {target_ms} ms target", millis(median));
    if verdict == "OVER" {
        std::process::exit(1);
    }
}
