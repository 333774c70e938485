//! The stage kinds: every category, its methods, and each method's fields with their types,
//! defaults and allowed ranges. This is the single registry the checker validates against, the
//! planner expands from and the cache fingerprints with. It knows nothing of tch: the worker's
//! implementations live in `stages/` and are looked up by the same `(category, method)` names.

pub mod compare;
pub mod concepts;
pub mod dataset;
pub mod embed;
pub mod explain;
pub mod layers;
pub mod model;
pub mod prune;
pub mod report;
pub mod train;

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Dataset,
    Model,
    Train,
    Prune,
    Embed,
    Concepts,
    Explain,
    Compare,
    Report,
}

impl Category {
    pub const ALL: [Category; 9] = [
        Category::Dataset,
        Category::Model,
        Category::Train,
        Category::Prune,
        Category::Embed,
        Category::Concepts,
        Category::Explain,
        Category::Compare,
        Category::Report,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::Dataset => "dataset",
            Category::Model => "model",
            Category::Train => "train",
            Category::Prune => "prune",
            Category::Embed => "embed",
            Category::Concepts => "concepts",
            Category::Explain => "explain",
            Category::Compare => "compare",
            Category::Report => "report",
        }
    }

    pub fn parse(word: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == word)
    }

    pub fn methods(self) -> &'static [Method] {
        match self {
            Category::Dataset => dataset::METHODS,
            Category::Model => model::METHODS,
            Category::Train => train::METHODS,
            Category::Prune => prune::METHODS,
            Category::Embed => embed::METHODS,
            Category::Concepts => concepts::METHODS,
            Category::Explain => explain::METHODS,
            Category::Compare => compare::METHODS,
            Category::Report => report::METHODS,
        }
    }

    pub fn method(self, name: &str) -> Option<&'static Method> {
        self.methods().iter().find(|m| m.name == name)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a stage produces; field types name the outputs they accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Output {
    Dataset,
    Model,
    Checkpoint,
    /// One checkpoint per pruning round; stages fed by it are mapped over the rounds.
    Tickets,
    Embeddings,
    ConceptBank,
    ConceptModel,
    Saliency,
    Scores,
    Comparison,
    Report,
}

impl Output {
    pub fn article(self) -> &'static str {
        match self {
            Output::Dataset => "a dataset",
            Output::Model => "a model",
            Output::Checkpoint => "a trained checkpoint",
            Output::Tickets => "a ticket series (prune)",
            Output::Embeddings => "embeddings",
            Output::ConceptBank => "a concept bank",
            Output::ConceptModel => "a concept model (pcbm)",
            Output::Saliency => "saliency maps",
            Output::Scores => "concept scores",
            Output::Comparison => "a comparison",
            Output::Report => "a report",
        }
    }
}

