//! Late rewinding: `prune … { rewind = epoch(k) }` restarts each round's survivors from the dense
//! training's weights after epoch k, so that training must keep them. The prune stage's wish is
//! written onto the train stage it reads as the field `keep_epochs`, which the worker's training
//! loop obeys and which enters the train node's key: a cached dense network trained before any
//! stage asked for epoch k is retrained once, keeping it.

use super::program::{FieldValue, Program, Value, Written};
use crate::kinds::{Category, Effect};
use std::collections::{BTreeMap, BTreeSet};

/// The field the training loop reads; not in the registry, so no user can write it.
pub const KEEP_EPOCHS: &str = "keep_epochs";

pub fn keep_rewind_epochs(program: &mut Program) {
    let mut wanted: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for stage in program.stages.iter().filter(|s| s.category == Category::Prune) {
        let Some(Value::Call { function, args }) = stage.value("rewind") else { continue };
        if function != "epoch" {
            continue;
        }
        let (Some(train), Some(k)) = (stage.value("from").and_then(Value::as_stage), args.get("k").and_then(Value::as_int)) else {
            continue;
        };
        wanted.entry(train.to_owned()).or_default().insert(k);
    }
    for stage in program.stages.iter_mut().filter(|s| s.category == Category::Train) {
        let Some(epochs) = wanted.remove(&stage.name) else { continue };
        let value = Value::List(epochs.into_iter().map(Value::Int).collect());
        stage.fields.insert(KEEP_EPOCHS.to_owned(), FieldValue { value, written: Written::Default, effect: Effect::Result });
    }
}
