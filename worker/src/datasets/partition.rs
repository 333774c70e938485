//! Seeded train/val/test partitions for datasets published without one (or, for CUB-200, without
//! a validation split). Items sharing a group (HAM10000's lesions: several photographs of one
//! lesion) always land in the same split, so a test image never has a sibling in training; and the
//! partition is stratified, each label's groups divided separately, so every split keeps the
//! class balance of the whole.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Item indices of each split, ascending.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Partition {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

impl Partition {
    /// Divides items `0..groups.len()`: `test` is the share of all items held out for testing,
    /// `val` the share of the remaining ones held out for validation (the meaning of the kinds'
    /// `test` and `val` fields). A group's label is its first item's. Within each label the
    /// groups are shuffled by `seed` and dealt to test, then val, until each reaches its share of
    /// that label's items (rounded to the nearest item); a group larger than what is left still
    /// goes in whole.
    pub fn hold_out<G: Ord + Clone>(groups: &[G], labels: &[i64], test: f64, val: f64, seed: u64) -> Partition {
        let mut strata: BTreeMap<i64, BTreeMap<G, Vec<usize>>> = BTreeMap::new();
        let mut label_of: BTreeMap<G, i64> = BTreeMap::new();
        for (item, group) in groups.iter().enumerate() {
            let label = *label_of.entry(group.clone()).or_insert_with(|| labels.get(item).copied().unwrap_or(0));
            strata.entry(label).or_default().entry(group.clone()).or_default().push(item);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = Partition::default();
        for stratum in strata.into_values() {
            let n: usize = stratum.values().map(Vec::len).sum();
            let test_target = (test * n as f64).round() as usize;
            let val_target = (val * n.saturating_sub(test_target) as f64).round() as usize;
            let mut members: Vec<Vec<usize>> = stratum.into_values().collect();
            members.shuffle(&mut rng);
            let (mut in_test, mut in_val) = (0, 0);
            for items in members {
                if in_test < test_target {
                    in_test += items.len();
                    out.test.extend(items);
                } else if in_val < val_target {
                    in_val += items.len();
                    out.val.extend(items);
                } else {
                    out.train.extend(items);
                }
            }
        }
        out.train.sort_unstable();
        out.val.sort_unstable();
        out.test.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_met_per_label_and_groups_stay_whole() {
        // 200 items in 100 groups of two; labels 0 (150 items) and 1 (50 items).
        let groups: Vec<usize> = (0..200).map(|i| i / 2).collect();
        let labels: Vec<i64> = (0..200).map(|i| i64::from(i >= 150)).collect();
        let p = Partition::hold_out(&groups, &labels, 0.2, 0.1, 3);
        let count = |split: &[usize], label: i64| split.iter().filter(|i| labels[**i] == label).count();
        // Label 0: test 30 of 150, val round(0.1 * 120) = 12; label 1: test 10, val 4.
        assert_eq!((count(&p.test, 0), count(&p.val, 0), count(&p.train, 0)), (30, 12, 108));
        assert_eq!((count(&p.test, 1), count(&p.val, 1), count(&p.train, 1)), (10, 4, 36));
        for split in [&p.train, &p.val, &p.test] {
            for i in split.iter() {
                assert!(split.contains(&(i ^ 1)), "item {i} separated from its group");
            }
        }
        let mut all: Vec<usize> = p.train.iter().chain(&p.val).chain(&p.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..200).collect::<Vec<_>>());
        assert_eq!(Partition::hold_out(&groups, &labels, 0.2, 0.1, 3), p);
        assert_ne!(Partition::hold_out(&groups, &labels, 0.2, 0.1, 4).test, p.test);
    }

    #[test]
    fn a_group_larger_than_the_share_goes_in_whole() {
        // One label: a group of 5 and five single items; test share 20% of 10 = 2 items. Dealing
        // stops once 2 are reached: singles 2, the big group first 5, a single then the group 6.
        let groups = [0, 0, 0, 0, 0, 1, 2, 3, 4, 5];
        let labels = [0i64; 10];
        let mut sizes = std::collections::BTreeSet::new();
        for seed in 0..40 {
            let p = Partition::hold_out(&groups, &labels, 0.2, 0.0, seed);
            let big_in_test = p.test.contains(&0);
            assert!((0..5).all(|i| p.test.contains(&i) == big_in_test), "seed {seed}: {p:?}");
            assert!(p.val.is_empty());
            sizes.insert(p.test.len());
        }
        assert_eq!(sizes.into_iter().collect::<Vec<_>>(), vec![2, 5, 6]);
    }
}
