//! `prune` methods: each produces a ticket series, one checkpoint per round.

use super::{Category, FieldSpec, Method, Output, Ty, SEED};

const FIELDS: &[FieldSpec] = &[
    FieldSpec::required("from", Ty::Stage(&[Output::Checkpoint]), "the dense training stage; each round retrains with its settings"),
    FieldSpec::optional("rounds", Ty::Int { min: 1, max: 200 }, "14", "pruning rounds after the dense network"),
    FieldSpec::optional(
        "rate",
        Ty::Fraction { min: 0.001, max: 0.999 },
        "10%",
        "share of the surviving prunable weights removed each round",
    ),
    FieldSpec::optional(
        "scope",
        Ty::Word(&["layerwise", "global"]),
        "layerwise",
        "each layer loses the same share, or one threshold over all layers",
    ),
    FieldSpec::optional("rewind", Ty::Rewind, "init", "where surviving weights restart each round: `init`, `epoch(k)` or `none`"),
    FieldSpec::optional("prune_output", Ty::Bool, "true", "whether the output layer's weight is prunable"),
    SEED,
];

const fn prune(name: &'static str, doc: &'static str) -> Method {
    Method { category: Category::Prune, name, version: 2, output: Output::Tickets, fields: FIELDS, dataset: None, doc }
}

pub const METHODS: &[Method] = &[
    prune("imp", "iterative magnitude pruning with rewinding"),
    prune("random", "random pruning to the same densities: the baseline beside IMP"),
    prune("oneshot", "magnitude pruning of the dense weights straight to each round's density"),
];

/// Share of prunable weights remaining after `round` rounds at `rate`, as the checker and the
/// report state it. Per-layer rounding moves the realised density by at most one weight per layer.
pub fn remaining(rate: f64, round: u32) -> f64 {
    (1.0 - rate).powi(i32::try_from(round).unwrap_or(i32::MAX))
}
