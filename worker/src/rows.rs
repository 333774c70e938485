//! Row files: one tensor of equal-sized byte rows (a split's images or masks) in a safetensors
//! file of its own, written and read through a memory map.
//!
//! A real dataset's decoded images are gigabytes (CUB-200 at 448 px is 7.1 GB), so they never
//! sit in the process's own memory: the decoder writes each image straight into its row of a
//! mapped file, and readers map the file and copy out only the rows a batch needs. Mapped pages
//! belong to the page cache, which the kernel shares between processes and evicts under
//! pressure, so a worker's anonymous memory does not grow with the dataset, and a node that
//! reads 16 images touches 16 rows.
//!
//! The header is written last, padded with spaces (which the format allows) to a fixed length,
//! so the data can start at a known offset before the number of rows kept is known (corrupt
//! images are left out and the rows after them moved up). The files stay readable from Python:
//! `safetensors.torch.load_file("test.images.safetensors")["images"]`.

use super::{io_error, Result, StageError};
use memmap2::{Mmap, MmapMut};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Bytes reserved for the JSON header; the data starts at 8 + this, a multiple of 64.
const HEADER: usize = 504;
const DATA: usize = 8 + HEADER;

/// A row file being written: every row is zero until written.
pub struct RowWriter {
    path: PathBuf,
    file: File,
    map: Option<MmapMut>,
    name: String,
    row_shape: Vec<usize>,
    row: usize,
    rows: usize,
}

impl RowWriter {
    /// A file at `path` with room for `rows` rows of shape `row_shape`, holding tensor `name`.
    pub fn create(path: &Path, name: &str, rows: usize, row_shape: &[usize]) -> Result<RowWriter> {
        let row = row_shape.iter().product::<usize>();
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path).map_err(|e| io_error(path, &e))?;
        file.set_len(u64::try_from(DATA + rows * row).unwrap_or(u64::MAX)).map_err(|e| io_error(path, &e))?;
        // SAFETY: the file was just created by this process and is not shared with anyone until
        // the node's output folder is moved into the cache, after `finish`.
        let map = unsafe { MmapMut::map_mut(&file) }.map_err(|e| io_error(path, &e))?;
        Ok(RowWriter { path: path.to_owned(), file, map: Some(map), name: name.to_owned(), row_shape: row_shape.to_vec(), row, rows })
    }

    /// Bytes of one row.
    pub fn row_len(&self) -> usize {
        self.row
    }

    /// Every row, in order, to be filled in place (in parallel, by chunks of `row_len`).
    pub fn rows_mut(&mut self) -> &mut [u8] {
        match self.map.as_mut() {
            Some(map) => &mut map[DATA..],
            None => &mut [],
        }
    }

    /// Keeps the rows whose `keep` is true (in order, moved up over the others), writes the
    /// header and trims the file. Returns the rows kept.
    pub fn finish(mut self, keep: &[bool]) -> Result<usize> {
        let row = self.row;
        let mut map = self.map.take().ok_or_else(|| StageError::new(format!("{}: written twice", self.path.display())))?;
        let mut kept = 0;
        for (i, on) in keep.iter().take(self.rows).enumerate() {
            if !on {
                continue;
            }
            if kept != i {
                map.copy_within(DATA + i * row..DATA + (i + 1) * row, DATA + kept * row);
            }
            kept += 1;
        }
        let mut shape = vec![kept];
        shape.extend_from_slice(&self.row_shape);
        let header = serde_json::json!({ &self.name: { "dtype": "U8", "shape": shape, "data_offsets": [0, kept * row] } });
        let mut text = serde_json::to_vec(&header).map_err(|e| StageError::new(e.to_string()))?;
        if text.len() > HEADER {
            return Err(StageError::new(format!("{}: the header does not fit in {HEADER} bytes", self.path.display())));
        }
        text.resize(HEADER, b' ');
        map[..8].copy_from_slice(&(HEADER as u64).to_le_bytes());
        map[8..DATA].copy_from_slice(&text);
        map.flush().map_err(|e| io_error(&self.path, &e))?;
        drop(map);
        self.file.set_len(u64::try_from(DATA + kept * row).unwrap_or(u64::MAX)).map_err(|e| io_error(&self.path, &e))?;
        Ok(kept)
    }
}

