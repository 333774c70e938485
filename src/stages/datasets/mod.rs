//! `dataset` stages: each builds every split and writes one dataset artifact.

pub mod digits;
pub mod shapes;

use super::data::{self, Meta, RawSplit};
use super::{Context, Result, StageError};
use std::collections::BTreeMap;

pub fn run(ctx: &Context, method: &str) -> Result<serde_json::Value> {
    let (meta, splits) = match method {
        "shapes" => shapes_artifact(ctx)?,
        "digits" => digits::artifact(ctx)?,
        other => return Err(StageError::new(format!("dataset `{other}` is not implemented in this version of the worker"))),
    };
    data::save(&ctx.request.output, &meta, &splits)?;
    Ok(serde_json::json!({ "classes": meta.classes, "splits": meta.splits, "skipped": meta.skipped }))
}

fn count(ctx: &Context, field: &str) -> Result<usize> {
    usize::try_from(ctx.int(field)?).map_err(|_| StageError::new(format!("`{field}` must not be negative")))
}

fn shapes_artifact(ctx: &Context) -> Result<(Meta, BTreeMap<&'static str, RawSplit>)> {
    let config = shapes::Config {
        classes: count(ctx, "classes")?,
        image: count(ctx, "image")?,
        train: count(ctx, "train")?,
        val: count(ctx, "val")?,
        test: count(ctx, "test")?,
        spurious: ctx.float("spurious")?,
        seed: u64::try_from(ctx.int("seed")?).unwrap_or(0),
    };
    ctx.progress(format!("drawing {} synthetic images", config.train + config.val + config.test));
    let generated = shapes::generate(&config).map_err(StageError)?;
    let raw = |split: shapes::Split| RawSplit { images: split.images, labels: split.labels, concepts: Some(split.concepts), masks: Some(split.masks) };
    let meta = Meta {
        classes: config.classes,
        class_names: generated.classes.iter().map(shapes::ClassDef::describe).collect(),
        concept_names: shapes::concept_names(),
        class_concepts: generated.classes.iter().map(shapes::ClassDef::defining_concepts).collect(),
        image: config.image,
        splits: BTreeMap::from([("train".to_owned(), config.train), ("val".to_owned(), config.val), ("test".to_owned(), config.test)]),
        masks: true,
        ..Meta::default()
    };
    let splits = BTreeMap::from([("train", raw(generated.train)), ("val", raw(generated.val)), ("test", raw(generated.test))]);
    Ok((meta, splits))
}
