//! A concept's importance to a class, and the concepts a class lists: one definition, shared by
//! the PCBM node, `compare`, the report and every concept metric (science.md, "PCBM").
//!
//! **Scale.** Importance is the PCBM's weight on the *standardised* concept score: the change of
//! the class's logit per train standard deviation of the score. Raw-scale weights (W/σ) make a
//! concept whose score barely varies look important, and are never ranked.
//!
//! **Identification.** A one-vs-rest PCBM fits one binary model per class, so each row is
//! identified and its weights are the importance. A multinomial model's predictions do not
//! change when a constant is added to a concept's column across all classes, so only a weight
//! relative to the other classes' is meaningful: its importance is the weight centred across
//! classes, w[k, c] − mean over classes of w[·, c].
//!
//! **Listed concepts.** Class k lists concept c among its top k positive concepts when
//! - its importance is positive (an exact zero, a weight the L1 penalty silenced, is never
//!   listed),
//! - it is at least [`LISTED_SHARE`] of the row's largest |importance|, so a row with two strong
//!   weights does not pad its list with a third at 0.04 or −0.001, and
//! - fewer than k listed candidates have a strictly larger importance.
//!
//! The last rule is the standard competition ranking: concepts tied exactly at the k-th place are
//! all listed, so a list may hold more than k concepts (only through exact ties) and may hold
//! fewer (when fewer pass the first two rules). No tie is broken by index, so ties neither create
//! nor destroy overlap between two rounds. Negative lists mirror this on −importance.
//!
//! **Jaccard** of two lists is |A ∩ B| / |A ∪ B|; two empty lists (neither round singles out a
//! concept for the class) agree: 1.

use super::error::{finite, paired};
use super::{MetricError, Result};

/// The share of a row's largest |importance| below which a concept is not listed: a tenth.
pub const LISTED_SHARE: f64 = 0.1;

/// How the multiclass PCBM was fitted, which decides how its weights are identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Multiclass {
    /// One binary logistic model per class (the published PCBM).
    OneVsRest,
    /// One softmax model over all classes.
    Multinomial,
}

impl Multiclass {
    /// The language's word for it (`pcbm { multiclass = … }`).
    pub fn word(self) -> &'static str {
        match self {
            Multiclass::OneVsRest => "ovr",
            Multiclass::Multinomial => "multinomial",
        }
    }

    pub fn from_word(word: &str) -> Option<Multiclass> {
        match word {
            "ovr" => Some(Multiclass::OneVsRest),
            "multinomial" => Some(Multiclass::Multinomial),
            _ => None,
        }
    }

    /// What the importance of this kind of model is, in words for the report.
    pub fn scale(self) -> &'static str {
        match self {
            Multiclass::OneVsRest => "weight on the standardised concept score (one-vs-rest: one binary model per class)",
            Multiclass::Multinomial => "weight on the standardised concept score, centred across classes (multinomial)",
        }
    }
}

/// Importance [classes × concepts], row-major, from the standardised weights of the same shape.
pub fn importance(standardised: &[f64], concepts: usize, multiclass: Multiclass) -> Result<Vec<f64>> {
    let weight = finite("concept importance", standardised)?;
    if concepts == 0 || weight.len() % concepts != 0 {
        return Err(MetricError::new(format!("concept importance: {} weights are not rows of {concepts} concepts", weight.len())));
    }
    Ok(match multiclass {
        Multiclass::OneVsRest => weight,
        Multiclass::Multinomial => {
            let classes = (weight.len() / concepts) as f64;
            let column_mean: Vec<f64> = (0..concepts).map(|c| weight.iter().skip(c).step_by(concepts).sum::<f64>() / classes).collect();
            // An all-zero column stays exactly zero: x − 0 is x.
            weight.iter().enumerate().map(|(i, w)| w - column_mean[i % concepts]).collect()
        }
    })
}

/// Indices of the concepts a row lists among its top `k` positive ones (see the module note),
/// strongest first; tied concepts in index order.
pub fn listed_positive(row: &[f64], k: usize) -> Vec<usize> {
    let largest = row.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut candidates: Vec<usize> = (0..row.len()).filter(|&c| row[c] > 0.0 && row[c] >= LISTED_SHARE * largest).collect();
    candidates.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    let mut listed = Vec::new();
    let mut rank = 0;
    for (place, &c) in candidates.iter().enumerate() {
        // Competition rank: the number of candidates strictly above, shared by a tied group.
        if place == 0 || row[candidates[place - 1]] != row[c] {
            rank = place;
        }
        if rank >= k {
            break;
        }
        listed.push(c);
    }
    listed
}

/// The negative list: [`listed_positive`] of the negated row.
pub fn listed_negative(row: &[f64], k: usize) -> Vec<usize> {
    let negated: Vec<f64> = row.iter().map(|v| -v).collect();
    listed_positive(&negated, k)
}

