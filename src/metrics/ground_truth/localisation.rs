//! Localisation of a saliency map against a binary object mask (or a bounding box turned into one),
//! with the two baselines that make the number readable: a uniform map, and the resolution ceiling
//! of the layer the map came from.
//!
//! Maps and masks are row-major and the same size. Maps must be non-negative (Grad-CAM maps are
//! after ReLU), since "share of the mass" means nothing for signed values.

use crate::metrics::error::{finite, paired};
use crate::metrics::ranking::top_k_mask;
use crate::metrics::{MetricError, Result};

/// A height × width raster: the image, or the spatial grid of a network layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub height: usize,
    pub width: usize,
}

impl Grid {
    pub fn new(height: usize, width: usize) -> Self {
        Grid { height, width }
    }

    fn cells(self) -> usize {
        self.height * self.width
    }
}

/// An axis-aligned box in pixel units of the image it is applied to: `x` from the left edge, `y`
/// from the top, as CUB's `bounding_boxes.txt` gives them (scale them first when the image was
/// resized).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl BoundingBox {
    /// The box in an image resized by these factors.
    pub fn scaled(self, factor_x: f64, factor_y: f64) -> Self {
        BoundingBox { x: self.x * factor_x, y: self.y * factor_y, width: self.width * factor_x, height: self.height * factor_y }
    }

    /// The pixels whose centre lies in the box (edges included): a pixel is inside or not, never
    /// partly, so a box and the mask built from it agree on which pixels count.
    pub fn mask(self, image: Grid) -> Vec<bool> {
        let (right, bottom) = (self.x + self.width, self.y + self.height);
        (0..image.height)
            .flat_map(|row| (0..image.width).map(move |column| (row as f64 + 0.5, column as f64 + 0.5)))
            .map(|(cy, cx)| cx >= self.x && cx <= right && cy >= self.y && cy <= bottom)
            .collect()
    }
}

/// Checks a map against its mask and widens it; the mask must mark at least one pixel.
fn map_and_mask<T: Copy + Into<f64>>(metric: &str, map: &[T], mask: &[bool]) -> Result<Vec<f64>> {
    paired(metric, map.len(), mask.len())?;
    let map = finite(metric, map)?;
    if let Some(at) = map.iter().position(|v| *v < 0.0) {
        return Err(MetricError::new(format!("{metric}: the map is negative ({}) at pixel {at}", map[at])));
    }
    if !mask.iter().any(|inside| *inside) {
        return Err(MetricError::new(format!("{metric}: the mask marks no pixel")));
    }
    Ok(map)
}

/// Share of the map's total mass that lies inside the mask. A map of zero mass is constant, and
/// every constant map scores the mask's area share, so that is what it gets.
pub fn mass_inside<T: Copy + Into<f64>>(map: &[T], mask: &[bool]) -> Result<f64> {
    let map = map_and_mask("mass inside", map, mask)?;
    let total: f64 = map.iter().sum();
    if total == 0.0 {
        return uniform_baseline(mask);
    }
    Ok(map.iter().zip(mask).filter(|(_, inside)| **inside).map(|(v, _)| v).sum::<f64>() / total)
}

/// What a uniform map scores on [`mass_inside`]: the mask's share of the image area.
pub fn uniform_baseline(mask: &[bool]) -> Result<f64> {
    if mask.is_empty() {
        return Err(MetricError::new("uniform baseline: the mask is empty"));
    }
    Ok(mask.iter().filter(|inside| **inside).count() as f64 / mask.len() as f64)
}

/// Pointing game: 1 when the map's maximum lies inside the mask, 0 when outside. When several
/// pixels share the maximum (common after bilinear upsampling), the score is the share of them
/// inside, so no pixel order decides the outcome.
pub fn pointing_game<T: Copy + Into<f64>>(map: &[T], mask: &[bool]) -> Result<f64> {
    let map = map_and_mask("pointing game", map, mask)?;
    let peak = map.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mut peaks, mut inside) = (0usize, 0usize);
    for (value, in_mask) in map.iter().zip(mask) {
        if *value == peak {
            peaks += 1;
            inside += usize::from(*in_mask);
        }
    }
    Ok(inside as f64 / peaks as f64)
}

