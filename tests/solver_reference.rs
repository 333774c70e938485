//! The PCBM's elastic-net logistic solver against independent references, on the quickstart's
//! own concept scores (round 0's probe bank on `shapes`, train split, saved in
//! tests/reference/quickstart-round0-bank.safetensors), standardised as the PCBM does.
//!
//! For one-vs-rest and multinomial fits at the quickstart's λ and at a larger one, our objective
//! must be at most each reference's plus 1e-6 relative, with the same zero pattern. References
//! (tests/reference/sklearn_elastic_net.py): scikit-learn's saga, warm-started from our solution,
//! and SciPy's L-BFGS-B on a split formulation from a cold start. Python with scikit-learn and
//! SciPy comes from scripts/env.sh (scripts/setup-python-refs.sh); without it the test fails.

use lthlang::compare::artifacts;
use lthlang::solvers::elastic_net::{one_hot, ElasticNet, LinearModel, Loss, Penalty};
use lthlang::solvers::standardise::Standardisation;
use ndarray::Array2;
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/reference")
}

/// The quickstart's round-0 train scores, standardised, and their class labels.
fn quickstart_scores() -> (Array2<f64>, Vec<usize>) {
    let path = reference_dir().join("quickstart-round0-bank.safetensors");
    let tensors = artifacts::tensors(&path).unwrap();
    let scores = &tensors["train.scores"];
    let raw = Array2::from_shape_vec((scores.shape[0], scores.shape[1]), scores.values.clone()).unwrap();
    let labels = tensors["train.labels"].values.iter().map(|l| *l as usize).collect();
    (Standardisation::of(raw.view()).apply(raw.view()), labels)
}

fn python() -> String {
    let env = std::env::var("VIRTUAL_ENV").or_else(|_| std::env::var("LTHLANG_TORCH_ENV")).expect(
        "no Python environment: run the tests through scripts/test.sh, or `source scripts/env.sh` first (it installs scikit-learn and SciPy)",
    );
    format!("{env}/bin/python")
}

fn references(x: &Array2<f64>, labels: &[usize], penalty: Penalty, ours: &[(&str, &LinearModel)]) -> Value {
    let rows: Vec<Vec<f64>> = x.rows().into_iter().map(|r| r.to_vec()).collect();
    let fits: serde_json::Map<String, Value> = ours
        .iter()
        .map(|(kind, m)| {
            let weight: Vec<Vec<f64>> = m.weight.rows().into_iter().map(|r| r.to_vec()).collect();
            (kind.to_string(), json!({ "weight": weight, "bias": m.bias.to_vec() }))
        })
        .collect();
    let problem = json!({ "x": rows, "y": labels, "lambda": penalty.lambda, "l1_ratio": penalty.l1_ratio, "ours": fits });
    let python = python();
    let mut child = Command::new(&python)
        .arg(reference_dir().join("sklearn_elastic_net.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {python}: {e}"));
    child.stdin.take().unwrap().write_all(problem.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the reference script failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fit(loss: Loss, penalty: Penalty, x: &Array2<f64>, labels: &[usize]) -> LinearModel {
    let y = one_hot(labels, 8).unwrap();
    let fit = ElasticNet { loss, penalty, max_passes: 100_000, tolerance: 1e-9 }.fit(x.view(), y.view()).unwrap();
    assert!(fit.converged, "{loss:?} at {penalty:?}: KKT {:.1e} after {} passes", fit.kkt_violation, fit.passes);
    fit.model
}

/// A reference weight counts as zero below this: saga's zeros are exact, L-BFGS-B's sit on the
/// bound to within its projected-gradient tolerance.
const REFERENCE_ZERO: f64 = 1e-7;

fn agrees_with_references(penalty: Penalty) {
    let (x, labels) = quickstart_scores();
    let ovr = fit(Loss::Logistic, penalty, &x, &labels);
    let multinomial = fit(Loss::SoftmaxCrossEntropy, penalty, &x, &labels);
    let answer = references(&x, &labels, penalty, &[("ovr", &ovr), ("multinomial", &multinomial)]);
    for (kind, ours) in [("ovr", &ovr), ("multinomial", &multinomial)] {
        let ours_objective = answer[kind]["ours"]["objective"].as_f64().unwrap();
        for reference in ["saga", "lbfgsb"] {
            let theirs = &answer[kind][reference];
            let objective = theirs["objective"].as_f64().unwrap();
            let gap = (ours_objective - objective) / objective.abs();
            eprintln!(
                "{kind} λ={} ρ={}: ours {ours_objective:.12} {reference} {objective:.12} (relative gap {gap:.2e})",
                penalty.lambda, penalty.l1_ratio
            );
            assert!(gap <= 1e-6, "{kind}: our objective {ours_objective} exceeds {reference}'s {objective} by {gap:.2e} relative");
            let weight: Vec<Vec<f64>> = serde_json::from_value(theirs["weight"].clone()).unwrap();
            for (k, row) in weight.iter().enumerate() {
                for (c, w) in row.iter().enumerate() {
                    let mine = ours.weight[[k, c]];
                    assert_eq!(
                        mine == 0.0,
                        w.abs() <= REFERENCE_ZERO,
                        "{kind} weight [{k}, {c}]: ours {mine:e}, {reference} {w:e} (λ = {})",
                        penalty.lambda
                    );
                }
            }
        }
        assert!(ours.zeros() > 0, "{kind} at λ = {}: the comparison needs both kinds of weights", penalty.lambda);
    }
}

#[test]
fn elastic_net_matches_scikit_learn_at_the_quickstarts_lambda() {
    agrees_with_references(Penalty { lambda: 1e-4, l1_ratio: 0.99 });
}

#[test]
fn elastic_net_matches_scikit_learn_at_a_sparser_lambda() {
    agrees_with_references(Penalty { lambda: 1e-2, l1_ratio: 0.5 });
}