/// |A ∩ B| / |A ∪ B| of the two rows' positive lists at `k`; 1 when both are empty.
pub fn listed_jaccard<T: Copy + Into<f64>>(a: &[T], b: &[T], k: usize) -> Result<f64> {
    paired("top-k Jaccard", a.len(), b.len())?;
    if k == 0 {
        return Err(MetricError::new("top-k Jaccard: k must be at least 1"));
    }
    let (a, b) = (finite("top-k Jaccard", a)?, finite("top-k Jaccard", b)?);
    let (a, b) = (listed_positive(&a, k), listed_positive(&b, k));
    let both = a.iter().filter(|c| b.contains(c)).count();
    let either = a.len() + b.len() - both;
    Ok(if either == 0 { 1.0 } else { both as f64 / either as f64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_vs_rest_importance_is_the_weight_and_multinomial_is_centred_across_classes() {
        let w = [1.0, 0.0, -2.0, 3.0, 0.0, 0.0];
        assert_eq!(importance(&w, 3, Multiclass::OneVsRest).unwrap(), w.to_vec());
        // Column means 2, 0, −1: rows (−1, 0, −1) and (1, 0, 1); the all-zero column stays 0.
        assert_eq!(importance(&w, 3, Multiclass::Multinomial).unwrap(), vec![-1.0, 0.0, -1.0, 1.0, 0.0, 1.0]);
        // Adding a constant to a whole column changes no multinomial prediction, nor importance.
        let shifted = [6.0, 0.0, -2.0, 8.0, 0.0, 0.0];
        assert_eq!(importance(&shifted, 3, Multiclass::Multinomial).unwrap(), importance(&w, 3, Multiclass::Multinomial).unwrap());
        assert!(importance(&w, 4, Multiclass::OneVsRest).is_err());
        assert!(importance(&[f64::NAN], 1, Multiclass::OneVsRest).is_err());
    }

    #[test]
    fn small_and_zero_weights_are_not_listed() {
        // Largest |w| is 7: the cut is 0.7. 0.04 and −0.001 pad nothing; 0.7 itself is listed.
        let row = [6.99, 0.04, 0.0, 6.45, -0.001, 0.7];
        assert_eq!(listed_positive(&row, 3), vec![0, 3, 5]);
        assert_eq!(listed_positive(&row, 2), vec![0, 3]);
        let row = [6.99, 0.04, 0.0, 6.45, -0.001, 0.69];
        assert_eq!(listed_positive(&row, 3), vec![0, 3], "a list may be shorter than k");
        // A strong negative weight sets the cut for positive ones too.
        assert_eq!(listed_positive(&[0.5, -10.0, 2.0], 3), vec![2]);
        assert_eq!(listed_negative(&[0.5, -10.0, 2.0], 3), vec![1]);
        assert_eq!(listed_positive(&[0.0, 0.0], 1), Vec::<usize>::new());
    }

    #[test]
    fn ties_at_the_boundary_are_all_listed() {
        // Top 2 of 5, 3, 3, 1: the two 3s tie for second place, both are listed.
        assert_eq!(listed_positive(&[5.0, 3.0, 3.0, 1.0], 2), vec![0, 1, 2]);
        // Three-way tie for first at k = 1.
        assert_eq!(listed_positive(&[2.0, 2.0, 2.0, 1.0], 1), vec![0, 1, 2]);
        // A tie below the boundary changes nothing.
        assert_eq!(listed_positive(&[5.0, 4.0, 3.0, 3.0], 2), vec![0, 1]);
        // Ties inside the list, then the next distinct value at rank k + 1 is out: 4, 4 take
        // ranks 1 and 1, 3 takes rank 3 > k = 2.
        assert_eq!(listed_positive(&[4.0, 4.0, 3.0], 2), vec![0, 1]);
    }

    #[test]
    fn ties_neither_create_nor_destroy_overlap() {
        // Round a has a clear top 1; round b ties two concepts at the top. Breaking b's tie by
        // index would give {0} and Jaccard 1, or, reordered, {1} and 0; the rule lists both: 1/2.
        assert_eq!(listed_jaccard(&[3.0, 1.0, 0.0], &[2.0, 2.0, 0.0], 1).unwrap(), 0.5);
        assert_eq!(listed_jaccard(&[1.0, 3.0, 0.0], &[2.0, 2.0, 0.0], 1).unwrap(), 0.5);
    }

    #[test]
    fn jaccard_of_lists_handles_empty_and_short_lists() {
        assert_eq!(listed_jaccard(&[0.0, 0.0, -1.0], &[0.0, 0.0, 0.0], 3).unwrap(), 1.0, "both empty");
        assert_eq!(listed_jaccard(&[1.0, 0.0, 0.0], &[0.0, 0.0, 0.0], 3).unwrap(), 0.0, "one empty");
        // {0, 1} against {0}: 1/2.
        assert_eq!(listed_jaccard(&[2.0, 1.5, 0.0], &[2.0, 0.0, 0.1], 3).unwrap(), 0.5);
        assert!(listed_jaccard(&[1.0], &[1.0, 2.0], 1).is_err());
        assert!(listed_jaccard(&[1.0], &[1.0], 0).is_err());
    }
}
