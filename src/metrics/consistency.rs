//! Agreement between one round and a reference round: concept weight rows (top-k Jaccard,
//! Kendall τ-b, cosine) and saliency maps (Spearman, IoU of the top pixels, SSIM).
//!
//! Degenerate inputs get a defined value instead of NaN, so a report never shows "NaN" for a fully
//! pruned PCBM row or a Grad-CAM map that ReLU zeroed out: two inputs without variation (or two
//! zero vectors) agree perfectly (1), and one such input beside a varying one shares nothing with
//! it (0).

use super::error::{finite, paired};
use super::ranking::{average_ranks, descending_order, top_k_mask};
use super::{MetricError, Result};

/// Jaccard index |A ∩ B| / |A ∪ B| of the `k` largest entries of each row. Ties in a row go to the
/// lower index, so the sets are deterministic. `k` must lie in 1..=row length.
pub fn top_k_jaccard<T: Copy + Into<f64>>(a: &[T], b: &[T], k: usize) -> Result<f64> {
    paired("top-k Jaccard", a.len(), b.len())?;
    if k == 0 || k > a.len() {
        return Err(MetricError::new(format!("top-k Jaccard: k = {k} must lie between 1 and the row length {}", a.len())));
    }
    let (a, b) = (finite("top-k Jaccard", a)?, finite("top-k Jaccard", b)?);
    Ok(jaccard(&top_k_mask(&a, k), &top_k_mask(&b, k)))
}

/// IoU of the top `fraction` of pixels of two maps of the same size (flattened in any order, the
/// same for both). The set of a map is its ⌈fraction · n⌉ largest pixels, except that pixels tied
/// at the boundary are all left out: a pixel is in the set when its value is strictly above the
/// value of the first pixel left out. So the set never depends on pixel order, and the zeros of a
/// sparse post-ReLU map (whose shared positions say nothing about agreement) never enter it; a
/// set may be smaller than ⌈fraction · n⌉, and an all-zero map has an empty set (two empty sets
/// agree, IoU 1; an empty and a non-empty one share nothing, 0). `fraction` must lie in (0, 1].
pub fn top_fraction_iou<T: Copy + Into<f64>>(a: &[T], b: &[T], fraction: f64) -> Result<f64> {
    paired("top-pixel IoU", a.len(), b.len())?;
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(MetricError::new(format!("top-pixel IoU: the fraction {fraction} must lie in (0, 1]")));
    }
    if a.is_empty() {
        return Err(MetricError::new("top-pixel IoU: the maps are empty"));
    }
    // The small tolerance keeps products such as 0.14 · 50 = 7.000000000000001 at 7 pixels.
    let count = (((fraction * a.len() as f64) - 1e-9).ceil().max(1.0) as usize).min(a.len());
    let (a, b) = (finite("top-pixel IoU", a)?, finite("top-pixel IoU", b)?);
    Ok(jaccard(&above_the_first_left_out(&a, count), &above_the_first_left_out(&b, count)))
}

/// Membership of the `count` largest values, with every value equal to the largest value left out
/// also left out (so the mask is closed under ties and independent of order).
fn above_the_first_left_out(values: &[f64], count: usize) -> Vec<bool> {
    let order = descending_order(values);
    match order.get(count) {
        None => vec![true; values.len()],
        Some(&first_out) => values.iter().map(|v| *v > values[first_out]).collect(),
    }
}

fn jaccard(a: &[bool], b: &[bool]) -> f64 {
    let both = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let either = a.iter().zip(b).filter(|(x, y)| **x || **y).count();
    if either == 0 {
        1.0
    } else {
        both as f64 / either as f64
    }
}

/// Kendall's τ-b, the tie-corrected rank correlation: (concordant − discordant) pairs over
/// √((n₀ − n₁)(n₀ − n₂)), with n₀ all pairs and n₁, n₂ the pairs tied in `a` and in `b`. It counts
/// pairs directly, O(n²), which suits weight rows (hundreds of concepts), not whole images.
pub fn kendall_tau_b<T: Copy + Into<f64>>(a: &[T], b: &[T]) -> Result<f64> {
    paired("Kendall τ-b", a.len(), b.len())?;
    let (a, b) = (finite("Kendall τ-b", a)?, finite("Kendall τ-b", b)?);
    let (mut concordant, mut discordant, mut tied_a, mut tied_b) = (0u64, 0u64, 0u64, 0u64);
    for i in 0..a.len() {
        for j in i + 1..a.len() {
            let (da, db) = (a[i] - a[j], b[i] - b[j]);
            if da == 0.0 {
                tied_a += 1;
            }
            if db == 0.0 {
                tied_b += 1;
            }
            if da * db > 0.0 {
                concordant += 1;
            } else if da * db < 0.0 {
                discordant += 1;
            }
        }
    }
    let pairs = (a.len() * (a.len() - 1) / 2) as u64;
    let (ordered_a, ordered_b) = ((pairs - tied_a) as f64, (pairs - tied_b) as f64);
    Ok(match (ordered_a == 0.0, ordered_b == 0.0) {
        (true, true) => 1.0,
        (true, false) | (false, true) => 0.0,
        (false, false) => (concordant as f64 - discordant as f64) / (ordered_a * ordered_b).sqrt(),
    })
}

