//! The compare stage's output, `compare.json`: what the report draws. The compare stage builds
//! these values and writes them; the report reads them back. Optional parts are absent when the experiment did
//! not ask for them (no concept model, no saliency stage, no ground truth on real data).
//!
//! Metric values are `Option` because a metric can be undefined for a round (Kendall's τ of a
//! constant row, a map with no mass); the compare stage writes `null` then, and the report shows a
//! gap rather than a made-up number.

use serde::{Deserialize, Serialize};

/// The version tag the compare stage writes; a different one is refused rather than half read.
pub const FORMAT: &str = "lthlang-compare-1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Compare {
    pub format: String,
    /// The compare stage's name in the experiment.
    pub stage: String,
    /// Weights remaining (fractions) at the rounds the experiment asked to compare.
    pub at: Vec<f64>,
    pub reference_round: u32,
    #[serde(default)]
    pub networks: Vec<Series>,
    #[serde(default)]
    pub pcbms: Vec<Series>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concepts: Option<Concepts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saliency: Option<Saliency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faithfulness: Option<Vec<Faithfulness>>,
    /// The flat per-round table at the `at` rounds.
    #[serde(default)]
    pub rounds: Vec<RoundRow>,
}

/// Accuracy of one network or PCBM stage across its rounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    /// `imp`, `random`, `pcbm`, …: the stage's method.
    pub method: String,
    pub role: Role,
    pub rounds: Vec<SeriesPoint>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Main,
    Baseline,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    pub round: u32,
    pub weights_remaining: f64,
    pub accuracy: f64,
    /// 95% interval over seeds, when there are several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<[f64; 2]>,
    /// Mean over seeds of the balanced accuracy (absent from entries computed before it was
    /// measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balanced_accuracy: Option<f64>,
    /// Mean over seeds of the AUROC, for binary tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auroc: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Concepts {
    /// The PCBM stage whose weights are compared.
    pub stage: String,
    pub top: usize,
    /// A concept is listed only at this share of its row's largest |importance| or above.
    #[serde(default)]
    pub listed_share: f64,
    /// What the listed numbers are, in words (the importance's scale; see
    /// `metrics::concept_importance`).
    #[serde(default)]
    pub scale: String,
    /// How each round's fit of the first seed ended.
    #[serde(default)]
    pub fits: Vec<FitStatus>,
    /// The round every other round is compared with.
    #[serde(default)]
    pub reference_round: u32,
    #[serde(default)]
    pub classes: Vec<ClassConcepts>,
    #[serde(default)]
    pub consistency: Vec<ConceptConsistency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fidelity: Option<Vec<Fidelity>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_fidelity: Option<Vec<Fidelity>>,
    /// The same fidelity for a baseline PCBM fitted on the dataset's true concept labels (a
    /// `labels` bank): the best a bank of these concepts can do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling_fidelity: Option<Vec<Fidelity>>,
}

/// How a PCBM's fit ended: converged to the optimality tolerance or stopped by its budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitStatus {
    pub round: u32,
    pub converged: bool,
    pub kkt_violation: Option<f64>,
    /// Exact zeros among the weights, and the weights.
    pub zeros: u64,
    pub weights: u64,
    /// `ovr` or `multinomial`.
    #[serde(default)]
    pub multiclass: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassConcepts {
    pub class: String,
    pub rounds: Vec<ClassRound>,
}

