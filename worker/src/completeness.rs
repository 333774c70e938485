//! `explain completeness` (science.md, "TCAV and completeness"; Yeh et al. 2020): how much of
//! the model's accuracy survives when its prediction must pass through the concept scores.
//!
//! η = (acc_g − 1/K) / (acc_model − 1/K), decided precisely as:
//! - the model's prediction is the argmax of the embed node's `{split}.logits`, K their width;
//! - g is a linear softmax map from the bank's concept scores (standardised with the train mean
//!   and deviation), fitted on the train split to reproduce the model's predictions: the
//!   science's "g reconstructs the model's prediction from the concept scores alone". It is
//!   unpenalised, Yeh's supremum over g within the linear family;
//! - acc_g and acc_model are both accuracies against the true labels on the test split, so η
//!   is 1 when the concepts carry everything the model uses and 0 when g is at chance. Both
//!   sides use the same labels and split, so the ratio compares like with like;
//! - η is reported unclipped (g may beat the model, or fall below chance), and is null when the
//!   model is no better than chance (the ratio is then meaningless);
//! - `fidelity`, g's agreement with the model's test predictions, is reported beside it.
//!
//! The solver and its field mapping are PCBM's (see `pcbm.rs`), with λ = 0 and the iteration
//! cap counted against PCBM's default batch of 64, as completeness has no `batch` field. When
//! the predictions are separable in concept space the unpenalised weights grow without bound
//! and the cap is what stops the fit; `converged` then reads false while accuracy has settled.

use super::arrays;
use super::concepts::{concept_scores, read_embeddings, ConceptScores};
use super::pcbm::{iteration_cap, TOLERANCE};
use super::{Context, Result, StageError};
use lthlang::solvers::elastic_net::{accuracy, argmax_rows, one_hot, ElasticNet, Loss, Penalty};
use lthlang::solvers::standardise::Standardisation;
use serde_json::json;

/// The minibatch size the iteration cap assumes (PCBM's default).
const IMPLIED_BATCH: i64 = 64;

pub fn stage(ctx: &Context) -> Result<serde_json::Value> {
    let ConceptScores { bank_node, bank, embed, features } = concept_scores(ctx)?;
    let embed = embed
        .ok_or_else(|| StageError::new(format!("the concept bank `{}` does not name the embeddings it was built from", bank_node.stage)))?;
    let embedded = match features {
        Some(read) => read,
        None => read_embeddings(&embed.dir)?,
    };
    let predictions = |split: &str| -> Result<(Vec<usize>, usize)> {
        let logits = embedded.get(split).and_then(|s| s.logits.as_ref()).ok_or_else(|| {
            StageError::new(format!(
                "{}: no `{split}.logits`; completeness needs the model's predictions",
                embed.dir.join(super::concepts::EMBEDDINGS_FILE).display()
            ))
        })?;
        Ok((argmax_rows(logits), logits.ncols()))
    };
    let (train_predicted, classes) = predictions("train")?;
    let (test_predicted, _) = predictions("test")?;
    let (train_scores, _) = bank.split("train", &bank_node.dir)?;
    let (test_scores, test_labels) = bank.split("test", &bank_node.dir)?;
    if train_scores.nrows() != train_predicted.len() || test_scores.nrows() != test_predicted.len() {
        return Err(StageError::new(format!(
            "the concept bank `{}` and the embeddings `{}` disagree on the number of examples",
            bank_node.stage, embed.stage
        )));
    }
    let test_truth = arrays::classes(test_labels, classes, &format!("the test labels of `{}`", bank_node.stage))?;

    let standard = Standardisation::of(train_scores.view());
    let z = standard.apply(train_scores.view());
    let targets = one_hot(&train_predicted, classes)?;
    let solver = ElasticNet {
        loss: Loss::SoftmaxCrossEntropy,
        penalty: Penalty { lambda: 0.0, l1_ratio: 0.0 },
        max_passes: iteration_cap(ctx.int("epochs")?, z.nrows(), IMPLIED_BATCH),
        tolerance: TOLERANCE,
    };
    ctx.progress(format!("fitting g: {} concepts to the model's {classes}-class predictions", bank.names.len()));
    let fit = solver.fit(z.view(), targets.view())?;
    let g_predicted = fit.model.predict(standard.apply(test_scores.view()).view());
    let concept_accuracy = accuracy(&g_predicted, &test_truth);
    let model_accuracy = accuracy(&test_predicted, &test_truth);
    Ok(json!({
        "completeness": completeness(concept_accuracy, model_accuracy, classes),
        "concept_accuracy": concept_accuracy,
        "model_accuracy": model_accuracy,
        "fidelity": accuracy(&g_predicted, &test_predicted),
        "chance": 1.0 / classes as f64,
        "split": "test",
        "iterations": fit.iterations,
        "converged": fit.converged,
        "bank": bank.method,
    }))
}

