//! The map of each method of the Grad-CAM family (science.md, "Grad-CAM and its family") as a
//! function of the layer's activations A and the gradients G = ∂y_c/∂A, both `[B, K, h, w]`, and
//! the steps every method shares: bilinear upsampling and per-image normalisation.
//!
//! Maps are computed in double precision: Grad-CAM and CAM must agree to 1e-5 after
//! normalisation, and a float sum over 2048 channels can lose more than that where a map is flat.
//! Every method ends with a ReLU, so a map shows only evidence for the target class.

use crate::{Result, StageError};
use tch::{Kind, Tensor};

/// Guards the divisions of Grad-CAM++ and XGrad-CAM against zero. The normalisation takes no ε:
/// one in raw units would make a normalised map depend on the raw map's scale.
pub const EPSILON: f64 = 1e-7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    GradCam,
    GradCamPlusPlus,
    HiResCam,
    LayerCam,
    XGradCam,
    ScoreCam,
    EigenCam,
}

impl Method {
    pub const ALL: [Method; 7] = [
        Method::GradCam,
        Method::GradCamPlusPlus,
        Method::HiResCam,
        Method::LayerCam,
        Method::XGradCam,
        Method::ScoreCam,
        Method::EigenCam,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::GradCam => "gradcam",
            Method::GradCamPlusPlus => "gradcam_pp",
            Method::HiResCam => "hirescam",
            Method::LayerCam => "layercam",
            Method::XGradCam => "xgradcam",
            Method::ScoreCam => "scorecam",
            Method::EigenCam => "eigencam",
        }
    }

    pub fn parse(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether the map is a function of (A, G); Score-CAM and EigenCAM need no gradient.
    pub fn uses_gradients(self) -> bool {
        !matches!(self, Method::ScoreCam | Method::EigenCam)
    }
}

fn double(t: &Tensor) -> Result<Tensor> {
    Ok(t.f_to_kind(Kind::Double)?)
}

/// ReLU(Σ_k w_k A_k) for channel weights `w` `[B, K]`: `[B, h, w]`.
pub fn weighted_sum(activations: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let w = double(weights)?.f_unsqueeze(-1)?.f_unsqueeze(-1)?;
    Ok(double(activations)?.f_mul(&w)?.f_sum_dim_intlist(1, false, Kind::Double)?.f_relu()?)
}

/// The low-resolution map `[B, h, w]` of a gradient method.
pub fn from_gradients(method: Method, activations: &Tensor, gradients: &Tensor) -> Result<Tensor> {
    if activations.size() != gradients.size() || activations.dim() != 4 {
        return Err(StageError::new(format!(
            "activations {:?} and gradients {:?} should be equal [B, K, h, w] shapes",
            activations.size(),
            gradients.size()
        )));
    }
    let a = double(activations)?;
    let g = double(gradients)?;
    let spatial_sum = |t: &Tensor| t.f_sum_dim_intlist(&[2i64, 3][..], false, Kind::Double);
    match method {
        // α_k = mean over positions of G_k.
        Method::GradCam => weighted_sum(&a, &g.f_mean_dim(&[2i64, 3][..], false, Kind::Double)?),
        // α_kij = g² / (2g² + Σ_ab A_kab · g³ + ε); weight_k = Σ_ij ReLU(g_kij) α_kij. A zero
        // gradient gives α = 0 through the ε, so no special case is needed.
        Method::GradCamPlusPlus => {
            let g2 = g.f_mul(&g)?;
            let g3 = g2.f_mul(&g)?;
            let total = a.f_sum_dim_intlist(&[2i64, 3][..], true, Kind::Double)?;
            let alpha = g2.f_div(&g2.f_mul_scalar(2.0)?.f_add(&total.f_mul(&g3)?)?.f_add_scalar(EPSILON)?)?;
            weighted_sum(&a, &spatial_sum(&g.f_relu()?.f_mul(&alpha)?)?)
        }
        // Σ_k G_k ⊙ A_k: the gradient kept per position rather than averaged.
        Method::HiResCam => Ok(g.f_mul(&a)?.f_sum_dim_intlist(1, false, Kind::Double)?.f_relu()?),
        // Σ_k ReLU(G_k) ⊙ A_k.
        Method::LayerCam => Ok(g.f_relu()?.f_mul(&a)?.f_sum_dim_intlist(1, false, Kind::Double)?.f_relu()?),
        // weight_k = Σ_ij G_kij A_kij / (Σ_ij A_kij + ε).
        Method::XGradCam => {
            let weights = spatial_sum(&g.f_mul(&a)?)?.f_div(&spatial_sum(&a)?.f_add_scalar(EPSILON)?)?;
            weighted_sum(&a, &weights)
        }
        Method::ScoreCam | Method::EigenCam => Err(StageError::new(format!("{} is not computed from gradients", method.name()))),
    }
}

