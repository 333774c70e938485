//! `plan --explain`: for every node, whether the cache holds it, and if not, why it must run —
//! found by comparing its fingerprint with the one the last run of this experiment used.

use super::run::forced_nodes;
use crate::cache::fingerprint::{diff, field_spans, Reason};
use crate::cache::store::{Lookup, Store};
use crate::cache::Fingerprint;
use crate::check::Program;
use crate::plan::Plan;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Cached,
    Run,
}

#[derive(Clone, Debug, Serialize)]
pub struct Explained {
    pub id: String,
    pub key: String,
    pub status: NodeStatus,
    pub reasons: Vec<Reason>,
}

pub fn explain(
    program: &Program,
    plan: &Plan,
    fingerprints: &[(String, Fingerprint)],
    store: &Store,
    force: &BTreeSet<String>,
) -> Vec<Explained> {
    let forced = forced_nodes(plan, force);
    let last = store.last_run(&program.experiment.name);
    let keys: HashMap<&str, String> = fingerprints.iter().map(|(id, fp)| (id.as_str(), fp.key())).collect();
    let mut runs: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::with_capacity(fingerprints.len());
    for (id, fingerprint) in fingerprints {
        let key = keys[id.as_str()].clone();
        let mut reasons = Vec::new();
        if forced.contains(id) {
            reasons.push(Reason::Forced);
        }
        match store.lookup(&key) {
            Lookup::Valid(_) => {}
            Lookup::Corrupt(detail) => reasons.push(Reason::Corrupt { detail }),
            Lookup::Missing => {
                let spans =
                    plan.nodes.iter().find(|n| &n.id == id).and_then(|n| program.stage(&n.stage)).map(field_spans).unwrap_or_default();
                // Never computed for this experiment (an empty cache, a new node): that is the
                // whole reason, whatever its inputs do.
                let Some(old) = last.get(id) else {
                    reasons.push(Reason::NoEntry);
                    runs.insert(id.as_str());
                    out.push(Explained { id: id.clone(), key, status: NodeStatus::Run, reasons });
                    continue;
                };
                let changed = diff(old, fingerprint, &spans);
                // An input that runs again is the reason only when nothing about the node itself
                // changed; an input that changed but is cached is named too.
                if changed.is_empty() {
                    let rerun_inputs: Vec<Reason> = fingerprint
                        .inputs
                        .keys()
                        .filter(|i| runs.contains(i.as_str()))
                        .map(|i| Reason::InputChanged { input: i.clone() })
                        .collect();
                    if rerun_inputs.is_empty() {
                        reasons.push(Reason::NoEntry);
                    } else {
                        reasons.extend(rerun_inputs);
                    }
                } else {
                    reasons.extend(changed);
                }
            }
        }
        let status = if reasons.is_empty() { NodeStatus::Cached } else { NodeStatus::Run };
        if status == NodeStatus::Run {
            runs.insert(id.as_str());
        }
        out.push(Explained { id: id.clone(), key, status, reasons });
    }
    out
}
