//! The Slurm executor: every node the cache lacks becomes one batch job, submitted in plan order
//! with `--dependency=afterok:` on the jobs of its inputs, so Slurm itself walks the graph. The
//! front end then follows the jobs (squeue, scontrol and the jobs' logs) and reports the same
//! events as the local executor, plus each job's id and state.
//!
//! - Cached nodes are not submitted; a node whose entry has a job still queued or running (from a
//!   killed front end, or another experiment over the same cache) is attached to, not resubmitted.
//! - A job computes its node with the same locked, checksummed commit as a local run, and exits at
//!   once when it finds its entry already there.
//! - A failed job's dependants are cancelled by Slurm (`--kill-on-invalid-dep=yes`) and reported
//!   as not run; a later run submits only what is still missing.
//! - Killing the front end leaves the jobs running; `lthlang status FILE` lists them and
//!   `lthlang cancel FILE` cancels them.

pub mod commands;
pub mod job;
pub mod manage;
pub mod preflight;
pub mod records;
pub mod settings;
pub mod site;

use super::run::{forced_nodes, NodeOutcome, Options, Outcome, RunEvent, Runner, Status};
use crate::cache::store::Store;
use crate::cache::Fingerprint;
use crate::check::Program;
use crate::plan::Plan;
use commands::JobState;
use records::JobRecord;
use settings::Settings;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, Seek as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Lines of a failed job's log shown with its failure.
const LOG_TAIL: usize = 12;

/// A node being computed by a job, as the follow loop sees it.
struct Followed {
    index: usize,
    job: String,
    key: String,
    /// The last state reported to the observer.
    state: String,
    /// How far into the log the events have been read.
    read: u64,
    /// When the job was first seen running (its node's seconds count from there).
    running: Option<Instant>,
    /// What the job's last line said about how it ended.
    end: Option<Status>,
}

