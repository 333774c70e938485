use super::*;
use crate::fixtures::{self, Workspace};
use lthlang::kinds::Category;
use rand::SeedableRng;
use tch::Device;

fn ok<T>(r: Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap_or_default()
}

#[test]
fn tcav_pooled_gradient_sums_over_positions() {
    let g = Tensor::from_slice(&[1.0, 2.0, 3.0, 4.0, -1.0, 0.0, 0.5, 0.5]).reshape([1, 2, 2, 2]);
    assert_eq!(values(&ok(pooled_gradient(&g))), vec![10.0, 0.0]);
    let flat = Tensor::from_slice(&[1.0f32, -2.0]).reshape([1, 2]);
    assert_eq!(values(&ok(pooled_gradient(&flat))), vec![1.0, -2.0]);
}

#[test]
fn tcav_positive_share_counts_strictly_positive_rows() {
    let d = Tensor::from_slice(&[1.0, -1.0, 0.0, 2.0, -3.0, 0.5, 4.0, 1.0]).reshape([4, 2]);
    assert_eq!(ok(positive_share(&d)), vec![0.5, 0.75]);
    assert!(ok(positive_share(&Tensor::zeros([0, 2], (Kind::Double, Device::Cpu)))).iter().all(|x| x.is_nan()));
}

#[test]
fn tcav_derivative_before_the_head_is_the_head_weight_along_v() {
    // resnet_tiny's layer3 is followed only by pooling and fc: S = W[c]·v for every image.
    let net = ok(Network::build("resnet_tiny", 4, 8, 2, Device::Cpu));
    tch::manual_seed(3);
    let x = Tensor::randn([5, 3, 16, 16], (Kind::Float, Device::Cpu));
    let directions = Tensor::randn([3, 32], (Kind::Double, Device::Cpu));
    let w = net.variables()["fc.weight"].to_kind(Kind::Double);
    for class in 0..4 {
        let got = ok(derivatives(&net, &x, "layer3", class, &directions));
        let want = w.get(class).unsqueeze(0).matmul(&directions.tr()).expand([5, 3], false);
        assert!((got - want).abs().max().double_value(&[]) < 1e-5);
    }
}

#[test]
fn tcav_derivative_matches_finite_differences_inside_the_network() {
    // At `layer2.0.conv1` (followed by batch norm in eval mode) moving every position of channel k
    // by ε v_k is the same as lowering bn1's running mean by ε v_k, so the derivative can be
    // checked against central differences of the whole network, in double precision.
    let mut net = ok(Network::build("resnet_tiny", 3, 8, 4, Device::Cpu));
    net.vs.double();
    tch::manual_seed(6);
    let x = Tensor::randn([3, 3, 16, 16], (Kind::Double, Device::Cpu));
    let v = Tensor::randn([1, 16], (Kind::Double, Device::Cpu));
    let class = 1;
    let got = values(&ok(derivatives(&net, &x, "layer2.0.conv1", class, &v)));
    let mean = net.variables()["layer2.0.bn1.running_mean"].shallow_clone();
    let original = mean.copy();
    let eps = 1e-6;
    let logit_after_shift = |shift: f64| {
        let _guard = tch::no_grad_guard();
        mean.shallow_clone().copy_(&(&original - v.squeeze_dim(0) * shift));
        values(&net.forward(&x, false).unwrap().select(1, class))
    };
    let (up, down) = (logit_after_shift(eps), logit_after_shift(-eps));
    tch::no_grad(|| mean.shallow_clone().copy_(&original));
    for i in 0..3 {
        let numeric = (up[i] - down[i]) / (2.0 * eps);
        assert!((got[i] - numeric).abs() < 1e-6 * (1.0 + numeric.abs()), "image {i}: {} vs {numeric}", got[i]);
    }
}

