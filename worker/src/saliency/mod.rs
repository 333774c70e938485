//! `explain gradcam | gradcam_pp | hirescam | layercam | xgradcam | scorecam | eigencam`: pixel
//! maps of a checkpoint's decisions (science.md, "Grad-CAM and its family").
//!
//! The network runs in eval mode throughout. The target score is the pre-softmax logit of the
//! target class, never a loss. Gradients are taken of the sum of the targets' logits over a batch:
//! in eval mode each image's logit depends on that image alone, so the gradient at image b's
//! activation is that of its own logit, and a map is the same alone or in any batch.

pub mod cam;
pub mod faithfulness;
pub mod overlay;

pub use cam::Method;

use super::data::Dataset;
use super::selection::Selection;
use super::{checkpoint, io_error, Context, Result, StageError};
use crate::models::{self, Network};
use crate::precision::{Compute, Precision};
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

pub const MAPS_FILE: &str = "maps.safetensors";
/// The explained images and their heatmaps, enlarged for display, one PNG per image row.
pub const IMAGES_DIR: &str = "images";
pub const HEATMAPS_DIR: &str = "heatmaps";

/// Images per forward and backward pass of the gradient methods; results do not depend on it.
const IMAGES_PER_PASS: i64 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Predicted,
    Label,
}

/// One pass of a batch: logits, the layer's activation and the gradient of the targets' logits.
pub struct Pass {
    pub logits: Tensor,
    pub activation: Tensor,
    pub gradient: Tensor,
    pub targets: Tensor,
}

/// The class each image is explained for.
fn targets_of(logits: &Tensor, labels: &Tensor, target: Target) -> Result<Tensor> {
    match target {
        Target::Predicted => Ok(logits.f_argmax(-1, false)?),
        Target::Label => Ok(labels.shallow_clone()),
    }
}

/// Forward in eval mode and the gradient ∂y_t/∂A of each image's target logit at `layer`.
pub fn gradients(net: &Network, x: &Tensor, layer: &str, labels: &Tensor, target: Target) -> Result<Pass> {
    // The input asks for a gradient so the graph reaches the layer even if the weights are frozen.
    let x = x.f_detach()?.f_set_requires_grad(true)?;
    let (logits, activation) = net.forward_with(&x, false, layer)?;
    let targets = targets_of(&logits, labels, target)?;
    let score = logits.f_gather(1, &targets.f_unsqueeze(1)?, false)?.f_sum(logits.kind())?;
    let mut grads = Tensor::f_run_backward(&[&score], &[&activation], false, false)
        .map_err(|e| StageError::new(format!("no gradient reaches layer `{layer}` from the logits: {e}")))?;
    let gradient = grads.pop().ok_or_else(|| StageError::new(format!("no gradient for layer `{layer}`")))?;
    Ok(Pass { logits: logits.f_detach()?, activation: activation.f_detach()?, gradient, targets })
}

/// Maps of a batch of images: `raw` (upsampled, before normalisation) and `normalised`, both
/// `[N, H, W]` float; the class explained and the class predicted per image.
pub struct Maps {
    pub raw: Tensor,
    pub normalised: Tensor,
    pub targets: Tensor,
    pub predictions: Tensor,
}

/// Explains normalised images `x` `[N, 3, H, W]`. `score_batch` is Score-CAM's number of masked
/// inputs per forward pass.
pub fn explain(net: &Network, method: Method, layer: &str, x: &Tensor, labels: &Tensor, target: Target, score_batch: i64) -> Result<Maps> {
    explain_reporting(net, method, layer, x, labels, target, score_batch, None, &crate::no_progress)
}

