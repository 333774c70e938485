//! Inception-v3 (Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
//! 2016) with torchvision's module names (`Conv2d_1a_3x3.conv.weight`, `Mixed_6b.branch7x7_2.bn.*`,
//! `AuxLogits.fc.*`, `fc.*`), so its converted state dicts load unchanged.
//!
//! Sizes: the design expects 299 px images (8 x 8 x 2048 before pooling); the smallest input that
//! reaches the head is 75 px, but the auxiliary classifier, whose 5 x 5 convolution follows a
//! 5 x 5 / 3 pooling of `Mixed_6e`, needs the full 299 px. Every convolution is followed by batch
//! norm with eps 0.001, as in torchvision's `BasicConv2d`.
//!
//! `aux_logits = false` builds no `AuxLogits` module at all: the network has no such parameters,
//! saves none, and a `weights` file that holds them (torchvision's ImageNet weights do) has them
//! skipped, as torchvision itself does when it loads those weights with `aux_logits=False`.
//! With `aux_logits = true` the auxiliary classifier runs while training and its loss is added
//! at weight [`AUX_LOSS_WEIGHT`]; in evaluation it runs only when one of its layers is captured.
//!
//! Capturable names, as forward hooks on the torchvision module would see them: each
//! `Conv2d_*` unit (after its ReLU) with its `.conv` and `.bn`, `maxpool1`, `maxpool2`, each
//! `Mixed_*` block and its branches (`Mixed_5b.branch5x5_1`, with `.conv`/`.bn`), `AuxLogits`
//! and its parts, `avgpool`, `dropout`, `fc`.

use super::fallible::{Conv, Linear, Norm};
use super::Capture;
use crate::{Result, StageError};
use lthlang::kinds::model::inception_sides as sides;
use tch::nn;
use tch::Tensor;

/// Weight of the auxiliary classifier's loss in the training objective: the value PyTorch's
/// fine-tuning tutorial uses for torchvision's Inception-v3 (the paper does not state one).
pub const AUX_LOSS_WEIGHT: f64 = 0.4;

/// torchvision draws every convolution and linear weight from a normal distribution truncated to
/// [-2, 2] with this deviation. At 0.1 and below the cut lies 20 deviations out, so a plain
/// normal draw has the same distribution for all practical purposes.
const WEIGHT_STDDEV: f64 = 0.1;
const AUX_CONV1_STDDEV: f64 = 0.01;
const AUX_FC_STDDEV: f64 = 0.001;
const DROPOUT: f64 = 0.5;

/// The smallest input sides for the main path and for the auxiliary classifier; `check` refuses
/// smaller images with the same constants.
pub use lthlang::kinds::model::{INCEPTION_AUX_MIN_SIDE as MIN_SIZE_AUX, INCEPTION_MIN_SIDE as MIN_SIZE};

/// torchvision's `BasicConv2d`: convolution without bias, batch norm, ReLU.
struct Unit {
    conv: Conv,
    bn: Norm,
    /// The unit's own name (output after the ReLU), then `.conv` and `.bn`.
    names: [String; 3],
}

struct Shape {
    kernel: [i64; 2],
    stride: i64,
    padding: [i64; 2],
}

const fn square(k: i64) -> Shape {
    Shape { kernel: [k, k], stride: 1, padding: [0, 0] }
}

const fn same(k: i64) -> Shape {
    Shape { kernel: [k, k], stride: 1, padding: [k / 2, k / 2] }
}

const fn strided(k: i64) -> Shape {
    Shape { kernel: [k, k], stride: 2, padding: [0, 0] }
}

/// A 1 x k (`wide`) or k x 1 kernel that keeps the spatial size.
const fn line(k: i64, wide: bool) -> Shape {
    if wide {
        Shape { kernel: [1, k], stride: 1, padding: [0, k / 2] }
    } else {
        Shape { kernel: [k, 1], stride: 1, padding: [k / 2, 0] }
    }
}

