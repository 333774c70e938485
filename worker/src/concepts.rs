//! `concepts` stages (science.md, "Concepts"): a bank of linear concept scores over one
//! embedding node. Every method ends in the same artifact, so explain stages never ask how a
//! bank was made:
//! - `concepts.safetensors`: `{split}.scores` f32 [n, C] and `{split}.labels` i64 [n] for every
//!   split the embeddings have, `directions` f32 [C, d] and `offsets` f32 [C], with
//!   score = e·directions[c] + offsets[c];
//! - `bank.json`: {"method": ..., "names": [...]}.
//!
//! The `annotated` score is the probe's sigmoid output, the concept's predicted probability, as
//! the science asks ("sigmoid outputs") and a post-hoc concept bottleneck reads it. The logit
//! ranks images the same, but not as PCBM input: measured on the quickstart, a PCBM on probe
//! logits lists shape concepts, which define no class, among a class's top three (the logit of
//! a sure concept runs to ±10 and its extremes dominate the standardised scale), where one on
//! probabilities lists exactly each class's defining values. The artifact records the link, so
//! a bank applied to other embeddings scores them the same way: score = link(e·directions[c] +
//! offsets[c]), with `link` in `bank.json` (`identity` for CAV distances and random directions).

use super::arrays::{self, take};
use super::data::{self, SPLITS};
use super::{checkpoint, io_error, Context, Result, StageError};
use lthlang::check::Value;
use lthlang::exec::job::Upstream;
use lthlang::solvers::probe::{auroc, ExactProbes, ProbeTraining};
use lthlang::solvers::svm::LinearSvm;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// KKT tolerance of exact probes: the PCBM's.
const PROBE_TOLERANCE: f64 = 1e-6;
/// Their budget in passes over the embeddings; a fit at the default `l2` needs far fewer.
const PROBE_PASSES: usize = 20_000;

pub const BANK_FILE: &str = "concepts.safetensors";
pub const NAMES_FILE: &str = "bank.json";
/// The embed node's artifact (see the shared brief's formats).
pub const EMBEDDINGS_FILE: &str = "embeddings.safetensors";

/// One split of an embed node: embeddings [n, d], labels, and the model's logits [n, K] when
/// stored.
pub struct EmbeddedSplit {
    pub embeddings: Array2<f64>,
    pub labels: Vec<i64>,
    pub logits: Option<Array2<f64>>,
}

/// Every split an embed node holds, by name.
pub fn read_embeddings(dir: &Path) -> Result<BTreeMap<String, EmbeddedSplit>> {
    let path = dir.join(EMBEDDINGS_FILE);
    let tensors = checkpoint::load(&path)?;
    let mut out = BTreeMap::new();
    for split in SPLITS {
        let Some(embeddings) = tensors.get(&format!("{split}.embeddings")) else { continue };
        let name = |what: &str| format!("{}: `{split}.{what}`", path.display());
        let embeddings = arrays::matrix(embeddings, &name("embeddings"))?;
        let labels = arrays::labels(take(&tensors, &format!("{split}.labels"), &path)?, &name("labels"))?;
        if labels.len() != embeddings.nrows() {
            return Err(StageError::new(format!(
                "{} has {} embeddings but {} labels",
                name("embeddings"),
                embeddings.nrows(),
                labels.len()
            )));
        }
        let logits = tensors.get(&format!("{split}.logits")).map(|t| arrays::matrix(t, &name("logits"))).transpose()?;
        if let Some(l) = &logits {
            if l.nrows() != labels.len() {
                return Err(StageError::new(format!("{} has {} rows for {} labels", name("logits"), l.nrows(), labels.len())));
            }
        }
        out.insert(split.to_owned(), EmbeddedSplit { embeddings, labels, logits });
    }
    if !out.contains_key("train") {
        return Err(StageError::new(format!("{} has no `train.embeddings`", path.display())));
    }
    Ok(out)
}

#[derive(Serialize, Deserialize)]
struct Names {
    method: String,
    names: Vec<String>,
    /// Absent in banks written before the link was recorded, which were all linear.
    #[serde(default)]
    link: Link,
}

/// What a bank applies to its linear score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    #[default]
    Identity,
    Sigmoid,
}

impl Link {
    fn apply(self, scores: &mut Array2<f64>) {
        if self == Link::Sigmoid {
            scores.mapv_inplace(|z| 1.0 / (1.0 + (-z).exp()));
        }
    }
}

/// A concept bank: names and the linear map from an embedding to the concept scores.
#[derive(Clone, Debug)]
pub struct Bank {
    pub method: String,
    pub names: Vec<String>,
    /// [C, d]
    pub directions: Array2<f64>,
    /// [C]
    pub offsets: Array1<f64>,
    pub link: Link,
}