/// EigenCAM: the activations of each image, as hw points in K dimensions, centred and projected
/// on their first principal component, then ReLU. The component's sign is arbitrary; it is chosen
/// so that its coordinates sum to a positive number, which is the same as making the map
/// correlate positively with the channel-summed activation (cov(p, Σ_k A_k) = λ₁ Σ_k v_k).
pub fn eigen(activations: &Tensor) -> Result<Tensor> {
    let (b, k, h, w) = activations.size4()?;
    let points = double(activations)?.f_reshape([b, k, h * w])?.f_transpose(1, 2)?;
    let centred = points.f_sub(&points.f_mean_dim(1, true, Kind::Double)?)?;
    let (_, _, v) = centred.f_svd(true, true)?;
    let first = v.f_select(2, 0)?;
    // sign(0) is 0; such a component keeps the sign the decomposition gave.
    let sign = first.f_sum_dim_intlist(1, true, Kind::Double)?.f_ge(0.0)?.f_to_kind(Kind::Double)?.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?;
    let projection = centred.f_matmul(&first.f_mul(&sign)?.f_unsqueeze(2)?)?;
    Ok(projection.f_reshape([b, h, w])?.f_relu()?)
}

/// Maps `[B, h, w]` (or any `[..., h, w]`) resized to `size` bilinearly, align_corners = false.
pub fn upsample(maps: &Tensor, size: [i64; 2]) -> Result<Tensor> {
    let shape = maps.size();
    let lead = &shape[..shape.len().saturating_sub(2)];
    let flat = maps.f_reshape([-1, 1, shape[shape.len() - 2], shape[shape.len() - 1]])?;
    let up = flat.f_upsample_bilinear2d(size, false, None::<f64>, None::<f64>)?;
    let mut out_shape = lead.to_vec();
    out_shape.extend(size);
    Ok(up.f_reshape(out_shape.as_slice())?)
}

/// Each map of `[..., H, W]` on its own to [0, 1]: (x − min) / (max − min), min and max over that
/// map's H × W values only, and a constant map gives zeros. No ε is added to the range, so the
/// result does not depend on the map's scale: a head scaled by 1e-5 predicts the same and gives
/// the same normalised maps (pytorch-grad-cam's double normalisation reaches the same result;
/// an ε in raw units left such maps peaking well below 1).
pub fn normalise(maps: &Tensor) -> Result<Tensor> {
    let flat = maps.f_flatten(-2, -1)?;
    let low = flat.f_amin(-1, true)?.f_unsqueeze(-1)?;
    let high = flat.f_amax(-1, true)?.f_unsqueeze(-1)?;
    let range = high.f_sub(&low)?;
    // A constant map has x − min = 0 everywhere; dividing it by 1 instead of 0 gives its zeros.
    let divisor = range.f_add(&range.f_eq(0.0)?.f_to_kind(range.kind())?)?;
    Ok(maps.f_sub(&low)?.f_div(&divisor)?)
}

