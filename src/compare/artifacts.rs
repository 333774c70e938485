//! Reading other stages' artifacts without libtorch: safetensors through the `safetensors` crate,
//! JSON through serde. Every failure names the file.

use std::collections::BTreeMap;
use std::path::Path;

pub type Result<T> = std::result::Result<T, String>;

/// A tensor as plain numbers with its shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

impl Array {
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Row `i` of a 2-d (or higher) array, flattened.
    pub fn row(&self, i: usize) -> &[f64] {
        let width: usize = self.shape.iter().skip(1).product();
        &self.values[i * width..(i + 1) * width]
    }
}

/// Rows of a tensor by their index, each as its raw bytes.
pub type RowsByIndex = BTreeMap<usize, Vec<u8>>;

/// Chosen rows of one byte tensor in a safetensors file, read by seeking to each: a dataset's
/// masks are gigabytes and a comparison needs the few explained images'. Returns the tensor's
/// shape and the rows asked for that exist.
pub fn byte_rows(path: &Path, name: &str, wanted: &[usize]) -> Result<(Vec<usize>, RowsByIndex)> {
    use std::io::{Read, Seek, SeekFrom};
    let fail = |why: &dyn std::fmt::Display| format!("{}: not a readable safetensors file ({why})", path.display());
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut prefix = [0u8; 8];
    file.read_exact(&mut prefix).map_err(|e| fail(&e))?;
    let length = usize::try_from(u64::from_le_bytes(prefix)).map_err(|e| fail(&e))?;
    if length > 100 << 20 {
        return Err(fail(&"its header is over 100 MB"));
    }
    let mut header = vec![0u8; length];
    file.read_exact(&mut header).map_err(|e| fail(&e))?;
    let layout: serde_json::Value = serde_json::from_slice(&header).map_err(|e| fail(&e))?;
    let entry = &layout[name];
    if entry["dtype"] != "U8" && entry["dtype"] != "BOOL" {
        return Err(format!("{}: no byte tensor `{name}`", path.display()));
    }
    let shape: Vec<usize> =
        entry["shape"].as_array().map(|d| d.iter().filter_map(|v| v.as_u64()).map(|v| v as usize).collect()).unwrap_or_default();
    let start = entry["data_offsets"][0].as_u64().ok_or_else(|| fail(&"no data offsets"))?;
    let width: usize = shape.iter().skip(1).product();
    let count = shape.first().copied().unwrap_or(0);
    let mut rows = BTreeMap::new();
    for &row in wanted.iter().filter(|r| **r < count) {
        let mut bytes = vec![0u8; width];
        file.seek(SeekFrom::Start(8 + length as u64 + start + (row * width) as u64)).map_err(|e| fail(&e))?;
        file.read_exact(&mut bytes).map_err(|e| fail(&e))?;
        rows.insert(row, bytes);
    }
    Ok((shape, rows))
}

/// Every tensor of a safetensors file, converted to f64 (integers and bytes included).
pub fn tensors(path: &Path) -> Result<BTreeMap<String, Array>> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file =
        safetensors::SafeTensors::deserialize(&bytes).map_err(|e| format!("{}: not a readable safetensors file ({e})", path.display()))?;
    let mut out = BTreeMap::new();
    for (name, view) in file.tensors() {
        let data = view.data();
        let values: Vec<f64> = match view.dtype() {
            safetensors::Dtype::F32 => data.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect(),
            safetensors::Dtype::F64 => data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect(),
            safetensors::Dtype::I64 => data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f64).collect(),
            safetensors::Dtype::I32 => data.chunks_exact(4).map(|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect(),
            safetensors::Dtype::U8 => data.iter().map(|b| f64::from(*b)).collect(),
            safetensors::Dtype::BOOL => data.iter().map(|b| f64::from(u8::from(*b != 0))).collect(),
            other => return Err(format!("{}: tensor `{name}` has type {other:?}, which lthlang does not read", path.display())),
        };
        out.insert(name, Array { shape: view.shape().to_vec(), values });
    }
    Ok(out)
}

pub fn take(tensors: &mut BTreeMap<String, Array>, name: &str, path: &Path) -> Result<Array> {
    tensors.remove(name).ok_or_else(|| format!("{}: no tensor `{name}`", path.display()))
}

pub fn json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A node's metrics.json (an empty object when it has none).
pub fn metrics(dir: &Path) -> serde_json::Value {
    json(&dir.join("metrics.json")).unwrap_or_else(|_| serde_json::json!({}))
}
