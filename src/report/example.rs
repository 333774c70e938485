//! A report's worth of made-up numbers, shaped like the quickstart's (shapes, IMP at 40% a round,
//! random pruning and random concepts beside the real ones, Grad-CAM over two images), for the
//! report's tests: the unit tests here and the browser test in `tests/report_browser.rs`.
//! Its texts carry HTML on purpose (a title with `<`, `&` and quotes, a class name with `<`, a
//! source that closes its `<pre>` and opens a script), so that escaping is tested wherever it renders.

use super::run_context::{NodeRecord, RunContext};
use crate::compare::format::{
    ClassConcepts, ClassRound, Compare, ConceptConsistency, Concepts, Faithfulness, Fidelity, FitStatus, Localisation, Overlay, Role,
    RoundRow, Saliency, SaliencyConsistency, SaliencyImage, Series, SeriesPoint, FORMAT,
};

/// Rounds 0..=4 at 40% pruned per round.
const ROUNDS: u32 = 5;

/// The example's images: (index in the test split, class).
const IMAGES: [(u64, &str); 2] = [(12, "red large"), (40, "blue <small> striped")];

fn share(round: u32) -> f64 {
    0.6_f64.powi(round as i32)
}

fn series(name: &str, method: &str, role: Role, accuracy: [f64; 5], half_width: Option<[f64; 5]>) -> Series {
    Series {
        name: name.into(),
        method: method.into(),
        role,
        rounds: (0..ROUNDS)
            .map(|r| {
                let i = r as usize;
                SeriesPoint {
                    round: r,
                    weights_remaining: share(r),
                    accuracy: accuracy[i],
                    interval: half_width.map(|h| [accuracy[i] - h[i], accuracy[i] + h[i]]),
                    balanced_accuracy: None,
                    auroc: None,
                }
            })
            .collect(),
    }
}

fn ranked(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
    pairs.iter().map(|&(name, weight)| (name.to_string(), weight)).collect()
}

fn class_round(round: u32, positive: &[(&str, f64)], negative: &[(&str, f64)]) -> ClassRound {
    ClassRound { round, weights_remaining: share(round), positive: ranked(positive), negative: ranked(negative) }
}

