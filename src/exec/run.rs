//! The run loop: walks the plan in order; a node whose entry is in the cache is a hit; any other
//! node is computed by the worker while its entry's lock is held, then committed. A failed node's
//! dependents are skipped; everything else still runs.

use super::job::{stream_seed, Event, NodeRequest, Upstream};
use super::worker::{Reply, Worker};
use crate::cache::store::{Lookup, Store, TIMING_FILE};
use crate::cache::Fingerprint;
use crate::check::{Device, Program};
use crate::kinds::Category;
use crate::plan::{Node, Plan};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The detail of a node an interrupted run never started.
pub const NOT_STARTED: &str = "not started";

/// How a node ended in this run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Found in the cache.
    Cached,
    /// Computed by another run over the same cache while this one waited for its lock.
    CachedByOther,
    Computed,
    Failed {
        message: String,
    },
    /// Not attempted because an input failed.
    Skipped {
        because: String,
    },
    /// Stopped, or never started, because the run was interrupted (see interrupt.rs); a rerun
    /// picks it up, from its last finished epoch when it trains.
    Interrupted {
        detail: String,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeOutcome {
    pub id: String,
    pub key: String,
    #[serde(flatten)]
    pub status: Status,
    pub seconds: f64,
    /// The entry folder, when the node is in the cache.
    pub dir: Option<PathBuf>,
    pub metrics: Option<serde_json::Value>,
}

/// What the run loop tells whoever displays it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    Planned {
        total: usize,
        cached: usize,
    },
    /// The worker started (libtorch is loading).
    WorkerStarting,
    /// An event the worker sent, as it sent it.
    Worker {
        worker: Event,
    },
    NodeDone {
        index: usize,
        total: usize,
        outcome: NodeOutcome,
    },
    Warning {
        message: String,
    },
    /// A Slurm job changed state (submitted, attached to, pending, running, ended).
    Job {
        node: String,
        job: String,
        state: String,
        /// The Slurm node it runs or ran on, once known.
        host: Option<String>,
    },
}

pub struct Options {
    /// Stages to recompute (with their dependents) even when cached.
    pub force: BTreeSet<String>,
    /// The worker binary.
    pub worker: PathBuf,
    /// Where the worker's stderr is appended.
    pub log: Option<PathBuf>,
    /// What reports show besides artifacts: the source and every node's key.
    pub document: crate::report::stage::Document,
    /// How long a worker may go without sending an event before it is taken for hung, killed,
    /// and its node failed ([`super::worker::silence_limit`]).
    pub silence_limit: std::time::Duration,
    /// Nodes computed at once, each by its own worker; None picks one per GPU with `device =
    /// auto` on a machine with several, else 1.
    pub jobs: Option<usize>,
    /// `run --smoke N`: loops stop after N batches (the store is then the smoke namespace).
    pub smoke: Option<u32>,
}

pub struct Outcome {
    pub nodes: Vec<NodeOutcome>,
    pub worker_started: bool,
    /// The device the worker reported, when one started.
    pub device: Option<String>,
}

impl Outcome {
    pub fn failed(&self) -> Vec<&NodeOutcome> {
        self.nodes.iter().filter(|n| matches!(n.status, Status::Failed { .. })).collect()
    }

    pub fn skipped(&self) -> usize {
        self.nodes.iter().filter(|n| matches!(n.status, Status::Skipped { .. })).count()
    }

    pub fn interrupted(&self) -> Vec<&NodeOutcome> {
        self.nodes.iter().filter(|n| matches!(n.status, Status::Interrupted { .. })).collect()
    }
}

pub fn device_name(device: &Device) -> String {
    match device {
        Device::Auto => "auto".to_owned(),
        Device::Cpu => "cpu".to_owned(),
        Device::Cuda(i) => format!("cuda:{i}"),
    }
}

/// Nodes that must be recomputed because of `--force`: the forced stages' nodes, or forced single
/// nodes (`tickets[3]`, one round), and everything downstream of them.
pub fn forced_nodes(plan: &Plan, force: &BTreeSet<String>) -> BTreeSet<String> {
    let mut forced = BTreeSet::new();
    for node in &plan.nodes {
        if force.contains(&node.stage) || force.contains(&node.id) || node.inputs.iter().any(|i| forced.contains(i)) {
            forced.insert(node.id.clone());
        }
    }
    forced
}

/// The warnings a node gave when it was computed (a JSON list of strings), in its cache entry,
/// so a cached rerun repeats them and the report shows them. Absent when there were none.
pub const WARNINGS_FILE: &str = "warnings.json";