/// [`explain`], calling `progress` with (done, total) as it goes: images for most methods, masked
/// inputs for Score-CAM, which runs the network once per channel of the layer for every image
/// (2048 passes per image at ResNet-50's layer4). `score_batches` stops Score-CAM after that many
/// batches of masked inputs per image (a smoke run's cut; see [`cam::score_cam`]).
#[allow(clippy::too_many_arguments, reason = "explain's arguments and the progress callback")]
pub fn explain_reporting(
    net: &Network,
    method: Method,
    layer: &str,
    x: &Tensor,
    labels: &Tensor,
    target: Target,
    score_batch: i64,
    score_batches: Option<usize>,
    progress: &dyn Fn(i64, i64),
) -> Result<Maps> {
    let (n, _, height, width) = x.size4()?;
    let masked_done = std::cell::Cell::new(0i64);
    let (mut low, mut targets, mut predictions) = (Vec::new(), Vec::new(), Vec::new());
    let mut start = 0;
    while start < n {
        let count = IMAGES_PER_PASS.min(n - start);
        let xs = x.f_narrow(0, start, count)?;
        let ys = labels.f_narrow(0, start, count)?;
        let (logits, map, chosen) = if method.uses_gradients() {
            let pass = gradients(net, &xs, layer, &ys, target)?;
            spatial(&pass.activation, layer)?;
            (pass.logits, cam::from_gradients(method, &pass.activation, &pass.gradient)?, pass.targets)
        } else {
            let _guard = tch::no_grad_guard();
            let (logits, activation) = net.forward_with(&xs, false, layer)?;
            spatial(&activation, layer)?;
            let chosen = targets_of(&logits, &ys, target)?;
            let map = match method {
                Method::EigenCam => cam::eigen(&activation)?,
                _ => {
                    let channels = activation.size().get(1).copied().unwrap_or(0);
                    let scored = score_batches
                        .map_or(channels, |b| channels.min(i64::try_from(b).unwrap_or(i64::MAX).saturating_mul(score_batch.max(1))));
                    let mut score = |masked: &Tensor| {
                        let logits = net.forward(masked, false);
                        masked_done.set(masked_done.get() + masked.size().first().copied().unwrap_or(0));
                        progress(masked_done.get(), n * scored);
                        logits
                    };
                    let mut maps = Vec::new();
                    for b in 0..count {
                        let t = chosen.f_int64_value(&[b])?;
                        maps.push(cam::score_cam(&activation.f_get(b)?, &xs.f_get(b)?, t, score_batch.max(1), score_batches, &mut score)?);
                    }
                    Tensor::f_stack(&maps, 0)?
                }
            };
            (logits, map, chosen)
        };
        low.push(map);
        predictions.push(logits.f_argmax(-1, false)?);
        targets.push(chosen);
        start += count;
        if method != Method::ScoreCam {
            progress(start, n);
        }
    }
    if n == 0 {
        let empty = Tensor::f_zeros([0, height, width], (Kind::Float, x.device()))?;
        let none = Tensor::f_zeros([0], (Kind::Int64, x.device()))?;
        return Ok(Maps { raw: empty.shallow_clone(), normalised: empty, targets: none.shallow_clone(), predictions: none });
    }
    let raw = cam::upsample(&Tensor::f_cat(&low, 0)?, [height, width])?;
    let normalised = cam::normalise(&raw)?;
    Ok(Maps {
        raw: raw.f_to_kind(Kind::Float)?,
        normalised: normalised.f_to_kind(Kind::Float)?,
        targets: Tensor::f_cat(&targets, 0)?,
        predictions: Tensor::f_cat(&predictions, 0)?,
    })
}

fn spatial(activation: &Tensor, layer: &str) -> Result<()> {
    if activation.dim() == 4 {
        Ok(())
    } else {
        Err(StageError::new(format!("layer `{layer}` gives {:?}, not a spatial feature map [B, K, h, w]", activation.size())))
    }
}

