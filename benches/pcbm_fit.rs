//! The PCBM's fit against scikit-learn's saga, side by side on the same standardised scores (the
//! quickstart's round-0 probe bank, tests/reference/quickstart-round0-bank.safetensors), at the
//! quickstart's λ = 1e-4, ρ = 0.99.
//!
//! Ours: the converged fit (KKT violation ≤ 1e-6, the PCBM's tolerance), median of several runs.
//! saga: from a cold start, the fewest epochs (of 10, 30, 100, 300, 1000, 3000) at which its
//! objective reaches ours to 1e-6 relative, and the time of that fit; for one-vs-rest the
//! per-class times add up. A saga that has not arrived by 3000 epochs (beyond them the search
//! alone takes many minutes on a shared machine) makes the ratio a lower bound. saga's time
//! includes scikit-learn's input checks. Target: ours at least as fast.
//!
//! Run with `source scripts/env.sh && cargo bench --bench pcbm_fit` (needs scikit-learn, which
//! scripts/env.sh installs).

use lthlang::compare::artifacts;
use lthlang::solvers::elastic_net::{one_hot, ElasticNet, LinearModel, Loss, Penalty};
use lthlang::solvers::standardise::Standardisation;
use ndarray::Array2;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

const RUNS: usize = 7;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tensors = artifacts::tensors(&root.join("tests/reference/quickstart-round0-bank.safetensors")).expect("the bench's scores");
    let scores = &tensors["train.scores"];
    let raw = Array2::from_shape_vec((scores.shape[0], scores.shape[1]), scores.values.clone()).expect("a matrix");
    let labels: Vec<usize> = tensors["train.labels"].values.iter().map(|l| *l as usize).collect();
    let x = Standardisation::of(raw.view()).apply(raw.view());
    let y = one_hot(&labels, 8).expect("labels below 8");
    let penalty = Penalty { lambda: 1e-4, l1_ratio: 0.99 };

    let mut ours = Vec::new();
    for (kind, loss) in [("ovr", Loss::Logistic), ("multinomial", Loss::SoftmaxCrossEntropy)] {
        let solver = ElasticNet { loss, penalty, max_passes: 1_600, tolerance: 1e-6 };
        let mut times = Vec::new();
        let mut model: Option<LinearModel> = None;
        for _ in 0..RUNS {
            let start = Instant::now();
            let fit = solver.fit(x.view(), y.view()).expect("a fit");
            times.push(start.elapsed().as_secs_f64());
            assert!(fit.converged, "{kind}: KKT {:.1e}", fit.kkt_violation);
            model = Some(fit.model);
        }
        times.sort_by(f64::total_cmp);
        ours.push((kind, times[RUNS / 2], model.expect("a model")));
    }

    let rows: Vec<Vec<f64>> = x.rows().into_iter().map(|r| r.to_vec()).collect();
    let fits: serde_json::Map<String, serde_json::Value> = ours
        .iter()
        .map(|(kind, _, m)| {
            let weight: Vec<Vec<f64>> = m.weight.rows().into_iter().map(|r| r.to_vec()).collect();
            (kind.to_string(), json!({ "weight": weight, "bias": m.bias.to_vec() }))
        })
        .collect();
    let problem = json!({ "x": rows, "y": labels, "lambda": penalty.lambda, "l1_ratio": penalty.l1_ratio, "ours": fits });
    let python = std::env::var("VIRTUAL_ENV").map(|v| format!("{v}/bin/python")).unwrap_or_else(|_| "python3".to_owned());
    let mut child = Command::new(&python)
        .arg(root.join("benches/reference/saga_time.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {python}: {e} (is the venv of scripts/env.sh active?)"));
    child.stdin.take().expect("stdin").write_all(problem.to_string().as_bytes()).expect("send the problem");
    let out = child.wait_with_output().expect("the saga timing");
    assert!(out.status.success(), "saga_time.py failed");
    let saga: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from saga_time.py");

    println!("PCBM fit on the quickstart's round-0 scores (2000 × 15, 8 classes), λ = 1e-4, ρ = 0.99");
    println!("{:<12} {:>12} {:>12} {:>12} {:>8}", "multiclass", "ours (s)", "saga (s)", "saga epochs", "ratio");
    for (kind, seconds, _) in &ours {
        let theirs = &saga[kind];
        let saga_seconds = theirs["seconds"].as_f64().unwrap_or(f64::NAN);
        let reached = theirs["reached"].as_bool().unwrap_or(false);
        println!(
            "{kind:<12} {seconds:>12.4} {:>12.4} {:>12} {:>7.1}×{}",
            saga_seconds,
            theirs["epochs"],
            saga_seconds / seconds,
            if reached { "" } else { " (saga did not reach our objective: a lower bound)" }
        );
        assert!(*seconds <= saga_seconds, "{kind}: ours {seconds:.4} s is slower than saga's {saga_seconds:.4} s");
    }
}
