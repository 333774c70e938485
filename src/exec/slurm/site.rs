//! Site settings for the Slurm executor, in `lthlang.toml`: beside the experiment first, else in
//! the user's config folder (`$XDG_CONFIG_HOME/lthlang/lthlang.toml`, `~/.config/...` without
//! it). Partition names, account and module loads belong to a cluster, not to an experiment, so
//! the same `.lth` file runs unchanged on two clusters, each with its own file:
//!
//! ```toml
//! [slurm]
//! partition = "cpu"
//! account = "lab"
//! time = "30"
//! setup = ["module load cuda/12.4"]
//!
//! [slurm.overrides.train]      # a category, or a stage's name
//! partition = "gpu"
//! gpus = 1
//! time = "4:00:00"
//! ```

use super::settings::Settings;
use crate::check::Program;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const SITE_FILE: &str = "lthlang.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteFile {
    #[serde(default)]
    slurm: Settings,
}

/// The settings file that applies to `experiment`, if any.
pub fn site_file(experiment: &Path) -> Option<PathBuf> {
    let beside = experiment.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).join(SITE_FILE);
    if beside.is_file() {
        return Some(beside);
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("lthlang").join(SITE_FILE)).filter(|p| p.is_file())
}

/// A settings file's problem, with the byte range it concerns.
#[derive(Debug)]
pub struct SiteError {
    pub path: PathBuf,
    pub text: String,
    pub message: String,
    pub span: Option<std::ops::Range<usize>>,
}

impl std::fmt::Display for SiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = self
            .span
            .as_ref()
            .map(|s| {
                let before = &self.text[..s.start.min(self.text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(":{line}:{column}")
            })
            .unwrap_or_default();
        write!(f, "{}{at}: {}", self.path.display(), self.message)
    }
}

/// Reads and validates a settings file.
pub fn load(path: &Path) -> Result<Settings, SiteError> {
    let text = std::fs::read_to_string(path).map_err(|e| SiteError {
        path: path.to_path_buf(),
        text: String::new(),
        message: format!("cannot read: {e}"),
        span: None,
    })?;
    let parsed: SiteFile = toml::from_str(&text).map_err(|e| {
        let message = e.message().trim().to_owned();
        // With flattened tables toml places an unknown key's error on its whole table; the key
        // itself is the better place to point.
        let key = message.strip_prefix("unknown field `").and_then(|rest| rest.split('`').next());
        let span = key.and_then(|key| key_span(&text, key)).or_else(|| e.span());
        SiteError { path: path.to_path_buf(), text: text.clone(), message, span }
    })?;
    let settings = parsed.slurm;
    for resources in std::iter::once(&settings.defaults).chain(settings.overrides.values()) {
        for arg in &resources.sbatch_args {
            if let Some(flag) = super::settings::reserved(arg) {
                let span = text.find(&format!("\"{arg}\"")).map(|start| start..start + arg.len() + 2);
                return Err(SiteError {
                    path: path.to_path_buf(),
                    text: text.clone(),
                    message: format!("sbatch_args sets `{flag}`, which lthlang sets itself for every job"),
                    span,
                });
            }
        }
    }
    Ok(settings)
}

/// Where `key = ...` is written at the start of a line.
fn key_span(text: &str, key: &str) -> Option<std::ops::Range<usize>> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        let rest = &line[indent..];
        if rest.strip_prefix(key).is_some_and(|after| after.trim_start().starts_with('=')) {
            return Some(offset + indent..offset + indent + key.len());
        }
        offset += line.len();
    }
    None
}

/// The settings a run of `program` from `file` uses: the site file's, with the experiment's
/// `executor = slurm { ... }` fields over them.
pub fn settings_for(file: &Path, program: &Program) -> Result<Settings, String> {
    let site = match site_file(file) {
        Some(path) => load(&path).map_err(|e| e.to_string())?,
        None => Settings::default(),
    };
    Ok(match &program.experiment.executor {
        crate::check::Executor::Slurm(own) => site.under(own),
        crate::check::Executor::Local => site,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, SiteError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SITE_FILE);
        std::fs::write(&path, text).unwrap();
        load(&path)
    }

    #[test]
    fn a_site_file_sets_defaults_and_overrides() {
        let s = parse("[slurm]\npartition = \"cpu\"\naccount = \"lab\"\n[slurm.overrides.train]\npartition = \"gpu\"\ngpus = 1\n").unwrap();
        let train = s.for_stage(crate::kinds::Category::Train, "dense").flags();
        assert_eq!(train, vec!["--partition=gpu", "--gpus=1", "--account=lab"]);
    }

    #[test]
    fn unknown_keys_and_reserved_flags_point_into_the_file() {
        let e = parse("[slurm]\npartiton = \"cpu\"\n").unwrap_err();
        assert!(e.message.contains("partiton"), "{}", e.message);
        assert_eq!(e.span.clone().map(|s| &e.text[s]), Some("partiton"));
        assert!(e.to_string().contains("lthlang.toml:2:1:"), "{e}");
        let e = parse("[slurm]\nsbatch_args = [\"--output=x\"]\n").unwrap_err();
        assert_eq!(e.to_string().split(": ").nth(1), Some("sbatch_args sets `--output`, which lthlang sets itself for every job"));
        assert!(e.to_string().contains("lthlang.toml:2:"), "{e}");
    }
}
