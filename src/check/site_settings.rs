//! `check` reads the Slurm site settings that would apply to the file (`lthlang.toml` beside it,
//! else in the user's config folder) and reports their problems with spans into the TOML, which
//! joins the sources so the diagnostic shows it like any `.lth` file.

use super::codes;
use crate::diagnostic::Diagnostic;
use crate::exec::slurm::site;
use crate::source::{Origin, Sources, Span};
use std::path::Path;

pub fn diagnose(sources: &mut Sources, experiment: &Path, diagnostics: &mut Vec<Diagnostic>) {
    let Some(path) = site::site_file(experiment) else { return };
    let Err(error) = site::load(&path) else { return };
    let id = sources.add(Origin::File(path.clone()), path.display().to_string(), error.text.clone());
    let span = error.span.clone().unwrap_or(0..0);
    diagnostics.push(
        Diagnostic::error(
            codes::SITE_SETTINGS,
            Span::new(id, span.start, span.end.max(span.start)),
            format!("the site settings `{}` are invalid: {}", path.display(), error.message),
            "here",
        )
        .with_help(help(&error.message)),
    );
}

const KNOWN: &[&str] = &["partition", "gpus", "cpus", "mem", "time", "account", "qos", "sbatch_args", "setup", "poll_seconds", "overrides"];

fn help(message: &str) -> String {
    let unknown = message.strip_prefix("unknown field `").and_then(|rest| rest.split('`').next());
    let guess = unknown.and_then(|name| crate::diagnostic::did_you_mean(name, KNOWN.iter().copied()));
    guess.unwrap_or_else(|| {
        "the [slurm] table takes partition, gpus, cpus, mem, time, account, qos, sbatch_args, setup, poll_seconds and \
         [slurm.overrides.<category or stage>] tables of resources"
            .to_owned()
    })
}
