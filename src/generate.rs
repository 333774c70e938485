//! Random `.lth` programs drawn from the stage registry, and a driver that runs one through the
//! `lthlang` binary as a user would (`check`, then `run`).
//!
//! The generator reads everything it may write from [`crate::kinds`]: the categories and their
//! methods, each method's fields with their types and ranges, the layer tables of the built-in
//! architectures, and the presets of the stdlib. A field of a stage-reference type names an earlier
//! stage whose output it accepts; a split, a sample or `x.concepts` names a declared dataset. So a
//! field or method added to the registry is drawn without a change here, and what is drawn can be
//! wrong only in ways no single field's type rules out (which is what the generator is for).
//!
//! Programs are kept small enough to run in seconds on a CPU: `shapes` at 16–32 px with a few
//! dozen images, or `digits`; one epoch of training; one or two pruning rounds; a handful of
//! images to explain. These caps are the only knowledge the generator has beyond the registry.
//! It never writes `device = cuda` (whether that runs depends on the machine, not the program),
//! nor the fields that need a user's own files (`file(...)`, dataset folders): so `torchscript`
//! models and the folder datasets are never drawn.
//!
//! Every draw comes from one ChaCha stream seeded by the program's seed, so a seed names its
//! program exactly: `program(seed)` returns the same text on every machine and run.

use crate::kinds::layers::{self, Layer};
use crate::kinds::prune::remaining;
use crate::kinds::{Category, FieldSpec, LayerNeed, Method, Output, Ty};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The program text for `seed`.
pub fn program(seed: u64) -> String {
    Generator::new(seed).generate()
}

/// A declared stage as later draws need it.
#[derive(Clone, Debug)]
struct Declared {
    name: String,
    output: Output,
    facts: Facts,
}

#[derive(Clone, Debug, Default)]
struct Facts {
    /// The model a checkpoint, series, embedding or bank derives from (its architecture).
    architecture: Option<&'static str>,
    /// Datasets: class count when the program fixes it.
    classes: Option<i64>,
    /// Series: (rate as written, rounds).
    schedule: Option<(f64, u32)>,
    /// Training stages: epochs.
    epochs: Option<i64>,
    /// Embeddings and banks: the layer the vectors live in.
    layer: Option<String>,
    /// Stages mapped over rounds: the ticket series they read.
    series: Option<String>,
    /// Every ticket series the stage's references lead to (what `compare` must match).
    upstream: BTreeSet<String>,
    /// Datasets: a whole split is a few dozen images.
    small: bool,
}

struct Generator {
    rng: ChaCha8Rng,
    uses: BTreeSet<String>,
    lines: Vec<String>,
    declared: Vec<Declared>,
}

/// A preset of the stdlib: (module, name, category, base method).
struct Preset {
    module: &'static str,
    name: String,
    category: Category,
    method: String,
}

fn presets() -> Vec<Preset> {
    let mut out = Vec::new();
    for (index, (module, text)) in crate::stdlib::MODULES.iter().enumerate() {
        let Ok(parsed) = crate::syntax::parse(crate::source::SourceId(u32::try_from(index).unwrap_or(0)), text) else { continue };
        for decl in parsed.declarations.iter().filter(|d| d.preset) {
            let Some(category) = Category::parse(&decl.category.name) else { continue };
            out.push(Preset { module, name: decl.name.name.clone(), category, method: decl.base.name.clone() });
        }
    }
    out
}

/// Methods the generator may draw: those whose required fields it can fill without a user's files.
fn drawable(method: &Method) -> bool {
    method.fields.iter().all(|f| f.default.is_some() || !matches!(f.ty, Ty::Dir { .. } | Ty::File))
}

/// How often a method is drawn relative to the others of its category: the big networks are
/// slow even on tiny images, so they come up rarely.
fn weight(method: &Method) -> u32 {
    match (method.category, method.name) {
        (Category::Model, "resnet_tiny") => 12,
        (Category::Model, "resnet18") => 3,
        (Category::Dataset, "shapes") => 3,
        _ => 1,
    }
}

fn is_reference(ty: &Ty) -> bool {
    matches!(ty, Ty::Stage(_) | Ty::Configured { .. } | Ty::List(Ty::Stage(_)))
}

