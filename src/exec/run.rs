//! The run loop: walks the plan in order; a node whose entry is in the cache is a hit; any other
//! node is computed by the worker while its entry's lock is held, then committed. A failed node's
//! dependents are skipped; everything else still runs.

use super::job::{stream_seed, Event, NodeRequest, Upstream};
use super::worker::{Reply, Worker};
use crate::cache::store::{Lookup, Store};
use crate::cache::Fingerprint;
use crate::check::{Device, Program};
use crate::kinds::Category;
use crate::plan::{Node, Plan};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How a node ended in this run.
#[derive(Clone, Debug, PartialEq, Serialize)]
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
}

#[derive(Clone, Debug, Serialize)]
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
#[derive(Clone, Debug, Serialize)]
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
}

pub fn device_name(device: &Device) -> String {
    match device {
        Device::Auto => "auto".to_owned(),
        Device::Cpu => "cpu".to_owned(),
        Device::Cuda(i) => format!("cuda:{i}"),
    }
}

/// Nodes that must be recomputed because of `--force`: the forced stages' nodes and everything
/// downstream of them.
pub fn forced_nodes(plan: &Plan, force: &BTreeSet<String>) -> BTreeSet<String> {
    let mut forced = BTreeSet::new();
    for node in &plan.nodes {
        if force.contains(&node.stage) || node.inputs.iter().any(|i| forced.contains(i)) {
            forced.insert(node.id.clone());
        }
    }
    forced
}

/// How long a node took when it was computed, in its cache entry.
pub const TIMING_FILE: &str = "timing.json";

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

struct Runner<'a> {
    program: &'a Program,
    store: &'a Store,
    options: &'a Options,
    nodes: HashMap<&'a str, &'a Node>,
    keys: HashMap<String, String>,
    worker: Option<Worker>,
    worker_started: bool,
    device: Option<String>,
    observe: &'a mut dyn FnMut(&RunEvent),
}

pub fn run(
    program: &Program,
    plan: &Plan,
    fingerprints: &[(String, Fingerprint)],
    store: &Store,
    options: &Options,
    observe: &mut dyn FnMut(&RunEvent),
) -> Outcome {
    let forced = forced_nodes(plan, &options.force);
    let keys: HashMap<String, String> = fingerprints.iter().map(|(id, fp)| (id.clone(), fp.key())).collect();
    let by_id: HashMap<&str, &Fingerprint> = fingerprints.iter().map(|(id, fp)| (id.as_str(), fp)).collect();
    let cached = plan.nodes.iter().filter(|n| !forced.contains(&n.id) && keys.get(&n.id).is_some_and(|k| store.contains(k))).count();
    observe(&RunEvent::Planned { total: plan.nodes.len(), cached });
    let mut runner = Runner {
        program,
        store,
        options,
        nodes: plan.nodes.iter().map(|n| (n.id.as_str(), n)).collect(),
        keys,
        worker: None,
        worker_started: false,
        device: None,
        observe,
    };
    let mut outcomes: Vec<NodeOutcome> = Vec::with_capacity(plan.nodes.len());
    let mut broken: BTreeMap<String, String> = BTreeMap::new();
    let mut hits: Vec<(&str, &Fingerprint)> = Vec::new();
    let total = plan.nodes.len();
    for (index, node) in plan.nodes.iter().enumerate() {
        let key = runner.keys.get(&node.id).cloned().unwrap_or_default();
        let started = Instant::now();
        let status = match node.inputs.iter().find_map(|i| broken.get(i)) {
            Some(root) => Status::Skipped { because: format!("`{root}` failed") },
            None => match by_id.get(node.id.as_str()) {
                Some(fp) => runner.node(node, fp, forced.contains(&node.id)),
                None => Status::Failed { message: "the node has no fingerprint (an internal error)".to_owned() },
            },
        };
        match &status {
            Status::Failed { .. } => {
                broken.insert(node.id.clone(), node.id.clone());
            }
            Status::Skipped { .. } => {
                let root = node.inputs.iter().find_map(|i| broken.get(i)).cloned().unwrap_or_default();
                broken.insert(node.id.clone(), root);
            }
            // A computed node is recorded at once, so a killed run still explains itself; cache
            // hits are recorded together at the end, sparing every hit a read and write.
            Status::Computed => {
                if let Some(fp) = by_id.get(node.id.as_str()) {
                    if let Err(e) = store.remember(&program.experiment.name, &[(node.id.as_str(), fp)]) {
                        (runner.observe)(&RunEvent::Warning { message: format!("cannot record the run in the cache: {e}") });
                    }
                }
            }
            Status::Cached | Status::CachedByOther => {
                if let Some(fp) = by_id.get(node.id.as_str()) {
                    hits.push((node.id.as_str(), *fp));
                }
            }
        }
        let in_cache = matches!(status, Status::Cached | Status::CachedByOther | Status::Computed);
        let dir = in_cache.then(|| store.entry_dir(&key));
        let metrics =
            dir.as_ref().and_then(|d| std::fs::read_to_string(d.join("metrics.json")).ok()).and_then(|t| serde_json::from_str(&t).ok());
        let outcome = NodeOutcome { id: node.id.clone(), key, status, seconds: started.elapsed().as_secs_f64(), dir, metrics };
        (runner.observe)(&RunEvent::NodeDone { index, total, outcome: outcome.clone() });
        outcomes.push(outcome);
    }
    if let Err(e) = store.remember(&program.experiment.name, &hits) {
        (runner.observe)(&RunEvent::Warning { message: format!("cannot record the run in the cache: {e}") });
    }
    if let Some(worker) = runner.worker.take() {
        worker.finish();
    }
    Outcome { nodes: outcomes, worker_started: runner.worker_started, device: runner.device }
}

