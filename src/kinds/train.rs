//! `train` methods: they turn a model and a split into a checkpoint.

use super::{Category, FieldSpec, Method, Output, Ty, CHANNELS_LAST, PRECISION, SEED};

const fn train(name: &'static str, fields: &'static [FieldSpec], doc: &'static str) -> Method {
    Method { category: Category::Train, name, version: 2, output: Output::Checkpoint, fields, dataset: None, doc }
}

const MODEL: FieldSpec = FieldSpec::required("model", Ty::Stage(&[Output::Model]), "the model to train");
const DATA: FieldSpec = FieldSpec::required("data", Ty::Split, "training split, such as `data.train`");
const VAL: FieldSpec =
    FieldSpec::optional("val", Ty::Split, "none", "validation split for best-epoch selection; `none` keeps the last epoch");
const EPOCHS: FieldSpec = FieldSpec::optional("epochs", Ty::Int { min: 1, max: 100_000 }, "10", "passes over the training split");
const BATCH: FieldSpec = FieldSpec::optional("batch", Ty::Int { min: 1, max: 65_536 }, "64", "images per step");
const SCHEDULE: FieldSpec = FieldSpec::optional("lr_schedule", Ty::LrSchedule, "constant", "learning-rate schedule over the epochs");
const WEIGHT_DECAY: FieldSpec =
    FieldSpec::optional("weight_decay", Ty::Float { min: 0.0, max: 1.0, open_min: false }, "0", "L2 penalty applied by the optimizer");

pub const METHODS: &[Method] = &[
    train(
        "sgd",
        &[
            MODEL,
            DATA,
            VAL,
            EPOCHS,
            BATCH,
            FieldSpec::optional("lr", Ty::Float { min: 0.0, max: 10.0, open_min: true }, "0.01", "learning rate"),
            FieldSpec::optional("momentum", Ty::Float { min: 0.0, max: 0.999, open_min: false }, "0.9", "SGD momentum"),
            FieldSpec::optional("nesterov", Ty::Bool, "false", "Nesterov momentum"),
            WEIGHT_DECAY,
            SCHEDULE,
            PRECISION,
            CHANNELS_LAST,
            SEED,
        ],
        "stochastic gradient descent with momentum",
    ),
    train(
        "adam",
        &[
            MODEL,
            DATA,
            VAL,
            EPOCHS,
            BATCH,
            FieldSpec::optional("lr", Ty::Float { min: 0.0, max: 10.0, open_min: true }, "0.001", "learning rate"),
            WEIGHT_DECAY,
            SCHEDULE,
            PRECISION,
            CHANNELS_LAST,
            SEED,
        ],
        "Adam",
    ),
];
