//! The ResNet family with torchvision's parameter names (`layer1.0.conv1.weight`, ...), so
//! converted weights load. `resnet_tiny` is the same design at CPU scale: a 3x3 stem without max
//! pooling and one basic block in each of three stages.
//!
//! Any named layer can be captured during the forward pass: tch has no forward hooks, so each
//! module offers its output to a [`Capture`] under its torchvision name.

use super::Capture;
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Tiny { width: i64 },
    R18,
    R50,
}

fn conv(p: nn::Path<'_>, cin: i64, cout: i64, k: i64, stride: i64) -> nn::Conv2D {
    let config = nn::ConvConfig { stride, padding: k / 2, bias: false, ..Default::default() };
    nn::conv2d(p, cin, cout, k, config)
}

struct Unit {
    name: String,
    conv: nn::Conv2D,
    bn_name: String,
    bn: nn::BatchNorm,
}

impl Unit {
    fn new(p: &nn::Path<'_>, prefix: &str, index: usize, cin: i64, cout: i64, k: i64, stride: i64) -> Unit {
        let conv_name = format!("conv{index}");
        let bn_name = format!("bn{index}");
        Unit {
            conv: conv(p / conv_name.as_str(), cin, cout, k, stride),
            bn: nn::batch_norm2d(p / bn_name.as_str(), cout, Default::default()),
            name: format!("{prefix}.{conv_name}"),
            bn_name: format!("{prefix}.{bn_name}"),
        }
    }

    fn forward(&self, x: &Tensor, train: bool, capture: &mut Capture) -> Tensor {
        let y = self.conv.forward(x);
        capture.offer(&self.name, &y);
        let y = self.bn.forward_t(&y, train);
        capture.offer(&self.bn_name, &y);
        y
    }
}

struct Block {
    name: String,
    relu_name: String,
    units: Vec<Unit>,
    downsample: Option<(nn::Conv2D, nn::BatchNorm)>,
    downsample_names: [String; 3],
}

impl Block {
    fn new(p: &nn::Path<'_>, name: String, cin: i64, width: i64, stride: i64, bottleneck: bool) -> Block {
        let cout = if bottleneck { width * 4 } else { width };
        let units = if bottleneck {
            vec![
                Unit::new(p, &name, 1, cin, width, 1, 1),
                Unit::new(p, &name, 2, width, width, 3, stride),
                Unit::new(p, &name, 3, width, cout, 1, 1),
            ]
        } else {
            vec![Unit::new(p, &name, 1, cin, width, 3, stride), Unit::new(p, &name, 2, width, width, 3, 1)]
        };
        let downsample = (stride != 1 || cin != cout).then(|| {
            let d = p / "downsample";
            (conv(&d / "0", cin, cout, 1, stride), nn::batch_norm2d(&d / "1", cout, Default::default()))
        });
        Block {
            relu_name: format!("{name}.relu"),
            downsample_names: [format!("{name}.downsample"), format!("{name}.downsample.0"), format!("{name}.downsample.1")],
            name,
            units,
            downsample,
        }
    }

    fn forward(&self, x: &Tensor, train: bool, capture: &mut Capture) -> Tensor {
        let mut y = x.shallow_clone();
        let last = self.units.len() - 1;
        for (i, unit) in self.units.iter().enumerate() {
            y = unit.forward(&y, train, capture);
            if i < last {
                y = y.relu();
                capture.offer(&self.relu_name, &y);
            }
        }
        let shortcut = match &self.downsample {
            Some((conv, bn)) => {
                let s = conv.forward(x);
                capture.offer(&self.downsample_names[1], &s);
                let s = bn.forward_t(&s, train);
                capture.offer(&self.downsample_names[2], &s);
                capture.offer(&self.downsample_names[0], &s);
                s
            }
            None => x.shallow_clone(),
        };
        let out = (y + shortcut).relu();
        capture.offer(&self.relu_name, &out);
        capture.offer(&self.name, &out);
        out
    }
}

pub struct ResNet {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    maxpool: bool,
    stages: Vec<(String, Vec<Block>)>,
    fc: nn::Linear,
}

impl ResNet {
    pub fn new(p: &nn::Path<'_>, variant: Variant, classes: i64) -> ResNet {
        let (stem_width, stem_kernel, stem_stride, maxpool, blocks, bottleneck): (i64, i64, i64, bool, &[usize], bool) = match variant {
            Variant::Tiny { width } => (width, 3, 1, false, &[1, 1, 1], false),
            Variant::R18 => (64, 7, 2, true, &[2, 2, 2, 2], false),
            Variant::R50 => (64, 7, 2, true, &[3, 4, 6, 3], true),
        };
        let conv1 = conv(p / "conv1", 3, stem_width, stem_kernel, stem_stride);
        let bn1 = nn::batch_norm2d(p / "bn1", stem_width, Default::default());
        let mut cin = stem_width;
        let mut stages = Vec::new();
        for (s, count) in blocks.iter().enumerate() {
            let stage_name = format!("layer{}", s + 1);
            let width = stem_width << s;
            let sp = p / stage_name.as_str();
            let mut stage = Vec::new();
            for b in 0..*count {
                let stride = if b == 0 && s > 0 { 2 } else { 1 };
                let block = Block::new(&(&sp / b.to_string()), format!("{stage_name}.{b}"), cin, width, stride, bottleneck);
                cin = if bottleneck { width * 4 } else { width };
                stage.push(block);
            }
            stages.push((stage_name, stage));
        }
        let fc = nn::linear(p / "fc", cin, classes, Default::default());
        ResNet { conv1, bn1, maxpool, stages, fc }
    }

    pub fn forward(&self, x: &Tensor, train: bool, capture: &mut Capture) -> Tensor {
        let y = self.conv1.forward(x);
        capture.offer("conv1", &y);
        let y = self.bn1.forward_t(&y, train);
        capture.offer("bn1", &y);
        let mut y = y.relu();
        capture.offer("relu", &y);
        if self.maxpool {
            y = y.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
            capture.offer("maxpool", &y);
        }
        for (name, blocks) in &self.stages {
            for block in blocks {
                y = block.forward(&y, train, capture);
            }
            capture.offer(name, &y);
        }
        let pooled = y.adaptive_avg_pool2d([1, 1]);
        capture.offer("avgpool", &pooled);
        let logits = pooled.flatten(1, -1).apply(&self.fc);
        capture.offer("fc", &logits);
        logits
    }
}
