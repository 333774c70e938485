//! What a Slurm job asks for: partition, GPUs, CPUs, memory and time limit, with overrides per
//! stage category (`train`) or per stage name (`dense`), the stage's winning over the category's;
//! `account` and `qos` pass through, and `sbatch_args` carries anything else, except the flags
//! lthlang sets itself.

use crate::kinds::Category;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One set of resources; every field optional so overrides only name what they change.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub partition: Option<String>,
    pub gpus: Option<u32>,
    pub cpus: Option<u32>,
    /// In sbatch's notation: `4G`, `500M`.
    pub mem: Option<String>,
    /// In sbatch's notation: `30`, `2:00:00`, `1-00:00:00`.
    pub time: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    #[serde(default)]
    pub sbatch_args: Vec<String>,
}

impl Resources {
    /// `self` with `other`'s fields laid over it.
    pub fn under(&self, other: &Resources) -> Resources {
        Resources {
            partition: other.partition.clone().or_else(|| self.partition.clone()),
            gpus: other.gpus.or(self.gpus),
            cpus: other.cpus.or(self.cpus),
            mem: other.mem.clone().or_else(|| self.mem.clone()),
            time: other.time.clone().or_else(|| self.time.clone()),
            account: other.account.clone().or_else(|| self.account.clone()),
            qos: other.qos.clone().or_else(|| self.qos.clone()),
            sbatch_args: self.sbatch_args.iter().chain(&other.sbatch_args).cloned().collect(),
        }
    }

    /// The sbatch flags for these resources.
    pub fn flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(p) = &self.partition {
            out.push(format!("--partition={p}"));
        }
        if let Some(g) = self.gpus.filter(|g| *g > 0) {
            out.push(format!("--gpus={g}"));
        }
        if let Some(c) = self.cpus {
            out.push(format!("--cpus-per-task={c}"));
        }
        if let Some(m) = &self.mem {
            out.push(format!("--mem={m}"));
        }
        if let Some(t) = &self.time {
            out.push(format!("--time={t}"));
        }
        if let Some(a) = &self.account {
            out.push(format!("--account={a}"));
        }
        if let Some(q) = &self.qos {
            out.push(format!("--qos={q}"));
        }
        out.extend(self.sbatch_args.iter().cloned());
        out
    }
}

/// Flags lthlang passes itself; `sbatch_args` naming one would break following or dependencies.
pub const RESERVED_FLAGS: &[&str] =
    &["--parsable", "--dependency", "-d", "--output", "-o", "--error", "-e", "--job-name", "-J", "--wait", "-W", "--array", "-a", "--wrap"];

/// The reserved flag an `sbatch_args` entry sets, if any (`--output=x`, `-o x` and `-ox` alike).
pub fn reserved(arg: &str) -> Option<&'static str> {
    let name = arg.split('=').next().unwrap_or(arg);
    RESERVED_FLAGS
        .iter()
        .copied()
        .find(|flag| name == *flag || (flag.len() == 2 && !flag.starts_with("--") && name.starts_with(flag) && !name.starts_with("--")))
}

/// Site settings plus the experiment's own: the defaults, then overrides by category and stage.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(flatten)]
    pub defaults: Resources,
    /// Shell lines run before the job's command (`module load cuda/12.4`).
    #[serde(default)]
    pub setup: Vec<String>,
    /// Overrides per category (`train`, `explain`, ...) or per stage name.
    #[serde(default)]
    pub overrides: BTreeMap<String, Resources>,
    /// Seconds between two looks at the queue.
    pub poll_seconds: Option<f64>,
}

impl Settings {
    /// `self` (a site's settings) with `other` (an experiment's) laid over it.
    pub fn under(&self, other: &Settings) -> Settings {
        let mut overrides = self.overrides.clone();
        for (name, resources) in &other.overrides {
            let merged = overrides.get(name).map_or_else(|| resources.clone(), |base| base.under(resources));
            overrides.insert(name.clone(), merged);
        }
        Settings {
            defaults: self.defaults.under(&other.defaults),
            setup: self.setup.iter().chain(&other.setup).cloned().collect(),
            overrides,
            poll_seconds: other.poll_seconds.or(self.poll_seconds),
        }
    }

    pub fn for_stage(&self, category: Category, stage: &str) -> Resources {
        let mut out = self.defaults.clone();
        if let Some(by_category) = self.overrides.get(category.name()) {
            out = out.under(by_category);
        }
        if let Some(by_stage) = self.overrides.get(stage) {
            out = out.under(by_stage);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_flags_are_found_in_every_spelling() {
        assert_eq!(reserved("--output=/tmp/x"), Some("--output"));
        assert_eq!(reserved("-o"), Some("-o"));
        assert_eq!(reserved("-ofile"), Some("-o"));
        assert_eq!(reserved("--dependency=afterok:1"), Some("--dependency"));
        assert_eq!(reserved("--constraint=a100"), None);
        assert_eq!(reserved("--exclusive"), None);
    }

    #[test]
    fn stage_overrides_win_over_category_overrides() {
        let mut settings = Settings {
            defaults: Resources { partition: Some("cpu".into()), time: Some("10".into()), ..Resources::default() },
            ..Settings::default()
        };
        settings.overrides.insert("train".into(), Resources { partition: Some("gpu".into()), gpus: Some(1), ..Resources::default() });
        settings.overrides.insert("dense".into(), Resources { time: Some("2:00:00".into()), ..Resources::default() });
        let r = settings.for_stage(Category::Train, "dense");
        assert_eq!(r.flags(), vec!["--partition=gpu", "--gpus=1", "--time=2:00:00"]);
        let r = settings.for_stage(Category::Explain, "head");
        assert_eq!(r.flags(), vec!["--partition=cpu", "--time=10"]);
    }
}
