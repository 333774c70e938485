//! Stopping a run on SIGINT or SIGTERM (Ctrl-C, `kill`, Slurm's time limit, a workflow manager).
//!
//! - The first signal asks for a stop at the next safe point. No further node starts; the worker
//!   runs in a process group of its own (so a Ctrl-C at the terminal reaches only the front end)
//!   and is sent SIGTERM, which it takes as "stop after the current epoch's checkpoint, or after
//!   the current node when it has no epochs". The run then ends as usual, says what finished and
//!   what did not, and exits 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM.
//! - A second signal stops at once: the worker is killed and reaped, the display is told so it
//!   can leave the terminal clean, and the process exits.
//!
//! Either way nothing is half-written: a cache entry appears only by an atomic rename, and
//! training state only by the rename of its progress file, so a rerun resumes from the last
//! finished epoch.
//!
//! signal-hook's iterator runs the reaction on an ordinary thread, where it may lock, print and
//! wait for the worker; a raw handler could do none of that safely.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

/// The first signal received (0: none yet).
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// The running worker's process id (0: none).
static WORKER: AtomicI32 = AtomicI32::new(0);
/// Whether the handler thread has been started (it lives as long as the process).
static INSTALLED: Mutex<bool> = Mutex::new(false);

/// A signal as the display is told about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interruption {
    pub signal: i32,
    /// A second signal: the process exits right after the display has been told.
    pub at_once: bool,
}

impl Interruption {
    pub fn name(&self) -> &'static str {
        signal_name(self.signal)
    }
}

pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// The shell's convention for a process ended by a signal: 128 + its number.
pub fn exit_code(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}

/// Starts handling SIGINT and SIGTERM; `announce` is called (on the handler's thread) for each.
/// Only the first call installs anything: a process runs one experiment.
pub fn install(announce: impl Fn(Interruption) + Send + 'static) -> std::io::Result<()> {
    let mut installed = INSTALLED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if *installed {
        return Ok(());
    }
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new().name("signals".to_owned()).spawn(move || {
        for signal in signals.forever() {
            let first = RECEIVED.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst).is_ok();
            if first {
                send_to_worker(libc::SIGTERM);
                announce(Interruption { signal, at_once: false });
            } else {
                stop_worker_now();
                announce(Interruption { signal, at_once: true });
                std::process::exit(i32::from(exit_code(signal)));
            }
        }
    })?;
    *installed = true;
    Ok(())
}

/// The signal that asked this run to stop, if one has.
pub fn requested() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// Called when a worker starts, so a signal can reach it. A worker started just as a signal
/// arrived is told at once.
pub fn watch_worker(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    WORKER.store(pid, Ordering::SeqCst);
    if requested().is_some() {
        send_to_worker(libc::SIGTERM);
    }
}

/// Called before the worker is waited for: its id may be reused once it is reaped.
pub fn unwatch_worker() {
    WORKER.store(0, Ordering::SeqCst);
}

fn send_to_worker(signal: i32) {
    let pid = WORKER.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill takes two integers and touches no memory of ours.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

fn stop_worker_now() {
    let pid = WORKER.swap(0, Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: as above; waitpid writes only the status integer we pass. Reaping here means no
        // worker outlives the front end, even for the instant before the kernel would reap it.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
        }
    }
}