impl Bank {
    pub fn scores(&self, embeddings: ArrayView2<f64>) -> Array2<f64> {
        let mut s = embeddings.dot(&self.directions.t());
        s += &self.offsets;
        self.link.apply(&mut s);
        s
    }

    /// Writes the bank and the scores of every split into `dir`.
    pub fn save(&self, dir: &Path, splits: &BTreeMap<String, EmbeddedSplit>) -> Result<()> {
        let mut tensors = BTreeMap::new();
        for (name, split) in splits {
            if split.embeddings.ncols() != self.directions.ncols() {
                return Err(StageError::new(format!(
                    "the `{name}` embeddings have {} dimensions, the bank's directions {}",
                    split.embeddings.ncols(),
                    self.directions.ncols()
                )));
            }
            tensors.insert(format!("{name}.scores"), arrays::matrix_tensor(&self.scores(split.embeddings.view()))?);
            tensors.insert(format!("{name}.labels"), arrays::labels_tensor(&split.labels)?);
        }
        tensors.insert("directions".to_owned(), arrays::matrix_tensor(&self.directions)?);
        tensors.insert("offsets".to_owned(), arrays::vector_tensor(&self.offsets)?);
        let metadata = BTreeMap::from([("format".to_owned(), "lthlang-concepts-1".to_owned())]);
        checkpoint::save(&dir.join(BANK_FILE), &tensors, &metadata)?;
        let path = dir.join(NAMES_FILE);
        let text = serde_json::to_string_pretty(&Names { method: self.method.clone(), names: self.names.clone(), link: self.link })
            .map_err(|e| StageError::new(e.to_string()))?;
        std::fs::write(&path, text).map_err(|e| io_error(&path, &e))
    }
}

/// A bank as an explain stage reads it back: names and the scores of every split.
pub struct StoredBank {
    pub method: String,
    pub names: Vec<String>,
    /// Per split: scores [n, C] and labels.
    pub splits: BTreeMap<String, (Array2<f64>, Vec<i64>)>,
    /// The linear map from embeddings, `directions` [C, d] and `offsets` [C]; a `labels` bank
    /// has none.
    map: Option<(Array2<f64>, Array1<f64>)>,
    link: Link,
}

impl StoredBank {
    pub fn read(dir: &Path) -> Result<StoredBank> {
        let names_path = dir.join(NAMES_FILE);
        let text = std::fs::read_to_string(&names_path).map_err(|e| io_error(&names_path, &e))?;
        let Names { method, names, link } =
            serde_json::from_str(&text).map_err(|e| StageError::new(format!("{}: {e}", names_path.display())))?;
        let path = dir.join(BANK_FILE);
        let tensors = checkpoint::load(&path)?;
        let mut splits = BTreeMap::new();
        for split in SPLITS {
            let Some(scores) = tensors.get(&format!("{split}.scores")) else { continue };
            let scores = arrays::matrix(scores, &format!("{}: `{split}.scores`", path.display()))?;
            let labels =
                arrays::labels(take(&tensors, &format!("{split}.labels"), &path)?, &format!("{}: `{split}.labels`", path.display()))?;
            if scores.ncols() != names.len() || scores.nrows() != labels.len() {
                return Err(StageError::new(format!(
                    "{}: `{split}.scores` has shape {:?} for {} concepts and {} labels",
                    path.display(),
                    scores.dim(),
                    names.len(),
                    labels.len()
                )));
            }
            splits.insert(split.to_owned(), (scores, labels));
        }
        let map = match (tensors.get("directions"), tensors.get("offsets")) {
            (Some(d), Some(o)) => Some((
                arrays::matrix(d, &format!("{}: `directions`", path.display()))?,
                arrays::vector(o, &format!("{}: `offsets`", path.display()))?,
            )),
            _ => None,
        };
        Ok(StoredBank { method, names, splits, map, link })
    }

    /// This bank's concepts scored on other embeddings (a bank learned on a probe set, applied
    /// to the task's images): every split of `embedded`, with its labels.
    pub fn applied_to(self, embedded: &BTreeMap<String, EmbeddedSplit>, bank: &str, embed: &str) -> Result<StoredBank> {
        let Some((directions, offsets)) = &self.map else {
            return Err(StageError::new(format!(
                "the concept bank `{bank}` ({}) has no directions to apply to the embeddings `{embed}`: its scores are a dataset's own concept labels",
                self.method
            )));
        };
        let mut splits = BTreeMap::new();
        for (name, split) in embedded {
            if split.embeddings.ncols() != directions.ncols() {
                return Err(StageError::new(format!(
                    "the embeddings `{embed}` have {} dimensions, the directions of the concept bank `{bank}` {}: embed both at the same layer of the same model",
                    split.embeddings.ncols(),
                    directions.ncols()
                )));
            }
            let mut scores = split.embeddings.dot(&directions.t());
            scores += offsets;
            self.link.apply(&mut scores);
            splits.insert(name.clone(), (scores, split.labels.clone()));
        }
        Ok(StoredBank { splits, ..self })
    }

