//! `compare`: the study's comparisons across rounds.

use super::{Category, FieldSpec, Method, Output, Ty};

const ROUND_ZERO: &str = "round(0)";

pub const CONCEPT_OPTIONS: &[FieldSpec] = &[
    FieldSpec::optional("top", Ty::Int { min: 1, max: 1000 }, "3", "concepts per class in the tables and the Jaccard index"),
    FieldSpec::optional("classes", Ty::ClassList, "[]", "classes shown in the tables; empty shows all"),
    FieldSpec::optional("reference", Ty::Round, ROUND_ZERO, "the round others are compared with"),
];

pub const SALIENCY_OPTIONS: &[FieldSpec] = &[
    FieldSpec::optional("reference", Ty::Round, ROUND_ZERO, "the round others are compared with"),
    FieldSpec::optional("metrics", Ty::List(&Ty::Metric), "[spearman, ssim, top_iou(20%)]", "map similarity metrics"),
];

pub const METHODS: &[Method] = &[Method {
    category: Category::Compare,
    name: "compare",
    // 3: top-pixel IoU leaves pixels tied at the boundary out instead of breaking ties by index;
    // integer `classes`, `saliency { metrics }` and the PCBM-accuracy column are honoured;
    // concepts ranked by importance on the standardised scale, listed by the share rule.
    // 4: fidelity rows carry the chance range of ranking AUC, and a baseline PCBM over a `labels`
    // bank gives the ceiling's fidelity.
    version: 4,
    output: Output::Comparison,
    fields: &[
        FieldSpec::required("at", Ty::Sparsities, "weights remaining at the rounds to compare; each must match a round"),
        FieldSpec::optional(
            "accuracy",
            Ty::List(&Ty::Stage(&[Output::Tickets, Output::Checkpoint, Output::ConceptModel])),
            "[]",
            "networks and concept models whose accuracy is tracked",
        ),
        FieldSpec::optional(
            "concepts",
            Ty::Configured { of: &[Output::ConceptModel], fields: CONCEPT_OPTIONS },
            "none",
            "concept consistency of a PCBM across rounds",
        ),
        FieldSpec::optional(
            "saliency",
            Ty::Configured { of: &[Output::Saliency], fields: SALIENCY_OPTIONS },
            "none",
            "saliency consistency across rounds",
        ),
        FieldSpec::optional(
            "baseline",
            Ty::List(&Ty::Stage(&[Output::Tickets, Output::ConceptModel])),
            "[]",
            "random-pruning tickets and random-concept models shown beside the real ones",
        ),
        FieldSpec::optional("faithfulness", Ty::Bool, "true", "deletion and insertion AUC of the saliency maps"),
    ],
    dataset: None,
    doc: "accuracy, concept and saliency consistency, ground truth and baselines per round",
}];