/// Probe images for the bank: 160 Gaussian embeddings in the 16 channels of `layer2`; concept
/// `leaning` is present where e·u > 0 for a fixed u, `coin` at random. Adds the probe dataset, its
/// embed node `emb` (at `layer`) and an `annotated` bank over them, as a run would.
fn probe_bank(fx: &mut Workspace, layer: &str) {
    probe_bank_of(fx, layer, false);
}

/// [`probe_bank`]; with `rare`, a third concept `rare` shown by probe image 4 only.
fn probe_bank_of(fx: &mut Workspace, layer: &str, rare: bool) {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (n, d) = (160, 16);
    let u: Vec<f64> = (0..d).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let embeddings = ndarray::Array2::from_shape_fn((n, d), |_| rng.gen_range(-1.0..1.0));
    let names: &[&str] = if rare { &["leaning", "coin", "rare"] } else { &["leaning", "coin"] };
    let concepts = ndarray::Array2::from_shape_fn((n, names.len()), |(i, c)| {
        let on = match c {
            0 => embeddings.row(i).iter().zip(&u).map(|(e, w)| e * w).sum::<f64>() > 0.0,
            1 => rng.gen_bool(0.5),
            _ => i == 4,
        };
        f64::from(u8::from(on))
    });
    let labels: Vec<i64> = (0..n).map(|i| i64::try_from(i % 3).unwrap_or(0)).collect();
    fx.dataset("probes", &["circle", "square", "triangle"], names, &[("train", labels.clone(), concepts)]);
    fx.embed("emb", "probes", &[fixtures::EmbedSplit { name: "train", embeddings: &embeddings, labels: &labels, logits: None }]);
    let embed = fx.upstream.iter_mut().find(|u| u.stage == "emb").map(|u| &mut u.fields);
    if let Some(fields) = embed {
        fields.insert("layer".into(), Value::Str(layer.into()));
    }
    let bank = fx.request(
        "bank",
        Category::Concepts,
        "annotated",
        &[("from", Value::Stage("emb".into())), ("labels", Value::ConceptLabels { dataset: "probes".into() })],
    );
    fx.add_finished(&bank);
}

fn tcav_request(fx: &Workspace, stage: &str, layer: &str, correction: &str) -> lthlang::exec::job::NodeRequest {
    fx.request(
        stage,
        Category::Explain,
        "tcav",
        &[
            ("of", Value::Stage("trained".into())),
            ("layer", Value::Str(layer.into())),
            ("concepts", Value::Stage("bank".into())),
            ("images", Value::Split { dataset: "data".into(), split: "test".into() }),
            ("classes", Value::List(vec![Value::Int(0), Value::Str("triangle".into())])),
            ("runs", Value::Int(10)),
            ("n", Value::Int(30)),
            ("c", Value::Float(0.01)),
            ("alpha", Value::Fraction(0.05)),
            ("correction", Value::Word(correction.into())),
            ("seed", Value::Int(0)),
        ],
    )
}

fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()).unwrap_or_default()
}

/// scipy.stats.ttest_ind (pooled variance, two-sided) of each family against the random runs of
/// its class, with the Bonferroni and Benjamini–Hochberg (scipy.stats.false_discovery_control)
/// corrections over the family; `null` where scipy gives NaN.
const SCIPY: &str = r#"
import json, sys
import numpy as np
from scipy import stats
out = []
for cls in json.load(sys.stdin):
    p = [float(stats.ttest_ind(runs, cls["random"]).pvalue) for runs in cls["families"]]
    finite = [x for x in p if np.isfinite(x)]
    bh = list(stats.false_discovery_control(finite, method="bh")) if finite else []
    it = iter(bh)
    out.append({
        "p": [x if np.isfinite(x) else None for x in p],
        "bonferroni": [min(1.0, x * len(finite)) if np.isfinite(x) else None for x in p],
        "bh": [float(next(it)) if np.isfinite(x) else None for x in p],
    })
print(json.dumps(out))
"#;

