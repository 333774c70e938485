//! Dataset artifacts: every split's tensors in one safetensors file plus `meta.json`. Images are
//! stored as bytes at the final size and normalised on the device when a batch is drawn.

use super::{checkpoint, io_error, Result, StageError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub const SPLITS: [&str; 3] = ["train", "val", "test"];

#[derive(Clone, Debug, Serialize, Deserialize)]
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
}

/// One split on a device: images `[n, 3, s, s]` as bytes, labels, optional concepts and masks.
pub struct Split {
    pub images: Tensor,
    pub labels: Tensor,
    pub concepts: Option<Tensor>,
    pub masks: Option<Tensor>,
}

impl Split {
    pub fn len(&self) -> i64 {
        self.labels.size().first().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Images `index` as normalised floats, ready for a network.
    pub fn batch(&self, index: &Tensor) -> Result<(Tensor, Tensor)> {
        let images = normalise(&self.images.f_index_select(0, index)?)?;
        Ok((images, self.labels.f_index_select(0, index)?))
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

/// Writes a dataset artifact into `dir`.
pub fn save(dir: &Path, meta: &Meta, splits: &BTreeMap<&str, RawSplit>) -> Result<()> {
    let s = i64::try_from(meta.image).unwrap_or(0);
    let concepts = i64::try_from(meta.concept_names.len()).unwrap_or(0);
    let mut tensors = BTreeMap::new();
    for (name, split) in splits {
        let n = i64::try_from(split.labels.len()).unwrap_or(0);
        tensors.insert(format!("{name}.images"), Tensor::f_from_slice(&split.images)?.f_reshape([n, 3, s, s])?);
        tensors.insert(format!("{name}.labels"), Tensor::f_from_slice(&split.labels)?);
        if let Some(c) = &split.concepts {
            tensors.insert(format!("{name}.concepts"), Tensor::f_from_slice(c)?.f_reshape([n, concepts])?);
        }
        if let Some(m) = &split.masks {
            tensors.insert(format!("{name}.masks"), Tensor::f_from_slice(m)?.f_reshape([n, s, s])?);
        }
    }
    checkpoint::save(&dir.join("data.safetensors"), &tensors, &BTreeMap::from([("format".to_owned(), "lthlang-dataset-1".to_owned())]))?;
    let path = dir.join("meta.json");
    let text = serde_json::to_string_pretty(meta).map_err(|e| StageError::new(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| io_error(&path, &e))
}
