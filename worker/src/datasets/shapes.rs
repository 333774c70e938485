//! The synthetic `shapes` dataset: one object on a background, with concept labels and an object
//! mask per image. Classes are defined by 2-3 values of colour, size and pattern; shape and
//! background are drawn at random and carry no class information (science.md, "Datasets").
//!
//! Generation is plain Rust, deterministic from the seed: stream 0 draws the class definitions,
//! streams 1-3 the train, val and test images.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Concept groups and their values, in the order of the 15 concept indicators.
pub const GROUPS: [(&str, &[&str]); 5] = [
    ("shape", &["circle", "square", "triangle", "cross"]),
    ("colour", &["red", "green", "blue", "yellow"]),
    ("size", &["small", "large"]),
    ("pattern", &["solid", "striped"]),
    ("background", &["dark", "light", "noise"]),
];
pub const CONCEPTS: usize = 15;
const SHAPE: usize = 0;
const COLOUR: usize = 1;
const SIZE: usize = 2;
const PATTERN: usize = 3;
const BACKGROUND: usize = 4;
/// The groups that may define a class.
const DEFINING: [usize; 3] = [COLOUR, SIZE, PATTERN];

/// Offset of a group's first indicator in the concept vector.
pub fn concept_offset(group: usize) -> usize {
    GROUPS[..group].iter().map(|(_, v)| v.len()).sum()
}

pub fn concept_names() -> Vec<String> {
    GROUPS.iter().flat_map(|(g, values)| values.iter().map(move |v| format!("{g}:{v}"))).collect()
}

#[derive(Clone, Debug)]
pub struct Config {
    pub classes: usize,
    pub image: usize,
    pub train: usize,
    pub val: usize,
    pub test: usize,
    /// Probability that, in train and val, the background is tied to the class.
    pub spurious: f64,
    pub seed: u64,
}

/// A class: the value it requires in each defining group (colour, size, pattern), or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassDef(pub [Option<u8>; 3]);

impl ClassDef {
    fn defined(&self) -> impl Iterator<Item = (usize, u8)> + '_ {
        self.0.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i, v)))
    }

    /// Two classes conflict when some group both define has different values: then no image can
    /// belong to both.
    fn conflicts(&self, other: &ClassDef) -> bool {
        self.0.iter().zip(other.0.iter()).any(|(a, b)| matches!((a, b), (Some(x), Some(y)) if x != y))
    }

    /// Indices into the concept vector of the values defining this class.
    pub fn defining_concepts(&self) -> Vec<usize> {
        self.defined().map(|(i, v)| concept_offset(DEFINING[i]) + v as usize).collect()
    }

    pub fn describe(&self) -> String {
        self.defined().map(|(i, v)| GROUPS[DEFINING[i]].1[v as usize]).collect::<Vec<_>>().join(" ")
    }
}

/// Whether a set of classes meets the rules: pairwise conflicting, every defining value necessary
/// (another class differs from it in that group alone), and every group defining two classes.
pub fn valid_definitions(defs: &[ClassDef]) -> bool {
    for (i, a) in defs.iter().enumerate() {
        for b in &defs[i + 1..] {
            if !a.conflicts(b) {
                return false;
            }
        }
        for (group, value) in a.defined() {
            let necessary = defs.iter().enumerate().any(|(j, d)| {
                j != i
                    && d.0[group].is_some_and(|v| v != value)
                    && (0..3).filter(|h| *h != group).all(|h| match (a.0[h], d.0[h]) {
                        (Some(x), Some(y)) => x == y,
                        _ => true,
                    })
            });
            if !necessary {
                return false;
            }
        }
    }
    (0..3).all(|g| defs.iter().filter(|d| d.0[g].is_some()).count() >= 2)
}

