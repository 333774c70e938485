//! The `compare` stage, computed by the front end without libtorch: it reads the artifacts of the
//! stages it names (metrics, PCBM weights, saliency maps, dataset masks) and writes
//! `compare.json`, the one input of the report, in the shape [`format`] defines.
//!
//! Rounds: a ticket series has round 0 (the dense network its prune stage starts `from`) and
//! rounds 1..R; a stage mapped over the series has the same rounds. With several seeds, numbers
//! per round are the mean over seeds with a 95% interval.

pub mod artifacts;
pub mod format;

use crate::check::Value;
use crate::exec::job::{NodeRequest, Upstream};
use crate::kinds::Category;
use crate::metrics::{concept_importance, consistency, ground_truth, summary};
use artifacts::{metrics, Array, Result};
use format::{
    ClassConcepts, ClassRound, Compare, ConceptConsistency, Concepts, Faithfulness, Fidelity, FitStatus, Localisation, Overlay, Role,
    RoundRow, Saliency, SaliencyConsistency, SaliencyImage, Series, SeriesPoint,
};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, BTreeSet};

pub const OUTPUT_FILE: &str = "compare.json";

/// One node of a series: its round, its seed (from the `@seedN` suffix) and its upstream entry.
struct Member<'a> {
    round: u32,
    seed: String,
    node: &'a Upstream,
}

fn seed_of(id: &str) -> String {
    id.split_once('@').map_or_else(String::new, |(_, s)| s.to_owned())
}

fn stage_value<'a>(request: &'a NodeRequest, stage: &str, field: &str) -> Option<&'a Value> {
    request.upstream.iter().find(|u| u.stage == stage).and_then(|u| u.fields.get(field))
}

/// The nodes of `stage` by round. A prune stage's round 0 is the dense node it starts from.
fn members<'a>(request: &'a NodeRequest, stage: &str) -> Vec<Member<'a>> {
    let mut out: Vec<Member> = request
        .upstream
        .iter()
        .filter(|u| u.stage == stage)
        .map(|u| Member { round: u.round.unwrap_or(0), seed: seed_of(&u.id), node: u })
        .collect();
    let is_prune = out.first().is_some_and(|m| m.node.category == Category::Prune);
    if is_prune {
        if let Some(from) = stage_value(request, stage, "from").and_then(Value::as_stage) {
            out.extend(request.upstream.iter().filter(|u| u.stage == from).map(|u| Member { round: 0, seed: seed_of(&u.id), node: u }));
        }
    }
    out.sort_by(|a, b| (a.round, &a.seed).cmp(&(b.round, &b.seed)));
    out
}

/// The prune stage a stage is mapped over, found by following its stage references upstream.
fn series_of(request: &NodeRequest, stage: &str) -> Option<String> {
    let mut pending = vec![stage.to_owned()];
    let mut seen = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(node) = request.upstream.iter().find(|u| u.stage == name) else { continue };
        if node.category == Category::Prune {
            return Some(name);
        }
        let mut refs = Vec::new();
        for value in node.fields.values() {
            value.references(&mut refs);
        }
        pending.extend(refs);
    }
    None
}

/// Weights remaining per round of the series `stage` belongs to (1 for round 0).
fn weights_by_round(request: &NodeRequest, stage: &str) -> BTreeMap<u32, f64> {
    let mut out = BTreeMap::from([(0, 1.0)]);
    if let Some(series) = series_of(request, stage) {
        for m in members(request, &series) {
            if let Some(w) = metrics(&m.node.dir)["weights_remaining"].as_f64() {
                out.insert(m.round, w);
            }
        }
    }
    out
}

/// Mean over seeds, with the 95% interval when there are several.
fn aggregate(values: &[f64]) -> (f64, Option<[f64; 2]>) {
    match summary::mean_interval(values) {
        Ok(mi) if values.len() > 1 => (mi.mean, Some([mi.lower, mi.upper])),
        Ok(mi) => (mi.mean, None),
        Err(_) => (f64::NAN, None),
    }
}