/// The range an integer field is drawn from, where the registry's range would make a program slow.
/// Returns None for fields drawn from their full range.
fn tiny(category: Category, method: &str, field: &str) -> Option<(i64, i64)> {
    Some(match (category, method, field) {
        (Category::Dataset, "shapes", "classes") => (4, 8),
        (Category::Dataset, "shapes", "image") => (16, 32),
        (Category::Dataset, "shapes", "train") => (16, 96),
        (Category::Dataset, "shapes", "val" | "test") => (10, 32),
        (Category::Dataset, "digits", "image") => (8, 16),
        (Category::Model, "resnet_tiny", "width") => (4, 8),
        (Category::Train, _, "epochs") => (1, 1),
        (Category::Train, _, "batch") => (1, 64),
        (Category::Prune, _, "rounds") => (1, 2),
        (Category::Concepts, _, "epochs") => (1, 5),
        (Category::Concepts, _, "n") => (2, 12),
        (Category::Concepts, "random", "count") => (1, 20),
        (Category::Explain, _, "epochs") => (1, 40),
        (Category::Explain, "tcav", "runs") => (2, 4),
        (Category::Explain, "tcav", "n") => (2, 12),
        (Category::Explain, _, "top") => (1, 6),
        (_, _, "batch") => (1, 64),
        (_, _, "seed") => (0, 1000),
        _ => return None,
    })
}

fn format_float(x: f64) -> String {
    if x == 0.0 {
        return "0".to_owned();
    }
    let text = format!("{x:.3e}");
    // `1.000e-3` reads as well as `1e-3`; keep the shorter form.
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    if exponent == "0" {
        mantissa.to_owned()
    } else {
        format!("{mantissa}e{exponent}")
    }
}

/// A percentage with as many decimals as it takes not to round to zero (at most 8).
fn format_percent(share: f64) -> String {
    if share == 0.0 {
        return "0%".to_owned();
    }
    let percent = share * 100.0;
    for places in 0..=8 {
        let text = format!("{percent:.places$}");
        if text.parse::<f64>().is_ok_and(|p| p > 0.0 && ((p - percent).abs() < 1e-9 || places >= 2)) {
            return format!("{text}%");
        }
    }
    format!("{percent:.8}%")
}

impl Generator {
    fn new(seed: u64) -> Generator {
        Generator { rng: ChaCha8Rng::seed_from_u64(seed), uses: BTreeSet::new(), lines: Vec::new(), declared: Vec::new() }
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.choose(&mut self.rng)
    }

    fn of_output(&self, outputs: &[Output]) -> Vec<Declared> {
        self.declared.iter().filter(|d| outputs.contains(&d.output)).cloned().collect()
    }

    fn datasets(&self) -> Vec<Declared> {
        self.of_output(&[Output::Dataset])
    }

    fn find(&self, name: &str) -> Option<&Declared> {
        self.declared.iter().find(|d| d.name == name)
    }

