//! Soak: generated programs (src/generate.rs) run end to end through `lthlang check` and
//! `lthlang run`, counting how each ends: completed, refused by `check`, or failed (the seeds of
//! failures are listed with the last lines of their output). Each program runs in its own
//! temporary folder with its own cache.
//!
//!     source scripts/env.sh && cargo build --release --workspace --bins
//!     cargo bench --bench generated_soak -- [--from SEED] [--count N] [--keep DIR]
//!     cargo bench --bench generated_soak -- --show SEED     # print one program
//!
//! `LTHLANG_BIN=/path/to/lthlang` runs another build of the binary (copy it and its worker first).
//! Defaults: seeds 1000 to 1299 (the CI test, tests/generated_programs.rs, uses 0 to 23). Exits 1
//! when any program failed.

use lthlang::generate::{self, Outcome};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let mut from = 1000u64;
    let mut count = 300u64;
    let mut keep: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number =
            |what: &str| -> u64 { args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{what} needs a number")) };
        match arg.as_str() {
            "--from" => from = number("--from"),
            "--count" => count = number("--count"),
            "--show" => {
                print!("{}", generate::program(number("--show")));
                return;
            }
            "--keep" => keep = args.next().map(PathBuf::from),
            // `cargo bench` passes `--bench` to every harness-less target.
            _ => {}
        }
    }
    // LTHLANG_BIN runs a copied binary (its worker beside it), so that a rebuild during the soak
    // does not swap the binaries between programs.
    let lthlang = std::env::var_os("LTHLANG_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lthlang")), PathBuf::from);
    let start = Instant::now();
    let (mut completed, mut refused, mut failed) = (0u64, 0u64, Vec::new());
    let mut codes = std::collections::BTreeMap::<String, u64>::new();
    for seed in from..from + count {
        let dir = tempfile::tempdir().expect("temporary folder");
        let began = Instant::now();
        let trial = generate::trial(&lthlang, dir.path(), seed);
        let seconds = began.elapsed().as_secs_f64();
        match &trial.outcome {
            Outcome::Completed => completed += 1,
            Outcome::Refused(found) => {
                refused += 1;
                for code in found {
                    *codes.entry(code.clone()).or_default() += 1;
                }
            }
            Outcome::Failed(why) => {
                println!("FAILED seed {seed}:\n{}\n--- output ---\n{why}\n", trial.text);
                failed.push(seed);
            }
        }
        let word = match trial.outcome {
            Outcome::Completed => "completed",
            Outcome::Refused(_) => "refused",
            Outcome::Failed(_) => "FAILED",
        };
        println!("seed {seed}: {word} in {seconds:.1} s");
        if let Some(keep) = &keep {
            std::fs::create_dir_all(keep).expect("--keep folder");
            std::fs::copy(&trial.file, keep.join(format!("gen{seed}.lth"))).expect("keep program");
        }
    }
    println!(
        "\n{count} programs (seeds {from}..{}) in {:.0} s: {completed} completed, {refused} refused by check, {} failed",
        from + count,
        start.elapsed().as_secs_f64(),
        failed.len()
    );
    for (code, n) in &codes {
        println!("  refused with {code}: {n}");
    }
    if !failed.is_empty() {
        println!("failed seeds: {failed:?}");
        std::process::exit(1);
    }
}
