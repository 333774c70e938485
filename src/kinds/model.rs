//! `model` methods: architectures whose layer names match the PyTorch originals.

use super::{Category, FieldSpec, Method, Output, Ty};

const CLASSES: FieldSpec = FieldSpec::required("classes", Ty::Classes, "number of output classes, usually `data.classes`");
const WEIGHTS: FieldSpec = FieldSpec::optional("weights", Ty::File, "none", "initial weights with PyTorch parameter names: a state dict saved by `torch.save` (torchvision's `.pth` files as distributed) or safetensors, loaded strictly except that a classifier head for another number of classes keeps seeded weights; `none` draws them from the seed");

const fn model(name: &'static str, fields: &'static [FieldSpec], doc: &'static str) -> Method {
    Method { category: Category::Model, name, version: 1, output: Output::Model, fields, dataset: None, doc }
}

pub const METHODS: &[Method] = &[
    model("resnet_tiny", &[CLASSES, FieldSpec::optional("width", Ty::Int { min: 4, max: 256 }, "16", "channels of the first block; doubled at each later block"), WEIGHTS], "a three-block residual network for CPU work"),
    model("resnet18", &[CLASSES, WEIGHTS], "ResNet-18 (torchvision layout)"),
    model("resnet50", &[CLASSES, WEIGHTS], "ResNet-50 (torchvision layout)"),
    model("inception_v3", &[CLASSES, WEIGHTS, FieldSpec::optional("aux_logits", Ty::Bool, "false", "train the auxiliary classifier too (needs 299 px images)")], "Inception-v3 (torchvision layout), 299 px"),
    model(
        "torchscript",
        &[
            FieldSpec::required("path", Ty::File, "a scripted module: `forward(x)` returns the logits, `forward_with(x, layer: str)` returns (logits, activation of `layer`); its buffers (batch-norm statistics) are not checkpointed"),
            CLASSES,
            FieldSpec::required("layers", Ty::List(&Ty::Str), "names of the layers the scripted module can expose"),
        ],
        "any scripted PyTorch module",
    ),
];
