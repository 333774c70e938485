//! The ResNet family with torchvision's parameter names (`layer1.0.conv1.weight`, ...), so
//! converted weights load. `resnet_tiny` is the same design at CPU scale: a 3x3 stem without max
//! pooling and one basic block in each of three stages.
//!
//! Any named layer can be captured during the forward pass: tch has no forward hooks, so each
//! module offers its output to a [`Capture`] under its torchvision name.

use super::fallible::{Conv, Linear, Norm};
use super::Capture;
use crate::Result;
use tch::nn;
use tch::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Tiny { width: i64 },
    R18,
    R50,
}

// Fresh weights are drawn as torchvision's `ResNet.__init__` draws them: convolutions from
// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`, batch norm at weight 1 and bias 0, and
// the classifier at `nn.Linear`'s defaults (weight and bias uniform in ±1/√fan_in). tch's own
// defaults differ (uniform batch-norm weights in [0, 1], fan-in Kaiming-uniform convolutions, a
// linear weight √6 times wider), and a lottery ticket rewound to init depends on the init.

/// Kaiming-normal with the fan-out, as torchvision draws ResNet convolutions.
const CONV_INIT: nn::Init = nn::Init::Kaiming {
    dist: nn::init::NormalOrUniform::Normal,
    fan: nn::init::FanInOut::FanOut,
    non_linearity: nn::init::NonLinearity::ReLU,
};

fn conv(p: nn::Path<'_>, cin: i64, cout: i64, k: i64, stride: i64) -> Conv {
    let config = nn::ConvConfigND::<[i64; 2]> {
        stride: [stride, stride],
        padding: [k / 2, k / 2],
        bias: false,
        ws_init: CONV_INIT,
        ..Default::default()
    };
    Conv::new(p, cin, cout, [k, k], config)
}

fn norm(p: nn::Path<'_>, channels: i64) -> Norm {
    Norm::new(p, channels, nn::BatchNormConfig { ws_init: nn::Init::Const(1.0), bs_init: nn::Init::Const(0.0), ..Default::default() })
}

/// `nn.Linear`'s default weights: Kaiming-uniform with a = √5, i.e. uniform in ±1/√fan_in (tch
/// draws the bias from the same range when it is given no init of its own).
fn classifier(p: nn::Path<'_>, cin: i64, classes: i64) -> Linear {
    #[allow(clippy::cast_precision_loss, reason = "a channel count, far below 2^52")]
    let bound = 1.0 / (cin as f64).sqrt();
    Linear::new(p, cin, classes, nn::LinearConfig { ws_init: nn::Init::Uniform { lo: -bound, up: bound }, ..Default::default() })
}

struct Unit {
    name: String,
    conv: Conv,
    bn_name: String,
    bn: Norm,
}

impl Unit {
    fn new(p: &nn::Path<'_>, prefix: &str, index: usize, cin: i64, cout: i64, k: i64, stride: i64) -> Unit {
        let conv_name = format!("conv{index}");
        let bn_name = format!("bn{index}");
        Unit {
            conv: conv(p / conv_name.as_str(), cin, cout, k, stride),
            bn: norm(p / bn_name.as_str(), cout),
            name: format!("{prefix}.{conv_name}"),
            bn_name: format!("{prefix}.{bn_name}"),
        }
    }

    fn forward(&self, x: &Tensor, train: bool, capture: &mut Capture) -> Result<Tensor> {
        let y = self.conv.forward(x)?;
        capture.offer(&self.name, &y);
        let y = self.bn.forward(&y, train)?;
        capture.offer(&self.bn_name, &y);
        Ok(y)
    }
}

struct Block {
    name: String,
    relu_name: String,
    units: Vec<Unit>,
    downsample: Option<(Conv, Norm)>,
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
            (conv(&d / "0", cin, cout, 1, stride), norm(&d / "1", cout))
        });
        Block {
            relu_name: format!("{name}.relu"),
            downsample_names: [format!("{name}.downsample"), format!("{name}.downsample.0"), format!("{name}.downsample.1")],
            name,
            units,
            downsample,
        }
    }

    fn forward(&self, x: &Tensor, train: bool, capture: &mut Capture) -> Result<Tensor> {
        let mut y = x.shallow_clone();
        let last = self.units.len() - 1;
        for (i, unit) in self.units.iter().enumerate() {
            y = unit.forward(&y, train, capture)?;
            if i < last {
                y = y.f_relu()?;
                capture.offer(&self.relu_name, &y);
            }
        }
        let shortcut = match &self.downsample {
            Some((conv, bn)) => {
                let s = conv.forward(x)?;
                capture.offer(&self.downsample_names[1], &s);
                let s = bn.forward(&s, train)?;
                capture.offer(&self.downsample_names[2], &s);
                capture.offer(&self.downsample_names[0], &s);
                s
            }
            None => x.shallow_clone(),
        };
        let out = y.f_add(&shortcut)?.f_relu()?;
        capture.offer(&self.relu_name, &out);
        capture.offer(&self.name, &out);
        Ok(out)
    }
}