/// The type of a field. Each variant documents the forms a user may write.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    /// An integer in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    /// A number in `min..=max` (`open_min`: strictly above `min`).
    Float {
        min: f64,
        max: f64,
        open_min: bool,
    },
    /// A share written `10%` or `0.1`, strictly between the bounds given as fractions.
    Fraction {
        min: f64,
        max: f64,
    },
    Str,
    /// `true` or `false`.
    Bool,
    /// One of the listed words.
    Word(&'static [&'static str]),
    /// A folder: `"path"` or `env("VAR")`; it must exist and contain the listed entries.
    /// A folder holding each entry of `contains`; an entry `a|b` is satisfied by either name.
    Dir {
        contains: &'static [&'static str],
    },
    /// `file("path")`, relative to the experiment file; it must exist.
    File,
    /// A reference to a stage producing one of these outputs.
    Stage(&'static [Output]),
    /// `data.train`, `data.val` or `data.test`.
    Split,
    /// A split, or `data.test.sample(n, seed = s)`.
    Images,
    /// `data.concepts`: the dataset's concept labels (datasets that have them).
    ConceptLabels,
    /// A class count: an integer, or `data.classes`.
    Classes,
    /// The name of a layer of the model this stage reads, as a string.
    Layer {
        needs: LayerNeed,
    },
    /// `constant`, `cosine` or `step(every = n, gamma = g)`.
    LrSchedule,
    /// `init`, `none` or `epoch(k)`.
    Rewind,
    /// `round(k)`: round k of the ticket series (0 is the dense network).
    Round,
    /// `auto`, `cpu`, `cuda` or `cuda(k)`.
    Device,
    /// Class names as strings, or class indices.
    ClassList,
    /// `spearman`, `ssim` or `top_iou(p%)`.
    Metric,
    /// A list of integers, or a range.
    Seeds,
    /// Weights remaining as percentages; each must match a round of the ticket series.
    Sparsities,
    /// A list of the given type.
    List(&'static Ty),
    /// A reference configured with its own fields: `head { top = 3 }`.
    Configured {
        of: &'static [Output],
        fields: &'static [FieldSpec],
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerNeed {
    /// Any named layer (pooled embeddings).
    Any,
    /// A spatial feature map (the Grad-CAM family).
    Spatial,
    /// Any layer; a warning when only pooling and the linear head follow it (TCAV).
    NotBeforeHead,
}

impl Ty {
    /// How the type reads in "expected ..." messages.
    pub fn expected(&self) -> String {
        match self {
            Ty::Int { min, max } => format!("an integer from {min} to {max}"),
            Ty::Float { min, max, open_min: false } => format!("a number from {min} to {max}"),
            Ty::Float { min, max, .. } => format!("a number above {min}, at most {max}"),
            Ty::Fraction { .. } => "a percentage such as `10%` (or a fraction such as `0.1`)".to_owned(),
            Ty::Str => "a string".to_owned(),
            Ty::Bool => "`true` or `false`".to_owned(),
            Ty::Word(words) => one_of(words),
            Ty::Dir { .. } => "a folder: a string or `env(\"VAR\")`".to_owned(),
            Ty::File => "`file(\"path\")`".to_owned(),
            Ty::Stage(outputs) => outputs.iter().map(|o| o.article()).collect::<Vec<_>>().join(" or "),
            Ty::Split => "a split such as `data.train`".to_owned(),
            Ty::Images => "images such as `data.test` or `data.test.sample(16, seed = 0)`".to_owned(),
            Ty::ConceptLabels => "concept labels such as `data.concepts`".to_owned(),
            Ty::Classes => "a class count or `data.classes`".to_owned(),
            Ty::Layer { .. } => "a layer name as a string, such as \"layer4\"".to_owned(),
            Ty::LrSchedule => "`constant`, `cosine` or `step(every = 30, gamma = 0.1)`".to_owned(),
            Ty::Rewind => "`init`, `none` or `epoch(k)`".to_owned(),
            Ty::Round => "`round(k)`".to_owned(),
            Ty::Device => "`auto`, `cpu`, `cuda` or `cuda(k)`".to_owned(),
            Ty::ClassList => "a list of class names or indices".to_owned(),
            Ty::Metric => "`spearman`, `ssim` or `top_iou(20%)`".to_owned(),
            Ty::Seeds => "a list of integers or a range such as `0..3`".to_owned(),
            Ty::Sparsities => "a list of percentages of weights remaining, such as `[100%, 23%]`".to_owned(),
            Ty::List(inner) => format!("a list of {}", strip_article(&inner.expected())),
            Ty::Configured { of, .. } => format!("{} with optional `{{ fields }}`", Ty::Stage(of).expected()),
        }
    }
}

fn strip_article(s: &str) -> String {
    s.strip_prefix("a ").or_else(|| s.strip_prefix("an ")).unwrap_or(s).to_owned()
}

pub fn one_of(words: &[&str]) -> String {
    or_list(&words.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>())
}

/// `a`, `a or b`, `a, b or c`.
pub fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The entries of a [`Ty::Dir`] layout as prose: `a|b` (either name will do) reads "`a` (or `b`)".
pub fn layout_entries(entries: &[&str]) -> String {
    let described: Vec<String> = entries
        .iter()
        .map(|entry| {
            let mut names = entry.split('|');
            let first = names.next().unwrap_or_default();
            let others: Vec<String> = names.map(|n| format!("`{n}`")).collect();
            if others.is_empty() {
                format!("`{first}`")
            } else {
                format!("`{first}` (or {})", or_list(&others))
            }
        })
        .collect();
    or_list(&described)
}

/// Whether a field can change what a stage computes. Cosmetic fields never enter a cache key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Result,
    Cosmetic,
}

#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    pub name: &'static str,
    pub ty: Ty,
    /// The default written in the language itself; `None` makes the field required.
    pub default: Option<&'static str>,
    pub effect: Effect,
    pub doc: &'static str,
}

impl FieldSpec {
    pub const fn required(name: &'static str, ty: Ty, doc: &'static str) -> Self {
        FieldSpec { name, ty, default: None, effect: Effect::Result, doc }
    }

    pub const fn optional(name: &'static str, ty: Ty, default: &'static str, doc: &'static str) -> Self {
        FieldSpec { name, ty, default: Some(default), effect: Effect::Result, doc }
    }

    pub const fn cosmetic(name: &'static str, ty: Ty, default: &'static str, doc: &'static str) -> Self {
        FieldSpec { name, ty, default: Some(default), effect: Effect::Cosmetic, doc }
    }
}

/// Facts about a dataset method the checker needs before anything runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct DatasetFacts {
    pub concept_labels: bool,
    pub object_masks: bool,
    pub bounding_boxes: bool,
    /// Class count when the method fixes it; otherwise the `classes` field or unknown until run.
    pub fixed_classes: Option<u32>,
}