    fn generate(mut self) -> String {
        self.experiment();
        let datasets = if self.chance(0.05) { 2 } else { 1 };
        for i in 0..datasets {
            self.stage(Category::Dataset, &format!("data{i}"));
        }
        let models = if self.chance(0.05) { 2 } else { 1 };
        for i in 0..models {
            self.stage(Category::Model, &format!("net{i}"));
        }
        let trains = if self.chance(0.1) { 2 } else { 1 };
        for i in 0..trains {
            self.stage(Category::Train, &format!("dense{i}"));
        }
        let prunes = self.rng.gen_range(0..=2);
        for i in 0..prunes {
            self.stage(Category::Prune, &format!("tickets{i}"));
        }
        let embeds = self.rng.gen_range(0..=2);
        for i in 0..embeds {
            self.stage(Category::Embed, &format!("feats{i}"));
        }
        let banks = if embeds == 0 { 0 } else { self.rng.gen_range(0..=2) };
        for i in 0..banks {
            self.stage(Category::Concepts, &format!("bank{i}"));
        }
        let explainers = self.rng.gen_range(0..=3);
        for i in 0..explainers {
            self.stage(Category::Explain, &format!("why{i}"));
        }
        if self.chance(0.7) {
            self.stage(Category::Compare, "cmp");
            if self.chance(0.7) {
                self.stage(Category::Report, "summary");
            }
        }
        let mut text = String::new();
        for module in &self.uses {
            text.push_str(&format!("use {module}\n"));
        }
        if !self.uses.is_empty() {
            text.push('\n');
        }
        for line in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    fn experiment(&mut self) {
        if !self.chance(0.4) {
            return;
        }
        let mut fields = Vec::new();
        for spec in crate::check::EXPERIMENT_FIELDS {
            if !self.chance(0.5) {
                continue;
            }
            let value = match spec.ty {
                // More seeds replicate the whole graph: at most two.
                Ty::Seeds => {
                    if self.chance(0.5) {
                        format!("[{}]", self.rng.gen_range(0..5))
                    } else {
                        let start = self.rng.gen_range(0..5);
                        format!("{start}..{}", start + self.rng.gen_range(1..=2))
                    }
                }
                // `cuda` depends on the machine, not the program.
                Ty::Device => self.pick(&["auto", "cpu"]).map_or("auto", |w| w).to_owned(),
                Ty::Str => format!("\"gen{}\"", self.rng.gen_range(0..100)),
                _ => continue,
            };
            fields.push(format!("{} = {value}", spec.name));
        }
        self.lines.push(format!("experiment {{ {} }}", fields.join("  ")));
    }

    /// Declares one stage of `category` named `name`, or nothing when no method of the category
    /// can be fed by what is declared so far.
    fn stage(&mut self, category: Category, name: &str) {
        let methods: Vec<&'static Method> = category.methods().iter().filter(|m| drawable(m)).collect();
        let Ok(&method) = methods.choose_weighted(&mut self.rng, |m| weight(m)) else { return };
        let candidates: Vec<Preset> = presets().into_iter().filter(|p| p.category == category && p.method == method.name).collect();
        let preset = if self.chance(0.3) { self.pick(&candidates).map(|p| (p.module, p.name.clone())) } else { None };
        let mut facts = Facts::default();
        if category == Category::Model {
            facts.architecture = Some(method.name);
        }
        // References first: the fields after them (a layer, a round, the sparsities to compare)
        // are drawn from what the references lead to. They are written in the registry's order.
        let mut order: Vec<usize> = (0..method.fields.len()).collect();
        order.sort_by_key(|&i| !is_reference(&method.fields[i].ty));
        let mut values: Vec<Option<String>> = vec![None; method.fields.len()];
        for i in order {
            let spec = &method.fields[i];
            // Presets carry published sizes, and some defaults are slow: fields capped for size
            // are written whenever the default or a preset could exceed the cap.
            let sized = tiny(category, method.name, spec.name)
                .is_some_and(|(_, hi)| preset.is_some() || spec.default.and_then(|d| d.parse::<i64>().ok()).is_some_and(|d| d > hi));
            let write = spec.default.is_none() || sized || self.chance(0.45);
            if !write {
                self.default_facts(category, method, spec, &mut facts);
                continue;
            }
            match self.field(category, method, spec, &mut facts) {
                Some(value) => values[i] = Some(value),
                None if spec.default.is_none() => return,
                None => self.default_facts(category, method, spec, &mut facts),
            }
        }
        let written: Vec<String> =
            method.fields.iter().zip(values).filter_map(|(spec, value)| value.map(|v| format!("{} = {v}", spec.name))).collect();
        // Only `shapes` is sized by the generator; the splits of the others are sampled when explained.
        facts.small = category == Category::Dataset && method.name == "shapes";
        if let Some((module, preset)) = &preset {
            self.uses.insert(format!("std.{module}.{preset}"));
        }
        let base = preset.map_or_else(|| method.name.to_owned(), |(_, name)| name);
        let block = if written.is_empty() && self.chance(0.5) { String::new() } else { format!(" {{ {} }}", written.join("  ")) };
        self.lines.push(format!("{category} {name} = {base}{block}"));
        self.declared.push(Declared { name: name.to_owned(), output: method.output, facts });
    }

    /// Facts that follow from a field left at its default.
    fn default_facts(&mut self, category: Category, method: &Method, spec: &FieldSpec, facts: &mut Facts) {
        let default = spec.default.unwrap_or_default();
        match (category, spec.name) {
            (Category::Dataset, "classes") => facts.classes = default.parse().ok(),
            (Category::Train, "epochs") => facts.epochs = default.parse().ok(),
            (Category::Prune, "rate") => facts.schedule = Some((0.1, facts.schedule.map_or(14, |s| s.1))),
            (Category::Prune, "rounds") => facts.schedule = Some((facts.schedule.map_or(0.1, |s| s.0), 14)),
            _ => {}
        }
        if category == Category::Dataset && method.name == "digits" && spec.name == "task" {
            facts.classes = Some(2);
        }
    }

    /// A value for one field, or None when nothing declared can fill it.
    fn field(&mut self, category: Category, method: &Method, spec: &FieldSpec, facts: &mut Facts) -> Option<String> {
        let cap = tiny(category, method.name, spec.name);
        let value = match spec.ty {
            Ty::Int { min, max } => {
                let (lo, hi) = cap.map_or((min, max.min(min.saturating_add(1000))), |(lo, hi)| (lo.max(min), hi.min(max)));
                let n = self.rng.gen_range(lo..=hi);
                match (category, spec.name) {
                    (Category::Dataset, "classes") => facts.classes = Some(n),
                    (Category::Train, "epochs") => facts.epochs = Some(n),
                    (Category::Prune, "rounds") => {
                        facts.schedule = Some((facts.schedule.map_or(0.1, |s| s.0), u32::try_from(n).unwrap_or(1)));
                    }
                    _ => {}
                }
                n.to_string()
            }
            // Learning rates from the whole range make most programs diverge, which says nothing
            // about the language: they are drawn from where training is stable (a divergence that
            // still happens fails its node with "training diverged").
            Ty::Float { min, max, open_min } if category == Category::Train && spec.name == "lr" => {
                let top = if method.name == "adam" { 1e-2 } else { 0.1 };
                self.float(min.max(1e-5), max.min(top), open_min)
            }
            Ty::Float { min, max, open_min } => self.float(min, max, open_min),
            Ty::Fraction { min, max } => {
                let share = self.fraction(min, max);
                if category == Category::Prune && spec.name == "rate" {
                    facts.schedule = Some((share, facts.schedule.map_or(14, |s| s.1)));
                }
                format_percent(share)
            }
            Ty::Str => format!("\"title {}\"", self.rng.gen_range(0..100)),
            Ty::Bool => (if self.chance(0.5) { "true" } else { "false" }).to_owned(),
            // Most CPUs emulate bf16 and fp16 convolutions, many times slower than fp32: on the big
            // networks that makes a program many minutes long, so reduced precision comes with
            // resnet_tiny only, which runs the same code.
            Ty::Word(_) if spec.name == "precision" && !matches!(facts.architecture, None | Some("resnet_tiny")) => {
                (*self.pick(&["auto", "fp32"])?).to_owned()
            }
            Ty::Word(words) => {
                let word = (*self.pick(words)?).to_owned();
                if category == Category::Dataset && method.name == "digits" && spec.name == "task" {
                    facts.classes = Some(if word == "digit" { 10 } else { 2 });
                }
                word
            }
            Ty::Dir { .. } | Ty::File => return None,
            Ty::Stage(outputs) => self.reference(category, spec, outputs, facts)?,
            Ty::Split => format!("{}.{}", self.pick(&self.datasets())?.name, self.pick(&["train", "val", "test"])?),
            Ty::Images => {
                let dataset = self.pick(&self.datasets())?.clone();
                let split = format!("{}.{}", dataset.name, self.pick(&["train", "val", "test"])?);
                // A whole split of `shapes` is a few dozen images; of `digits`, hundreds.
                if !dataset.facts.small || self.chance(0.7) {
                    let n = self.rng.gen_range(1..=8);
                    if self.chance(0.5) {
                        format!("{split}.sample({n}, seed = {})", self.rng.gen_range(0..100))
                    } else {
                        format!("{split}.sample({n})")
                    }
                } else {
                    split
                }
            }
            Ty::ConceptLabels => format!("{}.concepts", self.pick(&self.datasets())?.name),
            Ty::Classes => {
                if self.chance(0.85) {
                    format!("{}.classes", self.pick(&self.datasets())?.name)
                } else {
                    self.rng.gen_range(2..=10).to_string()
                }
            }
            Ty::Layer { needs } => {
                let architecture = self.architecture_for(method, facts)?;
                let table = layers::builtin(architecture)?;
                // Concept vectors live in the layer the bank's embeddings come from; drawing that
                // layer most of the time keeps programs runnable, the rest tests the rule.
                if let (Some(layer), true) = (facts.layer.clone(), self.chance(0.8)) {
                    return Some(format!("\"{layer}\""));
                }
                let usable: Vec<&Layer> = table.iter().filter(|l| needs != LayerNeed::Spatial || l.kind.is_spatial()).collect();
                let layer = self.pick(&usable)?.name.clone();
                if category == Category::Embed {
                    facts.layer = Some(layer.clone());
                }
                format!("\"{layer}\"")
            }
            Ty::LrSchedule => match self.rng.gen_range(0..3) {
                0 => "constant".to_owned(),
                1 => "cosine".to_owned(),
                _ => format!("step(every = {}, gamma = {})", self.rng.gen_range(1..=3), self.float(0.0, 1.0, true)),
            },
            Ty::Rewind => match self.rng.gen_range(0..3) {
                0 => "init".to_owned(),
                1 => "none".to_owned(),
                _ => {
                    let epochs = self.trained_epochs(facts);
                    format!("epoch({})", self.rng.gen_range(0..=epochs + 1))
                }
            },
            Ty::Round => {
                let rounds = facts.schedule.map_or(0, |s| s.1);
                format!("round({})", self.rng.gen_range(0..=rounds))
            }
            Ty::Device => "cpu".to_owned(),
            Ty::ClassList => {
                let classes = facts.classes.unwrap_or(2);
                let count = self.rng.gen_range(0..=2);
                let items: Vec<String> = (0..count).map(|_| self.rng.gen_range(0..classes.max(1)).to_string()).collect();
                format!("[{}]", items.join(", "))
            }
            Ty::Metric => self.metric(),
            Ty::Seeds => "[0]".to_owned(),
            Ty::Sparsities => self.sparsities(facts)?,
            Ty::List(inner) => {
                let count = self.rng.gen_range(1..=3);
                let mut items = Vec::new();
                for _ in 0..count {
                    let item = match inner {
                        Ty::Stage(outputs) => self.reference(category, spec, outputs, facts),
                        Ty::Metric => Some(self.metric()),
                        Ty::Str => Some(format!("\"layer{}\"", self.rng.gen_range(1..4))),
                        _ => None,
                    };
                    if let Some(item) = item {
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    }
                }
                if items.is_empty() && spec.default.is_some() {
                    return None;
                }
                format!("[{}]", items.join(", "))
            }
            Ty::Configured { of, fields } => {
                let base = self.reference(category, spec, of, facts)?;
                let base_facts = self.find(&base).map(|d| d.facts.clone()).unwrap_or_default();
                let mut inner = Facts { schedule: facts.schedule, ..base_facts };
                if inner.schedule.is_none() {
                    inner.schedule =
                        self.find(&base).and_then(|d| d.facts.series.clone()).and_then(|s| self.find(&s)).and_then(|d| d.facts.schedule);
                }
                let mut options = Vec::new();
                for option in fields {
                    if self.chance(0.5) {
                        if let Some(value) = self.field(category, method, option, &mut inner) {
                            options.push(format!("{} = {value}", option.name));
                        }
                    }
                }
                if options.is_empty() {
                    base
                } else {
                    format!("{base} {{ {} }}", options.join("  "))
                }
            }
        };
        Some(value)
    }

    fn float(&mut self, min: f64, max: f64, open_min: bool) -> String {
        if !open_min && min == 0.0 && self.chance(0.2) {
            return "0".to_owned();
        }
        let low = if min > 0.0 { min } else { (max * 1e-6).max(1e-6) };
        let x = (self.rng.gen_range(low.ln()..=max.ln())).exp();
        let text = format_float(x);
        match text.parse::<f64>() {
            Ok(y) if y <= max && (y > min || (!open_min && y >= min)) => text,
            _ => format!("{max}"),
        }
    }

    /// A share from the range, at one decimal of a percent, the bounds included now and then.
    fn fraction(&mut self, min: f64, max: f64) -> f64 {
        let lowest = (min * 1000.0).ceil() as i64;
        let highest = (max * 1000.0).floor() as i64;
        let tenths = match self.rng.gen_range(0..10) {
            0 => lowest,
            1 => highest,
            _ => self.rng.gen_range(lowest..=highest),
        };
        tenths as f64 / 1000.0
    }

    fn metric(&mut self) -> String {
        match self.rng.gen_range(0..3) {
            0 => "spearman".to_owned(),
            1 => "ssim".to_owned(),
            _ => format!("top_iou({})", format_percent(self.fraction(0.001, 1.0).max(0.001))),
        }
    }

    /// Epochs of the training stage a prune stage reads (its `from`, declared before `rewind`).
    fn trained_epochs(&self, facts: &Facts) -> i64 {
        facts.epochs.unwrap_or(1)
    }

    /// The architecture of the model the stage being drawn reads, from the facts of its references.
    fn architecture_for(&self, _method: &Method, facts: &Facts) -> Option<&'static str> {
        facts.architecture
    }

