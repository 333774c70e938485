//! Console output: diagnostics on stderr, results on stdout.

use crate::diagnostic::{self, Diagnostic, Style};
use crate::source::Sources;
use std::io::Write as _;

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
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

pub fn output(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