/// Submits and follows the plan. Errors are configuration problems found before anything was
/// submitted (see `preflight`).
pub fn run(
    program: &Program,
    plan: &Plan,
    fingerprints: &[(String, Fingerprint)],
    store: &Store,
    options: &Options,
    settings: &Settings,
    observe: &mut dyn FnMut(&RunEvent),
) -> Result<Outcome, String> {
    preflight::check(store, settings)?;
    records::prepare(store).map_err(|e| format!("cannot prepare `{}`: {e}", records::dir(store, "").display()))?;
    let front_end = std::env::current_exe().map_err(|e| format!("cannot find the lthlang binary: {e}"))?;
    let forced = forced_nodes(plan, &options.force);
    let keys: Vec<String> = fingerprints.iter().map(|(_, fp)| fp.key()).collect();
    let by_id: HashMap<&str, &Fingerprint> = fingerprints.iter().map(|(id, fp)| (id.as_str(), fp)).collect();
    let total = plan.nodes.len();

    // A forced node's entry goes first, so its job does not find it and exit.
    for (i, node) in plan.nodes.iter().enumerate() {
        if forced.contains(&node.id) {
            store.discard(&keys[i]).map_err(|e| format!("cannot discard the entry of `{}`: {e}", node.id))?;
        }
    }
    // One front end submits at a time over a cache, so two runs sharing nodes never both submit
    // one: the second finds the first's job records and attaches.
    let _submitting = submission_lock(store)?;
    let cached: Vec<bool> = keys.iter().map(|k| store.contains(k)).collect();
    observe(&RunEvent::Planned { total, cached: cached.iter().filter(|c| **c).count() });

    // Attach to live jobs of earlier front ends: one squeue for all recorded ids.
    let recorded: Vec<Option<JobRecord>> =
        keys.iter().zip(&cached).map(|(k, c)| if *c { None } else { records::job_of(store, k) }).collect();
    let recorded_ids: Vec<String> = recorded.iter().flatten().map(|r| r.job.clone()).collect();
    let live: HashMap<String, JobState> =
        commands::squeue(&recorded_ids)?.into_iter().filter(JobState::active).map(|s| (s.id.clone(), s)).collect();

    let mut outcomes: Vec<Option<NodeOutcome>> = vec![None; total];
    let mut job_of_node: BTreeMap<usize, String> = BTreeMap::new();
    let mut followed: Vec<Followed> = Vec::new();
    let mut run_record: Vec<JobRecord> = Vec::new();
    let mut hits = Vec::new();
    // Request files are built by a runner that never starts a worker.
    let mut silent = |_: &RunEvent| {};
    let keys_by_id: HashMap<String, String> = plan.nodes.iter().map(|n| n.id.clone()).zip(keys.iter().cloned()).collect();
    let builder = Runner::new(program, plan, keys_by_id, store, options, Vec::new(), &mut silent);
    for (index, node) in plan.nodes.iter().enumerate() {
        let key = &keys[index];
        if cached[index] {
            hits.push(index);
            let outcome = outcome_of(store, node.id.clone(), key.clone(), Status::Cached, 0.0);
            observe(&RunEvent::NodeDone { index, total, outcome: outcome.clone() });
            outcomes[index] = Some(outcome);
            continue;
        }
        let fingerprint = by_id.get(node.id.as_str()).ok_or_else(|| format!("`{}` has no fingerprint (an internal error)", node.id))?;
        if let Some(record) = recorded[index].as_ref().filter(|r| live.contains_key(&r.job)) {
            observe(&RunEvent::Job { node: node.id.clone(), job: record.job.clone(), state: "ATTACHED".to_owned(), host: None });
            job_of_node.insert(index, record.job.clone());
            run_record.push(JobRecord { node: node.id.clone(), experiment: program.experiment.name.clone(), ..record.clone() });
            followed.push(Followed::new(index, record.job.clone(), key.clone()));
            continue;
        }
        let after: Vec<String> = plan.deps.inputs(index).into_iter().filter_map(|i| job_of_node.get(&i).cloned()).collect();
        let job = submit(store, settings, &builder, &front_end, options, node, fingerprint, key, &after)?;
        let record = JobRecord {
            job: job.clone(),
            node: node.id.clone(),
            key: key.clone(),
            experiment: program.experiment.name.clone(),
            submitted: records::now(),
        };
        records::record_job(store, &record).map_err(|e| format!("cannot record job {job} in the cache: {e}"))?;
        run_record.push(record);
        records::record_run(store, &program.experiment.name, &run_record)
            .map_err(|e| format!("cannot record the run in the cache: {e}"))?;
        // Announced only once recorded, so a front end killed right after has left the record.
        observe(&RunEvent::Job { node: node.id.clone(), job: job.clone(), state: "SUBMITTED".to_owned(), host: None });
        job_of_node.insert(index, job.clone());
        followed.push(Followed::new(index, job, key.clone()));
    }
    drop(builder);
    drop(_submitting);
    records::record_run(store, &program.experiment.name, &run_record).map_err(|e| format!("cannot record the run in the cache: {e}"))?;
    let hit_records: Vec<(&str, &Fingerprint)> =
        hits.iter().filter_map(|&i| by_id.get(plan.nodes[i].id.as_str()).map(|fp| (plan.nodes[i].id.as_str(), *fp))).collect();
    if let Err(e) = store.remember(&program.experiment.name, &hit_records) {
        observe(&RunEvent::Warning { message: format!("cannot record the run in the cache: {e}") });
    }

    follow(program, plan, store, settings, &by_id, &mut followed, &mut outcomes, observe);
    let nodes = outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            o.unwrap_or_else(|| {
                let status = Status::Failed { message: "the run stopped following this node's job (an internal error)".to_owned() };
                outcome_of(store, plan.nodes[i].id.clone(), keys[i].clone(), status, 0.0)
            })
        })
        .collect();
    Ok(Outcome { nodes, worker_started: false, device: None })
}

impl Followed {
    fn new(index: usize, job: String, key: String) -> Followed {
        Followed { index, job, key, state: String::new(), read: 0, running: None, end: None }
    }
}

fn outcome_of(store: &Store, id: String, key: String, status: Status, seconds: f64) -> NodeOutcome {
    let in_cache = matches!(status, Status::Cached | Status::CachedByOther | Status::Computed);
    let dir = in_cache.then(|| store.entry_dir(&key));
    let metrics =
        dir.as_ref().and_then(|d| std::fs::read_to_string(d.join("metrics.json")).ok()).and_then(|t| serde_json::from_str(&t).ok());
    NodeOutcome { id, key, status, seconds, dir, metrics }
}

