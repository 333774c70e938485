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
    /// Per-channel mean and deviation of the training split's images, on the 0–1 scale (what
    /// `normalize = dataset` uses). Absent in artifacts written before it was recorded; then
    /// [`channel_statistics`] computes it from the rows, giving the same numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Normalisation>,
}

/// How image bytes become a network's input: x / 255, minus `mean`, divided by `std`, per
/// channel (RGB). A model's `normalize` field chooses it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

impl Normalisation {
    /// (x / 255 - 0.5) / 0.25 for every channel: the scale every dataset had before
    /// `normalize` existed, and what `normalize = fixed` keeps.
    pub const FIXED: Normalisation = Normalisation { mean: [0.5; 3], std: [0.25; 3] };
    /// ImageNet's statistics as torchvision's pretrained weights expect them.
    pub const IMAGENET: Normalisation = Normalisation { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

    /// Bytes `[n, 3, h, w]` to normalised floats on the same device.
    pub fn apply(&self, images: &Tensor) -> Result<Tensor> {
        let x = images.f_to_kind(Kind::Float)?.f_div_scalar(255.0)?;
        let uniform = |v: &[f64; 3]| v.iter().all(|c| c.to_bits() == v[0].to_bits());
        if uniform(&self.mean) && uniform(&self.std) {
            // Scalars: the same operations, and so the same bits, as before per-channel values.
            return Ok(x.f_sub_scalar(self.mean[0])?.f_div_scalar(self.std[0])?);
        }
        // As torchvision's `Normalize`: the constants as float32 tensors, subtracted then divided.
        let column = |v: &[f64; 3]| -> Result<Tensor> {
            Ok(Tensor::f_from_slice(&v.map(|c| c as f32))?.f_reshape([1, 3, 1, 1])?.f_to_device(x.device())?)
        };
        Ok(x.f_sub(&column(&self.mean)?)?.f_div(&column(&self.std)?)?)
    }
}

/// Per-channel mean and (population) deviation of byte images `[n, 3, h, w]` on the 0–1 scale,
/// summed in f64 over chunks of rows, so a mapped split is read once and never held whole.
pub fn channel_statistics_of(images: &Tensor) -> Result<Normalisation> {
    let size = images.size();
    let n = size.first().copied().unwrap_or(0);
    if n == 0 || size.len() != 4 || size[1] != 3 {
        return Err(StageError::new(format!("`normalize = dataset` needs the training split's images, and it has none (shape {size:?})")));
    }
    let (mut sum, mut squares) = ([0f64; 3], [0f64; 3]);
    let chunk = 256;
    let mut start = 0;
    while start < n {
        let rows = images.f_narrow(0, start, chunk.min(n - start))?.f_to_kind(Kind::Double)?;
        let s = Vec::<f64>::try_from(rows.f_sum_dim_intlist(&[0i64, 2, 3][..], false, Kind::Double)?)?;
        let q = Vec::<f64>::try_from(rows.f_square()?.f_sum_dim_intlist(&[0i64, 2, 3][..], false, Kind::Double)?)?;
        for c in 0..3 {
            sum[c] += s.get(c).copied().unwrap_or(0.0);
            squares[c] += q.get(c).copied().unwrap_or(0.0);
        }
        start += chunk;
    }
    let count = (n * size[2] * size[3]) as f64;
    let mean = sum.map(|s| s / count / 255.0);
    let mut std = [0f64; 3];
    for c in 0..3 {
        std[c] = (squares[c] / count / (255.0 * 255.0) - mean[c] * mean[c]).max(0.0).sqrt();
        if std[c] == 0.0 {
            return Err(StageError::new(format!(
                "`normalize = dataset`: channel {c} of the training images is constant, so it has no deviation to divide by"
            )));
        }
    }
    Ok(Normalisation { mean, std })
}

/// The training split's channel statistics of the dataset artifact in `dir`: as recorded in its
/// meta, or computed from its rows for an artifact that predates the record.
pub fn channel_statistics(dir: &Path) -> Result<Normalisation> {
    let meta = read_meta(dir)?;
    if let Some(channels) = meta.channels {
        return Ok(channels);
    }
    let train = RowFile::open(&images_file(dir, "train"), "images")?;
    channel_statistics_of(train.tensor())
}

fn read_meta(dir: &Path) -> Result<Meta> {
    let meta_path = dir.join("meta.json");
    let text = std::fs::read_to_string(&meta_path).map_err(|e| io_error(&meta_path, &e))?;
    serde_json::from_str(&text).map_err(|e| StageError::new(format!("{}: {e}", meta_path.display())))
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
    input: Normalisation,
}

impl Split {
    /// A split held in memory (tests, and stages that build images on the fly).
    pub fn in_memory(images: Tensor, labels: Tensor, device: Device) -> Split {
        Split { images: RowFile::in_memory(images), labels, concepts: None, masks: None, device, input: Normalisation::FIXED }
    }