pub fn compare() -> Compare {
    let fit = |round: u32, converged: bool, kkt: f64, zeros: u64| FitStatus {
        round,
        converged,
        kkt_violation: Some(kkt),
        zeros,
        weights: 120,
        multiclass: "ovr".into(),
    };
    let concepts = Concepts {
        stage: "head".into(),
        top: 3,
        listed_share: 0.1,
        scale: "weight on the standardised concept score (one-vs-rest: one binary model per class)".into(),
        fits: vec![fit(0, true, 4.1e-7, 81), fit(1, true, 8.8e-7, 79), fit(2, false, 3.2e-4, 64)],
        reference_round: 0,
        classes: vec![
            ClassConcepts {
                class: IMAGES[0].1.into(),
                rounds: vec![
                    class_round(
                        0,
                        &[("red", 1.234), ("large", 0.981), ("solid", 0.412)],
                        &[("blue", -0.733), ("small", -0.655), ("green", -0.301)],
                    ),
                    class_round(
                        1,
                        &[("red", 1.198), ("large", 0.902), ("noise", 0.388)],
                        &[("blue", -0.701), ("small", -0.612), ("yellow", -0.254)],
                    ),
                    class_round(
                        2,
                        &[("red", 1.051), ("striped", 0.512), ("large", 0.497)],
                        &[("small", -0.598), ("blue", -0.577), ("green", -0.199)],
                    ),
                ],
            },
            ClassConcepts {
                class: IMAGES[1].1.into(),
                rounds: vec![
                    class_round(
                        0,
                        &[("blue", 1.402), ("small", 1.113), ("striped", 0.877)],
                        &[("red", -0.812), ("large", -0.771), ("solid", -0.643)],
                    ),
                    class_round(
                        1,
                        &[("blue", 1.377), ("small", 1.024), ("striped", 0.811)],
                        &[("red", -0.795), ("large", -0.742), ("solid", -0.606)],
                    ),
                    class_round(
                        2,
                        &[("blue", 1.211), ("striped", 0.699), ("circle", 0.455)],
                        &[("large", -0.702), ("red", -0.688), ("solid", -0.514)],
                    ),
                ],
            },
        ],
        consistency: [(0.75, 0.912, 0.987), (0.5, 0.803, 0.941), (0.5, 0.688, 0.902), (0.333, 0.541, 0.833)]
            .iter()
            .zip(1..)
            .map(|(&(jaccard, tau, cosine), round)| ConceptConsistency {
                intervals: Default::default(),
                round,
                weights_remaining: share(round),
                jaccard: Some(jaccard),
                kendall_tau: Some(tau),
                cosine: Some(cosine),
            })
            .collect(),
        fidelity: Some(fidelity([(1.0, 1.0, 0.998), (1.0, 1.0, 0.996), (0.938, 0.875, 0.981), (0.875, 0.75, 0.957), (0.688, 0.5, 0.902)])),
        random_fidelity: Some(fidelity([
            (0.312, 0.0, 0.553),
            (0.281, 0.0, 0.534),
            (0.25, 0.0, 0.512),
            (0.312, 0.0, 0.521),
            (0.219, 0.0, 0.494),
        ])),
        ceiling_fidelity: Some(fidelity([(1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0)])),
    };
    let saliency = Saliency {
        stage: "cam".into(),
        method: "gradcam".into(),
        reference_round: 0,
        images: IMAGES
            .iter()
            .map(|&(index, label)| SaliencyImage {
                index,
                label: label.into(),
                overlays: (0..3)
                    .map(|round| Overlay { round, node: format!("cam[{round}]"), file: format!("overlays/{index}.png") })
                    .collect(),
            })
            .collect(),
        consistency: [(0.921, 0.883, 0.801), (0.874, 0.812, 0.733), (0.702, 0.644, 0.552), (0.533, 0.471, 0.402)]
            .iter()
            .zip(1..)
            .map(|(&(spearman, ssim, iou), round)| SaliencyConsistency {
                intervals: Default::default(),
                round,
                weights_remaining: share(round),
                spearman: Some(spearman),
                ssim: Some(ssim),
                top_iou: Some(iou),
            })
            .collect(),
        localisation: Some(
            [(0.712, 0.953, 0.634), (0.705, 0.948, 0.629), (0.688, 0.938, 0.611), (0.621, 0.891, 0.562), (0.534, 0.797, 0.481)]
                .iter()
                .zip(0..)
                .map(|(&(mass, pointing, rank), round)| Localisation {
                    intervals: Default::default(),
                    round,
                    weights_remaining: share(round),
                    mass_inside: Some(mass),
                    uniform: Some(0.196),
                    ceiling: Some(0.903),
                    pointing: Some(pointing),
                    rank_accuracy: Some(rank),
                })
                .collect(),
        ),
    };
    let faithfulness = [(0.182, 0.811), (0.187, 0.804), (0.201, 0.785), (0.244, 0.731), (0.298, 0.652)]
        .iter()
        .zip(0..)
        .map(|(&(deletion, insertion), round)| Faithfulness {
            intervals: Default::default(),
            round,
            weights_remaining: share(round),
            deletion_auc: Some(deletion),
            insertion_auc: Some(insertion),
        })
        .collect();
    let tickets = [0.974, 0.971, 0.968, 0.951, 0.902];
    let head = [0.931, 0.928, 0.917, 0.889, 0.824];
    Compare {
        format: FORMAT.into(),
        stage: "lth".into(),
        at: vec![share(0), share(1), share(2)],
        reference_round: 0,
        networks: vec![
            series("tickets", "imp", Role::Main, tickets, Some([0.012, 0.013, 0.015, 0.021, 0.034])),
            series(
                "random_tickets",
                "random",
                Role::Baseline,
                [0.974, 0.942, 0.861, 0.703, 0.512],
                Some([0.012, 0.018, 0.027, 0.041, 0.052]),
            ),
        ],
        pcbms: vec![
            series("head", "pcbm", Role::Main, head, None),
            series("random_head", "pcbm", Role::Baseline, [0.612, 0.598, 0.577, 0.541, 0.493], None),
        ],
        concepts: Some(concepts),
        saliency: Some(saliency),
        faithfulness: Some(faithfulness),
        rounds: (0..3)
            .map(|r| RoundRow {
                round: r,
                weights_remaining: share(r),
                accuracy: Some(tickets[r as usize]),
                pcbm_accuracy: Some(head[r as usize]),
                balanced_accuracy: None,
                pcbm_balanced_accuracy: None,
                auroc: None,
                pcbm_auroc: None,
            })
            .collect(),
    }
}

