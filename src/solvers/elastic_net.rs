//! Linear models `z = W x + b` with an elastic-net penalty on `W`, fitted by accelerated
//! proximal gradient (FISTA) with backtracking (science.md, "PCBM").
//!
//! Objective: F(W, b) = f(W, b) + λ(ρ‖W‖₁ + (1−ρ)‖W‖²₂), where f is the mean loss over examples
//! and the bias b is not penalised. The proximal step is the exact minimiser of the whole
//! penalty, weight by weight: prox_s(v) = S(v, sλρ) / (1 + 2sλ(1−ρ)), S the soft threshold. A
//! weight the L1 part silences is therefore exactly 0.0, and counting zeros means something.
//!
//! The method is full-batch and deterministic: the same data give the same bits. Minibatch
//! stochastic proximal steps would need a decaying step to reach the optimum and could not be
//! checked against the optimality conditions, which is how this solver is tested.

use super::{fail, require_finite, Result};
use ndarray::{Array1, Array2, ArrayView2, Axis, Zip};

/// The smooth part f of the objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Mean over examples of −Σ_k y_ik log softmax(z_i)_k. Rows of y are target distributions
    /// (one-hot rows for hard labels).
    SoftmaxCrossEntropy,
    /// Mean over examples of Σ_k [log(1 + e^{z_ik}) − y_ik z_ik]: one independent binary
    /// logistic model per column of y (targets in [0, 1]). With one-hot y this is one-vs-rest:
    /// the columns share nothing but the inputs, so the fit is K binary fits done at once.
    Logistic,
    /// Mean over examples of ½‖z_i − y_i‖²: least squares, one output per column of y.
    Squared,
}

/// λ(ρ‖W‖₁ + (1−ρ)‖W‖²₂): `lambda` is λ, `l1_ratio` is ρ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Penalty {
    pub lambda: f64,
    pub l1_ratio: f64,
}

impl Penalty {
    pub fn l1(&self) -> f64 {
        self.lambda * self.l1_ratio
    }

    /// The coefficient of ‖W‖²₂ as the science writes it, without a ½.
    pub fn l2(&self) -> f64 {
        self.lambda * (1.0 - self.l1_ratio)
    }

    pub fn value(&self, weight: &Array2<f64>) -> f64 {
        let (l1, l2) = (self.l1(), self.l2());
        weight.iter().map(|w| l1 * w.abs() + l2 * w * w).sum()
    }

    /// argmin_w (w − v)²/(2·step) + λρ|w| + λ(1−ρ)w².
    pub fn prox(&self, v: f64, step: f64) -> f64 {
        let shrunk = v.abs() - step * self.l1();
        if shrunk <= 0.0 {
            0.0
        } else {
            v.signum() * shrunk / (1.0 + 2.0 * step * self.l2())
        }
    }

    fn validate(&self) -> Result<()> {
        if !(self.lambda >= 0.0 && self.lambda.is_finite()) {
            return fail(format!("the penalty strength must be a finite number ≥ 0, got {}", self.lambda));
        }
        if !(0.0..=1.0).contains(&self.l1_ratio) {
            return fail(format!("the L1 share of the penalty must lie in [0, 1], got {}", self.l1_ratio));
        }
        Ok(())
    }
}

/// `weight` is [outputs, inputs] (PCBM's [K, C]); `bias` is [outputs].
#[derive(Clone, Debug, PartialEq)]
pub struct LinearModel {
    pub weight: Array2<f64>,
    pub bias: Array1<f64>,
}

impl LinearModel {
    /// The outputs z = W x + b for every row of `x`, as [n, outputs].
    pub fn outputs(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let mut z = x.dot(&self.weight.t());
        z += &self.bias;
        z
    }

    /// The largest output per row.
    pub fn predict(&self, x: ArrayView2<f64>) -> Vec<usize> {
        argmax_rows(&self.outputs(x))
    }

    pub fn zeros(&self) -> usize {
        self.weight.iter().filter(|w| **w == 0.0).count()
    }
}

/// Index of the largest value of each row; ties go to the lowest index.
pub fn argmax_rows(z: &Array2<f64>) -> Vec<usize> {
    z.rows()
        .into_iter()
        .map(|row| row.iter().enumerate().fold((0, f64::NEG_INFINITY), |best, (k, v)| if *v > best.1 { (k, *v) } else { best }).0)
        .collect()
}

/// Share of positions where the two agree (0 for empty input).
pub fn accuracy(predicted: &[usize], truth: &[usize]) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    predicted.iter().zip(truth).filter(|(a, b)| a == b).count() as f64 / truth.len() as f64
}

/// Hard labels as target rows for [`Loss::SoftmaxCrossEntropy`].
pub fn one_hot(labels: &[usize], classes: usize) -> Result<Array2<f64>> {
    let mut y = Array2::zeros((labels.len(), classes));
    for (i, &label) in labels.iter().enumerate() {
        if label >= classes {
            return fail(format!("label {label} at row {i} is not below the class count {classes}"));
        }
        y[[i, label]] = 1.0;
    }
    Ok(y)
}

