//! Student's two-sample t-test with pooled variance (equal variances assumed), two-sided: the
//! test scipy.stats.ttest_ind and R's t.test(var.equal = TRUE) perform.
//!
//! The pooled variance is built from sums of squared deviations, so a group of one value
//! contributes no variance and no degree of freedom instead of an undefined sample variance. TCAV
//! compares a concept's run scores with the random runs' scores this way, as Kim et al. do with
//! scipy's `ttest_ind`. Where scipy gives NaN (two constant, equal samples) this gives p = 1.

use statrs::distribution::{ContinuousCDF, StudentsT};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TTest {
    pub t: f64,
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

fn mean_and_squares(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    (mean, xs.iter().map(|x| (x - mean).powi(2)).sum())
}

/// The test of `a` against `b`; `None` when there are fewer than one degree of freedom or a value
/// is not finite. Two samples with no spread at all give t = 0 and p = 1 if their means agree and
/// an infinite t with p = 0 if they do not.
pub fn student(a: &[f64], b: &[f64]) -> Option<TTest> {
    if a.is_empty() || b.is_empty() || a.len() + b.len() < 3 || a.iter().chain(b).any(|x| !x.is_finite()) {
        return None;
    }
    let (mean_a, squares_a) = mean_and_squares(a);
    let (mean_b, squares_b) = mean_and_squares(b);
    let (n_a, n_b) = (a.len() as f64, b.len() as f64);
    let df = n_a + n_b - 2.0;
    let standard_error = ((squares_a + squares_b) / df * (1.0 / n_a + 1.0 / n_b)).sqrt();
    let difference = mean_a - mean_b;
    if standard_error == 0.0 {
        return Some(if difference == 0.0 {
            TTest { t: 0.0, df, p: 1.0 }
        } else {
            TTest { t: difference.signum() * f64::INFINITY, df, p: 0.0 }
        });
    }
    let t = difference / standard_error;
    let distribution = StudentsT::new(0.0, 1.0, df).ok()?;
    Some(TTest { t, df, p: (2.0 * distribution.sf(t.abs())).min(1.0) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcav_ttest_matches_students_sleep_data() {
        // Cushny & Peebles' sleep data as in R's `sleep`; t.test(extra ~ group, sleep,
        // var.equal = TRUE) prints t = -1.8608, df = 18, p-value = 0.07919. The p-value below
        // was recomputed by Simpson integration of the t density (Python, 200,000 steps).
        let one = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
        let two = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];
        let test = student(&one, &two).unwrap_or_else(|| panic!("defined"));
        assert!((test.t - -1.860_813_467_486_852_6).abs() < 1e-12, "{test:?}");
        assert_eq!(test.df, 18.0);
        assert!((test.p - 0.079_186_714_215_925_6).abs() < 1e-9, "{test:?}");
        // Swapping the groups flips t and keeps p.
        let swapped = student(&two, &one).unwrap_or_else(|| panic!("defined"));
        assert!((swapped.t + test.t).abs() < 1e-12 && (swapped.p - test.p).abs() < 1e-12);
    }

    #[test]
    fn tcav_ttest_of_one_value_is_the_single_case_test() {
        // 0.9 against (0.5, 0.4, 0.6, 0.55, 0.45): mean 0.5, s = √(0.025/4), t = 0.4/(s √1.2) = 8/√3,
        // df = 4. For 4 degrees of freedom P(|T| < t) = u(3 − u²)/2 with u = t/√(t² + 4) = 4/√19.
        let test = student(&[0.9], &[0.5, 0.4, 0.6, 0.55, 0.45]).unwrap_or_else(|| panic!("defined"));
        assert!((test.t - 8.0 / 3f64.sqrt()).abs() < 1e-9, "{test:?}");
        assert_eq!(test.df, 4.0);
        let u = 4.0 / 19f64.sqrt();
        assert!((test.p - (1.0 - u * (3.0 - u * u) / 2.0)).abs() < 1e-9, "{test:?}");
    }

    #[test]
    fn tcav_ttest_degenerate_cases() {
        assert_eq!(student(&[1.0], &[1.0]), None);
        assert_eq!(student(&[], &[1.0, 2.0, 3.0]), None);
        assert_eq!(student(&[f64::NAN], &[1.0, 2.0]), None);
        assert_eq!(student(&[0.5], &[0.5, 0.5, 0.5]), Some(TTest { t: 0.0, df: 2.0, p: 1.0 }));
        let apart = student(&[1.0], &[0.0, 0.0, 0.0]).unwrap_or_else(|| panic!("defined"));
        assert_eq!((apart.t, apart.p), (f64::INFINITY, 0.0));
    }
}
