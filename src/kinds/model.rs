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

/// Smallest input side Inception-v3 accepts: its stem and the strided reductions of `Mixed_6a`
/// and `Mixed_7a` (all 3×3 without padding) leave a 1×1 map at 75 px and nothing below.
pub const INCEPTION_MIN_SIDE: i64 = 75;
/// Smallest side at which the auxiliary classifier fits: its 5×5 convolution needs the 17×17 map
/// `Mixed_6e` has at 299 px.
pub const INCEPTION_AUX_MIN_SIDE: i64 = 299;

/// Inception-v3's feature-map sides for an `s`-px input: `Mixed_6e`, the input of the auxiliary
/// classifier's 5 × 5 convolution (after its 5 × 5 / 3 pooling), and `Mixed_7c`; 0 where the
/// input is too small to get there. The worker refuses inputs by it and `check` sizes maps by it.
pub fn inception_sides(s: i64) -> (i64, i64, i64) {
    let valid = |x: i64, k: i64, stride: i64| if x >= k { (x - k) / stride + 1 } else { 0 };
    let x = valid(s, 3, 2); // Conv2d_1a_3x3
    let x = valid(x, 3, 1); // Conv2d_2a_3x3 (2b keeps the size)
    let x = valid(x, 3, 2); // maxpool1 (3b is 1 x 1)
    let x = valid(x, 3, 1); // Conv2d_4a_3x3
    let x = valid(x, 3, 2); // maxpool2; Mixed_5* keep the size
    let mixed_6 = valid(x, 3, 2); // Mixed_6a
    (mixed_6, valid(mixed_6, 5, 3), valid(mixed_6, 3, 2)) // AuxLogits' pooling, Mixed_7a
}

/// The side of the smallest feature map a built-in architecture normalises with BatchNorm in
/// training, for `side`-px inputs; `None` for `torchscript`, whose layers lthlang does not know.
///
/// BatchNorm in training normalises each channel over batch × side² values. At 1 × 1 a batch of
/// one image gives it a single value per channel: its output is 0 and the unbiased variance that
/// updates the running statistics is 0/0, so the network reads NaN in eval mode ever after.
/// PyTorch refuses such a batch ("Expected more than 1 value per channel when training").
pub fn smallest_normalised_side(architecture: &str, side: i64, aux_logits: bool) -> Option<i64> {
    let halve = |x: i64| (x + 1) / 2; // a 3 × 3 (or 7 × 7) stride-2 convolution or pool, padded
    match architecture {
        // The stem keeps the size; layer2 and layer3 halve it.
        "resnet_tiny" => Some(halve(halve(side))),
        // conv1 and the max pool, then layer2, layer3 and layer4: five halvings.
        "resnet18" | "resnet50" => Some((0..5).fold(side, |x, _| halve(x))),
        "inception_v3" => {
            let (_, _, mixed_7) = inception_sides(side);
            // The auxiliary classifier's 5 × 5 convolution always leaves 1 × 1.
            Some(if aux_logits { mixed_7.min(1) } else { mixed_7 })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{inception_sides, smallest_normalised_side, INCEPTION_AUX_MIN_SIDE, INCEPTION_MIN_SIDE};

    #[test]
    fn inception_sizes_follow_the_paper_and_bound_the_smallest_inputs() {
        // Table 1 of the paper: 17 × 17 after the first reduction, 8 × 8 at the end; the
        // auxiliary classifier pools 17 × 17 to 5 × 5 for its 5 × 5 convolution.
        assert_eq!(inception_sides(299), (17, 5, 8));
        assert!(inception_sides(INCEPTION_MIN_SIDE).2 == 1 && inception_sides(INCEPTION_MIN_SIDE - 1).2 == 0);
        assert!(inception_sides(INCEPTION_AUX_MIN_SIDE).1 == 5 && inception_sides(INCEPTION_AUX_MIN_SIDE - 1).1 < 5);
    }

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