/// Accuracy per round of a network series or a PCBM, as the report's `networks`/`pcbms` entry.
fn accuracy_curve(request: &NodeRequest, stage: &str, role: Role) -> Series {
    let weights = weights_by_round(request, stage);
    let all = members(request, stage);
    let method = all.first().map_or("", |m| m.node.method.as_str()).to_owned();
    // Train and prune nodes write `test_<score>`, PCBMs `<score>`.
    let score = |metrics: &Json, name: &str| metrics[format!("test_{name}")].as_f64().or_else(|| metrics[name].as_f64());
    let mut by_round: BTreeMap<u32, Tally> = BTreeMap::new();
    for m in &all {
        let metrics = metrics(&m.node.dir);
        for name in ["accuracy", "balanced_accuracy", "auroc"] {
            if let Some(value) = score(&metrics, name) {
                by_round.entry(m.round).or_default().push(name, &m.seed, value);
            }
        }
    }
    let rounds = by_round
        .iter()
        .filter(|(_, tally)| tally.has("accuracy"))
        .map(|(round, tally)| {
            let (accuracy, interval) = tally.summary("accuracy");
            SeriesPoint {
                round: *round,
                weights_remaining: weights_at(&weights, *round),
                accuracy: accuracy.unwrap_or(f64::NAN),
                interval,
                balanced_accuracy: tally.value("balanced_accuracy"),
                auroc: tally.value("auroc"),
            }
        })
        .collect();
    Series { name: stage.to_owned(), method, role, rounds }
}

/// Weights remaining at `round`; NaN (written as null) when the series does not say.
fn weights_at(weights: &BTreeMap<u32, f64>, round: u32) -> f64 {
    weights.get(&round).copied().unwrap_or(f64::NAN)
}

fn call_arg(value: Option<&Value>) -> Option<&Value> {
    match value {
        Some(Value::Call { args, .. }) => args.values().next(),
        _ => None,
    }
}

fn configured(value: Option<&Value>) -> Option<(&str, &BTreeMap<String, Value>)> {
    match value {
        Some(Value::Configured { stage, fields }) => Some((stage, fields)),
        _ => None,
    }
}

fn dataset_of(request: &NodeRequest) -> Option<&Upstream> {
    request.upstream.iter().find(|u| u.category == Category::Dataset)
}

/// What compare needs from the dataset's `meta.json`; empty when there is no dataset upstream.
#[derive(Default, serde::Deserialize)]
struct DatasetFacts {
    #[serde(default)]
    class_names: Vec<String>,
    #[serde(default)]
    concept_names: Vec<String>,
    /// For each class, the indices of the concepts that define it.
    #[serde(default)]
    class_concepts: Vec<Vec<usize>>,
}

impl DatasetFacts {
    fn of(request: &NodeRequest) -> DatasetFacts {
        dataset_of(request)
            .and_then(|d| artifacts::json(&d.dir.join("meta.json")).ok())
            .and_then(|meta| serde_json::from_value(meta).ok())
            .unwrap_or_default()
    }

    fn class_label(&self, class: usize) -> String {
        self.class_names.get(class).cloned().unwrap_or_else(|| format!("class {class}"))
    }
}

/// Concept names with their importances, strongest first.
type Ranked = Vec<(String, f64)>;

/// The concepts a row of importances lists, positive and negative, with their importances
/// (the rule of [`concept_importance`]).
fn top_concepts(row: &[f64], names: &[String], k: usize) -> (Ranked, Ranked) {
    let named = |i: usize| (names.get(i).cloned().unwrap_or_else(|| format!("concept {i}")), row[i]);
    let positive = concept_importance::listed_positive(row, k).into_iter().map(named).collect();
    let negative = concept_importance::listed_negative(row, k).into_iter().map(named).collect();
    (positive, negative)
}

fn mean(values: &[f64]) -> f64 {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        f64::NAN
    } else {
        finite.iter().sum::<f64>() / finite.len() as f64
    }
}

