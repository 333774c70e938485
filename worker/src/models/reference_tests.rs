//! Agreement with torchvision 0.26 (on torch 2.11), the layout the built-in architectures copy.
//!
//! `tests/reference/torchvision_reference.py` produced the files and numbers used here: the
//! `*.state.txt` files list every state-dict entry of torchvision's model (10 classes) with its
//! shape, and the logits below are torchvision's outputs after every tensor was set by the
//! script's `fill` (mirrored by [`fill`] here) on the script's `image` input. Matching logits to
//! 1e-4 checks what names and shapes cannot: branch order in concatenations, paddings, strides,
//! pooling and batch-norm eps.

use super::{Network, Spec};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

const CLASSES: i64 = 10;

/// From `python tests/reference/torchvision_reference.py tests/reference`.
const INCEPTION_V3_LOGITS: [f64; 10] =
    [-0.308692, 0.395752, -0.025861, -0.134454, 0.349703, -0.447304, 0.226612, -0.165267, -0.279901, 0.268438];
const INCEPTION_V3_AUX_LOGITS: [f64; 10] =
    [-0.446992, 0.013038, 0.545851, 0.198326, -0.498213, -0.419785, 0.254881, 0.353143, -0.302206, -0.591467];
const RESNET18_LOGITS: [f64; 10] =
    [-0.619426, -0.272776, 0.359838, 0.738433, 0.527328, -0.124019, -0.701284, -0.747590, -0.238795, 0.398446];

/// `name shape...` lines; PyTorch's `num_batches_tracked` counters are left out (tch keeps none).
fn torchvision_state(text: &str) -> BTreeMap<String, Vec<i64>> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let shape = words.map(|w| w.parse().unwrap_or(-1)).collect();
            (!name.ends_with("num_batches_tracked")).then(|| (name.to_owned(), shape))
        })
        .collect()
}

fn our_state(net: &Network) -> BTreeMap<String, Vec<i64>> {
    net.variables().into_iter().map(|(name, t)| (name, t.size())).collect()
}

fn phase(name: &str) -> f64 {
    (name.bytes().map(u64::from).sum::<u64>() % 97) as f64 * 0.1
}

/// The reference script's `fill`: a sine wave per tensor, shaped so batch norm stays sane.
fn fill(name: &str, shape: &[i64]) -> Tensor {
    let n: i64 = shape.iter().product();
    let wave = (Tensor::arange(n, (Kind::Double, Device::Cpu)) * 0.37 + phase(name)).sin();
    let values = if name.ends_with("running_var") {
        (wave + 1.0) * 0.25 + 0.5
    } else if name.ends_with("running_mean") {
        wave * 0.1
    } else if shape.len() == 1 && name.ends_with("weight") {
        wave * 0.1 + 1.0
    } else if shape.len() == 1 {
        wave * 0.1
    } else {
        let fan_in = n / shape[0];
        wave / (fan_in as f64).sqrt()
    };
    values.reshape(shape).to_kind(Kind::Float)
}

fn image(shape: &[i64]) -> Tensor {
    let n: i64 = shape.iter().product();
    (Tensor::arange(n, (Kind::Double, Device::Cpu)) * 0.0123).sin().reshape(shape).to_kind(Kind::Float)
}

