//! Dataset artifacts: `meta.json`, the small per-image tensors (labels, concepts) of every split
//! in `data.safetensors`, and each split's images and masks in row files of their own
//! (`{split}.images.safetensors`, `{split}.masks.safetensors`; see [`rows`]). Images are stored
//! as bytes at the final size.
//!
//! Readers map the row files and gather a batch's rows on the host, then copy the batch to the
//! device (from pinned memory on CUDA, without waiting, so the copy overlaps the previous step
//! the device is still running) and normalise it there. Nothing holds a whole split: a node's
//! memory does not grow with the dataset, and a node that reads 16 images reads 16 rows.
//! Datasets that ask for augmentation record its settings in the meta; training batches then go
//! through [`Split::batch_augmented`], every other reader through [`Split::batch`].

use super::augmentation::{Augmentation, Crop};
use super::checkpoint::{self, Bytes};
use super::rows::{self, RowFile};
use super::{io_error, Result, StageError};
use rand::Rng;
use safetensors::tensor::Dtype;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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

/// The row file of a split's images in a dataset folder.
pub fn images_file(dir: &Path, split: &str) -> PathBuf {
    dir.join(format!("{split}.images.safetensors"))
}

/// The row file of a split's object masks in a dataset folder.
pub fn masks_file(dir: &Path, split: &str) -> PathBuf {
    dir.join(format!("{split}.masks.safetensors"))
}

/// One split: images `[n, 3, s, s]` and masks `[n, s, s]` as bytes, mapped from their files;
/// labels and optional concepts in memory. Batches come out on `device`.
pub struct Split {
    images: RowFile,
    pub labels: Tensor,
    // Ground truth travels with its split for stages that want it; today the concept stages read
    // labels alone (`checkpoint::load_selected`) and `compare` reads masks from the file.
    #[cfg_attr(not(test), allow(dead_code, reason = "no worker stage reads them yet"))]
    pub concepts: Option<Tensor>,
    masks: Option<RowFile>,
    device: Device,
}

impl Split {
    /// A split held in memory (tests, and stages that build images on the fly).
    pub fn in_memory(images: Tensor, labels: Tensor, device: Device) -> Split {
        Split { images: RowFile::in_memory(images), labels, concepts: None, masks: None, device }
    }

    pub fn len(&self) -> i64 {
        self.labels.size().first().copied().unwrap_or(0)
    }

    #[allow(dead_code, reason = "clippy's len_without_is_empty asks for it; the stages only need len")]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every image as a CPU byte tensor `[n, 3, s, s]` backed by the file: gather from it, do not
    /// keep it.
    pub fn images(&self) -> &Tensor {
        self.images.tensor()
    }

    pub fn masks(&self) -> Option<&Tensor> {
        self.masks.as_ref().map(RowFile::tensor)
    }

    /// The bytes of images `index` (row numbers, on any device) on the CPU.
    pub fn images_at(&self, index: &Tensor) -> Result<Tensor> {
        Ok(self.images().f_index_select(0, &index.f_to_device(Device::Cpu)?)?)
    }

