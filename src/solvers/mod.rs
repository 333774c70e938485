//! Numerical solvers the concept stages need, in plain Rust on `ndarray` so they are tested
//! without libtorch: the elastic-net linear model behind PCBM and completeness, the linear SVM
//! behind concept activation vectors, the logistic concept probes with their AUROC, and the
//! standardisation of scores that PCBM fits on.
//!
//! Everything works in f64: the optimality tests ask for violations near 1e-6, which f32
//! rounding of gradient sums over thousands of examples would swamp.

pub mod elastic_net;
pub mod probe;
pub mod standardise;
pub mod svm;

use ndarray::ArrayView2;
use std::fmt;

/// Bad input to a solver (shapes that disagree, values that are not finite), described for the
/// stage that called it to prefix with the file or field at fault.
#[derive(Clone, Debug, PartialEq)]
pub struct SolverError(pub String);

impl fmt::Display for SolverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SolverError {}

pub type Result<T> = std::result::Result<T, SolverError>;

fn fail<T>(message: impl Into<String>) -> Result<T> {
    Err(SolverError(message.into()))
}

/// Rejects empty or non-finite inputs once, so the solvers' loops need not check.
fn require_finite(what: &str, x: ArrayView2<f64>) -> Result<()> {
    if x.nrows() == 0 {
        return fail(format!("{what} has no rows"));
    }
    if let Some(bad) = x.iter().position(|v| !v.is_finite()) {
        return fail(format!("{what} holds a non-finite value at row {}", bad / x.ncols().max(1)));
    }
    Ok(())
}
