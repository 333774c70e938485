//! Typing one written value against a field type, producing a [`Value`] or diagnostics.

use super::codes;
use super::program::Value;
use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::kinds::{layout_entries, one_of, Category, FieldSpec, Method, Output, Ty};
use crate::source::{Sources, Span};
use crate::syntax::ast::{Arg, Expr, ExprKind, Field};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// What the checker knows of a stage before typing its fields.
#[derive(Clone, Debug)]
pub struct StageHeader {
    pub category: Category,
    pub method: Option<&'static Method>,
    pub name_span: Span,
}

impl StageHeader {
    pub fn output(&self) -> Option<Output> {
        self.method.map(|m| m.output)
    }
}

/// The built-in functions, for "did you mean" on unknown calls.
const FUNCTIONS: &[&str] = &["env", "file", "step", "epoch", "round", "cuda", "top_iou", "sample"];
const SPLITS: &[&str] = &["train", "val", "test"];
const DATASET_MEMBERS: &[&str] = &["train", "val", "test", "classes", "concepts"];

pub struct Typer<'a> {
    pub sources: &'a Sources,
    pub stages: &'a BTreeMap<String, StageHeader>,
    pub presets: &'a HashMap<String, Category>,
    /// Whether a dataset folder that is missing or incomplete is an error (else a warning).
    pub require_data: bool,
    pub diagnostics: &'a mut Vec<Diagnostic>,
}

