//! `derm7pt`: the seven-point checklist dataset (Kawahara et al., IEEE JBHI 2018), a probe set of
//! dermatoscopic images with checklist concepts for `cav` banks.
//!
//! Layout: `meta/meta.csv`, one case per row, with the dermatoscopic image's path under
//! `images/` in column `derm`, the `diagnosis`, and the checklist columns; optionally the
//! published split as `meta/train_indexes.csv`, `meta/valid_indexes.csv` and
//! `meta/test_indexes.csv` (column `indexes`: 0-based rows of meta.csv).
//!
//! The eight binary concepts and the checklist values that turn them on:
//!
//! | concept                          | column                  | on for                    |
//! |----------------------------------|-------------------------|---------------------------|
//! | `blue_whitish_veil`              | `blue_whitish_veil`     | present                   |
//! | `dots_and_globules:regular`      | `dots_and_globules`     | regular                   |
//! | `dots_and_globules:irregular`    | `dots_and_globules`     | irregular                 |
//! | `regression_structures`          | `regression_structures` | blue areas, white areas, combinations |
//! | `streaks:regular`                | `streaks`               | regular                   |
//! | `streaks:irregular`              | `streaks`               | irregular                 |
//! | `pigment_network:typical`        | `pigment_network`       | typical                   |
//! | `pigment_network:atypical`       | `pigment_network`       | atypical                  |
//!
//! `absent` turns none on; any other value is an error naming the row, so a changed release is
//! noticed rather than read as "absent". (`pigmentation` and `vascular_structures` are checklist
//! items too but not among the eight concepts.) Classes as for HAM10000: malignant (1) for the
//! melanomas (every `melanoma ...` diagnosis) and basal cell carcinoma, benign (0) otherwise.
//! Without the index files the split is drawn with the seed: 20% test, then 10% of the rest for
//! validation, stratified by class (the shares of the other datasets' defaults).

use super::super::data::{Meta, RawSplit};
use super::super::{Context, Result, StageError};
use super::catalogue::{Catalogue, Record};
use super::partition::Partition;
use super::table::{require_dir, Row, Table};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct Config {
    pub root: PathBuf,
    pub seed: u64,
}

/// (concept, column, the values that turn it on).
const CONCEPTS: [(&str, &str, &[&str]); 8] = [
    ("blue_whitish_veil", "blue_whitish_veil", &["present"]),
    ("dots_and_globules:regular", "dots_and_globules", &["regular"]),
    ("dots_and_globules:irregular", "dots_and_globules", &["irregular"]),
    ("regression_structures", "regression_structures", &["blue areas", "white areas", "combinations"]),
    ("streaks:regular", "streaks", &["regular"]),
    ("streaks:irregular", "streaks", &["irregular"]),
    ("pigment_network:typical", "pigment_network", &["typical"]),
    ("pigment_network:atypical", "pigment_network", &["atypical"]),
];
const ABSENT: &str = "absent";

/// The diagnoses of the release; those starting with "melanoma" and basal cell carcinoma are malignant.
const DIAGNOSES: [&str; 20] = [
    "basal cell carcinoma",
    "blue nevus",
    "clark nevus",
    "combined nevus",
    "congenital nevus",
    "dermal nevus",
    "dermatofibroma",
    "lentigo",
    "melanoma",
    "melanoma (in situ)",
    "melanoma (less than 0.76 mm)",
    "melanoma (0.76 to 1.5 mm)",
    "melanoma (more than 1.5 mm)",
    "melanoma metastasis",
    "melanosis",
    "miscellaneous",
    "recurrent nevus",
    "reed or spitz nevus",
    "seborrheic keratosis",
    "vascular lesion",
];

/// Shares of the seeded split used when the release's index files are absent.
const FALLBACK_TEST: f64 = 0.2;
const FALLBACK_VAL: f64 = 0.1;
const INDEX_FILES: [(&str, &str); 3] = [("train", "train_indexes.csv"), ("val", "valid_indexes.csv"), ("test", "test_indexes.csv")];

pub fn artifact(ctx: &Context) -> Result<(Meta, BTreeMap<&'static str, RawSplit>)> {
    let config = Config { root: super::root(ctx)?, seed: super::seed(ctx)? };
    // A probe set: its images are embedded, never trained on, so no augmentation.
    catalogue(&config)?.decode(&super::decoder(ctx)?, None, &|m| ctx.progress(m))
}

fn malignant(diagnosis: &str) -> bool {
    diagnosis.starts_with("melanoma") || diagnosis == "basal cell carcinoma"
}

