//! Name resolution: `use` items, presets, stage names, and each declaration's method through its
//! chain of presets. Then every stage's fields are typed, layered as method default < preset <
//! declaration.

use super::codes;
use super::program::{Device, Experiment, FieldValue, Program, Stage, Value, Written};
use super::values::{default_value, StageHeader, Typer};
use crate::diagnostic::{closest, did_you_mean, Diagnostic};
use crate::kinds::{one_of, Category, FieldSpec, Method, Ty};
use crate::source::{Origin, SourceId, Sources, Span};
use crate::stdlib;
use crate::syntax::ast::{Declaration, Field, Module};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A preset visible in the file: declared there, or imported from the stdlib.
#[derive(Clone, Debug)]
pub struct Preset {
    pub declaration: Declaration,
    pub category: Category,
}

pub struct Scope {
    presets: HashMap<String, Preset>,
    stages: BTreeMap<String, StageHeader>,
    preset_categories: HashMap<String, Category>,
}

impl Scope {
    pub fn build(sources: &mut Sources, module: &Module, diagnostics: &mut Vec<Diagnostic>) -> Scope {
        let mut presets: HashMap<String, Preset> = HashMap::new();
        for item in &module.uses {
            import(sources, item, &mut presets, diagnostics);
        }
        for decl in module.declarations.iter().filter(|d| d.preset) {
            let category = category_of(decl);
            if let Some(earlier) = presets.get(&decl.name.name) {
                let mut d = Diagnostic::error(
                    codes::DUPLICATE_NAME,
                    decl.name.span,
                    format!("preset `{}` is defined twice", decl.name.name),
                    "defined again here",
                );
                d = d.with_label(earlier.declaration.name.span, "first defined here");
                diagnostics.push(d.with_help("rename one of them"));
                continue;
            }
            presets.insert(decl.name.name.clone(), Preset { declaration: decl.clone(), category });
        }
        let preset_categories = presets.iter().map(|(n, p)| (n.clone(), p.category)).collect();
        let mut scope = Scope { presets, stages: BTreeMap::new(), preset_categories };
        for decl in module.declarations.iter().filter(|d| !d.preset) {
            if let Some(earlier) = scope.stages.get(&decl.name.name) {
                diagnostics.push(
                    Diagnostic::error(
                        codes::DUPLICATE_NAME,
                        decl.name.span,
                        format!("stage `{}` is declared twice", decl.name.name),
                        "declared again here",
                    )
                    .with_label(earlier.name_span, "first declared here")
                    .with_help("stage names must be unique in a file; rename one of them"),
                );
                continue;
            }
            let method = scope.method_of(decl, diagnostics);
            scope.stages.insert(decl.name.name.clone(), StageHeader { category: category_of(decl), method, name_span: decl.name.span });
        }
        scope
    }

    /// The method a declaration rests on, through its presets. Reports an unknown base once.
    fn method_of(&self, decl: &Declaration, diagnostics: &mut Vec<Diagnostic>) -> Option<&'static Method> {
        self.chain(decl, diagnostics).map(|(method, _)| method)
    }

    /// The method and the presets between it and `decl`, outermost last.
    fn chain<'s>(&'s self, decl: &Declaration, diagnostics: &mut Vec<Diagnostic>) -> Option<(&'static Method, Vec<&'s Preset>)> {
        let category = category_of(decl);
        let mut presets: Vec<&Preset> = Vec::new();
        // A preset named like its base (`preset model resnet50 = resnet50`) rests on the method of
        // that name. A stage is no preset, so `prune paper_imp = paper_imp` uses the preset.
        let mut visited: HashSet<&str> = if decl.preset { HashSet::from([decl.name.name.as_str()]) } else { HashSet::new() };
        let mut base = &decl.base;
        loop {
            let preset = self.presets.get(&base.name).filter(|p| p.category == category && !visited.contains(base.name.as_str()));
            match preset {
                Some(p) => {
                    visited.insert(&p.declaration.name.name);
                    presets.push(p);
                    base = &p.declaration.base;
                }
                None => {
                    if let Some(method) = category.method(&base.name) {
                        presets.reverse();
                        return Some((method, presets));
                    }
                    let owners: Vec<&Declaration> =
                        decl.preset.then_some(decl).into_iter().chain(presets.iter().map(|p| &p.declaration)).collect();
                    if let Some(cycle) = preset_cycle(category, &owners, base) {
                        diagnostics.push(cycle);
                        return None;
                    }
                    diagnostics.push(self.unknown_base(category, base));
                    return None;
                }
            }
        }
    }

    fn unknown_base(&self, category: Category, base: &crate::syntax::ast::Ident) -> Diagnostic {
        let mut candidates: Vec<&str> = category.methods().iter().map(|m| m.name).collect();
        candidates.extend(self.presets.iter().filter(|(n, p)| p.category == category && **n != base.name).map(|(n, _)| n.as_str()));
        candidates.sort_unstable();
        let help = match self.presets.get(&base.name).filter(|p| p.category != category) {
            Some(p) => Some(format!("`{}` is a {} preset, not a {category} one", base.name, p.category)),
            None => did_you_mean(&base.name, candidates.iter().copied()).or_else(|| {
                Some(format!(
                    "{category} methods: {}; presets come into scope with `use std.<module>`",
                    one_of(&category.methods().iter().map(|m| m.name).collect::<Vec<_>>())
                ))
            }),
        };
        Diagnostic::error(
            codes::UNKNOWN_METHOD,
            base.span,
            format!("unknown {category} method or preset `{}`", base.name),
            format!("not a {category} method or preset in scope"),
        )
        .with_help_opt(help)
    }
}

