//! `cub200`: Caltech-UCSD Birds-200-2011 from its folder as distributed.
//!
//! Files read (all relative to `root`): `images.txt` (id, path under `images/`),
//! `image_class_labels.txt` (id, class id), `train_test_split.txt` (id, 1 for train),
//! `classes.txt` (class id, `001.Black_footed_Albatross`), `bounding_boxes.txt` (id, x, y, w, h),
//! `attributes/class_attribute_labels_continuous.txt` (200 rows of 312 percentages) and the
//! attribute names, `attributes/attributes.txt` or, where the archive left it one level up,
//! `../attributes.txt`. `concepts = raw` also reads `attributes/image_attribute_labels.txt`.
//!
//! Concepts: `denoised` (the default) turns an attribute on for a class when more than half of
//! that class's images were annotated with it (continuous label > 50) and keeps the attributes on
//! for at least `min_classes` classes (108 of 312 with the default 10); every image carries its
//! class's vector, which removes the per-image annotation noise. `raw` keeps all 312 per-image
//! annotations. Either way `class_concepts` lists the attributes on for each class.
//!
//! Splits: the published train/test split; validation is `val` of each class's training images,
//! drawn with the seed. Bounding boxes are stored as object masks after the same centre crop and
//! resize as the images.

use super::super::augmentation::Augmentation;
use super::super::data::{Meta, RawSplit};
use super::super::{Context, Result, StageError};
use super::catalogue::{Catalogue, Record, Region};
use super::partition::Partition;
use super::table::{require_dir, Table};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concepts {
    Denoised { min_classes: usize },
    Raw,
}

pub struct Config {
    pub root: PathBuf,
    pub concepts: Concepts,
    pub val: f64,
    pub seed: u64,
}

/// A class's continuous label above this (a percentage of its images) turns the attribute on.
const ON_ABOVE: f64 = 50.0;

pub fn artifact(ctx: &Context) -> Result<(Meta, BTreeMap<&'static str, RawSplit>)> {
    let concepts = match ctx.word("concepts")? {
        "raw" => Concepts::Raw,
        _ => Concepts::Denoised { min_classes: usize::try_from(ctx.int("min_classes")?).unwrap_or(1) },
    };
    let config = Config { root: super::root(ctx)?, concepts, val: ctx.float("val")?, seed: super::seed(ctx)? };
    let catalogue = catalogue(&config)?;
    let augment = ctx.boolean("augment")?.then(Augmentation::standard);
    catalogue.decode(&super::decoder(ctx)?, augment, &|m| ctx.progress(m))
}

/// Rows of a headerless file keyed by their first field, an integer id.
fn by_id<'t>(table: &'t Table, what: &str) -> Result<BTreeMap<u64, &'t super::table::Row>> {
    let mut out = BTreeMap::new();
    for row in &table.rows {
        let id: u64 = table.number(row, 0, what)?;
        if out.insert(id, row).is_some() {
            return Err(table.error(row, format!("{what} {id} appears twice")));
        }
    }
    Ok(out)
}

/// `001.Black_footed_Albatross` to `Black_footed_Albatross`.
fn class_name(folder: &str) -> String {
    match folder.split_once('.') {
        Some((number, name)) if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => name.to_owned(),
        _ => folder.to_owned(),
    }
}

/// Which attributes are on per class (`continuous[class][attribute] > 50`) and the attributes
/// kept: those on for at least `min_classes` classes.
pub fn denoise(continuous: &[Vec<f64>], min_classes: usize) -> (Vec<Vec<bool>>, Vec<usize>) {
    let on: Vec<Vec<bool>> = continuous.iter().map(|row| row.iter().map(|v| *v > ON_ABOVE).collect()).collect();
    let attributes = on.first().map_or(0, Vec::len);
    let kept = (0..attributes).filter(|a| on.iter().filter(|row| row[*a]).count() >= min_classes).collect();
    (on, kept)
}

fn attribute_names(root: &Path) -> Result<Vec<String>> {
    let inside = root.join("attributes").join("attributes.txt");
    let beside = root.parent().map(|p| p.join("attributes.txt"));
    let path = match beside {
        Some(p) if !inside.exists() && p.exists() => p,
        _ => inside,
    };
    let table = Table::words(&path)?;
    let mut names = Vec::new();
    for row in &table.rows {
        let id: usize = table.number(row, 0, "the attribute id")?;
        if id != names.len() + 1 {
            return Err(table.error(row, format!("expected attribute {}, found {id}", names.len() + 1)));
        }
        names.push(table.field(row, 1)?.to_owned());
    }
    Ok(names)
}