impl Loss {
    /// The mean loss and its gradient with respect to the outputs (already divided by n).
    fn value_and_residual(self, z: &Array2<f64>, y: ArrayView2<f64>) -> (f64, Array2<f64>) {
        let n = z.nrows() as f64;
        let mut residual = Array2::zeros(z.raw_dim());
        let mut total = 0.0;
        match self {
            Loss::SoftmaxCrossEntropy => {
                // One exponential per output: exp is most of a fit's time.
                Zip::from(residual.rows_mut()).and(z.rows()).and(y.rows()).for_each(|mut r, z, y| {
                    let top = z.fold(f64::NEG_INFINITY, |m, v| m.max(*v));
                    let mut sum = 0.0;
                    Zip::from(&mut r).and(&z).for_each(|r, z| {
                        *r = (z - top).exp();
                        sum += *r;
                    });
                    let mass: f64 = y.sum();
                    total += mass * (top + sum.ln()) - z.dot(&y);
                    Zip::from(&mut r).and(&y).for_each(|r, y| *r = (mass * (*r / sum) - y) / n);
                });
            }
            Loss::Logistic => {
                Zip::from(&mut residual).and(z).and(y).for_each(|r, z, y| {
                    total += softplus(*z) - y * z;
                    *r = (sigmoid(*z) - y) / n;
                });
            }
            Loss::Squared => {
                Zip::from(&mut residual).and(z).and(y).for_each(|r, z, y| {
                    let d = z - y;
                    total += 0.5 * d * d;
                    *r = d / n;
                });
            }
        }
        (total / n, residual)
    }

    /// The mean loss alone, for the backtracking test, which needs no gradient.
    fn value(self, z: &Array2<f64>, y: ArrayView2<f64>) -> f64 {
        let n = z.nrows() as f64;
        let mut total = 0.0;
        match self {
            Loss::SoftmaxCrossEntropy => Zip::from(z.rows()).and(y.rows()).for_each(|z, y| {
                let top = z.fold(f64::NEG_INFINITY, |m, v| m.max(*v));
                let sum: f64 = z.iter().map(|v| (v - top).exp()).sum();
                total += y.sum() * (top + sum.ln()) - z.dot(&y);
            }),
            Loss::Logistic => Zip::from(z).and(y).for_each(|z, y| total += softplus(*z) - y * z),
            Loss::Squared => Zip::from(z).and(y).for_each(|z, y| total += 0.5 * (z - y) * (z - y)),
        }
        total / n
    }

    /// The bias minimising f when W = 0, and the residual (gradient in the outputs) there. For
    /// cross-entropy the optimal softmax equals the mean target, so a class absent from the
    /// targets wants a bias of −∞: its bias is clamped, its residual is taken at the limit.
    fn at_zero_weight(self, y: ArrayView2<f64>) -> (Array1<f64>, Array2<f64>) {
        let n = y.nrows() as f64;
        let mean = y.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(y.ncols()));
        match self {
            Loss::SoftmaxCrossEntropy => {
                let total: f64 = mean.sum();
                let share = if total > 0.0 { &mean / total } else { Array1::from_elem(y.ncols(), 1.0 / y.ncols() as f64) };
                let bias = share.mapv(|p| p.max(1e-300).ln().max(-700.0));
                let mut residual = Array2::zeros(y.raw_dim());
                Zip::from(residual.rows_mut()).and(y.rows()).for_each(|mut r, y| {
                    let mass = y.sum();
                    Zip::from(&mut r).and(&share).and(&y).for_each(|r, p, y| *r = (mass * p - y) / n);
                });
                (bias, residual)
            }
            Loss::Logistic => {
                // The optimal bias makes σ(b_k) the mean target; a column of all 0 or all 1
                // wants ±∞ and is clamped like an absent softmax class.
                let bias = mean.mapv(|p| (p.max(1e-300).ln() - (1.0 - p).max(1e-300).ln()).clamp(-700.0, 700.0));
                let residual = (&mean.view().insert_axis(Axis(0)) - &y) / n;
                (bias, residual)
            }
            Loss::Squared => {
                let residual = (&mean.view().insert_axis(Axis(0)) - &y) / n;
                (mean, residual)
            }
        }
    }
}

/// log(1 + e^z) without overflow.
fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Gradients of f in W ([K, C]) and b ([K]) from the residual in the outputs.
fn gradients(x: ArrayView2<f64>, residual: &Array2<f64>) -> (Array2<f64>, Array1<f64>) {
    (residual.t().dot(&x), residual.sum_axis(Axis(0)))
}

/// The largest violation of the optimality conditions, from the gradients of the smooth part:
/// a zero weight needs |∂f/∂w| ≤ λρ; a nonzero weight needs ∂f/∂w + 2λ(1−ρ)w + λρ·sign(w) = 0;
/// the unpenalised bias needs ∂f/∂b = 0. The problem is convex, so a violation of 0 certifies
/// a global minimum.
fn violation(penalty: &Penalty, weight: &Array2<f64>, grad_weight: &Array2<f64>, grad_bias: &Array1<f64>) -> f64 {
    let (l1, l2) = (penalty.l1(), penalty.l2());
    let weights =
        weight
            .iter()
            .zip(grad_weight)
            .map(|(w, g)| if *w == 0.0 { (g.abs() - l1).max(0.0) } else { (g + 2.0 * l2 * w + l1 * w.signum()).abs() });
    weights.chain(grad_bias.iter().map(|g| g.abs())).fold(0.0, f64::max)
}