/// Presets that build on each other never reach a method. `owners` is the chain followed so far
/// (each one's base is the next one's name) and `base` the last one's base. Every preset of the
/// loop reports the same diagnostic, so the duplicates merge when diagnostics are sorted.
fn preset_cycle(category: Category, owners: &[&Declaration], base: &crate::syntax::ast::Ident) -> Option<Diagnostic> {
    let last = owners.last()?;
    if last.name.name == base.name {
        return None; // named like its base: it rests on a method of that name, which is missing
    }
    let start = owners.iter().position(|d| d.name.name == base.name)?;
    let mut members: Vec<&Declaration> = owners[start..].to_vec();
    members.sort_by_key(|d| d.base.span);
    let names: Vec<String> = members.iter().map(|d| format!("`{}`", d.name.name)).collect();
    let names = match names.as_slice() {
        [init @ .., last] if !init.is_empty() => format!("{} and {last}", init.join(", ")),
        _ => names.join(""),
    };
    let methods: Vec<&str> = category.methods().iter().map(|m| m.name).collect();
    let first = members[0];
    let mut d = Diagnostic::error(
        codes::CYCLE,
        first.base.span,
        format!("presets {names} build on each other"),
        format!("`{}` builds on `{}`", first.name.name, first.base.name),
    );
    for other in &members[1..] {
        d = d.with_label(other.base.span, format!("`{}` builds on `{}`", other.name.name, other.base.name));
    }
    Some(d.with_help(format!("a chain of presets must end at a {category} method: {}", one_of(&methods))))
}

fn category_of(decl: &Declaration) -> Category {
    Category::parse(&decl.category.name).unwrap_or_else(|| unreachable!("the grammar admits only category words"))
}

/// Loads the stdlib module a `use` names and brings its presets (or the one named) into scope.
fn import(sources: &mut Sources, item: &crate::syntax::ast::Use, presets: &mut HashMap<String, Preset>, diagnostics: &mut Vec<Diagnostic>) {
    let modules: Vec<&str> = stdlib::MODULES.iter().map(|(n, _)| *n).collect();
    let all: Vec<String> = modules.iter().map(|m| format!("std.{m}")).collect();
    let unknown_module = |span: Span, written: &str, guess: Option<String>| {
        Diagnostic::error(codes::UNKNOWN_MODULE, span, format!("unknown module `{written}`"), "no such stdlib module")
            .with_help(guess.unwrap_or_else(|| format!("modules: {}", one_of(&all.iter().map(String::as_str).collect::<Vec<_>>()))))
    };
    let path = &item.path;
    if path.first().is_none_or(|p| p.name != stdlib::ROOT) || path.len() < 2 || path.len() > 3 {
        let written: Vec<&str> = path.iter().map(|p| p.name.as_str()).collect();
        let written = written.join(".");
        // `use std` alone names no module: list them rather than guess one.
        let guess = if written == stdlib::ROOT { None } else { did_you_mean(&written, all.iter().map(String::as_str)) };
        diagnostics.push(unknown_module(item.span, &written, guess));
        return;
    }
    let module_name = &path[1];
    let Some(text) = stdlib::module(&module_name.name) else {
        diagnostics.push(unknown_module(
            module_name.span,
            &format!("std.{}", module_name.name),
            closest(&module_name.name, modules.iter().copied()).map(|g| format!("did you mean `std.{g}`?")),
        ));
        return;
    };
    let static_name = stdlib::MODULES.iter().find(|(n, _)| *n == module_name.name).map_or("", |(n, _)| *n);
    let id = sources
        .find_stdlib(static_name)
        .unwrap_or_else(|| sources.add(Origin::Stdlib(static_name), format!("std/{static_name}.lth"), text));
    let module = match crate::syntax::parse(id, text) {
        Ok(module) => module,
        Err(mut errors) => {
            diagnostics.append(&mut errors);
            return;
        }
    };
    let wanted = path.get(2);
    let mut found = false;
    for decl in module.declarations.into_iter().filter(|d| d.preset) {
        if wanted.is_some_and(|w| w.name != decl.name.name) {
            continue;
        }
        found = true;
        let category = category_of(&decl);
        presets.entry(decl.name.name.clone()).or_insert(Preset { declaration: decl, category });
    }
    if let (Some(wanted), false) = (wanted, found) {
        let module = crate::syntax::parse(id, text).unwrap_or_default();
        let names: Vec<&str> = module.declarations.iter().map(|d| d.name.name.as_str()).collect();
        diagnostics.push(
            Diagnostic::error(
                codes::UNKNOWN_NAME,
                wanted.span,
                format!("`std.{}` has no preset `{}`", module_name.name, wanted.name),
                "not in this module",
            )
            .with_help(
                did_you_mean(&wanted.name, names.iter().copied())
                    .unwrap_or_else(|| format!("presets in `std.{}`: {}", module_name.name, one_of(&names))),
            ),
        );
    }
}

