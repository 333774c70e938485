//! The protocol between the front end and a worker: node requests go in on stdin, one JSON object
//! per line; events come back on stdout, one JSON object per line. The same format can be written
//! to a file and run by a worker elsewhere (a Slurm job, with the cache on a shared filesystem).

use crate::check::Value;
use crate::kinds::Category;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A node whose output another node reads, with the folder holding that output.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Upstream {
    pub id: String,
    pub stage: String,
    pub category: Category,
    pub method: String,
    pub round: Option<u32>,
    pub fields: BTreeMap<String, Value>,
    pub dir: PathBuf,
}

/// One node to compute.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeRequest {
    pub id: String,
    pub stage: String,
    pub category: Category,
    pub method: String,
    pub round: Option<u32>,
    /// The seed of this node's random stream, derived from the experiment seed and its path.
    pub seed: u64,
    pub fields: BTreeMap<String, Value>,
    /// Every node this one depends on, directly or not, so references in `fields` resolve.
    pub upstream: Vec<Upstream>,
    /// An empty folder for the node's artifacts; the front end moves it into the cache.
    pub output: PathBuf,
    /// State kept between attempts (per-epoch training state), removed once the node is cached.
    pub partial: PathBuf,
    /// `cpu`, `cuda:0` or `auto`.
    pub device: String,
    /// `run --smoke N`: every training, embedding and explainer loop stops after N batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<u32>,
}

impl NodeRequest {
    /// The upstream node of `stage` (a stage name written in a field), for this node's round when
    /// that stage is a ticket series.
    pub fn upstream_of(&self, stage: &str, round: Option<u32>) -> Option<&Upstream> {
        let of_stage = || self.upstream.iter().filter(move |u| u.stage == stage);
        let Some(r) = round else { return of_stage().next() };
        if let Some(exact) = of_stage().find(|u| u.round == Some(r)) {
            return Some(exact);
        }
        // Round 0 of a ticket series is the dense checkpoint its prune stage starts from.
        if let Some(prune) = of_stage().find(|u| u.category == Category::Prune) {
            if r != 0 {
                return None;
            }
            let from = prune.fields.get("from").and_then(Value::as_stage)?;
            return self.upstream.iter().find(|u| u.stage == from);
        }
        // A stage outside any series (a dataset, a single checkpoint) serves every round.
        of_stage().find(|u| u.round.is_none())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The worker has started libtorch and resolved its device.
    Ready {
        device: String,
        threads: i32,
    },
    Started {
        node: String,
    },
    Epoch {
        node: String,
        epoch: u32,
        epochs: u32,
        loss: f64,
        accuracy: f64,
        val_accuracy: Option<f64>,
    },
    /// A progress message from a long step that is not an epoch.
    Progress {
        node: String,
        message: String,
    },
    /// Something about a result the user should know (the node still succeeds).
    Warning {
        node: String,
        message: String,
    },
    Finished {
        node: String,
        metrics: serde_json::Value,
    },
    Failed {
        node: String,
        message: String,
    },
}

/// Seed of a node's random stream: the experiment seed mixed with the stage's name, its round and
/// its own `seed` field, so reordering declarations never changes a result, two stages never
/// share a stream, and a stage's `seed` draws another stream for that stage alone. The field's
/// default 0 adds nothing, so streams from before the field took effect stay as they were.
pub fn stream_seed(experiment_seed: i64, stage: &str, round: Option<u32>, stage_seed: i64) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"lthlang seed stream v1\0");
    hasher.update(&experiment_seed.to_le_bytes());
    hasher.update(stage.as_bytes());
    hasher.update(&[0]);
    if let Some(r) = round {
        hasher.update(&r.to_le_bytes());
    }
    if stage_seed != 0 {
        hasher.update(b"\0stage seed\0");
        hasher.update(&stage_seed.to_le_bytes());
    }
    let bytes = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes.as_bytes()[..8]);
    // Keep it within i64's range: libtorch's manual_seed takes a signed 64-bit seed.
    u64::from_le_bytes(first) >> 1
}

#[cfg(test)]
mod tests {
    use super::stream_seed;

    #[test]
    fn a_stage_seed_draws_its_own_stream_and_zero_keeps_the_derived_one() {
        let base = stream_seed(0, "dense", None, 0);
        assert_eq!(base, stream_seed(0, "dense", None, 0));
        assert_ne!(base, stream_seed(0, "dense", None, 1));
        assert_ne!(stream_seed(0, "dense", None, 1), stream_seed(0, "dense", None, 2));
        assert_ne!(stream_seed(0, "dense", None, 1), stream_seed(1, "dense", None, 0));
        assert_ne!(stream_seed(0, "tickets", Some(1), 0), stream_seed(0, "tickets", Some(2), 0));
        assert!(i64::try_from(stream_seed(5, "x", Some(3), 9)).is_ok());
    }
}