    /// The same split, normalised as `input` says.
    #[cfg_attr(not(test), allow(dead_code, reason = "stages set the normalisation when they load a dataset"))]
    pub fn normalised(mut self, input: Normalisation) -> Split {
        self.input = input;
        self
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
        Ok((self.input.apply(&bytes)?, labels))
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

pub struct Dataset {
    pub meta: Meta,
    pub splits: BTreeMap<String, Split>,
}

impl Dataset {
    pub fn split(&self, name: &str) -> Result<&Split> {
        self.splits.get(name).ok_or_else(|| StageError::new(format!("the dataset has no `{name}` split")))
    }

    /// Opens a dataset artifact: the meta and small tensors are read, the images and masks mapped.
    /// Batches come out normalised as `input` says (the network's choice, see `models::Spec`).
    pub fn load(dir: &Path, device: Device, input: Normalisation) -> Result<Dataset> {
        let meta = read_meta(dir)?;
        let mut tensors = checkpoint::load(&dir.join("data.safetensors"))?;
        let mut splits = BTreeMap::new();
        for split in SPLITS {
            let Some(labels) = tensors.remove(&format!("{split}.labels")) else { continue };
            let images = RowFile::open(&images_file(dir, split), "images")?;
            let masks = meta.masks.then(|| RowFile::open(&masks_file(dir, split), "masks")).transpose()?;
            let concepts = tensors.remove(&format!("{split}.concepts"));
            splits.insert(split.to_owned(), Split { images, labels, concepts, masks, device, input });
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
    // The training split's channel statistics, recorded once for `normalize = dataset`; a
    // dataset without training images has none to record.
    let mut meta = meta.clone();
    if splits.get("train").is_some_and(|t| !t.labels.is_empty()) {
        let train = RowFile::open(&images_file(dir, "train"), "images")?;
        meta.channels = channel_statistics_of(train.tensor()).ok();
    }
    let path = dir.join("meta.json");
    let text = serde_json::to_string_pretty(&meta).map_err(|e| StageError::new(e.to_string()))?;
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
        let data = Dataset::load(dir.path(), Device::Cpu, Normalisation::FIXED).unwrap_or_else(|e| panic!("{e}"));
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

    #[test]
    fn normalisation_is_per_channel_and_fixed_keeps_the_old_bits() {
        let bytes = Tensor::from_slice(&[0u8, 51, 102, 153, 204, 255]).reshape([1, 3, 1, 2]);
        let fixed = Normalisation::FIXED.apply(&bytes).unwrap_or_else(|e| panic!("{e}"));
        let old = bytes.to_kind(Kind::Float) / 255.0;
        let old = (old - 0.5) / 0.25;
        assert!(fixed.equal(&old), "fixed must give the bits the single formula gave");
        let imagenet = Normalisation::IMAGENET.apply(&bytes).unwrap_or_else(|e| panic!("{e}"));
        let (m, s) = (Normalisation::IMAGENET.mean, Normalisation::IMAGENET.std);
        for (c, w, byte) in [(0, 0, 0.0), (0, 1, 51.0), (1, 0, 102.0), (1, 1, 153.0), (2, 0, 204.0), (2, 1, 255.0)] {
            let expected = (byte / 255.0 - m[c]) / s[c];
            let got = imagenet.double_value(&[0, c as i64, 0, w]);
            assert!((got - expected).abs() < 1e-6, "channel {c}: {got} vs {expected}");
        }
    }

    #[test]
    fn channel_statistics_are_the_population_mean_and_deviation_on_the_unit_scale() {
        // 300 images (more than one chunk of rows), 2 x 2 px: red cycles 0..=255, green is 10
        // or 30, blue constant 128 in all but one pixel.
        let n = 300;
        let mut bytes = Vec::new();
        for i in 0..n {
            bytes.extend((0..4).map(|p| ((i * 4 + p) % 256) as u8));
            bytes.extend((0..4).map(|p| if p % 2 == 0 { 10u8 } else { 30 }));
            bytes.extend((0..4).map(|p| if i == 0 && p == 0 { 0u8 } else { 128 }));
        }
        let images = Tensor::from_slice(&bytes).reshape([n as i64, 3, 2, 2]);
        let stats = channel_statistics_of(&images).unwrap_or_else(|e| panic!("{e}"));
        let floats = images.to_kind(Kind::Double) / 255.0;
        for c in 0..3 {
            let channel = floats.select(1, c);
            let mean = channel.mean(Kind::Double).double_value(&[]);
            let std = channel.std(false).double_value(&[]);
            assert!((stats.mean[c as usize] - mean).abs() < 1e-12 && (stats.std[c as usize] - std).abs() < 1e-9, "{c}: {stats:?}");
        }
        assert!((stats.mean[1] - 20.0 / 255.0).abs() < 1e-12 && (stats.std[1] - 10.0 / 255.0).abs() < 1e-12);
        let flat = Tensor::full([2, 3, 2, 2], 7, (Kind::Uint8, Device::Cpu));
        let message = channel_statistics_of(&flat).err().map(|e| e.0).unwrap_or_default();
        assert!(message.contains("constant"), "{message}");
    }

    #[test]
    fn a_saved_dataset_records_its_training_channels_and_old_artifacts_get_the_same_numbers() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let meta = Meta { classes: 2, image: 2, ..Meta::default() };
        let split = RawSplit { images: Rows::Memory((0..24).map(|v| v * 10).collect()), labels: vec![1, 0], concepts: None, masks: None };
        save(dir.path(), &meta, &BTreeMap::from([("train", split)])).unwrap_or_else(|e| panic!("{e}"));
        let recorded = read_meta(dir.path()).unwrap_or_else(|e| panic!("{e}")).channels;
        // Red: 0, 10, 20, 30 and 120..150 (image 2) on the 0-255 scale.
        let red = [0.0, 10.0, 20.0, 30.0, 120.0, 130.0, 140.0, 150.0].map(|v: f64| v / 255.0);
        let mean = red.iter().sum::<f64>() / 8.0;
        let std = (red.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 8.0).sqrt();
        let stats = recorded.unwrap_or_else(|| panic!("no channels recorded"));
        assert!((stats.mean[0] - mean).abs() < 1e-12 && (stats.std[0] - std).abs() < 1e-12, "{stats:?}");
        // An artifact written before the record: the same numbers, from its rows.
        let path = dir.path().join("meta.json");
        let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_default()).unwrap_or_default();
        json.as_object_mut().map(|o| o.remove("channels"));
        std::fs::write(&path, json.to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(channel_statistics(dir.path()).ok(), Some(stats));
        let data = Dataset::load(dir.path(), Device::Cpu, stats).unwrap_or_else(|e| panic!("{e}"));
        let (x, _) = data.split("train").and_then(|t| t.batch(&Tensor::from_slice(&[0i64]))).unwrap_or_else(|e| panic!("{e}"));
        assert!((x.double_value(&[0, 0, 0, 1]) - (10.0 / 255.0 - mean) / std).abs() < 1e-5);
    }
}
