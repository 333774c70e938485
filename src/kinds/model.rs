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

/// The ResNets are at version 3: fresh weights follow torchvision's init (Kaiming-normal fan-out
/// convolutions, batch norm at 1 and 0) instead of tch's defaults.
const fn resnet(name: &'static str, fields: &'static [FieldSpec], doc: &'static str) -> Method {
    Method { version: 3, ..model(name, fields, doc) }
}

pub const METHODS: &[Method] = &[
    resnet("resnet_tiny", &[CLASSES, FieldSpec::optional("width", Ty::Int { min: 4, max: 256 }, "16", "channels of the first block; doubled at each later block"), WEIGHTS, NORMALIZE], "a three-block residual network for CPU work"),
    resnet("resnet18", &[CLASSES, WEIGHTS, NORMALIZE], "ResNet-18 (torchvision layout)"),
    resnet("resnet50", &[CLASSES, WEIGHTS, NORMALIZE], "ResNet-50 (torchvision layout)"),
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

/// The side of the smallest feature map a built-in architecture normalises with BatchNorm in
/// training, for `side`-px inputs; `None` for `torchscript`, whose layers lthlang does not know.
///
/// BatchNorm in training normalises each channel over batch × side² values. At 1 × 1 a batch of
/// one image gives it a single value per channel: its output is 0 and the unbiased variance that
/// updates the running statistics is 0/0, so the network reads NaN in eval mode ever after.
/// PyTorch refuses such a batch ("Expected more than 1 value per channel when training").
pub fn smallest_normalised_side(architecture: &str, side: i64, aux_logits: bool) -> Option<i64> {
    let halve = |x: i64| (x + 1) / 2; // a 3 × 3 (or 7 × 7) stride-2 convolution or pool, padded
    let valid = |x: i64, k: i64, stride: i64| if x >= k { (x - k) / stride + 1 } else { 0 };
    match architecture {
        // The stem keeps the size; layer2 and layer3 halve it.
        "resnet_tiny" => Some(halve(halve(side))),
        // conv1 and the max pool, then layer2, layer3 and layer4: five halvings.
        "resnet18" | "resnet50" => Some((0..5).fold(side, |x, _| halve(x))),
        "inception_v3" => {
            let x = valid(valid(valid(valid(valid(side, 3, 2), 3, 1), 3, 2), 3, 1), 3, 2);
            let mixed_7 = valid(valid(x, 3, 2), 3, 2);
            // The auxiliary classifier's 5 × 5 convolution always leaves 1 × 1.
            Some(if aux_logits { mixed_7.min(1) } else { mixed_7 })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::smallest_normalised_side;

    #[test]
    fn smallest_maps_match_the_torchvision_networks() {
        // torchvision: ResNet layer4 is 7 × 7 at 224 px and 14 × 14 at 448; Inception-v3's
        // Mixed_7c is 8 × 8 at 299 px and 1 × 1 at 75.
        assert_eq!(smallest_normalised_side("resnet50", 224, false), Some(7));
        assert_eq!(smallest_normalised_side("resnet18", 448, false), Some(14));
        assert_eq!(smallest_normalised_side("resnet18", 21, false), Some(1));
        assert_eq!(smallest_normalised_side("resnet18", 33, false), Some(2));
        assert_eq!(smallest_normalised_side("resnet_tiny", 32, false), Some(8));
        assert_eq!(smallest_normalised_side("resnet_tiny", 4, false), Some(1));
        assert_eq!(smallest_normalised_side("inception_v3", 299, false), Some(8));
        assert_eq!(smallest_normalised_side("inception_v3", 75, false), Some(1));
        assert_eq!(smallest_normalised_side("inception_v3", 299, true), Some(1));
        assert_eq!(smallest_normalised_side("torchscript", 299, false), None);
    }
}
