//! Orderings shared by the metrics. Every tie is broken the same way, by the lower index first, so
//! a metric gives the same number on every run and platform.

use std::cmp::Ordering;

/// Indices of `values` from the largest value to the smallest; equal values keep index order.
/// Values are assumed finite (the public metrics check this first).
pub fn descending_order(values: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    // A stable sort keeps tied indices in ascending order, which is the documented tie-break.
    order.sort_by(|&i, &j| values[j].partial_cmp(&values[i]).unwrap_or(Ordering::Equal));
    order
}

/// The indices of the `k` largest values (ties to the lower index), as a membership mask.
pub fn top_k_mask(values: &[f64], k: usize) -> Vec<bool> {
    let mut chosen = vec![false; values.len()];
    for index in descending_order(values).into_iter().take(k) {
        chosen[index] = true;
    }
    chosen
}

/// Ranks from 1 (smallest) to n (largest); tied values all get the mean of the ranks they span,
/// the convention under which rank statistics (Spearman, Mann–Whitney) stay unbiased with ties.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].partial_cmp(&values[j]).unwrap_or(Ordering::Equal));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1 ..= end; their mean is the midpoint.
        let shared = (start + 1 + end) as f64 / 2.0;
        for &index in &order[start..end] {
            ranks[index] = shared;
        }
        start = end;
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descending_order_breaks_ties_by_lower_index() {
        // Values 3 (index 1 and 3 tie), then 2, 1, 0.
        assert_eq!(descending_order(&[1.0, 3.0, 0.0, 3.0, 2.0]), vec![1, 3, 4, 0, 2]);
        // -0.0 and 0.0 compare equal, so they tie and keep index order.
        assert_eq!(descending_order(&[-0.0, 0.0, -1.0]), vec![0, 1, 2]);
    }

    #[test]
    fn top_k_mask_takes_the_lower_index_of_a_tie() {
        // Two largest of [5, 7, 5, 5]: 7 (index 1), then the first 5 (index 0).
        assert_eq!(top_k_mask(&[5.0, 7.0, 5.0, 5.0], 2), vec![true, true, false, false]);
        assert_eq!(top_k_mask(&[5.0, 7.0], 0), vec![false, false]);
    }

    #[test]
    fn average_ranks_share_the_mean_of_tied_positions() {
        // Sorted: 10 (rank 1), 20 20 (ranks 2 and 3 → 2.5), 30 (rank 4), 40 40 40 (5,6,7 → 6).
        let ranks = average_ranks(&[20.0, 40.0, 10.0, 40.0, 30.0, 20.0, 40.0]);
        assert_eq!(ranks, vec![2.5, 6.0, 1.0, 6.0, 4.0, 2.5, 6.0]);
        // Ranks always sum to n(n+1)/2, ties or not.
        assert_eq!(ranks.iter().sum::<f64>(), 28.0);
    }
}
