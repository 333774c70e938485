//! `image_folder`: any folder of class folders of `.jpg`/`.jpeg`/`.png` images.
//!
//! Two layouts. Split: `root/train/<class>/*` with optional `root/val/<class>/*` (or `valid/`)
//! and `root/test/<class>/*`; a split without its folder is carved from train with the seed
//! (`test` of train's images, then `val` of the rest, per class). Flat: `root/<class>/*`, all
//! three splits carved that way. The split layout is chosen when `root/train` is a folder, so a
//! flat dataset cannot have a class called `train`. Classes are the class folders' names, sorted,
//! over every split; a class folder in train without a single image is an error. Hidden entries
//! and other files are ignored.

use super::super::augmentation::Augmentation;
use super::super::data::{Meta, RawSplit};
use super::super::{io_error, Context, Result, StageError};
use super::catalogue::{Catalogue, Record};
use super::partition::Partition;
use super::table::require_dir;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub struct Config {
    pub root: PathBuf,
    pub val: f64,
    pub test: f64,
    pub seed: u64,
}

const VAL_FOLDERS: [&str; 2] = ["val", "valid"];

pub fn artifact(ctx: &Context) -> Result<(Meta, BTreeMap<&'static str, RawSplit>)> {
    let config = Config { root: super::root(ctx)?, val: ctx.float("val")?, test: ctx.float("test")?, seed: super::seed(ctx)? };
    let catalogue = catalogue(&config)?;
    let augment = ctx.boolean("augment")?.then(Augmentation::standard);
    catalogue.decode(&super::decoder(ctx)?, augment, &|m| ctx.progress(m))
}