impl Typer<'_> {
    fn error(&mut self, code: &'static str, span: Span, message: impl Into<String>, label: impl Into<String>) -> Option<Value> {
        self.diagnostics.push(Diagnostic::error(code, span, message, label));
        None
    }

    fn push(&mut self, diagnostic: Diagnostic) -> Option<Value> {
        self.diagnostics.push(diagnostic);
        None
    }

    fn mismatch(&mut self, expr: &Expr, ty: &Ty) -> Option<Value> {
        if let ExprKind::Call { function, .. } = &expr.kind {
            if !FUNCTIONS.contains(&function.name.as_str()) {
                return self.push(
                    Diagnostic::error(
                        codes::UNKNOWN_FUNCTION,
                        function.span,
                        format!("unknown function `{}`", function.name),
                        "not a built-in function",
                    )
                    .with_help_opt(did_you_mean(&function.name, FUNCTIONS.iter().copied())),
                );
            }
        }
        self.error(codes::TYPE_MISMATCH, expr.span, format!("expected {}, found {}", ty.expected(), expr.describe()), "wrong type")
    }

    /// Types `expr` against `ty`. `none` is accepted only where the field's default is `none`.
    pub fn value(&mut self, expr: &Expr, ty: &Ty, allow_none: bool) -> Option<Value> {
        if allow_none && matches!(&expr.kind, ExprKind::Name(n) if n == "none") {
            return Some(Value::None);
        }
        match ty {
            Ty::Int { min, max } => match expr.kind {
                ExprKind::Integer(n) => {
                    self.in_range(n as f64, *min as f64, *max as f64, expr.span, &ty.expected()).map(|()| Value::Int(n))
                }
                _ => self.mismatch(expr, ty),
            },
            Ty::Float { min, max, open_min } => {
                let x = match expr.kind {
                    ExprKind::Integer(n) => n as f64,
                    ExprKind::Float(x) => x,
                    _ => return self.mismatch(expr, ty),
                };
                if (*open_min && x <= *min) || x < *min || x > *max {
                    return self.error(
                        codes::OUT_OF_RANGE,
                        expr.span,
                        format!("value `{x}` is out of range"),
                        format!("must be {}", ty.expected()),
                    );
                }
                Some(Value::Float(x))
            }
            Ty::Fraction { min, max } => {
                let x = match expr.kind {
                    ExprKind::Percent(p) => p / 100.0,
                    ExprKind::Float(x) => x,
                    ExprKind::Integer(n) if n == 0 || n == 1 => n as f64,
                    _ => return self.mismatch(expr, ty),
                };
                if x < *min || x > *max {
                    let shown = match expr.kind {
                        ExprKind::Percent(p) => format!("{p}%"),
                        _ => format!("{x}"),
                    };
                    return self.error(
                        codes::OUT_OF_RANGE,
                        expr.span,
                        format!("share `{shown}` is out of range"),
                        format!("must be from {} to {}", percent(*min), percent(*max)),
                    );
                }
                Some(Value::Fraction(x))
            }
            Ty::Str | Ty::Layer { .. } => match &expr.kind {
                ExprKind::Str(s) => Some(Value::Str(s.clone())),
                ExprKind::Call { function, receiver: None, args } if function.name == "env" => {
                    self.env(expr, args, false).map(|(_, v)| Value::Str(v))
                }
                _ => self.mismatch(expr, ty),
            },
            Ty::Bool => match &expr.kind {
                ExprKind::Name(n) if n == "true" => Some(Value::Bool(true)),
                ExprKind::Name(n) if n == "false" => Some(Value::Bool(false)),
                ExprKind::Name(n) => self.unknown_word(expr.span, n, &["true", "false"]),
                _ => self.mismatch(expr, ty),
            },
            Ty::Word(words) => match &expr.kind {
                ExprKind::Name(n) if words.contains(&n.as_str()) => Some(Value::Word(n.clone())),
                ExprKind::Name(n) => self.unknown_word(expr.span, n, words),
                _ => self.mismatch(expr, ty),
            },
            Ty::Dir { contains } => self.dir(expr, ty, contains),
            Ty::File => self.file(expr, ty),
            Ty::Stage(outputs) => match &expr.kind {
                ExprKind::Name(n) => self.stage_ref(n, expr.span, outputs).map(Value::Stage),
                _ => self.mismatch(expr, ty),
            },
            Ty::Split => self.split(expr, ty),
            Ty::Images => match &expr.kind {
                ExprKind::Call { receiver: Some(receiver), function, args } if function.name == "sample" => {
                    let Some(Value::Split { dataset, split }) = self.split(receiver, &Ty::Split) else { return None };
                    let params = [("n", Ty::Int { min: 1, max: 1_000_000 }, None), ("seed", Ty::Int { min: 0, max: i64::MAX }, Some(0))];
                    let values = self.args(function.span, &function.name, args, &params)?;
                    let get = |k: &str| values.get(k).and_then(Value::as_int).unwrap_or(0);
                    Some(Value::Sample { dataset, split, count: get("n"), seed: get("seed") })
                }
                _ => self.split(expr, ty),
            },
            Ty::ConceptLabels => self.dataset_member(expr, ty, "concepts"),
            Ty::Classes => match expr.kind {
                ExprKind::Integer(n) => {
                    self.in_range(n as f64, 2.0, 100_000.0, expr.span, "an integer from 2 to 100000").map(|()| Value::Int(n))
                }
                _ => self.dataset_member(expr, ty, "classes"),
            },
            Ty::LrSchedule => match &expr.kind {
                ExprKind::Name(n) if n == "constant" || n == "cosine" => Some(Value::Word(n.clone())),
                ExprKind::Name(n) => self.unknown_word(expr.span, n, &["constant", "cosine", "step"]),
                ExprKind::Call { receiver: None, function, args } if function.name == "step" => {
                    let params = [
                        ("every", Ty::Int { min: 1, max: 100_000 }, None),
                        ("gamma", Ty::Float { min: 0.0, max: 1.0, open_min: true }, None),
                    ];
                    self.call(function.span, &function.name, args, &params)
                }
                _ => self.mismatch(expr, ty),
            },
            Ty::Rewind => match &expr.kind {
                ExprKind::Name(n) if n == "init" || n == "none" => Some(Value::Word(n.clone())),
                ExprKind::Name(n) => self.unknown_word(expr.span, n, &["init", "none", "epoch"]),
                ExprKind::Call { receiver: None, function, args } if function.name == "epoch" => {
                    self.call(function.span, &function.name, args, &[("k", Ty::Int { min: 0, max: 100_000 }, None)])
                }
                _ => self.mismatch(expr, ty),
            },
            Ty::Round => match &expr.kind {
                ExprKind::Call { receiver: None, function, args } if function.name == "round" => {
                    self.call(function.span, &function.name, args, &[("k", Ty::Int { min: 0, max: 200 }, None)])
                }
                _ => self.mismatch(expr, ty),
            },
            Ty::Device => match &expr.kind {
                ExprKind::Name(n) if ["auto", "cpu", "cuda"].contains(&n.as_str()) => Some(Value::Word(n.clone())),
                ExprKind::Name(n) => self.unknown_word(expr.span, n, &["auto", "cpu", "cuda"]),
                ExprKind::Call { receiver: None, function, args } if function.name == "cuda" => {
                    self.call(function.span, &function.name, args, &[("index", Ty::Int { min: 0, max: 64 }, None)])
                }
                _ => self.mismatch(expr, ty),
            },
            Ty::ClassList => {
                let items = self.list_items(expr);
                let mut out = Vec::new();
                for item in items {
                    match &item.kind {
                        ExprKind::Str(s) => out.push(Value::Str(s.clone())),
                        ExprKind::Integer(n) if *n >= 0 => out.push(Value::Int(*n)),
                        _ => {
                            self.mismatch(item, &Ty::ClassList);
                        }
                    }
                }
                Some(Value::List(out))
            }
            Ty::Metric => match &expr.kind {
                ExprKind::Name(n) if n == "spearman" || n == "ssim" => Some(Value::Word(n.clone())),
                ExprKind::Name(n) => self.unknown_word(expr.span, n, &["spearman", "ssim", "top_iou"]),
                ExprKind::Call { receiver: None, function, args } if function.name == "top_iou" => {
                    self.call(function.span, &function.name, args, &[("p", Ty::Fraction { min: 0.001, max: 1.0 }, None)])
                }
                _ => self.mismatch(expr, ty),
            },
            Ty::Seeds => match expr.kind {
                ExprKind::Range { start, end, inclusive } => {
                    let end = if inclusive { end.saturating_add(1) } else { end };
                    if start < 0 || end <= start || end - start > 1000 {
                        return self.error(
                            codes::OUT_OF_RANGE,
                            expr.span,
                            "seed range out of range",
                            "must hold 1 to 1000 seeds, none negative",
                        );
                    }
                    Some(Value::List((start..end).map(Value::Int).collect()))
                }
                _ => {
                    // No seed would plan no seeded node at all, and a repeated one would plan
                    // every seeded node twice under the same id.
                    let items = self.list_items(expr);
                    if items.is_empty() || items.len() > 1000 {
                        return self.error(
                            codes::OUT_OF_RANGE,
                            expr.span,
                            format!("{} seeds given", items.len()),
                            "must hold 1 to 1000 seeds",
                        );
                    }
                    let seeds = self.list(expr, &Ty::Int { min: 0, max: i64::MAX });
                    let mut first: HashMap<i64, Span> = HashMap::new();
                    let mut repeated = false;
                    for item in items {
                        let ExprKind::Integer(n) = item.kind else { continue };
                        if let Some(&at) = first.get(&n) {
                            repeated = true;
                            self.push(
                                Diagnostic::error(
                                    codes::DUPLICATE_NAME,
                                    item.span,
                                    format!("seed `{n}` is given twice"),
                                    "given again here",
                                )
                                .with_label(at, "first given here")
                                .with_help("each seed replicates the whole graph once; remove the repeat"),
                            );
                        } else {
                            first.insert(n, item.span);
                        }
                    }
                    if repeated {
                        None
                    } else {
                        seeds
                    }
                }
            },
            Ty::Sparsities => {
                let items = self.list_items(expr);
                if items.is_empty() {
                    return self.error(codes::OUT_OF_RANGE, expr.span, "no sparsities to compare", "give at least one percentage");
                }
                let mut out = Vec::new();
                for item in items {
                    match item.kind {
                        ExprKind::Percent(p) if p > 0.0 && p <= 100.0 => out.push(Value::Fraction(p / 100.0)),
                        ExprKind::Percent(_) => {
                            self.error(
                                codes::OUT_OF_RANGE,
                                item.span,
                                "weights remaining out of range",
                                "must be above 0% and at most 100%",
                            );
                        }
                        _ => {
                            self.mismatch(item, &Ty::Sparsities);
                        }
                    }
                }
                Some(Value::List(out))
            }
            Ty::List(inner) => self.list(expr, inner),
            Ty::Configured { of, fields } => {
                let (base, written) = match &expr.kind {
                    ExprKind::Configured { base, fields } => (base.as_ref(), fields.as_slice()),
                    _ => (expr, &[][..]),
                };
                let ExprKind::Name(name) = &base.kind else { return self.mismatch(base, ty) };
                let stage = self.stage_ref(name, base.span, of);
                let fields = self.fields(written, fields, "option");
                Some(Value::Configured { stage: stage?, fields })
            }
        }
    }

    /// Types a block of fields against specs: unknown and repeated fields are diagnosed, and
    /// defaults fill the rest.
    pub fn fields(&mut self, written: &[Field], specs: &[FieldSpec], what: &str) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for field in written {
            if let Some(first) = seen.insert(&field.name.name, field.name.span) {
                self.push(
                    Diagnostic::error(
                        codes::DUPLICATE_FIELD,
                        field.name.span,
                        format!("`{}` is set twice", field.name.name),
                        "set again here",
                    )
                    .with_label(first, "first set here")
                    .with_help("remove one of the two"),
                );
                continue;
            }
            let Some(spec) = specs.iter().find(|s| s.name == field.name.name) else {
                let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
                self.push(
                    Diagnostic::error(
                        codes::UNKNOWN_FIELD,
                        field.name.span,
                        format!("unknown {what} `{}`", field.name.name),
                        format!("not a known {what}"),
                    )
                    .with_help(
                        did_you_mean(&field.name.name, names.iter().copied()).unwrap_or_else(|| format!("known: {}", one_of(&names))),
                    ),
                );
                continue;
            };
            if let Some(v) = self.value(&field.value, &spec.ty, spec.default == Some("none")) {
                out.insert(spec.name.to_owned(), v);
            }
        }
        for spec in specs {
            if !out.contains_key(spec.name) && !seen.contains_key(spec.name) {
                if let Some(v) = default_value(spec) {
                    out.insert(spec.name.to_owned(), v);
                }
            }
        }
        out
    }

    fn in_range(&mut self, x: f64, min: f64, max: f64, span: Span, expected: &str) -> Option<()> {
        if x < min || x > max {
            self.error(codes::OUT_OF_RANGE, span, format!("value `{x}` is out of range"), format!("must be {expected}"));
            return None;
        }
        Some(())
    }

    fn unknown_word(&mut self, span: Span, word: &str, words: &[&str]) -> Option<Value> {
        self.push(
            Diagnostic::error(codes::UNKNOWN_WORD, span, format!("`{word}` is not allowed here"), format!("expected {}", one_of(words)))
                .with_help_opt(did_you_mean(word, words.iter().copied())),
        )
    }

    fn list_items<'e>(&self, expr: &'e Expr) -> Vec<&'e Expr> {
        match &expr.kind {
            ExprKind::List(items) => items.iter().collect(),
            _ => vec![expr],
        }
    }

    /// A list of `inner`; a single value stands for a one-item list.
    fn list(&mut self, expr: &Expr, inner: &Ty) -> Option<Value> {
        let items = self.list_items(expr);
        let values: Vec<Option<Value>> = items.into_iter().map(|item| self.value(item, inner, false)).collect();
        values.into_iter().collect::<Option<Vec<_>>>().map(Value::List)
    }

    fn stage_ref(&mut self, name: &str, span: Span, outputs: &[Output]) -> Option<String> {
        let Some(header) = self.stages.get(name) else {
            let help = match self.presets.get(name) {
                Some(category) => Some(format!("`{name}` is a {category} preset, not a stage; declare one with `{category} my_{category} = {name} {{ ... }}` and refer to that")),
                None => did_you_mean(name, self.stages.keys().map(String::as_str)),
            };
            return self
                .push(
                    Diagnostic::error(codes::UNKNOWN_NAME, span, format!("unknown stage `{name}`"), "not declared in this file")
                        .with_help_opt(help),
                )
                .map(|_| String::new());
        };
        let output = header.output()?;
        if outputs.contains(&output) {
            return Some(name.to_owned());
        }
        let expected = outputs.iter().map(|o| o.article()).collect::<Vec<_>>().join(" or ");
        self.push(
            Diagnostic::error(
                codes::TYPE_MISMATCH,
                span,
                format!("expected {expected}, found `{name}`, {}", output.article()),
                format!("this is {}", output.article()),
            )
            .with_label(header.name_span, format!("`{name}` is declared here"))
            .with_help(format!("refer to a stage producing {expected}")),
        )
        .map(|_| String::new())
    }

    fn dataset_ref(&mut self, expr: &Expr, ty: &Ty) -> Option<String> {
        match &expr.kind {
            ExprKind::Name(n) => self.stage_ref(n, expr.span, &[Output::Dataset]),
            _ => self.mismatch(expr, ty).map(|_| String::new()),
        }
    }

    fn split(&mut self, expr: &Expr, ty: &Ty) -> Option<Value> {
        let ExprKind::Member { base, member } = &expr.kind else { return self.mismatch(expr, ty) };
        let dataset = self.dataset_ref(base, ty)?;
        if SPLITS.contains(&member.name.as_str()) {
            return Some(Value::Split { dataset, split: member.name.clone() });
        }
        if DATASET_MEMBERS.contains(&member.name.as_str()) {
            return self.mismatch(expr, ty); // `data.classes` where a split belongs
        }
        self.unknown_member(member.span, &member.name, ty)
    }

    fn unknown_member(&mut self, span: Span, member: &str, ty: &Ty) -> Option<Value> {
        let expected = match ty {
            Ty::Split | Ty::Images => SPLITS,
            _ => DATASET_MEMBERS,
        };
        self.push(
            Diagnostic::error(
                codes::UNKNOWN_MEMBER,
                span,
                format!("a dataset has no member `{member}`"),
                format!("expected {}", one_of(expected)),
            )
            .with_help_opt(did_you_mean(member, expected.iter().copied())),
        )
    }

    fn dataset_member(&mut self, expr: &Expr, ty: &Ty, wanted: &str) -> Option<Value> {
        let ExprKind::Member { base, member } = &expr.kind else { return self.mismatch(expr, ty) };
        let dataset = self.dataset_ref(base, ty)?;
        if member.name != wanted {
            return if DATASET_MEMBERS.contains(&member.name.as_str()) {
                self.mismatch(expr, ty)
            } else {
                self.unknown_member(member.span, &member.name, ty)
            };
        }
        let header = &self.stages[&dataset];
        if wanted == "concepts" {
            let method = header.method?;
            if !method.dataset.is_some_and(|f| f.concept_labels) {
                let labelled: Vec<&str> =
                    Category::Dataset.methods().iter().filter(|m| m.dataset.is_some_and(|f| f.concept_labels)).map(|m| m.name).collect();
                return self.push(
                    Diagnostic::error(
                        codes::NO_CONCEPT_LABELS,
                        expr.span,
                        format!("dataset `{dataset}` has no concept labels"),
                        format!("`{}` datasets carry no concept labels", method.name),
                    )
                    .with_label(header.name_span, format!("`{dataset}` is declared here"))
                    .with_help(format!(
                        "datasets with concept labels: {}; for others, learn a `cav` bank from a labelled probe set such as `derm7pt`",
                        one_of(&labelled)
                    )),
                );
            }
            return Some(Value::ConceptLabels { dataset });
        }
        Some(Value::ClassesOf { dataset })
    }

    /// `env("VAR")`: the variable's value, or a diagnostic when unset. Returns (name, value).
    /// `data_folder`: it names a dataset folder, so when data is not required an unset variable
    /// is a warning and stands for `$VAR`.
    fn env(&mut self, expr: &Expr, args: &[Arg], data_folder: bool) -> Option<(String, String)> {
        let [Arg { name: None, value: Expr { kind: ExprKind::Str(var), .. } }] = args else {
            return self
                .error(codes::BAD_ARGUMENT, expr.span, "`env` takes one string", "expected `env(\"VARIABLE\")`")
                .map(|_| Default::default());
        };
        match std::env::var(var) {
            Ok(value) if !value.is_empty() => Some((var.clone(), value)),
            _ if data_folder && !self.require_data => {
                self.diagnostics.push(
                    Diagnostic::warning(
                        codes::ENV_UNSET,
                        expr.span,
                        format!("environment variable `{var}` is not set; a run needs it"),
                        "not needed here: the data is not read",
                    )
                    .with_help(format!("set it before running, for example `export {var}=/path/to/data`")),
                );
                Some((var.clone(), format!("${var}")))
            }
            _ => self
                .push(
                    Diagnostic::error(codes::ENV_UNSET, expr.span, format!("environment variable `{var}` is not set"), "read here")
                        .with_help(format!("set it before running, for example `export {var}=/path/to/data`")),
                )
                .map(|_| Default::default()),
        }
    }

    /// A path expression: a string, `file("…")` or `env("VAR")`, made absolute against the
    /// directory of the file it is written in. Returns the path and how it was given.
    fn path(&mut self, expr: &Expr, ty: &Ty) -> Option<(PathBuf, Option<String>)> {
        let (text, env) = match &expr.kind {
            ExprKind::Str(s) if matches!(ty, Ty::Dir { .. }) => (s.clone(), None),
            ExprKind::Call { receiver: None, function, args } if function.name == "env" => {
                let (var, value) = self.env(expr, args, matches!(ty, Ty::Dir { .. }))?;
                (value, Some(var))
            }
            ExprKind::Call { receiver: None, function, args } if function.name == "file" => match args.as_slice() {
                [Arg { name: None, value }]
                    if matches!(&value.kind, ExprKind::Str(_))
                        || matches!(&value.kind, ExprKind::Call { receiver: None, function, .. } if function.name == "env") =>
                {
                    return self.path(value, &Ty::Dir { contains: &[] });
                }
                _ => {
                    return self
                        .error(codes::BAD_ARGUMENT, expr.span, "`file` takes one path", "expected `file(\"path\")`")
                        .map(|_| Default::default())
                }
            },
            _ => return self.mismatch(expr, ty).map(|_| Default::default()),
        };
        let base = self.sources.try_get(expr.span.source).and_then(|s| s.directory()).map(Path::to_path_buf).unwrap_or_default();
        Some((base.join(text), env))
    }

    fn dir(&mut self, expr: &Expr, ty: &Ty, contains: &[&str]) -> Option<Value> {
        let (path, env) = self.path(expr, ty)?;
        let given = env.as_ref().map(|var| format!(" (from `{var}`)")).unwrap_or_default();
        if !self.require_data {
            let unset = env.as_ref().is_some_and(|var| !std::env::var(var).is_ok_and(|v| !v.is_empty()));
            if !unset && (!path.is_dir() || contains.iter().any(|entry| !entry.split('|').any(|name| path.join(name).exists()))) {
                self.diagnostics.push(
                    Diagnostic::warning(
                        codes::MISSING_PATH,
                        expr.span,
                        format!("folder `{}`{given} is missing or incomplete; a run needs it", path.display()),
                        "not checked: the data is not needed here",
                    )
                    .with_help_opt((!contains.is_empty()).then(|| format!("the folder should hold {}", layout_entries(contains)))),
                );
            }
            return Some(Value::Path(path));
        }
        if !path.is_dir() {
            return self.push(
                Diagnostic::error(
                    codes::MISSING_PATH,
                    expr.span,
                    format!("folder `{}`{given} does not exist", path.display()),
                    "no such folder",
                )
                .with_help_opt((!contains.is_empty()).then(|| format!("the folder should hold {}", layout_entries(contains)))),
            );
        }
        let missing: Vec<&str> = contains.iter().copied().filter(|entry| !entry.split('|').any(|name| path.join(name).exists())).collect();
        if !missing.is_empty() {
            return self.push(
                Diagnostic::error(
                    codes::MISSING_PATH,
                    expr.span,
                    format!("folder `{}`{given} lacks {}", path.display(), layout_entries(&missing)),
                    "not the expected layout",
                )
                .with_help(format!("the folder should hold {} as the dataset is distributed", layout_entries(contains))),
            );
        }
        Some(Value::Path(path))
    }

    fn file(&mut self, expr: &Expr, ty: &Ty) -> Option<Value> {
        if !matches!(&expr.kind, ExprKind::Call { function, .. } if function.name == "file" || function.name == "env") {
            return self.mismatch(expr, ty);
        }
        let (path, env) = self.path(expr, ty)?;
        if path.is_file() {
            return Some(Value::Path(path));
        }
        let from_env = env.is_some();
        let given = env.map(|var| format!(" (from `{var}`)")).unwrap_or_default();
        if path.is_dir() {
            return self.error(
                codes::MISSING_PATH,
                expr.span,
                format!("`{}`{given} is a folder, not a file", path.display()),
                "not a file",
            );
        }
        self.push(
            Diagnostic::error(codes::MISSING_PATH, expr.span, format!("file `{}`{given} does not exist", path.display()), "no such file")
                .with_help_opt(
                    (!from_env && path.is_relative())
                        .then(|| "a relative path is read from the folder of the `.lth` file it is written in".to_owned()),
                ),
        )
    }

    /// A built-in call with positional-or-named parameters `(name, type, default)`.
    fn call(&mut self, span: Span, function: &str, args: &[Arg], params: &[(&str, Ty, Option<i64>)]) -> Option<Value> {
        let values = self.args(span, function, args, params)?;
        Some(Value::Call { function: function.to_owned(), args: values })
    }

    fn args(&mut self, span: Span, function: &str, args: &[Arg], params: &[(&str, Ty, Option<i64>)]) -> Option<BTreeMap<String, Value>> {
        let mut out = BTreeMap::new();
        let mut ok = true;
        let names: Vec<&str> = params.iter().map(|p| p.0).collect();
        let mut given: HashMap<&str, Span> = HashMap::new();
        for (i, arg) in args.iter().enumerate() {
            let param = match &arg.name {
                Some(name) => params.iter().find(|p| p.0 == name.name),
                None => params.get(i),
            };
            let Some((name, ty, _)) = param else {
                let (span, label) = match &arg.name {
                    Some(n) => (n.span, format!("`{function}` has no parameter `{}`", n.name)),
                    None => (
                        arg.value.span,
                        format!("`{function}` takes {} argument{}", params.len(), if params.len() == 1 { "" } else { "s" }),
                    ),
                };
                self.push(
                    Diagnostic::error(codes::BAD_ARGUMENT, span, format!("bad argument to `{function}`"), label)
                        .with_help(format!("parameters: {}", one_of(&names))),
                );
                ok = false;
                continue;
            };
            let arg_span = arg.name.as_ref().map_or(arg.value.span, |n| n.span);
            if let Some(first) = given.insert(*name, arg_span) {
                self.push(
                    Diagnostic::error(
                        codes::BAD_ARGUMENT,
                        arg_span,
                        format!("`{name}` is given twice to `{function}`"),
                        "given again here",
                    )
                    .with_label(first, "first given here")
                    .with_help("remove one of the two"),
                );
                ok = false;
                continue;
            }
            match self.value(&arg.value, ty, false) {
                Some(v) => {
                    out.insert((*name).to_owned(), v);
                }
                None => ok = false,
            }
        }
        for (name, _, default) in params {
            if !out.contains_key(*name) {
                match default {
                    Some(d) => {
                        out.insert((*name).to_owned(), Value::Int(*d));
                    }
                    None if ok => {
                        self.push(
                            Diagnostic::error(
                                codes::BAD_ARGUMENT,
                                span,
                                format!("`{function}` needs `{name}`"),
                                format!("`{name}` is missing"),
                            )
                            .with_help(format!("parameters: {}", one_of(&names))),
                        );
                        ok = false;
                    }
                    None => {}
                }
            }
        }
        ok.then_some(out)
    }
}