/// Types every stage and preset; returns the program (complete only if no errors were pushed).
pub fn resolve(
    sources: &Sources,
    root: SourceId,
    module: &Module,
    scope: &Scope,
    options: super::Options,
    diagnostics: &mut Vec<Diagnostic>,
) -> Program {
    let mut stages = Vec::new();
    let require_data = options.require_data;
    let mut typer = Typer { sources, stages: &scope.stages, presets: &scope.preset_categories, require_data, diagnostics };
    for decl in &module.declarations {
        if decl.preset {
            // A preset is typed where it is written; required fields come with its users.
            if let Some((method, _)) = scope.chain(decl, typer.diagnostics) {
                typed_fields(&mut typer, method, &decl.fields);
            }
            continue;
        }
        let Some(header) = scope.stages.get(&decl.name.name).filter(|h| h.name_span == decl.name.span) else { continue };
        let Some(method) = header.method else { continue };
        let mut quiet = Vec::new();
        let presets = scope.chain(decl, &mut quiet).map(|(_, p)| p).unwrap_or_default();
        let mut fields: BTreeMap<String, FieldValue> = BTreeMap::new();
        for spec in method.fields {
            if let Some(value) = default_value(spec) {
                fields.insert(spec.name.to_owned(), FieldValue { value, written: Written::Default, effect: spec.effect });
            }
        }
        for preset in &presets {
            // Presets were diagnosed where they are written; here only their values are needed.
            let mut quiet = Vec::new();
            let mut preset_typer =
                Typer { sources, stages: &scope.stages, presets: &scope.preset_categories, require_data, diagnostics: &mut quiet };
            for (name, (value, span, effect)) in typed_fields(&mut preset_typer, method, &preset.declaration.fields) {
                fields.insert(name, FieldValue { value, written: Written::At(span), effect });
            }
        }
        let typed = typed_fields(&mut typer, method, &decl.fields);
        // A value already rejected must not feed later rules, and neither may the default it
        // would otherwise fall back to: the user never wrote that value.
        for field in decl.fields.iter().filter(|f| !typed.contains_key(&f.name.name)) {
            fields.remove(&field.name.name);
        }
        for (name, (value, span, effect)) in typed {
            fields.insert(name, FieldValue { value, written: Written::At(span), effect });
        }
        resolve_auto(method, &mut fields);
        let written: HashSet<&str> = decl.fields.iter().map(|f| f.name.name.as_str()).collect();
        for spec in method.fields.iter().filter(|s| s.default.is_none() && !fields.contains_key(s.name) && !written.contains(s.name)) {
            typer.diagnostics.push(
                Diagnostic::error(
                    codes::MISSING_FIELD,
                    decl.name.span,
                    format!("`{}` needs the field `{}`", decl.name.name, spec.name),
                    format!("`{}` is required by `{}`", spec.name, method.name),
                )
                .with_help(format!("add `{} = ...`: {}", spec.name, spec.doc)),
            );
        }
        stages.push(Stage {
            name: decl.name.name.clone(),
            category: header.category,
            method,
            fields,
            span: decl.span,
            name_span: decl.name.span,
        });
    }
    let experiment = experiment(sources, root, module, &mut typer);
    Program { experiment, stages }
}