/// Cosine similarity a·b / (|a||b|). Two zero vectors give 1 and one zero vector gives 0 (see the
/// module note); the result is clamped to [-1, 1] against rounding.
pub fn cosine<T: Copy + Into<f64>>(a: &[T], b: &[T]) -> Result<f64> {
    paired("cosine", a.len(), b.len())?;
    let (a, b) = (finite("cosine", a)?, finite("cosine", b)?);
    let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    let norm_a = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let norm_b = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    Ok(match (norm_a == 0.0, norm_b == 0.0) {
        (true, true) => 1.0,
        (true, false) | (false, true) => 0.0,
        (false, false) => (dot / (norm_a * norm_b)).clamp(-1.0, 1.0),
    })
}

/// Spearman's ρ: the Pearson correlation of the average ranks (tied values share the mean of
/// their ranks). Constant inputs follow the module note.
pub fn spearman<T: Copy + Into<f64>>(a: &[T], b: &[T]) -> Result<f64> {
    paired("Spearman", a.len(), b.len())?;
    let (a, b) = (finite("Spearman", a)?, finite("Spearman", b)?);
    Ok(pearson(&average_ranks(&a), &average_ranks(&b)))
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (mean_a, mean_b) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut covariance, mut spread_a, mut spread_b) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        covariance += (x - mean_a) * (y - mean_b);
        spread_a += (x - mean_a) * (x - mean_a);
        spread_b += (y - mean_b) * (y - mean_b);
    }
    match (spread_a == 0.0, spread_b == 0.0) {
        (true, true) => 1.0,
        (true, false) | (false, true) => 0.0,
        (false, false) => (covariance / (spread_a * spread_b).sqrt()).clamp(-1.0, 1.0),
    }
}

/// Side of the square SSIM window.
pub const SSIM_WINDOW: usize = 7;