impl Unit {
    fn new(parent: &nn::Path<'_>, prefix: &str, name: &str, cin: i64, cout: i64, shape: Shape, stddev: f64) -> Unit {
        let p = parent / name;
        let config = nn::ConvConfigND::<[i64; 2]> {
            stride: [shape.stride, shape.stride],
            padding: shape.padding,
            bias: false,
            ws_init: nn::Init::Randn { mean: 0.0, stdev: stddev },
            ..Default::default()
        };
        let norm = nn::BatchNormConfig { eps: 1e-3, ws_init: nn::Init::Const(1.0), bs_init: nn::Init::Const(0.0), ..Default::default() };
        let full = if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") };
        Unit {
            conv: Conv::new(&p / "conv", cin, cout, shape.kernel, config),
            bn: Norm::new(&p / "bn", cout, norm),
            names: [full.clone(), format!("{full}.conv"), format!("{full}.bn")],
        }
    }

    fn forward(&self, x: &Tensor, train: bool, capture: &mut Capture) -> Result<Tensor> {
        let y = self.conv.forward(x)?;
        capture.offer(&self.names[1], &y);
        let y = self.bn.forward(&y, train)?;
        capture.offer(&self.names[2], &y);
        let y = y.f_relu()?;
        capture.offer(&self.names[0], &y);
        Ok(y)
    }
}

enum Step {
    Unit(Box<Unit>),
    /// 3 x 3 average pooling, stride 1, zero padding counted (PyTorch's default).
    AvgPool,
    /// 3 x 3 max pooling, stride 2: the reduction blocks' pooling branch.
    MaxPool,
    /// Two units applied to the same input, outputs concatenated (Inception-E's split 3 x 3).
    Split(Box<(Unit, Unit)>),
}

/// One `Mixed_*` block: branches run on the block's input and are concatenated on channels in
/// torchvision's order, which the pretrained weights depend on.
struct Mixed {
    name: String,
    branches: Vec<Vec<Step>>,
}

impl Mixed {
    fn forward(&self, x: &Tensor, train: bool, capture: &mut Capture) -> Result<Tensor> {
        let mut outputs = Vec::with_capacity(self.branches.len());
        for branch in &self.branches {
            let mut y = x.shallow_clone();
            for step in branch {
                y = match step {
                    Step::Unit(unit) => unit.forward(&y, train, capture)?,
                    Step::AvgPool => y.f_avg_pool2d([3, 3], [1, 1], [1, 1], false, true, None)?,
                    Step::MaxPool => y.f_max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)?,
                    Step::Split(pair) => Tensor::f_cat(&[pair.0.forward(&y, train, capture)?, pair.1.forward(&y, train, capture)?], 1)?,
                };
            }
            outputs.push(y);
        }
        let out = Tensor::f_cat(&outputs, 1)?;
        capture.offer(&self.name, &out);
        Ok(out)
    }
}

/// Builds the units of one block under `p`, all named below `block`.
struct Builder<'a, 'p> {
    p: &'a nn::Path<'p>,
    block: &'a str,
}

impl Builder<'_, '_> {
    fn unit(&self, name: &str, cin: i64, cout: i64, shape: Shape) -> Unit {
        Unit::new(self.p, self.block, name, cin, cout, shape, WEIGHT_STDDEV)
    }

    fn step(&self, name: &str, cin: i64, cout: i64, shape: Shape) -> Step {
        Step::Unit(Box::new(self.unit(name, cin, cout, shape)))
    }

    fn mixed(&self, branches: Vec<Vec<Step>>) -> Mixed {
        Mixed { name: self.block.to_owned(), branches }
    }
}

/// Inception-A (35 x 35): 1x1, 5x5, double 3x3 and pooled branches. Output 224 + `pool` channels.
fn block_a(p: &nn::Path<'_>, name: &str, cin: i64, pool: i64) -> Mixed {
    let sub = p / name;
    let b = Builder { p: &sub, block: name };
    b.mixed(vec![
        vec![b.step("branch1x1", cin, 64, square(1))],
        vec![b.step("branch5x5_1", cin, 48, square(1)), b.step("branch5x5_2", 48, 64, same(5))],
        vec![
            b.step("branch3x3dbl_1", cin, 64, square(1)),
            b.step("branch3x3dbl_2", 64, 96, same(3)),
            b.step("branch3x3dbl_3", 96, 96, same(3)),
        ],
        vec![Step::AvgPool, b.step("branch_pool", cin, pool, square(1))],
    ])
}