    pub fn split(&self, name: &str, dir: &Path) -> Result<&(Array2<f64>, Vec<i64>)> {
        self.splits.get(name).ok_or_else(|| StageError::new(format!("{} has no `{name}` scores", dir.join(BANK_FILE).display())))
    }
}

/// The concept scores an explain stage fits on, and the embed node whose images they score
/// (unknown when the bank does not say what it was built from).
pub struct ConceptScores<'a> {
    pub bank_node: &'a Upstream,
    pub bank: StoredBank,
    pub embed: Option<&'a Upstream>,
    /// The embeddings of `features`, read to score them; `None` when the bank's own scores serve.
    pub features: Option<BTreeMap<String, EmbeddedSplit>>,
}

/// The scores of the bank in the field `concepts`: its own (`features = none`), or its
/// directions applied to the embeddings the field `features` names.
pub fn concept_scores<'a>(ctx: &'a Context) -> Result<ConceptScores<'a>> {
    let bank_node = stage_field(ctx, "concepts")?;
    let bank = StoredBank::read(&bank_node.dir)?;
    match ctx.field("features")? {
        Value::None => {
            let embed = match bank_node.fields.get("from") {
                Some(Value::Stage(name)) => Some(ctx.upstream(name)?),
                _ => None,
            };
            Ok(ConceptScores { bank_node, bank, embed, features: None })
        }
        Value::Stage(name) => {
            let embed = ctx.upstream(name)?;
            let features = read_embeddings(&embed.dir)?;
            let bank = bank.applied_to(&features, &bank_node.stage, &embed.stage)?;
            Ok(ConceptScores { bank_node, bank, embed: Some(embed), features: Some(features) })
        }
        other => Err(StageError::new(format!("`features` should name an embed stage or be `none`, got {other:?}"))),
    }
}

/// The upstream node a stage-valued field names.
pub fn stage_field<'a>(ctx: &'a Context, field: &str) -> Result<&'a Upstream> {
    match ctx.field(field)? {
        Value::Stage(name) => ctx.upstream(name),
        other => Err(StageError::new(format!("`{field}` should name a stage, got {other:?}"))),
    }
}

/// The dataset node behind a concept-labels field (`data.concepts`).
fn labels_field<'a>(ctx: &'a Context, field: &str) -> Result<&'a Upstream> {
    match ctx.field(field)? {
        Value::ConceptLabels { dataset } => ctx.upstream(dataset),
        other => Err(StageError::new(format!("`{field}` should be a dataset's concept labels such as `data.concepts`, got {other:?}"))),
    }
}

/// A dataset's concept names and the concept labels [n, C] of each split that has them.
pub struct Annotations {
    pub names: Vec<String>,
    pub splits: BTreeMap<String, Array2<f64>>,
}

/// Reads a dataset's concept annotations, and only those tensors (not the images).
pub fn concept_labels(dir: &Path) -> Result<Annotations> {
    let meta_path = dir.join("meta.json");
    let text = std::fs::read_to_string(&meta_path).map_err(|e| io_error(&meta_path, &e))?;
    let meta: data::Meta = serde_json::from_str(&text).map_err(|e| StageError::new(format!("{}: {e}", meta_path.display())))?;
    let path = dir.join("data.safetensors");
    let names: Vec<String> = SPLITS.iter().map(|s| format!("{s}.concepts")).collect();
    let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
    let tensors = checkpoint::load_selected(&path, &wanted)?;
    let mut out = BTreeMap::new();
    for (split, name) in SPLITS.iter().zip(&names) {
        if let Some(t) = tensors.get(name) {
            let labels = arrays::matrix(t, &format!("{}: `{name}`", path.display()))?;
            if labels.ncols() != meta.concept_names.len() {
                return Err(StageError::new(format!(
                    "{}: `{name}` has {} columns but meta.json names {} concepts",
                    path.display(),
                    labels.ncols(),
                    meta.concept_names.len()
                )));
            }
            out.insert((*split).to_owned(), labels);
        }
    }
    if !out.contains_key("train") {
        return Err(StageError::new(format!(
            "{} has no concept labels (`train.concepts`): the dataset is not annotated with concepts",
            path.display()
        )));
    }
    Ok(Annotations { names: meta.concept_names, splits: out })
}

