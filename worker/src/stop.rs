//! A request to stop at the next safe point. The front end sends SIGTERM (or a batch system
//! does); training checks [`requested`] once an epoch's state is saved and ends the node there,
//! so a rerun resumes after that epoch. Stages without epochs finish their node first.
//! SIGINT is treated alike: the worker normally runs in its own process group and never sees a
//! terminal's Ctrl-C, but when it is started by hand it should stop as cleanly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::OnceLock;

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Turns SIGTERM and SIGINT into the stop request (instead of the default immediate death).
pub fn install() -> std::io::Result<()> {
    let flag = FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(flag))?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(flag))?;
    Ok(())
}

pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::SeqCst))
}
