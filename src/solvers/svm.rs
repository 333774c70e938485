//! A linear support vector machine for concept activation vectors (science.md, "Concepts").
//!
//! Primal: min ½‖w‖² + C Σ_i max(0, 1 − y_i(w·x_i + b)), the bias b unpenalised, C on the sum of
//! hinge losses (the convention of LIBSVM and scikit-learn, which the published C = 0.01 assumes).
//! Solved in the dual, min ½αᵀQα − Σα, 0 ≤ α ≤ C, Σ y_i α_i = 0, Q_ij = y_i y_j x_i·x_j, by
//! sequential minimal optimisation: each step moves one pair along the direction that keeps
//! Σ y_i α_i fixed, the pair chosen as the most violating one with a second-order choice of the
//! partner (Fan, Chen & Lin 2005). With a linear kernel w = Σ α_i y_i x_i is kept explicitly.
//!
//! A pairwise solver is needed because the bias is unpenalised: the one-coordinate dual descent
//! of LIBLINEAR works only when the bias is folded into w and penalised with it, which changes
//! the hyperplane for unbalanced or off-centre data.

use super::{fail, require_finite, Result};
use ndarray::{Array1, ArrayView1, ArrayView2};

/// The hyperplane w·x + b = 0.
#[derive(Clone, Debug, PartialEq)]
pub struct Hyperplane {
    pub normal: Array1<f64>,
    pub offset: f64,
}

impl Hyperplane {
    pub fn decision(&self, x: ArrayView1<f64>) -> f64 {
        self.normal.dot(&x) + self.offset
    }

    /// (w·x + b)/‖w‖: the concept score of science.md.
    pub fn signed_distance(&self, x: ArrayView1<f64>) -> f64 {
        self.decision(x) / self.normal.dot(&self.normal).sqrt()
    }

