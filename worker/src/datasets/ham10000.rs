//! `ham10000`: the HAM10000 dermatoscopic images, benign against malignant.
//!
//! Layout: `HAM10000_metadata.csv` (columns `lesion_id`, `image_id`, `dx`, ...) and the images
//! as `<image_id>.jpg` in `HAM10000_images_part_1/` and `HAM10000_images_part_2/`.
//! Class 1 (malignant) is `dx` in {mel, bcc}; the other five diagnoses (akiec, bkl, df, nv, vasc)
//! are class 0 (benign). Many lesions were photographed more than once, so the split is by
//! `lesion_id`: `test` of the images, then `val` of the rest, whole lesions at a time, separately
//! within each class, drawn with the seed. No lesion has images on two sides.

use super::super::augmentation::Augmentation;
use super::super::data::{Meta, RawSplit};
use super::super::{io_error, Context, Result, StageError};
use super::catalogue::{Catalogue, Record};
use super::partition::Partition;
use super::table::{require_dir, Table};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const METADATA: &str = "HAM10000_metadata.csv";
pub const IMAGE_FOLDERS: [&str; 2] = ["HAM10000_images_part_1", "HAM10000_images_part_2"];
/// The seven diagnoses of the release, and the two counted as malignant.
const DIAGNOSES: [&str; 7] = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"];
const MALIGNANT: [&str; 2] = ["mel", "bcc"];

pub struct Config {
    pub root: PathBuf,
    pub val: f64,
    pub test: f64,
    pub seed: u64,
}

pub fn artifact(ctx: &Context) -> Result<(Meta, BTreeMap<&'static str, RawSplit>)> {
    let config = Config { root: super::root(ctx)?, val: ctx.float("val")?, test: ctx.float("test")?, seed: super::seed(ctx)? };
    let catalogue = catalogue(&config)?;
    let augment = ctx.boolean("augment")?.then(Augmentation::standard);
    catalogue.decode(&super::decoder(ctx)?, augment, &|m| ctx.progress(m))
}

/// Image files of the image folders by stem (`ISIC_0027419`), listed once rather than probed
/// per image.
fn image_files(root: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let mut files = BTreeMap::new();
    for folder in IMAGE_FOLDERS {
        let dir = root.join(folder);
        require_dir(&dir)?;
        for entry in std::fs::read_dir(&dir).map_err(|e| io_error(&dir, &e))? {
            let path = entry.map_err(|e| io_error(&dir, &e))?.path();
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                if super::is_image(&path) {
                    files.insert(stem.to_owned(), path.clone());
                }
            }
        }
    }
    Ok(files)
}