/// Inception-B: reduction from 35 to 17. Output 384 + 96 + `cin` channels.
fn block_b(p: &nn::Path<'_>, name: &str, cin: i64) -> Mixed {
    let sub = p / name;
    let b = Builder { p: &sub, block: name };
    b.mixed(vec![
        vec![b.step("branch3x3", cin, 384, strided(3))],
        vec![
            b.step("branch3x3dbl_1", cin, 64, square(1)),
            b.step("branch3x3dbl_2", 64, 96, same(3)),
            b.step("branch3x3dbl_3", 96, 96, strided(3)),
        ],
        vec![Step::MaxPool],
    ])
}

/// Inception-C (17 x 17): factorised 7x7 branches with `c7` inner channels. Output 768 channels.
fn block_c(p: &nn::Path<'_>, name: &str, cin: i64, c7: i64) -> Mixed {
    let sub = p / name;
    let b = Builder { p: &sub, block: name };
    b.mixed(vec![
        vec![b.step("branch1x1", cin, 192, square(1))],
        vec![
            b.step("branch7x7_1", cin, c7, square(1)),
            b.step("branch7x7_2", c7, c7, line(7, true)),
            b.step("branch7x7_3", c7, 192, line(7, false)),
        ],
        vec![
            b.step("branch7x7dbl_1", cin, c7, square(1)),
            b.step("branch7x7dbl_2", c7, c7, line(7, false)),
            b.step("branch7x7dbl_3", c7, c7, line(7, true)),
            b.step("branch7x7dbl_4", c7, c7, line(7, false)),
            b.step("branch7x7dbl_5", c7, 192, line(7, true)),
        ],
        vec![Step::AvgPool, b.step("branch_pool", cin, 192, square(1))],
    ])
}

/// Inception-D: reduction from 17 to 8. Output 320 + 192 + `cin` channels.
fn block_d(p: &nn::Path<'_>, name: &str, cin: i64) -> Mixed {
    let sub = p / name;
    let b = Builder { p: &sub, block: name };
    b.mixed(vec![
        vec![b.step("branch3x3_1", cin, 192, square(1)), b.step("branch3x3_2", 192, 320, strided(3))],
        vec![
            b.step("branch7x7x3_1", cin, 192, square(1)),
            b.step("branch7x7x3_2", 192, 192, line(7, true)),
            b.step("branch7x7x3_3", 192, 192, line(7, false)),
            b.step("branch7x7x3_4", 192, 192, strided(3)),
        ],
        vec![Step::MaxPool],
    ])
}

/// Inception-E (8 x 8): expanded filter banks with split 1x3 / 3x1 outputs. Output 2048 channels.
fn block_e(p: &nn::Path<'_>, name: &str, cin: i64) -> Mixed {
    let sub = p / name;
    let b = Builder { p: &sub, block: name };
    b.mixed(vec![
        vec![b.step("branch1x1", cin, 320, square(1))],
        vec![
            b.step("branch3x3_1", cin, 384, square(1)),
            Step::Split(Box::new((b.unit("branch3x3_2a", 384, 384, line(3, true)), b.unit("branch3x3_2b", 384, 384, line(3, false))))),
        ],
        vec![
            b.step("branch3x3dbl_1", cin, 448, square(1)),
            b.step("branch3x3dbl_2", 448, 384, same(3)),
            Step::Split(Box::new((
                b.unit("branch3x3dbl_3a", 384, 384, line(3, true)),
                b.unit("branch3x3dbl_3b", 384, 384, line(3, false)),
            ))),
        ],
        vec![Step::AvgPool, b.step("branch_pool", cin, 192, square(1))],
    ])
}

/// The auxiliary classifier on `Mixed_6e`'s 17 x 17 x 768 output.
struct Aux {
    conv0: Unit,
    conv1: Unit,
    fc: Linear,
}