    /// Weights-remaining values every series upstream of a compare stage reaches, now and then
    /// one that none reaches.
    fn sparsities(&mut self, facts: &Facts) -> Option<String> {
        let series: Vec<(f64, u32)> = self
            .of_output(&[Output::Tickets])
            .iter()
            .filter(|d| facts.upstream.is_empty() || facts.upstream.contains(&d.name))
            .filter_map(|d| d.facts.schedule)
            .collect();
        let mut values = vec![1.0];
        if let Some(&(rate, rounds)) = series.first() {
            for round in 1..=rounds {
                let share = remaining(rate, round);
                if series.iter().all(|&(r, n)| round <= n && (remaining(r, round) - share).abs() < 1e-12) {
                    values.push(share);
                }
            }
        }
        if self.chance(0.05) {
            values.push(0.123);
        }
        let items: Vec<String> = values.into_iter().map(format_percent).collect();
        Some(format!("[{}]", items.join(", ")))
    }

    /// A reference to an earlier stage whose output is one of `outputs`, recording the facts it
    /// passes on to the stage being drawn.
    fn reference(&mut self, category: Category, spec: &FieldSpec, outputs: &[Output], facts: &mut Facts) -> Option<String> {
        let candidates = self.of_output(outputs);
        let chosen = self.pick(&candidates)?.clone();
        let from = &chosen.facts;
        if facts.architecture.is_none() {
            facts.architecture = from.architecture;
        }
        match (category, spec.name) {
            (Category::Prune, "from") => {
                facts.epochs = from.epochs;
                facts.series = None;
            }
            (Category::Embed | Category::Explain, "of") => {
                facts.series = if chosen.output == Output::Tickets { Some(chosen.name.clone()) } else { from.series.clone() };
            }
            (Category::Concepts, "from") | (Category::Explain, "concepts") => {
                facts.layer = from.layer.clone();
                facts.series = from.series.clone();
            }
            _ => {}
        }
        if facts.classes.is_none() {
            facts.classes = from.classes;
        }
        if chosen.output == Output::Tickets {
            facts.upstream.insert(chosen.name.clone());
        }
        facts.upstream.extend(from.upstream.iter().cloned());
        Some(chosen.name)
    }
}

