//! `mnist`: the four idx files of MNIST (LeCun et al.), gzipped or not:
//! `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
//! `t10k-labels-idx1-ubyte` (each may end in `.gz`; the plain file wins when both exist).
//!
//! The idx format: a big-endian header, two zero bytes, a type byte (0x08 for unsigned bytes),
//! the number of dimensions, one u32 per dimension, then the data. Grey images are copied into all
//! three channels, resized to `image` when that is not 28. The t10k files are the test split;
//! validation is `val` of the training images, per digit, drawn with the seed.

use super::super::data::{Meta, RawSplit, Rows};
use super::super::{io_error, Context, Result, StageError};
use super::partition::Partition;
use super::table::missing_file;
use image::imageops::FilterType;
use image::GrayImage;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

pub struct Config {
    pub root: PathBuf,
    pub image: usize,
    pub val: f64,
    pub seed: u64,
}

/// One idx file's dimensions and bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

pub fn artifact(ctx: &Context) -> Result<(Meta, BTreeMap<&'static str, RawSplit>)> {
    let config = Config {
        root: super::root(ctx)?,
        image: usize::try_from(ctx.int("image")?).unwrap_or(28),
        val: ctx.float("val")?,
        seed: super::seed(ctx)?,
    };
    ctx.progress("reading the idx files".to_owned());
    build(&config)
}

/// Reads `name` or `name.gz` in `root`.
fn read(root: &Path, name: &str) -> Result<(PathBuf, Vec<u8>)> {
    let plain = root.join(name);
    let gz = root.join(format!("{name}.gz"));
    let path = if plain.exists() || !gz.exists() { plain } else { gz };
    let bytes = std::fs::read(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            StageError::new(format!("{} (nor {name}.gz)", missing_file(&path)))
        } else {
            io_error(&path, &e)
        }
    })?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| StageError::new(format!("{}: not a readable gzip file: {e}", path.display())))?;
        return Ok((path, out));
    }
    Ok((path, bytes))
}

/// Parses an idx file of unsigned bytes with `dims` dimensions.
pub fn parse(bytes: &[u8], dims: usize, path: &Path) -> Result<Idx> {
    let bad = |what: String| StageError::new(format!("{}: not an idx file of bytes: {what}", path.display()));
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        return Err(bad("its header should start 00 00 08".to_owned()));
    }
    if usize::from(bytes[3]) != dims {
        return Err(bad(format!("{} dimensions, expected {dims}", bytes[3])));
    }
    let header = 4 + 4 * dims;
    if bytes.len() < header {
        return Err(bad("the header is cut short".to_owned()));
    }
    let sizes: Vec<usize> = bytes[4..header].chunks(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let expected: usize = sizes.iter().product();
    if bytes.len() - header != expected {
        return Err(bad(format!("the header promises {expected} values ({sizes:?}), the file holds {}", bytes.len() - header)));
    }
    Ok(Idx { dims: sizes, data: bytes[header..].to_vec() })
}

/// Images and labels of one pair of files.
fn pair(root: &Path, images: &str, labels: &str) -> Result<(Idx, Vec<i64>)> {
    let (image_path, image_bytes) = read(root, images)?;
    let (label_path, label_bytes) = read(root, labels)?;
    let images = parse(&image_bytes, 3, &image_path)?;
    let labels = parse(&label_bytes, 1, &label_path)?;
    if images.dims[0] != labels.dims[0] {
        return Err(StageError::new(format!(
            "{} holds {} images but {} holds {} labels",
            image_path.display(),
            images.dims[0],
            label_path.display(),
            labels.dims[0]
        )));
    }
    if let Some(bad) = labels.data.iter().find(|l| **l > 9) {
        return Err(StageError::new(format!("{}: label {bad} is not a digit", label_path.display())));
    }
    Ok((images, labels.data.iter().map(|l| i64::from(*l)).collect()))
}

/// Rows `indices` of `images` as a split at `side` pixels.
fn split(images: &Idx, labels: &[i64], indices: &[usize], side: usize) -> RawSplit {
    let (height, width) = (images.dims[1], images.dims[2]);
    let plane = side * side;
    let mut out = vec![0u8; indices.len() * 3 * plane];
    out.par_chunks_mut((3 * plane).max(1)).zip(indices.par_iter()).for_each(|(dest, &i)| {
        let source = &images.data[i * height * width..(i + 1) * height * width];
        let grey = if height == side && width == side {
            source.to_vec()
        } else {
            let image = GrayImage::from_raw(u32::try_from(width).unwrap_or(0), u32::try_from(height).unwrap_or(0), source.to_vec())
                .unwrap_or_default();
            let side32 = u32::try_from(side).unwrap_or(0);
            image::imageops::resize(&image, side32, side32, FilterType::Triangle).into_raw()
        };
        for channel in dest.chunks_mut(plane) {
            channel.copy_from_slice(&grey);
        }
    });
    RawSplit { images: Rows::Memory(out), labels: indices.iter().map(|i| labels[*i]).collect(), concepts: None, masks: None }
}