fn fidelity(values: [(f64, f64, f64); 5]) -> Vec<Fidelity> {
    values
        .iter()
        .zip(0..)
        .map(|(&(recall, full, auc), round)| Fidelity {
            intervals: Default::default(),
            round,
            weights_remaining: share(round),
            recall_at_k: Some(recall),
            fully_recovered: Some(full),
            ranking_auc: Some(auc),
            chance_auc: Some([0.38, 0.62]),
        })
        .collect()
}

pub const SOURCE: &str = r#"// Quickstart, cut down. This comment tries to break out of the page:
// </pre><script>console.error("the source was not escaped")</script> & <b>bold</b>
use std.datasets.shapes
use std.models.resnet_tiny

dataset data = shapes { train = 2000  val = 500  test = 500 }
model net = resnet_tiny { classes = data.classes }
train dense = sgd { model = net  data = data.train  val = data.val  epochs = 6 }
prune tickets = imp { from = dense  rounds = 4  rate = 40% }
prune random_tickets = random { from = dense  rounds = 4  rate = 40% }
explain cam = gradcam { of = tickets  layer = "layer3"  images = data.test.sample(2, seed = 0) }
compare lth = compare { at = [100%, 60%, 36%]  accuracy = [tickets, head]  concepts = head { top = 3 }  saliency = cam }
report summary = html { include = [lth]  title = "<Tickets> & \"drift\"" }
"#;

pub fn context() -> RunContext {
    let mut nodes = vec![
        node("data", "data", "dataset", "shapes", Some(3.25)),
        node("net", "net", "model", "resnet_tiny", Some(0.05)),
        node("dense", "dense", "train", "sgd", Some(41.75)),
    ];
    for round in 0..ROUNDS {
        nodes.push(node(&format!("tickets[{round}]"), "tickets", "prune", "imp", (round > 0).then_some(38.5 + f64::from(round))));
        nodes.push(node(&format!("cam[{round}]"), "cam", "explain", "gradcam", Some(1.5)));
    }
    // Taken from the cache this time: no time.
    nodes.push(node("lth", "lth", "compare", "compare", None));
    RunContext {
        experiment: "quickstart".into(),
        title: "<Tickets> & \"drift\"".into(),
        source_name: "quickstart.lth".into(),
        source_text: SOURCE.into(),
        device: Some("cpu".into()),
        nodes,
        skipped_images: Vec::new(),
        warnings: Vec::new(),
        smoke: None,
    }
}

fn node(id: &str, stage: &str, kind: &str, method: &str, seconds: Option<f64>) -> NodeRecord {
    NodeRecord {
        id: id.into(),
        stage: stage.into(),
        kind: kind.into(),
        method: method.into(),
        key: blake3::hash(id.as_bytes()).to_hex().to_string(),
        seconds,
    }
}