pub fn stage(ctx: &Context) -> Result<serde_json::Value> {
    let method = Method::parse(&ctx.request.method)
        .ok_or_else(|| StageError::new(format!("`explain {}` is not a saliency method", ctx.request.method)))?;
    let layer = ctx.text("layer")?;
    let target = if ctx.word("target")? == "label" { Target::Label } else { Target::Predicted };
    let score_batch = if method == Method::ScoreCam { ctx.int("batch")? } else { 1 };
    let (net, input) = models::network_of(ctx, ctx.stage_name("of")?)?;
    // The maps come from fp32 passes whatever `precision` says; it governs the curves only.
    let compute = Compute::of_stage(ctx)?;
    compute.prepare(&net)?;
    let selection = Selection::from_field(ctx, "images")?;
    let data = Dataset::load(&ctx.upstream(&selection.dataset)?.dir, ctx.device, input)?;
    let split = data.split(&selection.split)?;
    let mut rows = selection.rows(split.len());
    // A smoke run cuts each of the node's loops to N batches: the maps to N passes of
    // IMAGES_PER_PASS images, Score-CAM to N batches of masked inputs per image, and the
    // deletion and insertion curves (one batch of masked inputs per image) to N images.
    let smoke = ctx.smoke();
    if let Some(batches) = smoke {
        rows.truncate(batches.saturating_mul(usize::try_from(IMAGES_PER_PASS).unwrap_or(1)));
    }
    let index = Tensor::f_from_slice(&rows)?;
    let (x, labels) = split.batch(&index)?;
    let x = compute.input(&x)?;
    ctx.progress(format!("{} of {} images at `{layer}`", method.name(), rows.len()));
    let unit = if method == Method::ScoreCam { "masked inputs" } else { "images" };
    let progress = ctx.loop_progress(format!("{}: {unit}", method.name()));
    let maps = explain_reporting(&net, method, layer, &x, &labels, target, score_batch, smoke, &progress)?;

    let tensors = BTreeMap::from([
        ("raw".to_owned(), maps.raw.shallow_clone()),
        ("normalised".to_owned(), maps.normalised.shallow_clone()),
        ("indices".to_owned(), Tensor::f_from_slice(&rows)?),
        ("labels".to_owned(), labels.shallow_clone()),
        ("targets".to_owned(), maps.targets.shallow_clone()),
        ("predictions".to_owned(), maps.predictions.shallow_clone()),
    ]);
    let metadata = BTreeMap::from([
        ("format".to_owned(), "lthlang-saliency-1".to_owned()),
        ("method".to_owned(), method.name().to_owned()),
        ("layer".to_owned(), layer.to_owned()),
        ("split".to_owned(), selection.split.clone()),
    ]);
    checkpoint::save(&ctx.request.output.join(MAPS_FILE), &tensors, &metadata)?;

    // The two layers of each overlay, enlarged alike: the image alone (alpha 0) and the heatmap
    // alone (alpha 1). The report blends them with the stage's `alpha`, a cosmetic field, so a
    // new opacity redraws the report without recomputing a map.
    let (image_dir, heat_dir) = (ctx.request.output.join(IMAGES_DIR), ctx.request.output.join(HEATMAPS_DIR));
    for dir in [&image_dir, &heat_dir] {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, &e))?;
    }
    let images = split.images_at(&index)?.f_to_device(tch::Device::Cpu)?.f_contiguous()?;
    let heat = maps.normalised.f_to_device(tch::Device::Cpu)?.f_contiguous()?;
    for (i, row) in rows.iter().enumerate() {
        let i = i64::try_from(i).unwrap_or(0);
        let pixels = Vec::<u8>::try_from(images.f_get(i)?.f_flatten(0, -1)?)?;
        let map = Vec::<f32>::try_from(heat.f_get(i)?.f_flatten(0, -1)?)?;
        let (_, _, h, w) = images.size4()?;
        overlay::write(&image_dir.join(format!("{row}.png")), &pixels, &map, [h, w], 0.0)?;
        overlay::write(&heat_dir.join(format!("{row}.png")), &pixels, &map, [h, w], 1.0)?;
    }
    let mut metrics = summary(method, layer, &maps, &labels)?;
    // The layer's grid bounds how sharp any map at this layer can be (the localisation ceiling).
    let (_, activation) = net.forward_with(&x.f_narrow(0, 0, 1)?, false, layer)?;
    let size = activation.size();
    metrics["layer_grid"] = serde_json::json!([size.get(2).copied().unwrap_or(1), size.get(3).copied().unwrap_or(1)]);
    let curve_images = smoke.map_or(rows.len(), |batches| batches.min(rows.len()));
    ctx.progress(if curve_images < rows.len() {
        format!("deletion and insertion curves of the first {curve_images} of {} images (smoke run)", rows.len())
    } else {
        "deletion and insertion curves".to_owned()
    });
    let fp32 = |batch: &Tensor| -> Result<Tensor> { Ok(net.forward(batch, false)?.f_softmax(-1, tch::Kind::Float)?) };
    let finite = |t: &Tensor| -> Result<bool> { Ok(t.f_isfinite()?.f_all()?.f_int64_value(&[])? == 1) };
    // fp16 overflows (65504) on a network whose activations run large, where fp32 does not: such
    // a batch's scores are taken again in fp32, and the metrics say so.
    let mut overflowed = false;
    let (deletion, insertion) = {
        let _guard = tch::no_grad_guard();
        let mut score = |batch: &Tensor| -> Result<Tensor> {
            let scores = compute.run(ctx.device, || fp32(batch))?;
            if compute.precision == Precision::Fp32 || finite(&scores)? {
                return Ok(scores);
            }
            overflowed = true;
            fp32(batch)
        };
        let first = |t: &Tensor| t.f_narrow(0, 0, i64::try_from(curve_images).unwrap_or(0));
        faithfulness::curves(&first(&x)?, &first(&maps.normalised)?, &first(&maps.targets)?, &mut score)?
    };
    if overflowed {
        ctx.warn(format!(
            "class scores in {} were not finite on some images (the network's activations overflow it); their deletion and insertion curves were computed in fp32",
            compute.precision.name()
        ));
    }
    let mean = |v: &[f64]| if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 };
    metrics["deletion_auc"] = mean(&deletion).into();
    metrics["insertion_auc"] = mean(&insertion).into();
    metrics["curve_precision"] = if overflowed { "fp32" } else { compute.precision.name() }.into();
    if smoke.is_some() {
        metrics["curve_images"] = curve_images.into();
    }
    Ok(metrics)
}