/// Checks that `x` [n, C] and `y` [n, K] describe one problem, with a model of matching shape.
fn check_shapes(x: ArrayView2<f64>, y: ArrayView2<f64>) -> Result<()> {
    require_finite("the inputs", x)?;
    require_finite("the targets", y)?;
    if x.nrows() != y.nrows() {
        return fail(format!("{} input rows but {} target rows", x.nrows(), y.nrows()));
    }
    if y.ncols() == 0 {
        return fail("the targets have no columns");
    }
    Ok(())
}

/// The KKT violation of `model` on the problem (see [`violation`]); the brief's `kkt_violation`.
pub fn kkt_violation(loss: Loss, penalty: &Penalty, x: ArrayView2<f64>, y: ArrayView2<f64>, model: &LinearModel) -> Result<f64> {
    check_shapes(x, y)?;
    if model.weight.dim() != (y.ncols(), x.ncols()) || model.bias.len() != y.ncols() {
        return fail(format!("a model of shape {:?} cannot map {} inputs to {} outputs", model.weight.dim(), x.ncols(), y.ncols()));
    }
    let (_, residual) = loss.value_and_residual(&model.outputs(x), y);
    let (gw, gb) = gradients(x, &residual);
    Ok(violation(penalty, &model.weight, &gw, &gb))
}

/// The smallest λ at which W = 0 is optimal: max |∂f/∂W| at W = 0 with the optimal bias,
/// divided by ρ (infinite when ρ = 0: a pure L2 penalty never zeroes a weight).
pub fn lambda_max(loss: Loss, l1_ratio: f64, x: ArrayView2<f64>, y: ArrayView2<f64>) -> Result<f64> {
    check_shapes(x, y)?;
    let (_, residual) = loss.at_zero_weight(y);
    let (gw, _) = gradients(x, &residual);
    let largest = gw.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    Ok(if l1_ratio > 0.0 { largest / l1_ratio } else { f64::INFINITY })
}

/// The solver's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ElasticNet {
    pub loss: Loss,
    pub penalty: Penalty,
    /// Work budget, in passes over the data: each gradient and each coordinate-descent sweep
    /// costs one (O(n · inputs · outputs)); the fit stops unconverged when it is spent.
    pub max_passes: usize,
    /// Stop once the KKT violation is at most this.
    pub tolerance: f64,
}

/// A fitted model and how the fit went.
#[derive(Clone, Debug)]
pub struct Fit {
    pub model: LinearModel,
    pub objective: f64,
    pub kkt_violation: f64,
    /// Newton steps taken.
    pub iterations: usize,
    /// Passes over the data spent (see [`ElasticNet::max_passes`]).
    pub passes: usize,
    /// Whether the KKT tolerance was reached within the budget.
    pub converged: bool,
}

/// Sufficient decrease asked of a Newton step, as a share of the decrease its quadratic model
/// predicts (Tseng & Yun 2009).
const ARMIJO: f64 = 0.01;
/// An inner coordinate-descent solve stops when its largest scaled move in a sweep falls below
/// this share of the first sweep's: accurate enough that the outer steps converge fast, without
/// solving each model exactly.
const INNER_SHARE: f64 = 1e-3;
/// Sweeps of one inner solve at most.
const INNER_SWEEPS: usize = 100;
/// Step halvings of one line search at most; past them the objective is flat to rounding.
const HALVINGS: usize = 50;

/// The Hessian of the loss in the outputs, per example, at the current point. Each holds [K, n]
/// arrays (outputs by examples) so that a class's values over the examples are contiguous.
enum Curvature {
    /// Softmax: H_i = m_i (diag(p_i) − p_i p_iᵀ), with m_i the row's target mass.
    Coupled { p: Array2<f64>, mass_p: Array2<f64> },
    /// Independent logistic outputs: H_i = diag(p(1 − p)).
    Diagonal { d: Array2<f64> },
    /// Least squares: H_i = I.
    Identity,
}

impl Curvature {
    /// The curvature at outputs `z` [n, K] with targets `y`, and its diagonal [K, n].
    fn at(loss: Loss, z: &Array2<f64>, y: ArrayView2<f64>) -> (Curvature, Array2<f64>) {
        let (n, k) = z.dim();
        match loss {
            Loss::SoftmaxCrossEntropy => {
                let mut p = Array2::zeros((k, n));
                for (i, row) in z.rows().into_iter().enumerate() {
                    let top = row.fold(f64::NEG_INFINITY, |m, v| m.max(*v));
                    let mut sum = 0.0;
                    for (c, v) in row.iter().enumerate() {
                        let e = (v - top).exp();
                        p[[c, i]] = e;
                        sum += e;
                    }
                    for c in 0..k {
                        p[[c, i]] /= sum;
                    }
                }
                let mass = y.sum_axis(Axis(1));
                let mass_p = &p * &mass.view().insert_axis(Axis(0));
                let diagonal = &mass_p * &p.mapv(|p| 1.0 - p);
                (Curvature::Coupled { p, mass_p }, diagonal)
            }
            Loss::Logistic => {
                // Built row by row, so that each output's row is contiguous.
                let d = Array2::from_shape_fn((k, n), |(c, i)| {
                    let p = sigmoid(z[[i, c]]);
                    p * (1.0 - p)
                });
                (Curvature::Diagonal { d: d.clone() }, d)
            }
            Loss::Squared => (Curvature::Identity, Array2::ones((k, n))),
        }
    }

