//! Per-column standardisation of a model's inputs, and folding it back into the model.
//!
//! Concept scores come on arbitrary scales (logits, distances, random projections); one penalty
//! λ‖W‖₁ then punishes concepts unequally. Fitting on (s − μ)/σ and storing the equivalent map on
//! raw scores keeps both the comparable penalty and the artifact's plain `score → class` form.

use super::elastic_net::LinearModel;
use ndarray::{Array1, Array2, ArrayView2, Axis};

#[derive(Clone, Debug, PartialEq)]
pub struct Standardisation {
    pub mean: Array1<f64>,
    /// The population standard deviation, or 1 for a constant column (which then standardises
    /// to zeros, and an L1-penalised weight on zeros is exactly zero).
    pub scale: Array1<f64>,
}

impl Standardisation {
    /// Means and deviations of the columns of `x` (zero and one when `x` has no rows).
    pub fn of(x: ArrayView2<f64>) -> Standardisation {
        let mean = x.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(x.ncols()));
        let scale = x.std_axis(Axis(0), 0.0).mapv(|s| if s > 0.0 && s.is_finite() { s } else { 1.0 });
        Standardisation { mean, scale }
    }

    pub fn apply(&self, x: ArrayView2<f64>) -> Array2<f64> {
        (&x - &self.mean) / &self.scale
    }

    /// The model on raw inputs equal to `model` on standardised ones:
    /// W' = W / σ (column-wise), b' = b − W'μ. A zero weight stays exactly zero.
    pub fn fold(&self, model: &LinearModel) -> LinearModel {
        let weight = &model.weight / &self.scale;
        let bias = &model.bias - &weight.dot(&self.mean);
        LinearModel { weight, bias }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn folding_preserves_outputs_and_zeros() {
        let x = array![[1.0, 10.0, 5.0], [3.0, 30.0, 5.0], [2.0, -20.0, 5.0]];
        let s = Standardisation::of(x.view());
        assert_eq!(s.mean, array![2.0, 20.0 / 3.0, 5.0]);
        assert_eq!(s.scale[2], 1.0, "a constant column keeps scale 1");
        let z = s.apply(x.view());
        assert!(z.column(0).iter().zip([-1.0, 1.0, 0.0]).all(|(a, b)| (a * (2.0f64 / 3.0).sqrt() - b).abs() < 1e-12));
        let model = LinearModel { weight: array![[0.5, 0.0, 2.0], [-1.0, 0.25, 0.0]], bias: array![0.1, -0.2] };
        let folded = s.fold(&model);
        let (direct, via_fold) = (model.outputs(z.view()), folded.outputs(x.view()));
        assert!(direct.iter().zip(&via_fold).all(|(a, b)| (a - b).abs() < 1e-12));
        assert_eq!(folded.weight[[0, 1]], 0.0);
        assert_eq!(folded.weight[[1, 2]], 0.0);
    }
}