/// Rank accuracy: of the |mask| most salient pixels (ties to the lower index), the share inside
/// the mask. A perfect map ranks the whole object first and scores 1.
pub fn rank_accuracy<T: Copy + Into<f64>>(map: &[T], mask: &[bool]) -> Result<f64> {
    let map = map_and_mask("rank accuracy", map, mask)?;
    let area = mask.iter().filter(|inside| **inside).count();
    let hits = top_k_mask(&map, area).iter().zip(mask).filter(|(top, inside)| **top && **inside).count();
    Ok(hits as f64 / area as f64)
}

/// The best map a layer of the given grid can produce for this mask: the mask average-pooled to
/// the grid (adaptive pooling: cell i covers pixels ⌊i·H/h⌋ .. ⌈(i+1)·H/h⌉, as torch's
/// `adaptive_avg_pool2d`), then upsampled back bilinearly with `align_corners = false`, as
/// `torch.nn.functional.interpolate` upsamples a Grad-CAM map.
pub fn ceiling_map(mask: &[bool], image: Grid, layer: Grid) -> Result<Vec<f64>> {
    if image.cells() == 0 || layer.cells() == 0 {
        return Err(MetricError::new(format!("resolution ceiling: an empty image ({image:?}) or layer grid ({layer:?})")));
    }
    if mask.len() != image.cells() {
        return Err(MetricError::new(format!(
            "resolution ceiling: {} mask values do not form a {} × {} image",
            mask.len(),
            image.height,
            image.width
        )));
    }
    let mut pooled = vec![0.0; layer.cells()];
    for (i, (rows_start, rows_end)) in (0..layer.height).map(|i| bin(i, image.height, layer.height)).enumerate() {
        for (j, (columns_start, columns_end)) in (0..layer.width).map(|j| bin(j, image.width, layer.width)).enumerate() {
            let inside = (rows_start..rows_end)
                .flat_map(|r| (columns_start..columns_end).map(move |c| r * image.width + c))
                .filter(|&at| mask[at])
                .count();
            pooled[i * layer.width + j] = inside as f64 / ((rows_end - rows_start) * (columns_end - columns_start)) as f64;
        }
    }
    let rows: Vec<_> = (0..image.height).map(|y| source(y, layer.height, image.height)).collect();
    let columns: Vec<_> = (0..image.width).map(|x| source(x, layer.width, image.width)).collect();
    let mut upsampled = Vec::with_capacity(image.cells());
    for &(r0, r1, ry) in &rows {
        for &(c0, c1, cx) in &columns {
            let at = |r: usize, c: usize| pooled[r * layer.width + c];
            let top = (1.0 - cx) * at(r0, c0) + cx * at(r0, c1);
            let bottom = (1.0 - cx) * at(r1, c0) + cx * at(r1, c1);
            upsampled.push((1.0 - ry) * top + ry * bottom);
        }
    }
    Ok(upsampled)
}

/// Pixel range of adaptive-pooling cell `i` when `size` pixels pool into `cells` cells.
fn bin(i: usize, size: usize, cells: usize) -> (usize, usize) {
    (i * size / cells, ((i + 1) * size).div_ceil(cells))
}

/// For output pixel `at` of `output` pixels upsampled from `input` cells: the two source cells and
/// the weight of the second, by half-pixel centres (`align_corners = false`), clamped at the edge.
fn source(at: usize, input: usize, output: usize) -> (usize, usize, f64) {
    let position = ((at as f64 + 0.5) * (input as f64 / output as f64) - 0.5).max(0.0);
    let first = (position.floor() as usize).min(input - 1);
    let second = (first + 1).min(input - 1);
    (first, second, position - first as f64)
}

/// The resolution ceiling: [`mass_inside`] of the [`ceiling_map`].
pub fn resolution_ceiling(mask: &[bool], image: Grid, layer: Grid) -> Result<f64> {
    mass_inside(&ceiling_map(mask, image, layer)?, mask)
}

/// Every localisation number for one map, beside its baselines.
#[derive(Debug, Clone, PartialEq)]
pub struct Localisation {
    pub mass_inside: f64,
    pub uniform_baseline: f64,
    pub resolution_ceiling: f64,
    pub pointing_game: f64,
    pub rank_accuracy: f64,
}

