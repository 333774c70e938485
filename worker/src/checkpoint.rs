//! Checkpoints as safetensors files with string metadata, readable from Python
//! (`safetensors.torch.load_file`). Tensors are written in sorted name order.

use super::{Result, StageError};
use safetensors::tensor::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::{Kind, Tensor};

/// One tensor's little-endian bytes, owned or borrowed from the caller's buffer (dataset images
/// are written straight from the decoded bytes rather than copied into a tensor and out again).
pub struct Bytes<'a> {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Cow<'a, [u8]>,
}

impl View for &Bytes<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn dtype(kind: Kind) -> Result<Dtype> {
    Ok(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        Kind::Half => Dtype::F16,
        other => return Err(StageError::new(format!("cannot store tensors of kind {other:?}"))),
    })
}

fn kind(dtype: Dtype) -> Result<Kind> {
    Ok(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        Dtype::F16 => Kind::Half,
        other => return Err(StageError::new(format!("cannot read tensors of type {other:?}"))),
    })
}

/// Writes tensors (moved to the CPU) and metadata; the file is complete or absent (temp + rename).
///
/// Tensors already on the CPU and contiguous are written from their own memory, not copied
/// into a buffer first (a ResNet-50 training state is a few hundred megabytes an epoch).
pub fn save(path: &Path, tensors: &BTreeMap<String, Tensor>, metadata: &BTreeMap<String, String>) -> Result<()> {
    let mut cpu = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t.f_to_device(tch::Device::Cpu)?.f_contiguous()?;
        dtype(t.kind())?;
        cpu.push((name.as_str(), t));
    }
    let mut entries = BTreeMap::new();
    for (name, t) in &cpu {
        let len = t.numel() * t.kind().elt_size_in_bytes();
        let data: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: `t` is a contiguous CPU tensor of `len` bytes that `cpu` keeps alive, and
            // unchanged, until the file is written; the slice does not outlive this function.
            unsafe { std::slice::from_raw_parts(t.data_ptr().cast::<u8>().cast_const(), len) }
        };
        let shape = t.size().iter().map(|d| usize::try_from(*d).unwrap_or(0)).collect();
        entries.insert((*name).to_owned(), Bytes { dtype: dtype(t.kind())?, shape, data: Cow::Borrowed(data) });
    }
    save_bytes(path, &entries, metadata)
}

/// Writes tensors given as bytes; like [`save`].
pub fn save_bytes(path: &Path, entries: &BTreeMap<String, Bytes<'_>>, metadata: &BTreeMap<String, String>) -> Result<()> {
    let views: Vec<(&str, &Bytes)> = entries.iter().map(|(n, b)| (n.as_str(), b)).collect();
    let metadata: HashMap<String, String> = metadata.clone().into_iter().collect();
    let temp = path.with_extension("safetensors.tmp");
    safetensors::tensor::serialize_to_file(views, &Some(metadata), &temp)
        .map_err(|e| StageError::new(format!("{}: {e}", temp.display())))?;
    sort_header(&temp)?;
    std::fs::rename(&temp, path).map_err(|e| super::io_error(path, &e))
}

/// Rewrites a safetensors header with its keys in sorted order. The crate writes the metadata
/// from a `HashMap`, whose order changes from process to process, so two runs that compute the
/// same tensors would otherwise write different bytes (and different checksums). The sorted
/// header has the same tokens, hence the same length, and is written in place.
fn sort_header(path: &Path) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let fail = |e: &dyn std::fmt::Display| StageError::new(format!("{}: {e}", path.display()));
    let mut file = std::fs::OpenOptions::new().read(true).write(true).open(path).map_err(|e| fail(&e))?;
    let mut size = [0u8; 8];
    file.read_exact(&mut size).map_err(|e| fail(&e))?;
    let length = usize::try_from(u64::from_le_bytes(size)).map_err(|e| fail(&e))?;
    let mut header = vec![0u8; length];
    file.read_exact(&mut header).map_err(|e| fail(&e))?;
    let parsed: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&header).map_err(|e| fail(&e))?;
    let sorted: BTreeMap<String, BTreeMap<String, serde_json::Value>> =
        parsed.into_iter().map(|(k, v)| (k, v.as_object().map(|o| o.clone().into_iter().collect()).unwrap_or_default())).collect();
    let mut text = serde_json::to_vec(&sorted).map_err(|e| fail(&e))?;
    if text.len() > length {
        return Err(fail(&"the sorted header is longer than the original"));
    }
    text.resize(length, b' ');
    file.seek(SeekFrom::Start(8)).map_err(|e| fail(&e))?;
    file.write_all(&text).map_err(|e| fail(&e))
}

/// A file mapped read-only. Tensors are copied from the mapping straight into their own memory,
/// once; the file is never read into a buffer of its own first.
fn map(path: &Path) -> Result<memmap2::Mmap> {
    let file = std::fs::File::open(path).map_err(|e| super::io_error(path, &e))?;
    // SAFETY: read-only; cache entries and partial states are replaced by rename, never
    // rewritten in place, so the mapped file does not change while it is read.
    unsafe { memmap2::Mmap::map(&file) }.map_err(|e| super::io_error(path, &e))
}

