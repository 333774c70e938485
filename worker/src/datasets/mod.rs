//! `dataset` stages: each builds every split and writes one dataset artifact.
//!
//! The real-image datasets (`cub200`, `ham10000`, `derm7pt`, `image_folder`) first read their
//! published layout into a [`catalogue::Catalogue`] (files, labels, concepts, splits), then
//! decode every image once, in parallel on all cores, into the stored byte tensors: the centred
//! square resized to the `image` side (see [`decoder`]). Training therefore never waits on JPEG
//! decoding; it reads bytes already at the network's input size. Random-resized crops and flips
//! happen later, per batch on the device, for datasets whose `augment` is on (see
//! `stages::augmentation`); evaluation uses the stored images as they are, which are already the
//! centre crop. `mnist` reads its idx files directly. Readers fail with the path of a missing
//! folder or file, the name of a missing column, or the file of an undecodable image (which
//! `skip_corrupt = true` leaves out instead, counting it in the meta's `skipped`).

pub mod catalogue;
pub mod cub200;
pub mod decoder;
pub mod derm7pt;
pub mod digits;
#[cfg(test)]
mod fixtures;
pub mod ham10000;
pub mod image_folder;
pub mod mnist;
pub mod partition;
pub mod shapes;
pub mod table;

use super::data::{self, Meta, RawSplit};
use super::{Context, Result, StageError};
use lthlang::check::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn run(ctx: &Context, method: &str) -> Result<serde_json::Value> {
    let (meta, splits) = match method {
        "shapes" => shapes_artifact(ctx)?,
        "digits" => digits::artifact(ctx)?,
        "cub200" => cub200::artifact(ctx)?,
        "ham10000" => ham10000::artifact(ctx)?,
        "derm7pt" => derm7pt::artifact(ctx)?,
        "image_folder" => image_folder::artifact(ctx)?,
        "mnist" => mnist::artifact(ctx)?,
        other => return Err(StageError::new(format!("dataset `{other}` is not implemented in this version of the worker"))),
    };
    warn_of_empty_splits(ctx, &meta);
    data::save(&ctx.request.output, &meta, &splits)?;
    Ok(serde_json::json!({ "classes": meta.classes, "splits": meta.splits, "skipped": meta.skipped, "skipped_files": meta.skipped_files }))
}

/// A split can come out empty only at run time: a validation share carved per class rounds to
/// no image when classes have few training images (10% of CUB's 1–2 per class in a small
/// folder). `check` cannot see that, so the node says it, and what follows from it.
fn warn_of_empty_splits(ctx: &Context, meta: &Meta) {
    for (name, _) in meta.splits.iter().filter(|(_, count)| **count == 0) {
        let consequence = if name == "val" {
            "trainings that validate on it report no validation accuracy and keep their last epoch's weights"
        } else {
            "stages that read it have no images to work on"
        };
        let share = match ctx.request.fields.get(name.as_str()) {
            Some(Value::Float(share) | Value::Fraction(share)) => {
                format!(" (`{name}` = {}% of each class's images rounds to none)", (share * 1e4).round() / 1e2)
            }
            _ => String::new(),
        };
        ctx.warn(format!("the `{name}` split has no images{share}; {consequence}"));
    }
}

/// The `root` folder field.
fn root(ctx: &Context) -> Result<PathBuf> {
    match ctx.field("root")? {
        Value::Path(p) => Ok(p.clone()),
        other => Err(StageError::new(format!("field `root` should be a folder, got {other:?}"))),
    }
}

fn seed(ctx: &Context) -> Result<u64> {
    Ok(u64::try_from(ctx.int("seed")?).unwrap_or(0))
}

/// The decoder the `image` and `skip_corrupt` fields ask for.
fn decoder(ctx: &Context) -> Result<decoder::Decoder> {
    Ok(decoder::Decoder { side: count(ctx, "image")?, skip_corrupt: ctx.boolean("skip_corrupt")?, out: ctx.request.output.clone() })
}

/// Whether a file name has an image extension the decoder reads (`.jpg`, `.jpeg`, `.png`, any case).
fn is_image(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| ["jpg", "jpeg", "png"].iter().any(|x| e.eq_ignore_ascii_case(x)))
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
    let raw = |split: shapes::Split| RawSplit {
        images: data::Rows::Memory(split.images),
        labels: split.labels,
        concepts: Some(split.concepts),
        masks: Some(data::Rows::Memory(split.masks)),
    };
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

#[cfg(test)]
mod tests {
    use super::super::augmentation::Augmentation;
    use super::super::data::Dataset;
    use super::fixtures::{flat, image, ok, tempdir};
    use super::*;
    use lthlang::exec::job::NodeRequest;
    use lthlang::kinds::Category;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use tch::{Device, Kind, Tensor};

    fn request(method: &str, fields: BTreeMap<String, Value>, output: PathBuf) -> NodeRequest {
        NodeRequest {
            id: "data".to_owned(),
            stage: "data".to_owned(),
            category: Category::Dataset,
            method: method.to_owned(),
            round: None,
            seed: 9,
            fields,
            upstream: Vec::new(),
            partial: output.join("partial"),
            output,
            device: "cpu".to_owned(),
            smoke: None,
        }
    }

