//! Dataset artifacts: every split's tensors in one safetensors file plus `meta.json`. Images are
//! stored as bytes at the final size and normalised on the device when a batch is drawn.
//! Datasets that ask for augmentation record its settings in the meta; training batches then go
//! through [`Split::batch_augmented`], every other reader through [`Split::batch`].

use super::augmentation::{Augmentation, Crop};
use super::checkpoint::{self, Bytes};
use super::{io_error, Result, StageError};
use rand::Rng;
use safetensors::tensor::Dtype;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub const SPLITS: [&str; 3] = ["train", "val", "test"];

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Meta {
    pub classes: usize,
    pub class_names: Vec<String>,
    pub concept_names: Vec<String>,
    /// For each class, the concepts that define it (ground truth for concept fidelity).
    pub class_concepts: Vec<Vec<usize>>,
    pub image: usize,
    pub splits: BTreeMap<String, usize>,
    pub masks: bool,
    /// Images that could not be decoded and were skipped (`skip_corrupt = true`).
    pub skipped: usize,
    /// The files counted in `skipped`, relative to the dataset's root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_files: Vec<String>,
    /// The transform applied to training batches; none for datasets that do not ask for one
    /// (and for artifacts written before augmentation existed).
    #[serde(default)]
    pub augment: Option<Augmentation>,
}

/// One split on a device: images `[n, 3, s, s]` as bytes, labels, optional concepts and masks.
pub struct Split {
    pub images: Tensor,
    pub labels: Tensor,
    // Ground truth travels with its split for stages that want it; today the concept stages read
    // labels alone (`checkpoint::load_selected`) and `compare` reads masks from the file.
    #[cfg_attr(not(test), allow(dead_code, reason = "no worker stage reads them yet"))]
    pub concepts: Option<Tensor>,
    #[cfg_attr(not(test), allow(dead_code, reason = "no worker stage reads them yet"))]
    pub masks: Option<Tensor>,
}

impl Split {
    pub fn len(&self) -> i64 {
        self.labels.size().first().copied().unwrap_or(0)
    }

    #[allow(dead_code, reason = "clippy's len_without_is_empty asks for it; the stages only need len")]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Images `index` as normalised floats, ready for a network.
    pub fn batch(&self, index: &Tensor) -> Result<(Tensor, Tensor)> {
        let images = normalise(&self.images.f_index_select(0, index)?)?;
        Ok((images, self.labels.f_index_select(0, index)?))
    }

    /// Like [`Split::batch`], with one random crop and flip per image drawn from `rng`.
    pub fn batch_augmented(&self, index: &Tensor, augmentation: &Augmentation, rng: &mut impl Rng) -> Result<(Tensor, Tensor)> {
        let (images, labels) = self.batch(index)?;
        let size = images.size();
        let (n, side) = (size.first().copied().unwrap_or(0), size.get(3).copied().unwrap_or(0));
        let side = usize::try_from(side).unwrap_or(0);
        let crops: Vec<Crop> = (0..n).map(|_| augmentation.draw(side, rng)).collect();
        Ok((Augmentation::apply(&images, &crops)?, labels))
    }
}

/// Bytes to the network's input scale: (x / 255 - 0.5) / 0.25, the same for every dataset.
pub fn normalise(images: &Tensor) -> Result<Tensor> {
    Ok(images.f_to_kind(Kind::Float)?.f_div_scalar(255.0)?.f_sub_scalar(0.5)?.f_div_scalar(0.25)?)
}

pub struct Dataset {
    pub meta: Meta,
    pub splits: BTreeMap<String, Split>,
}

impl Dataset {
    pub fn split(&self, name: &str) -> Result<&Split> {
        self.splits.get(name).ok_or_else(|| StageError::new(format!("the dataset has no `{name}` split")))
    }

    pub fn load(dir: &Path, device: Device) -> Result<Dataset> {
        let meta_path = dir.join("meta.json");
        let text = std::fs::read_to_string(&meta_path).map_err(|e| io_error(&meta_path, &e))?;
        let meta: Meta = serde_json::from_str(&text).map_err(|e| StageError::new(format!("{}: {e}", meta_path.display())))?;
        let mut tensors = checkpoint::load(&dir.join("data.safetensors"))?;
        let mut splits = BTreeMap::new();
        for split in SPLITS {
            let mut take = |what: &str| tensors.remove(&format!("{split}.{what}")).map(|t| t.to_device(device));
            let (Some(images), Some(labels)) = (take("images"), take("labels")) else { continue };
            let concepts = take("concepts");
            let masks = take("masks");
            splits.insert(split.to_owned(), Split { images, labels, concepts, masks });
        }
        Ok(Dataset { meta, splits })
    }
}