    /// Σ_i x_i [H_i Δz_i]_k: the change of output k's residual along a column x, for the step
    /// whose outputs moved by `dz` (row k of [K, n]); `s` is Σ_l p_il Δz_il (softmax only).
    fn slope(&self, k: usize, x: &[f64], dz: &[f64], s: &[f64]) -> f64 {
        match self {
            Curvature::Coupled { mass_p, .. } => {
                let mp = mass_p.row(k);
                let mp = mp.as_slice().expect("rows of standard-layout arrays are contiguous");
                x.iter().zip(mp).zip(dz.iter().zip(s)).map(|((x, m), (dz, s))| x * m * (dz - s)).sum()
            }
            Curvature::Diagonal { d } => {
                let d = d.row(k);
                let d = d.as_slice().expect("rows of standard-layout arrays are contiguous");
                x.iter().zip(d).zip(dz).map(|((x, d), dz)| x * d * dz).sum()
            }
            Curvature::Identity => x.iter().zip(dz).map(|(x, dz)| x * dz).sum(),
        }
    }

    /// Moves output k by `delta · x` in the running step: `dz` row k and, for softmax, `s`.
    fn shift(&self, k: usize, delta: f64, x: &[f64], dz: &mut [f64], s: &mut [f64]) {
        for (dz, x) in dz.iter_mut().zip(x) {
            *dz += delta * x;
        }
        if let Curvature::Coupled { p, .. } = self {
            let p = p.row(k);
            for ((s, p), x) in s.iter_mut().zip(p.iter()).zip(x) {
                *s += delta * p * x;
            }
        }
    }
}

/// Most entries an explicit Hessian may hold (32 MB of f64); larger problems solve each Newton
/// model matrix-free.
const EXPLICIT_ENTRIES: usize = 4_000_000;
/// Sweeps of one inner solve on an explicit Hessian at most (each costs O(parameters²), no data).
const EXPLICIT_SWEEPS: usize = 2_000;

/// The Hessian of the loss in the parameters (each output's weights, then its bias: C + 1 per
/// output), formed in one pass over the examples when it is small enough.
enum Hessian {
    /// Independent outputs (one-vs-rest, least squares): one [C+1, C+1] block per output.
    Blocks(Vec<Array2<f64>>),
    /// Softmax: the whole [K(C+1), K(C+1)] matrix, outputs coupled.
    Full(Array2<f64>),
}

impl Hessian {
    /// `design` is [n, C+1]: the inputs and a column of ones.
    fn form(curvature: &Curvature, diagonal: &Array2<f64>, design: &Array2<f64>) -> Option<Hessian> {
        let (n, width) = design.dim();
        let outputs = diagonal.nrows();
        let scale = 1.0 / n as f64;
        let weighted = |w: ndarray::ArrayView1<f64>| -> Array2<f64> {
            let scaled = design * &w.insert_axis(Axis(1));
            design.t().dot(&scaled) * scale
        };
        match curvature {
            Curvature::Coupled { p, mass_p } => {
                let size = outputs * width;
                if size * size > EXPLICIT_ENTRIES {
                    return None;
                }
                let mut full = Array2::zeros((size, size));
                for k in 0..outputs {
                    for l in k..outputs {
                        // m p_k (δ_kl − p_l), per example.
                        let w = if k == l { diagonal.row(k).to_owned() } else { -(&mass_p.row(k) * &p.row(l)) };
                        let block = weighted(w.view());
                        full.slice_mut(ndarray::s![k * width..(k + 1) * width, l * width..(l + 1) * width]).assign(&block);
                        if k != l {
                            full.slice_mut(ndarray::s![l * width..(l + 1) * width, k * width..(k + 1) * width]).assign(&block.t());
                        }
                    }
                }
                Some(Hessian::Full(full))
            }
            Curvature::Diagonal { .. } | Curvature::Identity => {
                if outputs * width * width > EXPLICIT_ENTRIES {
                    return None;
                }
                Some(Hessian::Blocks((0..outputs).map(|k| weighted(diagonal.row(k))).collect()))
            }
        }
    }

    /// Entry (i, j) of parameter i = (k, a) and j = (l, b), given as (output, index) pairs.
    fn entry(&self, width: usize, (k, a): (usize, usize), (l, b): (usize, usize)) -> f64 {
        match self {
            Hessian::Blocks(blocks) => {
                if k == l {
                    blocks[k][[a, b]]
                } else {
                    0.0
                }
            }
            Hessian::Full(full) => full[[k * width + a, l * width + b]],
        }
    }

    /// Adds `delta` times parameter (k, a)'s column to the model gradient `q` [K, C+1].
    fn add_column(&self, width: usize, (k, a): (usize, usize), delta: f64, q: &mut Array2<f64>) {
        match self {
            Hessian::Blocks(blocks) => q.row_mut(k).scaled_add(delta, &blocks[k].column(a)),
            Hessian::Full(full) => {
                let column = full.column(k * width + a);
                for (l, mut row) in q.rows_mut().into_iter().enumerate() {
                    row.scaled_add(delta, &column.slice(ndarray::s![l * width..(l + 1) * width]));
                }
            }
        }
    }
}

