//! The local executor: a ready queue over the plan's graph, drained by `jobs` worker threads,
//! each with its own worker process. A node becomes ready when all its inputs are in the cache;
//! among ready nodes the lowest plan index goes first, so `--jobs 1` computes in plan order, as
//! the sequential loop always did. A failed node's dependants are skipped; everything else runs.
//!
//! Results do not depend on the number of jobs: every node reads only its inputs' committed
//! entries and its own seed stream, and each worker keeps the thread count it always had (one
//! libtorch thread per core), because libtorch's reductions may round differently with another
//! count. Two workers on one CPU therefore share its cores; `--jobs` pays off with several GPUs,
//! or when nodes wait on I/O.

use super::run::{forced_nodes, NodeOutcome, Options, Outcome, RunEvent, Runner, Status};
use crate::cache::store::Store;
use crate::cache::Fingerprint;
use crate::check::{Device, Program};
use crate::plan::Plan;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::mpsc;
use std::time::Instant;

/// What a worker thread tells the scheduler.
enum Message {
    Event(RunEvent),
    Done { slot: usize, index: usize, status: Status, seconds: f64 },
    Closed { worker_started: bool, device: Option<String> },
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
    let slots = worker_slots(options.jobs, &program.experiment.device, plan.nodes.len());
    let total = plan.nodes.len();
    let mut outcomes: Vec<Option<NodeOutcome>> = vec![None; total];
    let mut worker_started = false;
    let mut device = None;
    std::thread::scope(|scope| {
        let (to_scheduler, inbox) = mpsc::channel::<Message>();
        let mut assign = Vec::new();
        for (slot, env) in slots.into_iter().enumerate() {
            let (give, take) = mpsc::channel::<usize>();
            assign.push(give);
            let to_scheduler = to_scheduler.clone();
            let (keys, by_id, forced) = (keys.clone(), &by_id, &forced);
            scope.spawn(move || {
                let events = to_scheduler.clone();
                let mut forward = move |event: &RunEvent| {
                    let _ = events.send(Message::Event(event.clone()));
                };
                let mut runner = Runner::new(program, plan, keys, store, options, env, &mut forward);
                for index in take {
                    let node = &plan.nodes[index];
                    let started = Instant::now();
                    let status = match by_id.get(node.id.as_str()) {
                        Some(fp) => runner.node(node, fp, forced.contains(&node.id)),
                        None => Status::Failed { message: "the node has no fingerprint (an internal error)".to_owned() },
                    };
                    let seconds = started.elapsed().as_secs_f64();
                    if to_scheduler.send(Message::Done { slot, index, status, seconds }).is_err() {
                        break;
                    }
                }
                runner.finish();
                let _ = to_scheduler.send(Message::Closed { worker_started: runner.worker_started, device: runner.device.clone() });
            });
        }
        drop(to_scheduler);

        let mut waiting: Vec<usize> = (0..total).map(|i| plan.deps.inputs(i).len()).collect();
        let mut ready: BinaryHeap<Reverse<usize>> = (0..total).filter(|&i| waiting[i] == 0).map(Reverse).collect();
        let mut idle: Vec<usize> = (0..assign.len()).rev().collect();
        // Failed nodes and the skipped nodes below them, each mapped to the failure at its root.
        let mut broken: BTreeMap<usize, usize> = BTreeMap::new();
        let mut hits: Vec<(&str, &Fingerprint)> = Vec::new();
        let mut done = 0;
        let mut finish = |index: usize,
                          status: Status,
                          seconds: f64,
                          observe: &mut dyn FnMut(&RunEvent),
                          broken: &mut BTreeMap<usize, usize>,
                          ready: &mut BinaryHeap<Reverse<usize>>| {
            let node = &plan.nodes[index];
            let key = keys.get(&node.id).cloned().unwrap_or_default();
            match &status {
                Status::Failed { .. } => {
                    broken.insert(index, index);
                }
                Status::Skipped { .. } => {
                    let root = plan.deps.inputs(index).into_iter().find_map(|i| broken.get(&i).copied()).unwrap_or(index);
                    broken.insert(index, root);
                }
                // A computed node is recorded at once, so a killed run still explains itself;
                // cache hits are recorded together at the end, sparing every hit a read and write.
                Status::Computed => {
                    if let Some(fp) = by_id.get(node.id.as_str()) {
                        if let Err(e) = store.remember(&program.experiment.name, &[(node.id.as_str(), fp)]) {
                            observe(&RunEvent::Warning { message: format!("cannot record the run in the cache: {e}") });
                        }
                    }
                }
                Status::Cached | Status::CachedByOther => {
                    if let Some(fp) = by_id.get(node.id.as_str()) {
                        hits.push((node.id.as_str(), *fp));
                    }
                }
                // Not broken: its dependants are "not started" too, or found in the cache.
                Status::Interrupted { .. } => {}
            }
            let in_cache = matches!(status, Status::Cached | Status::CachedByOther | Status::Computed);
            let dir = in_cache.then(|| store.entry_dir(&key));
            let metrics =
                dir.as_ref().and_then(|d| std::fs::read_to_string(d.join("metrics.json")).ok()).and_then(|t| serde_json::from_str(&t).ok());
            let outcome = NodeOutcome { id: node.id.clone(), key, status, seconds, dir, metrics };
            observe(&RunEvent::NodeDone { index, total, outcome: outcome.clone() });
            outcomes[index] = Some(outcome);
            for reader in plan.deps.readers(index) {
                waiting[reader] -= 1;
                if waiting[reader] == 0 {
                    ready.push(Reverse(reader));
                }
            }
        };
        while done < total {
            while let Some(&slot) = idle.last() {
                let Some(Reverse(index)) = ready.pop() else { break };
                let failed_input = plan.deps.inputs(index).into_iter().find_map(|i| broken.get(&i).copied());
                if let Some(root) = failed_input {
                    let because = format!("`{}` failed", plan.nodes[root].id);
                    finish(index, Status::Skipped { because }, 0.0, observe, &mut broken, &mut ready);
                    done += 1;
                    continue;
                }
                idle.pop();
                if assign[slot].send(index).is_err() {
                    // The thread is gone (it panicked): the node cannot run.
                    let status = Status::Failed { message: "the worker thread stopped (an internal error)".to_owned() };
                    finish(index, status, 0.0, observe, &mut broken, &mut ready);
                    done += 1;
                }
            }
            if done == total {
                break;
            }
            match inbox.recv() {
                Ok(Message::Event(event)) => observe(&event),
                Ok(Message::Done { slot, index, status, seconds }) => {
                    finish(index, status, seconds, observe, &mut broken, &mut ready);
                    done += 1;
                    idle.push(slot);
                }
                Ok(Message::Closed { .. }) => {}
                Err(_) => break,
            }
        }
        if let Err(e) = store.remember(&program.experiment.name, &hits) {
            observe(&RunEvent::Warning { message: format!("cannot record the run in the cache: {e}") });
        }
        drop(assign);
        for message in inbox {
            match message {
                Message::Event(event) => observe(&event),
                Message::Closed { worker_started: started, device: seen } => {
                    worker_started |= started;
                    device = device.take().or(seen);
                }
                Message::Done { .. } => {}
            }
        }
    });
    let nodes = outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            o.unwrap_or_else(|| NodeOutcome {
                id: plan.nodes[i].id.clone(),
                key: keys.get(&plan.nodes[i].id).cloned().unwrap_or_default(),
                status: Status::Failed { message: "the run stopped before this node (an internal error)".to_owned() },
                seconds: 0.0,
                dir: None,
                metrics: None,
            })
        })
        .collect();
    Outcome { nodes, worker_started, device }
}

