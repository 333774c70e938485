//! The checked program: every stage with its method resolved and every field typed, defaults
//! filled in. This is the boundary between checking and planning; nothing after it sees the AST.

use crate::kinds::{Category, Effect, Method};
use crate::source::Span;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A field value after checking. Stage references hold the referenced stage's name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    Int(i64),
    Float(f64),
    /// A share in [0, 1]; `10%` and `0.1` are the same value.
    Fraction(f64),
    Str(String),
    Bool(bool),
    Word(String),
    /// A folder or file, made absolute against the experiment's folder.
    Path(PathBuf),
    None,
    Stage(String),
    Split {
        dataset: String,
        split: String,
    },
    Sample {
        dataset: String,
        split: String,
        count: i64,
        seed: i64,
    },
    ConceptLabels {
        dataset: String,
    },
    ClassesOf {
        dataset: String,
    },
    /// `step(every = 30, gamma = 0.1)`, `epoch(3)`, `top_iou(20%)`, `cuda(1)`, `round(0)`.
    Call {
        function: String,
        args: BTreeMap<String, Value>,
    },
    List(Vec<Value>),
    Configured {
        stage: String,
        fields: BTreeMap<String, Value>,
    },
}

impl Value {
    /// The stage names this value refers to, in order of appearance.
    pub fn references(&self, out: &mut Vec<String>) {
        match self {
            Value::Stage(s) | Value::Configured { stage: s, .. } => out.push(s.clone()),
            Value::Split { dataset, .. }
            | Value::Sample { dataset, .. }
            | Value::ConceptLabels { dataset }
            | Value::ClassesOf { dataset } => out.push(dataset.clone()),
            Value::List(items) => items.iter().for_each(|v| v.references(out)),
            Value::Call { args, .. } => args.values().for_each(|v| v.references(out)),
            _ => {}
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_fraction(&self) -> Option<f64> {
        match self {
            Value::Fraction(x) | Value::Float(x) => Some(*x),
            _ => None,
        }
    }

    pub fn as_stage(&self) -> Option<&str> {
        match self {
            Value::Stage(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_word(&self) -> Option<&str> {
        match self {
            Value::Word(w) => Some(w),
            _ => None,
        }
    }
}

/// Where a field's value was written, so a plan can point at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The method's default.
    Default,
    /// In a preset or in the declaration; the span of the value.
    At(Span),
}

#[derive(Clone, Debug)]
pub struct FieldValue {
    pub value: Value,
    pub written: Written,
    pub effect: Effect,
}

#[derive(Clone, Debug)]
pub struct Stage {
    pub name: String,
    pub category: Category,
    pub method: &'static Method,
    /// Every field of the method, defaults included, in name order.
    pub fields: BTreeMap<String, FieldValue>,
    pub span: Span,
    pub name_span: Span,
}

impl Stage {
    pub fn value(&self, field: &str) -> Option<&Value> {
        self.fields.get(field).map(|f| &f.value)
    }

    /// Referenced stage names, deduplicated, in field-name order.
    pub fn inputs(&self) -> Vec<String> {
        let mut refs = Vec::new();
        for field in self.fields.values() {
            field.value.references(&mut refs);
        }
        let mut seen = std::collections::HashSet::new();
        refs.retain(|r| seen.insert(r.clone()));
        refs
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "index")]
pub enum Device {
    Auto,
    Cpu,
    Cuda(u32),
}

#[derive(Clone, Debug)]
pub struct Experiment {
    pub name: String,
    pub seeds: Vec<i64>,
    pub device: Device,
    /// Where nodes are computed unless `run --executor` says otherwise.
    pub executor: super::Executor,
}

#[derive(Clone, Debug)]
pub struct Program {
    pub experiment: Experiment,
    /// Stages in declaration order; the plan orders them by dependency.
    pub stages: Vec<Stage>,
}

impl Program {
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }
}

impl Program {
    /// The prune stages whose rounds `name` is mapped over: itself for a prune stage; for an embed,
    /// concepts or explain stage, the series of its inputs; none for other categories.
    pub fn series(&self, name: &str) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        let mut stack = vec![name.to_owned()];
        let mut seen = std::collections::HashSet::new();
        while let Some(current) = stack.pop() {
            if !seen.insert(current.clone()) {
                continue;
            }
            let Some(stage) = self.stage(&current) else { continue };
            match stage.category {
                Category::Prune => {
                    out.insert(current);
                }
                Category::Embed | Category::Concepts | Category::Explain => stack.extend(stage.inputs()),
                _ => {}
            }
        }
        out
    }

    /// Every prune stage `name` reads, directly or through any chain of stages.
    pub fn upstream_series(&self, name: &str) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        let mut stack = self.stage(name).map(Stage::inputs).unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        while let Some(current) = stack.pop() {
            if !seen.insert(current.clone()) {
                continue;
            }
            let Some(stage) = self.stage(&current) else { continue };
            if stage.category == Category::Prune {
                out.insert(current);
            } else {
                stack.extend(stage.inputs());
            }
        }
        out
    }

    /// The model declaration a stage's checkpoints come from, following `model`, `from` and `of`.
    pub fn model_of(&self, name: &str) -> Option<&Stage> {
        self.lineage(name).find(|s| s.category == Category::Model)
    }

    /// `name`, then the stage it derives from (its `model`, `from` or `of`), and so on up to the
    /// model it started as; bounded by the stage count, so a cycle ends it.
    pub fn lineage<'p>(&'p self, name: &str) -> impl Iterator<Item = &'p Stage> + 'p {
        let first = self.stage(name);
        std::iter::successors(first, move |current| {
            if current.category == Category::Model {
                return None;
            }
            let next = ["model", "from", "of"].iter().find_map(|f| current.value(f).and_then(Value::as_stage))?;
            self.stage(next)
        })
        .take(self.stages.len() + 1)
    }
}
