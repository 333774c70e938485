//! Accuracy-type scores of a classifier, and the mean with its 95% interval over seeds.

use super::error::{finite, paired};
use super::ranking::average_ranks;
use super::{MetricError, Result};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// A mean over seeds with its two-sided 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanInterval {
    pub mean: f64,
    pub lower: f64,
    pub upper: f64,
    pub samples: usize,
}

/// Mean and 95% interval mean ± t(0.975, n − 1) · s / √n, with s the sample standard deviation
/// and t Student's quantile: the interval for a mean of a few seeds, wider than the normal one
/// because s itself is estimated. One value has no spread to estimate, so its interval is the
/// value itself (lower = upper = mean), to be read as "one seed" rather than as certainty.
pub fn mean_interval<T: Copy + Into<f64>>(values: &[T]) -> Result<MeanInterval> {
    if values.is_empty() {
        return Err(MetricError::new("mean interval: no values"));
    }
    let values = finite("mean interval", values)?;
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() == 1 {
        return Ok(MeanInterval { mean, lower: mean, upper: mean, samples: 1 });
    }
    let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    let student = StudentsT::new(0.0, 1.0, n - 1.0).map_err(|e| MetricError::new(format!("mean interval: {e}")))?;
    let half_width = student.inverse_cdf(0.975) * (variance / n).sqrt();
    Ok(MeanInterval { mean, lower: mean - half_width, upper: mean + half_width, samples: values.len() })
}

/// Share of predictions equal to their label.
pub fn accuracy(predictions: &[i64], labels: &[i64]) -> Result<f64> {
    paired("accuracy", predictions.len(), labels.len())?;
    Ok(predictions.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len() as f64)
}

/// Mean over the classes present in `labels` of each class's recall, so that a rare class (16%
/// malignant in HAM10000) weighs as much as a common one. A class only ever predicted, never
/// present, adds no term (its recall is undefined), as in scikit-learn.
pub fn balanced_accuracy(predictions: &[i64], labels: &[i64]) -> Result<f64> {
    paired("balanced accuracy", predictions.len(), labels.len())?;
    let mut classes: Vec<i64> = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let recall_sum: f64 = classes
        .iter()
        .map(|class| {
            let members = labels.iter().filter(|l| *l == class).count();
            let found = predictions.iter().zip(labels).filter(|(p, l)| *l == class && *p == class).count();
            found as f64 / members as f64
        })
        .sum();
    Ok(recall_sum / classes.len() as f64)
}

/// Area under the ROC curve of scores for a binary task, by the Mann–Whitney statistic: the chance
/// that a positive outscores a negative, ties counting one half, computed from average ranks as
/// (R₊ − n₊(n₊ + 1)/2) / (n₊ n₋). Both classes must be present.
pub fn binary_auroc<T: Copy + Into<f64>>(scores: &[T], positives: &[bool]) -> Result<f64> {
    paired("AUROC", scores.len(), positives.len())?;
    let scores = finite("AUROC", scores)?;
    let positive_count = positives.iter().filter(|p| **p).count();
    let negative_count = positives.len() - positive_count;
    if positive_count == 0 || negative_count == 0 {
        return Err(MetricError::new(format!("AUROC: needs both classes, got {positive_count} positive and {negative_count} negative")));
    }
    let rank_sum: f64 = average_ranks(&scores).iter().zip(positives).filter(|(_, p)| **p).map(|(r, _)| r).sum();
    let (pos, neg) = (positive_count as f64, negative_count as f64);
    Ok((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!((actual - expected).abs() <= tolerance, "{actual} is not within {tolerance} of {expected}");
    }

    #[test]
    fn interval_uses_students_t() {
        // [1, 2, 3, 4]: mean 2.5, s² = (2.25 + 0.25 + 0.25 + 2.25)/3 = 5/3, t(0.975, 3) = 3.18245.
        // scipy.stats.t.interval(0.95, 3, loc=2.5, scale=sem): (0.4457397432394794, 4.554260256760521).
        let interval = mean_interval(&[1.0f64, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!((interval.mean, interval.samples), (2.5, 4));
        close(interval.lower, 0.4457397432394794, 1e-9);
        close(interval.upper, 4.554260256760521, 1e-9);
        // Two seeds 0 and 2: s = √2, s/√2 = 1, so the half-width is t(0.975, 1) = 12.706204736174694.
        let two = mean_interval(&[0.0f32, 2.0]).unwrap();
        close(two.lower, 1.0 - 12.706204736174694, 1e-8);
        close(two.upper, 1.0 + 12.706204736174694, 1e-8);
        // Five accuracies; scipy: (0.6868891382362998, 0.7971108617636999).
        let five = mean_interval(&[0.71f64, 0.74, 0.69, 0.80, 0.77]).unwrap();
        close(five.lower, 0.6868891382362998, 1e-9);
        close(five.upper, 0.7971108617636999, 1e-9);
    }

    #[test]
    fn one_value_is_its_own_interval_and_none_is_an_error() {
        assert_eq!(mean_interval(&[0.8f64]).unwrap(), MeanInterval { mean: 0.8, lower: 0.8, upper: 0.8, samples: 1 });
        // Equal seeds have no spread: the interval closes on the mean.
        assert_eq!(mean_interval(&[0.5f64, 0.5, 0.5]).unwrap(), MeanInterval { mean: 0.5, lower: 0.5, upper: 0.5, samples: 3 });
        assert!(mean_interval::<f64>(&[]).is_err());
    }

    #[test]
    fn accuracy_and_balanced_accuracy_by_hand() {
        // Class 0: 3 of 4 right; class 1: 1 of 2. Accuracy 4/6; balanced (3/4 + 1/2)/2 = 0.625
        // (scikit-learn balanced_accuracy_score agrees).
        let (predictions, labels) = ([0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 1, 1]);
        assert_eq!(accuracy(&predictions, &labels).unwrap(), 4.0 / 6.0);
        assert_eq!(balanced_accuracy(&predictions, &labels).unwrap(), 0.625);
        // Three classes: recalls 1/2, 1/1, 2/3 → 0.7222222222222222 (scikit-learn agrees).
        close(balanced_accuracy(&[0, 1, 1, 2, 2, 0], &[0, 0, 1, 2, 2, 2]).unwrap(), 0.7222222222222222, 1e-15);
        // A class only predicted (7) adds no term: recalls 1/2 (class 0) and 1 (class 1).
        assert_eq!(balanced_accuracy(&[7, 0, 1], &[0, 0, 1]).unwrap(), 0.75);
        assert!(accuracy(&[0], &[0, 1]).is_err());
        assert!(balanced_accuracy(&[], &[]).is_err());
    }

    #[test]
    fn auroc_counts_ties_as_half() {
        // Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 0.35 beats 0.1 only, 0.8 both:
        // 3/4 (scikit-learn roc_auc_score: 0.75).
        assert_eq!(binary_auroc(&[0.1f64, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap(), 0.75);
        // Positive 0.5 ties negative 0.5 (½) and beats 0.2; 0.9 beats both: 3.5/4 = 0.875.
        assert_eq!(binary_auroc(&[0.5f32, 0.5, 0.2, 0.9], &[true, false, false, true]).unwrap(), 0.875);
        // Reversing the scores mirrors the AUC.
        assert_eq!(binary_auroc(&[-0.1f64, -0.4, -0.35, -0.8], &[false, false, true, true]).unwrap(), 0.25);
        assert!(binary_auroc(&[0.1f64, 0.2], &[true, true]).is_err());
    }
}
