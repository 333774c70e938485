//! The one place diagnostics are built into miette reports and rendered.
//!
//! Phases produce [`Diagnostic`] values that hold spans only. Rendering attaches the source text,
//! turns labels in another file into notes (miette draws one source per report), and prints with a
//! fixed theme so that snapshots do not depend on the terminal.

use crate::source::{Sources, Span};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, Severity};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warning,
}

#[derive(Clone, Debug)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// A problem found in a source. `code` is stable (`lth::check::unknown_name`) and documented.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub level: Level,
    pub code: &'static str,
    pub message: String,
    pub primary: Label,
    pub secondary: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, span: Span, message: impl Into<String>, label: impl Into<String>) -> Self {
        Diagnostic {
            level: Level::Error,
            code,
            message: message.into(),
            primary: Label { span, message: label.into() },
            secondary: Vec::new(),
            help: None,
        }
    }

    pub fn warning(code: &'static str, span: Span, message: impl Into<String>, label: impl Into<String>) -> Self {
        Diagnostic { level: Level::Warning, ..Diagnostic::error(code, span, message, label) }
    }

    #[must_use]
    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.secondary.push(Label { span, message: message.into() });
        self
    }

    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn with_help_opt(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }

    fn sort_key(&self) -> (Span, &'static str) {
        (self.primary.span, self.code)
    }
}

/// Sorts diagnostics by position (source, then offset) and drops exact repeats.
pub fn sort(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()).then_with(|| a.message.cmp(&b.message)));
    diagnostics.dedup_by(|a, b| a.sort_key() == b.sort_key() && a.message == b.message);
}

/// "did you mean `x`?" for the candidate closest to `name`, if any is close enough to be a typo.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The candidate closest to `name`, if one is close enough and stands out: when two different
/// candidates are equally close (`layer4` against `layer1`, `layer2`, `layer3`), a guess would be
/// arbitrary, so there is none and callers fall back to listing the choices.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    let mut tied = false;
    for candidate in candidates {
        let score = strsim::jaro_winkler(&name.to_lowercase(), &candidate.to_lowercase());
        if score < 0.8 {
            continue;
        }
        match best {
            Some((s, c)) if (score - s).abs() < 1e-12 => tied |= c != candidate,
            Some((s, _)) if score < s => {}
            _ => {
                best = Some((score, candidate));
                tied = false;
            }
        }
    }
    best.filter(|_| !tied).map(|(_, c)| c)
}

/// How diagnostics are drawn: colour for a terminal, plain for files, pipes and snapshots.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub colour: bool,
    pub width: usize,
}

impl Style {
    pub const PLAIN: Style = Style { colour: false, width: 100 };
}

pub fn render(diagnostic: &Diagnostic, sources: &Sources, style: Style) -> String {
    let report = Report::new(diagnostic, sources);
    let theme = if style.colour { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(style.width).with_links(false);
    let mut out = String::new();
    if handler.render_report(&mut out, &report).is_err() {
        // Rendering only fails on a formatter error; fall back to a one-line form rather than panic.
        out = format!("{}: {}\n", diagnostic.code, diagnostic.message);
    }
    out
}

/// The count line printed after all diagnostics of a check.
pub fn summary(diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!("{}, {}", plural(errors, "error"), plural(warnings, "warning"))
}

/// A diagnostic joined with its source, in the shape miette renders.
struct Report {
    code: &'static str,
    message: String,
    severity: Severity,
    source: NamedSource<String>,
    labels: Vec<LabeledSpan>,
    help: Option<String>,
}

impl Report {
    fn new(d: &Diagnostic, sources: &Sources) -> Self {
        let source = sources.get(d.primary.span.source);
        let mut labels = vec![LabeledSpan::new_primary_with_span(Some(d.primary.message.clone()), d.primary.span.range())];
        let mut notes = Vec::new();
        for label in &d.secondary {
            if label.span.source == d.primary.span.source {
                labels.push(LabeledSpan::new_with_span(Some(label.message.clone()), label.span.range()));
            } else {
                let other = sources.get(label.span.source);
                let (line, col) = other.line_col(label.span.start);
                notes.push(format!("{} at {}:{line}:{col}", label.message, other.name));
            }
        }
        let help = match (d.help.clone(), notes.is_empty()) {
            (help, true) => help,
            (None, false) => Some(notes.join("\n")),
            (Some(help), false) => Some(format!("{help}\n{}", notes.join("\n"))),
        };
        Report {
            code: d.code,
            message: d.message.clone(),
            severity: match d.level {
                Level::Error => Severity::Error,
                Level::Warning => Severity::Warning,
            },
            source: NamedSource::new(source.name.clone(), source.text.to_string()),
            labels,
            help,
        }
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.clone().into_iter()))
    }
}
