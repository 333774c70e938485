//! The CAVs of one TCAV node, as Kim et al. (2018, "Statistical significance testing") train
//! them: for each concept, `runs` linear SVMs, run r separating `n` probe images that show the
//! concept from a random set of `n` other probe images; and as many random CAVs, each separating
//! two disjoint random sets of `n` probe images. A third family, the random-concept control, is
//! made the same way as the random CAVs from independent draws: a "concept" that is a random
//! image set, which the test should not find significant.
//!
//! Every set is drawn afresh per run from the node's random stream, so the runs are independent
//! draws and their TCAV scores can enter a t-test as a sample. A concept with fewer than `n`
//! present probe images (or fewer than `n` others) uses as many as it has, at least 2. One with
//! fewer than 2 present or 2 absent probe images (on `shapes`, a colour no class uses) cannot be
//! tested: it gets no CAVs, and [`Cavs::untestable`] names it.

use super::super::{Result, StageError};
use lthlang::solvers::svm::LinearSvm;
use ndarray::{Array1, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

pub struct Cavs {
    /// Per concept, one unit normal per run; `None` for an untestable concept.
    pub concepts: Vec<Option<Vec<Array1<f64>>>>,
    /// Probe images per side of each concept's CAVs; `None` for an untestable concept.
    pub concept_sides: Vec<Option<usize>>,
    /// The concepts without CAVs: (index, probe images showing it, probe images without it).
    pub untestable: Vec<Untestable>,
    pub random: Vec<Array1<f64>>,
    pub control: Vec<Array1<f64>>,
    /// Probe images per side of the random and control CAVs.
    pub random_side: usize,
}

/// A concept shown by too few probe images, or by too many, to train its CAVs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Untestable {
    pub concept: usize,
    pub present: usize,
    pub absent: usize,
}

/// The unit normal of the SVM separating rows `positive` from rows `negative` of `x`, pointing
/// toward `positive`.
fn cav(svm: &LinearSvm, x: ArrayView2<f64>, positive: &[usize], negative: &[usize], what: &str) -> Result<Array1<f64>> {
    let rows: Vec<usize> = positive.iter().chain(negative).copied().collect();
    let labels: Vec<bool> = (0..rows.len()).map(|i| i < positive.len()).collect();
    let fit = svm.fit(x.select(Axis(0), &rows).view(), &labels)?;
    let plane = fit.hyperplane.unit().ok_or_else(|| {
        StageError::new(format!("the SVM of {what} found no direction (w = 0): its two sets of embeddings do not differ"))
    })?;
    Ok(plane.normal)
}

/// Two disjoint random sets of `side` rows out of `total`.
fn random_pair(total: usize, side: usize, rng: &mut ChaCha8Rng) -> (Vec<usize>, Vec<usize>) {
    let all: Vec<usize> = (0..total).collect();
    let drawn: Vec<usize> = all.choose_multiple(rng, 2 * side).copied().collect();
    (drawn[..side].to_vec(), drawn[side..].to_vec())
}

