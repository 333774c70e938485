//! Deletion and insertion curves (Petsiuk et al. 2018): pixels are removed from the image (or
//! added to a blank one) most salient first, in `STEPS` equal steps, and the target class's
//! softmax probability is read after each step; each curve's area over [0, 1] (trapezoid rule)
//! is the score. A faithful map makes deletion fall fast (small area) and insertion rise fast
//! (large area). Removed pixels take the value 0 in the network's input scale, the dataset's
//! middle grey, in all three channels.

use super::super::Result;
use lthlang::metrics::faithfulness::curve_auc;
use tch::{Kind, Tensor};

/// Steps per curve; each removes or inserts 1/STEPS of the pixels.
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
        // Rank of every pixel by saliency, most salient first (ties by position, as argsort is
        // stable).
        let order = maps.f_get(i)?.f_flatten(0, -1)?.f_argsort_stable(true, 0, true)?;
        let mut rank = Tensor::f_zeros([pixels], (Kind::Int64, x.device()))?;
        let _ = rank.f_index_put_(&[Some(order.shallow_clone())], &Tensor::f_arange(pixels, (Kind::Int64, x.device()))?, false)?;
        let mut deleted = Vec::new();
        let mut inserted = Vec::new();
        for step in 0..=STEPS {
            let count = pixels * step / STEPS;
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
        let fraction = |s: usize| s as f64 / STEPS as f64;
        let curve = |part: &[f64]| part.iter().enumerate().map(|(s, v)| (fraction(s), *v)).collect::<Vec<_>>();
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
        // and 4 pixels, step s keeps ⌊4s/10⌋ pixels removed: 0,0,0,1,1,2,2,2,3,3,4.
        let values = [4.0f32, 3.0, 2.0, 1.0];
        let x = Tensor::from_slice(&values).view([1, 1, 2, 2]);
        let maps = Tensor::from_slice(&values).view([1, 2, 2]);
        let targets = Tensor::from_slice(&[0i64]);
        let mut score =
            |batch: &Tensor| -> Result<Tensor> { Ok((batch.sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Float) / 10.0).view([-1, 1])) };
        let (deletion, insertion) = curves(&x, &maps, &targets, &mut score).unwrap();
        // Remaining share per step when deleting: removed counts → 1, 1, 1, .6, .6, .3, .3, .3, .1, .1, 0.
        let kept = [1.0, 1.0, 1.0, 0.6, 0.6, 0.3, 0.3, 0.3, 0.1, 0.1, 0.0];
        let area = |v: &[f64]| v.windows(2).map(|p| (p[0] + p[1]) / 2.0 * 0.1).sum::<f64>();
        let inserted: Vec<f64> = kept.iter().map(|k| 1.0 - k).collect();
        assert!((deletion[0] - area(&kept)).abs() < 1e-6, "{deletion:?} vs {}", area(&kept));
        assert!((insertion[0] - area(&inserted)).abs() < 1e-6, "{insertion:?} vs {}", area(&inserted));
        // By hand: deletion 0.1·(1+1+.8+.6+.45+.3+.3+.2+.1+.05) = 0.48, insertion 1 − 0.48.
        assert!((deletion[0] - 0.48).abs() < 1e-6 && (insertion[0] - 0.52).abs() < 1e-6);
        let _ = Device::Cpu;
    }
}