/// One environment per worker thread. With `device = auto` and several GPUs, each worker sees
/// one GPU of its own (through CUDA_VISIBLE_DEVICES), and the default is one worker per GPU.
fn worker_slots(jobs: Option<usize>, device: &Device, nodes: usize) -> Vec<Vec<(String, String)>> {
    let gpus = if matches!(device, Device::Auto) { visible_gpus() } else { Vec::new() };
    let jobs = jobs.unwrap_or(if gpus.len() > 1 { gpus.len() } else { 1 }).clamp(1, nodes.max(1));
    (0..jobs)
        .map(|k| match gpus.len() {
            0 | 1 => Vec::new(),
            n => vec![("CUDA_VISIBLE_DEVICES".to_owned(), gpus[k % n].clone())],
        })
        .collect()
}

/// The GPUs this process may use: CUDA_VISIBLE_DEVICES when set, else the NVIDIA device files.
/// The front end has no CUDA library to ask, and these two are what the CUDA runtime itself obeys.
pub fn visible_gpus() -> Vec<String> {
    if let Ok(list) = std::env::var("CUDA_VISIBLE_DEVICES") {
        return list.split(',').map(str::trim).filter(|s| !s.is_empty() && *s != "-1").map(str::to_owned).collect();
    }
    let mut ids: Vec<u32> = std::fs::read_dir("/dev")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_prefix("nvidia")).and_then(|n| n.parse::<u32>().ok()))
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    ids.into_iter().map(|i| i.to_string()).collect()
}
