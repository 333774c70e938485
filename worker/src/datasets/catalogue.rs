//! A real dataset before decoding: its classes and concepts and, per split, the image files with
//! their labels. Readers build one from the published layout (cheap, and testable on layouts
//! alone); [`Catalogue::decode`] then reads every image once and gives the artifact.

use super::super::augmentation::Augmentation;
use super::super::data::{Meta, RawSplit};
use super::super::Result;
use super::decoder::Decoder;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One image file and what is known of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub path: PathBuf,
    pub label: i64,
    /// Concept indicators (empty for datasets without concept labels).
    pub concepts: Vec<f32>,
    /// A box around the object, in the file's pixels (CUB-200), stored as a mask.
    pub region: Option<Region>,
}

/// An axis-aligned box: left, top, width, height in source pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Region {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

pub struct Catalogue {
    /// The dataset's folder; skipped files are reported relative to it.
    pub root: PathBuf,
    pub class_names: Vec<String>,
    pub concept_names: Vec<String>,
    pub class_concepts: Vec<Vec<usize>>,
    pub splits: Vec<(&'static str, Vec<Record>)>,
}

impl Catalogue {
    /// The records of a split (none when the split is absent).
    #[cfg(test)]
    pub fn split(&self, name: &str) -> &[Record] {
        self.splits.iter().find(|(n, _)| *n == name).map_or(&[], |(_, r)| r.as_slice())
    }

    /// Decodes every image and assembles the artifact's meta and splits.
    pub fn decode(
        self,
        decoder: &Decoder,
        augment: Option<Augmentation>,
        progress: &dyn Fn(String),
    ) -> Result<(Meta, BTreeMap<&'static str, RawSplit>)> {
        let masks = self.splits.iter().all(|(_, records)| records.iter().all(|r| r.region.is_some()))
            && self.splits.iter().any(|(_, r)| !r.is_empty());
        let mut splits = BTreeMap::new();
        let mut sizes = BTreeMap::new();
        let mut skipped_files = Vec::new();
        for (name, records) in &self.splits {
            progress(format!("decoding {} {name} images at {} px", records.len(), decoder.side));
            let decoded = decoder.decode(name, records, masks)?;
            skipped_files.extend(decoded.skipped.iter().map(|p| relative(p, &self.root)));
            sizes.insert((*name).to_owned(), decoded.split.labels.len());
            splits.insert(*name, decoded.split);
        }
        let meta = Meta {
            classes: self.class_names.len(),
            class_names: self.class_names,
            concept_names: self.concept_names,
            class_concepts: self.class_concepts,
            image: decoder.side,
            splits: sizes,
            masks,
            skipped: skipped_files.len(),
            skipped_files,
            augment,
            channels: None,
        };
        Ok((meta, splits))
    }
}

fn relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}