/// Minimises the Newton model g·Δ + ½ΔᵀHΔ + penalty(W + Δ_W) over the active weights and every
/// bias by cyclic coordinate descent on the explicit Hessian, until the model's own optimality
/// violation is at most `target`. Returns the step [K, C+1] (weights, then bias).
fn solve_model(
    hessian: &Hessian,
    penalty: &Penalty,
    weight: &Array2<f64>,
    gradient: &Array2<f64>,
    active: &[Vec<usize>],
    target: f64,
) -> Array2<f64> {
    let (outputs, width) = gradient.dim();
    let inputs = width - 1;
    let (l1, l2) = (penalty.l1(), penalty.l2());
    let mut step = Array2::<f64>::zeros((outputs, width));
    let mut q = gradient.clone();
    let coordinates: Vec<(usize, usize)> =
        (0..outputs).flat_map(|k| active[k].iter().map(move |&j| (k, j)).chain(std::iter::once((k, inputs)))).collect();
    for _ in 0..EXPLICIT_SWEEPS {
        for &(k, j) in &coordinates {
            let h = hessian.entry(width, (k, j), (k, j));
            let delta = if j == inputs {
                if h <= 0.0 {
                    continue;
                }
                -q[[k, j]] / h
            } else {
                let denominator = h + 2.0 * l2;
                if denominator <= 0.0 {
                    continue;
                }
                let old = weight[[k, j]] + step[[k, j]];
                let v = h * old - q[[k, j]];
                let new = if v.abs() <= l1 { 0.0 } else { v.signum() * (v.abs() - l1) / denominator };
                new - old
            };
            if delta != 0.0 && delta.is_finite() {
                step[[k, j]] += delta;
                hessian.add_column(width, (k, j), delta, &mut q);
            }
        }
        let mut worst = 0.0f64;
        for &(k, j) in &coordinates {
            let g = q[[k, j]];
            worst = worst.max(if j == inputs {
                g.abs()
            } else {
                let w = weight[[k, j]] + step[[k, j]];
                if w == 0.0 {
                    (g.abs() - l1).max(0.0)
                } else {
                    (g + 2.0 * l2 * w + l1 * w.signum()).abs()
                }
            });
        }
        if worst <= target {
            break;
        }
    }
    step
}

impl ElasticNet {
    /// Fits `x` [n, C] to `y` [n, K], starting from W = 0 and the optimal bias for it (so a λ
    /// above [`lambda_max`] is solved at once).
    pub fn fit(&self, x: ArrayView2<f64>, y: ArrayView2<f64>) -> Result<Fit> {
        self.fit_from(x, y, None)
    }