/// Writes `rows` (already in memory: a synthetic dataset's) as a row file.
pub fn write(path: &Path, name: &str, data: &[u8], row_shape: &[usize]) -> Result<()> {
    let row = row_shape.iter().product::<usize>();
    let rows = data.len().checked_div(row).unwrap_or(0);
    if rows * row != data.len() {
        return Err(StageError::new(format!("{}: {} bytes is not a whole number of {row}-byte rows", path.display(), data.len())));
    }
    let mut writer = RowWriter::create(path, name, rows, row_shape)?;
    writer.rows_mut().copy_from_slice(data);
    writer.finish(&vec![true; rows]).map(|_| ())
}

/// A row file mapped for reading, seen as a CPU tensor of bytes without copying it.
pub struct RowFile {
    // Declared before the map it points into, so it is dropped first.
    tensor: Tensor,
    _map: Option<Mmap>,
}

impl RowFile {
    pub fn open(path: &Path, name: &str) -> Result<RowFile> {
        let file = File::open(path).map_err(|e| io_error(path, &e))?;
        // SAFETY: cache entries are written once and never modified in place (a recomputed entry
        // replaces the folder), so the mapped bytes do not change under the reader.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| io_error(path, &e))?;
        let unreadable = |why: String| StageError::new(format!("{} is not a readable row file: {why}", path.display()));
        let parsed = SafeTensors::deserialize(&map).map_err(|e| unreadable(e.to_string()))?;
        let view = parsed.tensor(name).map_err(|e| unreadable(e.to_string()))?;
        if view.dtype() != Dtype::U8 {
            return Err(unreadable(format!("`{name}` is {:?}, expected bytes", view.dtype())));
        }
        let shape: Vec<i64> = view.shape().iter().map(|d| i64::try_from(*d).unwrap_or(0)).collect();
        let mut strides = vec![1i64; shape.len()];
        for d in (0..shape.len().saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * shape[d + 1];
        }
        let data = view.data().as_ptr();
        // SAFETY: `data` points at `product(shape)` bytes inside `map`, which lives as long as
        // the tensor (see the field order); the mapping is read-only and the tensor is only ever
        // read (gathered from), never written in place.
        let tensor = unsafe { Tensor::from_blob(data, &shape, &strides, Kind::Uint8, Device::Cpu) };
        Ok(RowFile { tensor, _map: Some(map) })
    }

    /// Rows already in memory (a test's, or a split built on the fly).
    pub fn in_memory(tensor: Tensor) -> RowFile {
        RowFile { tensor, _map: None }
    }

    /// The whole file as a `[rows, ...]` byte tensor on the CPU, backed by the mapping. Gather
    /// from it (`index_select` copies); do not keep views of it beyond the `RowFile`.
    pub fn tensor(&self) -> &Tensor {
        &self.tensor
    }

    pub fn rows(&self) -> i64 {
        self.tensor.size().first().copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_written_through_the_map_read_back_in_order_without_the_dropped_ones() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("x.safetensors");
        let mut writer = RowWriter::create(&path, "images", 4, &[2, 3]).unwrap_or_else(|e| panic!("{e}"));
        for (i, chunk) in writer.rows_mut().chunks_mut(6).enumerate() {
            chunk.iter_mut().enumerate().for_each(|(j, b)| *b = u8::try_from(10 * i + j).unwrap_or(0));
        }
        let kept = writer.finish(&[true, false, true, true]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kept, 3);
        assert_eq!(std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0), (DATA + 18) as u64);
        let file = RowFile::open(&path, "images").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(file.tensor().size(), vec![3, 2, 3]);
        let values: Vec<u8> = Vec::try_from(file.tensor().view([-1])).unwrap_or_default();
        assert_eq!(values, [(0..6).collect::<Vec<u8>>(), (20..26).collect(), (30..36).collect()].concat());
        let picked = file.tensor().index_select(0, &Tensor::from_slice(&[2i64, 0]));
        assert_eq!(picked.int64_value(&[0, 1, 2]), 35);
        assert!(RowFile::open(&path, "masks").is_err());
        std::fs::write(&path, b"short").unwrap_or_else(|e| panic!("{e}"));
        let message = RowFile::open(&path, "images").err().map(|e| e.0).unwrap_or_default();
        assert!(message.contains("is not a readable row file"), "{message}");
    }

    #[test]
    fn a_row_file_is_a_safetensors_file_the_checkpoint_reader_accepts() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("m.safetensors");
        write(&path, "masks", &[1, 0, 0, 1, 1, 1, 0, 0], &[2, 2]).unwrap_or_else(|e| panic!("{e}"));
        let loaded = super::super::checkpoint::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded["masks"].size(), vec![2, 2, 2]);
        assert_eq!(loaded["masks"].int64_value(&[1, 0, 1]), 1);
        assert!(write(&path, "masks", &[1, 2, 3], &[2]).is_err());
    }
}