    /// Images `index` as normalised floats on the split's device, ready for a network, and their
    /// labels. Pass the index on the CPU: one on the device would be copied back first.
    pub fn batch(&self, index: &Tensor) -> Result<(Tensor, Tensor)> {
        let index = index.f_to_device(Device::Cpu)?;
        let bytes = self.images().f_index_select(0, &index)?;
        let labels = self.labels.f_index_select(0, &index)?;
        let (bytes, labels) = match self.device {
            Device::Cpu => (bytes, labels),
            // Pinned host memory lets the copy run without blocking the host, which goes on to
            // gather the next batch; libtorch's pinned-memory cache does not hand a block out
            // again until the copy reading it has finished.
            device => (
                bytes.f_pin_memory(device)?.f_to_device_(device, Kind::Uint8, true, false)?,
                labels.f_pin_memory(device)?.f_to_device_(device, Kind::Int64, true, false)?,
            ),
        };
        Ok((normalise(&bytes)?, labels))
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

    /// Opens a dataset artifact: the meta and small tensors are read, the images and masks mapped.
    pub fn load(dir: &Path, device: Device) -> Result<Dataset> {
        let meta_path = dir.join("meta.json");
        let text = std::fs::read_to_string(&meta_path).map_err(|e| io_error(&meta_path, &e))?;
        let meta: Meta = serde_json::from_str(&text).map_err(|e| StageError::new(format!("{}: {e}", meta_path.display())))?;
        let mut tensors = checkpoint::load(&dir.join("data.safetensors"))?;
        let mut splits = BTreeMap::new();
        for split in SPLITS {
            let Some(labels) = tensors.remove(&format!("{split}.labels")) else { continue };
            let images = RowFile::open(&images_file(dir, split), "images")?;
            let masks = meta.masks.then(|| RowFile::open(&masks_file(dir, split), "masks")).transpose()?;
            let concepts = tensors.remove(&format!("{split}.concepts"));
            splits.insert(split.to_owned(), Split { images, labels, concepts, masks, device });
        }
        Ok(Dataset { meta, splits })
    }
}

/// A split's images or masks: in memory (synthetic datasets), or already written to the split's
/// row file by the decoder (real datasets), `rows` of them.
pub enum Rows {
    Memory(Vec<u8>),
    Stored { rows: usize },
}

impl Rows {
    #[cfg(test)]
    pub fn bytes(&self) -> &[u8] {
        match self {
            Rows::Memory(b) => b,
            Rows::Stored { .. } => &[],
        }
    }
}

/// A split built by a dataset stage, row-major.
pub struct RawSplit {
    pub images: Rows,
    pub labels: Vec<i64>,
    pub concepts: Option<Vec<f32>>,
    pub masks: Option<Rows>,
}

/// Writes a dataset artifact into `dir`: the row files of splits still in memory (the decoder
/// has written the others), then the small tensors and the meta.
pub fn save(dir: &Path, meta: &Meta, splits: &BTreeMap<&str, RawSplit>) -> Result<()> {
    let s = meta.image;
    let concepts = meta.concept_names.len();
    let mut tensors = BTreeMap::new();
    for (name, split) in splits {
        let n = split.labels.len();
        let rows = |what: &str, rows: &Rows, row_shape: &[usize], path: PathBuf| -> Result<()> {
            match rows {
                Rows::Memory(bytes) => {
                    let expected = n * row_shape.iter().product::<usize>();
                    if bytes.len() != expected {
                        return Err(StageError::new(format!(
                            "the {name} split's {what} hold {} bytes, expected {expected} for {n} rows of {row_shape:?}",
                            bytes.len()
                        )));
                    }
                    rows::write(&path, what, bytes, row_shape)
                }
                Rows::Stored { rows } if *rows == n => Ok(()),
                Rows::Stored { rows } => Err(StageError::new(format!("the {name} split has {n} labels but {rows} stored {what}"))),
            }
        };
        rows("images", &split.images, &[3, s, s], images_file(dir, name))?;
        match &split.masks {
            Some(m) => rows("masks", m, &[s, s], masks_file(dir, name))?,
            None if meta.masks => return Err(StageError::new(format!("the {name} split has no masks"))),
            None => {}
        }
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
    }
    checkpoint::save_bytes(
        &dir.join("data.safetensors"),
        &tensors,
        &BTreeMap::from([("format".to_owned(), "lthlang-dataset-2".to_owned())]),
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
        let meta = Meta {
            classes: 2,
            image: 2,
            masks: true,
            concept_names: vec!["x".to_owned(), "y".to_owned(), "z".to_owned()],
            ..Meta::default()
        };
        let split = RawSplit {
            images: Rows::Memory((0..24).collect()),
            labels: vec![1, 0],
            concepts: Some(vec![0.5, -1.0, 2.0, 0.0, 1.0, 0.25]),
            masks: Some(Rows::Memory(vec![1, 0, 0, 1, 0, 0, 1, 1])),
        };
        save(dir.path(), &meta, &BTreeMap::from([("test", split)])).unwrap_or_else(|e| panic!("{e}"));
        let data = Dataset::load(dir.path(), Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let test = data.split("test").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((test.images().size(), test.images().kind()), (vec![2, 3, 2, 2], Kind::Uint8));
        assert_eq!(test.images().int64_value(&[1, 2, 1, 0]), 12 + 8 + 2);
        assert_eq!(Vec::<i64>::try_from(&test.labels).unwrap_or_default(), vec![1, 0]);
        let concepts = test.concepts.as_ref().map(|c| (c.size(), c.double_value(&[0, 1]), c.double_value(&[1, 2])));
        assert_eq!(concepts, Some((vec![2, 3], -1.0, 0.25)));
        assert_eq!(test.masks().map(|m| m.int64_value(&[1, 1, 0])), Some(1));
        let (x, y) = test.batch(&Tensor::from_slice(&[1i64])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(y.int64_value(&[0]), 0);
        assert!((x.double_value(&[0, 2, 1, 0]) - ((22.0 / 255.0 - 0.5) / 0.25)).abs() < 1e-6);
        let short = RawSplit { images: Rows::Memory(vec![0; 11]), labels: vec![0], concepts: None, masks: None };
        let plain = Meta { masks: false, ..meta };
        let message = save(dir.path(), &plain, &BTreeMap::from([("train", short)])).err().map(|e| e.0).unwrap_or_default();
        assert!(message.contains("the train split's images hold 11 bytes, expected 12"), "{message}");
    }
}