    /// The same hyperplane with a unit normal, so that its decision value is the signed distance.
    /// None when w = 0 (every point on one side of a degenerate "hyperplane").
    pub fn unit(&self) -> Option<Hyperplane> {
        let norm = self.normal.dot(&self.normal).sqrt();
        (norm > 0.0 && norm.is_finite()).then(|| Hyperplane { normal: &self.normal / norm, offset: self.offset / norm })
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearSvm {
    pub c: f64,
    /// Stop when the largest KKT gap between a pair, max_up(−y G) − min_low(−y G), is below this.
    pub tolerance: f64,
    pub max_iterations: usize,
}

impl Default for LinearSvm {
    fn default() -> Self {
        LinearSvm { c: 0.01, tolerance: 1e-8, max_iterations: 1_000_000 }
    }
}

#[derive(Clone, Debug)]
pub struct SvmFit {
    pub hyperplane: Hyperplane,
    /// The dual variables α, one per example.
    pub dual: Array1<f64>,
    pub iterations: usize,
    pub converged: bool,
}

/// ½‖w‖² + C Σ hinge: what the solver minimises, for checking it.
pub fn primal_objective(c: f64, plane: &Hyperplane, x: ArrayView2<f64>, positive: &[bool]) -> f64 {
    let hinge: f64 = x.rows().into_iter().zip(positive).map(|(row, p)| (1.0 - sign(*p) * plane.decision(row)).max(0.0)).sum();
    0.5 * plane.normal.dot(&plane.normal) + c * hinge
}

/// Σα − ½‖w‖²: the dual objective (negated); equals the primal objective at the optimum.
pub fn dual_objective(dual: &Array1<f64>, normal: &Array1<f64>) -> f64 {
    dual.sum() - 0.5 * normal.dot(normal)
}

fn sign(positive: bool) -> f64 {
    if positive {
        1.0
    } else {
        -1.0
    }
}

impl LinearSvm {
    /// Separates the rows of `x` marked `positive` from the others.
    pub fn fit(&self, x: ArrayView2<f64>, positive: &[bool]) -> Result<SvmFit> {
        require_finite("the SVM's examples", x)?;
        if positive.len() != x.nrows() {
            return fail(format!("{} examples but {} labels", x.nrows(), positive.len()));
        }
        if !positive.iter().any(|p| *p) || positive.iter().all(|p| *p) {
            return fail("an SVM needs both positive and negative examples");
        }
        if !(self.c > 0.0 && self.c.is_finite()) {
            return fail(format!("the SVM constant C must be positive, got {}", self.c));
        }
        let n = x.nrows();
        let c = self.c;
        let y: Vec<f64> = positive.iter().map(|p| sign(*p)).collect();
        let squared_norms: Vec<f64> = x.rows().into_iter().map(|r| r.dot(&r)).collect();
        let mut alpha = Array1::<f64>::zeros(n);
        let mut normal = Array1::<f64>::zeros(x.ncols());
        // G_i = ∂(dual)/∂α_i = y_i w·x_i − 1; with α = 0 every G_i is −1.
        let mut gradient = vec![-1.0; n];
        // Moving α_i by +y_i t raises the dual's Σ y α term by t; "up" members can move so.
        let can_go_up = |a: f64, y: f64| if y > 0.0 { a < c } else { a > 0.0 };
        let can_go_down = |a: f64, y: f64| if y > 0.0 { a > 0.0 } else { a < c };
        let mut iterations = 0;
        let mut converged = false;
        while iterations < self.max_iterations {
            // The most violating "up" member.
            let mut up = None;
            let mut up_value = f64::NEG_INFINITY;
            for t in 0..n {
                let v = -y[t] * gradient[t];
                if can_go_up(alpha[t], y[t]) && v > up_value {
                    up = Some(t);
                    up_value = v;
                }
            }
            let mut low_value = f64::INFINITY;
            for t in 0..n {
                if can_go_down(alpha[t], y[t]) {
                    low_value = low_value.min(-y[t] * gradient[t]);
                }
            }
            let Some(i) = up else {
                converged = true;
                break;
            };
            if up_value - low_value < self.tolerance {
                converged = true;
                break;
            }
            // The partner: among "down" members that violate with i, the one whose pair step
            // lowers the dual most, gap²/curvature, curvature = ‖x_i − x_j‖².
            let row_i = x.row(i);
            let mut best = None;
            let mut best_gain = 0.0;
            for t in 0..n {
                let v = -y[t] * gradient[t];
                if !can_go_down(alpha[t], y[t]) || v >= up_value {
                    continue;
                }
                let gap = up_value - v;
                let curvature = (squared_norms[i] + squared_norms[t] - 2.0 * row_i.dot(&x.row(t))).max(1e-12);
                let gain = gap * gap / curvature;
                if gain > best_gain {
                    best = Some((t, gap, curvature));
                    best_gain = gain;
                }
            }
            let Some((j, gap, curvature)) = best else {
                converged = true;
                break;
            };
            iterations += 1;
            // α_i += y_i t, α_j −= y_j t keeps Σ y α; the dual falls along t with slope −gap and
            // curvature ‖x_i − x_j‖², so the unclipped step is gap/curvature, then the box.
            let room_i = if y[i] > 0.0 { c - alpha[i] } else { alpha[i] };
            let room_j = if y[j] > 0.0 { alpha[j] } else { c - alpha[j] };
            let step = (gap / curvature).min(room_i).min(room_j);
            alpha[i] = (alpha[i] + y[i] * step).clamp(0.0, c);
            alpha[j] = (alpha[j] - y[j] * step).clamp(0.0, c);
            // w changes by t (x_i − x_j); each G_k by y_k x_k·Δw.
            let delta = (&row_i - &x.row(j)) * step;
            normal += &delta;
            let change = x.dot(&delta);
            for k in 0..n {
                gradient[k] += y[k] * change[k];
            }
        }
        let offset = bias(&alpha, &gradient, &y, c);
        Ok(SvmFit { hyperplane: Hyperplane { normal, offset }, dual: alpha, iterations, converged })
    }
}

/// b from the KKT conditions: for a free support vector (0 < α < C), y(w·x + b) = 1, so
/// b = −y G; averaged over them. Without free ones b is only bracketed by the bound ones, and
/// the middle of the bracket is taken.
fn bias(alpha: &Array1<f64>, gradient: &[f64], y: &[f64], c: f64) -> f64 {
    let margin = 1e-12 * c;
    let free: Vec<f64> = (0..y.len()).filter(|&t| alpha[t] > margin && alpha[t] < c - margin).map(|t| -y[t] * gradient[t]).collect();
    if !free.is_empty() {
        return free.iter().sum::<f64>() / free.len() as f64;
    }
    // With no free vectors, −yG of a bound vector limits b from one side: a positive with
    // α = 0 must satisfy w·x + b ≥ 1 (a lower limit), a positive with α = C the reverse, and
    // the other way round for negatives.
    let (mut lower, mut upper) = (f64::NEG_INFINITY, f64::INFINITY);
    for t in 0..y.len() {
        let v = -y[t] * gradient[t];
        let at_upper = alpha[t] >= c - margin;
        if (y[t] > 0.0) != at_upper {
            lower = lower.max(v);
        } else {
            upper = upper.min(v);
        }
    }
    match (lower.is_finite(), upper.is_finite()) {
        (true, true) => (lower + upper) / 2.0,
        (true, false) => lower,
        (false, true) => upper,
        (false, false) => 0.0,
    }
}

#[cfg(test)]
mod sklearn_reference_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn hard(c: f64) -> LinearSvm {
        LinearSvm { c, ..LinearSvm::default() }
    }

    #[test]
    fn separable_points_on_one_axis_give_the_hand_worked_hyperplane() {
        // Positives at x₁ = 1, 1, 2 and negatives at −1, −1, −2, spread symmetrically along x₂.
        // The hard margin runs through x₁ = ±1: w = (1, 0), b = 0, and the distance of each
        // point to the plane is its x₁.
        let x = array![[1.0, 1.0], [1.0, -1.0], [2.0, 0.0], [-1.0, 1.0], [-1.0, -1.0], [-2.0, 0.0]];
        let positive = [true, true, true, false, false, false];
        let fit = hard(1e3).fit(x.view(), &positive).unwrap();
        assert!(fit.converged);
        let plane = &fit.hyperplane;
        assert!((plane.normal[0] - 1.0).abs() < 1e-6 && plane.normal[1].abs() < 1e-6, "{plane:?}");
        assert!(plane.offset.abs() < 1e-6);
        for (row, expected) in x.rows().into_iter().zip([1.0, 1.0, 2.0, -1.0, -1.0, -2.0]) {
            assert!((plane.signed_distance(row) - expected).abs() < 1e-6);
        }
        // The far points at ±2 are not support vectors.
        assert_eq!(fit.dual[2], 0.0);
        assert_eq!(fit.dual[5], 0.0);
    }

    #[test]
    fn off_centre_data_keep_the_bias_unpenalised() {
        // The same problem shifted by 10 along x₁: the plane moves with it (b = −10), which a
        // penalised bias would resist.
        let x = array![[11.0, 0.0], [12.0, 0.0], [9.0, 0.0], [8.0, 0.0]];
        let fit = hard(1e3).fit(x.view(), &[true, true, false, false]).unwrap();
        assert!((fit.hyperplane.normal[0] - 1.0).abs() < 1e-6);
        assert!((fit.hyperplane.offset + 10.0).abs() < 1e-5);
    }

    #[test]
    fn a_small_c_gives_the_hand_worked_soft_margin() {
        // One point per class at ±1: the primal is ½w² + 2C·max(0, 1 − w) (b = 0 by symmetry),
        // minimised at w = 2C while 2C < 1; both points are margin violators with α = C.
        for c in [0.01, 0.1, 0.3] {
            let fit = hard(c).fit(array![[1.0], [-1.0]].view(), &[true, false]).unwrap();
            assert!((fit.hyperplane.normal[0] - 2.0 * c).abs() < 1e-9, "C={c}: {:?}", fit.hyperplane);
            assert!(fit.hyperplane.offset.abs() < 1e-9);
            assert!((fit.dual[0] - c).abs() < 1e-12 && (fit.dual[1] - c).abs() < 1e-12);
            let unit = fit.hyperplane.unit().unwrap();
            assert!((unit.decision(array![1.0].view()) - 1.0).abs() < 1e-9, "the distance does not depend on C");
        }
    }

    #[test]
    fn overlapping_classes_close_the_duality_gap() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 80;
        let positive: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
        let x = Array2::from_shape_fn((n, 5), |(i, j)| {
            rng.gen_range(-1.0..1.0) + if j == 0 && positive[i] { 0.6 } else { 0.0 } + if j == 1 { 3.0 } else { 0.0 }
        });
        for c in [0.01, 1.0, 50.0] {
            let fit = hard(c).fit(x.view(), &positive).unwrap();
            assert!(fit.converged, "C={c}");
            let primal = primal_objective(c, &fit.hyperplane, x.view(), &positive);
            let dual = dual_objective(&fit.dual, &fit.hyperplane.normal);
            assert!((primal - dual).abs() < 1e-6 * primal.max(1.0), "C={c}: primal {primal}, dual {dual}");
            let signed: f64 = fit.dual.iter().zip(&positive).map(|(a, p)| a * sign(*p)).sum();
            assert!(signed.abs() < 1e-9, "Σ y α = {signed}");
            // Moving the bias alone cannot lower the primal: it was not shrunk toward zero.
            for shift in [-1e-3, 1e-3] {
                let moved = Hyperplane { normal: fit.hyperplane.normal.clone(), offset: fit.hyperplane.offset + shift };
                assert!(primal_objective(c, &moved, x.view(), &positive) >= primal - 1e-9);
            }
        }
    }

    #[test]
    fn one_class_only_is_an_error() {
        assert!(hard(1.0).fit(array![[1.0], [2.0]].view(), &[true, true]).is_err());
        assert!(hard(1.0).fit(array![[1.0], [2.0]].view(), &[true]).is_err());
    }
}
