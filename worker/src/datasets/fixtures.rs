//! Test helpers: datasets in their published layouts, written into temporary folders with tiny
//! images made here.

use super::super::Result;
use image::{ImageFormat, Rgb, RgbImage};
use std::path::Path;

pub fn ok<T>(result: Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

/// The message of an expected failure.
pub fn err<T>(result: Result<T>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.0,
    }
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

pub fn text(path: &Path, content: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(path, content).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// A `width` x `height` image whose pixel (x, y) is `colour(x, y)`, saved as PNG or JPEG by
/// the path's extension.
pub fn image(path: &Path, width: u32, height: u32, colour: impl Fn(u32, u32) -> [u8; 3]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
    }
    let img = RgbImage::from_fn(width, height, |x, y| Rgb(colour(x, y)));
    let format = if path.extension().is_some_and(|e| e == "png") { ImageFormat::Png } else { ImageFormat::Jpeg };
    img.save_with_format(path, format).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// One flat colour.
pub fn flat(path: &Path, width: u32, height: u32, colour: [u8; 3]) {
    image(path, width, height, |_, _| colour);
}