pub struct ResNet {
    conv1: Conv,
    bn1: Norm,
    maxpool: bool,
    stages: Vec<(String, Vec<Block>)>,
    fc: Linear,
}

impl ResNet {
    pub fn new(p: &nn::Path<'_>, variant: Variant, classes: i64) -> ResNet {
        let (stem_width, stem_kernel, stem_stride, maxpool, blocks, bottleneck): (i64, i64, i64, bool, &[usize], bool) = match variant {
            Variant::Tiny { width } => (width, 3, 1, false, &[1, 1, 1], false),
            Variant::R18 => (64, 7, 2, true, &[2, 2, 2, 2], false),
            Variant::R50 => (64, 7, 2, true, &[3, 4, 6, 3], true),
        };
        let conv1 = conv(p / "conv1", 3, stem_width, stem_kernel, stem_stride);
        let bn1 = norm(p / "bn1", stem_width);
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
        let fc = classifier(p / "fc", cin, classes);
        ResNet { conv1, bn1, maxpool, stages, fc }
    }

    pub fn forward(&self, x: &Tensor, train: bool, capture: &mut Capture) -> Result<Tensor> {
        let y = self.conv1.forward(x)?;
        capture.offer("conv1", &y);
        let y = self.bn1.forward(&y, train)?;
        capture.offer("bn1", &y);
        let mut y = y.f_relu()?;
        capture.offer("relu", &y);
        if self.maxpool {
            y = y.f_max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)?;
            capture.offer("maxpool", &y);
        }
        for (name, blocks) in &self.stages {
            for block in blocks {
                y = block.forward(&y, train, capture)?;
            }
            capture.offer(name, &y);
        }
        let pooled = y.f_adaptive_avg_pool2d([1, 1])?;
        capture.offer("avgpool", &pooled);
        let logits = self.fc.forward(&pooled.f_flatten(1, -1)?)?;
        capture.offer("fc", &logits);
        Ok(logits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.flatten(0, -1).to_kind(Kind::Double)).unwrap_or_default()
    }

    /// torchvision's init, checked against its definitions: every batch norm at weight 1 and bias
    /// 0; each convolution's weights with mean 0 and deviation √(2 / fan_out), fan_out = out
    /// channels × kernel area (within sampling error); the classifier's inside ±1/√fan_in.
    #[test]
    fn fresh_weights_are_drawn_as_torchvision_draws_them() {
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = ResNet::new(&vs.root(), Variant::R18, 10);
        let mut convolutions = 0;
        for (name, t) in vs.variables() {
            let v = values(&t);
            #[allow(clippy::cast_precision_loss, reason = "tensor sizes far below 2^52")]
            let n = v.len() as f64;
            let is_norm = name.contains("bn") || name.contains("downsample.1");
            if is_norm && name.ends_with(".weight") {
                assert!(v.iter().all(|&x| x == 1.0), "{name}");
            } else if is_norm && name.ends_with(".bias") {
                assert!(v.iter().all(|&x| x == 0.0), "{name}");
            } else if name.starts_with("fc.") {
                let bound = 1.0 / 512f64.sqrt();
                assert!(v.iter().all(|x| x.abs() <= bound), "{name}");
                assert!(v.iter().any(|x| x.abs() > 0.9 * bound), "{name} fills its range");
            } else if t.dim() == 4 {
                let size = t.size();
                #[allow(clippy::cast_precision_loss, reason = "small channel counts")]
                let fan_out = (size[0] * size[2] * size[3]) as f64;
                let want = (2.0 / fan_out).sqrt();
                let mean = v.iter().sum::<f64>() / n;
                let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
                // The sample deviation's relative error is about 1/√(2n); allow five of those.
                let tolerance = 5.0 / (2.0 * n).sqrt();
                assert!((sd / want - 1.0).abs() < tolerance, "{name}: deviation {sd}, torchvision's {want}");
                assert!(mean.abs() < 5.0 * want / n.sqrt(), "{name}: mean {mean}");
                convolutions += 1;
            }
        }
        assert_eq!(convolutions, 20, "ResNet-18 has 20 convolutions");
    }
}
