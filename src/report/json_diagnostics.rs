//! Diagnostics as JSON for editors and CI (`check --format json`, `plan --json` on errors). The
//! fields are described in the README under "Machine-readable output"; they are stable.
//!
//! Lines and columns are 1-based, columns counted in characters (as editors show them); `span`
//! is the byte range in the file, end exclusive, for tools that slice the text.

use crate::diagnostic::{Diagnostic, Label, Level};
use crate::source::{Sources, Span};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct JsonDiagnostic {
    /// Always `"diagnostic"`, so a stream can mix diagnostics with other objects.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub code: &'static str,
    /// `error` or `warning`.
    pub severity: &'static str,
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub span: ByteSpan,
    /// The text under the primary span's underline.
    pub label: String,
    pub help: Option<String>,
    /// Further places the diagnostic points at (another declaration, the stdlib).
    pub related: Vec<Related>,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct ByteSpan {
    pub start: u32,
    pub end: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Related {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub span: ByteSpan,
    pub message: String,
}

/// Where a span is: file name, start and end (line, column).
fn place(span: Span, sources: &Sources) -> (String, (usize, usize), (usize, usize)) {
    let source = sources.get(span.source);
    (source.name.clone(), source.line_col(span.start), source.line_col(span.end))
}

pub fn of(diagnostic: &Diagnostic, sources: &Sources) -> JsonDiagnostic {
    let (file, (line, column), (end_line, end_column)) = place(diagnostic.primary.span, sources);
    let related = diagnostic
        .secondary
        .iter()
        .map(|Label { span, message }| {
            let (file, (line, column), _) = place(*span, sources);
            Related { file, line, column, span: ByteSpan { start: span.start, end: span.end }, message: message.clone() }
        })
        .collect();
    JsonDiagnostic {
        kind: "diagnostic",
        code: diagnostic.code,
        severity: match diagnostic.level {
            Level::Error => "error",
            Level::Warning => "warning",
        },
        message: diagnostic.message.clone(),
        file,
        line,
        column,
        end_line,
        end_column,
        span: ByteSpan { start: diagnostic.primary.span.start, end: diagnostic.primary.span.end },
        label: diagnostic.primary.message.clone(),
        help: diagnostic.help.clone(),
        related,
    }
}

/// One JSON object per line, one line per diagnostic.
pub fn lines(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&serde_json::to_string(&of(d, sources)).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// The line closing one file's diagnostics in `check --format json`.
pub fn checked_line(file: &str, diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let line = serde_json::json!({
        "type": "checked",
        "file": file,
        "ok": errors == 0,
        "errors": errors,
        "warnings": diagnostics.len() - errors,
    });
    format!("{line}\n")
}