/// Structural similarity of two single-channel images with values in [0, 1], stored row-major as
/// `height × width`. Each 7 × 7 window lying wholly inside the image (no padding, so no invented
/// border values) gives
/// ((2 μa μb + C1)(2 σab + C2)) / ((μa² + μb² + C1)(σa² + σb² + C2)),
/// with uniform weights, sample (n − 1) variances and covariance, dynamic range L = 1,
/// C1 = (0.01 L)² and C2 = (0.03 L)²; the result is the mean over windows. These are the choices
/// of scikit-image's default `structural_similarity`, so its numbers serve as a reference. The
/// uniform window is used rather than a Gaussian because saliency maps at 32 px are barely larger
/// than the window, and a uniform window weighs every pixel of it alike. Both sides must be at
/// least 7.
pub fn ssim<T: Copy + Into<f64>>(a: &[T], b: &[T], height: usize, width: usize) -> Result<f64> {
    paired("SSIM", a.len(), b.len())?;
    if height < SSIM_WINDOW || width < SSIM_WINDOW {
        return Err(MetricError::new(format!("SSIM: a {height} × {width} image is smaller than the {SSIM_WINDOW} × {SSIM_WINDOW} window")));
    }
    if a.len() != height * width {
        return Err(MetricError::new(format!("SSIM: {} values do not form a {height} × {width} image", a.len())));
    }
    let (a, b) = (finite("SSIM", a)?, finite("SSIM", b)?);
    const C1: f64 = 0.01 * 0.01;
    const C2: f64 = 0.03 * 0.03;
    let count = (SSIM_WINDOW * SSIM_WINDOW) as f64;
    let mut total = 0.0;
    for top in 0..=height - SSIM_WINDOW {
        for left in 0..=width - SSIM_WINDOW {
            let (mut sum_a, mut sum_b, mut sum_aa, mut sum_bb, mut sum_ab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for row in top..top + SSIM_WINDOW {
                for at in row * width + left..row * width + left + SSIM_WINDOW {
                    sum_a += a[at];
                    sum_b += b[at];
                    sum_aa += a[at] * a[at];
                    sum_bb += b[at] * b[at];
                    sum_ab += a[at] * b[at];
                }
            }
            let (mean_a, mean_b) = (sum_a / count, sum_b / count);
            let var_a = (sum_aa - count * mean_a * mean_a) / (count - 1.0);
            let var_b = (sum_bb - count * mean_b * mean_b) / (count - 1.0);
            let cov = (sum_ab - count * mean_a * mean_b) / (count - 1.0);
            total += ((2.0 * mean_a * mean_b + C1) * (2.0 * cov + C2)) / ((mean_a * mean_a + mean_b * mean_b + C1) * (var_a + var_b + C2));
        }
    }
    Ok(total / ((height - SSIM_WINDOW + 1) * (width - SSIM_WINDOW + 1)) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!((actual - expected).abs() <= tolerance, "{actual} is not within {tolerance} of {expected}");
    }

    #[test]
    fn top_k_jaccard_follows_the_lower_index_tie_break() {
        let a = [0.9f32, 0.1, 0.5, 0.5, 0.0];
        let b = [0.2f32, 0.8, 0.5, 0.7, 0.5];
        // k = 3. a: 0.9 (0), then the tie 0.5 at 2 and 3 → A = {0, 2, 3}.
        // b: 0.8 (1), 0.7 (3), then the tie 0.5 at 2 and 4 goes to 2 → B = {1, 2, 3}.
        // A ∩ B = {2, 3}, A ∪ B = {0, 1, 2, 3}: 2/4. (Had the tie gone to 4: 1/5.)
        assert_eq!(top_k_jaccard(&a, &b, 3).unwrap(), 0.5);
        // k = 1: {0} against {1}, disjoint.
        assert_eq!(top_k_jaccard(&a, &b, 1).unwrap(), 0.0);
        // k = n: both sets are everything.
        assert_eq!(top_k_jaccard(&a, &b, 5).unwrap(), 1.0);
        assert_eq!(top_k_jaccard(&b, &a, 3).unwrap(), top_k_jaccard(&a, &b, 3).unwrap());
    }

    #[test]
    fn top_k_jaccard_refuses_k_outside_the_row() {
        assert!(top_k_jaccard(&[1.0f64, 2.0], &[1.0, 2.0], 0).is_err());
        assert!(top_k_jaccard(&[1.0f64, 2.0], &[1.0, 2.0], 3).is_err());
        assert!(top_k_jaccard(&[1.0f64, 2.0], &[1.0], 1).is_err());
    }

    #[test]
    fn top_fraction_iou_counts_the_ceiling_of_the_fraction() {
        // 10 pixels, 30% → 3 pixels. a's top 3: {9, 8, 7}; b's: {9, 8, 0}. IoU = 2/4.
        let a: Vec<f64> = (0..10).map(f64::from).collect();
        let mut b = a.clone();
        b[0] = 100.0;
        b[7] = -1.0;
        assert_eq!(top_fraction_iou(&a, &b, 0.3).unwrap(), 0.5);
        // 25% of 10 = 2.5 → 3 pixels, the same sets.
        assert_eq!(top_fraction_iou(&a, &b, 0.25).unwrap(), 0.5);
        // 0.14 · 50 is 7.000000000000001 in floating point; it must still mean 7 of 50 pixels.
        // Both top 7 are {43, …, 49}: IoU 1. Eight pixels would give c {42, …, 49} against
        // d {41, 43, …, 49}: 7/9.
        let c: Vec<f64> = (0..50).map(f64::from).collect();
        let mut d = c.clone();
        d[42] = -1.0;
        assert_eq!(top_fraction_iou(&c, &d, 0.14).unwrap(), 1.0);
        assert!(top_fraction_iou(&a, &b, 0.0).is_err());
        assert!(top_fraction_iou(&a, &b, 1.5).is_err());
    }

    #[test]
    fn top_fraction_iou_leaves_ties_at_the_boundary_out() {
        // Sparse post-ReLU maps: 3 positive pixels each, the rest exact zeros. 50% of 10 = 5
        // pixels; the 4th and 5th would be zeros, tied with every zero left out, so each set is
        // its positive pixels: a {0, 1, 2}, b {2, 3, 4}, IoU 1/5. Breaking the zero ties by index
        // would add pixels 3, 4 to a and 0, 1 to b, making both {0, …, 4}: IoU 1, overlap the
        // models do not have.
        let a = [0.9f64, 0.8, 0.7, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let b = [0.0f64, 0.0, 0.5, 0.9, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(top_fraction_iou(&a, &b, 0.5).unwrap(), 0.2);
        // The same pixels listed in another order give the same IoU.
        let (mut ra, mut rb) = (a, b);
        ra.reverse();
        rb.reverse();
        assert_eq!(top_fraction_iou(&ra, &rb, 0.5).unwrap(), 0.2);
        // A positive tie straddling the boundary: top 2 of c = [3, 2, 2, 1] would split the 2s,
        // so the set is {0} alone; d = [3, 2, 1, 2] likewise {0}: IoU 1 whatever the order.
        assert_eq!(top_fraction_iou(&[3.0f64, 2.0, 2.0, 1.0], &[3.0, 2.0, 1.0, 2.0], 0.5).unwrap(), 1.0);
        // A tie wholly inside the set stays in: top 3 of [3, 2, 2, 1] is {0, 1, 2}.
        assert_eq!(top_fraction_iou(&[3.0f64, 2.0, 2.0, 1.0], &[1.0, 3.0, 3.0, 3.0], 0.75).unwrap(), 0.5);
        // All-zero maps: both sets empty (agree, 1); one empty beside a lit map: 0.
        assert_eq!(top_fraction_iou(&[0.0f64; 4], &[0.0; 4], 0.25).unwrap(), 1.0);
        assert_eq!(top_fraction_iou(&[0.0f64; 4], &[0.0, 1.0, 0.0, 0.0], 0.25).unwrap(), 0.0);
        // The whole map is the whole map, ties or not.
        assert_eq!(top_fraction_iou(&[0.0f64; 4], &[0.0, 1.0, 0.0, 0.0], 1.0).unwrap(), 1.0);
    }

    #[test]
    fn kendall_tau_b_with_ties_matches_hand_count_and_scipy() {
        // Pairs of a = [1, 2, 2, 3], b = [1, 3, 2, 2]:
        // (0,1) (0,2) (0,3) concordant; (1,3) discordant; (1,2) tied in a only; (2,3) tied in b only.
        // τ-b = (3 − 1) / √((6 − 1)(6 − 1)) = 0.4; scipy.stats.kendalltau gives 0.39999999999999997.
        close(kendall_tau_b(&[1.0f64, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 2.0]).unwrap(), 0.4, 1e-15);
        // A larger tied case; reference from scipy.stats.kendalltau (1.17.1).
        let a = [0.3f64, 0.1, 0.1, 0.7, 0.2, 0.7, 0.0, 0.5];
        let b = [0.4f64, 0.4, 0.2, 0.9, 0.1, 0.6, 0.0, 0.4];
        close(kendall_tau_b(&a, &b).unwrap(), 0.7452413135250994, 1e-12);
        close(kendall_tau_b(&b, &a).unwrap(), 0.7452413135250994, 1e-12);
    }

    #[test]
    fn kendall_tau_b_reaches_its_extremes_and_defines_constant_rows() {
        assert_eq!(kendall_tau_b(&[1.0f64, 2.0, 3.0], &[10.0, 20.0, 30.0]).unwrap(), 1.0);
        assert_eq!(kendall_tau_b(&[1.0f64, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap(), -1.0);
        assert_eq!(kendall_tau_b(&[0.0f64, 0.0, 0.0], &[0.0, 0.0, 0.0]).unwrap(), 1.0);
        assert_eq!(kendall_tau_b(&[0.0f64, 0.0, 0.0], &[1.0, 2.0, 0.0]).unwrap(), 0.0);
        assert_eq!(kendall_tau_b(&[5.0f64], &[7.0]).unwrap(), 1.0);
    }

    #[test]
    fn cosine_matches_hand_value_and_defines_zero_vectors() {
        // [1,2,2]·[2,0,1] = 4, |a| = 3, |b| = √5: 4 / (3√5) = 0.5962847939999439.
        close(cosine(&[1.0f32, 2.0, 2.0], &[2.0, 0.0, 1.0]).unwrap(), 0.5962847939999439, 1e-15);
        close(cosine(&[1.0f64, -1.0], &[-2.0, 2.0]).unwrap(), -1.0, 1e-15);
        assert_eq!(cosine(&[0.0f64, 0.0], &[0.0, 0.0]).unwrap(), 1.0);
        assert_eq!(cosine(&[0.0f64, 0.0], &[3.0, 0.0]).unwrap(), 0.0);
        assert!(cosine(&[f64::NAN, 0.0], &[3.0, 0.0]).is_err());
    }

    #[test]
    fn spearman_uses_average_ranks_for_ties() {
        // Ranks of a = [1, 2, 2, 3]: [1, 2.5, 2.5, 4]; of b = [1, 3, 2, 2]: [1, 4, 2.5, 2.5].
        // Deviations from 2.5: [-1.5, 0, 0, 1.5] and [-1.5, 1.5, 0, 0];
        // ρ = 2.25 / √(4.5 · 4.5) = 0.5 (scipy.stats.spearmanr: 0.5000000000000001).
        close(spearman(&[1.0f64, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 2.0]).unwrap(), 0.5, 1e-15);
        // Reference from scipy.stats.spearmanr on the tied rows of the Kendall test.
        let a = [0.3f64, 0.1, 0.1, 0.7, 0.2, 0.7, 0.0, 0.5];
        let b = [0.4f64, 0.4, 0.2, 0.9, 0.1, 0.6, 0.0, 0.4];
        close(spearman(&a, &b).unwrap(), 0.851916777110271, 1e-12);
        // Any increasing transform leaves the ranks, hence ρ, unchanged.
        let cubed: Vec<f64> = b.iter().map(|v| v * v * v + 4.0).collect();
        close(spearman(&a, &cubed).unwrap(), 0.851916777110271, 1e-12);
        assert_eq!(spearman(&[2.0f64, 2.0], &[1.0, 1.0]).unwrap(), 1.0);
        assert_eq!(spearman(&[2.0f64, 2.0], &[1.0, 0.0]).unwrap(), 0.0);
    }

    fn pattern(height: usize, width: usize, formula: impl Fn(usize, usize) -> f64) -> Vec<f64> {
        (0..height).flat_map(|i| (0..width).map(move |j| (i, j))).map(|(i, j)| formula(i, j)).collect()
    }

    #[test]
    fn ssim_of_an_image_with_itself_is_one() {
        let image = pattern(9, 10, |i, j| ((i * 7 + j * 3) % 11) as f64 / 10.0);
        close(ssim(&image, &image, 9, 10).unwrap(), 1.0, 1e-12);
    }

    #[test]
    fn ssim_single_window_hand_case() {
        // 7 × 7: one window. a has a single 1 at (0,0), b a single 1 at (3,3).
        // μa = μb = 1/49; σa² = σb² = (1 − 49/49²)/48 = 1/49; σab = (0 − 49/49²)/48 = −1/2352.
        // The luminance factors cancel: SSIM = (C2 − 2/2352) / (2/49 + C2) = 0.0011904179508504154
        // (scikit-image 0.26 structural_similarity(data_range=1): 0.0011904179508504206).
        let mut a = vec![0.0f64; 49];
        let mut b = vec![0.0f64; 49];
        a[0] = 1.0;
        b[3 * 7 + 3] = 1.0;
        close(ssim(&a, &b, 7, 7).unwrap(), 0.0011904179508504154, 1e-14);
    }

    #[test]
    fn ssim_is_symmetric_and_matches_scikit_image() {
        let a = pattern(9, 10, |i, j| ((i * 7 + j * 3) % 11) as f64 / 10.0);
        let b = pattern(9, 10, |i, j| ((i * 5 + j * 2 + 1) % 13) as f64 / 12.0);
        // scikit-image 0.26 structural_similarity(a, b, data_range=1.0), default window 7.
        close(ssim(&a, &b, 9, 10).unwrap(), -0.00345642097526406, 1e-12);
        close(ssim(&b, &a, 9, 10).unwrap(), -0.00345642097526406, 1e-12);
        let c = pattern(9, 10, |i, j| 0.8 * ((i * 7 + j * 3) % 11) as f64 / 10.0 + 0.1 * ((i + j) % 2) as f64);
        // A dimmed copy of a with a faint checkerboard: close to a, as scikit-image agrees.
        close(ssim(&a, &c, 9, 10).unwrap(), 0.9546171896031916, 1e-12);
    }

    #[test]
    fn ssim_of_constant_images() {
        // Two equal constants: σ terms vanish and the luminance factor is 1.
        assert_eq!(ssim(&[0.4f64; 64], &[0.4; 64], 8, 8).unwrap(), 1.0);
        // Constants 0 and 1: every window gives C1 / (1 + C1) = 9.999000099990002e-05
        // (scikit-image agrees).
        close(ssim(&[0.0f64; 64], &[1.0; 64], 8, 8).unwrap(), 1e-4 / (1.0 + 1e-4), 1e-16);
    }

    #[test]
    fn ssim_refuses_small_or_misshapen_images() {
        assert!(ssim(&[0.0f64; 36], &[0.0; 36], 6, 6).is_err());
        assert!(ssim(&[0.0f64; 50], &[0.0; 50], 7, 7).is_err());
    }
}
