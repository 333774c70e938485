//! `explain pcbm` (science.md, "PCBM"): a sparse linear map from a bank's concept scores to the
//! classes, fitted on the train split by [`ElasticNet`] and scored on the test split.
//!
//! `multiclass = ovr` fits one binary elastic-net logistic model per class, as the published PCBM
//! does (scikit-learn's `SGDClassifier`, one-vs-rest); `multinomial` fits one softmax model.
//!
//! The fit is on scores standardised with the train mean and deviation (so λ treats every
//! concept alike). Artifact `pcbm.safetensors` (format `lthlang-pcbm-2`), all f32:
//! - `importance` [K, C]: each concept's importance to each class, the one definition every
//!   consumer ranks by (`lthlang::metrics::concept_importance`): the standardised weight,
//!   centred across classes for a multinomial model;
//! - `standardised_weight` [K, C] and `standardised_bias` [K]: the fitted model, on standardised
//!   scores;
//! - `mean` [C] and `scale` [C]: the standardisation, so that raw-scale weights can be derived;
//! - `weight` [K, C] and `bias` [K]: the same map on the bank's raw scores (W/σ, b − Wμ/σ), which
//!   predicts but is never ranked: a concept whose score barely varies gets a huge raw weight.
//!
//! There is no `seed` field: nothing is drawn, so no seed could change the result.
//!
//! The kinds' fields were written for minibatch SGD; the solver is full-batch proximal Newton
//! (deterministic, certified by its KKT conditions). They map as:
//! - `epochs` × ⌈n_train / `batch`⌉ is the work budget in passes over the data (each gradient
//!   and each coordinate sweep is one): at least the minibatch method's `epochs` passes;
//! - `lr` and `seed` are unused: a Newton step needs no step size, and nothing is drawn.
//!
//! The fit stops once its KKT violation is at most [`TOLERANCE`]; one stopped by its budget
//! first warns, and its `converged: false` reaches the report.

use super::arrays;
use super::concepts::{concept_scores, ConceptScores};
use super::data::Meta;
use super::train::TestScores;
use super::{checkpoint, Context, Result, StageError};
use lthlang::check::Value;
use lthlang::metrics::concept_importance::{self, Multiclass};
use lthlang::solvers::elastic_net::{accuracy, argmax_rows, kkt_violation, lambda_max, one_hot, ElasticNet, LinearModel, Loss, Penalty};
use lthlang::solvers::standardise::Standardisation;
use ndarray::{Array1, Array2};
use serde_json::json;
use std::collections::BTreeMap;

pub const PCBM_FILE: &str = "pcbm.safetensors";
/// KKT violation at which the fit counts as solved.
pub const TOLERANCE: f64 = 1e-6;

/// Work budget of the full-batch solver, in passes over the data, for the minibatch settings
/// `epochs` and `batch`: as many passes as the minibatch method makes updates.
pub fn iteration_cap(epochs: i64, examples: usize, batch: i64) -> usize {
    let epochs = usize::try_from(epochs).unwrap_or(1).max(1);
    let batch = usize::try_from(batch).unwrap_or(1).max(1);
    epochs * examples.div_ceil(batch).max(1)
}

/// The loss of each way of fitting several classes.
pub fn loss_of(multiclass: Multiclass) -> Loss {
    match multiclass {
        Multiclass::OneVsRest => Loss::Logistic,
        Multiclass::Multinomial => Loss::SoftmaxCrossEntropy,
    }
}

