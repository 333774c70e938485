//! `explain` methods: concept models (PCBM), the Grad-CAM family, TCAV and completeness.

use super::{Category, FieldSpec, LayerNeed, Method, Output, Ty, CHANNELS_LAST, PRECISION_WORDS, SEED, STAGE_CHECKPOINT};

const fn explain(name: &'static str, output: Output, fields: &'static [FieldSpec], doc: &'static str) -> Method {
    Method { category: Category::Explain, name, version: 1, output, fields, dataset: None, doc }
}

/// Saliency methods are at version 3: version 2 added deletion and insertion curves and the
/// layer's grid; version 3 normalises maps without an ε in raw units (scale-free) and stores each
/// overlay's image and heatmap apart for the report to blend, so entries written before are
/// recomputed.
const fn saliency(name: &'static str, fields: &'static [FieldSpec], doc: &'static str) -> Method {
    Method { category: Category::Explain, name, version: 3, output: Output::Saliency, fields, dataset: None, doc }
}

const CONCEPTS: FieldSpec =
    FieldSpec::required("concepts", Ty::Stage(&[Output::ConceptBank]), "the concept bank whose scores are the model's inputs");
const FEATURES: FieldSpec = FieldSpec::optional(
    "features",
    Ty::Stage(&[Output::Embeddings]),
    "none",
    "embeddings of the task's images; `none` uses the bank's own",
);
const EPOCHS: FieldSpec = FieldSpec::optional("epochs", Ty::Int { min: 1, max: 10_000 }, "35", "passes of the optimiser");
const LR: FieldSpec = FieldSpec::optional("lr", Ty::Float { min: 0.0, max: 10.0, open_min: true }, "0.01", "step size");

/// The fields every saliency method shares.
const SALIENCY: &[FieldSpec] = &[
    FieldSpec::required("of", Ty::Stage(STAGE_CHECKPOINT), "a checkpoint, or a ticket series to explain every round"),
    FieldSpec::required("layer", Ty::Layer { needs: LayerNeed::Spatial }, "a convolutional layer of the model"),
    FieldSpec::required("images", Ty::Images, "images to explain, such as `data.test.sample(16, seed = 0)`"),
    FieldSpec::optional("target", Ty::Word(&["predicted", "label"]), "predicted", "explain the predicted class or the true label"),
    FieldSpec::cosmetic(
        "alpha",
        Ty::Float { min: 0.0, max: 1.0, open_min: false },
        "0.5",
        "opacity of the heatmap in the report's overlays; the report blends them, so a change redraws only the report",
    ),
    SALIENCY_PRECISION,
    CHANNELS_LAST,
];

/// A saliency method's maps come from fp32 activations and gradients whatever the stage says; its
/// precision governs the deletion and insertion curves, forward passes that only score images.
const SALIENCY_PRECISION: FieldSpec = FieldSpec::optional(
    "precision",
    Ty::Word(PRECISION_WORDS),
    "auto",
    "arithmetic of the deletion and insertion curves' forward passes (`auto`: bf16 on a GPU that supports it, fp32 on the CPU); the maps themselves are always computed in fp32",
);

const SCORECAM: &[FieldSpec] = &[
    SALIENCY[0],
    SALIENCY[1],
    SALIENCY[2],
    SALIENCY[3],
    SALIENCY[4],
    SALIENCY[5],
    SALIENCY[6],
    FieldSpec::optional("batch", Ty::Int { min: 1, max: 4096 }, "32", "masked inputs per forward pass"),
];

/// PCBM is at version 2: one-vs-rest fits, converged Newton fits, and the `importance` its
/// consumers rank by (standardised weights) replace version 1's entries.
const fn versioned(method: Method, version: u32) -> Method {
    Method { version, ..method }
}