/// Draws `k` class definitions meeting [`valid_definitions`], by seeded random greedy search.
pub fn class_definitions(k: usize, rng: &mut ChaCha8Rng) -> Result<Vec<ClassDef>, String> {
    let sizes: Vec<u8> = DEFINING.iter().map(|g| u8::try_from(GROUPS[*g].1.len()).unwrap_or(0)).collect();
    let mut candidates = Vec::new();
    for mask in 0u8..8 {
        if mask.count_ones() < 2 {
            continue;
        }
        let mut values = vec![[None; 3]];
        for g in 0..3 {
            if mask & (1 << g) == 0 {
                continue;
            }
            values = values
                .into_iter()
                .flat_map(|v| {
                    (0..sizes[g]).map(move |x| {
                        let mut v = v;
                        v[g] = Some(x);
                        v
                    })
                })
                .collect();
        }
        candidates.extend(values.into_iter().map(ClassDef));
    }
    for _ in 0..20_000 {
        candidates.shuffle(rng);
        let mut chosen: Vec<ClassDef> = Vec::with_capacity(k);
        for c in &candidates {
            if chosen.iter().all(|d| d.conflicts(c)) {
                chosen.push(*c);
                if chosen.len() == k {
                    break;
                }
            }
        }
        if chosen.len() == k && valid_definitions(&chosen) {
            return Ok(chosen);
        }
    }
    Err(format!("no set of {k} shape classes meets the rules; use 4 to 16 classes"))
}

/// One split, row-major: images `[n, 3, s, s]` bytes, masks `[n, s, s]`, concepts `[n, 15]`.
#[derive(Clone, Debug, Default)]
pub struct Split {
    pub images: Vec<u8>,
    pub masks: Vec<u8>,
    pub labels: Vec<i64>,
    pub concepts: Vec<f32>,
}

pub struct Shapes {
    pub classes: Vec<ClassDef>,
    pub train: Split,
    pub val: Split,
    pub test: Split,
}

pub fn generate(config: &Config) -> Result<Shapes, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let classes = class_definitions(config.classes, &mut rng)?;
    let split = |stream: u64, n: usize, spurious: f64| {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(stream);
        render_split(&classes, config.image, n, spurious, &mut rng)
    };
    Ok(Shapes {
        train: split(1, config.train, config.spurious),
        val: split(2, config.val, config.spurious),
        test: split(3, config.test, 0.0),
        classes,
    })
}

fn render_split(classes: &[ClassDef], side: usize, n: usize, spurious: f64, rng: &mut ChaCha8Rng) -> Split {
    let mut labels: Vec<i64> = (0..n).map(|i| i64::try_from(i % classes.len()).unwrap_or(0)).collect();
    labels.shuffle(rng);
    let mut split = Split {
        images: vec![0; n * 3 * side * side],
        masks: vec![0; n * side * side],
        labels: labels.clone(),
        concepts: vec![0.0; n * CONCEPTS],
    };
    for (i, label) in labels.iter().enumerate() {
        let class = classes[usize::try_from(*label).unwrap_or(0)];
        let mut value = [0u8; 5];
        value[SHAPE] = rng.gen_range(0..4);
        for (d, group) in DEFINING.iter().enumerate() {
            value[*group] = class.0[d].unwrap_or_else(|| rng.gen_range(0..u8::try_from(GROUPS[*group].1.len()).unwrap_or(1)));
        }
        value[BACKGROUND] = if spurious > 0.0 && rng.gen_bool(spurious.min(1.0)) {
            u8::try_from(usize::try_from(*label).unwrap_or(0) % 3).unwrap_or(0)
        } else {
            rng.gen_range(0..3)
        };
        for (group, v) in value.iter().enumerate() {
            split.concepts[i * CONCEPTS + concept_offset(group) + *v as usize] = 1.0;
        }
        let image = &mut split.images[i * 3 * side * side..(i + 1) * 3 * side * side];
        let mask = &mut split.masks[i * side * side..(i + 1) * side * side];
        draw(image, mask, side, &value, rng);
    }
    split
}

/// A standard normal draw (rand_distr's ziggurat).
fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample(rand_distr::StandardNormal)
}

const COLOURS: [[f64; 3]; 4] = [[0.9, 0.12, 0.1], [0.1, 0.75, 0.15], [0.12, 0.25, 0.92], [0.92, 0.85, 0.1]];