/// Score-CAM for one image: each channel of `activations` `[K, h, w]` upsampled to the input
/// size and normalised to [0, 1] is a mask; `score` maps a batch of masked inputs `[m, C, H, W]`
/// to logits `[m, classes]`; channel weights are the softmax over channels of the target's logit.
/// Masks go through `score` `batch` at a time. `batches`, when given, stops after that many
/// batches (a smoke run's cut): only the first `batches × batch` channels are scored, and the map
/// is their weighted sum alone. Returns the low-resolution map `[h, w]`.
pub fn score_cam(
    activations: &Tensor,
    input: &Tensor,
    target: i64,
    batch: i64,
    batches: Option<usize>,
    score: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let (channels, _, _) = activations.size3()?;
    let k = batches.map_or(channels, |b| channels.min(i64::try_from(b).unwrap_or(i64::MAX).saturating_mul(batch)));
    let (_, height, width) = input.size3()?;
    let masks = normalise(&upsample(&double(activations)?, [height, width])?)?.f_to_kind(input.kind())?;
    let mut scores = Vec::new();
    let mut start = 0;
    while start < k {
        let count = batch.min(k - start);
        let masked = input.f_unsqueeze(0)?.f_mul(&masks.f_narrow(0, start, count)?.f_unsqueeze(1)?)?;
        let logits = score(&masked)?;
        scores.push(logits.f_select(1, target)?.f_to_kind(Kind::Double)?);
        start += count;
    }
    let weights = Tensor::f_cat(&scores, 0)?.f_softmax(0, Kind::Double)?;
    Ok(weighted_sum(&activations.f_narrow(0, 0, k)?.f_unsqueeze(0)?, &weights.f_unsqueeze(0)?)?.f_squeeze_dim(0)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn t(values: &[f64], shape: &[i64]) -> Tensor {
        Tensor::from_slice(values).reshape(shape)
    }

    /// Two channels on a 2 × 2 grid, worked by hand in each test below.
    /// A₁ = [[1, 0], [2, 1]], A₂ = [[0, 3], [1, 0]]; G₁ = [[1, 1], [-1, 3]], G₂ = [[-2, 0], [1, -3]].
    fn case() -> (Tensor, Tensor) {
        (t(&[1., 0., 2., 1., 0., 3., 1., 0.], &[1, 2, 2, 2]), t(&[1., 1., -1., 3., -2., 0., 1., -3.], &[1, 2, 2, 2]))
    }

    fn map(method: Method) -> Vec<f64> {
        let (a, g) = case();
        Vec::<f64>::try_from(from_gradients(method, &a, &g).unwrap_or_else(|e| panic!("{e}")).flatten(0, -1)).unwrap_or_default()
    }

    fn assert_near(got: &[f64], want: &[f64], tolerance: f64) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= tolerance, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn saliency_gradcam_multiplies_activations_by_pooled_gradients_then_relu() {
        // α₁ = (1 + 1 − 1 + 3)/4 = 1, α₂ = (−2 + 0 + 1 − 3)/4 = −1; A₁ − A₂ = [[1, −3], [1, 1]].
        // Adding α to A instead would give [[0, 2], [2, 0]] before the ReLU; no ReLU would keep −3.
        assert_near(&map(Method::GradCam), &[1., 0., 1., 1.], 1e-12);
    }

    #[test]
    fn saliency_gradcam_pp_by_hand() {
        // ΣA₁ = ΣA₂ = 4. Channel 1: g = 1 → α = 1/(2 + 4) = 1/6 (twice), g = 3 → 9/(18 + 108) = 1/14,
        // g = −1 is cut by ReLU(g): weight 1/6 + 1/6 + 3/14 = 23/42. Channel 2: only g = 1 counts,
        // weight 1/6 = 7/42. Map = (23 A₁ + 7 A₂)/42.
        let want = [23.0 / 42.0, 21.0 / 42.0, 53.0 / 42.0, 23.0 / 42.0];
        assert_near(&map(Method::GradCamPlusPlus), &want, 1e-6);
    }

    #[test]
    fn saliency_hirescam_by_hand() {
        // G₁A₁ = [[1, 0], [−2, 3]], G₂A₂ = [[0, 0], [1, 0]]; sum [[1, 0], [−1, 3]].
        assert_near(&map(Method::HiResCam), &[1., 0., 0., 3.], 1e-12);
    }

    #[test]
    fn saliency_layercam_by_hand() {
        // ReLU(G₁)A₁ = [[1, 0], [0, 3]], ReLU(G₂)A₂ = [[0, 0], [1, 0]].
        assert_near(&map(Method::LayerCam), &[1., 0., 1., 3.], 1e-12);
    }

    #[test]
    fn saliency_xgradcam_by_hand() {
        // w₁ = ΣG₁A₁/ΣA₁ = 2/4, w₂ = ΣG₂A₂/ΣA₂ = 1/4; map = A₁/2 + A₂/4.
        assert_near(&map(Method::XGradCam), &[0.5, 0.75, 1.25, 0.5], 1e-6);
    }

    #[test]
    fn saliency_eigencam_by_hand() {
        // Points (A₁, A₂) per position: (1, 0), (0, 3), (2, 1), (1, 0); mean (1, 1); centred
        // (0, −1), (−1, 2), (1, 0), (0, −1). XᵀX = [[2, −2], [−2, 6]], largest eigenvalue 4 + 2√2,
        // eigenvector ∝ (1, −(1 + √2)); the sign rule makes it (−1, 1 + √2)/√(4 + 2√2).
        // Projections: −(1 + √2)/n, (3 + 2√2)/n, −1/n, −(1 + √2)/n; after ReLU only the second stays.
        let (a, _) = case();
        let got = Vec::<f64>::try_from(eigen(&a).unwrap_or_else(|e| panic!("{e}")).flatten(0, -1)).unwrap_or_default();
        let n = (4.0 + 2.0 * 2f64.sqrt()).sqrt();
        assert_near(&got, &[0.0, (3.0 + 2.0 * 2f64.sqrt()) / n, 0.0, 0.0], 1e-9);
    }

    #[test]
    fn saliency_eigencam_sign_follows_the_summed_activation() {
        // One channel that is twice another: the component lies along (1, 2)/√5 with positive
        // sum, so the map is largest where the activation is.
        let a = t(&[0., 1., 4., 0., 0., 2., 8., 0.], &[1, 2, 2, 2]);
        let got = Vec::<f64>::try_from(eigen(&a).unwrap_or_else(|e| panic!("{e}")).flatten(0, -1)).unwrap_or_default();
        // Centred points (−1.25, −2.5), (−0.25, −0.5), (2.75, 5.5), (−1.25, −2.5); projections ×(1,2)/√5.
        let s5 = 5f64.sqrt();
        assert_near(&got, &[0.0, 0.0, 2.75 * 5.0 / s5, 0.0], 1e-9);
    }

    #[test]
    fn saliency_scorecam_by_hand_in_any_batch() {
        // The input is all ones, the layer has the input's size (upsampling is the identity) and
        // the "network" scores a masked input by the sum of its pixels. Masks: A₁/2 (sum 2) and
        // A₂/3 (sum 4/3); weights softmax(2, 4/3); map = w₁A₁ + w₂A₂.
        let (a, _) = case();
        let a = a.squeeze_dim(0);
        let input = Tensor::ones([1, 2, 2], (Kind::Double, Device::Cpu));
        let (e1, e2) = (2f64.exp(), (4.0f64 / 3.0).exp());
        let (w1, w2) = (e1 / (e1 + e2), e2 / (e1 + e2));
        let want: Vec<f64> = [1., 0., 2., 1.].iter().zip([0., 3., 1., 0.]).map(|(x, y)| w1 * x + w2 * y).collect();
        for batch in [1, 2, 5] {
            let mut calls = 0;
            let mut score = |m: &Tensor| -> Result<Tensor> {
                calls += 1;
                Ok(m.f_sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Double)?.f_unsqueeze(1)?)
            };
            let got = score_cam(&a, &input, 0, batch, None, &mut score).unwrap_or_else(|e| panic!("{e}"));
            assert_near(&Vec::<f64>::try_from(got.flatten(0, -1)).unwrap_or_default(), &want, 1e-6);
            assert_eq!(calls, if batch == 1 { 2 } else { 1 });
        }
        // Cut to one batch of one mask, only A₁ is scored: its weight is softmax(2) = 1.
        let mut calls = 0;
        let mut score = |m: &Tensor| -> Result<Tensor> {
            calls += 1;
            Ok(m.f_sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Double)?.f_unsqueeze(1)?)
        };
        let got = score_cam(&a, &input, 0, 1, Some(1), &mut score).unwrap_or_else(|e| panic!("{e}"));
        assert_near(&Vec::<f64>::try_from(got.flatten(0, -1)).unwrap_or_default(), &[1., 0., 2., 1.], 1e-12);
        assert_eq!(calls, 1);
    }

    #[test]
    fn saliency_normalises_each_image_on_its_own() {
        // Two images at different scales: each reaches exactly 0 and 1. Normalising per column or
        // over the batch would leave the second image's values below 1/10.
        let maps = t(&[0., 1., 2., 4., 0., 10., 20., 40.], &[2, 2, 2]);
        let got = Vec::<f64>::try_from(normalise(&maps).unwrap_or_else(|e| panic!("{e}")).flatten(0, -1)).unwrap_or_default();
        let want = [0., 0.25, 0.5, 1., 0., 0.25, 0.5, 1.];
        assert_near(&got, &want, 1e-15);
        // A flat map stays at 0 rather than dividing by zero.
        let flat = normalise(&Tensor::full([1, 2, 2], 3.0, (Kind::Double, Device::Cpu))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(flat.abs().max().double_value(&[]), 0.0);
        // A faint map (range 4e-9, far below the old ε of 1e-7) still spans exactly 0 to 1.
        let faint = normalise(&(maps.narrow(0, 0, 1) * 1e-9)).unwrap_or_else(|e| panic!("{e}"));
        assert_near(&Vec::<f64>::try_from(faint.flatten(0, -1)).unwrap_or_default(), &want[..4], 1e-12);
    }

    #[test]
    fn saliency_upsample_is_bilinear_without_corner_alignment() {
        // [[0, 1], [2, 3]] to 4 × 4 with half-pixel centres: source coordinate (i + 0.5)/2 − 0.5,
        // clamped at 0; the first row is 0, 0.25, 0.75, 1.
        let up = upsample(&t(&[0., 1., 2., 3.], &[1, 2, 2]), [4, 4]).unwrap_or_else(|e| panic!("{e}"));
        let got = Vec::<f64>::try_from(up.flatten(0, -1)).unwrap_or_default();
        let row = |offset: f64| [offset, offset + 0.25, offset + 0.75, offset + 1.0];
        let want: Vec<f64> = [0.0, 0.5, 1.5, 2.0].iter().flat_map(|o| row(*o)).collect();
        assert_near(&got, &want, 1e-12);
    }
}