    /// [`ElasticNet::fit`] from a given model (a warm start, such as the fit at a nearby λ).
    ///
    /// The method is proximal Newton (Lee, Sun & Saunders 2014), as newGLMNET does it (Yuan, Ho &
    /// Lin 2012): at each step the loss is replaced by its second-order model with the exact
    /// Hessian, the model plus the penalty is minimised by cyclic coordinate descent over the
    /// weights that are non-zero or violate their optimality condition (the rest stay zero this
    /// step), and a backtracking line search on the true objective takes the step. Every
    /// coordinate move keeps exact zeros (it is the penalty's own proximal map), and the KKT
    /// violation of the whole problem, zeros included, is what decides convergence. Near the
    /// optimum the steps converge superlinearly, which first-order methods on these
    /// ill-conditioned problems (nearly separable classes at small λ) do not.
    pub fn fit_from(&self, x: ArrayView2<f64>, y: ArrayView2<f64>, start: Option<&LinearModel>) -> Result<Fit> {
        check_shapes(x, y)?;
        self.penalty.validate()?;
        let (loss, penalty) = (self.loss, self.penalty);
        let (n, inputs, outputs) = (x.nrows(), x.ncols(), y.ncols());
        let mut model = match start {
            Some(m) if m.weight.dim() == (outputs, inputs) && m.bias.len() == outputs => {
                if m.weight.iter().chain(&m.bias).any(|v| !v.is_finite()) {
                    return fail("the starting model holds a non-finite value");
                }
                m.clone()
            }
            Some(m) => {
                return fail(format!("a starting model of shape {:?} cannot map {inputs} inputs to {outputs} outputs", m.weight.dim()))
            }
            None => LinearModel { weight: Array2::zeros((outputs, inputs)), bias: loss.at_zero_weight(y).0 },
        };
        let columns = x.t().as_standard_layout().into_owned();
        let mut design = Array2::ones((n, inputs + 1));
        design.slice_mut(ndarray::s![.., ..inputs]).assign(&x);
        let squares = x.mapv(|v| v * v);
        let scale = 1.0 / n as f64;
        let (l1, l2) = (penalty.l1(), penalty.l2());
        let ones = vec![1.0; n];
        let mut z = model.outputs(x);
        let (mut iterations, mut passes, mut stalls) = (0, 0, 0);
        loop {
            let (smooth, residual) = loss.value_and_residual(&z, y);
            let objective = smooth + penalty.value(&model.weight);
            let (gw, gb) = gradients(x, &residual);
            passes += 1;
            let kkt = violation(&penalty, &model.weight, &gw, &gb);
            let finish = move |model: LinearModel, converged: bool, passes: usize| Fit {
                model,
                objective,
                kkt_violation: kkt,
                iterations,
                passes,
                converged,
            };
            if kkt <= self.tolerance {
                return Ok(finish(model, true, passes));
            }
            if passes >= self.max_passes {
                return Ok(finish(model, false, passes));
            }

            let (curvature, diagonal) = Curvature::at(loss, &z, y);
            let hessian_weight = diagonal.dot(&squares) * scale;
            let hessian_bias = diagonal.sum_axis(Axis(1)) * scale;
            let active: Vec<Vec<usize>> =
                (0..outputs).map(|k| (0..inputs).filter(|&j| model.weight[[k, j]] != 0.0 || gw[[k, j]].abs() > l1).collect()).collect();
            let (step_weight, step_bias, dz) = if let Some(hessian) = Hessian::form(&curvature, &diagonal, &design) {
                passes += 1;
                let mut gradient = Array2::zeros((outputs, inputs + 1));
                gradient.slice_mut(ndarray::s![.., ..inputs]).assign(&gw);
                gradient.column_mut(inputs).assign(&gb);
                // Inexact Newton: the model is solved more precisely the closer the fit is to
                // its optimum, which keeps the outer convergence superlinear.
                let target = (kkt * kkt.sqrt().min(0.1)).max(0.01 * self.tolerance);
                let step = solve_model(&hessian, &penalty, &model.weight, &gradient, &active, target);
                let step_weight = step.slice(ndarray::s![.., ..inputs]).to_owned();
                let step_bias = step.column(inputs).to_owned();
                let dz = x.dot(&step_weight.t()) + &step_bias;
                (step_weight, step_bias, dz)
            } else {
                let mut step_weight = Array2::<f64>::zeros((outputs, inputs));
                let mut step_bias = Array1::<f64>::zeros(outputs);
                let mut dz = Array2::<f64>::zeros((outputs, n));
                let mut s = vec![0.0; n];
                let mut first_move = None;
                for _ in 0..INNER_SWEEPS {
                    let mut largest = 0.0f64;
                    for k in 0..outputs {
                        for &j in &active[k] {
                            let xj = columns.row(j);
                            let xj = xj.as_slice().expect("rows of standard-layout arrays are contiguous");
                            let h = hessian_weight[[k, j]];
                            let denominator = h + 2.0 * l2;
                            if denominator <= 0.0 {
                                continue;
                            }
                            let mut dzk = dz.row_mut(k);
                            let dzk = dzk.as_slice_mut().expect("rows of standard-layout arrays are contiguous");
                            let slope = gw[[k, j]] + scale * curvature.slope(k, xj, dzk, &s);
                            let old = model.weight[[k, j]] + step_weight[[k, j]];
                            let v = h * old - slope;
                            let new = if v.abs() <= l1 { 0.0 } else { v.signum() * (v.abs() - l1) / denominator };
                            let delta = new - old;
                            if delta != 0.0 {
                                step_weight[[k, j]] += delta;
                                curvature.shift(k, delta, xj, dzk, &mut s);
                                largest = largest.max(delta.abs() * h.sqrt());
                            }
                        }
                        let h = hessian_bias[k];
                        if h > 0.0 {
                            let mut dzk = dz.row_mut(k);
                            let dzk = dzk.as_slice_mut().expect("rows of standard-layout arrays are contiguous");
                            let delta = -(gb[k] + scale * curvature.slope(k, &ones, dzk, &s)) / h;
                            if delta != 0.0 && delta.is_finite() {
                                step_bias[k] += delta;
                                curvature.shift(k, delta, &ones, dzk, &mut s);
                                largest = largest.max(delta.abs() * h.sqrt());
                            }
                        }
                    }
                    passes += 1;
                    let first = *first_move.get_or_insert(largest);
                    if largest <= INNER_SHARE * first || passes >= self.max_passes {
                        break;
                    }
                }

                (step_weight, step_bias, dz.t().to_owned())
            };

            // The decrease the quadratic model predicts, without its (non-negative) curvature
            // term: the Armijo reference of Tseng & Yun.
            let moved = &model.weight + &step_weight;
            let predicted = (&gw * &step_weight).sum() + gb.dot(&step_bias) + penalty.value(&moved) - penalty.value(&model.weight);
            // Within rounding of the optimum the predicted decrease (a difference of penalties
            // of order 1) can round to zero or above: the step is then taken when it does not
            // raise the objective beyond rounding, and three such steps in a row end the fit.
            if predicted.is_nan() || predicted >= 0.0 {
                stalls += 1;
                if stalls >= 3 {
                    return Ok(finish(model, false, passes));
                }
            } else {
                stalls = 0;
            }
            let predicted = predicted.min(0.0);
            let slack = 1e-15 * objective.abs().max(1.0);
            let mut alpha = 1.0;
            let mut accepted = false;
            for _ in 0..HALVINGS {
                let trial_weight = &model.weight + &(&step_weight * alpha);
                let trial_z = &z + &(&dz * alpha);
                let trial = loss.value(&trial_z, y) + penalty.value(&trial_weight);
                if trial <= objective + ARMIJO * alpha * predicted + slack {
                    model.weight = trial_weight;
                    model.bias = &model.bias + &(&step_bias * alpha);
                    z = trial_z;
                    accepted = true;
                    break;
                }
                alpha *= 0.5;
            }
            if !accepted {
                return Ok(finish(model, false, passes));
            }
            iterations += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Inputs uniform in [-1, 1]; classes from a noisy linear rule that uses only the first
    /// `informative` inputs, so a sparse model is the right answer.
    fn classification(n: usize, inputs: usize, classes: usize, informative: usize, seed: u64) -> (Array2<f64>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = Array2::from_shape_fn((n, inputs), |_| rng.gen_range(-1.0..1.0));
        let rule = Array2::from_shape_fn((classes, informative), |_| rng.gen_range(-3.0..3.0));
        let labels = (0..n)
            .map(|i| {
                let scores: Vec<f64> = (0..classes)
                    .map(|k| (0..informative).map(|c| rule[[k, c]] * x[[i, c]]).sum::<f64>() + rng.gen_range(-0.5..0.5))
                    .collect();
                scores.iter().enumerate().fold((0, f64::NEG_INFINITY), |b, (k, s)| if *s > b.1 { (k, *s) } else { b }).0
            })
            .collect();
        (x, labels)
    }

    fn solver(loss: Loss, lambda: f64, l1_ratio: f64) -> ElasticNet {
        ElasticNet { loss, penalty: Penalty { lambda, l1_ratio }, max_passes: 20_000, tolerance: 1e-9 }
    }

    #[test]
    fn prox_matches_hand_worked_values_and_its_subgradient_condition() {
        let p = Penalty { lambda: 1.0, l1_ratio: 0.5 };
        // S(2, 0.5) / (1 + 2·1·0.5) = 1.5 / 2.
        assert_eq!(p.prox(2.0, 1.0), 0.75);
        assert_eq!(p.prox(-2.0, 1.0), -0.75);
        assert_eq!(p.prox(0.3, 1.0), 0.0);
        assert_eq!(p.prox(-0.5, 1.0), 0.0);
        // (v − w)/s must be a subgradient of the penalty at w = prox(v).
        for v in [-3.0, -0.7, 0.2, 0.6, 4.0] {
            for s in [0.1, 0.5, 2.0] {
                let w = p.prox(v, s);
                let g = (v - w) / s;
                if w == 0.0 {
                    assert!(g.abs() <= p.l1() + 1e-12, "v={v} s={s}");
                } else {
                    assert!((g - 2.0 * p.l2() * w - p.l1() * w.signum()).abs() < 1e-12, "v={v} s={s}");
                }
            }
        }
    }

    #[test]
    fn cross_entropy_fit_meets_the_optimality_conditions() {
        let (x, labels) = classification(120, 8, 3, 3, 1);
        let y = one_hot(&labels, 3).unwrap();
        let fit = solver(Loss::SoftmaxCrossEntropy, 0.02, 0.7).fit(x.view(), y.view()).unwrap();
        assert!(fit.converged, "violation {} after {} iterations", fit.kkt_violation, fit.iterations);
        let checked =
            kkt_violation(Loss::SoftmaxCrossEntropy, &Penalty { lambda: 0.02, l1_ratio: 0.7 }, x.view(), y.view(), &fit.model).unwrap();
        assert!(checked < 1e-6, "independent KKT check: {checked}");
        assert!(fit.model.zeros() > 0 && fit.model.zeros() < 24, "{} zeros: the test needs both kinds of weights", fit.model.zeros());
        assert!(accuracy(&fit.model.predict(x.view()), &labels) > 0.8);
    }

    #[test]
    fn kkt_check_notices_a_moved_weight() {
        let (x, labels) = classification(120, 8, 3, 3, 1);
        let y = one_hot(&labels, 3).unwrap();
        let penalty = Penalty { lambda: 0.02, l1_ratio: 0.7 };
        let mut model = solver(Loss::SoftmaxCrossEntropy, 0.02, 0.7).fit(x.view(), y.view()).unwrap().model;
        model.weight[[0, 0]] += 0.1;
        assert!(kkt_violation(Loss::SoftmaxCrossEntropy, &penalty, x.view(), y.view(), &model).unwrap() > 1e-3);
    }

    #[test]
    fn zero_weights_grow_with_lambda_and_all_vanish_above_lambda_max() {
        let (x, labels) = classification(150, 10, 3, 3, 2);
        let y = one_hot(&labels, 3).unwrap();
        let top = lambda_max(Loss::SoftmaxCrossEntropy, 0.9, x.view(), y.view()).unwrap();
        let mut previous = 0;
        let mut counts = Vec::new();
        for share in [0.001, 0.05, 0.2, 0.5, 0.8, 0.99] {
            let fit = solver(Loss::SoftmaxCrossEntropy, share * top, 0.9).fit(x.view(), y.view()).unwrap();
            assert!(fit.converged, "λ = {share}·λmax");
            let zeros = fit.model.zeros();
            assert!(zeros >= previous, "zeros fell from {previous} to {zeros} at λ = {share}·λmax");
            previous = zeros;
            counts.push(zeros);
        }
        assert!(counts[0] < counts[3], "{counts:?}");
        assert!(counts[5] < 30, "just below λmax a weight must survive: {counts:?}");
        let above = solver(Loss::SoftmaxCrossEntropy, 1.001 * top, 0.9).fit(x.view(), y.view()).unwrap();
        assert_eq!(above.model.zeros(), 30);
        assert!(above.kkt_violation < 1e-9);
    }

    #[test]
    fn the_unpenalised_bias_reproduces_class_frequencies_when_weights_vanish() {
        let x = Array2::from_shape_vec((4, 1), vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let y = one_hot(&[0, 0, 0, 1], 2).unwrap();
        let fit = solver(Loss::SoftmaxCrossEntropy, 100.0, 1.0).fit(x.view(), y.view()).unwrap();
        assert_eq!(fit.model.zeros(), 2);
        // softmax(b) = (3/4, 1/4): b0 − b1 = ln 3.
        assert!((fit.model.bias[0] - fit.model.bias[1] - 3f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn the_loss_and_its_gradient_agree_with_a_hand_worked_row_and_finite_differences() {
        // One row z = (0, ln 3), label 1: softmax (1/4, 3/4), loss −ln(3/4), residual (1/4, −1/4).
        let z = ndarray::array![[0.0, 3f64.ln()]];
        let y = ndarray::array![[0.0, 1.0]];
        let (value, residual) = Loss::SoftmaxCrossEntropy.value_and_residual(&z, y.view());
        assert!((value + 0.75f64.ln()).abs() < 1e-15);
        assert!((residual[[0, 0]] - 0.25).abs() < 1e-15 && (residual[[0, 1]] + 0.25).abs() < 1e-15);
        // On random rows the value alone equals the value with the residual, and the residual is
        // the loss's derivative (central differences).
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let z = Array2::from_shape_fn((5, 3), |_| rng.gen_range(-3.0..3.0));
        let y = one_hot(&[0, 2, 1, 1, 0], 3).unwrap();
        for loss in [Loss::SoftmaxCrossEntropy, Loss::Squared] {
            let (value, residual) = loss.value_and_residual(&z, y.view());
            assert_eq!(loss.value(&z, y.view()), value);
            let h = 1e-6;
            for (i, k) in [(0, 0), (2, 1), (4, 2)] {
                let (mut up, mut down) = (z.clone(), z.clone());
                up[[i, k]] += h;
                down[[i, k]] -= h;
                let numeric = (loss.value(&up, y.view()) - loss.value(&down, y.view())) / (2.0 * h);
                assert!((numeric - residual[[i, k]]).abs() < 1e-8, "{loss:?} at ({i}, {k}): {numeric} vs {}", residual[[i, k]]);
            }
        }
    }

    #[test]
    fn fits_are_bit_for_bit_reproducible() {
        let (x, labels) = classification(80, 6, 4, 2, 3);
        let y = one_hot(&labels, 4).unwrap();
        let a = solver(Loss::SoftmaxCrossEntropy, 0.01, 0.5).fit(x.view(), y.view()).unwrap();
        let b = solver(Loss::SoftmaxCrossEntropy, 0.01, 0.5).fit(x.view(), y.view()).unwrap();
        assert_eq!(a.model, b.model);
    }

    #[test]
    fn mismatched_rows_are_an_error_not_a_panic() {
        let x = Array2::zeros((3, 2));
        let y = Array2::zeros((4, 2));
        assert!(solver(Loss::Squared, 0.1, 0.5).fit(x.view(), y.view()).is_err());
        assert!(one_hot(&[0, 3], 3).is_err());
    }

    /// linfa-elasticnet minimises (1/2n)‖y − Xw − b‖² + a·r‖w‖₁ + a(1−r)/2·‖w‖²₂ (penalty a,
    /// l1_ratio r). Ours, with the squared loss and one output, is (1/2n)‖…‖² + λρ‖w‖₁ +
    /// λ(1−ρ)‖w‖²₂, so a·r = λρ and a(1−r)/2 = λ(1−ρ): a = λ(2 − ρ), r = ρ/(2 − ρ). linfa fits
    /// its intercept by centring y alone, which is the unpenalised optimum only when the columns
    /// of X are centred, so the data here are centred first.
    #[test]
    fn squared_loss_agrees_with_linfa_elasticnet() {
        use linfa::prelude::*;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut x = Array2::from_shape_fn((60, 7), |_| rng.gen_range(-1.0..1.0));
        let mean = x.mean_axis(Axis(0)).unwrap();
        x -= &mean;
        let truth = [1.5, -2.0, 0.0, 0.0, 0.7, 0.0, 0.0];
        let target = Array1::from_shape_fn(60, |i| (0..7).map(|c| truth[c] * x[[i, c]]).sum::<f64>() + 0.3 + rng.gen_range(-0.2..0.2));
        for (lambda, rho) in [(0.05, 0.8), (0.01, 0.3), (0.2, 1.0)] {
            let ours = solver(Loss::Squared, lambda, rho).fit(x.view(), target.view().insert_axis(Axis(1))).unwrap();
            assert!(ours.converged);
            let reference = linfa_elasticnet::ElasticNet::params()
                .penalty(lambda * (2.0 - rho))
                .l1_ratio(rho / (2.0 - rho))
                .tolerance(1e-12)
                .max_iterations(100_000)
                .fit(&Dataset::new(x.clone(), target.clone()))
                .unwrap();
            for c in 0..7 {
                let (a, b) = (ours.model.weight[[0, c]], reference.hyperplane()[c]);
                assert!((a - b).abs() < 1e-6, "λ={lambda} ρ={rho} weight {c}: ours {a}, linfa {b}");
                assert_eq!(a == 0.0, b == 0.0, "λ={lambda} ρ={rho} weight {c}: ours {a}, linfa {b}");
            }
            assert!((ours.model.bias[0] - reference.intercept()).abs() < 1e-6);
        }
    }
}
