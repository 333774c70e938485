//! Overlays are blended when the report is drawn, not when the maps are computed: the explainer
//! stores each image and its heatmap as two PNGs of the same size, and the report lays the
//! heatmap over the image at the stage's `alpha`. Opacity is a cosmetic field, so a new value
//! redraws the report and recomputes no map.
//!
//! Each pixel is (1 − alpha) · image + alpha · heatmap, channel by channel, on values in [0, 1]:
//! the blend the explainer drew before, now from the heatmap's 8-bit colours.

use image::{ImageFormat, RgbImage};

/// The blended overlay as PNG bytes, or None when either layer does not decode or their sizes
/// differ.
pub fn blend(image_png: &[u8], heat_png: &[u8], alpha: f64) -> Option<Vec<u8>> {
    let decode = |bytes: &[u8]| image::load_from_memory_with_format(bytes, ImageFormat::Png).ok().map(|i| i.to_rgb8());
    let (image, heat) = (decode(image_png)?, decode(heat_png)?);
    if image.dimensions() != heat.dimensions() {
        return None;
    }
    let alpha = if alpha.is_finite() { alpha.clamp(0.0, 1.0) } else { 0.5 };
    let blended = RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let (a, b) = (image.get_pixel(x, y).0, heat.get_pixel(x, y).0);
        let mix = |c: usize| ((1.0 - alpha) * f64::from(a[c]) + alpha * f64::from(b[c])).round().clamp(0.0, 255.0) as u8;
        image::Rgb([mix(0), mix(1), mix(2)])
    });
    let mut bytes = Vec::new();
    blended.write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(pixels: &[[u8; 3]]) -> Vec<u8> {
        let image = RgbImage::from_fn(u32::try_from(pixels.len()).unwrap_or(0), 1, |x, _| image::Rgb(pixels[x as usize]));
        let mut bytes = Vec::new();
        image.write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png).unwrap_or_else(|e| panic!("{e}"));
        bytes
    }

    fn pixels(bytes: &[u8]) -> Vec<[u8; 3]> {
        image::load_from_memory(bytes).unwrap_or_else(|e| panic!("{e}")).to_rgb8().pixels().map(|p| p.0).collect()
    }

    #[test]
    fn blends_channel_by_channel_at_alpha() {
        // Grey under jet(1) = (128, 0, 0) at one half: (128 + 128)/2, 64, 64; red under jet(0).
        let image = png(&[[128, 128, 128], [255, 0, 0]]);
        let heat = png(&[[128, 0, 0], [0, 0, 128]]);
        assert_eq!(pixels(&blend(&image, &heat, 0.5).unwrap_or_default()), [[128, 64, 64], [128, 0, 64]]);
        assert_eq!(pixels(&blend(&image, &heat, 0.0).unwrap_or_default()), [[128, 128, 128], [255, 0, 0]]);
        assert_eq!(pixels(&blend(&image, &heat, 1.0).unwrap_or_default()), [[128, 0, 0], [0, 0, 128]]);
        assert_eq!(pixels(&blend(&image, &heat, 0.25).unwrap_or_default())[1], [191, 0, 32]);
    }

    #[test]
    fn layers_that_do_not_fit_give_nothing() {
        let one = png(&[[1, 2, 3]]);
        let two = png(&[[1, 2, 3], [4, 5, 6]]);
        assert_eq!(blend(&one, &two, 0.5), None);
        assert_eq!(blend(b"not a png", &one, 0.5), None);
    }
}
