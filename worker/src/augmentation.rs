//! Training-time augmentation on cached image tensors: a random-resized crop (Szegedy et al.,
//! "Going deeper with convolutions", 2015: a crop covering a random share of the area with a
//! random aspect ratio, resized back to the full side) and a horizontal flip.
//!
//! Dataset stages store every image once, already resized and centre-cropped to the network's
//! input side, so evaluation needs no transform at all (its "centre crop" is the stored image)
//! and training applies this one on the device. A whole batch is transformed by a single
//! `affine_grid` + `grid_sample` call: each image's crop and flip is one 2x3 affine map, which
//! keeps the cost negligible next to the forward pass and avoids a kernel launch per image.
//! Crop parameters are drawn in Rust from the caller's seeded generator, so the same seed gives
//! the same crops on CPU and GPU.

use super::Result;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// The transform settings a dataset asks for, stored in its `meta.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Augmentation {
    /// Range of the crop's area as a share of the image's area.
    pub scale: [f64; 2],
    /// Range of the crop's width / height.
    pub ratio: [f64; 2],
    /// Mirror left-right with probability one half.
    pub flip: bool,
}

/// One image's crop, in stored pixels, and whether it is mirrored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crop {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
    pub flip: bool,
}

/// Attempts at drawing a crop that fits before falling back to the whole image.
const ATTEMPTS: usize = 10;

impl Augmentation {
    /// The usual ImageNet-style settings: 8% to 100% of the area, aspect 3/4 to 4/3, flips.
    pub fn standard() -> Augmentation {
        Augmentation { scale: [0.08, 1.0], ratio: [3.0 / 4.0, 4.0 / 3.0], flip: true }
    }

    /// Draws one crop of a `side` x `side` image. The aspect ratio is drawn uniformly on a log
    /// scale so that w/h and h/w are equally likely; a draw that does not fit is redrawn, and after
    /// [`ATTEMPTS`] misses the whole image is used.
    pub fn draw(&self, side: usize, rng: &mut impl Rng) -> Crop {
        let area = (side * side) as f64;
        let (low, high) = (self.ratio[0].min(self.ratio[1]).ln(), self.ratio[0].max(self.ratio[1]).ln());
        let (smallest, largest) = (self.scale[0].min(self.scale[1]), self.scale[0].max(self.scale[1]));
        let mut crop = Crop { x: 0, y: 0, width: side, height: side, flip: false };
        for _ in 0..ATTEMPTS {
            let target = area * rng.gen_range(smallest..=largest);
            let aspect = rng.gen_range(low..=high).exp();
            let width = (target * aspect).sqrt().round() as usize;
            let height = (target / aspect).sqrt().round() as usize;
            if (1..=side).contains(&width) && (1..=side).contains(&height) {
                crop = Crop { x: rng.gen_range(0..=side - width), y: rng.gen_range(0..=side - height), width, height, flip: false };
                break;
            }
        }
        crop.flip = self.flip && rng.gen_bool(0.5);
        crop
    }