pub fn catalogue(config: &Config) -> Result<Catalogue> {
    let root = &config.root;
    require_dir(root)?;
    let table = Table::csv(&root.join(METADATA))?;
    let (lesion_col, image_col, dx_col) = (table.column("lesion_id")?, table.column("image_id")?, table.column("dx")?);
    let files = image_files(root)?;
    let (mut records, mut lesions) = (Vec::new(), Vec::new());
    for row in &table.rows {
        let image_id = table.field(row, image_col)?;
        let dx = table.field(row, dx_col)?;
        if !DIAGNOSES.contains(&dx) {
            return Err(table.error(row, format!("`dx` is `{dx}`; expected one of {}", DIAGNOSES.join(", "))));
        }
        let path = files.get(image_id).cloned().ok_or_else(|| {
            StageError::new(format!(
                "missing file {}.jpg, listed on line {} of {METADATA}, in {} or {}",
                image_id,
                row.line,
                root.join(IMAGE_FOLDERS[0]).display(),
                IMAGE_FOLDERS[1]
            ))
        })?;
        lesions.push(table.field(row, lesion_col)?.to_owned());
        records.push(Record { path, label: i64::from(MALIGNANT.contains(&dx)), concepts: Vec::new(), region: None });
    }
    let labels: Vec<i64> = records.iter().map(|r| r.label).collect();
    let partition = Partition::hold_out(&lesions, &labels, config.test, config.val, config.seed);
    let pick = |indices: &[usize]| indices.iter().map(|i| records[*i].clone()).collect::<Vec<_>>();
    Ok(Catalogue {
        root: root.clone(),
        class_names: vec!["benign".to_owned(), "malignant".to_owned()],
        concept_names: Vec::new(),
        class_concepts: vec![Vec::new(), Vec::new()],
        splits: vec![("train", pick(&partition.train)), ("val", pick(&partition.val)), ("test", pick(&partition.test))],
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{err, flat, ok, tempdir, text};
    use super::*;
    use std::collections::BTreeSet;

    /// 30 lesions, lesion k with 1 + k % 3 images (60 in all), the images alternating between
    /// the two folders. Every fifth lesion is `mel`, every seventh `bcc`, the rest cycle the
    /// benign diagnoses.
    fn ham(root: &Path) -> BTreeMap<String, (String, &'static str)> {
        let benign = ["nv", "bkl", "akiec", "df", "vasc"];
        let mut csv = String::from("lesion_id,image_id,dx,dx_type,age,sex,localization\n");
        let mut truth = BTreeMap::new();
        let mut n = 0;
        for lesion in 0..30 {
            let dx = if lesion % 5 == 0 {
                "mel"
            } else if lesion % 7 == 0 {
                "bcc"
            } else {
                benign[lesion % 5]
            };
            for _ in 0..=lesion % 3 {
                let image = format!("ISIC_{n:07}");
                flat(&root.join(IMAGE_FOLDERS[n % 2]).join(format!("{image}.jpg")), 6, 4, [120, 80, 60]);
                csv += &format!("HAM_{lesion:07},{image},{dx},histo,50.0,male,back\n");
                truth.insert(image, (format!("HAM_{lesion:07}"), dx));
                n += 1;
            }
        }
        text(&root.join(METADATA), &csv);
        truth
    }

    fn config(root: &Path) -> Config {
        Config { root: root.to_owned(), val: 0.1, test: 0.2, seed: 7 }
    }

    fn stem(record: &Record) -> String {
        record.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    }

    #[test]
    fn malignant_is_mel_or_bcc_and_no_lesion_is_on_two_sides() {
        let dir = tempdir();
        let truth = ham(dir.path());
        let catalogue = ok(catalogue(&config(dir.path())));
        let mut lesions_of: Vec<BTreeSet<String>> = Vec::new();
        let mut total = 0;
        for (name, records) in &catalogue.splits {
            let mut lesions = BTreeSet::new();
            for r in records {
                let (lesion, dx) = &truth[&stem(r)];
                assert_eq!(r.label, i64::from(*dx == "mel" || *dx == "bcc"), "{name}: {}", stem(r));
                lesions.insert(lesion.clone());
            }
            total += records.len();
            lesions_of.push(lesions);
        }
        assert_eq!(total, 60);
        for (i, a) in lesions_of.iter().enumerate() {
            for b in &lesions_of[i + 1..] {
                assert!(a.is_disjoint(b), "a lesion is on two sides");
            }
        }
        // 20% of the 20 malignant and 40 benign images is 4 and 8; a last lesion of up to three
        // images may overshoot each by two.
        let test = catalogue.split("test");
        let malignant = test.iter().filter(|r| r.label == 1).count();
        assert!(
            (4..=6).contains(&malignant) && (8..=10).contains(&(test.len() - malignant)),
            "{malignant} of {} test images malignant",
            test.len()
        );
        assert!(test.iter().any(|r| r.label == 1) && test.iter().any(|r| r.label == 0));
        assert_eq!(catalogue.class_names, vec!["benign", "malignant"]);
    }

    #[test]
    fn missing_folder_image_column_and_unknown_diagnosis_are_named() {
        let dir = tempdir();
        ham(dir.path());
        let csv = dir.path().join(METADATA);
        let original = std::fs::read_to_string(&csv).unwrap_or_default();
        text(&csv, &format!("{original}HAM_9,ISIC_9999999,mel,histo,1,male,back\n"));
        let message = err(catalogue(&config(dir.path())).map(|_| ()));
        assert!(message.starts_with("missing file ") && message.contains("ISIC_9999999.jpg") && message.contains("line 62"), "{message}");
        text(&csv, &format!("{original}HAM_9,ISIC_0000000,melanoma,histo,1,male,back\n"));
        let message = err(catalogue(&config(dir.path())).map(|_| ()));
        assert!(message.contains("line 62: `dx` is `melanoma`"), "{message}");
        text(&csv, &original.replace("lesion_id,image_id,dx,", "lesion_id,image_id,diagnosis,"));
        let message = err(catalogue(&config(dir.path())).map(|_| ()));
        assert!(message.contains("has no column `dx`"), "{message}");
        text(&csv, &original);
        std::fs::remove_dir_all(dir.path().join(IMAGE_FOLDERS[1])).unwrap_or_else(|e| panic!("{e}"));
        let message = err(catalogue(&config(dir.path())).map(|_| ()));
        assert!(message.starts_with("missing folder") && message.ends_with(IMAGE_FOLDERS[1]), "{message}");
    }
}