/// Values of several metrics at one round, kept per seed: each metric is the mean over seeds of
/// each seed's mean (over classes or images), with a 95% interval over seeds when there are
/// several.
#[derive(Default)]
struct Tally(BTreeMap<&'static str, BTreeMap<String, Vec<f64>>>);

impl Tally {
    fn push(&mut self, metric: &'static str, seed: &str, value: f64) {
        self.0.entry(metric).or_default().entry(seed.to_owned()).or_default().push(value);
    }

    fn has(&self, metric: &str) -> bool {
        self.0.contains_key(metric)
    }

    /// The metric's value (None when no seed has a finite one) and its interval over seeds.
    fn summary(&self, metric: &str) -> (Option<f64>, Option<[f64; 2]>) {
        let per_seed: Vec<f64> =
            self.0.get(metric).map(|seeds| seeds.values().map(|v| mean(v)).filter(|v| v.is_finite()).collect()).unwrap_or_default();
        if per_seed.is_empty() {
            return (None, None);
        }
        let (value, interval) = aggregate(&per_seed);
        (value.is_finite().then_some(value), interval)
    }

    fn value(&self, metric: &str) -> Option<f64> {
        self.summary(metric).0
    }

    /// The intervals of those of `metrics` measured on several seeds.
    fn intervals(&self, metrics: &[&str]) -> BTreeMap<String, [f64; 2]> {
        metrics.iter().filter_map(|m| self.summary(m).1.map(|i| ((*m).to_owned(), i))).collect()
    }
}

/// A PCBM round's concept importances (`importance` [classes × concepts] in `pcbm.safetensors`,
/// see [`concept_importance`]), its concept names, and how its fit ended.
struct ConceptModel {
    importance: Array,
    names: Vec<String>,
    fit: FitStatus,
}

fn concept_model(request: &NodeRequest, pcbm: &Upstream) -> Result<ConceptModel> {
    let path = pcbm.dir.join("pcbm.safetensors");
    let mut tensors = artifacts::tensors(&path)?;
    let importance = artifacts::take(&mut tensors, "importance", &path)?;
    let bank = pcbm.fields.get("concepts").and_then(Value::as_stage).unwrap_or_default();
    let bank_node = request.upstream.iter().find(|u| u.stage == bank && u.round == pcbm.round && seed_of(&u.id) == seed_of(&pcbm.id));
    let names = bank_node
        .and_then(|b| artifacts::json(&b.dir.join("bank.json")).ok())
        .and_then(|j| j["names"].as_array().map(|a| a.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect()))
        .unwrap_or_default();
    let metrics = metrics(&pcbm.dir);
    let fit = FitStatus {
        round: pcbm.round.unwrap_or(0),
        converged: metrics["converged"].as_bool().unwrap_or(false),
        kkt_violation: metrics["kkt_violation"].as_f64(),
        zeros: metrics["zeros"].as_u64().unwrap_or(0),
        weights: metrics["weights"].as_u64().unwrap_or(0),
        multiclass: metrics["multiclass"].as_str().unwrap_or_default().to_owned(),
    };
    Ok(ConceptModel { importance, names, fit })
}

fn concepts_section(request: &NodeRequest, stage: &str, options: &BTreeMap<String, Value>) -> Result<Concepts> {
    let k = options.get("top").and_then(Value::as_int).and_then(|k| usize::try_from(k).ok()).unwrap_or(3);
    let reference = call_arg(options.get("reference")).and_then(Value::as_int).and_then(|r| u32::try_from(r).ok()).unwrap_or(0);
    let weights = weights_by_round(request, stage);
    let facts = DatasetFacts::of(request);
    let (defining, concept_names) = (&facts.class_concepts, &facts.concept_names);
    // Classes are named or given by index, as the language allows both.
    let chosen: Vec<&Value> = match options.get("classes") {
        Some(Value::List(items)) => items.iter().collect(),
        _ => Vec::new(),
    };
    let is_chosen = |c: usize, label: &str| {
        chosen.is_empty()
            || chosen.iter().any(|v| match v {
                Value::Str(s) | Value::Word(s) => s == label,
                Value::Int(i) => usize::try_from(*i).is_ok_and(|i| i == c),
                _ => false,
            })
    };

    // Only the first seed's tables are shown; consistency is averaged over seeds.
    let all = members(request, stage);
    let first_seed = all.first().map(|m| m.seed.clone()).unwrap_or_default();
    let mut models: BTreeMap<(String, u32), ConceptModel> = BTreeMap::new();
    for m in &all {
        models.insert((m.seed.clone(), m.round), concept_model(request, m.node)?);
    }
    let rounds: Vec<u32> = models.keys().filter(|(s, _)| *s == first_seed).map(|(_, r)| *r).collect();
    let classes = models.values().next().map_or(0, |m| m.importance.rows());
    let class_label = |c: usize| facts.class_label(c);
    let mut tables = Vec::new();
    for c in 0..classes {
        if !is_chosen(c, &class_label(c)) {
            continue;
        }
        let per_round = rounds
            .iter()
            .filter_map(|r| models.get(&(first_seed.clone(), *r)).map(|m| (r, m)))
            .map(|(r, m)| {
                let (positive, negative) = top_concepts(m.importance.row(c), &m.names, k);
                ClassRound { round: *r, weights_remaining: weights_at(&weights, *r), positive, negative }
            })
            .collect();
        tables.push(ClassConcepts { class: class_label(c), rounds: per_round });
    }

    let mut consistency_rows = Vec::new();
    let mut fidelity_rows = Vec::new();
    let groups = ground_truth::concept_fidelity::groups_from_names(concept_names);
    for r in &rounds {
        let mut tally = Tally::default();
        let mut fidelity_models: Vec<&[f64]> = Vec::new();
        for ((seed, round), model) in &models {
            if round != r {
                continue;
            }
            if let Some(base) = models.get(&(seed.clone(), reference)) {
                for c in 0..classes {
                    let (a, b) = (base.importance.row(c), model.importance.row(c));
                    tally.push("jaccard", seed, concept_importance::listed_jaccard(a, b, k).unwrap_or(f64::NAN));
                    tally.push("kendall_tau", seed, consistency::kendall_tau_b(a, b).unwrap_or(f64::NAN));
                    tally.push("cosine", seed, consistency::cosine(a, b).unwrap_or(f64::NAN));
                }
            }
            // Fidelity needs the bank's concepts to be the dataset's named concepts.
            if !defining.is_empty() && model.names == *concept_names {
                if let Ok(f) =
                    ground_truth::concept_fidelity::concept_fidelity(&model.importance.values, concept_names.len(), &groups, defining)
                {
                    tally.push("recall_at_k", seed, f.mean_recall_at_k);
                    tally.push("fully_recovered", seed, f.share_fully_recovered);
                    tally.push("ranking_auc", seed, f.mean_ranking_auc);
                    fidelity_models.push(&model.importance.values);
                }
            }
        }
        let (round, weights_remaining) = (*r, weights_at(&weights, *r));
        if *r != reference {
            consistency_rows.push(ConceptConsistency {
                round,
                weights_remaining,
                jaccard: tally.value("jaccard"),
                kendall_tau: tally.value("kendall_tau"),
                cosine: tally.value("cosine"),
                intervals: tally.intervals(&["jaccard", "kendall_tau", "cosine"]),
            });
        }
        if tally.has("recall_at_k") {
            fidelity_rows.push(Fidelity {
                round,
                weights_remaining,
                recall_at_k: tally.value("recall_at_k"),
                fully_recovered: tally.value("fully_recovered"),
                ranking_auc: tally.value("ranking_auc"),
                intervals: tally.intervals(&["recall_at_k", "fully_recovered", "ranking_auc"]),
                chance_auc: chance_auc(&fidelity_models, concept_names.len(), &groups, defining, round),
            });
        }
    }
    let fits: Vec<FitStatus> = models.iter().filter(|((s, _), _)| *s == first_seed).map(|(_, m)| m.fit.clone()).collect();
    let multiclass = fits.first().map(|f| f.multiclass.clone()).unwrap_or_default();
    Ok(Concepts {
        stage: stage.to_owned(),
        top: k,
        listed_share: concept_importance::LISTED_SHARE,
        scale: concept_importance::Multiclass::from_word(&multiclass).map(|m| m.scale().to_owned()).unwrap_or_default(),
        fits,
        reference_round: reference,
        classes: tables,
        consistency: consistency_rows,
        fidelity: (!fidelity_rows.is_empty()).then_some(fidelity_rows),
        random_fidelity: None,
        ceiling_fidelity: None,
    })
}

/// The chance range of ranking AUC for the models of one round, seeded by the round so that a
/// rerun gives the same bytes.
fn chance_auc(models: &[&[f64]], concepts: usize, groups: &[Vec<usize>], defining: &[Vec<usize>], round: u32) -> Option<[f64; 2]> {
    use ground_truth::concept_fidelity::{chance_ranking_auc, CHANCE_PERMUTATIONS};
    if models.is_empty() {
        return None;
    }
    chance_ranking_auc(models, concepts, groups, defining, CHANCE_PERMUTATIONS, u64::from(round)).ok()
}

/// Fidelity of a baseline PCBM. Over a bank of random directions, its i-th concept is read as
/// the dataset's i-th: what a bank that knows nothing would score. Over a `labels` bank, the
/// concepts are the dataset's own: the ceiling.
fn baseline_fidelity(request: &NodeRequest, stage: &str) -> Vec<Fidelity> {
    let weights = weights_by_round(request, stage);
    let DatasetFacts { concept_names: names, class_concepts: defining, .. } = DatasetFacts::of(request);
    let groups = ground_truth::concept_fidelity::groups_from_names(&names);
    let mut by_round: BTreeMap<u32, Vec<(f64, f64, f64)>> = BTreeMap::new();
    let mut models_by_round: BTreeMap<u32, Vec<Vec<f64>>> = BTreeMap::new();
    for m in members(request, stage) {
        let Ok(model) = concept_model(request, m.node) else { continue };
        if names.is_empty() || model.importance.shape.get(1) != Some(&names.len()) || defining.is_empty() {
            continue;
        }
        if let Ok(f) = ground_truth::concept_fidelity::concept_fidelity(&model.importance.values, names.len(), &groups, &defining) {
            by_round.entry(m.round).or_default().push((f.mean_recall_at_k, f.share_fully_recovered, f.mean_ranking_auc));
            models_by_round.entry(m.round).or_default().push(model.importance.values.clone());
        }
    }
    by_round
        .iter()
        .map(|(r, v)| {
            let pick = |f: fn(&(f64, f64, f64)) -> f64| Some(mean(&v.iter().map(f).collect::<Vec<_>>())).filter(|m| m.is_finite());
            let models: Vec<&[f64]> = models_by_round.get(r).map(|m| m.iter().map(Vec::as_slice).collect()).unwrap_or_default();
            Fidelity {
                round: *r,
                weights_remaining: weights_at(&weights, *r),
                recall_at_k: pick(|x| x.0),
                fully_recovered: pick(|x| x.1),
                ranking_auc: pick(|x| x.2),
                intervals: BTreeMap::new(),
                chance_auc: chance_auc(&models, names.len(), &groups, &defining, *r),
            }
        })
        .collect()
}

/// The method of the concept bank a PCBM stage reads (`annotated`, `random`, `labels`, …).
fn bank_method<'a>(request: &'a NodeRequest, pcbm: &str) -> Option<&'a str> {
    let bank = stage_value(request, pcbm, "concepts").and_then(Value::as_stage)?;
    request.upstream.iter().find(|u| u.stage == bank).map(|u| u.method.as_str())
}

