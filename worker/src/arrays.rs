//! Crossing between stored tensors and the `ndarray` arrays the solvers in `lthlang::solvers`
//! work on. Artifacts hold f32; the solvers compute in f64.

use super::{Result, StageError};
use lthlang::solvers::SolverError;
use ndarray::{Array1, Array2};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, Tensor};

impl From<SolverError> for StageError {
    fn from(e: SolverError) -> Self {
        StageError(e.0)
    }
}

fn flat<T: tch::kind::Element + Copy>(t: &Tensor) -> Result<Vec<T>> {
    let t = t.f_to_device(tch::Device::Cpu)?.f_contiguous()?.f_flatten(0, -1)?;
    Ok(Vec::<T>::try_from(&t)?)
}

/// A 2-D tensor as f64; `what` names it in the error.
pub fn matrix(t: &Tensor, what: &str) -> Result<Array2<f64>> {
    let &[rows, cols] = t.size().as_slice() else {
        return Err(StageError::new(format!("{what} should have two dimensions, has shape {:?}", t.size())));
    };
    let shape = (usize::try_from(rows).unwrap_or(0), usize::try_from(cols).unwrap_or(0));
    Array2::from_shape_vec(shape, flat::<f64>(t)?).map_err(|e| StageError::new(format!("{what}: {e}")))
}

/// A 1-D tensor as f64.
pub fn vector(t: &Tensor, what: &str) -> Result<Array1<f64>> {
    if t.dim() != 1 {
        return Err(StageError::new(format!("{what} should have one dimension, has shape {:?}", t.size())));
    }
    Ok(Array1::from(flat::<f64>(t)?))
}

/// A 1-D integer tensor of labels.
pub fn labels(t: &Tensor, what: &str) -> Result<Vec<i64>> {
    if t.dim() != 1 {
        return Err(StageError::new(format!("{what} should have one dimension, has shape {:?}", t.size())));
    }
    flat::<i64>(t)
}

/// Labels as class indices below `classes`.
pub fn classes(labels: &[i64], classes: usize, what: &str) -> Result<Vec<usize>> {
    labels
        .iter()
        .map(|l| {
            usize::try_from(*l)
                .ok()
                .filter(|c| *c < classes)
                .ok_or_else(|| StageError::new(format!("{what} holds label {l}, outside 0..{classes}")))
        })
        .collect()
}

pub fn matrix_tensor(a: &Array2<f64>) -> Result<Tensor> {
    let values: Vec<f32> = a.iter().map(|v| *v as f32).collect();
    let shape = [i64::try_from(a.nrows()).unwrap_or(0), i64::try_from(a.ncols()).unwrap_or(0)];
    Ok(Tensor::f_from_slice(&values)?.f_reshape(shape)?)
}

pub fn vector_tensor(a: &Array1<f64>) -> Result<Tensor> {
    let values: Vec<f32> = a.iter().map(|v| *v as f32).collect();
    Ok(Tensor::f_from_slice(&values)?)
}

pub fn labels_tensor(labels: &[i64]) -> Result<Tensor> {
    Ok(Tensor::f_from_slice(labels)?.f_to_kind(Kind::Int64)?)
}

/// The tensor `name` of a loaded file, or an error naming both.
pub fn take<'a>(tensors: &'a BTreeMap<String, Tensor>, name: &str, file: &Path) -> Result<&'a Tensor> {
    tensors.get(name).ok_or_else(|| StageError::new(format!("{} has no tensor `{name}`", file.display())))
}
