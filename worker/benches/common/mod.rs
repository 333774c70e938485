//! What the throughput benches share: the thread count, the worker's allocator settings, and
//! running a PyTorch reference script.

pub use lthlang_worker::allocator;

use std::process::Command;

/// All cores, or `LTHLANG_BENCH_THREADS` (to compare the two sides at one thread).
pub fn threads() -> i32 {
    if let Some(n) = std::env::var("LTHLANG_BENCH_THREADS").ok().and_then(|v| v.parse().ok()) {
        return n;
    }
    std::thread::available_parallelism().map_or(1, |n| i32::try_from(n.get()).unwrap_or(1))
}

/// How the PyTorch reference's malloc is set up.
#[derive(Clone, Copy, Debug)]
pub enum Malloc {
    /// What a user running PyTorch gets.
    GlibcDefault,
    /// The settings the worker applies to itself, so the loops compare on equal terms.
    LikeTheWorker,
}

/// Runs `benches/<script>` with `args` in the Python of `scripts/env.sh` and returns the JSON
/// object on its last line of output. Exits the bench when the reference cannot run.
pub fn reference(script: &str, args: &[String], malloc: Malloc) -> serde_json::Value {
    let python = std::env::var("VIRTUAL_ENV").map(|v| format!("{v}/bin/python")).unwrap_or_else(|_| "python3".to_owned());
    let path = format!("{}/benches/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut command = Command::new(&python);
    command.arg(&path).args(args);
    if let Malloc::LikeTheWorker = malloc {
        command.env("GLIBC_TUNABLES", allocator::as_glibc_tunables());
    }
    let output = match command.output() {
        Ok(output) if output.status.success() => output,
        Ok(output) => fail(&format!("{script} failed: {}", String::from_utf8_lossy(&output.stderr))),
        Err(e) => fail(&format!("could not start {python}: {e} (is the venv of scripts/env.sh active?)")),
    };
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| fail(&format!("{script} printed no JSON result")))
}

fn fail(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(2);
}