fn concepts(table: &Table, row: &Row, columns: &[usize; 8]) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(CONCEPTS.len());
    for (&(_, column, on), &index) in CONCEPTS.iter().zip(columns) {
        let value = table.field(row, index)?;
        let known = value == ABSENT || CONCEPTS.iter().filter(|(_, c, _)| *c == column).any(|(_, _, values)| values.contains(&value));
        if !known {
            let mut expected = vec![ABSENT];
            expected.extend(CONCEPTS.iter().filter(|(_, c, _)| *c == column).flat_map(|(_, _, values)| values.iter().copied()));
            return Err(table.error(row, format!("`{column}` is `{value}`; expected one of {}", expected.join(", "))));
        }
        out.push(if on.contains(&value) { 1.0 } else { 0.0 });
    }
    Ok(out)
}

pub fn catalogue(config: &Config) -> Result<Catalogue> {
    let root = &config.root;
    require_dir(root)?;
    let images = root.join("images");
    require_dir(&images)?;
    let table = Table::csv(&root.join("meta").join("meta.csv"))?;
    let (derm, diagnosis) = (table.column("derm")?, table.column("diagnosis")?);
    let mut columns = [0usize; 8];
    for (c, (_, column, _)) in columns.iter_mut().zip(CONCEPTS) {
        *c = table.column(column)?;
    }
    let mut records = Vec::with_capacity(table.rows.len());
    for row in &table.rows {
        let dx = table.field(row, diagnosis)?;
        if !DIAGNOSES.contains(&dx) {
            return Err(table.error(row, format!("`diagnosis` is `{dx}`, not a diagnosis of the release ({})", DIAGNOSES.join(", "))));
        }
        let path = table.field(row, derm)?;
        if path.is_empty() {
            return Err(table.error(row, "`derm` (the dermatoscopic image) is empty"));
        }
        records.push(Record {
            path: images.join(path),
            label: i64::from(malignant(dx)),
            concepts: concepts(&table, row, &columns)?,
            region: None,
        });
    }
    let splits = match published_split(config, records.len())? {
        Some(split) => split,
        None => {
            let labels: Vec<i64> = records.iter().map(|r| r.label).collect();
            let items: Vec<usize> = (0..records.len()).collect();
            let p = Partition::hold_out(&items, &labels, FALLBACK_TEST, FALLBACK_VAL, config.seed);
            [p.train, p.val, p.test]
        }
    };
    let pick = |indices: &[usize]| indices.iter().map(|i| records[*i].clone()).collect::<Vec<_>>();
    Ok(Catalogue {
        root: root.clone(),
        class_names: vec!["benign".to_owned(), "malignant".to_owned()],
        concept_names: CONCEPTS.iter().map(|(name, _, _)| (*name).to_owned()).collect(),
        class_concepts: vec![Vec::new(), Vec::new()],
        splits: vec![("train", pick(&splits[0])), ("val", pick(&splits[1])), ("test", pick(&splits[2]))],
    })
}