/// What became of one generated program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `check` accepted it and `run` exited 0.
    Completed,
    /// `check` refused it with these error codes.
    Refused(Vec<String>),
    /// Anything else: `check` crashed or gave no code, or `run` failed after `check` accepted.
    Failed(String),
}

/// One program run through the binary: its seed, text and outcome.
#[derive(Clone, Debug)]
pub struct Trial {
    pub seed: u64,
    pub text: String,
    pub outcome: Outcome,
    pub file: PathBuf,
}

/// Writes program `seed` into `dir` and runs `lthlang check` then, if it passes, `lthlang run`
/// with a cache inside `dir`. `lthlang` is the front-end binary; the worker is found beside it.
pub fn trial(lthlang: &Path, dir: &Path, seed: u64) -> Trial {
    let text = program(seed);
    let file = dir.join(format!("gen{seed}.lth"));
    let outcome = match std::fs::write(&file, &text) {
        Ok(()) => outcome(lthlang, dir, &file),
        Err(e) => Outcome::Failed(format!("cannot write {}: {e}", file.display())),
    };
    Trial { seed, text, outcome, file }
}

fn command(lthlang: &Path, args: &[&str], file: &Path) -> Command {
    let mut command = Command::new(lthlang);
    command
        .args(args)
        .arg(file)
        .arg("--colour")
        .arg("never")
        .env_remove("LTHLANG_CACHE")
        .env_remove("LTHLANG_WORKER")
        // A hung worker fails its node instead of stalling the suite.
        .env("LTHLANG_WORKER_TIMEOUT", "300")
        .env("NO_COLOR", "1");
    command
}

