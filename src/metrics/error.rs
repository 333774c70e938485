//! The one error type of the metrics, plus the input checks every metric shares.

use std::fmt;

/// A metric that cannot be computed from its input; the message names the metric and the fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricError(pub String);

impl MetricError {
    pub fn new(message: impl Into<String>) -> Self {
        MetricError(message.into())
    }
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MetricError {}

/// Widens a slice to `f64`, refusing NaN and infinities: every ordering and mean below assumes
/// finite values, and a NaN would otherwise surface as a silently wrong rank.
pub(crate) fn finite<T: Copy + Into<f64>>(metric: &str, values: &[T]) -> super::Result<Vec<f64>> {
    let widened: Vec<f64> = values.iter().map(|v| (*v).into()).collect();
    match widened.iter().position(|v| !v.is_finite()) {
        Some(at) => Err(MetricError::new(format!("{metric}: value {} at position {at} is not finite", widened[at]))),
        None => Ok(widened),
    }
}

/// Refuses two inputs that must be paired element by element but differ in length, or are empty.
pub(crate) fn paired(metric: &str, left: usize, right: usize) -> super::Result<()> {
    if left != right {
        return Err(MetricError::new(format!("{metric}: the inputs differ in length ({left} and {right})")));
    }
    if left == 0 {
        return Err(MetricError::new(format!("{metric}: the inputs are empty")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_are_refused_with_their_position() {
        let error = finite("cosine", &[1.0f32, f32::NAN]).unwrap_err();
        assert!(error.0.contains("position 1"), "{error}");
        assert!(finite("cosine", &[1.0f64, f64::INFINITY]).is_err());
        assert_eq!(finite("cosine", &[0.5f32, -2.0]).unwrap(), vec![0.5, -2.0]);
    }

    #[test]
    fn unpaired_or_empty_inputs_are_refused() {
        assert!(paired("kendall", 3, 4).unwrap_err().0.contains("3 and 4"));
        assert!(paired("kendall", 0, 0).unwrap_err().0.contains("empty"));
        assert!(paired("kendall", 2, 2).is_ok());
    }
}
