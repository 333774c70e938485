//! Slurm's client commands, run as processes: `sbatch --parsable` to submit, `squeue`/`scontrol`
//! to follow (never `sbatch --wait`, which polls at ever longer intervals), `scancel`, `sinfo`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A job's state as `squeue` and `scontrol` name it, with the node it ran on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobState {
    pub id: String,
    pub state: String,
    pub reason: String,
    pub nodes: String,
}

impl JobState {
    /// Still queued or running: a new front end attaches to it rather than submitting again.
    pub fn active(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "REQUEUED" | "RESIZING" | "SUSPENDED" | "STAGE_OUT" | "SIGNALING"
        )
    }
}

/// The program `name` on PATH, as the shell would find it.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn output(program: &str, args: &[String]) -> Result<String, String> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("`{program} {}` failed: {}", args.join(" "), stderr.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Submits a batch script; returns the job id.
pub fn sbatch(args: &[String], script: &Path) -> Result<String, String> {
    let mut all = vec!["--parsable".to_owned()];
    all.extend_from_slice(args);
    all.push(script.display().to_string());
    let text = output("sbatch", &all)?;
    // `--parsable` prints `id` or `id;cluster`.
    let id = text.trim().split(';').next().unwrap_or_default().to_owned();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("sbatch printed `{}` instead of a job id", text.trim()));
    }
    Ok(id)
}

/// The states of `ids`, finished ones included while the controller still remembers them
/// (`MinJobAge`); jobs it has forgotten are absent from the answer.
pub fn squeue(ids: &[String]) -> Result<Vec<JobState>, String> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let args =
        vec!["-h".to_owned(), "-t".to_owned(), "all".to_owned(), "-j".to_owned(), ids.join(","), "-o".to_owned(), "%i|%T|%r|%N".to_owned()];
    let text = match output("squeue", &args) {
        Ok(text) => text,
        // squeue refuses the whole query when one id is unknown to it; ask one at a time then.
        Err(_) if ids.len() > 1 => {
            let mut all = Vec::new();
            for id in ids {
                all.extend(squeue(std::slice::from_ref(id)).unwrap_or_default());
            }
            return Ok(all);
        }
        Err(e) if e.contains("Invalid job id") => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut parts = line.split('|');
            Some(JobState {
                id: parts.next()?.trim().to_owned(),
                state: parts.next()?.trim().to_owned(),
                reason: parts.next()?.trim().to_owned(),
                nodes: parts.next().unwrap_or_default().trim().to_owned(),
            })
        })
        .collect())
}

/// `scontrol show job` as key → value pairs (ExitCode, NodeList, Reason...), or None when the
/// controller no longer knows the job.
pub fn scontrol_job(id: &str) -> Option<std::collections::BTreeMap<String, String>> {
    let text = output("scontrol", &["-o".to_owned(), "show".to_owned(), "job".to_owned(), id.to_owned()]).ok()?;
    Some(text.split_whitespace().filter_map(|pair| pair.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
}

pub fn scancel(ids: &[String]) -> Result<(), String> {
    if ids.is_empty() {
        return Ok(());
    }
    output("scancel", ids).map(|_| ())
}

/// The partitions `sinfo` knows.
pub fn partitions() -> Result<Vec<String>, String> {
    let text = output("sinfo", &["-h".to_owned(), "-o".to_owned(), "%P".to_owned()])?;
    // The default partition carries a trailing `*`.
    Ok(text.lines().map(|l| l.trim().trim_end_matches('*').to_owned()).filter(|l| !l.is_empty()).collect())
}