fn submission_lock(store: &Store) -> Result<std::fs::File, String> {
    let path = records::dir(store, "submit.lock");
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
    file.lock().map_err(|e| format!("cannot lock `{}`: {e}", path.display()))?;
    Ok(file)
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Writes the node's request and batch script into the cache and submits it.
#[allow(clippy::too_many_arguments)] // one submission needs all of these; a struct would only rename them
fn submit(
    store: &Store,
    settings: &Settings,
    builder: &Runner<'_>,
    front_end: &Path,
    options: &Options,
    node: &crate::plan::Node,
    fingerprint: &Fingerprint,
    key: &str,
    after: &[String],
) -> Result<String, String> {
    // The job replaces both folders with its own staging folders once it holds the entry's lock.
    let request = builder.request(node, fingerprint, Path::new(""), Path::new(""))?;
    let document = if node.kind == crate::kinds::Category::Report { options.document.clone() } else { Default::default() };
    let file =
        job::JobFile { cache: absolute(store.root()), request, fingerprint: fingerprint.clone(), worker: options.worker.clone(), document };
    let request_path = records::request_path(store, key);
    let text = serde_json::to_string(&file).map_err(|e| e.to_string())?;
    records::write_atomic(&request_path, text.as_bytes()).map_err(|e| format!("cannot write `{}`: {e}", request_path.display()))?;
    let mut script = format!("#!/bin/sh\n# lthlang: node `{}` ({} {})\n", node.id, node.kind.name(), node.method);
    for line in &settings.setup {
        script.push_str(line);
        script.push('\n');
    }
    script.push_str(&format!(
        "exec {} slurm-job {}\n",
        quote(&front_end.display().to_string()),
        quote(&absolute(&request_path).display().to_string())
    ));
    let script_path = records::script_path(store, key);
    records::write_atomic(&script_path, script.as_bytes()).map_err(|e| format!("cannot write `{}`: {e}", script_path.display()))?;
    let mut args =
        vec![format!("--job-name=lth:{}", node.id), format!("--output={}", absolute(&records::log_pattern(store, key)).display())];
    if !after.is_empty() {
        args.push(format!("--dependency=afterok:{}", after.join(":")));
        // Per job, so a cluster without `kill_invalid_depend` also cancels dependants of a failure.
        args.push("--kill-on-invalid-dep=yes".to_owned());
    }
    args.extend(settings.for_stage(node.kind, &node.stage).flags());
    commands::sbatch(&args, &script_path).map_err(|e| format!("cannot submit `{}`: {e}", node.id))
}

pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Polls until every followed job has ended, reporting events from the logs and state changes.
#[allow(clippy::too_many_arguments)] // the run's whole state, passed once
fn follow(
    program: &Program,
    plan: &Plan,
    store: &Store,
    settings: &Settings,
    by_id: &HashMap<&str, &Fingerprint>,
    followed: &mut Vec<Followed>,
    outcomes: &mut [Option<NodeOutcome>],
    observe: &mut dyn FnMut(&RunEvent),
) {
    let total = plan.nodes.len();
    let poll = Duration::from_secs_f64(settings.poll_seconds.unwrap_or(1.0).max(0.1));
    let mut failed_root: BTreeMap<usize, usize> = BTreeMap::new();
    while !followed.is_empty() {
        let ids: Vec<String> = followed.iter().map(|f| f.job.clone()).collect();
        let states: HashMap<String, JobState> = match commands::squeue(&ids) {
            Ok(states) => states.into_iter().map(|s| (s.id.clone(), s)).collect(),
            Err(message) => {
                observe(&RunEvent::Warning { message: format!("cannot read the queue (retrying): {message}") });
                std::thread::sleep(poll);
                continue;
            }
        };
        let mut finished = Vec::new();
        for (slot, f) in followed.iter_mut().enumerate() {
            read_events(store, f, observe);
            // A job the controller has forgotten ended long ago: its entry tells whether it worked.
            let state = states.get(&f.job).cloned().unwrap_or_else(|| JobState {
                id: f.job.clone(),
                state: if store.contains(&f.key) { "COMPLETED" } else { "UNKNOWN" }.to_owned(),
                reason: String::new(),
                nodes: String::new(),
            });
            if state.state == "RUNNING" && f.running.is_none() {
                f.running = Some(Instant::now());
            }
            if state.state != f.state {
                f.state = state.state.clone();
                let host = (!state.nodes.is_empty() && state.nodes != "(null)").then(|| state.nodes.clone());
                observe(&RunEvent::Job { node: plan.nodes[f.index].id.clone(), job: f.job.clone(), state: state.state.clone(), host });
            }
            if !state.active() {
                finished.push((slot, state));
            }
        }
        for (slot, state) in finished.into_iter().rev() {
            let mut f = followed.remove(slot);
            read_events(store, &mut f, observe);
            let node = &plan.nodes[f.index];
            let status = ended(store, plan, &f, &state, &failed_root);
            match &status {
                Status::Failed { .. } => {
                    failed_root.insert(f.index, f.index);
                }
                Status::Skipped { .. } => {
                    let root = plan.deps.inputs(f.index).into_iter().find_map(|i| failed_root.get(&i).copied()).unwrap_or(f.index);
                    failed_root.insert(f.index, root);
                }
                _ => {
                    if let Some(fp) = by_id.get(node.id.as_str()) {
                        if let Err(e) = store.remember(&program.experiment.name, &[(node.id.as_str(), fp)]) {
                            observe(&RunEvent::Warning { message: format!("cannot record the run in the cache: {e}") });
                        }
                    }
                }
            }
            let seconds = f.running.map_or(0.0, |r| r.elapsed().as_secs_f64());
            let outcome = outcome_of(store, node.id.clone(), f.key.clone(), status, seconds);
            observe(&RunEvent::NodeDone { index: f.index, total, outcome: outcome.clone() });
            outcomes[f.index] = Some(outcome);
        }
        if !followed.is_empty() {
            std::thread::sleep(poll);
        }
    }
}

/// Forwards the event lines the job has written since the last look.
fn read_events(store: &Store, f: &mut Followed, observe: &mut dyn FnMut(&RunEvent)) {
    let path = records::log_path(store, &f.key, &f.job);
    let Ok(mut file) = std::fs::File::open(&path) else { return };
    if file.seek(std::io::SeekFrom::Start(f.read)).is_err() {
        return;
    }
    let mut reader = std::io::BufReader::new(file);
    let mut line = String::new();
    // Only whole lines: a line still being written is read on the next look.
    while let Ok(n) = reader.read_line(&mut line) {
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        f.read += n as u64;
        if let Ok(end) = serde_json::from_str::<job::JobEnd>(&line) {
            f.end = Some(end.job_end);
        } else if let Ok(event) = serde_json::from_str::<RunEvent>(&line) {
            if matches!(event, RunEvent::Worker { .. } | RunEvent::Warning { .. } | RunEvent::WorkerStarting) {
                observe(&event);
            }
        }
        line.clear();
    }
}

/// How a node ended, from its job's final state.
fn ended(store: &Store, plan: &Plan, f: &Followed, state: &JobState, failed_root: &BTreeMap<usize, usize>) -> Status {
    let node = &plan.nodes[f.index];
    if state.state == "COMPLETED" && store.contains(&f.key) {
        return match &f.end {
            Some(Status::Cached | Status::CachedByOther) => Status::CachedByOther,
            _ => Status::Computed,
        };
    }
    let input_failed = plan.deps.inputs(f.index).into_iter().any(|i| failed_root.contains_key(&i));
    if state.state == "CANCELLED" && (state.reason.contains("Dependency") || input_failed) {
        let root = plan.deps.inputs(f.index).into_iter().find_map(|i| failed_root.get(&i).copied());
        let because = match root {
            Some(root) => format!("`{}` failed", plan.nodes[root].id),
            None => format!("job {} was cancelled because a job it depends on failed", f.job),
        };
        return Status::Skipped { because };
    }
    let info = commands::scontrol_job(&f.job).unwrap_or_default();
    let host = info.get("NodeList").cloned().filter(|n| n != "(null)").or_else(|| (!state.nodes.is_empty()).then(|| state.nodes.clone()));
    let exit = info.get("ExitCode").cloned().unwrap_or_else(|| "unknown".to_owned());
    let log = records::log_path(store, &f.key, &f.job);
    let tail = log_tail(&log, LOG_TAIL);
    let what = match &f.end {
        Some(Status::Failed { message }) => message.clone(),
        _ if state.state == "COMPLETED" => "the job ended without committing the entry".to_owned(),
        _ => format!("the job ended {}", state.state),
    };
    Status::Failed {
        message: format!(
            "{what} (Slurm job {} of `{}` on {}, exit code {exit}; log {}){}",
            f.job,
            node.id,
            host.unwrap_or_else(|| "no node".to_owned()),
            log.display(),
            if tail.is_empty() { String::new() } else { format!("\n  log tail:\n    {}", tail.join("\n    ")) }
        ),
    }
}

/// The last `n` lines of a job's log that are not event lines (errors, tracebacks), or the last
/// event lines when nothing else was written.
pub fn log_tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let plain: Vec<&str> = lines.iter().copied().filter(|l| !l.starts_with('{')).collect();
    let chosen = if plain.is_empty() { &lines } else { &plain };
    chosen[chosen.len().saturating_sub(n)..].iter().map(|l| (*l).to_owned()).collect()
}