/// Trains every CAV of the node. `x` holds the probe embeddings [n, d]; `present[c]` the rows
/// showing concept c, named `names[c]`. A concept with fewer than 2 probe images on either side
/// gets no CAVs (and draws nothing from `rng`, so the others are trained as without it); the
/// node fails only when no concept can be tested.
pub fn train(
    x: ArrayView2<f64>,
    present: &[Vec<usize>],
    names: &[String],
    runs: usize,
    per_side: usize,
    svm: &LinearSvm,
    rng: &mut ChaCha8Rng,
) -> Result<Cavs> {
    let total = x.nrows();
    let random_side = per_side.min(total / 2);
    if random_side < 2 {
        return Err(StageError::new(format!("TCAV needs at least 4 probe images for its random sets; the bank's embeddings have {total}")));
    }
    let mut concepts = Vec::new();
    let mut concept_sides = Vec::new();
    let mut untestable = Vec::new();
    for (c, (rows, name)) in present.iter().zip(names).enumerate() {
        let side = per_side.min(rows.len()).min(total - rows.len().min(total)).min(total / 2);
        if side < 2 {
            let shown = rows.len().min(total);
            untestable.push(Untestable { concept: c, present: shown, absent: total - shown });
            concepts.push(None);
            concept_sides.push(None);
            continue;
        }
        let mut directions = Vec::new();
        for run in 0..runs {
            let positive: Vec<usize> = rows.choose_multiple(rng, side).copied().collect();
            let mut taken = vec![false; total];
            positive.iter().for_each(|&i| taken[i] = true);
            let others: Vec<usize> = (0..total).filter(|&i| !taken[i]).collect();
            let negative: Vec<usize> = others.choose_multiple(rng, side).copied().collect();
            directions.push(cav(svm, x, &positive, &negative, &format!("concept `{name}`, run {run}"))?);
        }
        concepts.push(Some(directions));
        concept_sides.push(Some(side));
    }
    if untestable.len() == names.len() {
        let counts: Vec<String> = untestable.iter().map(|u| format!("`{}` ({} of {total})", names[u.concept], u.present)).collect();
        return Err(StageError::new(format!(
            "no concept can be tested: each concept's CAVs need at least 2 probe images with it and 2 without, and the probe images showing each are {}",
            counts.join(", ")
        )));
    }
    let random_family = |what: &str, rng: &mut ChaCha8Rng| -> Result<Vec<Array1<f64>>> {
        (0..runs)
            .map(|run| {
                let (a, b) = random_pair(total, random_side, rng);
                cav(svm, x, &a, &b, &format!("{what} run {run}"))
            })
            .collect()
    };
    let random = random_family("random", rng)?;
    let control = random_family("the random-concept control", rng)?;
    Ok(Cavs { concepts, concept_sides, untestable, random, control, random_side })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};

    #[test]
    fn tcav_concept_cavs_point_along_the_concept_and_random_ones_do_not() {
        // Probe embeddings uniform in [-1, 1]^6; the concept is present when the first coordinate
        // is positive, so its CAVs point along e₁. Random sets have no direction of their own.
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let x = Array2::from_shape_fn((200, 6), |_| rng.gen_range(-1.0..1.0));
        let present: Vec<usize> = (0..200).filter(|&i| x[[i, 0]] > 0.0).collect();
        let svm = LinearSvm { c: 1.0, ..LinearSvm::default() };
        let cavs = train(x.view(), &[present], &["first".into()], 5, 40, &svm, &mut rng).unwrap_or_else(|e| panic!("{e}"));
        let concept = cavs.concepts[0].clone().unwrap_or_default();
        assert_eq!((concept.len(), cavs.random.len(), cavs.control.len()), (5, 5, 5));
        assert_eq!((cavs.concept_sides[0], cavs.random_side), (Some(40), 40));
        for v in &concept {
            assert!((v.dot(v) - 1.0).abs() < 1e-9);
            // Negatives are random probe images, half of which show the concept: the CAV still
            // leans strongly toward e₁.
            assert!(v[0] > 0.7, "{v}");
        }
        // Runs are independent draws: no two concept CAVs are the same.
        assert!(concept.windows(2).all(|w| w[0] != w[1]));
        let mean_first: f64 = cavs.random.iter().map(|v| v[0].abs()).sum::<f64>() / 5.0;
        assert!(mean_first < 0.7, "random CAVs lean on e₁: {mean_first}");
    }

    #[test]
    fn tcav_leaves_a_rare_concept_untested_and_trains_the_others_as_without_it() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let x = Array2::from_shape_fn((60, 4), |_| rng.gen_range(-1.0..1.0));
        let first: Vec<usize> = (0..60).filter(|&i| x[[i, 0]] > 0.0).collect();
        let svm = LinearSvm { c: 1.0, ..LinearSvm::default() };
        let names: Vec<String> = ["first", "rare", "everywhere"].map(String::from).into();
        let everywhere: Vec<usize> = (1..60).collect();
        let with = train(x.view(), &[first.clone(), vec![4], everywhere], &names, 3, 10, &svm, &mut ChaCha8Rng::seed_from_u64(0))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            with.untestable,
            vec![Untestable { concept: 1, present: 1, absent: 59 }, Untestable { concept: 2, present: 59, absent: 1 }]
        );
        assert_eq!((with.concepts[1].is_none(), with.concepts[2].is_none(), with.concept_sides[1]), (true, true, None));
        let without =
            train(x.view(), &[first], &names[..1], 3, 10, &svm, &mut ChaCha8Rng::seed_from_u64(0)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(with.concepts[0], without.concepts[0]);
        assert_eq!((with.random, with.control), (without.random, without.control));
    }

    #[test]
    fn tcav_refuses_when_no_concept_can_be_tested() {
        let x = Array2::from_shape_fn((10, 3), |(i, j)| (i * 3 + j) as f64);
        let err = train(x.view(), &[vec![4]], &["rare".into()], 10, 50, &LinearSvm::default(), &mut ChaCha8Rng::seed_from_u64(0))
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(err.contains("no concept can be tested") && err.contains("`rare` (1 of 10)"), "{err}");
    }
}
