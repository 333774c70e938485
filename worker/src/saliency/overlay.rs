//! PNG overlays: a normalised map in a jet-like colour scale laid over the image it explains.
//! Small images (32 px datasets) are enlarged by whole-pixel repetition so the report shows them
//! at a readable size without inventing detail.

use crate::{Result, StageError};
use image::RgbImage;
use std::path::Path;

/// Overlays are enlarged until both sides reach this many pixels.
pub const MIN_SIDE: u32 = 128;

/// A jet-like colour for t in [0, 1]: dark blue, blue, cyan, yellow, red, dark red. Each channel
/// is a clipped tent, 1.5 − |4t − c| for c = 3 (red), 2 (green), 1 (blue).
pub fn jet(t: f32) -> [f32; 3] {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let tent = |centre: f32| (1.5 - (4.0 * t - centre).abs()).clamp(0.0, 1.0);
    [tent(3.0), tent(2.0), tent(1.0)]
}

/// The overlay of `map` (`[h, w]`, values in [0, 1]) on `image` (`[3, h, w]` bytes, channel
/// first as datasets store them): each pixel is (1 − alpha) · image + alpha · jet(map).
pub fn render(image: &[u8], map: &[f32], size: [i64; 2], alpha: f32) -> Result<RgbImage> {
    let h = usize::try_from(size[0]).unwrap_or(0);
    let w = usize::try_from(size[1]).unwrap_or(0);
    if image.len() != 3 * h * w || map.len() != h * w || h == 0 || w == 0 {
        return Err(StageError::new(format!("overlay: image of {} bytes and map of {} values do not fit {h}×{w}", image.len(), map.len())));
    }
    let scale = MIN_SIDE.div_ceil(u32::try_from(h.min(w)).unwrap_or(u32::MAX)).max(1);
    let (width, height) = (u32::try_from(w).unwrap_or(0) * scale, u32::try_from(h).unwrap_or(0) * scale);
    Ok(RgbImage::from_fn(width, height, |x, y| {
        let (i, j) = ((y / scale) as usize, (x / scale) as usize);
        let colour = jet(map[i * w + j]);
        let mut pixel = [0u8; 3];
        for (c, out) in pixel.iter_mut().enumerate() {
            let base = f32::from(image[c * h * w + i * w + j]) / 255.0;
            *out = (((1.0 - alpha) * base + alpha * colour[c]) * 255.0).round().clamp(0.0, 255.0) as u8;
        }
        image::Rgb(pixel)
    }))
}

pub fn write(path: &Path, image: &[u8], map: &[f32], size: [i64; 2], alpha: f32) -> Result<()> {
    render(image, map, size, alpha)?
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| StageError::new(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saliency_jet_runs_from_dark_blue_through_green_to_dark_red() {
        assert_eq!(jet(0.0), [0.0, 0.0, 0.5]);
        assert_eq!(jet(0.5), [0.5, 1.0, 0.5]);
        assert_eq!(jet(1.0), [0.5, 0.0, 0.0]);
        assert_eq!(jet(0.25), [0.0, 0.5, 1.0]);
        assert_eq!(jet(f32::NAN), jet(0.0));
    }

    #[test]
    fn saliency_overlay_blends_with_alpha_and_enlarges_small_images() {
        // A 2 × 2 image: red, green, blue, grey (channel-first bytes); map 0 everywhere but 1 at (1, 1).
        let image = [255, 0, 0, 128, 0, 255, 0, 128, 0, 0, 255, 128];
        let map = [0.0, 0.0, 0.0, 1.0];
        let plain = render(&image, &map, [2, 2], 0.0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plain.dimensions(), (128, 128));
        assert_eq!(plain.get_pixel(0, 0).0, [255, 0, 0]);
        assert_eq!(plain.get_pixel(127, 0).0, [0, 255, 0]);
        assert_eq!(plain.get_pixel(63, 64).0, [0, 0, 255]);
        assert_eq!(plain.get_pixel(64, 64).0, [128, 128, 128]);
        let half = render(&image, &map, [2, 2], 0.5).unwrap_or_else(|e| panic!("{e}"));
        // Grey (128/255) half-and-half with jet(1) = (0.5, 0, 0): (128/255 + 0.5)/2 · 255 = 127.75.
        assert_eq!(half.get_pixel(100, 100).0, [128, 64, 64]);
        // Red half-and-half with jet(0) = (0, 0, 0.5).
        assert_eq!(half.get_pixel(0, 0).0, [128, 0, 64]);
        let big = render(&vec![0; 3 * 200 * 200], &vec![0.0; 200 * 200], [200, 200], 1.0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(big.dimensions(), (200, 200));
        assert!(render(&image, &map, [3, 2], 0.5).is_err());
    }
}
