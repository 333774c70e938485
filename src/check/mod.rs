//! Checking: AST → [`Program`]. Resolves names across the file and the stdlib, types every field
//! against the kinds registry, fills defaults and applies the cross-stage rules. It collects every
//! problem it finds instead of stopping at the first, and sorts them by position.

mod codes;
mod executor;
pub mod program;
mod resolve;
mod rules;
mod site_settings;
mod values;

pub use executor::Executor;
pub use program::{Device, Experiment, FieldValue, Program, Stage, Value, Written};

use crate::diagnostic::{self, Diagnostic};
use crate::source::{Origin, SourceId, Sources};
use std::path::Path;

/// The outcome of checking one file: a program when there were no errors, and every diagnostic.
pub struct Checked {
    pub program: Option<Program>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Reads and checks a file. An unreadable file is a diagnostic-free error for the caller to report.
pub fn check_path(sources: &mut Sources, path: &Path) -> std::io::Result<(SourceId, Checked)> {
    let text = std::fs::read_to_string(path)?;
    let id = sources.add(Origin::File(path.to_path_buf()), path.display().to_string(), text);
    let mut checked = check(sources, id);
    let before = checked.diagnostics.len();
    site_settings::diagnose(sources, path, &mut checked.diagnostics);
    if checked.diagnostics.len() > before {
        checked.program = None;
    }
    Ok((id, checked))
}

/// Checks the source `root` (already in `sources`), loading the stdlib modules it uses.
pub fn check(sources: &mut Sources, root: SourceId) -> Checked {
    let text = sources.get(root).text.clone();
    let module = match crate::syntax::parse(root, &text) {
        Ok(module) => module,
        Err(diagnostics) => return Checked { program: None, diagnostics },
    };
    let mut diagnostics = Vec::new();
    let scope = resolve::Scope::build(sources, &module, &mut diagnostics);
    let sources: &Sources = sources;
    let mut program = resolve::resolve(sources, root, &module, &scope, &mut diagnostics);
    if !rules::check_cycles(&program, &mut diagnostics) {
        rules::check_cross_stage(sources, &module, &program, &mut diagnostics);
    }
    diagnostic::sort(&mut diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Checked { program: None, diagnostics };
    }
    program.stages.sort_by_key(|s| s.span);
    Checked { program: Some(program), diagnostics }
}