/// In a smoke run the embeddings cover the first rows of each split only; their labels are cut
/// to match. A real run keeps every row, so `matching` still catches a mismatched dataset.
fn smoke_rows(ctx: &Context, mut annotations: Annotations, embedded: &BTreeMap<String, EmbeddedSplit>) -> Annotations {
    if ctx.smoke().is_some() {
        for (split, labels) in &mut annotations.splits {
            if let Some(e) = embedded.get(split) {
                let rows = e.embeddings.nrows().min(labels.nrows());
                *labels = labels.slice(ndarray::s![..rows, ..]).to_owned();
            }
        }
    }
    annotations
}

/// Concept labels of `split` checked against the embeddings of the same split.
pub fn matching<'a>(
    labels: &'a BTreeMap<String, Array2<f64>>,
    embedded: &'a BTreeMap<String, EmbeddedSplit>,
    split: &str,
) -> Result<Option<(&'a Array2<f64>, &'a Array2<f64>)>> {
    let (Some(l), Some(e)) = (labels.get(split), embedded.get(split)) else { return Ok(None) };
    if l.nrows() != e.embeddings.nrows() {
        return Err(StageError::new(format!(
            "the `{split}` split has {} embeddings but {} rows of concept labels: `from` must embed the dataset whose concepts label it",
            e.embeddings.nrows(),
            l.nrows()
        )));
    }
    Ok(Some((l, &e.embeddings)))
}

pub fn stage(ctx: &Context) -> Result<serde_json::Value> {
    let from = stage_field(ctx, "from")?;
    let embedded = read_embeddings(&from.dir)?;
    let (bank, mut metrics) = match ctx.request.method.as_str() {
        "annotated" => annotated(ctx, &embedded)?,
        "cav" => cav(ctx, &embedded)?,
        "random" => random(ctx, &embedded)?,
        "labels" => return true_labels(ctx, &embedded),
        other => return Err(StageError::new(format!("`concepts {other}` is not implemented in this version of the worker"))),
    };
    bank.save(&ctx.request.output, &embedded)?;
    if let Some(m) = metrics.as_object_mut() {
        m.insert("method".to_owned(), json!(bank.method));
        m.insert("concepts".to_owned(), json!(bank.names.len()));
        m.insert("dimensions".to_owned(), json!(bank.directions.ncols()));
    }
    Ok(metrics)
}

/// The dataset's own concept labels as the scores: the ceiling any bank can reach. There is no
/// linear map from embeddings, so the bank stores no `directions` (TCAV refuses it); the
/// embeddings only fix which rows each split has.
fn true_labels(ctx: &Context, embedded: &BTreeMap<String, EmbeddedSplit>) -> Result<serde_json::Value> {
    let dataset = labels_field(ctx, "labels")?;
    let Annotations { names, splits: labels } = smoke_rows(ctx, concept_labels(&dataset.dir)?, embedded);
    let mut tensors = BTreeMap::new();
    for split in SPLITS {
        let Some((truth, _)) = matching(&labels, embedded, split)? else { continue };
        tensors.insert(format!("{split}.scores"), arrays::matrix_tensor(truth)?);
        tensors.insert(format!("{split}.labels"), arrays::labels_tensor(&embedded[split].labels)?);
    }
    if !tensors.contains_key("train.scores") {
        return Err(StageError::new("the embeddings and the concept labels share no train split"));
    }
    let metadata = BTreeMap::from([("format".to_owned(), "lthlang-concepts-1".to_owned())]);
    checkpoint::save(&ctx.request.output.join(BANK_FILE), &tensors, &metadata)?;
    let path = ctx.request.output.join(NAMES_FILE);
    let text = serde_json::to_string_pretty(&Names { method: "labels".to_owned(), names: names.clone(), link: Link::Identity })
        .map_err(|e| StageError::new(e.to_string()))?;
    std::fs::write(&path, text).map_err(|e| io_error(&path, &e))?;
    Ok(json!({ "method": "labels", "concepts": names.len() }))
}

fn positive_int(ctx: &Context, field: &str) -> Result<usize> {
    let n = ctx.int(field)?;
    usize::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| StageError::new(format!("`{field}` must be a positive integer, got {n}")))
}