fn draw(image: &mut [u8], mask: &mut [u8], side: usize, value: &[u8; 5], rng: &mut ChaCha8Rng) {
    let s = side as f64;
    let radius = s * if value[SIZE] == 0 { 0.17 } else { 0.30 } * rng.gen_range(0.9..1.1);
    let cx = rng.gen_range(radius..(s - radius).max(radius + 1e-6));
    let cy = rng.gen_range(radius..(s - radius).max(radius + 1e-6));
    let colour = COLOURS[value[COLOUR] as usize];
    let period = (s / 8.0).max(2.0);
    let plane = side * side;
    for y in 0..side {
        for x in 0..side {
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            let inside = match value[SHAPE] {
                0 => dx * dx + dy * dy <= radius * radius,
                1 => dx.abs().max(dy.abs()) <= 0.85 * radius,
                2 => {
                    let r = 1.1 * radius;
                    dy <= r / 2.0 && dy >= -r + 3f64.sqrt() * dx.abs()
                }
                _ => {
                    let w = 0.3 * radius;
                    (dx.abs() <= w && dy.abs() <= radius) || (dy.abs() <= w && dx.abs() <= radius)
                }
            };
            let background: [f64; 3] = match value[BACKGROUND] {
                0 => [0.12, 0.12, 0.14],
                1 => [0.86, 0.86, 0.82],
                _ => [rng.gen(), rng.gen(), rng.gen()],
            };
            let stripe = value[PATTERN] == 1 && (((x + y) as f64 / period).floor() as i64) % 2 == 1;
            let noise = 0.02 * gaussian(rng);
            for c in 0..3 {
                let v = if inside { colour[c] * if stripe { 0.3 } else { 1.0 } } else { background[c] } + noise;
                image[c * plane + y * side + x] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
            mask[y * side + x] = u8::from(inside);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u64) -> Config {
        Config { classes: 8, image: 32, train: 64, val: 16, test: 16, spurious: 0.0, seed }
    }

    #[test]
    fn class_definitions_meet_every_rule_for_every_size() {
        for k in 4..=16 {
            for seed in 0..3 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let defs = class_definitions(k, &mut rng).unwrap_or_else(|e| panic!("{k} classes, seed {seed}: {e}"));
                assert_eq!(defs.len(), k);
                assert!(valid_definitions(&defs));
                assert!(defs.iter().all(|d| (2..=3).contains(&d.defined().count())));
            }
        }
    }

    #[test]
    fn rules_reject_an_unnecessary_value_and_overlapping_classes() {
        // {red, small} and {red, large}: size is necessary, colour is not (no class differs in colour alone).
        let defs = [ClassDef([Some(0), Some(0), None]), ClassDef([Some(0), Some(1), None])];
        assert!(!valid_definitions(&defs));
        // {red, small} and {red, solid} do not conflict: a red small solid object would be both.
        assert!(!ClassDef([Some(0), Some(0), None]).conflicts(&ClassDef([Some(0), None, Some(0)])));
    }

    #[test]
    fn every_image_carries_its_class_values_and_one_value_per_group() {
        let data = generate(&small(7)).unwrap_or_else(|e| panic!("{e}"));
        for (i, label) in data.train.labels.iter().enumerate() {
            let concepts = &data.train.concepts[i * CONCEPTS..(i + 1) * CONCEPTS];
            for (g, (_, values)) in GROUPS.iter().enumerate() {
                let o = concept_offset(g);
                assert_eq!(concepts[o..o + values.len()].iter().sum::<f32>(), 1.0);
            }
            for c in data.classes[*label as usize].defining_concepts() {
                assert_eq!(concepts[c], 1.0);
            }
            let mask = &data.train.masks[i * 32 * 32..(i + 1) * 32 * 32];
            let area = mask.iter().filter(|m| **m == 1).count();
            assert!(area > 20 && area < 32 * 32 / 2, "object area {area}");
        }
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = generate(&small(3)).unwrap_or_else(|e| panic!("{e}"));
        let b = generate(&small(3)).unwrap_or_else(|e| panic!("{e}"));
        let c = generate(&small(4)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.train.images, b.train.images);
        assert_eq!(a.test.masks, b.test.masks);
        assert_ne!(a.train.images, c.train.images);
    }

    #[test]
    fn spurious_background_follows_the_class_in_train_only() {
        let config = Config { spurious: 1.0, train: 200, test: 200, ..small(1) };
        let data = generate(&config).unwrap_or_else(|e| panic!("{e}"));
        let bg = concept_offset(BACKGROUND);
        let tied = |split: &Split| {
            split.labels.iter().enumerate().filter(|(i, l)| split.concepts[i * CONCEPTS + bg + (**l as usize % 3)] == 1.0).count() as f64
                / split.labels.len() as f64
        };
        assert_eq!(tied(&data.train), 1.0);
        assert!(tied(&data.test) < 0.6);
    }
}
