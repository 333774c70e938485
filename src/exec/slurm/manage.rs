//! `lthlang status` and `lthlang cancel` for jobs that Slurm runs on an experiment's behalf.

use super::commands::{self, JobState};
use super::records::{self, JobRecord};
use crate::cache::store::Store;
use std::collections::HashMap;
use std::fmt::Write as _;

/// Every recorded run's jobs with their states now; empty when no Slurm run used this cache.
pub fn status(store: &Store) -> String {
    let Ok(dir) = std::fs::read_dir(records::dir(store, "runs")) else { return String::new() };
    let mut runs: Vec<(String, Vec<JobRecord>)> = dir
        .flatten()
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            let jobs: Vec<JobRecord> = serde_json::from_str(&text).ok()?;
            let experiment = jobs.first()?.experiment.clone();
            Some((experiment, jobs))
        })
        .collect();
    runs.sort_by(|a, b| a.0.cmp(&b.0));
    let ids: Vec<String> = runs.iter().flat_map(|(_, jobs)| jobs.iter().map(|j| j.job.clone())).collect();
    let states: Option<HashMap<String, JobState>> =
        commands::on_path("squeue").and_then(|_| commands::squeue(&ids).ok()).map(|s| s.into_iter().map(|s| (s.id.clone(), s)).collect());
    let mut out = String::new();
    for (experiment, jobs) in &runs {
        let active = jobs.iter().filter(|j| states.as_ref().and_then(|s| s.get(&j.job)).is_some_and(JobState::active)).count();
        let _ = writeln!(out, "\nSlurm jobs of `{experiment}` ({} jobs, {active} queued or running):", jobs.len());
        let width = jobs.iter().map(|j| j.node.len()).max().unwrap_or(4).max(4);
        let _ = writeln!(out, "  {:>8}  {:<width$}  {:<12}  node", "job", "node", "state");
        for job in jobs {
            let state = match &states {
                None => "unknown (no squeue)".to_owned(),
                Some(states) => match states.get(&job.job) {
                    Some(s) => s.state.clone(),
                    None if store.contains(&job.key) => "COMPLETED".to_owned(),
                    None => "gone".to_owned(),
                },
            };
            let host = states.as_ref().and_then(|s| s.get(&job.job)).map(|s| s.nodes.clone()).unwrap_or_default();
            let _ = writeln!(out, "  {:>8}  {:<width$}  {:<12}  {host}", job.job, job.node, state);
        }
    }
    out
}

/// Cancels the queued and running jobs of `experiment`'s last Slurm run; returns them.
pub fn cancel(store: &Store, experiment: &str) -> Result<Vec<JobRecord>, String> {
    let jobs = records::run_jobs(store, experiment);
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    if commands::on_path("scancel").is_none() {
        return Err("`scancel` is not on PATH".to_owned());
    }
    let ids: Vec<String> = jobs.iter().map(|j| j.job.clone()).collect();
    let live: Vec<String> = commands::squeue(&ids)?.into_iter().filter(JobState::active).map(|s| s.id).collect();
    commands::scancel(&live)?;
    Ok(jobs.into_iter().filter(|j| live.contains(&j.job)).collect())
}
