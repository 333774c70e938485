//! `concepts` methods: banks of concept directions or predictors over embeddings.

use super::{Category, FieldSpec, Method, Output, Ty, SEED};

const FROM: FieldSpec = FieldSpec::required("from", Ty::Stage(&[Output::Embeddings]), "embeddings the concepts are read from");

const fn bank(name: &'static str, version: u32, fields: &'static [FieldSpec], doc: &'static str) -> Method {
    Method { category: Category::Concepts, name, version, output: Output::ConceptBank, fields, dataset: None, doc }
}

pub const METHODS: &[Method] = &[
    bank(
        "annotated",
        // 2: scores are the probes' sigmoid outputs, and the probes are fitted to their optimum
        // by default (`solver = exact`); version 1 scored logits of SGD probes.
        2,
        &[
            FROM,
            FieldSpec::required("labels", Ty::ConceptLabels, "the dataset's concept labels, `data.concepts`"),
            FieldSpec::optional(
                "solver",
                Ty::Word(&["exact", "sgd"]),
                "exact",
                "fit each probe to its optimum (`exact`), or by minibatch SGD for `epochs` at `lr` (`sgd`, the published recipe)",
            ),
            FieldSpec::optional(
                "l2",
                Ty::Float { min: 0.0, max: 1e3, open_min: true },
                "1e-4",
                "L2 penalty of an exact probe, on standardised embeddings",
            ),
            FieldSpec::optional("epochs", Ty::Int { min: 1, max: 10_000 }, "15", "passes of the probe's SGD (`solver = sgd`)"),
            FieldSpec::optional(
                "lr",
                Ty::Float { min: 0.0, max: 10.0, open_min: true },
                "0.01",
                "learning rate of the probe's SGD (`solver = sgd`)",
            ),
            FieldSpec::optional("batch", Ty::Int { min: 1, max: 65_536 }, "64", "embeddings per SGD step (`solver = sgd`)"),
            SEED,
        ],
        "a logistic probe per labelled concept; the score is its sigmoid output",
    ),
    bank(
        "cav",
        // Still 1: skipping a concept with under 2 examples on a side changes nothing for a bank
        // that used to compute (such a bank used to fail), so its cached entries stay valid.
        1,
        &[
            FROM,
            FieldSpec::required("probes", Ty::ConceptLabels, "concept labels of the probe set, such as `derm.concepts`"),
            FieldSpec::optional("c", Ty::Float { min: 0.0, max: 1e6, open_min: true }, "0.01", "SVM regularisation constant"),
            FieldSpec::optional(
                "n",
                Ty::Int { min: 2, max: 100_000 },
                "50",
                "positive and negative examples per concept for training (as many again held out); a concept with fewer than 2 of either in the probe set gets no CAV: a zero direction (score 0), a report entry saying why and a warning",
            ),
            SEED,
        ],
        "concept activation vectors from a linear SVM; the score is the signed distance (0 for a concept too rare for a CAV)",
    ),
    bank(
        "labels",
        1,
        &[FROM, FieldSpec::required("labels", Ty::ConceptLabels, "the dataset's concept labels, `data.concepts`")],
        "the dataset's true concept labels as scores: the ceiling a PCBM can reach on these concepts",
    ),
    // Version 2: directions drawn with rand_distr's normal (ziggurat), not Box-Muller.
    bank(
        "random",
        2,
        &[FROM, FieldSpec::optional("count", Ty::Int { min: 1, max: 100_000 }, "15", "number of random unit directions"), SEED],
        "random unit directions: the baseline bank",
    ),
];