/// Sigmoid probes fitted on the train split; AUROC per concept on validation (test when the
/// dataset has no validation split). A label ≥ 0.5 counts as present for the AUROC.
fn annotated(ctx: &Context, embedded: &BTreeMap<String, EmbeddedSplit>) -> Result<(Bank, serde_json::Value)> {
    let dataset = labels_field(ctx, "labels")?;
    let Annotations { names, splits: labels } = smoke_rows(ctx, concept_labels(&dataset.dir)?, embedded);
    let Some((train_labels, train_x)) = matching(&labels, embedded, "train")? else {
        return Err(StageError::new("the embeddings have no train split"));
    };
    let (probes, fit_report) = match ctx.word("solver")? {
        "exact" => {
            let exact = ExactProbes { l2: ctx.float("l2")?, tolerance: PROBE_TOLERANCE, max_passes: PROBE_PASSES };
            ctx.progress(format!("fitting {} concept probes to their optimum on {} embeddings", names.len(), train_x.nrows()));
            let fit = exact.fit(train_x.view(), train_labels.view())?;
            if !fit.converged {
                ctx.warn(format!(
                    "the concept probes stopped at their budget of {PROBE_PASSES} passes with KKT violation {:.1e} (tolerance {PROBE_TOLERANCE:.0e}): raise `l2`",
                    fit.kkt_violation
                ));
            }
            let report = json!({ "solver": "exact", "converged": fit.converged, "kkt_violation": fit.kkt_violation, "passes": fit.passes });
            (fit.probes, report)
        }
        _ => {
            let training = ProbeTraining {
                epochs: positive_int(ctx, "epochs")?,
                lr: ctx.float("lr")?,
                batch: positive_int(ctx, "batch")?,
                seed: ctx.request.seed,
            };
            ctx.progress(format!("fitting {} concept probes by SGD on {} embeddings", names.len(), train_x.nrows()));
            (training.fit(train_x.view(), train_labels.view())?, json!({ "solver": "sgd" }))
        }
    };
    let train_loss = probes.loss(train_x.view(), train_labels.view());
    let bank = Bank { method: "annotated".to_owned(), names, directions: probes.directions, offsets: probes.offsets, link: Link::Sigmoid };
    let mut report = serde_json::Map::new();
    let mut mean = (0.0, 0usize);
    let mut evaluated = None;
    for split in ["val", "test"] {
        if let Some(found) = matching(&labels, embedded, split)? {
            evaluated = Some((split, found));
            break;
        }
    }
    let split = match evaluated {
        Some((split, (truth, x))) => {
            let scores = bank.scores(x.view());
            for (c, name) in bank.names.iter().enumerate() {
                let present: Vec<bool> = truth.column(c).iter().map(|v| *v >= 0.5).collect();
                let area = auroc(&scores.column(c).to_vec(), &present);
                if let Some(a) = area {
                    mean = (mean.0 + a, mean.1 + 1);
                }
                report.insert(name.clone(), json!(area));
            }
            Some(split)
        }
        None => None,
    };
    let mean_auroc = (mean.1 > 0).then(|| mean.0 / mean.1 as f64);
    Ok((bank, json!({ "auroc": report, "auroc_split": split, "mean_auroc": mean_auroc, "train_loss": train_loss, "probes": fit_report })))
}