fn scipy(input: &serde_json::Value) -> serde_json::Value {
    use std::io::Write;
    let python = std::env::var_os("VIRTUAL_ENV").map_or_else(|| "python3".into(), |v| std::path::Path::new(&v).join("bin").join("python"));
    let mut child = std::process::Command::new(&python)
        .args(["-c", SCIPY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    child.stdin.take().map(|mut s| s.write_all(input.to_string().as_bytes())).transpose().unwrap_or_else(|e| panic!("{e}"));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "python failed (run scripts/setup-python-refs.sh): {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn tcav_stage_tests_run_scores_as_scipy_does() {
    let mut fx = Workspace::with_trained_network(2);
    probe_bank(&mut fx, "layer2");
    for correction in ["bonferroni", "bh"] {
        let request = tcav_request(&fx, &format!("tcav_{correction}"), "layer2", correction);
        let metrics = ok(fixtures::run_request(&request));
        assert_eq!(metrics["runs"], 10);
        assert_eq!(metrics["correction"], correction);
        assert_eq!(metrics["concepts"], serde_json::json!(["leaning", "coin"]));
        let stored = ok(checkpoint::load(&request.output.join(TCAV_FILE)));
        assert_eq!(values(&stored["classes"]), vec![0.0, 2.0]);
        // The test split's labels are row mod 3: rows 0, 3, 6, 9 are class 0 and 2, 5, 8 class 2.
        assert_eq!(values(&stored["counts"]), vec![4.0, 3.0]);
        assert_eq!(stored["scores"].size(), vec![2, 2, 10]);
        assert_eq!(stored["random_scores"].size(), vec![2, 10]);
        assert_eq!(stored["cavs"].size(), vec![2, 10, 16]);
        let classes = metrics["classes"].as_array().cloned().unwrap_or_default();
        assert_eq!(classes[1]["class"], "triangle");
        // Every run score is a share of the class's images, and the stored tensors hold them.
        let stored_scores = values(&stored["scores"]);
        let mut input = Vec::new();
        let mut varied = 0;
        for (k, class) in classes.iter().enumerate() {
            let random = numbers(&class["random_runs"]);
            assert_eq!(random.len(), 10);
            let mut families: Vec<Vec<f64>> = Vec::new();
            for (c, row) in class["concepts"].as_array().cloned().unwrap_or_default().iter().enumerate() {
                let runs = numbers(&row["runs"]);
                for (r, s) in runs.iter().enumerate() {
                    assert!((s - stored_scores[(k * 2 + c) * 10 + r]).abs() < 1e-6);
                }
                families.push(runs);
            }
            families.push(numbers(&class["control"]["runs"]));
            varied += families.iter().filter(|f| f.iter().any(|x| *x != f[0])).count();
            input.push(serde_json::json!({ "families": families, "random": random }));
        }
        // Scores that vary between runs, or the comparison below checks only degenerate cases.
        assert!(varied >= 3, "only {varied} families vary between runs");
        let reference = scipy(&serde_json::Value::Array(input.clone()));
        for (k, class) in classes.iter().enumerate() {
            let mut rows = class["concepts"].as_array().cloned().unwrap_or_default();
            rows.push(class["control"].clone());
            for (i, row) in rows.iter().enumerate() {
                let ours = (row["p"].as_f64(), row["p_corrected"].as_f64());
                let theirs = (reference[k]["p"][i].as_f64(), reference[k][correction][i].as_f64());
                match theirs {
                    (Some(p), Some(q)) => {
                        let (Some(our_p), Some(our_q)) = ours else { panic!("{row}: no p-value where scipy has {p}") };
                        assert!((our_p - p).abs() <= 1e-10 + 1e-8 * p, "class {k} row {i}: p {our_p} vs scipy {p}");
                        assert!((our_q - q).abs() <= 1e-10 + 1e-8 * q, "class {k} row {i}: corrected {our_q} vs scipy {q}");
                        assert_eq!(row["significant"], serde_json::json!(q < 0.05));
                    }
                    // scipy gives NaN when both samples are constant and equal; we say p = 1.
                    _ => assert_eq!(ours.0, Some(1.0), "{row}"),
                }
            }
        }
        eprintln!("tcav {correction}: {}", serde_json::Value::Array(input));
    }
}

#[test]
fn tcav_stage_refuses_concepts_from_another_layer() {
    let mut fx = Workspace::with_trained_network(3);
    probe_bank(&mut fx, "layer2");
    let err = fixtures::run_request(&tcav_request(&fx, "tcav", "layer3", "bonferroni")).err().map(|e| e.0).unwrap_or_default();
    assert!(err.contains("layer2"), "{err}");
}

#[test]
fn tcav_stage_leaves_a_rare_concept_untested_and_corrects_over_the_tested_ones() {
    let mut fx = Workspace::with_trained_network(2);
    probe_bank(&mut fx, "layer2");
    let whole = ok(fixtures::run_request(&tcav_request(&fx, "tcav_whole", "layer2", "bonferroni")));
    let mut fx = Workspace::with_trained_network(2);
    probe_bank_of(&mut fx, "layer2", true);
    let request = tcav_request(&fx, "tcav", "layer2", "bonferroni");
    let (metrics, events) = fixtures::run_collecting(&request);
    let metrics = ok(metrics);
    let warnings: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            lthlang::exec::job::Event::Warning { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("`rare` (1 of 160 probe images)") && !warnings[0].contains("`coin`"), "{}", warnings[0]);
    assert_eq!(metrics["untestable"], serde_json::json!([{ "concept": "rare", "present": 1, "absent": 159 }]));
    assert_eq!(metrics["examples_per_side"], serde_json::json!([30, 30, null]));
    let stored = ok(checkpoint::load(&request.output.join(TCAV_FILE)));
    assert_eq!(stored["scores"].size(), vec![2, 3, 10]);
    assert_eq!(stored["cavs"].size(), vec![3, 10, 16]);
    let scores = values(&stored["scores"]);
    let p_stored = values(&stored["p_values"]);
    for (k, class) in metrics["classes"].as_array().cloned().unwrap_or_default().iter().enumerate() {
        let rows = class["concepts"].as_array().cloned().unwrap_or_default();
        let rare = &rows[2];
        // Null, not 0 and not "not significant".
        for field in ["runs", "mean", "std", "t", "p", "p_corrected", "significant"] {
            assert!(rare[field].is_null(), "class {k}: `{field}` of the untestable concept: {rare}");
        }
        assert!(rare["untestable"].as_str().is_some_and(|s| s.contains("shown by 1 of the 160")), "{rare}");
        assert!((0..10).all(|r| scores[(k * 3 + 2) * 10 + r].is_nan()) && p_stored[k * 3 + 2].is_nan());
        // The tested concepts and the control are what they are without the rare concept: it
        // draws nothing from the random stream.
        let before = &whole["classes"][k];
        for (i, row) in rows[..2].iter().chain(std::iter::once(&class["control"])).enumerate() {
            let then = if i < 2 { &before["concepts"][i] } else { &before["control"] };
            assert_eq!((&row["runs"], &row["p"]), (&then["runs"], &then["p"]), "class {k} row {i}");
            // Bonferroni over the two tested concepts and the control: m = 3, not 4.
            let p = row["p"].as_f64().unwrap_or(f64::NAN);
            let q = row["p_corrected"].as_f64().unwrap_or(f64::NAN);
            assert!((q - (p * 3.0).min(1.0)).abs() < 1e-12, "class {k} row {i}: p {p}, corrected {q}");
            assert_eq!(q, then["p_corrected"].as_f64().unwrap_or(f64::NAN), "class {k} row {i}");
            assert_eq!(row["significant"], serde_json::json!(q < 0.05));
        }
    }
}