/// The release's train/valid/test rows, when its three index files are there.
fn published_split(config: &Config, rows: usize) -> Result<Option<[Vec<usize>; 3]>> {
    let meta = config.root.join("meta");
    let present: Vec<bool> = INDEX_FILES.iter().map(|(_, f)| meta.join(f).exists()).collect();
    if present.iter().all(|p| !p) {
        return Ok(None);
    }
    let mut out: [Vec<usize>; 3] = Default::default();
    let mut seen = vec![false; rows];
    for ((_, file), split) in INDEX_FILES.iter().zip(out.iter_mut()) {
        let table = Table::csv(&meta.join(file))?;
        let column = table.column("indexes")?;
        for row in &table.rows {
            let index: usize = table.number(row, column, "the row index")?;
            match seen.get_mut(index) {
                None => return Err(table.error(row, format!("row {index} is past the end of meta.csv ({rows} rows)"))),
                Some(true) => return Err(table.error(row, format!("row {index} of meta.csv is in more than one split"))),
                Some(s) => *s = true,
            }
            split.push(index);
        }
    }
    if let Some(first) = seen.iter().position(|s| !s) {
        return Err(StageError::new(format!("{}: row {first} of meta.csv is in none of the three index files", meta.display())));
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{err, flat, ok, tempdir, text};
    use super::*;
    use std::path::Path;

    const HEADER: &str = "case_num,diagnosis,seven_point_score,pigment_network,streaks,pigmentation,regression_structures,dots_and_globules,blue_whitish_veil,vascular_structures,clinic,derm,notes";

    /// Six cases covering every checklist value that turns a concept on.
    fn derm(root: &Path) {
        let cases = [
            ("melanoma (in situ)", "atypical", "irregular", "blue areas", "irregular", "present"),
            ("clark nevus", "typical", "absent", "absent", "regular", "absent"),
            ("basal cell carcinoma", "absent", "regular", "white areas", "absent", "absent"),
            ("melanosis", "absent", "absent", "combinations", "absent", "absent"),
            ("seborrheic keratosis", "typical", "absent", "absent", "absent", "absent"),
            ("melanoma metastasis", "absent", "absent", "absent", "absent", "present"),
        ];
        let mut csv = format!("{HEADER}\n");
        for (i, (dx, network, streaks, regression, dots, veil)) in cases.iter().enumerate() {
            flat(&root.join(format!("images/Case/case{i}.jpg")), 8, 6, [150, 100, 90]);
            csv += &format!("{i},{dx},3,{network},{streaks},diffuse regular,{regression},{dots},{veil},absent,Case/clinic{i}.jpg,Case/case{i}.jpg,\"seen twice, once here\"\n");
        }
        text(&root.join("meta/meta.csv"), &csv);
    }

    fn config(root: &Path) -> Config {
        Config { root: root.to_owned(), seed: 0 }
    }

    fn published(root: &Path) {
        text(&root.join("meta/train_indexes.csv"), "indexes\n0\n2\n4\n");
        text(&root.join("meta/valid_indexes.csv"), "indexes\n5\n");
        text(&root.join("meta/test_indexes.csv"), "indexes\n1\n3\n");
    }

    #[test]
    fn checklist_values_map_to_the_eight_concepts() {
        let dir = tempdir();
        derm(dir.path());
        published(dir.path());
        let catalogue = ok(catalogue(&config(dir.path())));
        assert_eq!(catalogue.concept_names.len(), 8);
        // Order: BWV, DaG regular, DaG irregular, RS, streaks regular, streaks irregular, PN typical, PN atypical.
        let train = catalogue.split("train");
        assert_eq!(train[0].concepts, vec![1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        assert_eq!(train[1].concepts, vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
        assert_eq!(train[2].concepts, vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        let test = catalogue.split("test");
        assert_eq!(test[0].concepts, vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(test[1].concepts, vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        // Melanomas and BCC malignant; nevus, melanosis, keratosis benign.
        assert_eq!(train.iter().map(|r| r.label).collect::<Vec<_>>(), vec![1, 1, 0]);
        assert_eq!(test.iter().map(|r| r.label).collect::<Vec<_>>(), vec![0, 0]);
        assert_eq!(catalogue.split("val")[0].label, 1);
        assert!(train[0].path.ends_with("images/Case/case0.jpg"));
    }

    #[test]
    fn without_index_files_the_split_is_seeded() {
        let dir = tempdir();
        derm(dir.path());
        let a = ok(catalogue(&config(dir.path())));
        let b = ok(catalogue(&config(dir.path())));
        let total: usize = a.splits.iter().map(|(_, r)| r.len()).sum();
        assert_eq!(total, 6);
        assert_eq!(a.split("test"), b.split("test"));
        // Three per class: round(0.2 * 3) = 1 test image per class.
        assert_eq!(a.split("test").len(), 2);
    }

    #[test]
    fn bad_tables_are_named() {
        let dir = tempdir();
        derm(dir.path());
        let meta = dir.path().join("meta/meta.csv");
        let original = std::fs::read_to_string(&meta).unwrap_or_default();
        text(&meta, &original.replace("streaks,", "streak,"));
        let message = err(catalogue(&config(dir.path())).map(|_| ()));
        assert!(message.contains("meta.csv has no column `streaks`"), "{message}");
        text(&meta, &original.replacen("atypical,irregular", "atypical,sometimes", 1));
        let message = err(catalogue(&config(dir.path())).map(|_| ()));
        assert!(message.contains("line 2: `streaks` is `sometimes`; expected one of absent, regular, irregular"), "{message}");
        text(&meta, &original);
        published(dir.path());
        std::fs::remove_file(dir.path().join("meta/valid_indexes.csv")).unwrap_or_else(|e| panic!("{e}"));
        let message = err(catalogue(&config(dir.path())).map(|_| ()));
        assert!(message.starts_with("missing file") && message.contains("valid_indexes.csv"), "{message}");
        text(&dir.path().join("meta/valid_indexes.csv"), "indexes\n5\n2\n");
        let message = err(catalogue(&config(dir.path())).map(|_| ()));
        assert!(message.contains("row 2 of meta.csv is in more than one split"), "{message}");
    }
}