/// (acc_g − 1/K) / (acc_model − 1/K); None when the model does not beat chance.
pub fn completeness(concept_accuracy: f64, model_accuracy: f64, classes: usize) -> Option<f64> {
    let chance = 1.0 / classes.max(1) as f64;
    let model_gain = model_accuracy - chance;
    (model_gain > 1e-12).then(|| (concept_accuracy - chance) / model_gain)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{fields, Workspace, World};
    use super::*;
    use lthlang::check::Value;
    use lthlang::kinds::Category;

    #[test]
    fn completeness_is_the_share_of_above_chance_accuracy_kept() {
        // (0.6 − 0.25) / (0.85 − 0.25) = 0.35 / 0.6.
        assert!((completeness(0.6, 0.85, 4).unwrap() - 0.35 / 0.6).abs() < 1e-12);
        assert_eq!(completeness(0.85, 0.85, 4), Some(1.0));
        assert_eq!(completeness(0.25, 0.85, 4), Some(0.0));
        assert_eq!(completeness(0.5, 0.25, 4), None, "a model at chance has nothing to explain");
    }

    fn run_completeness(ws: &mut Workspace, bank: &str, stage: &str) -> serde_json::Value {
        run_with_features(ws, bank, Value::None, stage)
    }

    fn run_with_features(ws: &mut Workspace, bank: &str, features: Value, stage: &str) -> serde_json::Value {
        let f = fields(&[
            ("concepts", Value::Stage(bank.into())),
            ("features", features),
            ("epochs", Value::Int(100)),
            ("lr", Value::Float(0.01)),
            ("seed", Value::Int(0)),
        ]);
        ws.run(stage, Category::Explain, "completeness", f, 0).unwrap()
    }

    #[test]
    fn a_bank_applied_to_other_features_is_scored_against_their_model_predictions() {
        let world = World::new(8);
        let mut ws = Workspace::new();
        world.write(&mut ws);
        // Other images of the same world, with the model's logits on them: the world's test split
        // serves as their train split and its validation split as their test split.
        let (test, val) = (&world.splits[2], &world.splits[1]);
        ws.embed(
            "other",
            "data",
            &[
                super::super::fixtures::EmbedSplit {
                    name: "train",
                    embeddings: &test.embeddings,
                    labels: &test.labels,
                    logits: Some(&test.logits),
                },
                super::super::fixtures::EmbedSplit {
                    name: "test",
                    embeddings: &val.embeddings,
                    labels: &val.labels,
                    logits: Some(&val.logits),
                },
            ],
        );
        // Random directions depend on the node seed and the dimension only: the same directions,
        // once built on `embed` and applied to `other`, once built on `other`.
        let random = |from: &str| fields(&[("from", Value::Stage(from.into())), ("count", Value::Int(6)), ("seed", Value::Int(0))]);
        ws.run("probe_bank", Category::Concepts, "random", random("embed"), 5).unwrap();
        ws.run("other_bank", Category::Concepts, "random", random("other"), 5).unwrap();
        let applied = run_with_features(&mut ws, "probe_bank", Value::Stage("other".into()), "applied");
        let built = run_completeness(&mut ws, "other_bank", "built");
        for metric in ["completeness", "concept_accuracy", "model_accuracy", "fidelity"] {
            let (a, b) = (applied[metric].as_f64().unwrap(), built[metric].as_f64().unwrap());
            assert!((a - b).abs() < 1e-9, "{metric}: {a} vs {b}");
        }
        // The model's accuracy is read from `other`'s logits, not from `embed`'s.
        let on_embed = run_completeness(&mut ws, "probe_bank", "on_embed");
        assert_ne!(applied["model_accuracy"], on_embed["model_accuracy"]);
    }

    #[test]
    fn concepts_that_carry_the_model_are_complete_and_random_ones_are_not() {
        let world = World::new(8);
        let mut ws = Workspace::new();
        world.write(&mut ws);
        // The defining concepts: CAVs with the hidden directions recovered from the labels.
        let cav = fields(&[
            ("from", Value::Stage("embed".into())),
            ("probes", Value::ConceptLabels { dataset: "data".into() }),
            ("c", Value::Float(1.0)),
            ("n", Value::Int(100)),
            ("seed", Value::Int(0)),
        ]);
        ws.run("defining", Category::Concepts, "cav", cav, 1).unwrap();
        let random = fields(&[("from", Value::Stage("embed".into())), ("count", Value::Int(2)), ("seed", Value::Int(0))]);
        ws.run("random", Category::Concepts, "random", random, 1).unwrap();

        let real = run_completeness(&mut ws, "defining", "real");
        let model_accuracy = real["model_accuracy"].as_f64().unwrap();
        assert!((0.75..0.95).contains(&model_accuracy), "the shortcut should cost the model some accuracy: {model_accuracy}");
        let eta = real["completeness"].as_f64().unwrap();
        assert!(eta > 0.85, "{real}");
        // g imitates the model, shortcut included (c3 is in the bank), so it agrees with the
        // model more than with the truth.
        assert!(real["fidelity"].as_f64().unwrap() > real["concept_accuracy"].as_f64().unwrap(), "{real}");

        let baseline = run_completeness(&mut ws, "random", "baseline");
        let eta_random = baseline["completeness"].as_f64().unwrap();
        assert!(eta_random < eta - 0.2, "random {eta_random} against defining {eta}");
    }

    #[test]
    fn completeness_needs_the_models_logits() {
        let world = World::new(9);
        let mut ws = Workspace::new();
        let dataset: Vec<_> = world.splits.iter().map(|s| (s.name, s.labels.clone(), s.concepts.clone())).collect();
        ws.dataset("data", &["a", "b", "c"], &["c0", "c1", "c2", "c3"], &dataset);
        let embed: Vec<_> = world
            .splits
            .iter()
            .map(|s| super::super::fixtures::EmbedSplit { name: s.name, embeddings: &s.embeddings, labels: &s.labels, logits: None })
            .collect();
        ws.embed("embed", "data", &embed);
        let random = fields(&[("from", Value::Stage("embed".into())), ("count", Value::Int(2)), ("seed", Value::Int(0))]);
        ws.run("random", Category::Concepts, "random", random, 1).unwrap();
        let f = fields(&[
            ("concepts", Value::Stage("random".into())),
            ("features", Value::None),
            ("epochs", Value::Int(1)),
            ("lr", Value::Float(0.01)),
            ("seed", Value::Int(0)),
        ]);
        let error = ws.run("eta", Category::Explain, "completeness", f, 0).unwrap_err();
        assert!(error.0.contains("train.logits"), "{}", error.0);
    }
}