/// A class's listed concepts at one round: (concept name, importance), strongest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassRound {
    pub round: u32,
    pub weights_remaining: f64,
    #[serde(default)]
    pub positive: Vec<(String, f64)>,
    #[serde(default)]
    pub negative: Vec<(String, f64)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConceptConsistency {
    pub round: u32,
    pub weights_remaining: f64,
    pub jaccard: Option<f64>,
    pub kendall_tau: Option<f64>,
    pub cosine: Option<f64>,
    /// 95% intervals over seeds, by metric, when there are several seeds.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub intervals: std::collections::BTreeMap<String, [f64; 2]>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fidelity {
    pub round: u32,
    pub weights_remaining: f64,
    pub recall_at_k: Option<f64>,
    pub fully_recovered: Option<f64>,
    pub ranking_auc: Option<f64>,
    /// 95% intervals over seeds, by metric, when there are several seeds.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub intervals: std::collections::BTreeMap<String, [f64; 2]>,
    /// The range of ranking AUC at chance: the same models with their concept columns
    /// relabelled at random (2.5% and 97.5% quantiles; see
    /// `metrics::ground_truth::concept_fidelity::chance_ranking_auc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chance_auc: Option<[f64; 2]>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Saliency {
    pub stage: String,
    /// `gradcam`, `gradcam_pp`, …
    pub method: String,
    /// The round every other round's maps are compared with.
    #[serde(default)]
    pub reference_round: u32,
    #[serde(default)]
    pub images: Vec<SaliencyImage>,
    #[serde(default)]
    pub consistency: Vec<SaliencyConsistency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localisation: Option<Vec<Localisation>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SaliencyImage {
    /// The image's row in its split.
    pub index: u64,
    pub label: String,
    pub overlays: Vec<Overlay>,
}

/// One overlay PNG: `file` relative to the cache folder of the explainer node `node`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overlay {
    pub round: u32,
    pub node: String,
    pub file: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SaliencyConsistency {
    pub round: u32,
    pub weights_remaining: f64,
    pub spearman: Option<f64>,
    pub ssim: Option<f64>,
    pub top_iou: Option<f64>,
    /// 95% intervals over seeds, by metric, when there are several seeds.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub intervals: std::collections::BTreeMap<String, [f64; 2]>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Localisation {
    pub round: u32,
    pub weights_remaining: f64,
    pub mass_inside: Option<f64>,
    pub uniform: Option<f64>,
    pub ceiling: Option<f64>,
    pub pointing: Option<f64>,
    pub rank_accuracy: Option<f64>,
    /// 95% intervals over seeds, by metric, when there are several seeds.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub intervals: std::collections::BTreeMap<String, [f64; 2]>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Faithfulness {
    pub round: u32,
    pub weights_remaining: f64,
    pub deletion_auc: Option<f64>,
    pub insertion_auc: Option<f64>,
    /// 95% intervals over seeds, by metric, when there are several seeds.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub intervals: std::collections::BTreeMap<String, [f64; 2]>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRow {
    pub round: u32,
    pub weights_remaining: f64,
    #[serde(default)]
    pub accuracy: Option<f64>,
    #[serde(default)]
    pub pcbm_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balanced_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcbm_balanced_accuracy: Option<f64>,
    /// Binary tasks only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auroc: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcbm_auroc: Option<f64>,
}

impl Compare {
    /// Reads `compare.json`, refusing another format version by name.
    pub fn from_json(text: &str) -> Result<Compare, String> {
        let compare: Compare = serde_json::from_str(text).map_err(|e| format!("compare.json: {e}"))?;
        if compare.format != FORMAT {
            return Err(format!("compare.json: format `{}` is not `{FORMAT}`", compare.format));
        }
        Ok(compare)
    }

    /// Weights remaining of every round this output mentions, so that a column headed by a round
    /// (an overlay, a concept table) can also say how much of the network is left.
    pub fn weights_of_rounds(&self) -> std::collections::BTreeMap<u32, f64> {
        let mut known = std::collections::BTreeMap::new();
        let mut note = |round: u32, weights: f64| {
            known.entry(round).or_insert(weights);
        };
        for row in &self.rounds {
            note(row.round, row.weights_remaining);
        }
        for point in self.networks.iter().chain(&self.pcbms).flat_map(|s| &s.rounds) {
            note(point.round, point.weights_remaining);
        }
        if let Some(concepts) = &self.concepts {
            for class_round in concepts.classes.iter().flat_map(|c| &c.rounds) {
                note(class_round.round, class_round.weights_remaining);
            }
            for row in &concepts.consistency {
                note(row.round, row.weights_remaining);
            }
            for row in concepts.fidelity.iter().chain(&concepts.random_fidelity).chain(&concepts.ceiling_fidelity).flatten() {
                note(row.round, row.weights_remaining);
            }
        }
        if let Some(saliency) = &self.saliency {
            for row in &saliency.consistency {
                note(row.round, row.weights_remaining);
            }
            for row in saliency.localisation.iter().flatten() {
                note(row.round, row.weights_remaining);
            }
        }
        for row in self.faithfulness.iter().flatten() {
            note(row.round, row.weights_remaining);
        }
        known
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_agreed_shape_with_optional_parts_missing() {
        let text = r#"{"format": "lthlang-compare-1", "stage": "lth", "at": [1.0, 0.6],
            "reference_round": 0,
            "networks": [{"name": "tickets", "method": "imp", "role": "main",
                          "rounds": [{"round": 0, "weights_remaining": 1.0, "accuracy": 0.97,
                                      "interval": [0.95, 0.99]},
                                     {"round": 1, "weights_remaining": 0.6, "accuracy": 0.9}]}],
            "pcbms": [],
            "rounds": [{"round": 0, "weights_remaining": 1.0, "accuracy": 0.97, "pcbm_accuracy": null}]}"#;
        let compare = Compare::from_json(text).unwrap();
        assert_eq!(compare.networks[0].role, Role::Main);
        assert_eq!(compare.networks[0].rounds[0].interval, Some([0.95, 0.99]));
        assert_eq!(compare.networks[0].rounds[1].interval, None);
        assert!(compare.concepts.is_none() && compare.saliency.is_none() && compare.faithfulness.is_none());
        assert_eq!(compare.rounds[0].pcbm_accuracy, None);
        assert_eq!(compare.weights_of_rounds().get(&1), Some(&0.6));
    }

    #[test]
    fn refuses_another_format_by_name() {
        let text = r#"{"format": "lthlang-compare-2", "stage": "lth", "at": [], "reference_round": 0}"#;
        let error = Compare::from_json(text).unwrap_err();
        assert!(error.contains("lthlang-compare-2"), "{error}");
    }
}

/// Rows that may carry 95% intervals over seeds for their metrics.
pub trait Intervals {
    fn interval(&self, metric: &str) -> Option<[f64; 2]>;
}

macro_rules! intervals {
    ($($row:ty),*) => {$(
        impl Intervals for $row {
            fn interval(&self, metric: &str) -> Option<[f64; 2]> {
                self.intervals.get(metric).copied()
            }
        }
    )*};
}

intervals!(ConceptConsistency, Fidelity, SaliencyConsistency, Localisation, Faithfulness);
