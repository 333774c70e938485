//! The images an `images` field names: a whole split, or `split.sample(n, seed = s)`.
//!
//! A sample is drawn without replacement by a ChaCha8 generator seeded with the sample's own
//! `seed`, and its rows are sorted ascending. It depends only on the split's size, `n` and `seed`,
//! never on the node's seed, so every round of a ticket series and every method explains the same
//! images and their maps can be compared image by image.

use super::{Context, Result, StageError};
use lthlang::check::Value;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The dataset stage the images come from.
    pub dataset: String,
    pub split: String,
    /// What was asked for: `None` for a whole split, else the sample's size and seed.
    pub sample: Option<(i64, i64)>,
}

impl Selection {
    pub fn from_field(ctx: &Context, name: &str) -> Result<Selection> {
        match ctx.field(name)? {
            Value::Split { dataset, split } => Ok(Selection { dataset: dataset.clone(), split: split.clone(), sample: None }),
            Value::Sample { dataset, split, count, seed } => {
                Ok(Selection { dataset: dataset.clone(), split: split.clone(), sample: Some((*count, *seed)) })
            }
            other => Err(StageError::new(format!("field `{name}` should name images such as `data.test.sample(16)`, got {other:?}"))),
        }
    }

    /// The chosen rows of a split of `len` rows, ascending. A sample larger than the split takes
    /// the whole split.
    pub fn rows(&self, len: i64) -> Vec<i64> {
        let len = usize::try_from(len).unwrap_or(0);
        match self.sample {
            None => (0..len).map(|i| i64::try_from(i).unwrap_or(i64::MAX)).collect(),
            Some((count, seed)) => {
                let count = usize::try_from(count).unwrap_or(0).min(len);
                let mut rng = ChaCha8Rng::seed_from_u64(u64::from_le_bytes(seed.to_le_bytes()));
                let mut rows: Vec<i64> =
                    rand::seq::index::sample(&mut rng, len, count).into_iter().map(|i| i64::try_from(i).unwrap_or(i64::MAX)).collect();
                rows.sort_unstable();
                rows
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(count: i64, seed: i64) -> Selection {
        Selection { dataset: "data".into(), split: "test".into(), sample: Some((count, seed)) }
    }

    #[test]
    fn selection_sample_is_distinct_sorted_in_range_and_repeatable() {
        let rows = sample(16, 3).rows(100);
        assert_eq!(rows.len(), 16);
        assert!(rows.windows(2).all(|w| w[0] < w[1]), "{rows:?}");
        assert!(rows.iter().all(|r| (0..100).contains(r)));
        assert_eq!(rows, sample(16, 3).rows(100));
        assert_ne!(rows, sample(16, 4).rows(100));
    }

    #[test]
    fn selection_oversized_sample_and_whole_split_take_every_row() {
        assert_eq!(sample(50, 0).rows(5), vec![0, 1, 2, 3, 4]);
        let whole = Selection { dataset: "data".into(), split: "val".into(), sample: None };
        assert_eq!(whole.rows(3), vec![0, 1, 2]);
    }
}
