//! The thread count both sides of a throughput bench use.

/// All cores, or `LTHLANG_BENCH_THREADS` (to compare the two sides at one thread).
pub fn threads() -> i32 {
    if let Some(n) = std::env::var("LTHLANG_BENCH_THREADS").ok().and_then(|v| v.parse().ok()) {
        return n;
    }
    std::thread::available_parallelism().map_or(1, |n| i32::try_from(n.get()).unwrap_or(1))
}