/// A linear SVM per concept on n present and n absent train embeddings of the probe set (drawn
/// with the node's seed), scored on another n + n held out from the same split. A concept with
/// fewer than 2n of either kind uses half of what there is for training, half for holding out.
///
/// A concept with fewer than 2 present or 2 absent train examples (on `shapes`, a colour no class
/// uses) has no CAV: its direction is the zero vector and its offset 0, so its score is 0 on every
/// image and a PCBM over the bank, which standardises a constant column to zeros, gives it no
/// weight. Its report entry says why it was skipped; one warning names every skipped concept. The
/// node fails only when no concept has enough examples.
fn cav(ctx: &Context, embedded: &BTreeMap<String, EmbeddedSplit>) -> Result<(Bank, serde_json::Value)> {
    let dataset = labels_field(ctx, "probes")?;
    let Annotations { names, splits: labels } = smoke_rows(ctx, concept_labels(&dataset.dir)?, embedded);
    let Some((train_labels, train_x)) = matching(&labels, embedded, "train")? else {
        return Err(StageError::new("the embeddings have no train split"));
    };
    let n = positive_int(ctx, "n")?;
    let svm = LinearSvm { c: ctx.float("c")?, ..LinearSvm::default() };
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.request.seed);
    let dims = train_x.ncols();
    let mut directions = Array2::zeros((names.len(), dims));
    let mut offsets = Array1::zeros(names.len());
    let mut report = serde_json::Map::new();
    let mut accuracies = Vec::new();
    let mut skipped = Vec::new();
    for (c, name) in names.iter().enumerate() {
        let (mut present, mut absent): (Vec<usize>, Vec<usize>) = (0..train_x.nrows()).partition(|&i| train_labels[[i, c]] >= 0.5);
        present.shuffle(&mut rng);
        absent.shuffle(&mut rng);
        let m = n.min(present.len() / 2).min(absent.len() / 2);
        if m == 0 {
            // The row of `directions` and the offset stay 0.
            let why = format!(
                "{} present and {} absent train examples in the probe set; a CAV needs at least 2 of each",
                present.len(),
                absent.len()
            );
            report.insert(
                name.clone(),
                json!({ "skipped": why, "held_out_accuracy": null, "examples_per_side": 0, "present": present.len(), "absent": absent.len() }),
            );
            skipped.push(format!("`{name}` ({} present, {} absent)", present.len(), absent.len()));
            continue;
        }
        let fit_rows: Vec<usize> = present[..m].iter().chain(&absent[..m]).copied().collect();
        let held_rows: Vec<usize> = present[m..2 * m].iter().chain(&absent[m..2 * m]).copied().collect();
        let is_present: Vec<bool> = (0..2 * m).map(|i| i < m).collect();
        let fit = svm.fit(train_x.select(Axis(0), &fit_rows).view(), &is_present)?;
        let plane = fit.hyperplane.unit().ok_or_else(|| {
            StageError::new(format!(
                "the SVM of concept `{name}` found no direction (w = 0): its present and absent embeddings do not differ"
            ))
        })?;
        let held = train_x.select(Axis(0), &held_rows);
        let correct = held.rows().into_iter().zip(&is_present).filter(|(row, p)| (plane.decision(*row) > 0.0) == **p).count();
        let accuracy = correct as f64 / held_rows.len() as f64;
        accuracies.push(accuracy);
        report.insert(name.clone(), json!({ "held_out_accuracy": accuracy, "examples_per_side": m, "converged": fit.converged }));
        directions.row_mut(c).assign(&plane.normal);
        offsets[c] = plane.offset;
    }
    if accuracies.is_empty() {
        return Err(StageError::new(format!(
            "no concept has at least 2 present and 2 absent train examples in the probe set, so none gets a CAV: {}",
            skipped.join(", ")
        )));
    }
    if !skipped.is_empty() {
        ctx.warn(format!(
            "{} of {} concepts get no CAV (a zero direction, score 0 on every image): a CAV needs at least 2 present and 2 absent train examples in the probe set, and {} {}",
            skipped.len(),
            names.len(),
            if skipped.len() == 1 { "this one has" } else { "these have" },
            skipped.join(", ")
        ));
    }
    // Over the concepts that got a CAV: a skipped one has no held-out accuracy.
    let mean = accuracies.iter().sum::<f64>() / accuracies.len() as f64;
    let fitted = accuracies.len();
    Ok((
        Bank { method: "cav".to_owned(), names, directions, offsets, link: Link::Identity },
        json!({ "cav": report, "mean_held_out_accuracy": mean, "concepts_with_cav": fitted, "skipped": skipped.len() }),
    ))
}

/// `count` directions drawn uniformly on the unit sphere (normalised Gaussian vectors), offsets 0.
fn random(ctx: &Context, embedded: &BTreeMap<String, EmbeddedSplit>) -> Result<(Bank, serde_json::Value)> {
    let count = positive_int(ctx, "count")?;
    let dims = embedded.get("train").map_or(0, |s| s.embeddings.ncols());
    if dims == 0 {
        return Err(StageError::new("the embeddings have no dimensions"));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.request.seed);
    let mut directions = Array2::from_shape_fn((count, dims), |_| gaussian(&mut rng));
    for mut row in directions.rows_mut() {
        let norm = row.dot(&row).sqrt();
        row /= norm;
    }
    let names = (0..count).map(|i| format!("random_{i}")).collect();
    Ok((Bank { method: "random".to_owned(), names, directions, offsets: Array1::zeros(count), link: Link::Identity }, json!({})))
}