impl Runner<'_> {
    fn node(&mut self, node: &Node, fingerprint: &Fingerprint, forced: bool) -> Status {
        let key = fingerprint.key();
        if !forced {
            match self.store.lookup(&key) {
                Lookup::Valid(_) => return Status::Cached,
                Lookup::Corrupt(detail) => {
                    self.warn(format!("the cached entry of `{}` is corrupt ({detail}); discarding it and recomputing", node.id))
                }
                Lookup::Missing => {}
            }
        }
        let lock = match self.store.lock(&key) {
            Ok(lock) => lock,
            Err(e) => return Status::Failed { message: format!("cannot lock the cache entry: {e}") },
        };
        if !forced {
            // Another run may have computed it while we waited for the lock.
            match self.store.lookup(&key) {
                Lookup::Valid(_) => return Status::CachedByOther,
                Lookup::Corrupt(_) => {
                    if let Err(e) = self.store.discard(&key) {
                        return Status::Failed { message: format!("cannot discard the corrupt entry: {e}") };
                    }
                }
                Lookup::Missing => {}
            }
        }
        let status = self.compute(node, fingerprint, &key);
        drop(lock);
        status
    }

    fn warn(&mut self, message: String) {
        (self.observe)(&RunEvent::Warning { message });
    }

    fn compute(&mut self, node: &Node, fingerprint: &Fingerprint, key: &str) -> Status {
        let staging = match self.store.stage(key) {
            Ok(dir) => dir,
            Err(e) => return Status::Failed { message: format!("cannot prepare a folder in the cache: {e}") },
        };
        let partial = self.store.partial_dir(key);
        if let Err(e) = std::fs::create_dir_all(&partial) {
            return Status::Failed { message: format!("cannot create `{}`: {e}", partial.display()) };
        }
        let request = match self.request(node, fingerprint, &staging, &partial) {
            Ok(r) => r,
            Err(message) => return Status::Failed { message },
        };
        let started = Instant::now();
        if let Some(result) = self.in_process(&request) {
            return match result.and_then(|metrics| write_json(&staging.join("metrics.json"), &metrics)) {
                Ok(()) => self.seal(&staging, fingerprint, started, "front end"),
                Err(message) => {
                    let _ = std::fs::remove_dir_all(&staging);
                    Status::Failed { message }
                }
            };
        }
        if self.worker.is_none() {
            (self.observe)(&RunEvent::WorkerStarting);
            match Worker::start(&self.options.worker, self.options.log.as_deref()) {
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
        loop {
            let reply = match self.worker.as_mut() {
                Some(w) => w.next(),
                None => return Status::Failed { message: "no worker".to_owned() },
            };
            match reply {
                Reply::Event(event) => match event {
                    Event::Finished { node: ref id, .. } if *id == node.id => {
                        (self.observe)(&RunEvent::Worker { worker: event });
                        let device = self.device.clone().unwrap_or_default();
                        return self.seal(&staging, fingerprint, started, &device);
                    }
                    Event::Failed { node: ref id, ref message } if *id == node.id || id.is_empty() => {
                        let message = message.clone();
                        (self.observe)(&RunEvent::Worker { worker: event });
                        let _ = std::fs::remove_dir_all(&staging);
                        return Status::Failed { message };
                    }
                    Event::Ready { ref device, .. } => {
                        self.device = Some(device.clone());
                        (self.observe)(&RunEvent::Worker { worker: event });
                    }
                    Event::Warning { node: ref id, ref message } => self.warn(format!("`{id}`: {message}")),
                    other => (self.observe)(&RunEvent::Worker { worker: other }),
                },
                Reply::Exited(how) => {
                    self.worker = None;
                    let _ = std::fs::remove_dir_all(&staging);
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
    fn seal(&self, staging: &Path, fingerprint: &Fingerprint, started: Instant, device: &str) -> Status {
        let timing = serde_json::json!({ "seconds": started.elapsed().as_secs_f64(), "device": device });
        if let Err(message) = write_json(&staging.join(TIMING_FILE), &timing) {
            return Status::Failed { message };
        }
        match self.store.commit(staging, fingerprint) {
            Ok(_) => Status::Computed,
            Err(e) => Status::Failed { message: format!("cannot commit the result to the cache: {e}") },
        }
    }

    /// The request for `node`: its fields, and every node upstream of it with its entry folder.
    fn request(&self, node: &Node, fingerprint: &Fingerprint, staging: &Path, partial: &Path) -> Result<NodeRequest, String> {
        let stage = self.program.stage(&node.stage).ok_or_else(|| format!("unknown stage `{}`", node.stage))?;
        let mut upstream = Vec::new();
        let mut seen = BTreeSet::new();
        let mut pending: Vec<&str> = node.inputs.iter().map(String::as_str).collect();
        while let Some(id) = pending.pop() {
            if !seen.insert(id) {
                continue;
            }
            let up = self.nodes.get(id).ok_or_else(|| format!("unknown input `{id}`"))?;
            let up_stage = self.program.stage(&up.stage).ok_or_else(|| format!("unknown stage `{}`", up.stage))?;
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
                let Some(prune) = self.program.stage(&series).filter(|s| s.category == Category::Prune) else { continue };
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
        let seed0 = self.program.experiment.seeds.first().copied().unwrap_or(0);
        Ok(NodeRequest {
            id: node.id.clone(),
            stage: node.stage.clone(),
            category: node.kind,
            method: node.method.to_owned(),
            round: node.round,
            seed: fingerprint.seed.unwrap_or_else(|| stream_seed(node.seed.unwrap_or(seed0), &node.stage, node.round)),
            fields: stage.fields.iter().map(|(k, f)| (k.clone(), f.value.clone())).collect(),
            upstream,
            output: staging.to_path_buf(),
            partial: partial.to_path_buf(),
            device: device_name(&self.program.experiment.device),
            smoke: self.options.smoke,
        })
    }
}