impl Aux {
    fn new(p: &nn::Path<'_>, classes: i64) -> Aux {
        let sub = p / "AuxLogits";
        let fc_init = nn::LinearConfig { ws_init: nn::Init::Randn { mean: 0.0, stdev: AUX_FC_STDDEV }, ..Default::default() };
        Aux {
            conv0: Unit::new(&sub, "AuxLogits", "conv0", 768, 128, square(1), WEIGHT_STDDEV),
            conv1: Unit::new(&sub, "AuxLogits", "conv1", 128, 768, square(5), AUX_CONV1_STDDEV),
            fc: Linear::new(&sub / "fc", 768, classes, fc_init),
        }
    }

    fn forward(&self, x: &Tensor, train: bool, capture: &mut Capture) -> Result<Tensor> {
        let y = x.f_avg_pool2d([5, 5], [3, 3], [0, 0], false, true, None)?;
        let y = self.conv0.forward(&y, train, capture)?;
        let y = self.conv1.forward(&y, train, capture)?;
        let y = self.fc.forward(&y.f_adaptive_avg_pool2d([1, 1])?.f_flatten(1, -1)?)?;
        capture.offer("AuxLogits.fc", &y);
        capture.offer("AuxLogits", &y);
        Ok(y)
    }
}

pub struct Inception {
    stem: Vec<Unit>,
    head_units: Vec<Unit>,
    early: Vec<Mixed>,
    aux: Option<Aux>,
    late: Vec<Mixed>,
    fc: Linear,
    transform_input: bool,
}

/// What one forward pass produced: the logits, and the auxiliary logits when they were computed.
pub struct Outputs {
    pub logits: Tensor,
    pub aux: Option<Tensor>,
}

impl Inception {
    pub fn new(p: &nn::Path<'_>, classes: i64, aux_logits: bool, transform_input: bool) -> Inception {
        let top = |name: &str, cin: i64, cout: i64, shape: Shape| Unit::new(p, "", name, cin, cout, shape, WEIGHT_STDDEV);
        let stem =
            vec![top("Conv2d_1a_3x3", 3, 32, strided(3)), top("Conv2d_2a_3x3", 32, 32, square(3)), top("Conv2d_2b_3x3", 32, 64, same(3))];
        let head_units = vec![top("Conv2d_3b_1x1", 64, 80, square(1)), top("Conv2d_4a_3x3", 80, 192, square(3))];
        let early = vec![
            block_a(p, "Mixed_5b", 192, 32),
            block_a(p, "Mixed_5c", 256, 64),
            block_a(p, "Mixed_5d", 288, 64),
            block_b(p, "Mixed_6a", 288),
            block_c(p, "Mixed_6b", 768, 128),
            block_c(p, "Mixed_6c", 768, 160),
            block_c(p, "Mixed_6d", 768, 160),
            block_c(p, "Mixed_6e", 768, 192),
        ];
        let aux = aux_logits.then(|| Aux::new(p, classes));
        let late = vec![block_d(p, "Mixed_7a", 768), block_e(p, "Mixed_7b", 1280), block_e(p, "Mixed_7c", 2048)];
        let fc_init = nn::LinearConfig { ws_init: nn::Init::Randn { mean: 0.0, stdev: WEIGHT_STDDEV }, ..Default::default() };
        let fc = Linear::new(p / "fc", 2048, classes, fc_init);
        Inception { stem, head_units, early, aux, late, fc, transform_input }
    }

    pub fn has_aux(&self) -> bool {
        self.aux.is_some()
    }