fn percent(x: f64) -> String {
    let p = x * 100.0;
    let text = format!("{p:.3}");
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

/// A field's default as a value. Defaults are written in the language and never refer to stages,
/// files or variables; a test types every one of them.
pub fn default_value(spec: &FieldSpec) -> Option<Value> {
    let text = spec.default?;
    if text == "none" {
        return Some(Value::None);
    }
    let expr = crate::syntax::parse_value(crate::source::SourceId(u32::MAX), text).ok()?;
    let sources = Sources::default();
    let stages = BTreeMap::new();
    let presets = HashMap::new();
    let mut diagnostics = Vec::new();
    let mut typer = Typer { sources: &sources, stages: &stages, presets: &presets, require_data: true, diagnostics: &mut diagnostics };
    typer.value(&expr, &spec.ty, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_in_the_registry_types() {
        for category in Category::ALL {
            for method in category.methods() {
                let mut specs: Vec<&FieldSpec> = method.fields.iter().collect();
                for spec in method.fields {
                    if let Ty::Configured { fields, .. } = spec.ty {
                        specs.extend(fields.iter());
                    }
                }
                for spec in specs {
                    if spec.default.is_some() {
                        assert!(default_value(spec).is_some(), "{category} {}: default of `{}` does not type", method.name, spec.name);
                    }
                }
            }
        }
    }

    /// Checks `dataset d = mnist { root = "<folder>" }` for a folder holding `files`.
    fn check_mnist_folder(files: &[&str]) -> super::super::Checked {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path().join("mnist");
        std::fs::create_dir(&root).unwrap_or_else(|e| panic!("{e}"));
        for file in files {
            std::fs::write(root.join(file), b"").unwrap_or_else(|e| panic!("{e}"));
        }
        let lth = dir.path().join("m.lth");
        std::fs::write(&lth, "dataset d = mnist { root = \"mnist\" }\n").unwrap_or_else(|e| panic!("{e}"));
        let mut sources = crate::source::Sources::default();
        super::super::check_path(&mut sources, &lth).unwrap_or_else(|e| panic!("{e}")).1
    }

    #[test]
    fn an_mnist_folder_of_gzipped_idx_files_checks_as_the_worker_reads_it() {
        let gz = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];
        let checked = check_mnist_folder(&gz);
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        // Plain and gzipped files may be mixed.
        let mixed = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte"];
        assert!(!check_mnist_folder(&mixed).has_errors());
    }

    #[test]
    fn a_missing_layout_entry_names_both_accepted_spellings() {
        let checked = check_mnist_folder(&["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte"]);
        let errors: Vec<&Diagnostic> = checked.diagnostics.iter().filter(|d| d.is_error()).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].code, codes::MISSING_PATH);
        assert!(errors[0].message.ends_with("lacks `t10k-labels-idx1-ubyte` (or `t10k-labels-idx1-ubyte.gz`)"), "{}", errors[0].message);
    }
}