/// A split built in memory by a dataset stage, row-major.
pub struct RawSplit {
    pub images: Vec<u8>,
    pub labels: Vec<i64>,
    pub concepts: Option<Vec<f32>>,
    pub masks: Option<Vec<u8>>,
}

/// Writes a dataset artifact into `dir`. The bytes go to the file straight from the splits' buffers:
/// a real dataset's images are gigabytes, and a copy through tensors would double or triple them.
pub fn save(dir: &Path, meta: &Meta, splits: &BTreeMap<&str, RawSplit>) -> Result<()> {
    let s = meta.image;
    let concepts = meta.concept_names.len();
    let mut tensors = BTreeMap::new();
    for (name, split) in splits {
        let n = split.labels.len();
        put(&mut tensors, name, "images", Dtype::U8, vec![n, 3, s, s], Cow::Borrowed(&split.images), 1)?;
        put(&mut tensors, name, "labels", Dtype::I64, vec![n], Cow::Owned(split.labels.iter().flat_map(|l| l.to_le_bytes()).collect()), 8)?;
        if let Some(c) = &split.concepts {
            put(
                &mut tensors,
                name,
                "concepts",
                Dtype::F32,
                vec![n, concepts],
                Cow::Owned(c.iter().flat_map(|v| v.to_le_bytes()).collect()),
                4,
            )?;
        }
        if let Some(m) = &split.masks {
            put(&mut tensors, name, "masks", Dtype::U8, vec![n, s, s], Cow::Borrowed(m), 1)?;
        }
    }
    checkpoint::save_bytes(
        &dir.join("data.safetensors"),
        &tensors,
        &BTreeMap::from([("format".to_owned(), "lthlang-dataset-1".to_owned())]),
    )?;
    let path = dir.join("meta.json");
    let text = serde_json::to_string_pretty(meta).map_err(|e| StageError::new(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| io_error(&path, &e))
}

/// Adds `{split}.{what}` after checking its byte count against its shape (`width` bytes a value).
fn put<'a>(
    tensors: &mut BTreeMap<String, Bytes<'a>>,
    split: &str,
    what: &str,
    dtype: Dtype,
    shape: Vec<usize>,
    data: Cow<'a, [u8]>,
    width: usize,
) -> Result<()> {
    let expected = shape.iter().product::<usize>() * width;
    if data.len() != expected {
        return Err(StageError::new(format!(
            "the {split} split's {what} hold {} bytes, expected {expected} for shape {shape:?}",
            data.len()
        )));
    }
    tensors.insert(format!("{split}.{what}"), Bytes { dtype, shape, data });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_split_loads_with_its_values_kinds_and_shapes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let meta = Meta { classes: 2, image: 2, concept_names: vec!["x".to_owned(), "y".to_owned(), "z".to_owned()], ..Meta::default() };
        let split = RawSplit {
            images: (0..24).collect(),
            labels: vec![1, 0],
            concepts: Some(vec![0.5, -1.0, 2.0, 0.0, 1.0, 0.25]),
            masks: Some(vec![1, 0, 0, 1, 0, 0, 1, 1]),
        };
        save(dir.path(), &meta, &BTreeMap::from([("test", split)])).unwrap_or_else(|e| panic!("{e}"));
        let data = Dataset::load(dir.path(), Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let test = data.split("test").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((test.images.size(), test.images.kind()), (vec![2, 3, 2, 2], Kind::Uint8));
        assert_eq!(test.images.int64_value(&[1, 2, 1, 0]), 12 + 8 + 2);
        assert_eq!(Vec::<i64>::try_from(&test.labels).unwrap_or_default(), vec![1, 0]);
        let concepts = test.concepts.as_ref().map(|c| (c.size(), c.double_value(&[0, 1]), c.double_value(&[1, 2])));
        assert_eq!(concepts, Some((vec![2, 3], -1.0, 0.25)));
        assert_eq!(test.masks.as_ref().map(|m| m.int64_value(&[1, 1, 0])), Some(1));
        let short = RawSplit { images: vec![0; 11], labels: vec![0], concepts: None, masks: None };
        let message = save(dir.path(), &meta, &BTreeMap::from([("train", short)])).err().map(|e| e.0).unwrap_or_default();
        assert!(message.contains("the train split's images hold 11 bytes, expected 12"), "{message}");
    }
}