pub fn catalogue(config: &Config) -> Result<Catalogue> {
    let root = &config.root;
    require_dir(root)?;
    let images_dir = root.join("images");
    require_dir(&images_dir)?;

    let classes_table = Table::words(&root.join("classes.txt"))?;
    let classes = by_id(&classes_table, "class id")?;
    let class_index: BTreeMap<u64, usize> = classes.keys().enumerate().map(|(i, id)| (*id, i)).collect();
    let class_names: Vec<String> = classes.values().map(|row| classes_table.field(row, 1).map(class_name)).collect::<Result<_>>()?;

    let names = attribute_names(root)?;
    let continuous_table = Table::words(&root.join("attributes").join("class_attribute_labels_continuous.txt"))?;
    if continuous_table.rows.len() != class_names.len() {
        return Err(StageError::new(format!(
            "{} has {} rows; expected one per class ({})",
            continuous_table.path.display(),
            continuous_table.rows.len(),
            class_names.len()
        )));
    }
    let mut continuous = Vec::with_capacity(class_names.len());
    for row in &continuous_table.rows {
        if row.fields.len() != names.len() {
            return Err(
                continuous_table.error(row, format!("expected {} values, one per attribute, found {}", names.len(), row.fields.len()))
            );
        }
        continuous.push(
            (0..names.len()).map(|a| continuous_table.number::<f64>(row, a, "an attribute's class label")).collect::<Result<Vec<_>>>()?,
        );
    }
    let (on, kept) = match config.concepts {
        Concepts::Denoised { min_classes } => denoise(&continuous, min_classes),
        Concepts::Raw => (denoise(&continuous, 1).0, (0..names.len()).collect()),
    };
    let concept_names: Vec<String> = kept.iter().map(|a| names[*a].clone()).collect();
    let class_concepts: Vec<Vec<usize>> =
        on.iter().map(|row| kept.iter().enumerate().filter(|(_, a)| row[**a]).map(|(j, _)| j).collect()).collect();

    let images_table = Table::words(&root.join("images.txt"))?;
    let labels_table = Table::words(&root.join("image_class_labels.txt"))?;
    let split_table = Table::words(&root.join("train_test_split.txt"))?;
    let boxes_table = Table::words(&root.join("bounding_boxes.txt"))?;
    let labels = by_id(&labels_table, "image id")?;
    let is_train = by_id(&split_table, "image id")?;
    let boxes = by_id(&boxes_table, "image id")?;
    let per_image = match config.concepts {
        Concepts::Raw => Some(image_attributes(&root.join("attributes").join("image_attribute_labels.txt"), names.len())?),
        Concepts::Denoised { .. } => None,
    };

    let (mut train, mut test) = (Vec::new(), Vec::new());
    for row in &images_table.rows {
        let id: u64 = images_table.number(row, 0, "the image id")?;
        let path = row
            .fields
            .get(1..)
            .map(|f| f.join(" "))
            .filter(|p| !p.is_empty())
            .ok_or_else(|| images_table.error(row, "expected an image id and a path"))?;
        let lacks = |table: &Table| StageError::new(format!("{} has no line for image {id} ({path})", table.path.display()));
        let label_row = labels.get(&id).ok_or_else(|| lacks(&labels_table))?;
        let class_id: u64 = labels_table.number(label_row, 1, "the class id")?;
        let class =
            *class_index.get(&class_id).ok_or_else(|| labels_table.error(label_row, format!("class {class_id} is not in classes.txt")))?;
        let split_row = is_train.get(&id).ok_or_else(|| lacks(&split_table))?;
        let train_flag: u8 = split_table.number(split_row, 1, "the train flag")?;
        let box_row = boxes.get(&id).ok_or_else(|| lacks(&boxes_table))?;
        let mut corners = [0.0f64; 4];
        for (i, c) in corners.iter_mut().enumerate() {
            *c = boxes_table.number(box_row, i + 1, "a bounding box coordinate")?;
        }
        let concepts = match &per_image {
            Some(per_image) => per_image
                .get(&id)
                .cloned()
                .ok_or_else(|| StageError::new(format!("attributes/image_attribute_labels.txt has no line for image {id} ({path})")))?,
            None => kept.iter().map(|a| if on[class][*a] { 1.0 } else { 0.0 }).collect(),
        };
        let record = Record {
            path: images_dir.join(&path),
            label: i64::try_from(class).unwrap_or(0),
            concepts,
            region: Some(Region { x: corners[0], y: corners[1], width: corners[2], height: corners[3] }),
        };
        match train_flag {
            1 => train.push(record),
            0 => test.push(record),
            other => return Err(split_table.error(split_row, format!("the train flag should be 1 or 0, found {other}"))),
        }
    }
    let labels_of: Vec<i64> = train.iter().map(|r| r.label).collect();
    let items: Vec<usize> = (0..train.len()).collect();
    let partition = Partition::hold_out(&items, &labels_of, 0.0, config.val, config.seed);
    let pick = |indices: &[usize]| indices.iter().map(|i| train[*i].clone()).collect::<Vec<_>>();
    let splits = vec![("train", pick(&partition.train)), ("val", pick(&partition.val)), ("test", test)];
    Ok(Catalogue { root: root.clone(), class_names, concept_names, class_concepts, splits })
}