/// The error lines of an output, then its last lines.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let errors: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("error") || l.contains("panicked")).take(10).collect();
    let last = &lines[lines.len().saturating_sub(15)..];
    format!("{}\n...\n{}", errors.join("\n"), last.join("\n"))
}

fn outcome(lthlang: &Path, dir: &Path, file: &Path) -> Outcome {
    let checked = match command(lthlang, &["check", "--format", "json"], file).output() {
        Ok(output) => output,
        Err(e) => return Outcome::Failed(format!("cannot start {}: {e}", lthlang.display())),
    };
    let stderr = String::from_utf8_lossy(&checked.stderr);
    if stderr.contains("panicked") {
        return Outcome::Failed(format!("`check` panicked:\n{}", tail(&checked.stderr)));
    }
    match checked.status.code() {
        Some(0) => {}
        Some(1) => {
            let codes: BTreeSet<String> = String::from_utf8_lossy(&checked.stdout)
                .lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .filter(|d| d["type"] == "diagnostic" && d["severity"] == "error")
                .filter_map(|d| d["code"].as_str().map(str::to_owned))
                .collect();
            if codes.is_empty() {
                return Outcome::Failed(format!(
                    "`check` refused without a diagnostic code:\n{}{}",
                    String::from_utf8_lossy(&checked.stdout),
                    tail(&checked.stderr)
                ));
            }
            return Outcome::Refused(codes.into_iter().collect());
        }
        other => return Outcome::Failed(format!("`check` exited with {other:?}:\n{}", tail(&checked.stderr))),
    }
    let cache = dir.join("cache");
    let mut run = command(lthlang, &["run"], file);
    run.arg("--cache").arg(&cache);
    let ran = match run.output() {
        Ok(output) => output,
        Err(e) => return Outcome::Failed(format!("cannot start {}: {e}", lthlang.display())),
    };
    if ran.status.success() && !String::from_utf8_lossy(&ran.stderr).contains("panicked") {
        Outcome::Completed
    } else {
        Outcome::Failed(format!("`run` exited with {:?} after `check` accepted:\n{}", ran.status.code(), tail(&ran.stderr)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Origin, Sources};

    /// The same seed gives the same text; different seeds give different programs.
    #[test]
    fn a_seed_names_its_program() {
        assert_eq!(program(7), program(7));
        let distinct: BTreeSet<String> = (0..20).map(program).collect();
        assert!(distinct.len() >= 19, "only {} distinct programs in 20 seeds", distinct.len());
    }

    /// Every generated program parses, and most pass `check` (with the data folder not needed:
    /// none is drawn). What `check` refuses must be for a rule spanning stages, never a field
    /// that does not type: the generator draws each field from its own type and range.
    #[test]
    fn generated_programs_type_field_by_field() {
        let per_field = [
            "lth::check::unknown_module",
            "lth::check::unknown_name",
            "lth::check::unknown_method",
            "lth::check::unknown_field",
            "lth::check::unknown_word",
            "lth::check::unknown_member",
            "lth::check::unknown_function",
            "lth::check::duplicate_field",
            "lth::check::missing_field",
            "lth::check::type_mismatch",
            "lth::check::bad_argument",
        ];
        let mut accepted = 0;
        for seed in 0..200 {
            let text = program(seed);
            let mut sources = Sources::default();
            let id = sources.add(Origin::File(format!("gen{seed}.lth").into()), format!("gen{seed}.lth"), text.clone());
            let checked = crate::check::check(&mut sources, id);
            for d in checked.diagnostics.iter().filter(|d| d.is_error()) {
                assert!(!per_field.contains(&d.code), "seed {seed}: {} ({})\n{text}", d.code, d.message);
            }
            if !checked.has_errors() {
                accepted += 1;
            }
        }
        assert!(accepted >= 100, "only {accepted} of 200 generated programs pass `check`");
    }
}
