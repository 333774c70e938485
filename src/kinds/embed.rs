//! `embed` methods: pooled activations, cached per checkpoint, layer and split.

use super::{Category, FieldSpec, LayerNeed, Method, Output, Ty, CHANNELS_LAST, PRECISION};

pub const METHODS: &[Method] = &[Method {
    category: Category::Embed,
    name: "pooled",
    version: 1,
    output: Output::Embeddings,
    fields: &[
        FieldSpec::required(
            "of",
            Ty::Stage(&[Output::Model, Output::Checkpoint, Output::Tickets]),
            "a checkpoint, a ticket series to embed every round, or a model as built (with its `weights`, untrained)",
        ),
        FieldSpec::required("layer", Ty::Layer { needs: LayerNeed::Any }, "the layer whose activation is pooled"),
        FieldSpec::required("data", Ty::Stage(&[Output::Dataset]), "the dataset whose splits are embedded"),
        FieldSpec::optional("batch", Ty::Int { min: 1, max: 65_536 }, "128", "images per forward pass"),
        PRECISION,
        CHANNELS_LAST,
    ],
    dataset: None,
    doc: "global-average-pooled activations of one layer for every split, computed in eval mode",
}];
