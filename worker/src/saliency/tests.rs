//! Saliency on real networks: identities that pin the gradient path (Grad-CAM = CAM before the
//! head, for ResNets and Inception-v3), batch invariance, eval mode, the logit as target, the
//! stage's artifacts, and a smoke run's cut of each loop to N batches.

use super::*;
use crate::checkpoint;
use crate::fixtures::{self, Workspace};
use lthlang::check::Value;
use lthlang::kinds::Category;
use tch::Device;

fn network(architecture: &str, seed: u64) -> Network {
    Network::build(architecture, 5, 8, seed, Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
}

fn inputs(n: i64, size: i64, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::randn([n, 3, size, size], (Kind::Float, Device::Cpu))
}

fn labels(n: i64) -> Tensor {
    Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(5)
}

fn ok<T>(r: Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// CAM of Zhou et al.: ReLU(Σ_k W[c, k] A_k), upsampled, written out directly from the head's
/// weights rather than from any gradient. Not normalised: see [`assert_is_cam`].
fn cam(net: &Network, x: &Tensor, layer: &str, classes: &Tensor, train: bool) -> Tensor {
    let _guard = tch::no_grad_guard();
    let (_, a) = ok(net.forward_with(x, train, layer));
    let w = net.variables()["fc.weight"].index_select(0, classes).to_kind(Kind::Double);
    let map = (a.to_kind(Kind::Double) * w.unsqueeze(-1).unsqueeze(-1)).sum_dim_intlist(1, false, Kind::Double).relu();
    let (_, _, h, w) = x.size4().unwrap_or_default();
    ok(cam::upsample(&map, [h, w]))
}

/// Before global pooling and a linear head α_k = W[c, k]/(h w), so Grad-CAM's raw map is CAM/(h w)
/// and their normalised maps agree (normalisation does not see the factor h w).
fn assert_is_cam(maps: &Maps, reference: &Tensor, positions: f64, context: &str) {
    let scale = reference.abs().max().double_value(&[]);
    let raw = max_difference(&(&maps.raw.to_kind(Kind::Double) * positions), reference) / scale;
    let normalised = max_difference(&maps.normalised, &ok(cam::normalise(reference)));
    assert!(raw < 1e-5 && normalised < 1e-5, "{context}: Grad-CAM and CAM differ by {raw} (raw, relative) and {normalised} (normalised)");
}

fn max_difference(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double)).abs().max().double_value(&[])
}

/// Images whose map is not all zero: a vacuous comparison of blank maps proves nothing.
fn lit(maps: &Tensor) -> i64 {
    maps.flatten(1, -1).amax(-1, false).gt(0.0).sum(Kind::Int64).int64_value(&[])
}

