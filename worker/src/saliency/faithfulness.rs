//! Deletion and insertion curves (Petsiuk et al. 2018): pixels are removed from the image (or
//! added to a blank one) most salient first, in `STEPS` equal steps, and the target class's
//! softmax probability is read after each step; each curve's area over [0, 1] (trapezoid rule)
//! is the score. A faithful map makes deletion fall fast (small area) and insertion rise fast
//! (large area). Removed pixels take the value 0 in the network's input scale, the dataset's
//! middle grey, in all three channels. Pixels of equal saliency are removed together
//! ([`tie_closed_count`]), each point at the share of pixels actually removed, so a curve never
//! depends on the order of tied pixels (the zeros of a sparse post-ReLU map above all).

use super::super::Result;
use lthlang::metrics::faithfulness::{curve_auc, tie_closed_count};
use tch::{Kind, Tensor};

/// Steps per curve; each asks for 1/STEPS more of the pixels (fewer when that would split a tie).
pub const STEPS: i64 = 10;

/// Areas of the deletion and insertion curves of each image: `x` `[N, 3, H, W]` in the input
/// scale, `maps` `[N, H, W]`, `targets` `[N]`. `score` maps a batch of inputs to class scores
/// (probabilities) `[B, K]`.
pub fn curves(
    x: &Tensor,
    maps: &Tensor,
    targets: &Tensor,
    score: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (n, channels, h, w) = x.size4()?;
    let pixels = h * w;
    let (mut deletion, mut insertion) = (Vec::new(), Vec::new());
    for i in 0..n {
        let image = x.f_get(i)?;
        // Rank of every pixel by saliency, most salient first. Within a tied group the order is
        // by position, but steps only ever cut between groups, so it never shows.
        let map = maps.f_get(i)?.f_flatten(0, -1)?;
        let order = map.f_argsort_stable(true, 0, true)?;
        let descending = Vec::<f64>::try_from(map.f_index_select(0, &order)?.f_to_kind(Kind::Double)?.f_to_device(tch::Device::Cpu)?)?;
        let mut rank = Tensor::f_zeros([pixels], (Kind::Int64, x.device()))?;
        let _ = rank.f_index_put_(&[Some(order.shallow_clone())], &Tensor::f_arange(pixels, (Kind::Int64, x.device()))?, false)?;
        let mut deleted = Vec::new();
        let mut inserted = Vec::new();
        let mut fractions = Vec::new();
        for step in 0..=STEPS {
            let wanted = usize::try_from(pixels * step / STEPS).unwrap_or(0);
            let count = tie_closed_count(&descending, wanted);
            fractions.push(count as f64 / descending.len().max(1) as f64);
            let count = i64::try_from(count).unwrap_or(pixels);
            // 1 where the pixel is among the `count` most salient.
            let top = rank.f_lt(count)?.f_to_kind(x.kind())?.f_view([1, h, w])?;
            deleted.push(image.f_mul(&top.f_neg()?.f_add_scalar(1.0)?)?);
            inserted.push(image.f_mul(&top)?);
        }
        let batch = Tensor::f_stack(&[Tensor::f_stack(&deleted, 0)?, Tensor::f_stack(&inserted, 0)?], 0)?.f_view([
            2 * (STEPS + 1),
            channels,
            h,
            w,
        ])?;
        let probabilities = score(&batch)?.f_select(1, targets.int64_value(&[i]))?.f_to_kind(Kind::Double)?;
        let values = Vec::<f64>::try_from(&probabilities)?;
        let curve = |part: &[f64]| fractions.iter().copied().zip(part.iter().copied()).collect::<Vec<_>>();
        let steps = usize::try_from(STEPS + 1).unwrap_or(0);
        deletion.push(curve_auc(&curve(&values[..steps])).map_err(|e| super::super::StageError::new(e.to_string()))?);
        insertion.push(curve_auc(&curve(&values[steps..])).map_err(|e| super::super::StageError::new(e.to_string()))?);
    }
    Ok((deletion, insertion))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn curves_of_a_score_that_sums_the_pixels_match_the_hand_worked_areas() {
        // One 2×2 single-valued image whose map equals its values 4, 3, 2, 1 (sum 10), and a
        // "probability" that is the share of the original sum still present. With STEPS = 10
        // and 4 pixels, step s removes ⌊4s/10⌋ pixels: 0,0,0,1,1,2,2,2,3,3,4, plotted at the
        // share removed (0, ¼, ½, ¾, 1), where the remaining share is 1, .6, .3, .1, 0.
        // Deletion: ¼((1 + .6) + (.6 + .3) + (.3 + .1) + (.1 + 0))/2 = 0.375; insertion 0.625.
        let (deletion, insertion) = areas([4.0, 3.0, 2.0, 1.0], [4.0, 3.0, 2.0, 1.0]);
        assert!((deletion - 0.375).abs() < 1e-6 && (insertion - 0.625).abs() < 1e-6, "{deletion} {insertion}");
        let _ = Device::Cpu;
    }

    fn areas(image: [f32; 4], map: [f32; 4]) -> (f64, f64) {
        let x = Tensor::from_slice(&image).view([1, 1, 2, 2]);
        let maps = Tensor::from_slice(&map).view([1, 2, 2]);
        let mut score =
            |batch: &Tensor| -> Result<Tensor> { Ok((batch.sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Float) / 10.0).view([-1, 1])) };
        let (deletion, insertion) = curves(&x, &maps, &Tensor::from_slice(&[0i64]), &mut score).unwrap();
        (deletion[0], insertion[0])
    }

    #[test]
    fn tied_pixels_are_deleted_and_inserted_together_by_hand() {
        // Image 1, 2, 4, 3 (sum 10) with saliency 4, 3, 3, 1: pixels 1 and 2 tie. With 10 steps
        // of 4 pixels the wanted counts are 0,0,0,1,1,2,2,2,3,3,4; 2 would split the tie, so the
        // counts removed are 0,0,0,1,1,1,1,1,3,3,4 at shares 0, ¼, ¾, 1. Remaining sums: 1,
        // 0.9 (pixel 0 gone), 0.3 (pixels 0-2 gone), 0. Deletion area
        // ¼(1 + 0.9)/2 + ½(0.9 + 0.3)/2 + ¼(0.3 + 0)/2 = 0.575; insertion 1 − 0.575 = 0.425.
        // Breaking the tie by index, as before, removed pixel 1 (value 2) first, and the reversed
        // image's pixel of value 4 first: the two orders of one image gave different areas.
        let (deletion, insertion) = areas([1.0, 2.0, 4.0, 3.0], [4.0, 3.0, 3.0, 1.0]);
        assert!((deletion - 0.575).abs() < 1e-6 && (insertion - 0.425).abs() < 1e-6, "{deletion} {insertion}");
        // The same pixels in the reverse order: the same areas.
        let (reversed_deletion, reversed_insertion) = areas([3.0, 4.0, 2.0, 1.0], [1.0, 3.0, 3.0, 4.0]);
        assert!((reversed_deletion - deletion).abs() < 1e-6 && (reversed_insertion - insertion).abs() < 1e-6);
        // An all-zero map has no order: the straight line from 1 to 0, area ½.
        let (flat, _) = areas([1.0, 2.0, 4.0, 3.0], [0.0; 4]);
        assert!((flat - 0.5).abs() < 1e-6, "{flat}");
    }
}