#[derive(Clone, Copy, Debug)]
pub struct Method {
    pub category: Category,
    pub name: &'static str,
    /// Bumped whenever the implementation's results change; part of every cache key.
    pub version: u32,
    pub output: Output,
    pub fields: &'static [FieldSpec],
    pub dataset: Option<DatasetFacts>,
    pub doc: &'static str,
}

impl Method {
    pub fn field(&self, name: &str) -> Option<&'static FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Fields and input sets that several categories share.
pub(crate) const SEED: FieldSpec = FieldSpec::optional(
    "seed",
    Ty::Int { min: 0, max: i64::MAX },
    "0",
    "seed of this stage's random stream, mixed with the experiment seed",
);
/// The arithmetic of a stage's network passes. `auto` is bf16 on a GPU that has it (compute
/// capability 8.0 or newer) and fp32 everywhere else; bf16 and fp16 run under libtorch's autocast
/// (weights stay fp32), and fp16 training scales the loss as `torch.amp.GradScaler` does.
pub(crate) const PRECISION_WORDS: &[&str] = &["auto", "fp32", "bf16", "fp16"];
pub(crate) const PRECISION: FieldSpec = FieldSpec::optional(
    "precision",
    Ty::Word(PRECISION_WORDS),
    "auto",
    "arithmetic of the network's passes: `auto` (bf16 on a GPU that supports it, fp32 on the CPU), `fp32`, `bf16` or `fp16` (mixed precision under autocast; weights stay fp32)",
);
/// The memory format of images and convolution weights: NHWC when true, as
/// `model.to(memory_format=torch.channels_last)` does. Results agree with NCHW to rounding.
pub(crate) const CHANNELS_LAST: FieldSpec = FieldSpec::optional(
    "channels_last",
    Ty::Bool,
    "false",
    "keep images and convolution weights channels-last (NHWC) on a GPU, usually faster with bf16 or fp16; the CPU runs NCHW (no faster there) and warns",
);
pub(crate) const STAGE_CHECKPOINT: &[Output] = &[Output::Checkpoint, Output::Tickets];