pub const METHODS: &[Method] = &[
    versioned(
        explain(
            "pcbm",
            Output::ConceptModel,
            &[
                CONCEPTS,
                FEATURES,
                FieldSpec::optional(
                    "lambda",
                    Ty::Float { min: 0.0, max: 1e3, open_min: false },
                    "1e-5",
                    "strength of the elastic-net penalty",
                ),
                FieldSpec::optional("l1_ratio", Ty::Fraction { min: 0.0, max: 1.0 }, "0.99", "share of the penalty that is L1"),
                EPOCHS,
                LR,
                FieldSpec::optional("batch", Ty::Int { min: 1, max: 65_536 }, "64", "examples per step"),
                FieldSpec::optional("top", Ty::Int { min: 1, max: 1000 }, "3", "concepts listed per class"),
                FieldSpec::optional(
                    "multiclass",
                    Ty::Word(&["ovr", "multinomial"]),
                    "ovr",
                    "one softmax model over the classes, or one binary model per class (`ovr`, as published)",
                ),
            ],
            "post-hoc concept bottleneck: a sparse linear map from concept scores to classes",
        ),
        2,
    ),
    saliency("gradcam", SALIENCY, "Grad-CAM: ReLU of activations weighted by pooled gradients of the logit"),
    saliency("gradcam_pp", SALIENCY, "Grad-CAM++"),
    saliency("hirescam", SALIENCY, "HiResCAM: element-wise gradient times activation"),
    saliency("layercam", SALIENCY, "LayerCAM: positive gradients times activation"),
    saliency("xgradcam", SALIENCY, "XGrad-CAM"),
    saliency("scorecam", SCORECAM, "Score-CAM: channel weights from the score of masked inputs"),
    saliency("eigencam", SALIENCY, "EigenCAM: first principal component of the activations"),
    Method {
        category: Category::Explain,
        name: "tcav",
        // 3: a concept too rare for a CAV is reported untestable (null results) instead of failing
        // the node, and `significant` is null wherever the corrected p is not finite. 2: CAVs
        // retrained per run against random image sets (Kim et al. 2018), random CAVs as the null,
        // corrected p-values; version 1 tested one score against random directions.
        version: 3,
        output: Output::Scores,
        fields: &[
            FieldSpec::required("of", Ty::Stage(STAGE_CHECKPOINT), "a checkpoint or ticket series"),
            FieldSpec::required("layer", Ty::Layer { needs: LayerNeed::NotBeforeHead }, "the layer the concept vectors live in"),
            FieldSpec::required(
                "concepts",
                Ty::Stage(&[Output::ConceptBank]),
                "a bank with labelled probe images (`annotated`, `cav` or `labels`): each run retrains its CAVs from them",
            ),
            FieldSpec::required("images", Ty::Images, "class images whose directional derivatives are counted"),
            FieldSpec::optional("classes", Ty::ClassList, "[]", "classes to score; empty scores every class"),
            FieldSpec::optional(
                "runs",
                Ty::Int { min: 2, max: 1000 },
                "10",
                "CAVs per concept, each against a fresh random set, and as many random CAVs; Kim et al. use at least 10",
            ),
            FieldSpec::optional(
                "n",
                Ty::Int { min: 2, max: 100_000 },
                "50",
                "probe images on each side of every CAV; a concept shown by fewer than 2 probe images, or missing from fewer than 2, is untestable: no CAVs, null scores, p-values and verdicts, a warning, and the correction counts only the tested concepts",
            ),
            FieldSpec::optional("c", Ty::Float { min: 0.0, max: 1e6, open_min: true }, "0.01", "SVM regularisation constant of the CAVs"),
            FieldSpec::optional("alpha", Ty::Fraction { min: 0.0, max: 1.0 }, "0.05", "significance level after correction"),
            FieldSpec::optional(
                "correction",
                Ty::Word(&["bonferroni", "bh"]),
                "bonferroni",
                "correction across a class's concepts: Bonferroni (as published) or Benjamini–Hochberg",
            ),
            CHANNELS_LAST,
            SEED,
        ],
        dataset: None,
        doc: "testing with concept activation vectors",
    },
    // Version 2: fitted by the proximal Newton solver that replaced accelerated gradient.
    versioned(
        explain(
            "completeness",
            Output::Scores,
            &[CONCEPTS, FEATURES, EPOCHS, LR],
            "how much of the model's accuracy the concepts explain (Yeh et al. 2020)",
        ),
        2,
    ),
];