/// The meta.json of the dataset whose images `embed` holds, when the node names it: it names
/// the classes, and counts those the labels happen to miss.
fn dataset_meta(ctx: &Context, embed: &lthlang::exec::job::Upstream) -> Option<Meta> {
    let Some(Value::Stage(dataset)) = embed.fields.get("data") else { return None };
    let text = std::fs::read_to_string(ctx.upstream(dataset).ok()?.dir.join("meta.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The concepts a row of importances lists (see `concept_importance`), with names.
fn top(row: &[f64], names: &[String], k: usize) -> serde_json::Value {
    let entry = |c: usize| json!({ "concept": names[c], "importance": row[c] });
    let positive: Vec<_> = concept_importance::listed_positive(row, k).into_iter().map(entry).collect();
    let negative: Vec<_> = concept_importance::listed_negative(row, k).into_iter().map(entry).collect();
    json!({ "positive": positive, "negative": negative })
}

pub fn stage(ctx: &Context) -> Result<serde_json::Value> {
    let ConceptScores { bank_node, bank, embed, .. } = concept_scores(ctx)?;
    let (train_scores, train_labels) = bank.split("train", &bank_node.dir)?;
    let (test_scores, test_labels) = bank.split("test", &bank_node.dir)?;
    let largest = bank.splits.values().flat_map(|(_, l)| l.iter()).copied().max().unwrap_or(0);
    let meta = embed.and_then(|e| dataset_meta(ctx, e));
    let classes = usize::try_from(largest + 1).unwrap_or(1).max(meta.as_ref().map_or(0, |m| m.classes));
    let class_names = match meta {
        Some(m) if m.class_names.len() == classes => m.class_names,
        _ => (0..classes).map(|k| format!("class_{k}")).collect(),
    };
    let what = |split: &str| format!("{}: `{split}.labels`", bank_node.dir.join(super::concepts::BANK_FILE).display());
    let train_y = arrays::classes(train_labels, classes, &what("train"))?;
    // Every test label must name a class the model has, as the train labels must.
    arrays::classes(test_labels, classes, &what("test"))?;
    let word = ctx.word("multiclass")?;
    let multiclass =
        Multiclass::from_word(word).ok_or_else(|| StageError::new(format!("`multiclass` must be ovr or multinomial, not `{word}`")))?;
    let loss = loss_of(multiclass);

    let standard = Standardisation::of(train_scores.view());
    let z = standard.apply(train_scores.view());
    let targets = one_hot(&train_y, classes)?;
    let penalty = Penalty { lambda: ctx.float("lambda")?, l1_ratio: ctx.float("l1_ratio")? };
    let solver =
        ElasticNet { loss, penalty, max_passes: iteration_cap(ctx.int("epochs")?, z.nrows(), ctx.int("batch")?), tolerance: TOLERANCE };
    ctx.progress(format!(
        "fitting a {classes}-class {} PCBM on {} concepts and {} examples",
        multiclass.word(),
        bank.names.len(),
        z.nrows()
    ));
    let fit = solver.fit(z.view(), targets.view())?;
    let kkt = kkt_violation(loss, &penalty, z.view(), targets.view(), &fit.model)?;
    if !fit.converged {
        ctx.warn(format!(
            "the PCBM stopped after {} passes over the data with a KKT violation of {kkt:.1e}, short of the tolerance {TOLERANCE:.0e}: it is not at its optimum, and its weights and top concepts may change with more; raise `epochs`",
            fit.passes
        ));
    }
    let stored = standard.fold(&fit.model);
    let concepts = bank.names.len();
    let importance = concept_importance::importance(fit.model.weight.as_slice().unwrap_or(&[]), concepts, multiclass)
        .map_err(|e| StageError::new(e.0))?;
    let importance = Array2::from_shape_vec((classes, concepts), importance).map_err(|e| StageError::new(e.to_string()))?;

    let split_accuracy = |scores: &ndarray::Array2<f64>, labels: &[usize]| accuracy(&stored.predict(scores.view()), labels);
    let val_accuracy = match bank.splits.get("val") {
        Some((scores, labels)) => Some(split_accuracy(scores, &arrays::classes(labels, classes, &what("val"))?)),
        None => None,
    };
    let top_k = usize::try_from(ctx.int("top")?).unwrap_or(1);
    let tops: serde_json::Map<String, serde_json::Value> = class_names
        .iter()
        .enumerate()
        .map(|(k, name)| (name.clone(), top(importance.row(k).as_slice().unwrap_or(&[]), &bank.names, top_k)))
        .collect();
    save(
        &ctx.request.output,
        &Stored { raw: &stored, standardised: &fit.model, standard: &standard, importance: &importance, multiclass },
    )?;
    let test_outputs = stored.outputs(test_scores.view());
    let test_predicted: Vec<i64> = argmax_rows(&test_outputs).into_iter().map(|k| k as i64).collect();
    let margins = (test_outputs.ncols() == 2).then(|| (&test_outputs.column(1) - &test_outputs.column(0)).to_vec());
    let test = TestScores::from_predictions(&test_predicted, test_labels, margins.as_deref());
    Ok(json!({
        "accuracy": test.accuracy,
        "balanced_accuracy": test.balanced_accuracy,
        "auroc": test.auroc,
        "train_accuracy": split_accuracy(train_scores, &train_y),
        "train_examples": train_y.len(),
        "val_accuracy": val_accuracy,
        "multiclass": multiclass.word(),
        "importance_scale": multiclass.scale(),
        "top": tops,
        "zeros": fit.model.zeros(),
        "weights": fit.model.weight.len(),
        "kkt_violation": kkt,
        "converged": fit.converged,
        "iterations": fit.iterations,
        "passes": fit.passes,
        "objective": fit.objective,
        "lambda_max": lambda_max(loss, penalty.l1_ratio, z.view(), targets.view())?,
        "bank": bank.method,
    }))
}

/// What `pcbm.safetensors` holds (see the module note).
struct Stored<'a> {
    raw: &'a LinearModel,
    standardised: &'a LinearModel,
    standard: &'a Standardisation,
    importance: &'a Array2<f64>,
    multiclass: Multiclass,
}

fn save(dir: &std::path::Path, stored: &Stored) -> Result<()> {
    let vector = |v: &Array1<f64>| arrays::vector_tensor(v);
    let tensors = BTreeMap::from([
        ("weight".to_owned(), arrays::matrix_tensor(&stored.raw.weight)?),
        ("bias".to_owned(), vector(&stored.raw.bias)?),
        ("standardised_weight".to_owned(), arrays::matrix_tensor(&stored.standardised.weight)?),
        ("standardised_bias".to_owned(), vector(&stored.standardised.bias)?),
        ("mean".to_owned(), vector(&stored.standard.mean)?),
        ("scale".to_owned(), vector(&stored.standard.scale)?),
        ("importance".to_owned(), arrays::matrix_tensor(stored.importance)?),
    ]);
    let metadata = BTreeMap::from([
        ("format".to_owned(), "lthlang-pcbm-2".to_owned()),
        ("multiclass".to_owned(), stored.multiclass.word().to_owned()),
    ]);
    checkpoint::save(&dir.join(PCBM_FILE), &tensors, &metadata)
}

#[cfg(test)]
mod tests {
    use super::super::concepts::{Bank, EmbeddedSplit, Link, StoredBank};
    use super::super::fixtures::{fields, EmbedSplit, Workspace, World};
    use super::*;
    use lthlang::kinds::Category;
    use ndarray::{Array1, Array2};
    use rand::{Rng, SeedableRng};

    fn pcbm_fields(lambda: f64, epochs: i64) -> BTreeMap<String, Value> {
        fields(&[
            ("concepts", Value::Stage("bank".into())),
            ("features", Value::None),
            ("lambda", Value::Float(lambda)),
            ("l1_ratio", Value::Fraction(0.99)),
            ("epochs", Value::Int(epochs)),
            ("lr", Value::Float(0.01)),
            ("batch", Value::Int(64)),
            ("top", Value::Int(2)),
            ("seed", Value::Int(0)),
            ("multiclass", Value::Word("ovr".into())),
        ])
    }

    /// A bank whose concept k < 3 is high exactly for class k, on scales from 0.01 to 100 (which
    /// the standardisation must undo), and whose concepts 3..6 are noise. Written with the
    /// bank's own writer: identity directions over "embeddings" that are the scores.
    fn decisive_bank(ws: &mut Workspace) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let scales = [100.0, 0.01, 1.0, 5.0, 1.0, 0.1];
        let splits: BTreeMap<String, EmbeddedSplit> = [("train", 300), ("test", 200)]
            .into_iter()
            .map(|(name, n)| {
                let labels: Vec<i64> = (0..n).map(|i| (i % 3) as i64).collect();
                let scores = Array2::from_shape_fn((n, 6), |(i, c)| {
                    scales[c] * (rng.gen_range(-1.0..1.0) + if c == labels[i] as usize { 2.0 } else { 0.0 })
                });
                (name.to_owned(), EmbeddedSplit { embeddings: scores, labels, logits: None })
            })
            .collect();
        let names = ["wings", "beak", "tail", "noise_a", "noise_b", "noise_c"].map(String::from).to_vec();
        let bank = Bank { method: "annotated".into(), names, directions: Array2::eye(6), offsets: Array1::zeros(6), link: Link::Identity };
        let dir = ws.dir("bank");
        std::fs::create_dir_all(&dir).unwrap();
        bank.save(&dir, &splits).unwrap();
        ws.upstream.push(lthlang::exec::job::Upstream {
            id: "bank".into(),
            stage: "bank".into(),
            category: Category::Concepts,
            method: "annotated".into(),
            round: None,
            fields: BTreeMap::new(),
            dir,
        });
    }

    #[test]
    fn iteration_cap_counts_minibatch_updates() {
        assert_eq!(iteration_cap(35, 5994, 64), 35 * 94);
        assert_eq!(iteration_cap(2, 64, 64), 2);
        assert_eq!(iteration_cap(1, 0, 64), 1);
    }

    #[test]
    fn pcbm_on_decisive_scores_is_accurate_sparse_and_names_the_right_concepts() {
        let mut ws = Workspace::new();
        decisive_bank(&mut ws);
        let metrics = ws.run("pcbm", Category::Explain, "pcbm", pcbm_fields(0.02, 400), 0).unwrap();
        assert!(metrics["accuracy"].as_f64().unwrap() > 0.95, "{metrics}");
        assert_eq!(metrics["converged"], true, "{metrics}");
        assert!(metrics["kkt_violation"].as_f64().unwrap() < TOLERANCE);
        for (class, concept) in [("class_0", "wings"), ("class_1", "beak"), ("class_2", "tail")] {
            assert_eq!(metrics["top"][class]["positive"][0]["concept"], concept, "{}", metrics["top"]);
        }
        let zeros = metrics["zeros"].as_u64().unwrap();
        assert!(zeros >= 6, "the noise concepts should be silenced: {zeros} zeros of 18");
        // The stored map works on raw scores: its test accuracy is the reported one, its zeros
        // are the reported ones.
        let stored = checkpoint::load(&ws.dir("pcbm").join(PCBM_FILE)).unwrap();
        let model = LinearModel {
            weight: arrays::matrix(&stored["weight"], "weight").unwrap(),
            bias: Array1::from(Vec::<f64>::try_from(&stored["bias"]).unwrap()),
        };
        assert_eq!(model.weight.dim(), (3, 6));
        assert_eq!(model.zeros() as u64, zeros);
        let bank = StoredBank::read(&ws.dir("bank")).unwrap();
        let (scores, labels) = &bank.splits["test"];
        let truth: Vec<usize> = labels.iter().map(|l| *l as usize).collect();
        assert!((accuracy(&model.predict(scores.view()), &truth) - metrics["accuracy"].as_f64().unwrap()).abs() < 0.01);
    }

    #[test]
    fn a_fit_stopped_short_of_the_tolerance_warns_and_a_finished_one_does_not() {
        let mut ws = Workspace::new();
        decisive_bank(&mut ws);
        let warnings = |request: &lthlang::exec::job::NodeRequest| -> Vec<String> {
            let (result, events) = super::super::fixtures::run_collecting(request);
            result.unwrap();
            events
                .into_iter()
                .filter_map(|e| if let lthlang::exec::job::Event::Warning { message, .. } = e { Some(message) } else { None })
                .collect()
        };
        let mut capped = ws.request("capped", Category::Explain, "pcbm", &[]);
        capped.fields = pcbm_fields(0.02, 1);
        let said = warnings(&capped);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("short of the tolerance") && said[0].contains("raise `epochs`"), "{}", said[0]);
        let mut finished = ws.request("finished", Category::Explain, "pcbm", &[]);
        finished.fields = pcbm_fields(0.02, 400);
        assert_eq!(warnings(&finished), Vec::<String>::new());
    }

    #[test]
    fn a_large_lambda_silences_every_concept() {
        let mut ws = Workspace::new();
        decisive_bank(&mut ws);
        let probe = ws.run("probe", Category::Explain, "pcbm", pcbm_fields(0.0, 1), 0).unwrap();
        let above = 1.01 * probe["lambda_max"].as_f64().unwrap();
        let metrics = ws.run("pcbm", Category::Explain, "pcbm", pcbm_fields(above, 10), 0).unwrap();
        assert_eq!(metrics["zeros"], 18);
        assert_eq!(metrics["top"]["class_0"]["positive"].as_array().unwrap().len(), 0);
        // With balanced classes and no concept, the prediction is a fixed class: one in three.
        assert!((metrics["accuracy"].as_f64().unwrap() - 1.0 / 3.0).abs() < 0.01);
    }

    /// Node `bank`: probes for the world's concepts, learned on `embed`.
    fn annotated_bank(ws: &mut Workspace) {
        let bank_fields = fields(&[
            ("from", Value::Stage("embed".into())),
            ("labels", Value::ConceptLabels { dataset: "data".into() }),
            ("solver", Value::Word("exact".into())),
            ("l2", Value::Float(1e-4)),
            ("epochs", Value::Int(40)),
            ("lr", Value::Float(0.5)),
            ("batch", Value::Int(32)),
            ("seed", Value::Int(0)),
        ]);
        ws.run("bank", Category::Concepts, "annotated", bank_fields, 3).unwrap();
    }

    #[test]
    fn pcbm_over_an_annotated_bank_finds_the_defining_concepts() {
        let world = World::new(6);
        let mut ws = Workspace::new();
        world.write(&mut ws);
        annotated_bank(&mut ws);
        let metrics = ws.run("pcbm", Category::Explain, "pcbm", pcbm_fields(1e-3, 300), 0).unwrap();
        // The world's classes are the argmax of continuous projections, so binary concepts cap
        // the accuracy well below 1; the probes' sigmoid scores must reach that cap, which the
        // same PCBM on the true concept labels measures.
        let truth = fields(&[("from", Value::Stage("embed".into())), ("labels", Value::ConceptLabels { dataset: "data".into() })]);
        ws.run("truth", Category::Concepts, "labels", truth, 0).unwrap();
        let mut on_truth = pcbm_fields(1e-3, 300);
        on_truth.insert("concepts".into(), Value::Stage("truth".into()));
        let ceiling = ws.run("ceiling", Category::Explain, "pcbm", on_truth, 0).unwrap()["accuracy"].as_f64().unwrap();
        let accuracy = metrics["accuracy"].as_f64().unwrap();
        assert!(accuracy > 0.6 && accuracy >= ceiling - 0.03, "accuracy {accuracy}, ceiling {ceiling}: {metrics}");
        // Class names come from the dataset behind the bank.
        for (class, concept) in [("alpha", "c0"), ("beta", "c1"), ("gamma", "c2")] {
            assert_eq!(metrics["top"][class]["positive"][0]["concept"], concept, "{}", metrics["top"]);
        }
    }

    /// A task dataset `task` (classes x, y, z) and its embed node `task_feats`, drawn from the
    /// same world as `data`/`embed` but other images: the world's test split serves as the
    /// task's train split and its validation split as the task's test split.
    fn task_from_the_same_world(ws: &mut Workspace, world: &World) {
        let (test, val) = (&world.splits[2], &world.splits[1]);
        let splits = [("train", test.labels.clone(), test.concepts.clone()), ("test", val.labels.clone(), val.concepts.clone())];
        ws.dataset("task", &["x", "y", "z"], &["c0", "c1", "c2", "c3"], &splits);
        let embed = [
            EmbedSplit { name: "train", embeddings: &test.embeddings, labels: &test.labels, logits: None },
            EmbedSplit { name: "test", embeddings: &val.embeddings, labels: &val.labels, logits: None },
        ];
        ws.embed("task_feats", "task", &embed);
    }

    /// The same JSON, numbers equal to a relative 1e-6.
    fn assert_close(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
        use serde_json::Value as J;
        match (a, b) {
            (J::Number(x), J::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
                assert!((x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1e-3), "{at}: {x} vs {y}");
            }
            (J::Array(x), J::Array(y)) => {
                assert_eq!(x.len(), y.len(), "{at}");
                x.iter().zip(y).enumerate().for_each(|(i, (x, y))| assert_close(x, y, &format!("{at}[{i}]")));
            }
            (J::Object(x), J::Object(y)) => {
                assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}");
                x.iter().for_each(|(k, v)| assert_close(v, &y[k], &format!("{at}.{k}")));
            }
            _ => assert_eq!(a, b, "{at}"),
        }
    }

    fn with_features(concepts: &str, features: &str) -> BTreeMap<String, Value> {
        let mut f = pcbm_fields(1e-3, 300);
        f.insert("concepts".into(), Value::Stage(concepts.into()));
        f.insert("features".into(), if features.is_empty() { Value::None } else { Value::Stage(features.into()) });
        f
    }

    #[test]
    fn a_bank_applied_to_other_features_equals_the_same_bank_built_on_them() {
        let world = World::new(6);
        let mut ws = Workspace::new();
        world.write(&mut ws);
        task_from_the_same_world(&mut ws, &world);
        // Random directions depend on the node seed and the dimension only, so these two banks
        // hold the same directions: one scored the probe embeddings, the other the task's.
        let random = |from: &str| fields(&[("from", Value::Stage(from.into())), ("count", Value::Int(6)), ("seed", Value::Int(0))]);
        ws.run("probe_bank", Category::Concepts, "random", random("embed"), 5).unwrap();
        ws.run("task_bank", Category::Concepts, "random", random("task_feats"), 5).unwrap();
        let applied = ws.run("applied", Category::Explain, "pcbm", with_features("probe_bank", "task_feats"), 0).unwrap();
        let built = ws.run("built", Category::Explain, "pcbm", with_features("task_bank", ""), 0).unwrap();
        // Equal up to the f32 rounding of the stored scores and directions.
        assert_close(&applied, &built, "");
        // The classes are the task's, not the probe set's.
        assert!(applied["top"].get("x").is_some(), "{}", applied["top"]);
        assert_eq!(checkpoint::load(&ws.dir("applied").join(PCBM_FILE)).unwrap()["weight"].size(), [3, 6]);
    }

    #[test]
    fn concepts_learned_on_a_probe_set_explain_the_task() {
        let world = World::new(6);
        let mut ws = Workspace::new();
        world.write(&mut ws);
        task_from_the_same_world(&mut ws, &world);
        annotated_bank(&mut ws);
        let metrics = ws.run("pcbm", Category::Explain, "pcbm", with_features("bank", "task_feats"), 0).unwrap();
        // Binary concepts cap the accuracy of this world near 0.8 (see the test above); chance is 1/3.
        assert!(metrics["accuracy"].as_f64().unwrap() > 0.7, "{metrics}");
        for (class, concept) in [("x", "c0"), ("y", "c1"), ("z", "c2")] {
            assert_eq!(metrics["top"][class]["positive"][0]["concept"], concept, "{}", metrics["top"]);
        }
    }

    #[test]
    fn features_the_bank_cannot_score_are_refused_by_name() {
        let world = World::new(6);
        let mut ws = Workspace::new();
        world.write(&mut ws);
        // Five-dimensional embeddings against eight-dimensional directions.
        let narrow = world.splits[0].embeddings.slice(ndarray::s![.., 0..5]).to_owned();
        ws.embed("narrow", "data", &[EmbedSplit { name: "train", embeddings: &narrow, labels: &world.splits[0].labels, logits: None }]);
        let random = fields(&[("from", Value::Stage("embed".into())), ("count", Value::Int(4)), ("seed", Value::Int(0))]);
        ws.run("bank", Category::Concepts, "random", random, 5).unwrap();
        let error = ws.run("pcbm", Category::Explain, "pcbm", with_features("bank", "narrow"), 0).unwrap_err();
        assert!(error.0.contains("`narrow` have 5 dimensions") && error.0.contains("`bank` 8"), "{}", error.0);

        // A bank of true labels has no directions to apply.
        let labels = fields(&[("from", Value::Stage("embed".into())), ("labels", Value::ConceptLabels { dataset: "data".into() })]);
        ws.run("truth", Category::Concepts, "labels", labels, 0).unwrap();
        let error = ws.run("pcbm_truth", Category::Explain, "pcbm", with_features("truth", "embed"), 0).unwrap_err();
        assert!(error.0.contains("no directions"), "{}", error.0);
    }
}