    /// Applies one crop per image to float images `[n, c, s, s]`, bilinearly resized back to
    /// `s` x `s`. Sample points come from `align_corners = false` geometry (pixel centres at
    /// (i + 0.5) / s), the same as a bilinear resize of the crop; points just outside the
    /// image take the edge value.
    pub fn apply(images: &Tensor, crops: &[Crop]) -> Result<Tensor> {
        let size = images.size();
        let side = size.get(3).copied().unwrap_or(1) as f64;
        let mut theta = Vec::with_capacity(crops.len() * 6);
        for c in crops {
            // Output x in [-1, 1] maps to input x0 + (u + 1) / 2 * w pixels, i.e. normalised
            // (2 x0 + w) / s - 1 + u * w / s; a flip negates the u term.
            let sign = if c.flip { -1.0 } else { 1.0 };
            let (w, h) = (c.width as f64 / side, c.height as f64 / side);
            theta.extend_from_slice(&[sign * w, 0.0, (2.0 * c.x as f64) / side + w - 1.0, 0.0, h, (2.0 * c.y as f64) / side + h - 1.0]);
        }
        let n = i64::try_from(crops.len()).unwrap_or(0);
        let theta = Tensor::f_from_slice(&theta)?.f_reshape([n, 2, 3])?.f_to_kind(Kind::Float)?.f_to_device(images.device())?;
        let grid = Tensor::f_affine_grid_generator(&theta, size.as_slice(), false)?;
        // Interpolation 0 = bilinear, padding 1 = border (PyTorch's enum order).
        Ok(images.f_grid_sampler(&grid, 0, 1, false)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Images whose value at (y, x) is `x` in channel 0 and `y` in channel 1: bilinear
    /// interpolation of a linear ramp is exact, so every sampled value is its source coordinate.
    fn ramps(n: i64, side: i64) -> Tensor {
        let x = Tensor::arange(side, (Kind::Float, tch::Device::Cpu)).view([1, 1, 1, side]).expand([n, 1, side, side], false);
        let y = Tensor::arange(side, (Kind::Float, tch::Device::Cpu)).view([1, 1, side, 1]).expand([n, 1, side, side], false);
        Tensor::cat(&[x, y], 1)
    }

    fn values(t: &Tensor) -> Vec<f32> {
        let t = t.contiguous().view([-1]);
        let mut out = vec![0f32; t.numel()];
        t.copy_data(&mut out, t.numel());
        out
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4)
    }

    #[test]
    fn the_whole_image_unflipped_is_the_identity_and_flipped_is_a_mirror() {
        let images = Tensor::rand([2, 3, 6, 6], (Kind::Float, tch::Device::Cpu));
        let whole = Crop { x: 0, y: 0, width: 6, height: 6, flip: false };
        let same = Augmentation::apply(&images, &[whole, whole]).unwrap_or_else(|e| panic!("{e}"));
        assert!(close(&values(&same), &values(&images)));
        let mirrored = Augmentation::apply(&images, &[Crop { flip: true, ..whole }, whole]).unwrap_or_else(|e| panic!("{e}"));
        assert!(close(&values(&mirrored.get(0)), &values(&images.get(0).flip([2]))));
        assert!(close(&values(&mirrored.get(1)), &values(&images.get(1))));
    }

    #[test]
    fn a_crop_samples_its_region_at_the_resized_pixel_centres() {
        // Side 8, crop x in [2, 6) (width 4), y in [1, 3) (height 2). Output pixel i samples source
        // x = 2 + (i + 0.5) * 4 / 8 - 0.5 = 1.75 + i / 2 and y = 1 + (i + 0.5) * 2 / 8 - 0.5 = 0.625 + i / 4.
        let out =
            Augmentation::apply(&ramps(1, 8), &[Crop { x: 2, y: 1, width: 4, height: 2, flip: false }]).unwrap_or_else(|e| panic!("{e}"));
        let xs: Vec<f32> = (0..8).map(|i| 1.75 + i as f32 / 2.0).collect();
        let ys: Vec<f32> = (0..8).map(|i| 0.625 + i as f32 / 4.0).collect();
        assert!(close(&values(&out.get(0).get(0).get(5)), &xs), "{:?}", values(&out.get(0).get(0).get(5)));
        assert!(close(&values(&out.get(0).get(1).select(1, 3)), &ys), "{:?}", values(&out.get(0).get(1).select(1, 3)));
        // Mirrored: the same samples right to left.
        let flipped =
            Augmentation::apply(&ramps(1, 8), &[Crop { x: 2, y: 1, width: 4, height: 2, flip: true }]).unwrap_or_else(|e| panic!("{e}"));
        let reversed: Vec<f32> = xs.iter().rev().copied().collect();
        assert!(close(&values(&flipped.get(0).get(0).get(0)), &reversed));
    }

    #[test]
    fn a_crop_at_the_image_edge_takes_the_edge_value_beyond_it() {
        // Crop x in [0, 2) of side 8: output i samples x = (i + 0.5) * 2 / 8 - 0.5 = i / 4 - 0.375,
        // so pixels 0 and 1 fall left of the first pixel centre and take its value.
        let out =
            Augmentation::apply(&ramps(1, 8), &[Crop { x: 0, y: 0, width: 2, height: 8, flip: false }]).unwrap_or_else(|e| panic!("{e}"));
        let row = values(&out.get(0).get(0).get(0));
        assert!(close(&row, &[0.0, 0.0, 0.125, 0.375, 0.625, 0.875, 1.125, 1.375]), "{row:?}");
    }

    #[test]
    fn drawn_crops_fit_respect_the_ranges_and_repeat_with_the_seed() {
        let aug = Augmentation::standard();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let crops: Vec<Crop> = (0..2000).map(|_| aug.draw(64, &mut rng)).collect();
        for c in &crops {
            assert!(c.x + c.width <= 64 && c.y + c.height <= 64 && c.width > 0 && c.height > 0, "{c:?}");
            let share = (c.width * c.height) as f64 / (64.0 * 64.0);
            // Rounding each side to whole pixels moves the area and aspect a little past the ranges.
            assert!((0.06..=1.0).contains(&share), "{c:?}");
            let aspect = c.width as f64 / c.height as f64;
            assert!((0.70..=1.43).contains(&aspect), "{c:?}");
        }
        let flips = crops.iter().filter(|c| c.flip).count();
        assert!((850..1150).contains(&flips), "{flips} flips of 2000");
        let mean_share = crops.iter().map(|c| (c.width * c.height) as f64 / 4096.0).sum::<f64>() / 2000.0;
        // Uniform in [0.08, 1] has mean 0.54; draws that do not fit are redrawn, lowering it a little.
        assert!((0.45..0.56).contains(&mean_share), "{mean_share}");
        let mut again = ChaCha8Rng::seed_from_u64(5);
        assert_eq!(aug.draw(64, &mut again), crops[0]);
        let plain = Augmentation { scale: [1.0, 1.0], ratio: [1.0, 1.0], flip: false };
        assert_eq!(plain.draw(10, &mut rng), Crop { x: 0, y: 0, width: 10, height: 10, flip: false });
    }
}