/// Per-image attribute annotations: lines of image id, attribute id, present (0/1), certainty,
/// time. (A few lines of the published file carry an extra field; only the first three count.)
fn image_attributes(path: &Path, attributes: usize) -> Result<BTreeMap<u64, Vec<f32>>> {
    let table = Table::words(path)?;
    let mut out: BTreeMap<u64, Vec<f32>> = BTreeMap::new();
    for row in &table.rows {
        let image: u64 = table.number(row, 0, "the image id")?;
        let attribute: usize = table.number(row, 1, "the attribute id")?;
        let present: u8 = table.number(row, 2, "the present flag")?;
        if attribute == 0 || attribute > attributes {
            return Err(table.error(row, format!("attribute {attribute} is not among the {attributes} named")));
        }
        out.entry(image).or_insert_with(|| vec![0.0; attributes])[attribute - 1] = f32::from(u8::from(present == 1));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::decoder::Decoder;
    use super::super::fixtures::{err, flat, ok, tempdir, text};
    use super::*;

    /// Three classes of four images (three train, one test), four attributes. Continuous labels:
    /// attribute 1 on for classes 1, 2; attribute 2 for none; attribute 3 for classes 1, 3;
    /// attribute 4 for classes 2 and 3 (class 1's 50 is not above 50).
    fn cub(root: &Path) {
        text(&root.join("classes.txt"), "1 001.Alpha_bird\n2 002.Beta_bird\n3 003.Gamma_bird\n");
        text(&root.join("attributes/attributes.txt"), "1 has_a::x\n2 has_b::y\n3 has_c::z\n4 has_d::w\n");
        text(
            &root.join("attributes/class_attribute_labels_continuous.txt"),
            "80.0 20.0 60.0 50.0\n90.0 10.0 40.0 70.0\n10.0 30.0 55.5 51.0\n",
        );
        let (mut images, mut labels, mut split, mut boxes, mut per_image) =
            (String::new(), String::new(), String::new(), String::new(), String::new());
        for id in 1..=12u32 {
            let class = (id - 1) / 4 + 1;
            let file = format!("00{class}.Class/img_{id}.png");
            // 12 x 8 images: the stored square at side 4 is x in [2, 10).
            flat(&root.join("images").join(&file), 12, 8, [u8::try_from(id * 20).unwrap_or(0), 0, 0]);
            images += &format!("{id} {file}\n");
            labels += &format!("{id} {class}\n");
            split += &format!("{id} {}\n", u8::from(id % 4 != 0));
            boxes += &format!("{id} 2.0 0.0 4.0 4.0\n");
            per_image += &format!("{id} 2 {} 3 1.5\n{id} 4 1 3 2.0 extra\n", id % 2);
        }
        text(&root.join("images.txt"), &images);
        text(&root.join("image_class_labels.txt"), &labels);
        text(&root.join("train_test_split.txt"), &split);
        text(&root.join("bounding_boxes.txt"), &boxes);
        text(&root.join("attributes/image_attribute_labels.txt"), &per_image);
    }

    fn config(root: &Path, concepts: Concepts) -> Config {
        Config { root: root.to_owned(), concepts, val: 0.34, seed: 1 }
    }

    #[test]
    fn denoising_keeps_attributes_on_for_enough_classes() {
        let continuous = vec![vec![80.0, 20.0, 60.0, 50.0], vec![90.0, 10.0, 40.0, 70.0], vec![10.0, 30.0, 55.5, 51.0]];
        let (on, kept) = denoise(&continuous, 2);
        assert_eq!(kept, vec![0, 2, 3]);
        assert_eq!(on[0], vec![true, false, true, false]);
        assert_eq!(denoise(&continuous, 3).1, Vec::<usize>::new());
        assert_eq!(denoise(&continuous, 1).1, vec![0, 2, 3]);
    }

    #[test]
    fn the_published_layout_gives_classes_splits_and_class_level_concepts() {
        let dir = tempdir();
        cub(dir.path());
        let catalogue = ok(catalogue(&config(dir.path(), Concepts::Denoised { min_classes: 2 })));
        assert_eq!(catalogue.class_names, vec!["Alpha_bird", "Beta_bird", "Gamma_bird"]);
        assert_eq!(catalogue.concept_names, vec!["has_a::x", "has_c::z", "has_d::w"]);
        assert_eq!(catalogue.class_concepts, vec![vec![0, 1], vec![0, 2], vec![1, 2]]);
        // Per class three training images, one (round(0.34 * 3)) of them held out for validation.
        let (train, val, test) = (catalogue.split("train"), catalogue.split("val"), catalogue.split("test"));
        assert_eq!((train.len(), val.len(), test.len()), (6, 3, 3));
        for class in 0..3 {
            assert_eq!(val.iter().filter(|r| r.label == class).count(), 1);
        }
        let test_files: Vec<String> =
            test.iter().map(|r| r.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect();
        assert_eq!(test_files, vec!["img_4.png", "img_8.png", "img_12.png"]);
        assert_eq!(test[1].label, 1);
        assert_eq!(test[1].concepts, vec![1.0, 0.0, 1.0]);
        assert_eq!(test[2].concepts, vec![0.0, 1.0, 1.0]);
        assert_eq!(test[0].region, Some(Region { x: 2.0, y: 0.0, width: 4.0, height: 4.0 }));
        let again = ok(super::catalogue(&config(dir.path(), Concepts::Denoised { min_classes: 2 })));
        assert_eq!(again.split("val"), val);
    }

    #[test]
    fn raw_concepts_are_the_per_image_annotations() {
        let dir = tempdir();
        cub(dir.path());
        let catalogue = ok(catalogue(&config(dir.path(), Concepts::Raw)));
        assert_eq!(catalogue.concept_names.len(), 4);
        // Image 4 (test, class 1): attribute 2 present when the id is odd (no), attribute 4 always.
        assert_eq!(catalogue.split("test")[0].concepts, vec![0.0, 0.0, 0.0, 1.0]);
        assert_eq!(catalogue.class_concepts[0], vec![0, 2]);
    }

    #[test]
    fn decoding_stores_boxes_as_masks_under_the_same_crop() {
        let dir = tempdir();
        cub(dir.path());
        let catalogue = ok(catalogue(&config(dir.path(), Concepts::Denoised { min_classes: 2 })));
        let out = tempdir();
        let decoder = Decoder { side: 4, skip_corrupt: false, out: out.path().to_owned() };
        let (meta, splits) = ok(catalogue.decode(&decoder, None, &|_| {}));
        assert!(meta.masks);
        assert_eq!(meta.splits.get("test"), Some(&3));
        ok(crate::data::save(out.path(), &meta, &splits));
        let data = ok(crate::data::Dataset::load(out.path(), tch::Device::Cpu, crate::data::Normalisation::FIXED));
        let test = ok(data.split("test"));
        let first_mask: Option<Vec<u8>> = test.masks().and_then(|m| Vec::try_from(m.get(0).flatten(0, -1)).ok());
        assert_eq!(first_mask, Some(vec![1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(test.images().int64_value(&[0, 0, 0, 0]), 80, "image 4 is red 80");
        assert_eq!(splits["test"].concepts.as_ref().map(Vec::len), Some(9));
    }

    #[test]
    fn missing_pieces_are_named() {
        let dir = tempdir();
        cub(dir.path());
        std::fs::remove_file(dir.path().join("bounding_boxes.txt")).unwrap_or_else(|e| panic!("{e}"));
        let message = err(catalogue(&config(dir.path(), Concepts::Raw)).map(|_| ()));
        assert!(message.starts_with("missing file") && message.contains("bounding_boxes.txt"), "{message}");
        text(&dir.path().join("bounding_boxes.txt"), "1 0 0 1 1\n");
        let message = err(catalogue(&config(dir.path(), Concepts::Raw)).map(|_| ()));
        assert!(message.contains("bounding_boxes.txt has no line for image 2"), "{message}");
        std::fs::rename(dir.path().join("images"), dir.path().join("pictures")).unwrap_or_else(|e| panic!("{e}"));
        let message = err(catalogue(&config(dir.path(), Concepts::Raw)).map(|_| ()));
        assert!(message.starts_with("missing folder") && message.ends_with("images"), "{message}");
    }

    #[test]
    fn attribute_names_may_sit_beside_the_folder_as_the_archive_unpacks() {
        let dir = tempdir();
        let root = dir.path().join("CUB_200_2011");
        cub(&root);
        std::fs::rename(root.join("attributes/attributes.txt"), dir.path().join("attributes.txt")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok(catalogue(&config(&root, Concepts::Raw))).concept_names[3], "has_d::w");
    }
}
