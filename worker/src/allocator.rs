//! How the worker asks glibc's malloc to treat the memory libtorch frees.
//!
//! libtorch allocates every tensor with `posix_memalign` and frees it when the last reference
//! goes, so one training step allocates and frees the same activation-sized blocks again and
//! again. With glibc's defaults, blocks of a few megabytes are returned to the kernel on free
//! (by `munmap`, or by trimming the top of the heap) and come back on the next step as fresh
//! pages, each one zeroed by a page fault. On the resnet_tiny bench that was 1.47 million page
//! faults in four epochs and a fifth of the run spent in the kernel.
//!
//! The worker is a process of its own whose working set is the network's, so it keeps what it
//! frees: blocks below 32 MiB (the most `mallopt` accepts) come from the heap, and up to
//! 256 MiB of free heap stays mapped. Peak memory is unchanged; what the worker holds between
//! nodes is at most the trim threshold more than it uses.
//!
//! `LTHLANG_MALLOC=glibc-default` leaves glibc's settings alone (for measuring the difference).

/// Largest block served from the heap rather than its own mapping.
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory at the top of the heap that stays mapped.
const TRIM_THRESHOLD: i32 = 256 << 20;

/// Applies the settings above unless the environment opts out. Call before libtorch allocates.
pub fn keep_freed_memory() {
    if std::env::var("LTHLANG_MALLOC").is_ok_and(|v| v == "glibc-default") {
        return;
    }
    apply();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() {
    // SAFETY: mallopt only changes malloc's tuning parameters; it is called before any other
    // thread exists, and a refused value (return 0) leaves glibc's default in place.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() {}

/// The same settings as a `GLIBC_TUNABLES` value, for giving another process (the benches'
/// PyTorch references) the worker's allocator behaviour.
#[allow(dead_code)] // used by the benches only
pub fn as_glibc_tunables() -> String {
    format!("glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:glibc.malloc.trim_threshold={TRIM_THRESHOLD}")
}