pub fn build(config: &Config) -> Result<(Meta, BTreeMap<&'static str, RawSplit>)> {
    super::table::require_dir(&config.root)?;
    let (train_images, train_labels) = pair(&config.root, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")?;
    let (test_images, test_labels) = pair(&config.root, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?;
    let items: Vec<usize> = (0..train_labels.len()).collect();
    let partition = Partition::hold_out(&items, &train_labels, 0.0, config.val, config.seed);
    let all_test: Vec<usize> = (0..test_labels.len()).collect();
    let splits = BTreeMap::from([
        ("train", split(&train_images, &train_labels, &partition.train, config.image)),
        ("val", split(&train_images, &train_labels, &partition.val, config.image)),
        ("test", split(&test_images, &test_labels, &all_test, config.image)),
    ]);
    let meta = Meta {
        classes: 10,
        class_names: (0..10).map(|d| d.to_string()).collect(),
        class_concepts: vec![Vec::new(); 10],
        image: config.image,
        splits: splits.iter().map(|(name, s)| ((*name).to_owned(), s.labels.len())).collect(),
        ..Meta::default()
    };
    Ok((meta, splits))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{err, ok, tempdir};
    use super::*;
    use std::io::Write;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 0x08, u8::try_from(dims.len()).unwrap_or(0)];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap_or_else(|e| panic!("{e}"));
        gz.finish().unwrap_or_else(|e| panic!("{e}"))
    }

    /// 20 training and 5 test images of 4 x 4; image i is filled with the value 10 * i and is
    /// labelled i mod 10. The training images are gzipped, the rest plain.
    fn mnist(root: &Path) {
        let write = |name: &str, bytes: Vec<u8>| std::fs::write(root.join(name), bytes).unwrap_or_else(|e| panic!("{e}"));
        let images = |n: u8| (0..n).flat_map(|i| vec![10 * i; 16]).collect::<Vec<u8>>();
        let labels = |n: u8| (0..n).map(|i| i % 10).collect::<Vec<u8>>();
        write("train-images-idx3-ubyte.gz", gzip(&idx(&[20, 4, 4], &images(20))));
        write("train-labels-idx1-ubyte", idx(&[20], &labels(20)));
        write("t10k-images-idx3-ubyte", idx(&[5, 4, 4], &images(5)));
        write("t10k-labels-idx1-ubyte", idx(&[5], &labels(5)));
    }

    #[test]
    fn the_idx_files_give_grey_images_in_three_channels() {
        let dir = tempdir();
        mnist(dir.path());
        let (meta, splits) = ok(build(&Config { root: dir.path().to_owned(), image: 4, val: 0.5, seed: 0 }));
        assert_eq!(meta.splits.values().copied().collect::<Vec<_>>(), vec![5, 10, 10]);
        let test = &splits["test"];
        assert_eq!(test.labels, vec![0, 1, 2, 3, 4]);
        assert_eq!(test.images.bytes()[3 * 16 * 2..3 * 16 * 3], vec![20u8; 48]);
        // Validation: one of each digit's two training images.
        let mut val = splits["val"].labels.clone();
        val.sort_unstable();
        assert_eq!(val, (0..10).collect::<Vec<i64>>());
        for (i, label) in splits["train"].labels.iter().enumerate() {
            let value = splits["train"].images.bytes()[i * 48];
            assert_eq!(i64::from(value / 10) % 10, *label);
        }
        let (_, resized) = ok(build(&Config { root: dir.path().to_owned(), image: 8, val: 0.5, seed: 0 }));
        assert_eq!(resized["test"].images.bytes().len(), 5 * 3 * 64);
        assert!(resized["test"].images.bytes()[3 * 64..6 * 64].iter().all(|v| *v == 10), "a flat image stays flat");
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempdir();
        mnist(dir.path());
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), idx(&[4], &[0, 1, 2, 3])).unwrap_or_else(|e| panic!("{e}"));
        let message = err(build(&Config { root: dir.path().to_owned(), image: 4, val: 0.1, seed: 0 }).map(|_| ()));
        assert!(message.contains("holds 5 images but") && message.contains("holds 4 labels"), "{message}");
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), idx(&[5, 1], &[0; 5])).unwrap_or_else(|e| panic!("{e}"));
        let message = err(build(&Config { root: dir.path().to_owned(), image: 4, val: 0.1, seed: 0 }).map(|_| ()));
        assert!(message.contains("t10k-labels-idx1-ubyte: not an idx file of bytes: 2 dimensions, expected 1"), "{message}");
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), idx(&[6], &[0; 5])).unwrap_or_else(|e| panic!("{e}"));
        let message = err(build(&Config { root: dir.path().to_owned(), image: 4, val: 0.1, seed: 0 }).map(|_| ()));
        assert!(message.contains("promises 6 values"), "{message}");
        std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap_or_else(|e| panic!("{e}"));
        let message = err(build(&Config { root: dir.path().to_owned(), image: 4, val: 0.1, seed: 0 }).map(|_| ()));
        assert!(
            message.starts_with("missing file") && message.contains("t10k-labels-idx1-ubyte (nor t10k-labels-idx1-ubyte.gz)"),
            "{message}"
        );
    }
}
