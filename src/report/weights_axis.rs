//! The x axis of every figure: weights remaining on a log scale, decreasing to the right, so the
//! dense network sits on the left as in the study's figures. A log scale because rounds prune a
//! fixed share of what is left: the rounds fall at equal steps, and the late rounds, where
//! accuracy and explanations change, are not squeezed against the edge.
//!
//! Ticks are the weights remaining of the data's own rounds, so each tick names a round.

use super::number_format;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use std::ops::Range;

/// The smallest share the axis places; a zero share has no place on a log scale.
const FLOOR: f64 = 1e-9;

/// A margin either side, as a share of the axis's log span, so markers at the ends stay whole.
const MARGIN: f64 = 0.06;

#[derive(Clone, Debug)]
pub struct WeightsAxis {
    /// log10 of the share at the left edge (the largest).
    left: f64,
    /// log10 of the share at the right edge (the smallest).
    right: f64,
    /// Distinct shares of the data, largest first.
    ticks: Vec<f64>,
}

impl WeightsAxis {
    /// An axis spanning the given shares (fractions of weights remaining); `None` when there is none.
    pub fn spanning(shares: impl IntoIterator<Item = f64>) -> Option<WeightsAxis> {
        let mut ticks: Vec<f64> = shares.into_iter().filter(|s| s.is_finite()).map(|s| s.max(FLOOR)).collect();
        ticks.sort_by(|a, b| b.total_cmp(a));
        // Shares equal to display precision are one round seen from two series.
        ticks.dedup_by(|a, b| number_format::weights(*a) == number_format::weights(*b));
        let (&first, &last) = (ticks.first()?, ticks.last()?);
        let (high, low) = (first.log10(), last.log10());
        let (left, right) = if high > low {
            let margin = (high - low) * MARGIN;
            (high + margin, low - margin)
        } else {
            // A single round still needs a span to draw on: half a decade either side.
            (high + 0.5, low - 0.5)
        };
        Some(WeightsAxis { left, right, ticks })
    }

    /// Where a share falls, 0 at the left edge and 1 at the right.
    fn position(&self, share: f64) -> f64 {
        (self.left - share.max(FLOOR).log10()) / (self.left - self.right)
    }
}

impl Ranged for WeightsAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let pixels = f64::from(limit.1 - limit.0);
        (f64::from(limit.0) + self.position(*value) * pixels).round() as i32
    }

    /// Every round's share when they fit; else every n-th, keeping the dense end.
    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let room = hint.max_num_points();
        if room == 0 {
            return Vec::new();
        }
        let step = self.ticks.len().div_ceil(room).max(1);
        self.ticks.iter().step_by(step).copied().collect()
    }

    fn range(&self) -> Range<f64> {
        10f64.powf(self.right)..10f64.powf(self.left)
    }
}

impl ValueFormatter<f64> for WeightsAxis {
    fn format_ext(&self, value: &f64) -> String {
        number_format::weights(*value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_is_left_and_equal_pruning_steps_are_equal_distances() {
        let axis = WeightsAxis::spanning([1.0, 0.8, 0.64, 0.512]).unwrap();
        let limit = (100, 400);
        let xs: Vec<i32> = [1.0, 0.8, 0.64, 0.512].iter().map(|w| axis.map(w, limit)).collect();
        assert!(xs.windows(2).all(|p| p[0] < p[1]), "{xs:?}");
        let steps: Vec<i32> = xs.windows(2).map(|p| p[1] - p[0]).collect();
        assert!(steps.iter().all(|s| (s - steps[0]).abs() <= 1), "{steps:?}");
        // The margins are equal on both sides and inside the limit.
        assert!(xs[0] > 100 && xs[3] < 400);
        assert!(((xs[0] - 100) - (400 - xs[3])).abs() <= 1, "{xs:?}");
    }

    #[test]
    fn ticks_are_the_rounds_thinned_to_the_room_given() {
        let shares: Vec<f64> = (0..15).map(|r| 0.9_f64.powi(r)).collect();
        let axis = WeightsAxis::spanning(shares.iter().rev().copied().chain([1.0])).unwrap();
        assert_eq!(axis.key_points(20usize).len(), 15);
        let thinned = axis.key_points(5usize);
        assert_eq!(thinned, vec![shares[0], shares[3], shares[6], shares[9], shares[12]]);
        assert_eq!(axis.format_ext(&shares[3]), "72.9%");
    }

    #[test]
    fn a_single_round_still_has_a_span() {
        let axis = WeightsAxis::spanning([0.5]).unwrap();
        let x = axis.map(&0.5, (0, 100));
        assert_eq!(x, 50);
        assert!(WeightsAxis::spanning([]).is_none());
    }
}
