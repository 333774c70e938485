//! The inside of a Slurm job: `lthlang slurm-job REQUEST` reads a request file the front end wrote
//! into the cache and computes that one node exactly as the local executor would (entry lock,
//! look again, staging folder, worker or in-process stage, checksummed commit). A job that finds
//! its entry already committed (by another run, or by a job an earlier front end submitted) exits
//! at once. Everything it has to say goes to stdout, one JSON run event per line, which Slurm
//! writes to the job's log and the front end reads back.

use crate::cache::store::Store;
use crate::cache::Fingerprint;
use crate::exec::job::NodeRequest;
use crate::exec::run::{Options, RunEvent, Runner, Status};
use crate::report::stage::Document;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Everything a job needs, so it never reads the experiment file (which may change meanwhile).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobFile {
    pub cache: PathBuf,
    pub request: NodeRequest,
    pub fingerprint: Fingerprint,
    pub worker: PathBuf,
    /// What report stages show besides artifacts; empty for other stages.
    pub document: Document,
}

/// A moment in the job's life, in seconds since the Unix epoch: `start` when the job began, and
/// `first_event` when the first event came back (the worker's libtorch is loaded, or an in-process
/// stage began), `end` when it is done. The front end ignores them; benches read them to measure per-job overhead.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Clock {
    pub clock: String,
    pub at: f64,
}

/// The line a job prints last, so the front end learns how it ended without asking Slurm.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobEnd {
    pub job_end: Status,
}

fn print(line: &impl Serialize) {
    if let Ok(text) = serde_json::to_string(line) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

/// Runs the job; the exit code is 0 when the entry is in the cache afterwards.
pub fn run(path: &Path) -> u8 {
    print(&Clock { clock: "start".to_owned(), at: super::records::now() });
    let file: JobFile =
        match std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string())) {
            Ok(file) => file,
            Err(e) => {
                eprintln!("lthlang: cannot read the request `{}`: {e}", path.display());
                return 1;
            }
        };
    let store = match Store::open(&file.cache) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("lthlang: cannot open the cache `{}`: {e}", file.cache.display());
            return 1;
        }
    };
    let key = file.fingerprint.key();
    let options = Options {
        force: Default::default(),
        worker: file.worker.clone(),
        log: Some(super::records::worker_log(&store, &key)),
        document: file.document.clone(),
        silence_limit: match super::super::worker::silence_limit() {
            Ok(limit) => limit,
            Err(message) => {
                eprintln!("lthlang: {message}");
                return 2;
            }
        },
        jobs: Some(1),
        smoke: None,
    };
    let mut first = true;
    let mut observe = |event: &RunEvent| {
        if first && !matches!(event, RunEvent::WorkerStarting) {
            first = false;
            print(&Clock { clock: "first_event".to_owned(), at: super::records::now() });
        }
        print(event);
    };
    let mut runner = Runner::detached(&store, &options, &mut observe);
    let status = runner.prepared(&file.request, &file.fingerprint);
    runner.finish();
    let code = match &status {
        Status::Failed { message } => {
            eprintln!("lthlang: `{}` failed: {message}", file.request.id);
            1
        }
        _ => 0,
    };
    print(&Clock { clock: "end".to_owned(), at: super::records::now() });
    print(&JobEnd { job_end: status });
    code
}