/// A model's `auto` fields, whose meaning depends on other fields, become the concrete choice
/// here, so plans, cache keys and the worker all see it: `normalize = auto` is `imagenet` when a
/// torchvision architecture loads `weights` and `fixed` otherwise; `transform_input = auto` is
/// `true` exactly when `weights` is given (torchvision sets it for its pretrained Inception-v3).
/// `transform_input` is stored as a boolean whichever way it was written.
fn resolve_auto(method: &Method, fields: &mut BTreeMap<String, FieldValue>) {
    if method.category != crate::kinds::Category::Model {
        return;
    }
    let pretrained = matches!(fields.get("weights").map(|f| &f.value), Some(Value::Path(_)));
    if let Some(field) = fields.get_mut("normalize") {
        if field.value == Value::Word("auto".to_owned()) {
            let torchvision = crate::kinds::model::TORCHVISION.contains(&method.name);
            field.value = Value::Word(if pretrained && torchvision { "imagenet" } else { "fixed" }.to_owned());
        }
    }
    if let Some(field) = fields.get_mut("transform_input") {
        if let Value::Word(word) = &field.value {
            field.value = Value::Bool(match word.as_str() {
                "auto" => pretrained,
                other => other == "true",
            });
        }
    }
}

/// Types the fields written in one block against a method: (name → value, span, effect).
fn typed_fields(typer: &mut Typer<'_>, method: &Method, written: &[Field]) -> BTreeMap<String, (Value, Span, crate::kinds::Effect)> {
    let values = typer.fields(written, method.fields, &format!("`{}` field", method.name));
    let mut out = BTreeMap::new();
    for field in written {
        if let (Some(value), Some(spec)) = (values.get(&field.name.name), method.field(&field.name.name)) {
            out.entry(field.name.name.clone()).or_insert((value.clone(), field.value.span, spec.effect));
        }
    }
    out
}

pub const EXPERIMENT_FIELDS: &[FieldSpec] = &[
    FieldSpec::optional("name", Ty::Str, "\"\"", "name of the run folder `runs/<name>`; empty uses the file's name"),
    FieldSpec::optional("seeds", Ty::Seeds, "[0]", "the whole graph is replicated once per seed"),
    FieldSpec::optional("device", Ty::Device, "auto", "`auto` uses CUDA when present"),
];

fn experiment(sources: &Sources, root: SourceId, module: &Module, typer: &mut Typer<'_>) -> Experiment {
    if let [first, rest @ ..] = module.experiments.as_slice() {
        for again in rest {
            typer.diagnostics.push(
                Diagnostic::error(codes::DUPLICATE_NAME, again.keyword, "`experiment` block given twice", "given again here")
                    .with_label(first.keyword, "first given here")
                    .with_help("merge the two blocks into one"),
            );
        }
    }
    let mut written: Vec<Field> = module.experiments.first().map(|e| e.fields.clone()).unwrap_or_default();
    // `executor` holds a nested block of its own kind, read by `executor.rs`.
    let executor_field = written.iter().position(|f| f.name.name == "executor").map(|i| written.remove(i));
    let stage_names: std::collections::BTreeSet<String> = module.declarations.iter().map(|d| d.name.name.clone()).collect();
    let executor = executor_field.map(|f| super::executor::executor(&f, &stage_names, typer.diagnostics)).unwrap_or_default();
    let values = typer.fields(&written, EXPERIMENT_FIELDS, "experiment setting");
    let file_stem = match &sources.get(root).origin {
        Origin::File(path) => path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        Origin::Stdlib(name) => (*name).to_owned(),
    };
    let name = match values.get("name") {
        Some(Value::Str(s)) if !s.is_empty() => s.clone(),
        _ => file_stem,
    };
    let seeds = match values.get("seeds") {
        Some(Value::List(items)) => items.iter().filter_map(Value::as_int).collect(),
        _ => vec![0],
    };
    let device = match values.get("device") {
        Some(Value::Word(w)) if w == "cpu" => Device::Cpu,
        Some(Value::Word(w)) if w == "cuda" => Device::Cuda(0),
        Some(Value::Call { args, .. }) => {
            Device::Cuda(args.get("index").and_then(Value::as_int).and_then(|i| u32::try_from(i).ok()).unwrap_or(0))
        }
        _ => Device::Auto,
    };
    Experiment { name, seeds, device, executor }
}