/// The warnings stored in a cache entry folder.
pub fn stored_warnings(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join(WARNINGS_FILE)).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Computes single nodes with one worker process, started on first need.
pub(crate) struct Runner<'a> {
    /// None in a Slurm job, which computes from a request file rather than from the program.
    program: Option<&'a Program>,
    store: &'a Store,
    options: &'a Options,
    nodes: HashMap<&'a str, &'a Node>,
    keys: HashMap<String, String>,
    worker: Option<Worker>,
    /// Environment the worker starts with (which GPU it sees, when several workers share a machine).
    worker_env: Vec<(String, String)>,
    pub(crate) worker_started: bool,
    pub(crate) device: Option<String>,
    /// The node whose failure showed the worker cannot run anything (its device is missing):
    /// later nodes that need the worker are skipped because of it instead of failing alike.
    unusable: Option<String>,
    observe: &'a mut dyn FnMut(&RunEvent),
}

impl<'a> Runner<'a> {
    pub(crate) fn new(
        program: &'a Program,
        plan: &'a Plan,
        keys: HashMap<String, String>,
        store: &'a Store,
        options: &'a Options,
        worker_env: Vec<(String, String)>,
        observe: &'a mut dyn FnMut(&RunEvent),
    ) -> Runner<'a> {
        Runner {
            program: Some(program),
            store,
            options,
            nodes: plan.nodes.iter().map(|n| (n.id.as_str(), n)).collect(),
            keys,
            worker: None,
            worker_env,
            worker_started: false,
            device: None,
            unusable: None,
            observe,
        }
    }

    /// A runner for requests built elsewhere (a Slurm job's request file).
    pub(crate) fn detached(store: &'a Store, options: &'a Options, observe: &'a mut dyn FnMut(&RunEvent)) -> Runner<'a> {
        Runner {
            program: None,
            store,
            options,
            nodes: HashMap::new(),
            keys: HashMap::new(),
            worker: None,
            worker_env: Vec::new(),
            worker_started: false,
            device: None,
            unusable: None,
            observe,
        }
    }

    /// Lets the worker finish its loop and waits for it.
    pub(crate) fn finish(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.finish();
        }
    }

    /// The node's status after looking in the cache and, when it is missing, computing it.
    pub(crate) fn node(&mut self, node: &Node, fingerprint: &Fingerprint, forced: bool) -> Status {
        self.resolve(Source::Node(node), fingerprint, forced)
    }

    /// Like `node`, for a request built by another process: its output folders are replaced by
    /// this cache's staging folders once the entry's lock is held.
    pub(crate) fn prepared(&mut self, request: &NodeRequest, fingerprint: &Fingerprint) -> Status {
        self.resolve(Source::Request(request), fingerprint, false)
    }

    fn resolve(&mut self, source: Source<'_>, fingerprint: &Fingerprint, forced: bool) -> Status {
        let key = fingerprint.key();
        if !forced {
            match self.store.lookup(&key) {
                Lookup::Valid(_) => {
                    self.repeat_warnings(source.id(), &key);
                    return Status::Cached;
                }
                Lookup::Corrupt(detail) => {
                    self.warn(format!("the cached entry of `{}` is corrupt ({detail}); discarding it and recomputing", source.id()))
                }
                Lookup::Missing => {}
            }
        }
        if super::interrupt::requested().is_some() {
            return Status::Interrupted { detail: NOT_STARTED.to_owned() };
        }
        let lock = match self.store.lock(&key) {
            Ok(lock) => lock,
            Err(e) => return Status::Failed { message: format!("cannot lock the cache entry: {e}") },
        };
        if !forced {
            // Another run may have computed it while we waited for the lock.
            match self.store.lookup(&key) {
                Lookup::Valid(_) => {
                    self.repeat_warnings(source.id(), &key);
                    return Status::CachedByOther;
                }
                Lookup::Corrupt(_) => {
                    if let Err(e) = self.store.discard(&key) {
                        return Status::Failed { message: format!("cannot discard the corrupt entry: {e}") };
                    }
                }
                Lookup::Missing => {}
            }
        }
        let status = self.compute(source, fingerprint, &key);
        drop(lock);
        status
    }

    fn warn(&mut self, message: String) {
        (self.observe)(&RunEvent::Warning { message });
    }

    /// A cached result's warnings still hold: its reader must hear them on every run.
    fn repeat_warnings(&mut self, id: &str, key: &str) {
        for message in stored_warnings(&self.store.entry_dir(key)) {
            self.warn(format!("`{}`: {message} (from the cached result)", id));
        }
    }

    fn compute(&mut self, source: Source<'_>, fingerprint: &Fingerprint, key: &str) -> Status {
        let staging = match self.store.stage(key) {
            Ok(dir) => dir,
            Err(e) => return Status::Failed { message: format!("cannot prepare a folder in the cache: {e}") },
        };
        let partial = self.store.partial_dir(key);
        if let Err(e) = std::fs::create_dir_all(&partial) {
            return Status::Failed { message: format!("cannot create `{}`: {e}", partial.display()) };
        }
        let built = match source {
            Source::Node(node) => self.request(node, fingerprint, &staging, &partial),
            Source::Request(request) => Ok(NodeRequest { output: staging.clone(), partial: partial.clone(), ..request.clone() }),
        };
        let request = match built {
            Ok(r) => r,
            Err(message) => return Status::Failed { message },
        };
        let started = Instant::now();
        if let Some(result) = self.in_process(&request) {
            return match result.and_then(|metrics| write_json(&staging.join("metrics.json"), &metrics)) {
                Ok(()) => self.seal(&staging, fingerprint, started, "front end", &[]),
                Err(message) => {
                    let _ = std::fs::remove_dir_all(&staging);
                    Status::Failed { message }
                }
            };
        }
        if let Some(root) = &self.unusable {
            let _ = std::fs::remove_dir_all(&staging);
            return Status::Skipped { because: format!("`{root}` failed") };
        }
        if self.worker.is_none() {
            (self.observe)(&RunEvent::WorkerStarting);
            match Worker::start_with(&self.options.worker, self.options.log.as_deref(), &self.worker_env) {
                Ok(w) => {
                    self.worker = Some(w);
                    self.worker_started = true;
                }
                Err(message) => return Status::Failed { message },
            }
        }
        let Some(worker) = self.worker.as_mut() else { return Status::Failed { message: "no worker".to_owned() } };
        if let Err(message) = worker.send(&request) {
            self.worker = None;
            return Status::Failed { message };
        }
        let mut warnings = Vec::new();
        loop {
            let reply = match self.worker.as_mut() {
                Some(w) => w.next_reply(self.options.silence_limit),
                None => return Status::Failed { message: "no worker".to_owned() },
            };
            match reply {
                Reply::Event(event) => match event {
                    Event::Finished { node: ref id, .. } if *id == request.id => {
                        (self.observe)(&RunEvent::Worker { worker: event });
                        let device = self.device.clone().unwrap_or_default();
                        return self.seal(&staging, fingerprint, started, &device, &warnings);
                    }
                    Event::Failed { node: ref id, ref message } if *id == request.id || id.is_empty() => {
                        let message = message.clone();
                        if id.is_empty() {
                            self.unusable = Some(request.id.clone());
                        }
                        (self.observe)(&RunEvent::Worker { worker: event });
                        let _ = std::fs::remove_dir_all(&staging);
                        if super::interrupt::requested().is_some() {
                            return Status::Interrupted { detail: message };
                        }
                        return Status::Failed { message };
                    }
                    Event::Ready { ref device, .. } => {
                        self.device = Some(device.clone());
                        (self.observe)(&RunEvent::Worker { worker: event });
                    }
                    Event::Warning { node: ref id, ref message } => {
                        warnings.push(message.clone());
                        self.warn(format!("`{id}`: {message}"));
                    }
                    other => (self.observe)(&RunEvent::Worker { worker: other }),
                },
                Reply::Exited(how) => {
                    self.worker = None;
                    let _ = std::fs::remove_dir_all(&staging);
                    if super::interrupt::requested().is_some() {
                        return Status::Interrupted { detail: how };
                    }
                    return Status::Failed { message: how };
                }
            }
        }
    }

    /// Stages that need no libtorch run in this process: comparisons (numbers read from other
    /// artifacts) and reports (renderings of them). None for stages that belong to the worker.
    fn in_process(&self, request: &NodeRequest) -> Option<Result<serde_json::Value, String>> {
        match request.category {
            Category::Compare => Some(crate::compare::run(request)),
            Category::Report => {
                Some(crate::report::stage::render(request, &self.options.document, &|key| self.store.entry_dir(key), &request.output))
            }
            _ => None,
        }
    }

    /// Records how long the node took (beside, not inside, its metrics: times differ between
    /// runs) and commits the staging folder.
    fn seal(&self, staging: &Path, fingerprint: &Fingerprint, started: Instant, device: &str, warnings: &[String]) -> Status {
        // A result computed on another device class than its key names would later be reused
        // as if it had been computed there (see `fingerprint::device_class`).
        if node_on_device(fingerprint)
            && !device.is_empty()
            && crate::cache::fingerprint::class_of_worker_device(device) != fingerprint.device
        {
            return Status::Failed {
                message: format!(
                    "computed on `{device}`, but its cache key is for the {} (`device = auto` saw {} GPU here); set `device = cpu` or `device = cuda` in the `experiment` block",
                    fingerprint.device.as_deref().unwrap_or("cpu"),
                    if fingerprint.device.is_some() { "a" } else { "no" }
                ),
            };
        }
        let timing = serde_json::json!({ "seconds": started.elapsed().as_secs_f64(), "device": device });
        if let Err(message) = write_json(&staging.join(TIMING_FILE), &timing) {
            return Status::Failed { message };
        }
        if !warnings.is_empty() {
            if let Err(message) = write_json(&staging.join(WARNINGS_FILE), &serde_json::json!(warnings)) {
                return Status::Failed { message };
            }
        }
        match self.store.commit(staging, fingerprint) {
            Ok(_) => Status::Computed,
            Err(e) => Status::Failed { message: format!("cannot commit the result to the cache: {e}") },
        }
    }

    /// The request for `node`: its fields, and every node upstream of it with its entry folder.
    pub(crate) fn request(&self, node: &Node, fingerprint: &Fingerprint, staging: &Path, partial: &Path) -> Result<NodeRequest, String> {
        let program = self.program.ok_or("no program to build the request from (an internal error)")?;
        let stage = program.stage(&node.stage).ok_or_else(|| format!("unknown stage `{}`", node.stage))?;
        let mut upstream = Vec::new();
        let mut seen = BTreeSet::new();
        let mut pending: Vec<&str> = node.inputs.iter().map(String::as_str).collect();
        while let Some(id) = pending.pop() {
            if !seen.insert(id) {
                continue;
            }
            let up = self.nodes.get(id).ok_or_else(|| format!("unknown input `{id}`"))?;
            let up_stage = program.stage(&up.stage).ok_or_else(|| format!("unknown stage `{}`", up.stage))?;
            let key = self.keys.get(id).cloned().unwrap_or_default();
            upstream.push(Upstream {
                id: id.to_owned(),
                stage: up.stage.clone(),
                category: up.kind,
                method: up.method.to_owned(),
                round: up.round,
                fields: up_stage.fields.iter().map(|(k, f)| (k.clone(), f.value.clone())).collect(),
                dir: self.store.entry_dir(&key),
            });
            pending.extend(up.inputs.iter().map(String::as_str));
        }
        // Round 0 of a ticket series is its dense checkpoint; stages mapped over the series read
        // it under the series' name, so it is listed under that name too.
        if node.round == Some(0) {
            for series in stage.inputs() {
                let Some(prune) = program.stage(&series).filter(|s| s.category == Category::Prune) else { continue };
                let Some(from) = prune.value("from").and_then(crate::check::Value::as_stage) else { continue };
                if let Some(dense) = upstream.iter().find(|u| u.stage == from).cloned() {
                    upstream.push(Upstream {
                        id: format!("{series}[0]"),
                        stage: series.clone(),
                        category: Category::Prune,
                        method: prune.method.name.to_owned(),
                        round: Some(0),
                        fields: prune.fields.iter().map(|(k, f)| (k.clone(), f.value.clone())).collect(),
                        dir: dense.dir,
                    });
                }
            }
        }
        upstream.sort_by(|a, b| a.id.cmp(&b.id));
        let seed0 = program.experiment.seeds.first().copied().unwrap_or(0);
        Ok(NodeRequest {
            id: node.id.clone(),
            stage: node.stage.clone(),
            category: node.kind,
            method: node.method.to_owned(),
            round: node.round,
            seed: fingerprint.seed.unwrap_or_else(|| {
                let stage_seed = stage.value("seed").and_then(crate::check::Value::as_int).unwrap_or(0);
                stream_seed(node.seed.unwrap_or(seed0), &node.stage, node.round, stage_seed)
            }),
            fields: stage.fields.iter().map(|(k, f)| (k.clone(), f.value.clone())).collect(),
            upstream,
            output: staging.to_path_buf(),
            partial: partial.to_path_buf(),
            device: device_name(&program.experiment.device),
            smoke: self.options.smoke,
        })
    }
}

/// What a runner computes: a node of its program, or a request another process built.
#[derive(Clone, Copy)]
enum Source<'r> {
    Node(&'r Node),
    Request(&'r NodeRequest),
}

impl Source<'_> {
    fn id(&self) -> &str {
        match self {
            Source::Node(node) => &node.id,
            Source::Request(request) => &request.id,
        }
    }
}

/// Whether the node's kind computes on the experiment's device (its key would name a GPU).
fn node_on_device(fingerprint: &Fingerprint) -> bool {
    !matches!(fingerprint.kind, Category::Dataset | Category::Model | Category::Compare | Category::Report)
}