/// Removes about 80% of every prunable weight, as a late ticket would.
fn prune(net: &Network, seed: i64) {
    let _guard = tch::no_grad_guard();
    tch::manual_seed(seed);
    let vars = net.variables();
    for name in net.prunable(true) {
        let mask = vars[&name].rand_like().gt(0.8).to_kind(Kind::Float);
        let _pruned = vars[&name].shallow_clone().f_mul_(&mask).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn assert_gradcam_is_cam(architecture: &str, layer: &str, size: i64, pruned: bool) {
    // Random networks often explain a class with a blank map (all negative before the ReLU);
    // enough images leave several lit whatever the random state.
    assert_gradcam_is_cam_on(architecture, layer, size, pruned, 16);
}

/// The same on `images` random inputs: more for networks whose random maps are often blank.
fn assert_gradcam_is_cam_on(architecture: &str, layer: &str, size: i64, pruned: bool, images: i64) {
    let net = network(architecture, 3);
    if pruned {
        prune(&net, 4);
    }
    let x = inputs(images, size, 5);
    let maps = ok(explain(&net, Method::GradCam, layer, &x, &labels(images), Target::Predicted, 1));
    let reference = cam(&net, &x, layer, &maps.predictions, false);
    let (_, a) = ok(net.forward_with(&x, false, layer));
    let positions = (a.size()[2] * a.size()[3]) as f64;
    assert_is_cam(&maps, &reference, positions, &format!("{architecture} {layer} pruned={pruned}"));
    assert!(lit(&reference) >= 3, "{architecture}: too few non-blank maps to compare");
}

#[test]
fn saliency_gradcam_equals_cam_for_resnet_tiny_layer3() {
    assert_gradcam_is_cam("resnet_tiny", "layer3", 32, false);
    assert_gradcam_is_cam("resnet_tiny", "layer3.0", 32, true);
}

#[test]
fn saliency_gradcam_equals_cam_for_resnet18_layer4() {
    assert_gradcam_is_cam("resnet18", "layer4", 64, false);
    assert_gradcam_is_cam("resnet18", "layer4.1", 64, true);
}

#[test]
fn saliency_gradcam_equals_cam_for_inception_v3_mixed_7c() {
    // 107 px is the smallest size at which Mixed_7c keeps a 2×2 grid, so the maps are not flat.
    // A random Inception's class maps are often blank after the ReLU: 24 images leave enough lit.
    assert_gradcam_is_cam_on("inception_v3", "Mixed_7c", 107, false, 24);
    assert_gradcam_is_cam_on("inception_v3", "Mixed_7c", 107, true, 24);
}

/// The methods whose raw map is proportional to the gradient's scale (or ignores it): scaling the
/// head by s scales every gradient by s, so their normalised maps must not move. Grad-CAM++ and
/// Score-CAM are left out on purpose: their formulas (g²/(2g² + ΣA g³), a softmax of logits) are
/// not scale-free, in pytorch-grad-cam as here.
const SCALE_FREE: [Method; 5] = [Method::GradCam, Method::HiResCam, Method::LayerCam, Method::XGradCam, Method::EigenCam];

#[test]
fn saliency_normalised_maps_do_not_depend_on_the_head_scale() {
    let net = network("resnet_tiny", 11);
    let x = inputs(12, 32, 7);
    let y = labels(12);
    for layer in ["layer2", "layer3"] {
        let before: Vec<Maps> = SCALE_FREE.iter().map(|m| ok(explain(&net, *m, layer, &x, &y, Target::Predicted, 1))).collect();
        let vars = net.variables();
        tch::no_grad(|| {
            for name in ["fc.weight", "fc.bias"] {
                let _ = vars[name].shallow_clone().f_mul_scalar_(1e-5).unwrap_or_else(|e| panic!("{e}"));
            }
        });
        for (method, old) in SCALE_FREE.iter().zip(&before) {
            let new = ok(explain(&net, *method, layer, &x, &y, Target::Predicted, 1));
            assert!(new.predictions.equal(&old.predictions), "{}: the scaled head should predict the same", method.name());
            assert!(lit(&old.raw) >= 3, "{} at {layer}: too few non-blank maps to compare", method.name());
            let scale = new.raw.abs().max().double_value(&[]) / old.raw.abs().max().double_value(&[]);
            let expected = if *method == Method::EigenCam { 1.0 } else { 1e-5 };
            assert!((scale / expected - 1.0).abs() < 1e-3, "{}: raw maps scaled by {scale}, not {expected}", method.name());
            let moved = max_difference(&new.normalised, &old.normalised);
            // Peaks of each normalised map: 1 for every lit map, whatever the scale.
            let peaks = new.normalised.flatten(1, -1).amax(-1, false);
            let lit_peaks = peaks.masked_select(&new.raw.flatten(1, -1).amax(-1, false).gt(0.0));
            let (low, high) = (lit_peaks.min().double_value(&[]), lit_peaks.max().double_value(&[]));
            // What (x − min)/(max − min + 1e-7), the former normalisation, gives on the scaled maps.
            let range = new.raw.to_kind(Kind::Double).flatten(1, -1);
            let range = range.amax(-1, false) - range.amin(-1, false);
            let lit_range = range.masked_select(&range.gt(0.0));
            let old_peaks = &lit_range / (&lit_range + cam::EPSILON);
            eprintln!(
                "{} at {layer}: normalised maps moved by {moved:.2e}; peaks {low}..{high}; with ε = 1e-7 they would peak at {:.3}..{:.3}",
                method.name(),
                old_peaks.min().double_value(&[]),
                old_peaks.max().double_value(&[]),
            );
            assert!(moved < 1e-5, "{} at {layer}: normalised maps moved by {moved} when the head was scaled", method.name());
            assert!((low - 1.0).abs() < 1e-6 && (high - 1.0).abs() < 1e-6, "{}: peaks {low}..{high}", method.name());
        }
        tch::no_grad(|| {
            for name in ["fc.weight", "fc.bias"] {
                let _ = vars[name].shallow_clone().f_mul_scalar_(1e5).unwrap_or_else(|e| panic!("{e}"));
            }
        });
    }
}

#[test]
fn saliency_every_method_is_batch_invariant() {
    let net = network("resnet_tiny", 4);
    let x = inputs(8, 16, 9);
    let y = labels(8);
    for method in Method::ALL {
        let together = ok(explain(&net, method, "layer2", &x, &y, Target::Predicted, 8));
        let alone = ok(explain(&net, method, "layer2", &x.narrow(0, 3, 1), &y.narrow(0, 3, 1), Target::Predicted, 8));
        let normalised = max_difference(&together.normalised.narrow(0, 3, 1), &alone.normalised);
        let scale = alone.raw.abs().max().double_value(&[]).max(1e-12);
        let raw = max_difference(&together.raw.narrow(0, 3, 1), &alone.raw) / scale;
        assert!(normalised < 1e-5 && raw < 1e-5, "{}: alone and in a batch differ by {normalised} (raw {raw})", method.name());
        assert_eq!(together.targets.int64_value(&[3]), alone.targets.int64_value(&[0]));
    }
}

#[test]
fn saliency_uses_the_eval_mode_network_and_leaves_it_unchanged() {
    let net = network("resnet_tiny", 6);
    {
        // Running statistics far from any batch's own, so train and eval mode disagree.
        let _guard = tch::no_grad_guard();
        tch::manual_seed(1);
        for (name, v) in net.variables() {
            if name.ends_with("running_mean") {
                v.shallow_clone().copy_(&(v.randn_like() * 0.5));
            } else if name.ends_with("running_var") {
                v.shallow_clone().copy_(&(v.rand_like() + 0.5));
            }
        }
    }
    let before = checkpoint::snapshot(&net.variables());
    let x = inputs(6, 32, 2);
    let maps = ok(explain(&net, Method::GradCam, "layer3", &x, &labels(6), Target::Predicted, 1));
    for (name, value) in net.variables() {
        assert!(value.equal(&before[&name]), "{name} changed while explaining");
    }
    let eval = cam(&net, &x, "layer3", &maps.predictions, false);
    let train = cam(&net, &x, "layer3", &maps.predictions, true);
    assert_is_cam(&maps, &eval, 64.0, "eval mode");
    let train_normalised = ok(cam::normalise(&(train / 64.0)));
    assert!(max_difference(&maps.normalised, &train_normalised) > 1e-2, "the train-mode map should differ, or this test shows nothing");
}

#[test]
fn saliency_differentiates_the_logit_not_the_loss() {
    // Before global pooling and the head, ∂y_c/∂A_kij = W[c, k]/(h w) for every position; the
    // cross-entropy loss would give (softmax − one-hot)·W/(h w) instead.
    let net = network("resnet_tiny", 8);
    let x = inputs(4, 32, 3);
    let pass = ok(gradients(&net, &x, "layer3", &labels(4), Target::Predicted));
    let w = net.variables()["fc.weight"].shallow_clone();
    let expected = (w.index_select(0, &pass.targets) / 64.0).unsqueeze(-1).unsqueeze(-1).expand([4, 32, 8, 8], false);
    assert!(max_difference(&pass.gradient, &expected) < 1e-7);
    let one_hot = pass.targets.one_hot(5).to_kind(Kind::Float);
    let from_loss = ((pass.logits.softmax(-1, Kind::Float) - one_hot).matmul(&w) / 64.0).unsqueeze(-1).unsqueeze(-1);
    assert!(max_difference(&pass.gradient, &from_loss.expand([4, 32, 8, 8], false)) > 1e-4);
}

#[test]
fn saliency_target_label_explains_the_true_class() {
    let net = network("resnet_tiny", 9);
    let x = inputs(5, 32, 4);
    let predicted = ok(explain(&net, Method::GradCam, "layer3", &x, &labels(5), Target::Predicted, 1));
    // Labels that are never the prediction, so the two targets cannot coincide.
    let other = (&predicted.predictions + 1).remainder(5);
    let maps = ok(explain(&net, Method::GradCam, "layer3", &x, &other, Target::Label, 1));
    assert!(maps.targets.equal(&other));
    assert!(maps.predictions.equal(&predicted.predictions));
    assert_is_cam(&maps, &cam(&net, &x, "layer3", &other, false), 64.0, "target = label");
}

#[test]
fn saliency_rejects_a_layer_without_spatial_extent() {
    let net = network("resnet_tiny", 1);
    let x = inputs(1, 16, 1);
    assert!(explain(&net, Method::GradCam, "fc", &x, &labels(1), Target::Predicted, 1).is_err());
    assert!(explain(&net, Method::EigenCam, "nonexistent", &x, &labels(1), Target::Predicted, 1).is_err());
}

#[test]
fn saliency_stage_writes_maps_and_overlays_of_the_chosen_images() {
    let fx = Workspace::with_trained_network(1);
    let images = Value::Sample { dataset: "data".into(), split: "test".into(), count: 4, seed: 2 };
    let rows = crate::selection::Selection { dataset: "data".into(), split: "test".into(), sample: Some((4, 2)) }.rows(10);
    for (method, extra) in [("gradcam", None), ("scorecam", Some(("batch", Value::Int(5))))] {
        let mut fields = vec![
            ("of", Value::Stage("trained".into())),
            ("layer", Value::Str("layer3".into())),
            ("images", images.clone()),
            ("target", Value::Word("predicted".into())),
            ("alpha", Value::Float(0.5)),
        ];
        fields.extend(extra);
        let request = fx.request(method, Category::Explain, method, &fields);
        let metrics = ok(fixtures::run_request(&request));
        assert_eq!(metrics["images"], 4);
        assert_eq!(metrics["method"], method);
        let stored = ok(checkpoint::load(&request.output.join(MAPS_FILE)));
        assert_eq!(stored["raw"].size(), vec![4, 16, 16]);
        assert_eq!(stored["normalised"].size(), vec![4, 16, 16]);
        assert_eq!(Vec::<i64>::try_from(&stored["indices"]).unwrap_or_default(), rows);
        // The fixture's labels are the row number modulo 3.
        let want_labels: Vec<i64> = rows.iter().map(|r| r % 3).collect();
        assert_eq!(Vec::<i64>::try_from(&stored["labels"]).unwrap_or_default(), want_labels);
        for key in ["targets", "predictions"] {
            assert_eq!(stored[key].size(), vec![4]);
        }
        // The stage's maps are those `explain` gives for the same images and network.
        let data = ok(crate::data::Dataset::load(&fx.dir("data"), Device::Cpu, crate::data::Normalisation::FIXED));
        let (x, y) = ok(ok(data.split("test")).batch(&Tensor::from_slice(&rows)));
        let direct = ok(explain(
            &fx.network(),
            ok(Method::parse(method).ok_or_else(|| StageError::new("method"))),
            "layer3",
            &x,
            &y,
            Target::Predicted,
            5,
        ));
        assert!(max_difference(&direct.raw, &stored["raw"]) < 1e-6);
        for row in &rows {
            for dir in [IMAGES_DIR, HEATMAPS_DIR] {
                let png = request.output.join(dir).join(format!("{row}.png"));
                let decoded = image::open(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
                assert_eq!((decoded.width(), decoded.height()), (128, 128));
            }
        }
    }
}

#[test]
fn saliency_stage_in_a_smoke_run_cuts_score_cam_and_the_curves_to_n_batches() {
    let fx = Workspace::with_trained_network(1);
    let images = Value::Sample { dataset: "data".into(), split: "test".into(), count: 4, seed: 2 };
    let rows = crate::selection::Selection { dataset: "data".into(), split: "test".into(), sample: Some((4, 2)) }.rows(10);
    let data = ok(crate::data::Dataset::load(&fx.dir("data"), Device::Cpu, crate::data::Normalisation::FIXED));
    let (x, y) = ok(ok(data.split("test")).batch(&Tensor::from_slice(&rows)));
    for (method, smoke) in [("gradcam", 1), ("scorecam", 1), ("scorecam", 2)] {
        let fields = vec![
            ("of", Value::Stage("trained".into())),
            ("layer", Value::Str("layer3".into())),
            ("images", images.clone()),
            ("target", Value::Word("predicted".into())),
            ("alpha", Value::Float(0.5)),
            ("batch", Value::Int(5)),
        ];
        let mut request = fx.request(&format!("{method}-{smoke}"), Category::Explain, method, &fields);
        request.smoke = Some(smoke);
        let metrics = ok(fixtures::run_request(&request));
        // Four images are one pass of maps, so all four are explained; the curves, one batch of
        // masked inputs per image, are cut to the first `smoke` images.
        assert_eq!(metrics["images"], 4);
        assert_eq!(metrics["curve_images"], smoke);
        let stored = ok(checkpoint::load(&request.output.join(MAPS_FILE)));
        let method = ok(Method::parse(method).ok_or_else(|| StageError::new("method")));
        let cut = usize::try_from(smoke).ok();
        let direct = ok(explain_reporting(&fx.network(), method, "layer3", &x, &y, Target::Predicted, 5, cut, &crate::no_progress));
        assert!(max_difference(&direct.raw, &stored["raw"]) < 1e-6);
        let whole = ok(explain(&fx.network(), method, "layer3", &x, &y, Target::Predicted, 5));
        // Grad-CAM has no inner loop to cut; Score-CAM scored only `smoke` batches of 5 masks.
        let differs = max_difference(&whole.raw, &stored["raw"]) > 1e-6;
        assert_eq!(differs, method == Method::ScoreCam, "{method:?} smoke {smoke}");
    }
}
