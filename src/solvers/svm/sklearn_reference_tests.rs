//! The SVM against scikit-learn's `SVC(kernel = "linear")` (LIBSVM: hinge loss, C on the sum,
//! unpenalised bias: the same primal) on the same data, run in the project's Python environment
//! (scripts/setup-python-refs.sh installs scikit-learn). The normal is unique, and so is the
//! bias wherever a free support vector exists, so the decision functions must agree, and our
//! objective must not end above theirs.

use super::*;
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SCRIPT: &str = r#"
import json, sys
import numpy as np
from sklearn.svm import SVC
spec = json.load(sys.stdin)
x = np.array(spec["x"], dtype=np.float64)
y = np.array([1 if p else -1 for p in spec["positive"]])
svc = SVC(kernel="linear", C=spec["c"], tol=1e-12, max_iter=-1, shrinking=False).fit(x, y)
print(json.dumps({"w": svc.coef_[0].tolist(), "b": float(svc.intercept_[0]), "decision": svc.decision_function(x).tolist()}))
"#;

fn sklearn(x: &Array2<f64>, positive: &[bool], c: f64) -> (Vec<f64>, f64, Vec<f64>) {
    use std::io::Write;
    let python = std::env::var_os("VIRTUAL_ENV").map_or_else(|| "python3".into(), |v| std::path::Path::new(&v).join("bin").join("python"));
    let rows: Vec<Vec<f64>> = x.rows().into_iter().map(|r| r.to_vec()).collect();
    let input = serde_json::json!({ "x": rows, "positive": positive, "c": c }).to_string();
    let mut child = std::process::Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    child.stdin.take().map(|mut s| s.write_all(input.as_bytes())).transpose().unwrap_or_else(|e| panic!("{e}"));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "python failed (run scripts/setup-python-refs.sh): {}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let numbers =
        |v: &serde_json::Value| v.as_array().map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect()).unwrap_or_default();
    (numbers(&json["w"]), json["b"].as_f64().unwrap_or(f64::NAN), numbers(&json["decision"]))
}

/// Overlapping, off-centre classes; `share` of the examples positive.
fn data(seed: u64, n: usize, share: f64) -> (Array2<f64>, Vec<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let positive: Vec<bool> = (0..n).map(|i| (i as f64) < share * n as f64).collect();
    let x = Array2::from_shape_fn((n, 6), |(i, j)| {
        rng.gen_range(-1.0..1.0) + if j < 2 && positive[i] { 0.5 } else { 0.0 } + if j == 2 { 3.0 } else { 0.0 }
    });
    (x, positive)
}

#[test]
fn svm_decision_function_matches_scikit_learn_svc() {
    let mut worst: f64 = 0.0;
    for (seed, n, share) in [(1, 80, 0.5), (2, 100, 0.3), (3, 60, 0.8)] {
        let (x, positive) = data(seed, n, share);
        for c in [0.01, 1.0, 20.0] {
            let fit = LinearSvm { c, ..LinearSvm::default() }.fit(x.view(), &positive).unwrap_or_else(|e| panic!("{e}"));
            assert!(fit.converged, "seed {seed}, C={c}");
            let (w, b, decision) = sklearn(&x, &positive, c);
            let ours: Vec<f64> = x.rows().into_iter().map(|r| fit.hyperplane.decision(r)).collect();
            let scale = decision.iter().fold(1.0f64, |m, d| m.max(d.abs()));
            let deviation = ours.iter().zip(&decision).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale;
            let normal = fit.hyperplane.normal.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            let theirs = Hyperplane { normal: Array1::from(w), offset: b };
            let (our_objective, their_objective) =
                (primal_objective(c, &fit.hyperplane, x.view(), &positive), primal_objective(c, &theirs, x.view(), &positive));
            let gap = (our_objective - their_objective) / their_objective;
            eprintln!(
                "seed {seed}, n {n}, {:.0}% positive, C={c}: decision max deviation {deviation:.2e} (relative), |Δw|∞ {normal:.2e}, Δb {:.2e}, objective ours − theirs {gap:.2e} (relative)",
                share * 100.0,
                (fit.hyperplane.offset - b).abs()
            );
            // Both stop at a KKT tolerance, so the hyperplanes agree only as far as the optimum is
            // sharp: at C = 20 many points sit on the margin and LIBSVM (even at tol = 1e-12)
            // stops 5e-5 away, with a higher objective than ours. So: agree to 1e-3 of the
            // decision scale, and never end above scikit-learn's objective.
            assert!(deviation < 1e-3, "seed {seed}, C={c}: decision functions differ by {deviation} (relative)");
            assert!(gap < 1e-9, "seed {seed}, C={c}: our objective is {gap} above scikit-learn's (relative)");
            worst = worst.max(deviation);
        }
    }
    eprintln!("largest relative deviation from scikit-learn: {worst:.2e}");
}