/// Saliency maps of one explain node.
struct Maps {
    normalised: Array,
    indices: Vec<usize>,
    labels: Vec<usize>,
}

fn maps(node: &Upstream) -> Result<Maps> {
    let path = node.dir.join("maps.safetensors");
    let mut tensors = artifacts::tensors(&path)?;
    let normalised = artifacts::take(&mut tensors, "normalised", &path)?;
    let indices = artifacts::take(&mut tensors, "indices", &path)?.values.iter().map(|v| *v as usize).collect();
    let labels = artifacts::take(&mut tensors, "labels", &path)?.values.iter().map(|v| *v as usize).collect();
    Ok(Maps { normalised, indices, labels })
}

fn saliency_section(request: &NodeRequest, stage: &str, options: &BTreeMap<String, Value>) -> Result<Saliency> {
    let reference = call_arg(options.get("reference")).and_then(Value::as_int).and_then(|r| u32::try_from(r).ok()).unwrap_or(0);
    // Only the metrics asked for are measured; the others stay null and their columns empty.
    let asked: Vec<&Value> = match options.get("metrics") {
        Some(Value::List(items)) => items.iter().collect(),
        _ => Vec::new(),
    };
    let wants = |name: &str| asked.iter().any(|m| matches!(m, Value::Word(w) if w == name));
    let top_share = asked.iter().find_map(|m| match m {
        Value::Call { function, args } if function == "top_iou" => args.values().next().and_then(Value::as_fraction),
        _ => None,
    });
    let (spearman, ssim) = (wants("spearman"), wants("ssim"));
    let weights = weights_by_round(request, stage);
    let all = members(request, stage);
    let method = all.first().map_or("", |m| m.node.method.as_str()).to_owned();
    let first_seed = all.first().map(|m| m.seed.clone()).unwrap_or_default();
    let mut loaded: BTreeMap<(String, u32), Maps> = BTreeMap::new();
    for m in &all {
        loaded.insert((m.seed.clone(), m.round), maps(m.node)?);
    }

    // Ground truth: the dataset's object masks for the explained images, at the map's size.
    let split = all.first().and_then(|m| match m.node.fields.get("images") {
        Some(Value::Sample { split, .. } | Value::Split { split, .. }) => Some(split.clone()),
        _ => None,
    });
    // Only the explained images' rows are read: a real dataset's masks are gigabytes.
    let explained: Vec<usize> = loaded.values().flat_map(|m| m.indices.iter().copied()).collect::<BTreeSet<_>>().into_iter().collect();
    let masks = match (dataset_of(request), &split) {
        (Some(d), Some(split)) => artifacts::byte_rows(&d.dir.join(format!("{split}.masks.safetensors")), "masks", &explained).ok(),
        _ => None,
    };
    let layer_grid: Option<(usize, usize)> = all.first().and_then(|m| {
        let g = &metrics(&m.node.dir)["layer_grid"];
        Some((g[0].as_u64()? as usize, g[1].as_u64()? as usize))
    });

    let mut consistency_rows = Vec::new();
    let mut localisation_rows = Vec::new();
    let rounds: BTreeSet<u32> = loaded.keys().map(|(_, r)| *r).collect();
    for r in &rounds {
        let mut tally = Tally::default();
        for ((seed, round), m) in &loaded {
            if round != r {
                continue;
            }
            let (h, w) = (m.normalised.shape.get(1).copied().unwrap_or(0), m.normalised.shape.get(2).copied().unwrap_or(0));
            if let Some(base) = loaded.get(&(seed.clone(), reference)) {
                for i in 0..m.normalised.rows().min(base.normalised.rows()) {
                    let (a, b) = (base.normalised.row(i), m.normalised.row(i));
                    if spearman {
                        tally.push("spearman", seed, consistency::spearman(a, b).unwrap_or(f64::NAN));
                    }
                    if ssim {
                        tally.push("ssim", seed, consistency::ssim(a, b, h, w).unwrap_or(f64::NAN));
                    }
                    if let Some(share) = top_share {
                        tally.push("top_iou", seed, consistency::top_fraction_iou(a, b, share).unwrap_or(f64::NAN));
                    }
                }
            }
            if let Some((shape, masks)) = &masks {
                if shape.get(1) == Some(&h) && shape.get(2) == Some(&w) {
                    for (i, index) in m.indices.iter().enumerate() {
                        let Some(row) = masks.get(index) else { continue };
                        let mask: Vec<bool> = row.iter().map(|v| *v > 0).collect();
                        let map = m.normalised.row(i);
                        tally.push("mass_inside", seed, ground_truth::localisation::mass_inside(map, &mask).unwrap_or(f64::NAN));
                        tally.push("uniform", seed, ground_truth::localisation::uniform_baseline(&mask).unwrap_or(f64::NAN));
                        tally.push("pointing", seed, ground_truth::localisation::pointing_game(map, &mask).unwrap_or(f64::NAN));
                        tally.push("rank_accuracy", seed, ground_truth::localisation::rank_accuracy(map, &mask).unwrap_or(f64::NAN));
                        if let Some((gh, gw)) = layer_grid {
                            let grid = ground_truth::localisation::Grid::new;
                            tally.push(
                                "ceiling",
                                seed,
                                ground_truth::localisation::resolution_ceiling(&mask, grid(h, w), grid(gh, gw)).unwrap_or(f64::NAN),
                            );
                        }
                    }
                }
            }
        }
        let (round, weights_remaining) = (*r, weights_at(&weights, *r));
        if *r != reference {
            consistency_rows.push(SaliencyConsistency {
                round,
                weights_remaining,
                spearman: tally.value("spearman"),
                ssim: tally.value("ssim"),
                top_iou: tally.value("top_iou"),
                intervals: tally.intervals(&["spearman", "ssim", "top_iou"]),
            });
        }
        if tally.has("mass_inside") {
            localisation_rows.push(Localisation {
                round,
                weights_remaining,
                mass_inside: tally.value("mass_inside"),
                uniform: tally.value("uniform"),
                ceiling: tally.value("ceiling"),
                pointing: tally.value("pointing"),
                rank_accuracy: tally.value("rank_accuracy"),
                intervals: tally.intervals(&["mass_inside", "uniform", "ceiling", "pointing", "rank_accuracy"]),
            });
        }
    }

    // Overlays of the first seed, images by rounds, for the report's grid.
    let mut images = Vec::new();
    let facts = DatasetFacts::of(request);
    if let Some(first) = loaded.iter().find(|((s, _), _)| *s == first_seed).map(|(_, m)| m) {
        for (row, index) in first.indices.iter().enumerate() {
            let label = first.labels.get(row).map(|l| facts.class_label(*l)).unwrap_or_default();
            let overlays = all
                .iter()
                .filter(|m| m.seed == first_seed)
                .filter(|m| m.node.dir.join("heatmaps").join(format!("{index}.png")).is_file())
                .map(|m| Overlay { round: m.round, node: m.node.id.clone(), file: format!("heatmaps/{index}.png") })
                .collect();
            images.push(SaliencyImage { index: *index as u64, label, overlays });
        }
    }
    Ok(Saliency {
        stage: stage.to_owned(),
        method,
        reference_round: reference,
        images,
        consistency: consistency_rows,
        localisation: (!localisation_rows.is_empty()).then_some(localisation_rows),
    })
}

