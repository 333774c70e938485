//! Faithfulness of a saliency map by deletion and insertion: remove (or reveal) pixels from the
//! most salient on, record the model's score for its target after each step, and take the area
//! under that curve. Running the model belongs to the stage; this file orders the pixels and
//! integrates the curve.

use super::error::finite;
use super::ranking::descending_order;
use super::{MetricError, Result};

/// Pixels from the most salient to the least, ties to the lower index so every run removes the
/// same pixels in the same order.
pub fn saliency_order<T: Copy + Into<f64>>(map: &[T]) -> Result<Vec<usize>> {
    if map.is_empty() {
        return Err(MetricError::new("saliency order: the map is empty"));
    }
    Ok(descending_order(&finite("saliency order", map)?))
}

/// How many of the most salient pixels a step that asks for `wanted` of them removes: `wanted`,
/// less the pixels tied with the first one left in place. `descending` holds the map's values from
/// the largest down. Tied pixels are thus removed (or inserted) together, in the step that can
/// take the whole group, and which pixels a step removes never depends on their order in the
/// image; the curve's point sits at the share actually removed, count / n. The trapezoid between
/// two points spans the tied group, so a map without any order (all zero after the ReLU) gives
/// the straight line from the intact image's score to the blank one's.
pub fn tie_closed_count(descending: &[f64], wanted: usize) -> usize {
    let mut count = wanted.min(descending.len());
    while count > 0 && count < descending.len() && descending[count - 1] == descending[count] {
        count -= 1;
    }
    count
}

/// Area under a deletion or insertion curve by the trapezoid rule over [0, 1]. Each point is
/// (fraction of pixels removed or inserted, score). Fractions must run from exactly 0 to exactly 1
/// without decreasing (a repeated fraction adds a step of zero width), so the area is over the
/// whole range and comparable between maps. A faithful map gives a low deletion AUC (the score
/// falls fast) and a high insertion AUC.
pub fn curve_auc(curve: &[(f64, f64)]) -> Result<f64> {
    if curve.len() < 2 {
        return Err(MetricError::new(format!("curve AUC: {} point(s) do not make a curve", curve.len())));
    }
    if let Some((at, point)) = curve.iter().enumerate().find(|(_, (f, s))| !f.is_finite() || !s.is_finite()) {
        return Err(MetricError::new(format!("curve AUC: point {at} {point:?} is not finite")));
    }
    let (first, last) = (curve[0].0, curve[curve.len() - 1].0);
    if first != 0.0 || last != 1.0 {
        return Err(MetricError::new(format!("curve AUC: fractions must run from 0 to 1, not {first} to {last}")));
    }
    let mut area = 0.0;
    for (at, pair) in curve.windows(2).enumerate() {
        let ((f0, s0), (f1, s1)) = (pair[0], pair[1]);
        if f1 < f0 {
            return Err(MetricError::new(format!("curve AUC: the fraction falls from {f0} to {f1} at point {}", at + 1)));
        }
        area += (f1 - f0) * (s0 + s1) / 2.0;
    }
    Ok(area)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trapezoids_by_hand() {
        // A straight fall from 1 to 0: area of the triangle, 1/2.
        assert_eq!(curve_auc(&[(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]).unwrap(), 0.5);
        // Uneven steps: 0.1·(0.9+0.5)/2 + 0.3·(0.5+0.2)/2 + 0.6·(0.2+0.1)/2 = 0.07 + 0.105 + 0.09.
        let uneven = curve_auc(&[(0.0, 0.9), (0.1, 0.5), (0.4, 0.2), (1.0, 0.1)]).unwrap();
        assert!((uneven - 0.265).abs() < 1e-15, "{uneven}");
        // A constant score s has area s; a repeated fraction adds nothing.
        assert_eq!(curve_auc(&[(0.0, 0.3), (0.5, 0.3), (0.5, 0.3), (1.0, 0.3)]).unwrap(), 0.3);
        // A jump at a repeated fraction is a vertical step: area 0.5·1 + 0.5·0.
        assert_eq!(curve_auc(&[(0.0, 1.0), (0.5, 1.0), (0.5, 0.0), (1.0, 0.0)]).unwrap(), 0.5);
    }

    #[test]
    fn curves_must_cover_zero_to_one_in_order() {
        assert!(curve_auc(&[(0.0, 1.0)]).is_err());
        assert!(curve_auc(&[(0.1, 1.0), (1.0, 0.0)]).is_err());
        assert!(curve_auc(&[(0.0, 1.0), (0.9, 0.0)]).is_err());
        assert!(curve_auc(&[(0.0, 1.0), (0.6, 0.5), (0.4, 0.5), (1.0, 0.0)]).unwrap_err().0.contains("point 2"));
        assert!(curve_auc(&[(0.0, f64::NAN), (1.0, 0.0)]).is_err());
    }

    #[test]
    fn tied_pixels_are_removed_together() {
        // Values 4, 3, 3, 1: asking for 2 would split the 3s, so 1 is removed; 3 takes both.
        let map = [4.0, 3.0, 3.0, 1.0];
        let counts: Vec<usize> = (0..=4).map(|w| tie_closed_count(&map, w)).collect();
        assert_eq!(counts, vec![0, 1, 1, 3, 4]);
        // An all-zero map moves only at the end; a map without ties is untouched.
        assert_eq!((0..=3).map(|w| tie_closed_count(&[0.0; 3], w)).collect::<Vec<_>>(), vec![0, 0, 0, 3]);
        assert_eq!((0..=3).map(|w| tie_closed_count(&[3.0, 2.0, 1.0], w)).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        assert_eq!(tie_closed_count(&[1.0], 5), 1);
    }

    #[test]
    fn order_puts_the_most_salient_first_and_ties_by_index() {
        assert_eq!(saliency_order(&[0.2f32, 0.9, 0.2, 0.5]).unwrap(), vec![1, 3, 0, 2]);
        assert!(saliency_order::<f32>(&[]).is_err());
        assert!(saliency_order(&[f32::NAN]).is_err());
    }
}
