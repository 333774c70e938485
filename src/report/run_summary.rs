//! How a run ended, told once at its end: lines on stderr for people, and the last event of
//! `run --json` for tools (described in the README under "Machine-readable output").

use crate::exec::run::{Outcome, Status};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Always `"summary"`: the event's tag in the `--json` stream.
    pub event: &'static str,
    /// `ok`, `failed` (some node failed) or `interrupted`.
    pub outcome: &'static str,
    /// The signal that interrupted the run (`SIGINT`, `SIGTERM`), if one did.
    pub signal: Option<&'static str>,
    /// The process's exit code.
    pub exit_code: u8,
    pub nodes: usize,
    pub computed: usize,
    pub cached: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Stopped mid-way or never started because of the signal.
    pub interrupted: usize,
    pub seconds: f64,
    /// The run folder, when this run wrote it (an interrupted run leaves the last one alone).
    pub run_folder: Option<PathBuf>,
    /// The HTML report, when this run wrote it.
    pub report: Option<PathBuf>,
    pub failures: Vec<Failure>,
    /// Nodes an interrupted run did not finish, in plan order.
    pub unfinished: Vec<Failure>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub id: String,
    pub message: String,
}

impl Summary {
    pub fn of(outcome: &Outcome, signal: Option<i32>, exit_code: u8, seconds: f64, run_folder: Option<PathBuf>) -> Summary {
        let count = |f: fn(&Status) -> bool| outcome.nodes.iter().filter(|n| f(&n.status)).count();
        let report_done = outcome.nodes.iter().any(|n| {
            matches!(n.status, Status::Computed | Status::Cached | Status::CachedByOther)
                && n.dir.as_ref().is_some_and(|d| d.join("report.html").is_file())
        });
        let report = run_folder.as_ref().map(|f| f.join("report.html")).filter(|r| report_done && r.is_file());
        let failures = outcome
            .nodes
            .iter()
            .filter_map(|n| match &n.status {
                Status::Failed { message } => Some(Failure { id: n.id.clone(), message: message.clone() }),
                _ => None,
            })
            .collect::<Vec<_>>();
        let unfinished = outcome
            .nodes
            .iter()
            .filter_map(|n| match &n.status {
                Status::Interrupted { detail } => Some(Failure { id: n.id.clone(), message: detail.clone() }),
                _ => None,
            })
            .collect::<Vec<_>>();
        Summary {
            event: "summary",
            outcome: if signal.is_some() {
                "interrupted"
            } else if failures.is_empty() {
                "ok"
            } else {
                "failed"
            },
            signal: signal.map(crate::exec::interrupt::signal_name),
            exit_code,
            nodes: outcome.nodes.len(),
            computed: count(|s| matches!(s, Status::Computed)),
            cached: count(|s| matches!(s, Status::Cached | Status::CachedByOther)),
            failed: failures.len(),
            skipped: count(|s| matches!(s, Status::Skipped { .. })),
            interrupted: unfinished.len(),
            seconds,
            run_folder,
            report,
            failures,
            unfinished,
        }
    }

    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The lines printed on stderr when a run ends.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(signal) = self.signal {
            let _ = write!(out, "interrupted by {signal}: ");
        }
        let _ = write!(out, "{} nodes: {} computed, {} cached", self.nodes, self.computed, self.cached);
        for (n, what) in [(self.failed, "failed"), (self.skipped, "skipped"), (self.interrupted, "not finished")] {
            if n > 0 {
                let _ = write!(out, ", {n} {what}");
            }
        }
        let _ = write!(out, " in {}", super::progress::seconds(self.seconds));
        for failure in &self.failures {
            let _ = write!(out, "\nfailed: `{}`: {}", failure.id, failure.message);
        }
        if !self.unfinished.is_empty() {
            let stopped: Vec<String> = self
                .unfinished
                .iter()
                .map(|u| if u.message == crate::exec::run::NOT_STARTED { u.id.clone() } else { format!("{} ({})", u.id, u.message) })
                .collect();
            let _ = write!(out, "\nnot finished: {}", stopped.join(", "));
            let _ = write!(out, "\nthe finished nodes are cached; run the same command again to go on");
        }
        match &self.run_folder {
            Some(folder) => {
                let _ = write!(out, "\nrun folder: {}", folder.display());
            }
            None if self.signal.is_some() => {
                let _ = write!(out, "\nthe run folder was left as the last complete run wrote it");
            }
            None => {}
        }
        if let Some(report) = &self.report {
            let _ = write!(out, "\nreport: {}", report.display());
        }
        out
    }
}