/// Visible sub-entries of a folder, sorted by name.
fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, &e))? {
        let path = entry.map_err(|e| io_error(dir, &e))?.path();
        if !path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Class name to its image files, for one split folder.
fn class_folders(dir: &Path) -> Result<BTreeMap<String, Vec<PathBuf>>> {
    let mut out = BTreeMap::new();
    for class_dir in entries(dir)?.into_iter().filter(|p| p.is_dir()) {
        let name = class_dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let images: Vec<PathBuf> = entries(&class_dir)?.into_iter().filter(|p| p.is_file() && super::is_image(p)).collect();
        out.insert(name, images);
    }
    Ok(out)
}

pub fn catalogue(config: &Config) -> Result<Catalogue> {
    let root = &config.root;
    require_dir(root)?;
    let split_layout = root.join("train").is_dir();
    let train_dir = if split_layout { root.join("train") } else { root.clone() };
    let train = class_folders(&train_dir)?;
    if train.is_empty() {
        return Err(StageError::new(format!(
            "{} holds no class folders (expected <class>/*.jpg there, or train/<class>/*.jpg)",
            train_dir.display()
        )));
    }
    if let Some((class, _)) = train.iter().find(|(_, images)| images.is_empty()) {
        return Err(StageError::new(format!("{} holds no .jpg or .png images", train_dir.join(class).display())));
    }
    let val_dir = VAL_FOLDERS.iter().map(|f| root.join(f)).find(|p| split_layout && p.is_dir());
    let test_dir = Some(root.join("test")).filter(|p| split_layout && p.is_dir());
    let val = val_dir.as_deref().map(class_folders).transpose()?;
    let test = test_dir.as_deref().map(class_folders).transpose()?;

    let mut names: BTreeSet<String> = train.keys().cloned().collect();
    for extra in [&val, &test].into_iter().flatten() {
        names.extend(extra.keys().cloned());
    }
    let class_names: Vec<String> = names.into_iter().collect();
    let records = |folders: &BTreeMap<String, Vec<PathBuf>>| -> Vec<Record> {
        let mut out = Vec::new();
        for (class, images) in folders {
            let label = class_names.iter().position(|n| n == class).map_or(0, |i| i64::try_from(i).unwrap_or(0));
            out.extend(images.iter().map(|path| Record { path: path.clone(), label, concepts: Vec::new(), region: None }));
        }
        out
    };
    let pool = records(&train);
    let labels: Vec<i64> = pool.iter().map(|r| r.label).collect();
    let items: Vec<usize> = (0..pool.len()).collect();
    let test_share = if test.is_some() { 0.0 } else { config.test };
    let val_share = if val.is_some() { 0.0 } else { config.val };
    let partition = Partition::hold_out(&items, &labels, test_share, val_share, config.seed);
    let pick = |indices: &[usize]| indices.iter().map(|i| pool[*i].clone()).collect::<Vec<_>>();
    let val_records = val.as_ref().map_or_else(|| pick(&partition.val), records);
    let test_records = test.as_ref().map_or_else(|| pick(&partition.test), records);
    let classes = class_names.len();
    Ok(Catalogue {
        root: root.clone(),
        class_names,
        concept_names: Vec::new(),
        class_concepts: vec![Vec::new(); classes],
        splits: vec![("train", pick(&partition.train)), ("val", val_records), ("test", test_records)],
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{err, flat, ok, tempdir, text};
    use super::*;

    fn config(root: &Path) -> Config {
        Config { root: root.to_owned(), val: 0.25, test: 0.2, seed: 2 }
    }

    #[test]
    fn a_flat_folder_is_split_per_class_with_the_seed() {
        let dir = tempdir();
        for (class, n) in [("cat", 10), ("dog", 5)] {
            for i in 0..n {
                flat(&dir.path().join(class).join(format!("{i}.{}", if i % 2 == 0 { "png" } else { "JPG" })), 3, 3, [1, 2, 3]);
            }
        }
        text(&dir.path().join("cat/notes.txt"), "not an image");
        text(&dir.path().join(".hidden/x.png"), "");
        let catalogue = ok(catalogue(&config(dir.path())));
        assert_eq!(catalogue.class_names, vec!["cat", "dog"]);
        let count = |split: &str, label: i64| catalogue.split(split).iter().filter(|r| r.label == label).count();
        // cat: test round(2) = 2, val round(0.25 * 8) = 2; dog: test 1, val 1.
        assert_eq!((count("train", 0), count("val", 0), count("test", 0)), (6, 2, 2));
        assert_eq!((count("train", 1), count("val", 1), count("test", 1)), (3, 1, 1));
        assert_eq!(ok(super::catalogue(&config(dir.path()))).split("val"), catalogue.split("val"));
    }

    #[test]
    fn split_folders_are_kept_and_a_missing_val_is_carved_from_train() {
        let dir = tempdir();
        for i in 0..4 {
            flat(&dir.path().join(format!("train/a/{i}.png")), 2, 2, [0, 0, 0]);
            flat(&dir.path().join(format!("train/b/{i}.png")), 2, 2, [0, 0, 0]);
        }
        flat(&dir.path().join("test/b/t.png"), 2, 2, [0, 0, 0]);
        flat(&dir.path().join("test/c/t.png"), 2, 2, [0, 0, 0]);
        let catalogue = ok(catalogue(&config(dir.path())));
        assert_eq!(catalogue.class_names, vec!["a", "b", "c"]);
        assert_eq!(catalogue.split("test").iter().map(|r| r.label).collect::<Vec<_>>(), vec![1, 2]);
        // No test share is taken from train when test/ exists; val is round(0.25 * 4) = 1 per class.
        assert_eq!((catalogue.split("train").len(), catalogue.split("val").len()), (6, 2));
    }

    #[test]
    fn empty_layouts_are_named() {
        let dir = tempdir();
        let message = err(catalogue(&config(dir.path())).map(|_| ()));
        assert!(message.contains("holds no class folders"), "{message}");
        std::fs::create_dir_all(dir.path().join("empty")).unwrap_or_else(|e| panic!("{e}"));
        let message = err(catalogue(&config(dir.path())).map(|_| ()));
        assert!(message.contains("empty holds no .jpg or .png images"), "{message}");
        let message = err(catalogue(&config(&dir.path().join("nowhere"))).map(|_| ()));
        assert!(message.starts_with("missing folder") && message.ends_with("nowhere"), "{message}");
    }
}
