//! Decoding image files into the stored byte tensors, once per dataset and in parallel.
//!
//! Every image is brought to the network's square input side the same way: the centred square
//! of side min(width, height) is cut out (the centre crop of a resize of the shorter side) and
//! resized to `side` with a triangle (bilinear) filter whose support widens when shrinking, so a
//! large photograph is averaged rather than aliased. Grey, palette and alpha images become RGB.
//! A bounding box goes through the same geometry and becomes a 0/1 mask.

use super::super::data::{self, RawSplit, Rows};
use super::super::rows::RowWriter;
use super::super::{io_error, Result, StageError};
use super::catalogue::{Record, Region};
use super::table::missing_file;
use fast_image_resize::images::{Image as FirImage, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use rayon::prelude::*;
use std::path::PathBuf;

pub struct Decoder {
    pub side: usize,
    /// Drop images that cannot be decoded (and count them) instead of failing.
    pub skip_corrupt: bool,
    /// The dataset's output folder, where each split's row files are written.
    pub out: PathBuf,
}

/// A split decoded: rows of skipped images are left out of every tensor.
pub struct Decoded {
    pub split: RawSplit,
    pub skipped: Vec<PathBuf>,
}

/// The centred square cut from a source image, in source pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Square {
    pub x: u32,
    pub y: u32,
    pub size: u32,
}

impl Square {
    pub fn centred(width: u32, height: u32) -> Square {
        let size = width.min(height);
        Square { x: (width - size) / 2, y: (height - size) / 2, size }
    }

    /// The `side` x `side` mask of a box: a stored pixel is on when its centre, mapped back to
    /// source pixels, lies inside the box.
    pub fn mask(&self, region: &Region, side: usize) -> Vec<u8> {
        let mut mask = vec![0u8; side * side];
        self.mask_into(region, side, &mut mask);
        mask
    }

    fn mask_into(&self, region: &Region, side: usize, mask: &mut [u8]) {
        let scale = f64::from(self.size) / side as f64;
        let inside = |p: usize, origin: u32, start: f64, length: f64| {
            let source = f64::from(origin) + (p as f64 + 0.5) * scale;
            source >= start && source < start + length
        };
        let columns: Vec<bool> = (0..side).map(|x| inside(x, self.x, region.x, region.width)).collect();
        for y in 0..side {
            let on_row = inside(y, self.y, region.y, region.height);
            for (m, on) in mask[y * side..(y + 1) * side].iter_mut().zip(&columns) {
                *m = u8::from(on_row && *on);
            }
        }
    }
}

impl Decoder {
    /// Decodes `records` into split `name`: images `[n, 3, side, side]` bytes channel-first, and
    /// masks from their regions when `masks`, written straight into the split's row files in the
    /// output folder (in parallel, each image into its own row), so no buffer of the whole split
    /// exists. The first failing record in order decides the error.
    pub fn decode(&self, name: &str, records: &[Record], masks: bool) -> Result<Decoded> {
        let side = self.side;
        let mut images = RowWriter::create(&data::images_file(&self.out, name), "images", records.len(), &[3, side, side])?;
        let mut mask_rows =
            masks.then(|| RowWriter::create(&data::masks_file(&self.out, name), "masks", records.len(), &[side, side])).transpose()?;
        let plane = images.row_len().max(1);
        let area = (side * side).max(1);
        let outcomes: Vec<Result<Option<Square>>> = {
            let mut empty: Vec<u8> = Vec::new();
            let mask_bytes: &mut [u8] = match mask_rows.as_mut() {
                Some(m) => m.rows_mut(),
                None => &mut empty,
            };
            let mask_chunks: Vec<Option<&mut [u8]>> =
                if masks { mask_bytes.chunks_mut(area).map(Some).collect() } else { records.iter().map(|_| None).collect() };
            images
                .rows_mut()
                .par_chunks_mut(plane)
                .zip(mask_chunks.into_par_iter())
                .zip(records.par_iter())
                .map(|((out, mask), record)| {
                    let square = self.decode_one(record, out)?;
                    if let (Some(square), Some(mask), Some(region)) = (square, mask, record.region.as_ref()) {
                        square.mask_into(region, side, mask);
                    }
                    Ok(square)
                })
                .collect()
        };
        let mut keep = Vec::with_capacity(records.len());
        for outcome in outcomes {
            keep.push(outcome?.is_some());
        }
        let kept = images.finish(&keep)?;
        let mask_rows = mask_rows.map(|m| m.finish(&keep)).transpose()?;
        let with_concepts = records.iter().any(|r| !r.concepts.is_empty());
        let mut split = RawSplit {
            images: Rows::Stored { rows: kept },
            labels: Vec::new(),
            concepts: None,
            masks: mask_rows.map(|rows| Rows::Stored { rows }),
        };
        let mut concepts = Vec::new();
        let mut skipped = Vec::new();
        for (record, kept) in records.iter().zip(&keep) {
            if !kept {
                skipped.push(record.path.clone());
                continue;
            }
            split.labels.push(record.label);
            concepts.extend_from_slice(&record.concepts);
        }
        split.concepts = with_concepts.then_some(concepts);
        Ok(Decoded { split, skipped })
    }