/// A standard normal draw (rand_distr's ziggurat).
fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample(rand_distr::StandardNormal)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{fields, Workspace, World};
    use super::*;
    use lthlang::kinds::Category;

    fn annotated_fields(solver: &str, epochs: i64) -> BTreeMap<String, Value> {
        fields(&[
            ("from", Value::Stage("embed".into())),
            ("labels", Value::ConceptLabels { dataset: "data".into() }),
            ("solver", Value::Word(solver.into())),
            ("l2", Value::Float(1e-4)),
            ("epochs", Value::Int(epochs)),
            ("lr", Value::Float(0.5)),
            ("batch", Value::Int(32)),
            ("seed", Value::Int(0)),
        ])
    }

    #[test]
    fn annotated_probes_rank_validation_images_of_separable_concepts() {
        for solver in ["exact", "sgd"] {
            let world = World::new(1);
            let mut ws = Workspace::new();
            world.write(&mut ws);
            let metrics = ws.run("bank", Category::Concepts, "annotated", annotated_fields(solver, 40), 7).unwrap();
            assert_eq!(metrics["auroc_split"], "val");
            assert_eq!(metrics["probes"]["solver"], solver);
            if solver == "exact" {
                assert_eq!(metrics["probes"]["converged"], true, "{metrics}");
            }
            for c in ["c0", "c1", "c2", "c3"] {
                let area = metrics["auroc"][c].as_f64().unwrap();
                assert!(area > 0.95, "{solver}, {c}: AUROC {area}");
            }
            let stored = StoredBank::read(&ws.dir("bank")).unwrap();
            assert_eq!(stored.method, "annotated");
            assert_eq!(stored.names, ["c0", "c1", "c2", "c3"]);
            // The stored scores are the probes' sigmoid outputs on the stored linear map.
            let tensors = checkpoint::load(&ws.dir("bank").join(BANK_FILE)).unwrap();
            let directions = arrays::matrix(&tensors["directions"], "directions").unwrap();
            let offsets: Vec<f32> = Vec::try_from(&tensors["offsets"]).unwrap();
            assert_eq!(directions.dim(), (4, 8));
            let (test_scores, test_labels) = &stored.splits["test"];
            let test = &world.splits[2];
            assert_eq!(test_labels, &test.labels);
            let logit = test.embeddings.row(5).dot(&directions.row(2)) + f64::from(offsets[2]);
            let expected = 1.0 / (1.0 + (-logit).exp());
            assert!((test_scores[[5, 2]] - expected).abs() < 1e-4, "{solver}: {} vs {expected}", test_scores[[5, 2]]);
        }
    }

    #[test]
    fn annotated_refuses_embeddings_of_another_dataset() {
        let world = World::new(2);
        let mut ws = Workspace::new();
        world.write(&mut ws);
        let short = world.splits[0].embeddings.slice(ndarray::s![..10, ..]).to_owned();
        ws.embed(
            "other",
            "data",
            &[super::super::fixtures::EmbedSplit {
                name: "train",
                embeddings: &short,
                labels: &world.splits[0].labels[..10],
                logits: None,
            }],
        );
        let mut f = annotated_fields("exact", 1);
        f.insert("from".into(), Value::Stage("other".into()));
        let error = ws.run("bank", Category::Concepts, "annotated", f, 0).unwrap_err();
        assert!(error.0.contains("10 embeddings but 400 rows of concept labels"), "{}", error.0);
    }

    fn cav_fields(n: i64) -> BTreeMap<String, Value> {
        fields(&[
            ("from", Value::Stage("embed".into())),
            ("probes", Value::ConceptLabels { dataset: "data".into() }),
            ("c", Value::Float(0.01)),
            ("n", Value::Int(n)),
            ("seed", Value::Int(0)),
        ])
    }

    #[test]
    fn cav_scores_are_signed_distances_and_held_out_examples_are_separated() {
        let world = World::new(3);
        let mut ws = Workspace::new();
        world.write(&mut ws);
        let metrics = ws.run("bank", Category::Concepts, "cav", cav_fields(50), 11).unwrap();
        for c in ["c0", "c1", "c2", "c3"] {
            assert_eq!(metrics["cav"][c]["examples_per_side"], 50);
            let accuracy = metrics["cav"][c]["held_out_accuracy"].as_f64().unwrap();
            // C = 0.01 keeps w near the difference of the class means, so a tenth or more of
            // the held-out examples near the boundary fall on the wrong side.
            assert!(accuracy > 0.8, "{c}: held-out accuracy {accuracy}");
        }
        let tensors = checkpoint::load(&ws.dir("bank").join(BANK_FILE)).unwrap();
        let directions = arrays::matrix(&tensors["directions"], "directions").unwrap();
        for (c, row) in directions.rows().into_iter().enumerate() {
            assert!((row.dot(&row) - 1.0).abs() < 1e-5, "direction {c} is not a unit vector");
            // The SVM's direction points along the hidden one that defines the concept.
            let u = world.hidden.row(c);
            let cosine = row.dot(&u) / u.dot(&u).sqrt();
            assert!(cosine > 0.9, "concept {c}: cosine {cosine}");
        }
    }

    #[test]
    fn cav_uses_what_a_rare_concept_has() {
        let world = World::new(4);
        let mut ws = Workspace::new();
        world.write(&mut ws);
        let metrics = ws.run("bank", Category::Concepts, "cav", cav_fields(1000), 0).unwrap();
        let present = world.splits[0].concepts.column(0).sum() as i64;
        let expected = present.min(400 - present) / 2;
        assert_eq!(metrics["cav"]["c0"]["examples_per_side"], expected);
    }

    /// The message of every warning the node emitted.
    fn warnings(events: &[lthlang::exec::job::Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                lthlang::exec::job::Event::Warning { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn cav_skips_a_concept_with_one_present_example_and_keeps_the_others() {
        let world = World::new(3);
        let mut ws = Workspace::new();
        world.write(&mut ws);
        ws.run("whole", Category::Concepts, "cav", cav_fields(50), 11).unwrap();
        // The same probe set, but concept c3 is present on one train image only.
        let mut rare = World::new(3);
        rare.splits[0].concepts.column_mut(3).fill(0.0);
        rare.splits[0].concepts[[7, 3]] = 1.0;
        let mut ws_rare = Workspace::new();
        rare.write(&mut ws_rare);
        let mut request = ws_rare.request("bank", Category::Concepts, "cav", &[]);
        request.fields = cav_fields(50);
        request.seed = 11;
        let (metrics, events) = super::super::fixtures::run_collecting(&request);
        let metrics = metrics.unwrap_or_else(|e| panic!("{}", e.0));
        let entry = &metrics["cav"]["c3"];
        assert!(entry["held_out_accuracy"].is_null(), "{entry}");
        assert_eq!((entry["present"].as_u64(), entry["absent"].as_u64()), (Some(1), Some(399)), "{entry}");
        assert!(entry["skipped"].as_str().is_some_and(|s| s.contains("at least 2 of each")), "{entry}");
        assert_eq!(metrics["skipped"], 1);
        let warned = warnings(&events);
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(warned[0].contains("`c3` (1 present, 399 absent)") && !warned[0].contains("`c0`"), "{}", warned[0]);
        // Its direction and offset are zero, so its score is 0 on every image of every split.
        let tensors = checkpoint::load(&request.output.join(BANK_FILE)).unwrap();
        let directions = arrays::matrix(&tensors["directions"], "directions").unwrap();
        let offsets: Vec<f32> = Vec::try_from(&tensors["offsets"]).unwrap();
        assert!(directions.row(3).iter().all(|v| *v == 0.0) && offsets[3] == 0.0);
        for split in ["train", "val", "test"] {
            let scores = arrays::matrix(&tensors[&format!("{split}.scores")], "scores").unwrap();
            assert!(scores.column(3).iter().all(|v| *v == 0.0), "{split}");
        }
        // The other concepts are fitted exactly as without the rare one.
        let whole = checkpoint::load(&ws.dir("whole").join(BANK_FILE)).unwrap();
        let whole_directions = arrays::matrix(&whole["directions"], "directions").unwrap();
        let whole_offsets: Vec<f32> = Vec::try_from(&whole["offsets"]).unwrap();
        for c in 0..3 {
            assert_eq!(directions.row(c), whole_directions.row(c), "concept {c}");
            assert_eq!(offsets[c], whole_offsets[c], "concept {c}");
        }
    }

    #[test]
    fn cav_fails_only_when_no_concept_has_two_of_each() {
        let mut world = World::new(3);
        world.splits[0].concepts.fill(1.0);
        world.splits[0].concepts[[0, 2]] = 0.0;
        let mut ws = Workspace::new();
        world.write(&mut ws);
        let error = ws.run("bank", Category::Concepts, "cav", cav_fields(50), 0).unwrap_err();
        assert!(error.0.contains("no concept has at least 2 present and 2 absent"), "{}", error.0);
        assert!(error.0.contains("`c2` (399 present, 1 absent)"), "{}", error.0);
    }

    #[test]
    fn random_directions_are_unit_vectors_fixed_by_the_seed() {
        let world = World::new(5);
        let mut ws = Workspace::new();
        world.write(&mut ws);
        let f = || fields(&[("from", Value::Stage("embed".into())), ("count", Value::Int(5)), ("seed", Value::Int(0))]);
        ws.run("first", Category::Concepts, "random", f(), 42).unwrap();
        ws.run("again", Category::Concepts, "random", f(), 42).unwrap();
        ws.run("other", Category::Concepts, "random", f(), 43).unwrap();
        let directions =
            |stage: &str| arrays::matrix(&checkpoint::load(&ws.dir(stage).join(BANK_FILE)).unwrap()["directions"], "directions").unwrap();
        let first = directions("first");
        assert_eq!(first.dim(), (5, 8));
        assert!(first.rows().into_iter().all(|r| (r.dot(&r) - 1.0).abs() < 1e-5));
        assert_eq!(first, directions("again"));
        assert_ne!(first, directions("other"));
        let stored = StoredBank::read(&ws.dir("first")).unwrap();
        assert_eq!(stored.names, ["random_0", "random_1", "random_2", "random_3", "random_4"]);
        let offsets: Vec<f32> = Vec::try_from(&checkpoint::load(&ws.dir("first").join(BANK_FILE)).unwrap()["offsets"]).unwrap();
        assert_eq!(offsets, vec![0.0; 5]);
    }

    #[test]
    fn gaussian_draws_have_unit_variance() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let draws: Vec<f64> = (0..20_000).map(|_| gaussian(&mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let variance = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        // Standard errors: 0.007 for the mean, 0.01 for the variance.
        assert!(mean.abs() < 0.03 && (variance - 1.0).abs() < 0.05, "mean {mean}, variance {variance}");
    }
}
