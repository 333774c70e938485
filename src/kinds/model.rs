//! `model` methods: architectures whose layer names match the PyTorch originals.

use super::{Category, FieldSpec, Method, Output, Ty};

const CLASSES: FieldSpec = FieldSpec::required("classes", Ty::Classes, "number of output classes, usually `data.classes`");
const WEIGHTS: FieldSpec = FieldSpec::optional("weights", Ty::File, "none", "initial weights with PyTorch parameter names: a state dict saved by `torch.save` (torchvision's `.pth` files as distributed) or safetensors, loaded strictly except that a classifier head for another number of classes keeps seeded weights; `none` draws them from the seed");

/// The architectures whose `weights` are usually torchvision's ImageNet weights.
pub const TORCHVISION: [&str; 3] = ["resnet18", "resnet50", "inception_v3"];

/// The words of `normalize`, `auto` first (the default the checker resolves).
pub const NORMALIZE_WORDS: &[&str] = &["auto", "imagenet", "dataset", "fixed"];

const NORMALIZE: FieldSpec = FieldSpec::optional(
    "normalize",
    Ty::Word(NORMALIZE_WORDS),
    "auto",
    "how image bytes become the network's input: `imagenet` subtracts ImageNet's per-channel mean and divides by its deviation (what torchvision's weights expect), `dataset` uses the per-channel mean and deviation of the training split of the data the model is trained on, `fixed` is (x − 0.5) / 0.25 for every channel; `auto` is `imagenet` when a torchvision architecture (resnet18, resnet50, inception_v3) loads `weights`, `fixed` otherwise",
);

const TRANSFORM_INPUT: FieldSpec = FieldSpec::optional(
    "transform_input",
    Ty::Word(&["auto", "true", "false"]),
    "auto",
    "torchvision's `transform_input`: the network first maps an ImageNet-normalised input to (x − 0.5) / 0.5, the scale Inception-v3's original weights were trained on; `auto` is `true` when `weights` is given (as torchvision sets it for its pretrained weights), `false` otherwise",
);

// Version 2: the model's spec records its input normalisation (`normalize`, `transform_input`).
const fn model(name: &'static str, fields: &'static [FieldSpec], doc: &'static str) -> Method {
    Method { category: Category::Model, name, version: 2, output: Output::Model, fields, dataset: None, doc }
}

pub const METHODS: &[Method] = &[
    model("resnet_tiny", &[CLASSES, FieldSpec::optional("width", Ty::Int { min: 4, max: 256 }, "16", "channels of the first block; doubled at each later block"), WEIGHTS, NORMALIZE], "a three-block residual network for CPU work"),
    model("resnet18", &[CLASSES, WEIGHTS, NORMALIZE], "ResNet-18 (torchvision layout)"),
    model("resnet50", &[CLASSES, WEIGHTS, NORMALIZE], "ResNet-50 (torchvision layout)"),
    model("inception_v3", &[CLASSES, WEIGHTS, FieldSpec::optional("aux_logits", Ty::Bool, "false", "train the auxiliary classifier too (needs 299 px images)"), NORMALIZE, TRANSFORM_INPUT], "Inception-v3 (torchvision layout), 299 px"),
    model(
        "torchscript",
        &[
            FieldSpec::required("path", Ty::File, "a scripted module: `forward(x)` returns the logits, `forward_with(x, layer: str)` returns (logits, activation of `layer`); its buffers (batch-norm statistics) are not checkpointed"),
            CLASSES,
            FieldSpec::required("layers", Ty::List(&Ty::Str), "names of the layers the scripted module can expose"),
            NORMALIZE,
        ],
        "any scripted PyTorch module",
    ),
];
