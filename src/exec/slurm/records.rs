//! What the cache remembers about Slurm jobs, under `<cache>/slurm/`:
//!
//! - `requests/<key>.json` and `scripts/<key>.sh`: a job's request and batch script;
//! - `logs/<key>-<job>.log`: the job's output (its event lines), `logs/<key>.worker.log` the
//!   worker's stderr;
//! - `jobs/<key>.json`: the last job submitted for an entry, so any front end over this cache
//!   attaches to a job still queued or running instead of submitting the entry twice (a killed
//!   front end, or two experiments sharing nodes);
//! - `runs/<experiment>.json`: the jobs a run of the experiment submitted or attached to, for
//!   `lthlang status FILE` and `lthlang cancel FILE`.
//!
//! Records are written whole to a temporary name and renamed, so a reader never sees half of one.

use crate::cache::store::Store;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JobRecord {
    pub job: String,
    pub node: String,
    pub key: String,
    pub experiment: String,
    /// Seconds since the Unix epoch when sbatch returned.
    pub submitted: f64,
}

pub fn dir(store: &Store, sub: &str) -> PathBuf {
    store.root().join("slurm").join(sub)
}

pub fn request_path(store: &Store, key: &str) -> PathBuf {
    dir(store, "requests").join(format!("{key}.json"))
}

pub fn script_path(store: &Store, key: &str) -> PathBuf {
    dir(store, "scripts").join(format!("{key}.sh"))
}

/// The log sbatch is told to write (`%j` is the job id).
pub fn log_pattern(store: &Store, key: &str) -> PathBuf {
    dir(store, "logs").join(format!("{key}-%j.log"))
}

pub fn log_path(store: &Store, key: &str, job: &str) -> PathBuf {
    dir(store, "logs").join(format!("{key}-{job}.log"))
}

pub fn worker_log(store: &Store, key: &str) -> PathBuf {
    dir(store, "logs").join(format!("{key}.worker.log"))
}

pub fn prepare(store: &Store) -> io::Result<()> {
    for sub in ["requests", "scripts", "logs", "jobs", "runs", "probes"] {
        std::fs::create_dir_all(dir(store, sub))?;
    }
    Ok(())
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

pub fn job_of(store: &Store, key: &str) -> Option<JobRecord> {
    let text = std::fs::read_to_string(dir(store, "jobs").join(format!("{key}.json"))).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn record_job(store: &Store, record: &JobRecord) -> io::Result<()> {
    let text = serde_json::to_string_pretty(record).map_err(io::Error::other)?;
    write_atomic(&dir(store, "jobs").join(format!("{}.json", record.key)), text.as_bytes())
}

fn run_path(store: &Store, experiment: &str) -> PathBuf {
    let safe: String = experiment.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    dir(store, "runs").join(format!("{safe}.json"))
}

/// The jobs the last Slurm run of `experiment` submitted or attached to, in plan order.
pub fn run_jobs(store: &Store, experiment: &str) -> Vec<JobRecord> {
    std::fs::read_to_string(run_path(store, experiment)).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

pub fn record_run(store: &Store, experiment: &str, jobs: &[JobRecord]) -> io::Result<()> {
    let text = serde_json::to_string_pretty(jobs).map_err(io::Error::other)?;
    write_atomic(&run_path(store, experiment), text.as_bytes())
}

pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}
