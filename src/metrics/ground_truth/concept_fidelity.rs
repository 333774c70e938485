//! Concept fidelity of a PCBM: does each class's weight row single out the concept values that
//! define the class?
//!
//! Concepts come in one-hot groups (shape, colour, size, …), so a PCBM may encode "large" as a
//! negative weight on "small": both carry the same information. Raw weights would miss that, so
//! every value is scored by its contrast weight, c = w(value) − mean of w over the other values of
//! its group, which is invariant to adding a constant to a whole group.

use crate::metrics::error::finite;
use crate::metrics::ranking::descending_order;
use crate::metrics::{MetricError, Result};

/// Contrast weights of one row. `groups` must partition the concept indices `0..row.len()`: each
/// index in exactly one group. A group of a single value has nothing to contrast with, so its
/// contrast is the weight itself (the absent alternative has weight 0).
pub fn contrast_weights<T: Copy + Into<f64>>(row: &[T], groups: &[Vec<usize>]) -> Result<Vec<f64>> {
    let row = finite("contrast weights", row)?;
    check_partition(row.len(), groups)?;
    let mut contrast = vec![0.0; row.len()];
    for group in groups {
        let total: f64 = group.iter().map(|&i| row[i]).sum();
        let others = (group.len() - 1) as f64;
        for &i in group {
            contrast[i] = if group.len() == 1 { row[i] } else { row[i] - (total - row[i]) / others };
        }
    }
    Ok(contrast)
}

fn check_partition(concepts: usize, groups: &[Vec<usize>]) -> Result<()> {
    let mut seen = vec![false; concepts];
    for (g, group) in groups.iter().enumerate() {
        if group.is_empty() {
            return Err(MetricError::new(format!("concept groups: group {g} is empty")));
        }
        for &i in group {
            if i >= concepts {
                return Err(MetricError::new(format!("concept groups: group {g} names concept {i}, but the row has {concepts}")));
            }
            if seen[i] {
                return Err(MetricError::new(format!("concept groups: concept {i} appears in more than one place")));
            }
            seen[i] = true;
        }
    }
    match seen.iter().position(|s| !s) {
        Some(i) => Err(MetricError::new(format!("concept groups: concept {i} belongs to no group"))),
        None => Ok(()),
    }
}

/// Groups from concept names written `group:value` (as the `shapes` dataset names them): names
/// sharing the text before the first `:` form one group, in order of first appearance. A name
/// without `:` is a group of its own.
pub fn groups_from_names<S: AsRef<str>>(names: &[S]) -> Vec<Vec<usize>> {
    let mut keys: Vec<Option<&str>> = Vec::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let key = name.as_ref().split_once(':').map(|(group, _)| group);
        match key.and_then(|k| keys.iter().position(|seen| *seen == Some(k))) {
            Some(g) => groups[g].push(i),
            None => {
                keys.push(key);
                groups.push(vec![i]);
            }
        }
    }
    groups
}

/// How well one class's row recovers its defining values.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassFidelity {
    /// Share of the defining values among the k values of largest contrast, k = number of
    /// defining values. Values tied at the k-th place share the places left evenly (the
    /// expected recall when the tie is broken at random), so no tie is broken by index.
    pub recall_at_k: f64,
    /// Every defining value is in that top k.
    pub fully_recovered: bool,
    /// Chance that a defining value has a larger contrast than a non-defining one, ties counting
    /// one half: 1 is a perfect ranking, 0.5 chance.
    pub ranking_auc: f64,
}

/// Fidelity of one class: its weight row, the concept groups, and the indices of its defining
/// values (at least one, and not every concept, or the AUC has no pairs).
pub fn class_fidelity<T: Copy + Into<f64>>(row: &[T], groups: &[Vec<usize>], defining: &[usize]) -> Result<ClassFidelity> {
    let contrast = contrast_weights(row, groups)?;
    let mut is_defining = vec![false; contrast.len()];
    for &i in defining {
        if i >= contrast.len() || is_defining[i] {
            return Err(MetricError::new(format!("concept fidelity: defining concept {i} is out of range or repeated")));
        }
        is_defining[i] = true;
    }
    let k = defining.len();
    if k == 0 || k == contrast.len() {
        return Err(MetricError::new(format!(
            "concept fidelity: a class needs between 1 and {} defining values, not {k}",
            contrast.len() - 1
        )));
    }
    let hits = hits_at_k(&contrast, &is_defining, k);
    let mut wins = 0.0;
    for &d in defining {
        for (n, _) in is_defining.iter().enumerate().filter(|(_, def)| !**def) {
            wins += match contrast[d].partial_cmp(&contrast[n]) {
                Some(std::cmp::Ordering::Greater) => 1.0,
                Some(std::cmp::Ordering::Equal) => 0.5,
                _ => 0.0,
            };
        }
    }
    Ok(ClassFidelity {
        recall_at_k: hits / k as f64,
        fully_recovered: hits == k as f64,
        ranking_auc: wins / (k * (contrast.len() - k)) as f64,
    })
}

