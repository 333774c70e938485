//! Checking: AST → [`Program`]. Resolves names across the file and the stdlib, types every field
//! against the kinds registry, fills defaults and applies the cross-stage rules. It collects every
//! problem it finds instead of stopping at the first, and sorts them by position.

mod codes;
mod executor;
pub mod program;
mod resolve;
mod rewind;
mod rules;
mod runnable;
mod site_settings;
mod values;

pub use executor::Executor;
pub use program::{Device, Experiment, FieldValue, Program, Stage, Value, Written};
/// The fields of the `experiment` block.
pub use resolve::EXPERIMENT_FIELDS;

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

/// What a check demands beyond the text itself.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Dataset folders must exist and hold their files. Off (`check --no-data`, `plan`, `graph`),
    /// a missing one is a warning: everything that does not read the data can still be looked at.
    pub require_data: bool,
    /// Drop the warnings `require_data: false` gives about missing data (for commands that
    /// never read it); see [`is_data_warning`].
    pub quiet_about_data: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { require_data: true, quiet_about_data: false }
    }
}

/// A missing dataset folder or unset variable naming one, reported as a warning because the
/// data was not required (those are errors otherwise).
pub fn is_data_warning(diagnostic: &Diagnostic) -> bool {
    !diagnostic.is_error() && (diagnostic.code == codes::MISSING_PATH || diagnostic.code == codes::ENV_UNSET)
}

/// Reads and checks a file. An unreadable file is a diagnostic-free error for the caller to report.
pub fn check_path(sources: &mut Sources, path: &Path) -> std::io::Result<(SourceId, Checked)> {
    check_path_with(sources, path, Options::default())
}

pub fn check_path_with(sources: &mut Sources, path: &Path, options: Options) -> std::io::Result<(SourceId, Checked)> {
    let text = std::fs::read_to_string(path)?;
    // Editors on Windows start UTF-8 files with a byte-order mark; it carries no text.
    let text = text.strip_prefix('\u{feff}').map(str::to_owned).unwrap_or(text);
    let id = sources.add(Origin::File(path.to_path_buf()), path.display().to_string(), text);
    let mut checked = check_with(sources, id, options);
    let before = checked.diagnostics.len();
    site_settings::diagnose(sources, path, &mut checked.diagnostics);
    if checked.diagnostics.len() > before {
        checked.program = None;
    }
    Ok((id, checked))
}

/// Checks the source `root` (already in `sources`), loading the stdlib modules it uses.
pub fn check(sources: &mut Sources, root: SourceId) -> Checked {
    check_with(sources, root, Options::default())
}

pub fn check_with(sources: &mut Sources, root: SourceId, options: Options) -> Checked {
    let (program, diagnostics) = check_keeping_program_with(sources, root, options);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Checked { program: None, diagnostics };
    }
    Checked { program, diagnostics }
}

/// As [`check`], but keeps the program even when there are errors: the stages that could be
/// resolved, with the fields that typed. Only for an editor explaining a file being written;
/// nothing may run from it. None when the file does not parse.
pub fn check_keeping_program(sources: &mut Sources, root: SourceId) -> (Option<Program>, Vec<Diagnostic>) {
    check_keeping_program_with(sources, root, Options::default())
}

fn check_keeping_program_with(sources: &mut Sources, root: SourceId, options: Options) -> (Option<Program>, Vec<Diagnostic>) {
    let text = sources.get(root).text.clone();
    let module = match crate::syntax::parse(root, &text) {
        Ok(module) => module,
        Err(diagnostics) => return (None, diagnostics),
    };
    let mut diagnostics = Vec::new();
    let scope = resolve::Scope::build(sources, &module, &mut diagnostics);
    let sources: &Sources = sources;
    let mut program = resolve::resolve(sources, root, &module, &scope, options, &mut diagnostics);
    if !rules::check_cycles(&program, &mut diagnostics) {
        rules::check_cross_stage(sources, &module, &program, &mut diagnostics);
        runnable::check(root, &program, &mut diagnostics);
    }
    diagnostic::sort(&mut diagnostics);
    program.stages.sort_by_key(|s| s.span);
    rewind::keep_rewind_epochs(&mut program);
    (Some(program), diagnostics)
}
