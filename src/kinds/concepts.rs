//! `concepts` methods: banks of concept directions or predictors over embeddings.

use super::{Category, FieldSpec, Method, Output, Ty, SEED};

const FROM: FieldSpec = FieldSpec::required("from", Ty::Stage(&[Output::Embeddings]), "embeddings the concepts are read from");

const fn bank(name: &'static str, fields: &'static [FieldSpec], doc: &'static str) -> Method {
    Method { category: Category::Concepts, name, version: 1, output: Output::ConceptBank, fields, dataset: None, doc }
}

pub const METHODS: &[Method] = &[
    bank(
        "annotated",
        &[
            FROM,
            FieldSpec::required("labels", Ty::ConceptLabels, "the dataset's concept labels, `data.concepts`"),
            FieldSpec::optional("epochs", Ty::Int { min: 1, max: 10_000 }, "15", "passes of the probe's SGD"),
            FieldSpec::optional("lr", Ty::Float { min: 0.0, max: 10.0, open_min: true }, "0.01", "learning rate of the probe"),
            FieldSpec::optional("batch", Ty::Int { min: 1, max: 65_536 }, "64", "embeddings per step"),
            SEED,
        ],
        "a sigmoid probe per labelled concept",
    ),
    bank(
        "cav",
        &[
            FROM,
            FieldSpec::required("probes", Ty::ConceptLabels, "concept labels of the probe set, such as `derm.concepts`"),
            FieldSpec::optional("c", Ty::Float { min: 0.0, max: 1e6, open_min: true }, "0.01", "SVM regularisation constant"),
            FieldSpec::optional(
                "n",
                Ty::Int { min: 2, max: 100_000 },
                "50",
                "positive and negative examples per concept for training (as many again held out)",
            ),
            SEED,
        ],
        "concept activation vectors from a linear SVM; the score is the signed distance",
    ),
    bank(
        "labels",
        &[FROM, FieldSpec::required("labels", Ty::ConceptLabels, "the dataset's concept labels, `data.concepts`")],
        "the dataset's true concept labels as scores: the ceiling a PCBM can reach on these concepts",
    ),
    bank(
        "random",
        &[FROM, FieldSpec::optional("count", Ty::Int { min: 1, max: 100_000 }, "15", "number of random unit directions"), SEED],
        "random unit directions: the baseline bank",
    ),
];