/// Faithfulness per round, when the explain stage measured deletion and insertion curves.
fn faithfulness_section(request: &NodeRequest, stage: &str) -> Vec<Faithfulness> {
    let weights = weights_by_round(request, stage);
    let mut by_round: BTreeMap<u32, Tally> = BTreeMap::new();
    for m in members(request, stage) {
        let metrics = metrics(&m.node.dir);
        if let (Some(d), Some(i)) = (metrics["deletion_auc"].as_f64(), metrics["insertion_auc"].as_f64()) {
            let tally = by_round.entry(m.round).or_default();
            tally.push("deletion_auc", &m.seed, d);
            tally.push("insertion_auc", &m.seed, i);
        }
    }
    by_round
        .iter()
        .map(|(r, tally)| Faithfulness {
            round: *r,
            weights_remaining: weights_at(&weights, *r),
            deletion_auc: tally.value("deletion_auc"),
            insertion_auc: tally.value("insertion_auc"),
            intervals: tally.intervals(&["deletion_auc", "insertion_auc"]),
        })
        .collect()
}

/// The round of a curve whose weights remaining is closest to `at`.
fn round_at(curve: &Series, at: f64) -> Option<&SeriesPoint> {
    curve.rounds.iter().min_by(|a, b| {
        let d = |x: &SeriesPoint| if x.weights_remaining.is_finite() { (x.weights_remaining - at).abs() } else { f64::INFINITY };
        d(a).total_cmp(&d(b))
    })
}

