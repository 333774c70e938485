//! `digits`: UCI optical handwritten digits (8x8, values 0-16). The copy shipped with lthlang
//! (stdlib/data/uci-digits, CC BY 4.0) is compiled into the worker; `root` reads another copy.
//! Even/odd task: class 0 even, class 1 odd; the ten digits are the concept labels.

use super::super::data::{Meta, RawSplit, Rows};
use super::super::{io_error, Context, Result, StageError};
use lthlang::check::Value;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::io::Read;

const SHIPPED: &[u8] = include_bytes!("../../../stdlib/data/uci-digits/digits.csv.gz");

/// Parses the gzipped CSV: rows of 64 pixel values then the digit, without a header.
pub fn parse(gz: &[u8], name: &str) -> Result<Vec<([u8; 64], u8)>> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .map_err(|e| StageError::new(format!("{name}: not a gzipped text file: {e}")))?;
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| StageError::new(format!("{name}: {e}")))?;
        let line = record.position().map_or(0, csv::Position::line);
        let bad = || StageError::new(format!("{name}, line {line}: expected 65 integers (64 pixels 0-16, then the digit 0-9)"));
        if record.len() != 65 {
            return Err(bad());
        }
        let mut pixels = [0u8; 64];
        for (p, v) in pixels.iter_mut().zip(record.iter()) {
            *p = v.parse::<u8>().ok().filter(|x| *x <= 16).ok_or_else(bad)?;
        }
        let digit = record[64].parse::<u8>().ok().filter(|d| *d <= 9).ok_or_else(bad)?;
        rows.push((pixels, digit));
    }
    Ok(rows)
}

pub fn artifact(ctx: &Context) -> Result<(Meta, BTreeMap<&'static str, RawSplit>)> {
    let rows = match ctx.field("root")? {
        Value::Path(dir) => {
            let path = dir.join("digits.csv.gz");
            let bytes = std::fs::read(&path).map_err(|e| io_error(&path, &e))?;
            parse(&bytes, &path.display().to_string())?
        }
        _ => parse(SHIPPED, "the shipped digits.csv.gz")?,
    };
    let even_odd = ctx.word("task")? == "even_odd";
    let side = usize::try_from(ctx.int("image")?).unwrap_or(8);
    let seed = u64::try_from(ctx.int("seed")?).unwrap_or(0);
    let test_share = ctx.float("test")?;
    let val_share = ctx.float("val")?;
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n_test = (test_share * rows.len() as f64).round() as usize;
    let n_val = (val_share * (rows.len() - n_test) as f64).round() as usize;
    let (test, rest) = order.split_at(n_test);
    let (val, train) = rest.split_at(n_val);
    let build = |indices: &[usize]| {
        let mut images = Vec::with_capacity(indices.len() * 3 * side * side);
        let mut split = RawSplit { images: Rows::Memory(Vec::new()), labels: Vec::new(), concepts: Some(Vec::new()), masks: None };
        for &i in indices {
            let (pixels, digit) = &rows[i];
            let plane = upscale(pixels, side);
            for _ in 0..3 {
                images.extend_from_slice(&plane);
            }
            split.labels.push(if even_odd { i64::from(digit % 2) } else { i64::from(*digit) });
            if let Some(c) = split.concepts.as_mut() {
                c.extend((0..10).map(|d| if d == *digit { 1.0f32 } else { 0.0 }));
            }
        }
        split.images = Rows::Memory(images);
        split
    };
    let (class_names, class_concepts) = if even_odd {
        (vec!["even".to_owned(), "odd".to_owned()], vec![vec![0, 2, 4, 6, 8], vec![1, 3, 5, 7, 9]])
    } else {
        ((0..10).map(|d| d.to_string()).collect(), (0..10).map(|d| vec![d]).collect())
    };
    let meta = Meta {
        classes: class_names.len(),
        class_names,
        concept_names: (0..10).map(|d| format!("digit:{d}")).collect(),
        class_concepts,
        image: side,
        splits: BTreeMap::from([("train".to_owned(), train.len()), ("val".to_owned(), val.len()), ("test".to_owned(), test.len())]),
        ..Meta::default()
    };
    Ok((meta, BTreeMap::from([("train", build(train)), ("val", build(val)), ("test", build(test))])))
}

/// 8x8 counts (0-16) to a `side` x `side` byte image, nearest neighbour (block replication keeps
/// the data's 4x4-block structure visible).
fn upscale(pixels: &[u8; 64], side: usize) -> Vec<u8> {
    let mut out = vec![0u8; side * side];
    for y in 0..side {
        for x in 0..side {
            let v = u16::from(pixels[(y * 8 / side) * 8 + x * 8 / side]);
            out[y * side + x] = u8::try_from(v * 255 / 16).unwrap_or(255);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_copy_has_1797_rows_with_every_digit() {
        let rows = parse(SHIPPED, "shipped").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows.len(), 1797);
        for d in 0..10 {
            assert!(rows.iter().filter(|(_, digit)| *digit == d).count() > 170);
        }
    }

    #[test]
    fn a_malformed_row_names_its_line() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"1,2,3\n").unwrap_or_else(|e| panic!("{e}"));
        let bytes = gz.finish().unwrap_or_else(|e| panic!("{e}"));
        let err = parse(&bytes, "x.csv.gz").err().map(|e| e.0).unwrap_or_default();
        assert!(err.contains("x.csv.gz, line 1"), "{err}");
        assert!(parse(b"not gzip", "y").is_err());
    }
}
