//! Corrections for testing many concepts at once. Each class's concepts (and its random-concept
//! control) form one family: that is how Kim et al. (2018) count the hypotheses ("the number of
//! concepts tested"), and it keeps a class's verdicts independent of how many other classes the
//! node scores.
//!
//! - Bonferroni: p · m, capped at 1. Controls the chance of any false positive; the published
//!   choice, and the default.
//! - Benjamini–Hochberg: the i-th smallest p becomes min over j ≥ i of p_(j) · m / j, capped at 1
//!   (the "adjusted p-values" of R's `p.adjust(method = "BH")` and SciPy's
//!   `false_discovery_control`). Controls the expected share of false positives among the
//!   concepts declared significant; more power when many concepts are tested.
//!
//! A p-value that is not finite (a class without images, or a concept too rare to test) stays
//! NaN and is not counted in m: the family is the hypotheses actually tested.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Correction {
    Bonferroni,
    BenjaminiHochberg,
}

impl Correction {
    pub fn parse(word: &str) -> Option<Correction> {
        match word {
            "bonferroni" => Some(Correction::Bonferroni),
            "bh" => Some(Correction::BenjaminiHochberg),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Correction::Bonferroni => "bonferroni",
            Correction::BenjaminiHochberg => "bh",
        }
    }

    /// The corrected p-values of one family, in the order given.
    pub fn adjust(self, p: &[f64]) -> Vec<f64> {
        let tested: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_finite()).collect();
        let m = tested.len() as f64;
        let mut out = vec![f64::NAN; p.len()];
        match self {
            Correction::Bonferroni => {
                for &i in &tested {
                    out[i] = (p[i] * m).min(1.0);
                }
            }
            Correction::BenjaminiHochberg => {
                let mut order = tested;
                order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
                // From the largest p down, so each adjusted value is the minimum over those above it.
                let mut running = 1.0f64;
                for (rank, &i) in order.iter().enumerate().rev() {
                    running = running.min(p[i] * m / (rank + 1) as f64);
                    out[i] = running;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12 || (g.is_nan() && w.is_nan()), "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn tcav_bonferroni_multiplies_by_the_family_size() {
        close(&Correction::Bonferroni.adjust(&[0.01, 0.04, 0.3, f64::NAN]), &[0.03, 0.12, 0.9, f64::NAN]);
        close(&Correction::Bonferroni.adjust(&[0.5, 0.6]), &[1.0, 1.0]);
    }

    #[test]
    fn tcav_benjamini_hochberg_by_hand() {
        // Sorted 0.01, 0.02, 0.03, 0.5 with m = 4: p·m/rank = 0.04, 0.04, 0.04, 0.5; the running
        // minimum from the top changes nothing. In the given order: 0.03 → 0.04, 0.5 → 0.5, ...
        close(&Correction::BenjaminiHochberg.adjust(&[0.03, 0.5, 0.01, 0.02]), &[0.04, 0.5, 0.04, 0.04]);
        // A step-up case: sorted 0.01, 0.04, 0.045 (m = 3): 0.03, 0.06, 0.045 → the running
        // minimum from the top makes the second 0.045. R's p.adjust(c(.01,.04,.045), "BH") agrees.
        close(&Correction::BenjaminiHochberg.adjust(&[0.04, 0.01, 0.045]), &[0.045, 0.03, 0.045]);
        close(&Correction::BenjaminiHochberg.adjust(&[f64::NAN, 0.2]), &[f64::NAN, 0.2]);
    }
}