    /// Runs the network. The auxiliary classifier runs while training (on batches of more than
    /// one image: its last batch norm sees a single value per channel and image, so one image
    /// cannot be normalised) and, in evaluation, only when a layer inside it is captured.
    pub fn forward(&self, x: &Tensor, train: bool, capture: &mut Capture) -> Result<Outputs> {
        let size = x.size();
        let wants_aux = capture.wanted().is_some_and(|w| w == "AuxLogits" || w.starts_with("AuxLogits."));
        let batch = size.first().copied().unwrap_or(0);
        let run_aux = self.aux.is_some() && ((train && batch > 1) || wants_aux);
        check_input(&size, run_aux)?;
        let mut y = if self.transform_input { transform_input(x)? } else { x.shallow_clone() };
        for unit in &self.stem {
            y = unit.forward(&y, train, capture)?;
        }
        y = y.f_max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)?;
        capture.offer("maxpool1", &y);
        for unit in &self.head_units {
            y = unit.forward(&y, train, capture)?;
        }
        y = y.f_max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)?;
        capture.offer("maxpool2", &y);
        for block in &self.early {
            y = block.forward(&y, train, capture)?;
        }
        let aux = match &self.aux {
            Some(aux) if run_aux => Some(aux.forward(&y, train, capture)?),
            _ => None,
        };
        for block in &self.late {
            y = block.forward(&y, train, capture)?;
        }
        let pooled = y.f_adaptive_avg_pool2d([1, 1])?;
        capture.offer("avgpool", &pooled);
        let dropped = pooled.f_dropout(DROPOUT, train)?;
        capture.offer("dropout", &dropped);
        let logits = self.fc.forward(&dropped.f_flatten(1, -1)?)?;
        capture.offer("fc", &logits);
        Ok(Outputs { logits, aux })
    }
}

/// torchvision's `Inception3._transform_input`: an input normalised with ImageNet's mean and
/// deviation becomes (x - 0.5) / 0.5 of the same image, channel by channel, with torchvision's
/// constants and order of operations.
fn transform_input(x: &Tensor) -> Result<Tensor> {
    const IMAGENET: [(f64, f64); 3] = [(0.485, 0.229), (0.456, 0.224), (0.406, 0.225)];
    let mut channels = Vec::with_capacity(3);
    for (c, (mean, std)) in IMAGENET.into_iter().enumerate() {
        let channel = x.f_select(1, i64::try_from(c).unwrap_or(0))?.f_unsqueeze(1)?;
        channels.push(channel.f_mul_scalar(std / 0.5)?.f_add_scalar((mean - 0.5) / 0.5)?);
    }
    Ok(Tensor::f_cat(&channels, 1)?)
}

/// Rejects inputs the layers cannot take, before libtorch would fail inside a convolution.
fn check_input(size: &[i64], with_aux: bool) -> Result<()> {
    let [_, channels, height, width] = size else {
        return Err(StageError::new(format!("inception_v3 takes images as [batch, 3, height, width], got shape {size:?}")));
    };
    if *channels != 3 {
        return Err(StageError::new(format!("inception_v3 takes 3-channel images, got {channels} channels")));
    }
    let (_, aux_conv, mixed_7) = sides((*height).min(*width));
    if mixed_7 < 1 || (with_aux && aux_conv < 5) {
        let (least, why) = if with_aux { (MIN_SIZE_AUX, " for the auxiliary classifier") } else { (MIN_SIZE, "") };
        return Err(StageError::new(format!(
            "inception_v3 needs images of at least {least} x {least} px{why} (it is designed for 299 px), got {height} x {width}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_map_sizes_follow_the_paper_at_299_px() {
        // Table 1 of the paper: 17 x 17 x 768 after the first reduction, 8 x 8 x 2048 at the end.
        assert_eq!(sides(299), (17, 5, 8));
    }

    #[test]
    fn smallest_inputs_are_the_documented_ones() {
        assert!(sides(MIN_SIZE).2 >= 1 && sides(MIN_SIZE - 1).2 < 1);
        assert!(sides(MIN_SIZE_AUX).1 >= 5 && sides(MIN_SIZE_AUX - 1).1 < 5);
        assert!(check_input(&[1, 3, MIN_SIZE, MIN_SIZE], false).is_ok());
        assert!(check_input(&[1, 3, MIN_SIZE - 1, MIN_SIZE], false).is_err());
        assert!(check_input(&[1, 3, 298, 299], true).is_err());
        assert!(check_input(&[1, 1, 299, 299], false).is_err());
    }
}