/// Scores `map` (an `image`-sized saliency map computed at a layer of grid `layer`) against `mask`.
pub fn localisation<T: Copy + Into<f64>>(map: &[T], mask: &[bool], image: Grid, layer: Grid) -> Result<Localisation> {
    if map.len() != image.cells() {
        return Err(MetricError::new(format!(
            "localisation: {} map values do not form a {} × {} image",
            map.len(),
            image.height,
            image.width
        )));
    }
    Ok(Localisation {
        mass_inside: mass_inside(map, mask)?,
        uniform_baseline: uniform_baseline(mask)?,
        resolution_ceiling: resolution_ceiling(mask, image, layer)?,
        pointing_game: pointing_game(map, mask)?,
        rank_accuracy: rank_accuracy(map, mask)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4 × 4 image, object in the top-left 2 × 2 block (pixels 0, 1, 4, 5).
    fn corner_mask() -> Vec<bool> {
        (0..16).map(|i| i % 4 < 2 && i / 4 < 2).collect()
    }

    const MAP: [f64; 16] = [4.0, 2.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0];

    #[test]
    fn mass_inside_and_uniform_baseline_by_hand() {
        // Mass 4 + 2 + 2 + 1 + 1 = 10, inside 4 + 2 + 2 + 0 = 8 → 0.8; area 4 of 16 → 0.25.
        assert_eq!(mass_inside(&MAP, &corner_mask()).unwrap(), 0.8);
        assert_eq!(uniform_baseline(&corner_mask()).unwrap(), 0.25);
        assert_eq!(mass_inside(&[3.0f32; 16], &corner_mask()).unwrap(), 0.25);
        assert_eq!(mass_inside(&[0.0f32; 16], &corner_mask()).unwrap(), 0.25);
    }

    #[test]
    fn pointing_game_shares_tied_peaks() {
        assert_eq!(pointing_game(&MAP, &corner_mask()).unwrap(), 1.0);
        let mut outside = MAP;
        outside[15] = 5.0;
        assert_eq!(pointing_game(&outside, &corner_mask()).unwrap(), 0.0);
        // Peaks of 4 at pixel 0 (inside) and 15 (outside): half a hit.
        let mut tied = MAP;
        tied[15] = 4.0;
        assert_eq!(pointing_game(&tied, &corner_mask()).unwrap(), 0.5);
    }

    #[test]
    fn rank_accuracy_takes_the_lower_index_of_a_tie() {
        // Top 4: 4 (0), 2 (1), 2 (4), then the tie of 1s at 11 and 14 goes to 11, outside: 3/4.
        assert_eq!(rank_accuracy(&MAP, &corner_mask()).unwrap(), 0.75);
        let mut perfect = MAP;
        perfect[5] = 1.5;
        assert_eq!(rank_accuracy(&perfect, &corner_mask()).unwrap(), 1.0);
    }

    #[test]
    fn localisation_refuses_bad_maps_and_masks() {
        assert!(mass_inside(&[-1.0f64, 1.0], &[true, false]).unwrap_err().0.contains("negative"));
        assert!(mass_inside(&[1.0f64, 1.0], &[false, false]).unwrap_err().0.contains("no pixel"));
        assert!(rank_accuracy(&[1.0f64], &[true, false]).is_err());
        assert!(pointing_game(&[f64::NAN, 1.0], &[true, false]).is_err());
        assert!(localisation(&MAP, &corner_mask(), Grid::new(4, 3), Grid::new(2, 2)).is_err());
    }

    #[test]
    fn ceiling_of_one_pixel_worked_by_hand() {
        // A single object pixel (0,0) of 4 × 4 pooled to 2 × 2: cell (0,0) = 1/4, others 0.
        // Upsampling 2 → 4 with half-pixel centres: source = (y + 0.5)/2 − 0.5 = −0.25 (clamped
        // to 0), 0.25, 0.75, 1.25, so cell 0's weight along each axis is u = [1, 0.75, 0.25, 0]
        // and the map is (1/4) u_r u_c. Mass (1/4)(Σu)² = 1, inside (1/4)·1·1: ceiling 0.25.
        let mut mask = vec![false; 16];
        mask[0] = true;
        let map = ceiling_map(&mask, Grid::new(4, 4), Grid::new(2, 2)).unwrap();
        let u = [1.0, 0.75, 0.25, 0.0];
        let expected: Vec<f64> = (0..16).map(|i| 0.25 * u[i / 4] * u[i % 4]).collect();
        assert_eq!(map, expected);
        assert_eq!(resolution_ceiling(&mask, Grid::new(4, 4), Grid::new(2, 2)).unwrap(), 0.25);
        // The same layer grid as the image loses nothing.
        assert_eq!(resolution_ceiling(&mask, Grid::new(4, 4), Grid::new(4, 4)).unwrap(), 1.0);
    }

    #[test]
    fn ceiling_matches_torch_on_uneven_bins() {
        // 7 × 5 disc (i−2)² + (j−1)² ≤ 4 pooled to 3 × 2: the row bins [0,3) [2,5) [4,7) overlap.
        // Reference: torch 2.11 in float64, F.adaptive_avg_pool2d(mask, (3, 2)) then
        // F.interpolate(size=(7, 5), mode="bilinear", align_corners=False).
        let image = Grid::new(7, 5);
        let mask: Vec<bool> = (0..35)
            .map(|k| (k / 5) as i64)
            .zip((0..35).map(|k| (k % 5) as i64))
            .map(|(i, j)| (i - 2).pow(2) + (j - 1).pow(2) <= 4)
            .collect();
        let torch = [
            0.7777777777777778,
            0.7333333333333333,
            0.5555555555555556,
            0.3777777777777777,
            0.3333333333333333,
            0.7777777777777778,
            0.7333333333333334,
            0.5555555555555556,
            0.3777777777777777,
            0.3333333333333333,
            0.7777777777777778,
            0.7333333333333334,
            0.5555555555555556,
            0.3777777777777777,
            0.3333333333333333,
            0.7777777777777778,
            0.7333333333333333,
            0.5555555555555556,
            0.3777777777777777,
            0.3333333333333333,
            0.4920634920634922,
            0.46190476190476204,
            0.34126984126984133,
            0.22063492063492066,
            0.19047619047619055,
            0.20634920634920645,
            0.19047619047619055,
            0.12698412698412706,
            0.06349206349206352,
            0.04761904761904767,
            0.1111111111111111,
            0.09999999999999998,
            0.05555555555555555,
            0.011111111111111094,
            0.0,
        ];
        let map = ceiling_map(&mask, image, Grid::new(3, 2)).unwrap();
        for (k, (ours, theirs)) in map.iter().zip(torch).enumerate() {
            assert!((ours - theirs).abs() < 1e-12, "pixel {k}: {ours} against torch's {theirs}");
        }
        // Mass inside of that map, from the same torch tensors: 0.5661271676300577.
        assert!((resolution_ceiling(&mask, image, Grid::new(3, 2)).unwrap() - 0.5661271676300577).abs() < 1e-12);
    }

    #[test]
    fn localisation_collects_every_score() {
        let scores = localisation(&MAP, &corner_mask(), Grid::new(4, 4), Grid::new(2, 2)).unwrap();
        // Ceiling: pooled cell (0,0) = 1, others 0; the map is u_r u_c with u = [1, 0.75, 0.25, 0]:
        // mass (Σu)² = 4, inside (1 + 0.75)² = 3.0625 → 0.765625.
        assert_eq!(
            scores,
            Localisation {
                mass_inside: 0.8,
                uniform_baseline: 0.25,
                resolution_ceiling: 0.765625,
                pointing_game: 1.0,
                rank_accuracy: 0.75
            }
        );
    }

    #[test]
    fn bounding_box_marks_pixels_whose_centre_it_holds() {
        // Box x ∈ [1, 3], y ∈ [0.5, 1.7] on 3 × 4: column centres 1.5 and 2.5, row centres 0.5
        // and 1.5 → pixels (0,1) (0,2) (1,1) (1,2) = indices 1, 2, 5, 6.
        let mask = BoundingBox { x: 1.0, y: 0.5, width: 2.0, height: 1.2 }.mask(Grid::new(3, 4));
        let marked: Vec<usize> = mask.iter().enumerate().filter(|(_, m)| **m).map(|(i, _)| i).collect();
        assert_eq!(marked, vec![1, 2, 5, 6]);
        // Halving the image halves the box.
        let half = BoundingBox { x: 2.0, y: 4.0, width: 6.0, height: 8.0 }.scaled(0.5, 0.5);
        assert_eq!(half, BoundingBox { x: 1.0, y: 2.0, width: 3.0, height: 4.0 });
    }
}