    /// Reads one file into `out`; `None` when it is corrupt and corrupt files are skipped.
    fn decode_one(&self, record: &Record, out: &mut [u8]) -> Result<Option<Square>> {
        let bytes = std::fs::read(&record.path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                missing_file(&record.path)
            } else {
                io_error(&record.path, &e)
            }
        })?;
        let decoded = image::load_from_memory(&bytes).map_err(|e| e.to_string()).and_then(|image| {
            if image.width() == 0 || image.height() == 0 {
                Err("the image has no pixels".to_owned())
            } else {
                // No copy when the file was RGB already, as nearly every photograph is.
                Ok(image.into_rgb8())
            }
        });
        let image = match decoded {
            Ok(image) => image,
            Err(_) if self.skip_corrupt => return Ok(None),
            Err(e) => {
                return Err(StageError::new(format!(
                    "corrupt image {}: {e} (set `skip_corrupt = true` to leave such files out)",
                    record.path.display()
                )))
            }
        };
        let (square, pixels) = self.square(&image)?;
        let area = self.side * self.side;
        let (red, rest) = out.split_at_mut(area);
        let (green, blue) = rest.split_at_mut(area);
        for (((p, r), g), b) in pixels.chunks_exact(3).zip(red).zip(green).zip(blue) {
            (*r, *g, *b) = (p[0], p[1], p[2]);
        }
        Ok(Some(square))
    }

    /// The centred square of `image`, resized to `side`, as interleaved RGB bytes (copied as is
    /// when already that size). The crop is part of the resize: no cropped copy is made.
    pub fn square(&self, image: &RgbImage) -> Result<(Square, Vec<u8>)> {
        let square = Square::centred(image.width(), image.height());
        let side = u32::try_from(self.side).unwrap_or(u32::MAX);
        if square.size == side {
            let cropped = image::imageops::crop_imm(image, square.x, square.y, square.size, square.size).to_image();
            return Ok((square, cropped.into_raw()));
        }
        let resize_error =
            |e: &dyn std::fmt::Display| StageError::new(format!("cannot resize a {}x{} image: {e}", image.width(), image.height()));
        let source = ImageRef::new(image.width(), image.height(), image.as_raw(), PixelType::U8x3).map_err(|e| resize_error(&e))?;
        let mut resized = FirImage::new(side, side, PixelType::U8x3);
        // The bilinear (triangle) filter widens its support when shrinking, so a large photograph
        // is averaged rather than aliased, as `image`'s Triangle filter and Pillow's BILINEAR do.
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)).crop(
            f64::from(square.x),
            f64::from(square.y),
            f64::from(square.size),
            f64::from(square.size),
        );
        Resizer::new().resize(&source, &mut resized, &options).map_err(|e| resize_error(&e))?;
        Ok((square, resized.into_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{err, flat, image, ok, tempdir};
    use super::*;

    fn record(path: PathBuf, label: i64) -> Record {
        Record { path, label, concepts: Vec::new(), region: None }
    }

    /// Decodes into a fresh folder and reads back what was stored: the images' and masks' bytes.
    fn stored(side: usize, skip_corrupt: bool, records: &[Record], masks: bool) -> Result<(Decoded, Vec<u8>, Option<Vec<u8>>)> {
        let dir = tempdir();
        let decoded = Decoder { side, skip_corrupt, out: dir.path().to_owned() }.decode("test", records, masks)?;
        let read = |path: PathBuf, name: &str| -> Result<Vec<u8>> {
            let file = crate::rows::RowFile::open(&path, name)?;
            Ok(Vec::<u8>::try_from(file.tensor().f_flatten(0, -1)?)?)
        };
        let images = read(data::images_file(dir.path(), "test"), "images")?;
        let masks = masks.then(|| read(data::masks_file(dir.path(), "test"), "masks")).transpose()?;
        Ok((decoded, images, masks))
    }

    #[test]
    fn an_image_at_the_stored_size_is_copied_channel_first() {
        let dir = tempdir();
        let path = dir.path().join("a.png");
        image(&path, 2, 2, |x, y| [10 * x as u8 + 1, 20 * y as u8 + 2, 30]);
        let (decoded, images, _) = ok(stored(2, false, &[record(path, 5)], false));
        // Red plane (x varies), green plane (y varies), blue plane.
        assert_eq!(images, vec![1, 11, 1, 11, 2, 2, 22, 22, 30, 30, 30, 30]);
        assert_eq!(decoded.split.labels, vec![5]);
        assert!(decoded.split.concepts.is_none() && decoded.split.masks.is_none());
    }

    #[test]
    fn the_centred_square_is_kept_and_grey_becomes_three_equal_channels() {
        let dir = tempdir();
        // 12 x 8, red left of x = 6 and blue from it: the centred square is x in [2, 10), and at
        // side 4 each stored column averages about two source columns around 3, 5, 7 and 9.
        let wide = dir.path().join("wide.png");
        image(&wide, 12, 8, |x, _| if x < 6 { [255, 0, 0] } else { [0, 0, 255] });
        let grey = dir.path().join("grey.png");
        image::GrayImage::from_fn(4, 4, |x, _| image::Luma([u8::try_from(60 * x).unwrap_or(0)]))
            .save(&grey)
            .unwrap_or_else(|e| panic!("{e}"));
        let (_, images, _) = ok(stored(4, false, &[record(wide, 0), record(grey, 1)], false));
        let wide_red = &images[..16];
        let wide_blue = &images[32..48];
        for y in 0..4 {
            assert_eq!((wide_red[y * 4], wide_blue[y * 4]), (255, 0), "column 0 is red");
            assert_eq!((wide_red[y * 4 + 3], wide_blue[y * 4 + 3]), (0, 255), "column 3 is blue");
        }
        let grey_planes = &images[48..];
        assert_eq!(&grey_planes[..4], &[0, 60, 120, 180]);
        assert_eq!(&grey_planes[..16], &grey_planes[16..32]);
        assert_eq!(&grey_planes[..16], &grey_planes[32..]);
        assert_eq!(Square::centred(8, 12), Square { x: 0, y: 2, size: 8 });
    }

    #[test]
    fn a_box_becomes_the_mask_of_the_pixels_whose_centres_it_holds() {
        // Square x in [2, 10) of a 12 x 8 image, side 4: stored centres at source x 3, 5, 7, 9 and
        // y 1, 3, 5, 7. A box x in [2, 6), y in [0, 4) holds x 3, 5 and y 1, 3.
        let mask = Square { x: 2, y: 0, size: 8 }.mask(&Region { x: 2.0, y: 0.0, width: 4.0, height: 4.0 }, 4);
        assert_eq!(mask, vec![1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        // A box reaching outside the square covers the whole side.
        let all = Square { x: 0, y: 2, size: 8 }.mask(&Region { x: -5.0, y: 0.0, width: 100.0, height: 100.0 }, 4);
        assert!(all.iter().all(|m| *m == 1));
    }

    #[test]
    fn a_corrupt_image_is_named_or_skipped_and_counted() {
        let dir = tempdir();
        let (a, bad, c) = (dir.path().join("a.png"), dir.path().join("bad.jpg"), dir.path().join("c.png"));
        flat(&a, 2, 2, [10, 10, 10]);
        std::fs::write(&bad, b"this is not a jpeg").unwrap_or_else(|e| panic!("{e}"));
        flat(&c, 2, 2, [200, 200, 200]);
        let records = [
            Record { region: Some(Region { x: 0.0, y: 0.0, width: 1.0, height: 2.0 }), ..record(a, 0) },
            Record { region: Some(Region { x: 0.0, y: 0.0, width: 2.0, height: 2.0 }), ..record(bad.clone(), 1) },
            Record { region: Some(Region { x: 1.0, y: 0.0, width: 1.0, height: 2.0 }), ..record(c, 2) },
        ];
        let message = err(stored(2, false, &records, true).map(|_| ()));
        assert!(message.starts_with("corrupt image") && message.contains("bad.jpg"), "{message}");
        let (decoded, images, masks) = ok(stored(2, true, &records, true));
        assert_eq!(decoded.skipped, vec![bad]);
        assert_eq!(decoded.split.labels, vec![0, 2]);
        assert_eq!(images, [vec![10u8; 12], vec![200u8; 12]].concat());
        assert_eq!(masks, Some(vec![1, 0, 1, 0, 0, 1, 0, 1]));
        let missing = err(stored(2, true, &[record(dir.path().join("gone.png"), 0)], false).map(|_| ()));
        assert!(missing.starts_with("missing file") && missing.contains("gone.png"), "{missing}");
    }
}