fn filled(spec: &Spec) -> Network {
    let net = Network::from_spec(spec, 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
    let _guard = tch::no_grad_guard();
    for (name, var) in net.variables() {
        var.shallow_clone().copy_(&fill(&name, &var.size()));
    }
    net
}

fn assert_close(got: &Tensor, expected: &[f64], what: &str) {
    let got: Vec<f64> = Vec::<f64>::try_from(got.flatten(0, -1).to_kind(Kind::Double)).unwrap_or_default();
    assert_eq!(got.len(), expected.len(), "{what}: {got:?}");
    for (g, e) in got.iter().zip(expected) {
        assert!((g - e).abs() <= 1e-4 * e.abs().max(1.0), "{what}: got {got:?}, torchvision {expected:?}");
    }
}

fn inception(aux_logits: bool, classes: i64) -> Spec {
    Spec { architecture: "inception_v3".into(), classes, aux_logits, ..Spec::default() }
}

#[test]
fn inception_v3_has_torchvision_state_names_and_shapes() {
    let reference = torchvision_state(include_str!("../../../tests/reference/inception_v3.state.txt"));
    let with_aux = Network::from_spec(&inception(true, CLASSES), 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(our_state(&with_aux), reference);
    let without: BTreeMap<_, _> = reference.into_iter().filter(|(name, _)| !name.starts_with("AuxLogits.")).collect();
    let no_aux = Network::from_spec(&inception(false, CLASSES), 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(our_state(&no_aux), without);
}

#[test]
fn inception_v3_parameter_counts_match_torchvision() {
    // torchvision.models.inception_v3(num_classes=1000): 27,161,264 parameters with the
    // auxiliary classifier, 23,834,568 without (counted with torchvision 0.26; the first is the
    // number torchvision's documentation gives for its ImageNet weights).
    for (aux, expected) in [(true, 27_161_264), (false, 23_834_568)] {
        let net = Network::from_spec(&inception(aux, 1000), 0, Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let trainable: usize = net.vs.trainable_variables().iter().map(Tensor::numel).sum();
        assert_eq!(trainable, expected, "aux_logits = {aux}");
    }
}

#[test]
fn inception_v3_logits_match_torchvision() {
    let net = filled(&inception(true, CLASSES));
    let _guard = tch::no_grad_guard();
    let x = image(&[1, 3, 299, 299]);
    let (logits, aux) = net.forward_with(&x, false, "AuxLogits").unwrap_or_else(|e| panic!("{e}"));
    assert_close(&logits, &INCEPTION_V3_LOGITS, "logits");
    assert_close(&aux, &INCEPTION_V3_AUX_LOGITS, "AuxLogits");
    // Without the auxiliary classifier the main path is the same network.
    let plain = filled(&inception(false, CLASSES));
    assert_close(&plain.forward(&x, false).unwrap_or_else(|e| panic!("{e}")), &INCEPTION_V3_LOGITS, "logits without AuxLogits");
}

#[test]
fn resnet18_matches_torchvision() {
    let reference = torchvision_state(include_str!("../../../tests/reference/resnet18.state.txt"));
    let spec = Spec { architecture: "resnet18".into(), classes: CLASSES, ..Spec::default() };
    let net = filled(&spec);
    assert_eq!(our_state(&net), reference);
    let _guard = tch::no_grad_guard();
    let logits = net.forward(&image(&[1, 3, 64, 64]), false).unwrap_or_else(|e| panic!("{e}"));
    assert_close(&logits, &RESNET18_LOGITS, "logits");
}

#[test]
fn inception_v3_transform_input_reads_imagenet_inputs_on_the_half_scale() {
    // With `transform_input`, an image normalised with ImageNet's statistics gives what the same
    // image gives without it when normalised as (x - 0.5) / 0.5: the scale torchvision's
    // pretrained Inception-v3 weights were trained on. Compared at `Mixed_5b`, where seeded
    // weights still give moderate values that depend on the input (the filled network's logits
    // above barely do).
    let build = |transform_input| {
        let spec = Spec { transform_input, ..inception(false, CLASSES) };
        Network::from_spec(&spec, 5, Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
    };
    let (with, without) = (build(true), build(false));
    tch::manual_seed(11);
    let bytes = Tensor::randint(256, [2, 3, 96, 96], (Kind::Uint8, Device::Cpu));
    let half = crate::data::Normalisation { mean: [0.5; 3], std: [0.5; 3] };
    let _guard = tch::no_grad_guard();
    let ok = |t: crate::Result<Tensor>| t.unwrap_or_else(|e| panic!("{e}"));
    let layer = |net: &Network, x: Tensor| net.forward_with(&x, false, "Mixed_5b").unwrap_or_else(|e| panic!("{e}")).1;
    let reference = layer(&without, ok(half.apply(&bytes)));
    let scale = reference.abs().max().double_value(&[]);
    let transformed = layer(&with, ok(crate::data::Normalisation::IMAGENET.apply(&bytes)));
    let difference = (transformed - &reference).abs().max().double_value(&[]);
    assert!(difference <= 1e-5 * scale, "{difference} at scale {scale}");
    // Without it, ImageNet-normalised inputs give other activations.
    let plain = layer(&without, ok(crate::data::Normalisation::IMAGENET.apply(&bytes)));
    let apart = (plain - &reference).abs().max().double_value(&[]);
    assert!(apart > 1e-2 * scale, "{apart} at scale {scale}");
}
