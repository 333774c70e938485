//! Overlays are blended when the report is drawn, not when the maps are computed: the explainer
//! stores each image and its heatmap as two PNGs of the same size, and the report lays the
//! heatmap over the image at the stage's `alpha`. Opacity is a cosmetic field, so a new value
//! redraws the report and recomputes no map.
//!
//! Each pixel is (1 − alpha) · image + alpha · heatmap, channel by channel, on values in [0, 1]:
//! the blend the explainer drew before, now from the heatmap's 8-bit colours.
//!
//! The front end reads and writes these PNGs with the `png` crate alone: `image` would bring its
//! colour management and JPEG decoder into `cargo install`, for two 8-bit RGB layers.

use std::io::Cursor;

/// An 8-bit RGB image, row by row, three bytes a pixel.
struct Rgb8 {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

/// Decodes a PNG of any colour type and depth to 8-bit RGB (palettes expanded, 16-bit channels
/// cut to their high byte, alpha dropped, grey repeated in each channel); None when it does not
/// decode.
fn decode(bytes: &[u8]) -> Option<Rgb8> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().ok()?;
    let mut buffer = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buffer).ok()?;
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        // EXPAND turns a palette into RGB(A); one left here is not an image we can read.
        png::ColorType::Indexed => return None,
    };
    if info.bit_depth != png::BitDepth::Eight {
        return None;
    }
    let (width, height) = (info.width, info.height);
    let count = usize::try_from(u64::from(width) * u64::from(height)).ok()?;
    let mut pixels = Vec::with_capacity(count.checked_mul(3)?);
    for row in buffer[..info.buffer_size()].chunks_exact(info.line_size).take(height as usize) {
        for pixel in row.chunks_exact(channels).take(width as usize) {
            match channels {
                1 | 2 => pixels.extend_from_slice(&[pixel[0]; 3]),
                _ => pixels.extend_from_slice(&pixel[..3]),
            }
        }
    }
    (pixels.len() == count * 3).then_some(Rgb8 { width, height, pixels })
}

/// Encodes 8-bit RGB as PNG with the settings `image` 0.25 used here before (fast deflate,
/// adaptive filters), so reports keep the bytes they had.
fn encode(image: &Rgb8) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, image.width, image.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::Filter::Adaptive);
    let mut writer = encoder.write_header().ok()?;
    writer.write_image_data(&image.pixels).ok()?;
    writer.finish().ok()?;
    Some(bytes)
}

/// The blended overlay as PNG bytes, or None when either layer does not decode or their sizes
/// differ.
pub fn blend(image_png: &[u8], heat_png: &[u8], alpha: f64) -> Option<Vec<u8>> {
    let (image, heat) = (decode(image_png)?, decode(heat_png)?);
    if (image.width, image.height) != (heat.width, heat.height) {
        return None;
    }
    let alpha = if alpha.is_finite() { alpha.clamp(0.0, 1.0) } else { 0.5 };
    let mix = |a: u8, b: u8| ((1.0 - alpha) * f64::from(a) + alpha * f64::from(b)).round().clamp(0.0, 255.0) as u8;
    let pixels = image.pixels.iter().zip(&heat.pixels).map(|(&a, &b)| mix(a, b)).collect();
    encode(&Rgb8 { width: image.width, height: image.height, pixels })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, RgbImage};

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

    /// The report's PNGs are the bytes `image` wrote when the blend used it, so reports of
    /// cached runs do not change.
    #[test]
    fn encodes_as_image_did() {
        let pixels: Vec<[u8; 3]> = (0..97u32).map(|i| [(i * 37 % 256) as u8, (i * 11 % 256) as u8, (255 - i * 3 % 256) as u8]).collect();
        let ours = encode(&Rgb8 { width: 97, height: 1, pixels: pixels.concat() }).unwrap_or_default();
        assert_eq!(ours, png(&pixels));
    }

    /// Every colour type decodes to the RGB that `image`'s to_rgb8 gives (alpha dropped, grey
    /// repeated, palettes expanded).
    #[test]
    fn decodes_every_colour_type_as_image_does() {
        let (w, h) = (5u32, 3u32);
        let value = |x: u32, y: u32, c: u32| ((x * 50 + y * 70 + c * 30) % 256) as u8;
        let grey = image::GrayImage::from_fn(w, h, |x, y| image::Luma([value(x, y, 0)]));
        let grey_alpha = image::GrayAlphaImage::from_fn(w, h, |x, y| image::LumaA([value(x, y, 0), value(x, y, 1)]));
        let rgba = image::RgbaImage::from_fn(w, h, |x, y| image::Rgba([value(x, y, 0), value(x, y, 1), value(x, y, 2), value(x, y, 3)]));
        let encoded: Vec<Vec<u8>> = [image::DynamicImage::from(grey), grey_alpha.into(), rgba.into()]
            .iter()
            .map(|i| {
                let mut bytes = Vec::new();
                i.write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png).unwrap_or_else(|e| panic!("{e}"));
                bytes
            })
            .collect();
        // A palette PNG, which `image` does not write: two colours, one bit a pixel.
        let mut indexed = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut indexed, 4, 1);
            encoder.set_color(png::ColorType::Indexed);
            encoder.set_depth(png::BitDepth::One);
            encoder.set_palette(vec![10, 20, 30, 200, 210, 220]);
            let mut writer = encoder.write_header().unwrap_or_else(|e| panic!("{e}"));
            writer.write_image_data(&[0b0101_0000]).unwrap_or_else(|e| panic!("{e}"));
        }
        for bytes in encoded.iter().chain([&indexed]) {
            let ours = decode(bytes).map(|i| i.pixels.chunks(3).map(|p| [p[0], p[1], p[2]]).collect::<Vec<_>>());
            assert_eq!(ours, Some(pixels(bytes)));
        }
        assert_eq!(pixels(&indexed), [[10, 20, 30], [200, 210, 220], [10, 20, 30], [200, 210, 220]]);
    }

    #[test]
    fn layers_that_do_not_fit_give_nothing() {
        let one = png(&[[1, 2, 3]]);
        let two = png(&[[1, 2, 3], [4, 5, 6]]);
        assert_eq!(blend(&one, &two, 0.5), None);
        assert_eq!(blend(b"not a png", &one, 0.5), None);
    }
}
