//! `dataset` methods. Folder fields name the files of each dataset's published layout, so a wrong
//! folder is caught by `check` rather than an hour into a run.

use super::{Category, DatasetFacts, FieldSpec, Method, Output, Ty, SEED};

const fn image(default: &'static str) -> FieldSpec {
    FieldSpec::optional("image", Ty::Int { min: 8, max: 2048 }, default, "side of the square input in pixels")
}
const SKIP_CORRUPT: FieldSpec =
    FieldSpec::optional("skip_corrupt", Ty::Bool, "false", "skip unreadable images (counted in the report) instead of failing");
const VAL: FieldSpec =
    FieldSpec::optional("val", Ty::Fraction { min: 0.0, max: 0.9 }, "10%", "share of the training images held out for validation");
const TEST: FieldSpec = FieldSpec::optional("test", Ty::Fraction { min: 0.0, max: 0.9 }, "20%", "share of the images held out for testing");
const AUGMENT: FieldSpec = FieldSpec::optional("augment", Ty::Bool, "true", "random-resized crop and flip on training images");

// Version 2: images and masks moved to per-split row files (worker/src/rows.rs).
const fn dataset(name: &'static str, fields: &'static [FieldSpec], facts: DatasetFacts, doc: &'static str) -> Method {
    Method { category: Category::Dataset, name, version: 2, output: Output::Dataset, fields, dataset: Some(facts), doc }
}

/// As [`dataset`], at another version.
const fn dataset_at(version: u32, name: &'static str, fields: &'static [FieldSpec], facts: DatasetFacts, doc: &'static str) -> Method {
    Method { version, ..dataset(name, fields, facts, doc) }
}

const NO_LABELS: DatasetFacts = DatasetFacts { concept_labels: false, object_masks: false, bounding_boxes: false, fixed_classes: None };

pub const METHODS: &[Method] = &[
    // Version 3: pixel noise drawn with rand_distr's normal (ziggurat), not Box-Muller.
    dataset_at(
        3,
        "shapes",
        &[
            FieldSpec::optional("classes", Ty::Int { min: 4, max: 16 }, "8", "number of classes, each defined by 2-3 values of colour, size and pattern (4 to 16: fewer or more cannot all be defined by necessary values)"),
            image("32"),
            FieldSpec::optional("train", Ty::Int { min: 10, max: 1_000_000 }, "2000", "training images"),
            FieldSpec::optional("val", Ty::Int { min: 10, max: 1_000_000 }, "500", "validation images"),
            FieldSpec::optional("test", Ty::Int { min: 10, max: 1_000_000 }, "500", "test images"),
            FieldSpec::optional("spurious", Ty::Fraction { min: 0.0, max: 1.0 }, "0%", "probability that the background is tied to the class in train and val"),
            SEED,
        ],
        DatasetFacts { concept_labels: true, object_masks: true, bounding_boxes: false, fixed_classes: None },
        "synthetic objects on backgrounds with concept labels and object masks",
    ),
    dataset(
        "digits",
        &[
            FieldSpec::optional("root", Ty::Dir { contains: &["digits.csv.gz"] }, "none", "folder holding digits.csv.gz; `none` uses the copy shipped with lthlang"),
            FieldSpec::optional("task", Ty::Word(&["even_odd", "digit"]), "even_odd", "even/odd (the ten digits become concepts) or the ten digits as classes"),
            image("8"),
            VAL,
            TEST,
            SEED,
        ],
        DatasetFacts { concept_labels: true, object_masks: false, bounding_boxes: false, fixed_classes: None },
        "UCI optical handwritten digits, 8x8, 1,797 images (CC BY 4.0)",
    ),
    dataset(
        "cub200",
        &[
            FieldSpec::required("root", Ty::Dir { contains: &["images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt", "images"] }, "the CUB_200_2011 folder as distributed"),
            image("448"),
            FieldSpec::optional("concepts", Ty::Word(&["denoised", "raw"]), "denoised", "class-level attributes on for at least `min_classes` classes, or all 312 per-image attributes"),
            FieldSpec::optional("min_classes", Ty::Int { min: 1, max: 200 }, "10", "a denoised attribute is kept when on for this many classes"),
            VAL,
            AUGMENT,
            SKIP_CORRUPT,
            SEED,
        ],
        DatasetFacts { concept_labels: true, object_masks: false, bounding_boxes: true, fixed_classes: Some(200) },
        "Caltech-UCSD Birds-200-2011",
    ),
    dataset(
        "ham10000",
        &[
            FieldSpec::required("root", Ty::Dir { contains: &["HAM10000_metadata.csv"] }, "folder with HAM10000_metadata.csv and the image folders"),
            image("299"),
            VAL,
            TEST,
            AUGMENT,
            SKIP_CORRUPT,
            SEED,
        ],
        DatasetFacts { fixed_classes: Some(2), ..NO_LABELS },
        "HAM10000 dermatoscopic images, benign vs malignant (mel, bcc), split by lesion",
    ),
    dataset(
        "derm7pt",
        &[
            FieldSpec::required("root", Ty::Dir { contains: &["meta/meta.csv", "images"] }, "the Derm7pt release folder"),
            image("299"),
            SKIP_CORRUPT,
            SEED,
        ],
        DatasetFacts { concept_labels: true, object_masks: false, bounding_boxes: false, fixed_classes: Some(2) },
        "Derm7pt: the seven-point checklist concepts, used as a probe set for `cav`",
    ),
    dataset(
        "image_folder",
        &[
            FieldSpec::required("root", Ty::Dir { contains: &[] }, "a folder with one sub-folder of images per class"),
            image("224"),
            VAL,
            TEST,
            AUGMENT,
            SKIP_CORRUPT,
            SEED,
        ],
        NO_LABELS,
        "any folder of class folders",
    ),
    dataset(
        "mnist",
        &[
            FieldSpec::required("root", Ty::Dir {
                    contains: &[
                        "train-images-idx3-ubyte|train-images-idx3-ubyte.gz",
                        "train-labels-idx1-ubyte|train-labels-idx1-ubyte.gz",
                        "t10k-images-idx3-ubyte|t10k-images-idx3-ubyte.gz",
                        "t10k-labels-idx1-ubyte|t10k-labels-idx1-ubyte.gz",
                    ],
                },
                "folder with the four idx files, gzipped or not",
            ),
            image("28"),
            VAL,
            SEED,
        ],
        DatasetFacts { fixed_classes: Some(10), ..NO_LABELS },
        "MNIST in its idx format",
    ),
];
