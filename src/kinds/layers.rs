//! Layer names and kinds of the built-in architectures, as PyTorch's modules name them. The
//! checker validates `layer = "..."` against these tables; the worker's models expose the same
//! names, which a test in the worker keeps in step.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    Conv,
    /// A block or sequence of blocks whose output is a convolutional feature map.
    Block,
    Norm,
    Activation,
    MaxPool,
    GlobalPool,
    Linear,
}

impl LayerKind {
    /// Whether the output is a spatial feature map (what the Grad-CAM family needs).
    pub fn is_spatial(self) -> bool {
        !matches!(self, LayerKind::GlobalPool | LayerKind::Linear)
    }

    pub fn describe(self) -> &'static str {
        match self {
            LayerKind::Conv => "a convolution",
            LayerKind::Block => "a convolutional block",
            LayerKind::Norm => "a batch-norm layer",
            LayerKind::Activation => "an activation",
            LayerKind::MaxPool => "a max-pooling layer",
            LayerKind::GlobalPool => "the global average pooling",
            LayerKind::Linear => "a linear layer",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub name: String,
    pub kind: LayerKind,
    /// Only global pooling and the linear head follow this layer's output.
    pub before_head: bool,
}

fn layer(name: impl Into<String>, kind: LayerKind) -> Layer {
    Layer { name: name.into(), kind, before_head: false }
}

/// The layers of a built-in architecture, or `None` for one that declares its own (torchscript).
pub fn builtin(architecture: &str) -> Option<Vec<Layer>> {
    match architecture {
        "resnet_tiny" => Some(resnet(&[1, 1, 1], false, false)),
        "resnet18" => Some(resnet(&[2, 2, 2, 2], false, true)),
        "resnet50" => Some(resnet(&[3, 4, 6, 3], true, true)),
        "inception_v3" => Some(inception_v3()),
        _ => None,
    }
}

/// torchvision's ResNet naming. `resnet_tiny` uses the same names without the max-pooling stem.
fn resnet(blocks: &[usize], bottleneck: bool, maxpool: bool) -> Vec<Layer> {
    use LayerKind::{Activation, Block, Conv, GlobalPool, Linear, MaxPool, Norm};
    let mut layers = vec![layer("conv1", Conv), layer("bn1", Norm), layer("relu", Activation)];
    if maxpool {
        layers.push(layer("maxpool", MaxPool));
    }
    let convs = if bottleneck { 3 } else { 2 };
    for (stage, &count) in blocks.iter().enumerate() {
        let stage_name = format!("layer{}", stage + 1);
        let last_stage = stage + 1 == blocks.len();
        layers.push(Layer { name: stage_name.clone(), kind: Block, before_head: last_stage });
        for block in 0..count {
            let block_name = format!("{stage_name}.{block}");
            layers.push(Layer { name: block_name.clone(), kind: Block, before_head: last_stage && block + 1 == count });
            for conv in 1..=convs {
                layers.push(layer(format!("{block_name}.conv{conv}"), Conv));
                layers.push(layer(format!("{block_name}.bn{conv}"), Norm));
            }
            layers.push(layer(format!("{block_name}.relu"), Activation));
            // The first block of a stage changes the shape (stride or width) and needs a shortcut
            // projection, except ResNet-18's first stage, which keeps both.
            if block == 0 && (stage > 0 || bottleneck) {
                layers.push(layer(format!("{block_name}.downsample"), Block));
                layers.push(layer(format!("{block_name}.downsample.0"), Conv));
                layers.push(layer(format!("{block_name}.downsample.1"), Norm));
            }
        }
    }
    layers.push(layer("avgpool", GlobalPool));
    layers.push(layer("fc", Linear));
    layers
}

fn inception_v3() -> Vec<Layer> {
    use LayerKind::{Block, Conv, GlobalPool, Linear, MaxPool};
    let mut layers: Vec<Layer> = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"].into_iter().map(|n| layer(n, Conv)).collect();
    layers.push(layer("maxpool1", MaxPool));
    layers.extend(["Conv2d_3b_1x1", "Conv2d_4a_3x3"].into_iter().map(|n| layer(n, Conv)));
    layers.push(layer("maxpool2", MaxPool));
    for name in ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b"] {
        layers.push(layer(name, Block));
    }
    layers.push(Layer { name: "Mixed_7c".into(), kind: Block, before_head: true });
    layers.push(layer("AuxLogits", Linear));
    layers.push(layer("avgpool", GlobalPool));
    layers.push(layer("fc", Linear));
    layers
}