/// Numbers shown beside the overlays. Raw statistics are reported because per-image normalisation
/// hides changes of scale between rounds.
fn summary(method: Method, layer: &str, maps: &Maps, labels: &Tensor) -> Result<serde_json::Value> {
    let n = maps.raw.size().first().copied().unwrap_or(0);
    let mean = |t: &Tensor| -> Result<f64> {
        if n == 0 {
            Ok(0.0)
        } else {
            Ok(t.f_mean(Kind::Double)?.f_double_value(&[])?)
        }
    };
    let per_image_max =
        if n == 0 { Tensor::zeros([0], (Kind::Float, maps.raw.device())) } else { maps.raw.f_flatten(1, -1)?.f_amax(-1, false)? };
    let zero_maps = per_image_max.f_le(0.0)?.f_sum(Kind::Int64)?.f_int64_value(&[])?;
    let correct = maps.predictions.f_eq_tensor(labels)?.f_sum(Kind::Int64)?.f_int64_value(&[])?;
    let size = maps.raw.size();
    Ok(serde_json::json!({
        "method": method.name(),
        "layer": layer,
        "images": n,
        "map_size": size.get(1..).unwrap_or(&[]),
        "accuracy": correct as f64 / n.max(1) as f64,
        "raw_mean": mean(&maps.raw)?,
        "raw_max_mean": mean(&per_image_max)?,
        "normalised_mean": mean(&maps.normalised)?,
        "zero_maps": zero_maps,
    }))
}

#[cfg(test)]
mod tests;