    #[test]
    fn an_image_folder_artifact_loads_and_augments_only_on_request() {
        let dir = tempdir();
        let root = dir.path().join("pictures");
        for i in 0..8 {
            flat(&root.join(format!("red/{i}.png")), 10, 6, [255, 0, 0]);
            image(&root.join(format!("ramp/{i}.jpg")), 10, 6, |x, _| [u8::try_from(x * 25).unwrap_or(0), 0, 0]);
        }
        std::fs::write(root.join("red/broken.png"), b"no png here").unwrap_or_else(|e| panic!("{e}"));
        let fields = BTreeMap::from([
            ("root".to_owned(), Value::Path(root.clone())),
            ("image".to_owned(), Value::Int(6)),
            ("val".to_owned(), Value::Fraction(0.25)),
            ("test".to_owned(), Value::Fraction(0.25)),
            ("augment".to_owned(), Value::Bool(true)),
            ("skip_corrupt".to_owned(), Value::Bool(true)),
            ("seed".to_owned(), Value::Int(0)),
        ]);
        let output = dir.path().join("out");
        std::fs::create_dir_all(&output).unwrap_or_else(|e| panic!("{e}"));
        let request = request("image_folder", fields, output.clone());
        let ctx = Context { request: &request, device: Device::Cpu, emit: &|_| {} };
        let metrics = ok(run(&ctx, "image_folder"));
        assert_eq!(metrics["skipped"], 1);
        assert_eq!(metrics["skipped_files"][0], "red/broken.png");
        let data = ok(Dataset::load(&output, Device::Cpu, crate::data::Normalisation::FIXED));
        assert_eq!(data.meta.augment, Some(Augmentation::standard()));
        assert_eq!(data.meta.class_names, vec!["ramp", "red"]);
        assert_eq!(data.meta.splits.values().sum::<usize>(), 16);
        let train = ok(data.split("train"));
        let n = train.len();
        assert_eq!(train.images().size(), vec![n, 3, 6, 6]);
        let index = Tensor::arange(n, (Kind::Int64, Device::Cpu));
        let (plain, labels) = ok(train.batch(&index));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (augmented, same_labels) = ok(train.batch_augmented(&index, &Augmentation::standard(), &mut rng));
        assert_eq!(augmented.size(), plain.size());
        assert!(same_labels.equal(&labels));
        // A flat red image is the same under any crop and flip; a ramp is not.
        let red = labels.eq(1).nonzero().view([-1]);
        let ramp = labels.eq(0).nonzero().view([-1]);
        let gap = |rows: &Tensor| (augmented.index_select(0, rows) - plain.index_select(0, rows)).abs().max().double_value(&[]);
        assert!(gap(&red) < 1e-5, "{}", gap(&red));
        assert!(gap(&ramp) > 0.1, "{}", gap(&ramp));
        let mut again = ChaCha8Rng::seed_from_u64(1);
        let (repeat, _) = ok(train.batch_augmented(&index, &Augmentation::standard(), &mut again));
        assert!(repeat.equal(&augmented));
    }

    #[test]
    fn a_validation_share_that_rounds_to_no_image_is_a_warning() {
        let dir = tempdir();
        let root = dir.path().join("pictures");
        for class in ["a", "b"] {
            for i in 0..2 {
                flat(&root.join(format!("{class}/{i}.png")), 8, 8, [255, 0, 0]);
            }
        }
        let fields = BTreeMap::from([
            ("root".to_owned(), Value::Path(root)),
            ("image".to_owned(), Value::Int(8)),
            ("val".to_owned(), Value::Fraction(0.1)),
            ("test".to_owned(), Value::Fraction(0.5)),
            ("augment".to_owned(), Value::Bool(false)),
            ("skip_corrupt".to_owned(), Value::Bool(false)),
            ("seed".to_owned(), Value::Int(0)),
        ]);
        let output = dir.path().join("out");
        std::fs::create_dir_all(&output).unwrap_or_else(|e| panic!("{e}"));
        let request = request("image_folder", fields, output);
        let warnings = std::cell::RefCell::new(Vec::new());
        let emit = |event: lthlang::exec::job::Event| {
            if let lthlang::exec::job::Event::Warning { message, .. } = event {
                warnings.borrow_mut().push(message);
            }
        };
        let ctx = Context { request: &request, device: Device::Cpu, emit: &emit };
        let metrics = ok(run(&ctx, "image_folder"));
        assert_eq!(metrics["splits"], serde_json::json!({ "train": 2, "val": 0, "test": 2 }));
        assert_eq!(
            warnings.into_inner(),
            ["the `val` split has no images (`val` = 10% of each class's images rounds to none); trainings that validate on \
              it report no validation accuracy and keep their last epoch's weights"]
        );
    }

    #[test]
    fn an_artifact_written_before_augmentation_reads_as_not_augmented() {
        let old = r#"{"classes":2,"class_names":["a","b"],"concept_names":[],"class_concepts":[[],[]],"image":8,"splits":{"train":4},"masks":false,"skipped":0}"#;
        let meta: Meta = serde_json::from_str(old).unwrap_or_else(|e| panic!("{e}"));
        assert!(meta.augment.is_none() && meta.skipped_files.is_empty());
        let written = serde_json::to_string(&Meta { augment: Some(Augmentation::standard()), ..meta }).unwrap_or_default();
        assert!(written.contains(r#""augment":{"scale":[0.08,1.0]"#), "{written}");
    }
}
