//! Console output: diagnostics on stderr, results on stdout.

use crate::diagnostic::{self, Diagnostic, Style};
use crate::source::Sources;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// `-q`: status lines are dropped; errors, warnings and results still show.
static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn diagnostics(diagnostics: &[Diagnostic], sources: &Sources, style: Style) {
    let mut err = std::io::stderr().lock();
    for d in diagnostics {
        let _ = write!(err, "{}", diagnostic::render(d, sources, style));
        let _ = writeln!(err);
    }
}

pub fn error_line(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "error: {message}");
}

pub fn status(message: &str) {
    if QUIET.load(Ordering::Relaxed) {
        return;
    }
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

pub fn output(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