pub fn run(request: &NodeRequest) -> Result<Json> {
    let list = |field: &str| -> Vec<String> {
        match request.fields.get(field) {
            Some(Value::List(items)) => items.iter().filter_map(Value::as_stage).map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    };
    let category = |stage: &str| request.upstream.iter().find(|u| u.stage == stage).map(|u| u.category);
    let at: Vec<f64> = match request.fields.get("at") {
        Some(Value::List(items)) => items.iter().filter_map(Value::as_fraction).collect(),
        _ => Vec::new(),
    };
    let (mut networks, mut pcbms) = (Vec::new(), Vec::new());
    for (stage, role) in
        list("accuracy").into_iter().map(|s| (s, Role::Main)).chain(list("baseline").into_iter().map(|s| (s, Role::Baseline)))
    {
        let curve = accuracy_curve(request, &stage, role);
        if category(&stage) == Some(Category::Explain) {
            pcbms.push(curve)
        } else {
            networks.push(curve)
        }
    }
    // The concept model a `concepts` section reads is the one whose accuracy the table pairs
    // with the network's, whether or not `accuracy` lists it too.
    if let Some((stage, _)) = configured(request.fields.get("concepts")) {
        if !pcbms.iter().any(|c: &Series| c.name == stage) {
            pcbms.push(accuracy_curve(request, stage, Role::Main));
        }
    }
    let mut out = Compare {
        format: format::FORMAT.to_owned(),
        stage: request.stage.clone(),
        at: at.clone(),
        reference_round: 0,
        networks,
        pcbms,
        concepts: None,
        saliency: None,
        faithfulness: None,
        rounds: Vec::new(),
    };
    if let Some((stage, options)) = configured(request.fields.get("concepts")) {
        let mut section = concepts_section(request, stage, options)?;
        // Baseline PCBMs frame concept fidelity: one over the dataset's true concept labels is the
        // ceiling; the first over any other bank (random directions, scored as if its i-th
        // direction were the i-th concept) is the chance level.
        let baselines: Vec<String> = list("baseline").into_iter().filter(|b| category(b) == Some(Category::Explain)).collect();
        let (ceilings, others): (Vec<&String>, Vec<&String>) = baselines.iter().partition(|b| bank_method(request, b) == Some("labels"));
        if let Some(baseline) = others.first() {
            let rows = baseline_fidelity(request, baseline);
            section.random_fidelity = (!rows.is_empty()).then_some(rows);
        }
        if let Some(ceiling) = ceilings.first() {
            let rows = baseline_fidelity(request, ceiling);
            section.ceiling_fidelity = (!rows.is_empty()).then_some(rows);
        }
        out.reference_round = section.reference_round;
        out.concepts = Some(section);
    }
    if let Some((stage, options)) = configured(request.fields.get("saliency")) {
        out.saliency = Some(saliency_section(request, stage, options)?);
        if let Some(Value::Bool(true)) = request.fields.get("faithfulness") {
            let rows = faithfulness_section(request, stage);
            out.faithfulness = (!rows.is_empty()).then_some(rows);
        }
    }
    // The flat table at the requested rounds: the first main network and the first main PCBM.
    let main_net = out.networks.iter().find(|c| c.role == Role::Main);
    let main_pcbm = out.pcbms.iter().find(|c| c.role == Role::Main);
    let finite = |v: f64| v.is_finite().then_some(v);
    out.rounds = at
        .iter()
        .filter_map(|a| {
            let net = main_net.and_then(|c| round_at(c, *a))?;
            let pcbm = main_pcbm.and_then(|c| c.rounds.iter().find(|x| x.round == net.round));
            Some(RoundRow {
                round: net.round,
                weights_remaining: net.weights_remaining,
                accuracy: finite(net.accuracy),
                pcbm_accuracy: pcbm.and_then(|p| finite(p.accuracy)),
                balanced_accuracy: net.balanced_accuracy,
                pcbm_balanced_accuracy: pcbm.and_then(|p| p.balanced_accuracy),
                auroc: net.auroc,
                pcbm_auroc: pcbm.and_then(|p| p.auroc),
            })
        })
        .collect();
    let path = request.output.join(OUTPUT_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(json!({ "rounds": out.rounds }))
}