/// The expected number of defining values among the k largest contrasts: those strictly above
/// the k-th value count whole, and the group tied at it fills the places left in proportion.
fn hits_at_k(contrast: &[f64], is_defining: &[bool], k: usize) -> f64 {
    let boundary = contrast[descending_order(contrast)[k - 1]];
    let count = |keep: &dyn Fn(usize) -> bool| (0..contrast.len()).filter(|&i| keep(i)).count();
    let above = count(&|i| contrast[i] > boundary);
    let defining_above = count(&|i| contrast[i] > boundary && is_defining[i]);
    let tied = count(&|i| contrast[i] == boundary);
    let defining_tied = count(&|i| contrast[i] == boundary && is_defining[i]);
    defining_above as f64 + (k - above) as f64 * defining_tied as f64 / tied as f64
}

/// Fidelity over all classes, with the per-class results it averages.
#[derive(Debug, Clone, PartialEq)]
pub struct ConceptFidelity {
    pub classes: Vec<ClassFidelity>,
    pub mean_recall_at_k: f64,
    pub share_fully_recovered: f64,
    pub mean_ranking_auc: f64,
}

/// Fidelity of a whole PCBM: `weight` is the row-major `[classes × concepts]` matrix (as stored in
/// `pcbm.safetensors`), `defining[class]` the class's defining concept indices.
pub fn concept_fidelity<T: Copy + Into<f64>>(
    weight: &[T],
    concepts: usize,
    groups: &[Vec<usize>],
    defining: &[Vec<usize>],
) -> Result<ConceptFidelity> {
    if concepts == 0 || weight.len() != concepts * defining.len() || defining.is_empty() {
        return Err(MetricError::new(format!(
            "concept fidelity: a weight of {} values is not {} classes × {concepts} concepts",
            weight.len(),
            defining.len()
        )));
    }
    let classes = weight
        .chunks(concepts)
        .zip(defining)
        .enumerate()
        .map(|(class, (row, def))| class_fidelity(row, groups, def).map_err(|e| MetricError::new(format!("class {class}: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let n = classes.len() as f64;
    Ok(ConceptFidelity {
        mean_recall_at_k: classes.iter().map(|c| c.recall_at_k).sum::<f64>() / n,
        share_fully_recovered: classes.iter().filter(|c| c.fully_recovered).count() as f64 / n,
        mean_ranking_auc: classes.iter().map(|c| c.ranking_auc).sum::<f64>() / n,
        classes,
    })
}

/// The permutations [`chance_ranking_auc`] draws.
pub const CHANCE_PERMUTATIONS: usize = 1000;

/// The range of mean ranking AUC that PCBMs knowing nothing of the concepts' names would score:
/// the 2.5% and 97.5% quantiles over `permutations` random relabellings of the concept columns
/// (one relabelling applied to every row of a model, independently per model, and the AUC averaged
/// over the `models` as [`concept_fidelity`] does). A bank of random directions must land inside
/// it; a bank that found the defining values lands above. Deterministic from `seed`.
pub fn chance_ranking_auc<T: Copy + Into<f64>>(
    models: &[&[T]],
    concepts: usize,
    groups: &[Vec<usize>],
    defining: &[Vec<usize>],
    permutations: usize,
    seed: u64,
) -> Result<[f64; 2]> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    if models.is_empty() || permutations == 0 {
        return Err(MetricError::new("chance ranking AUC: needs at least one model and one permutation"));
    }
    let models: Vec<Vec<f64>> = models.iter().map(|m| finite("chance ranking AUC", m)).collect::<Result<_>>()?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..concepts).collect();
    let mut means = Vec::with_capacity(permutations);
    for _ in 0..permutations {
        let mut total = 0.0;
        for weight in &models {
            order.shuffle(&mut rng);
            // Column c of the relabelled model is column order[c] of the fitted one.
            let relabelled: Vec<f64> = weight.chunks(concepts.max(1)).flat_map(|row| order.iter().map(|&j| row[j])).collect();
            total += concept_fidelity(&relabelled, concepts, groups, defining)?.mean_ranking_auc;
        }
        means.push(total / models.len() as f64);
    }
    means.sort_by(f64::total_cmp);
    let quantile = |q: f64| means[((q * (means.len() - 1) as f64).round() as usize).min(means.len() - 1)];
    Ok([quantile(0.025), quantile(0.975)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `shapes` layout: shape 0–3, colour 4–7, size 8–9, pattern 10–11, background 12–14.
    fn shapes_groups() -> Vec<Vec<usize>> {
        vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9], vec![10, 11], vec![12, 13, 14]]
    }

    /// Class 0 is red (4) and large (9); its PCBM says "large" as a negative weight on small (8),
    /// and leans on an uninformative shape (0) and background (14).
    const RED_LARGE: [f64; 15] = [0.5, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3];
    /// Class 1 is green (5), small (8) and solid (10); solid shows as a negative weight on striped
    /// (11), small is missed, and the noise background (14) stands out.
    const GREEN_SMALL_SOLID: [f64; 15] = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.5, 0.0, 0.0, 0.9];

    #[test]
    fn contrast_subtracts_the_mean_of_the_other_values_of_the_group() {
        // Group [0,1,2] of w = [3,0,0]: 3 − 0 = 3, 0 − (3+0)/2 = −1.5 twice.
        // Group [3,4] of w = [1,−1]: 1 − (−1) = 2, −1 − 1 = −2. Group [5] alone: its weight.
        let c = contrast_weights(&[3.0f32, 0.0, 0.0, 1.0, -1.0, 0.25], &[vec![0, 1, 2], vec![3, 4], vec![5]]).unwrap();
        assert_eq!(c, vec![3.0, -1.5, -1.5, 2.0, -2.0, 0.25]);
        // Adding a constant to a whole group leaves its contrasts unchanged.
        let shifted = contrast_weights(&[13.0f64, 10.0, 10.0, 1.0, -1.0, 0.25], &[vec![0, 1, 2], vec![3, 4], vec![5]]).unwrap();
        assert_eq!(shifted, c);
    }

    #[test]
    fn groups_must_partition_the_concepts() {
        assert!(contrast_weights(&[1.0f64, 2.0], &[vec![0]]).unwrap_err().0.contains("concept 1 belongs to no group"));
        assert!(contrast_weights(&[1.0f64, 2.0], &[vec![0, 1], vec![1]]).is_err());
        assert!(contrast_weights(&[1.0f64, 2.0], &[vec![0, 2]]).is_err());
        assert!(contrast_weights(&[1.0f64, 2.0], &[vec![0, 1], vec![]]).is_err());
    }

    #[test]
    fn groups_follow_the_prefix_of_the_names() {
        let names = ["shape:circle", "shape:square", "colour:red", "size:small", "colour:blue", "odd"];
        assert_eq!(groups_from_names(&names), vec![vec![0, 1], vec![2, 4], vec![3], vec![5]]);
    }

    #[test]
    fn a_negative_weight_on_the_other_value_counts_as_recovery() {
        // Contrasts: c9 = 0 − (−2) = 2, c4 = 1, c0 = 0.5, c14 = 0.3, the rest below 0.
        // Top 2 = {9, 4} = the defining values: recall 1. Raw weights would pick {4, 0}.
        // Both defining contrasts (2, 1) beat every one of the 13 others: AUC 1.
        let fidelity = class_fidelity(&RED_LARGE, &shapes_groups(), &[4, 9]).unwrap();
        assert_eq!(fidelity, ClassFidelity { recall_at_k: 1.0, fully_recovered: true, ranking_auc: 1.0 });
    }

    #[test]
    fn partial_recovery_with_tied_contrasts() {
        // Contrasts: c5 = 1, c14 = 0.9, c10 = 0 − (−0.5) = 0.5, then zeros at 0–3, 8, 9, then
        // c4 = c6 = c7 = −1/3, c12 = c13 = −0.45, c11 = −0.5.
        // Top 3 = {5, 14, 10}: 2 of 3 defining → recall 2/3, not fully recovered.
        // AUC over 3 × 12 pairs: c5 = 1 beats all 12; c10 = 0.5 all but c14 = 0.9 (11); c8 = 0
        // beats the six negatives, ties the five zeros (0–3, 9: 2.5) and loses to c14: 8.5.
        // (12 + 11 + 8.5) / 36 = 31.5 / 36 = 0.875.
        let fidelity = class_fidelity(&GREEN_SMALL_SOLID, &shapes_groups(), &[5, 8, 10]).unwrap();
        assert_eq!(fidelity.recall_at_k, 2.0 / 3.0);
        assert!(!fidelity.fully_recovered);
        assert_eq!(fidelity.ranking_auc, 0.875);
    }

    #[test]
    fn a_tie_at_the_boundary_shares_its_places() {
        // Every contrast is zero, so all 15 values tie for the 2 places and each defining value is in with chance 2/15: recall 2/15.
        let silent = [0.0; 15];
        let fidelity = class_fidelity(&silent, &shapes_groups(), &[4, 9]).unwrap();
        assert!((fidelity.recall_at_k - 2.0 / 15.0).abs() < 1e-15, "{}", fidelity.recall_at_k);
        assert!(!fidelity.fully_recovered);
        assert_eq!(fidelity.ranking_auc, 0.5);
        // Value 4 alone stands out (contrast 1 against −1/3 for its group mates); the second
        // place goes to a tie of the 11 zero contrasts outside colour, one of them defining (9):
        // recall (1 + 1/11) / 2. Breaking the tie by index would have given 1/2.
        let mut row = [0.0; 15];
        row[4] = 1.0;
        let fidelity = class_fidelity(&row, &shapes_groups(), &[4, 9]).unwrap();
        assert!((fidelity.recall_at_k - (1.0 + 1.0 / 11.0) / 2.0).abs() < 1e-15, "{}", fidelity.recall_at_k);
    }

    #[test]
    fn fidelity_averages_over_classes() {
        let weight: Vec<f32> = RED_LARGE.iter().chain(&GREEN_SMALL_SOLID).map(|w| *w as f32).collect();
        let fidelity = concept_fidelity(&weight, 15, &shapes_groups(), &[vec![4, 9], vec![5, 8, 10]]).unwrap();
        // Recall (1 + 2/3)/2 = 5/6; one class of two fully recovered; AUC (1 + 0.875)/2.
        assert!((fidelity.mean_recall_at_k - 5.0 / 6.0).abs() < 1e-15);
        assert_eq!(fidelity.share_fully_recovered, 0.5);
        assert_eq!(fidelity.mean_ranking_auc, 0.9375);
        assert_eq!(fidelity.classes.len(), 2);
    }

    #[test]
    fn the_chance_range_centres_on_one_half_and_excludes_a_perfect_model() {
        // A model with one weight on each class's single defining value (AUC 1 as fitted).
        let concepts = 15;
        let defining: Vec<Vec<usize>> = (0..6).map(|k| vec![k]).collect();
        let mut weight = vec![0.0f64; 6 * concepts];
        for k in 0..6 {
            weight[k * concepts + k] = 1.0 + k as f64 * 0.1;
        }
        let groups: Vec<Vec<usize>> = (0..concepts).map(|c| vec![c]).collect();
        assert_eq!(concept_fidelity(&weight, concepts, &groups, &defining).unwrap().mean_ranking_auc, 1.0);
        let [low, high] = chance_ranking_auc(&[&weight], concepts, &groups, &defining, CHANCE_PERMUTATIONS, 7).unwrap();
        assert!(low < 0.5 && 0.5 < high && high < 1.0, "[{low}, {high}]");
        // Shuffled, a class's one non-zero weight lands on its defining value with chance 1/15
        // (AUC 1) and elsewhere leaves it tied with 13 zeros below one (AUC 13·½/14 = 0.464): the
        // mean over six classes stays near 0.5, so the range is narrow around it.
        assert!(high - low < 0.4, "[{low}, {high}]");
        // The same seed gives the same range.
        assert_eq!(
            chance_ranking_auc(&[&weight], concepts, &groups, &defining, 200, 7).unwrap(),
            chance_ranking_auc(&[&weight], concepts, &groups, &defining, 200, 7).unwrap()
        );
        assert!(chance_ranking_auc::<f64>(&[], concepts, &groups, &defining, 10, 7).is_err());
    }

    #[test]
    fn fidelity_refuses_inconsistent_shapes() {
        let groups = shapes_groups();
        assert!(concept_fidelity(&RED_LARGE, 15, &groups, &[vec![4], vec![5]]).is_err());
        assert!(concept_fidelity(&RED_LARGE, 15, &groups, &[vec![]]).unwrap_err().0.starts_with("class 0"));
        assert!(class_fidelity(&RED_LARGE, &groups, &[4, 4]).is_err());
        assert!(class_fidelity(&RED_LARGE, &groups, &[15]).is_err());
        assert!(class_fidelity(&RED_LARGE, &groups, &(0..15).collect::<Vec<_>>()).is_err());
    }
}