/// Reads every tensor of a file. A truncated or corrupt file is an error naming it.
pub fn load(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    Ok(load_with_metadata(path)?.0)
}

/// Every tensor of a file and its string metadata.
pub fn load_with_metadata(path: &Path) -> Result<(BTreeMap<String, Tensor>, BTreeMap<String, String>)> {
    let bytes = map(path)?;
    let unreadable = |e: &dyn std::fmt::Display| StageError::new(format!("{} is not a readable safetensors file: {e}", path.display()));
    let file = SafeTensors::deserialize(&bytes).map_err(|e| unreadable(&e))?;
    let mut out = BTreeMap::new();
    for (name, view) in file.tensors() {
        let shape: Vec<i64> = view.shape().iter().map(|d| i64::try_from(*d).unwrap_or(0)).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind(view.dtype())?)?;
        out.insert(name, t);
    }
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| unreadable(&e))?;
    let metadata = header.metadata().clone().unwrap_or_default().into_iter().collect();
    Ok((out, metadata))
}

/// Reads only the named tensors of a file, seeking past the others: a dataset's concept labels
/// without its images. Names the file lacks are absent from the result.
pub fn load_selected(path: &Path, names: &[&str]) -> Result<BTreeMap<String, Tensor>> {
    let unreadable = |why: &str| StageError::new(format!("{} is not a readable safetensors file: {why}", path.display()));
    let bytes = map(path)?;
    let prefix: [u8; 8] = bytes.get(..8).and_then(|p| p.try_into().ok()).ok_or_else(|| unreadable("shorter than its header"))?;
    let header_len = usize::try_from(u64::from_le_bytes(prefix)).map_err(|_| unreadable("header too large"))?;
    let data_start = header_len.checked_add(8).filter(|&d| d <= bytes.len()).ok_or_else(|| unreadable("its header runs past the end"))?;
    let layout: safetensors::tensor::Metadata = serde_json::from_slice(&bytes[8..data_start]).map_err(|e| unreadable(&e.to_string()))?;
    let infos = layout.tensors();
    let mut out = BTreeMap::new();
    for name in names {
        let Some(info) = infos.get(*name) else { continue };
        let (start, end) = info.data_offsets;
        let numel: usize = info.shape.iter().product();
        let data =
            bytes.get(data_start.saturating_add(start)..data_start.saturating_add(end)).filter(|d| d.len() == numel * info.dtype.size());
        let Some(data) = data.filter(|_| end >= start) else {
            return Err(unreadable(&format!("`{name}` has inconsistent offsets")));
        };
        let shape: Vec<i64> = info.shape.iter().map(|d| i64::try_from(*d).unwrap_or(0)).collect();
        out.insert((*name).to_owned(), Tensor::f_from_data_size(data, &shape, kind(info.dtype)?)?);
    }
    Ok(out)
}

/// Copies stored values into existing variables, which must all be present with equal shapes.
/// Names the file holds but the variables lack are ignored only if listed in `ignore`
/// (PyTorch's `num_batches_tracked`).
pub fn restore(vars: &BTreeMap<String, Tensor>, stored: &BTreeMap<String, Tensor>, source: &Path) -> Result<()> {
    let _guard = tch::no_grad_guard();
    let missing: Vec<&str> = vars.keys().filter(|k| !stored.contains_key(*k)).map(String::as_str).collect();
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).copied().collect();
        return Err(StageError::new(format!(
            "{} lacks {} of the model's tensors, such as {}",
            source.display(),
            missing.len(),
            shown.join(", ")
        )));
    }
    for (name, var) in vars {
        let value = &stored[name];
        if value.size() != var.size() {
            return Err(StageError::new(format!(
                "{}: `{name}` has shape {:?}, the model expects {:?}",
                source.display(),
                value.size(),
                var.size()
            )));
        }
        let mut var = var.shallow_clone();
        var.f_copy_(&value.f_to_kind(var.kind())?)?;
    }
    Ok(())
}

/// A deep copy of every variable (for rewinding and best-epoch selection).
pub fn snapshot(vars: &BTreeMap<String, Tensor>) -> BTreeMap<String, Tensor> {
    let _guard = tch::no_grad_guard();
    vars.iter().map(|(k, v)| (k.clone(), v.detach().copy())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_selected_reads_only_the_named_tensors_and_rejects_a_truncated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let tensors = BTreeMap::from([
            ("a".to_owned(), Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).reshape([2, 2])),
            ("b".to_owned(), Tensor::from_slice(&[7i64, 8, 9])),
            ("c".to_owned(), Tensor::from_slice(&[5u8; 10])),
        ]);
        save(&path, &tensors, &BTreeMap::new()).unwrap();
        let read = load_selected(&path, &["b", "a", "missing"]).unwrap();
        assert_eq!(read.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(Vec::<i64>::try_from(&read["b"]).unwrap(), vec![7, 8, 9]);
        assert_eq!(read["a"].size(), vec![2, 2]);
        assert_eq!(Vec::<f32>::try_from(&read["a"].flatten(0, -1)).unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        let error = load_selected(&path, &["c"]).unwrap_err();
        assert!(error.0.contains("t.safetensors"), "{}", error.0);
    }
}
