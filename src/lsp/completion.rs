//! Completion: categories, methods and presets, the fields not yet written, and values of the
//! field's type (words, stages of the right output, dataset members, layer names).

use super::analysis::{stdlib_module, Analysis};
use super::context::{self, Context, Owner, Token};
use super::docs;
use crate::kinds::{layers, Category, LayerNeed, Method, Output, Ty};
use lsp_types::{CompletionItem, CompletionItemKind, Documentation, MarkupContent, MarkupKind};

fn item(label: impl Into<String>, kind: CompletionItemKind, detail: impl Into<String>) -> CompletionItem {
    CompletionItem { label: label.into(), kind: Some(kind), detail: Some(detail.into()), ..CompletionItem::default() }
}

fn markdown(text: String) -> Option<Documentation> {
    Some(Documentation::MarkupContent(MarkupContent { kind: MarkupKind::Markdown, value: text }))
}

/// Completions at `offset` of `text`; `analysis` is the latest one whose text parsed (or the
/// current one), for the names in scope.
pub fn complete(text: &str, offset: usize, analysis: &Analysis) -> Vec<CompletionItem> {
    let offset = (0..=offset.min(text.len())).rev().find(|o| text.is_char_boundary(*o)).unwrap_or(0);
    match context::at(&text[..offset], &text[offset..]) {
        Context::Item => {
            let mut out: Vec<CompletionItem> =
                ["use", "experiment", "preset"].iter().map(|k| item(*k, CompletionItemKind::KEYWORD, "keyword")).collect();
            out.extend(Category::ALL.iter().map(|c| CompletionItem {
                documentation: markdown(docs::category(*c)),
                ..item(c.name(), CompletionItemKind::KEYWORD, "stage category")
            }));
            out
        }
        Context::UsePath(None) => {
            crate::stdlib::MODULES.iter().map(|(name, _)| item(*name, CompletionItemKind::MODULE, "stdlib module")).collect()
        }
        Context::UsePath(Some(module)) => stdlib_module(&module)
            .map(|(_, m)| {
                m.declarations
                    .iter()
                    .filter(|d| d.preset)
                    .map(|d| item(&d.name.name, CompletionItemKind::CONSTANT, format!("{} preset = {}", d.category.name, d.base.name)))
                    .collect()
            })
            .unwrap_or_default(),
        Context::Base(category) => bases(category, analysis),
        Context::FieldName { owner, written } => {
            let specs = specs_of(&owner, analysis);
            specs
                .iter()
                .filter(|s| !written.iter().any(|w| w == s.name))
                .map(|s| CompletionItem {
                    insert_text: Some(format!("{} = ", s.name)),
                    documentation: markdown(docs::field(s, &owner_name(&owner))),
                    ..item(s.name, CompletionItemKind::FIELD, docs::ty(&s.ty))
                })
                .collect()
        }
        Context::Value { owner, field, in_list, in_string, block } => {
            let specs = specs_of(&owner, analysis);
            let Some(spec) = specs.iter().find(|s| s.name == field) else { return Vec::new() };
            let mut ty = &spec.ty;
            if in_list {
                if let Ty::List(inner) = ty {
                    ty = *inner;
                }
            }
            values(ty, in_string, &block, analysis)
        }
        Context::None => Vec::new(),
    }
}

fn owner_name(owner: &Owner) -> String {
    match owner {
        Owner::Experiment => "experiment".to_owned(),
        Owner::Declaration { base, .. } => base.clone(),
        Owner::Configured { field, .. } => field.clone(),
    }
}

/// Methods and presets of `category`.
fn bases(category: Category, analysis: &Analysis) -> Vec<CompletionItem> {
    let mut out: Vec<CompletionItem> = category
        .methods()
        .iter()
        .map(|m| CompletionItem {
            documentation: markdown(docs::method(m)),
            ..item(m.name, CompletionItemKind::CLASS, format!("{category} method"))
        })
        .collect();
    let mut presets: Vec<(String, String)> = analysis
        .imported_presets()
        .iter()
        .filter(|p| p.declaration.category.name == category.name())
        .map(|p| (p.declaration.name.name.clone(), format!("preset from std.{} = {}", p.module.unwrap_or(""), p.declaration.base.name)))
        .collect();
    if let Some(module) = &analysis.module {
        presets.extend(
            module
                .declarations
                .iter()
                .filter(|d| d.preset && d.category.name == category.name())
                .map(|d| (d.name.name.clone(), format!("preset = {}", d.base.name))),
        );
    }
    for (name, detail) in presets {
        // A preset named like its method (`resnet50`) replaces the method's entry.
        out.retain(|i| i.label != name);
        out.push(item(name, CompletionItemKind::CONSTANT, detail));
    }
    out
}

fn method_of(category: Category, base: &str, analysis: &Analysis) -> Option<&'static Method> {
    match analysis.preset(base, category) {
        Some(site) => analysis.method_of(site.declaration),
        None => category.method(base),
    }
}

fn specs_of(owner: &Owner, analysis: &Analysis) -> &'static [crate::kinds::FieldSpec] {
    match owner {
        Owner::Experiment => crate::check::EXPERIMENT_FIELDS,
        Owner::Declaration { category, base } => method_of(*category, base, analysis).map_or(&[], |m| m.fields),
        Owner::Configured { category, base, field } => {
            match method_of(*category, base, analysis).and_then(|m| m.field(field)).map(|s| &s.ty) {
                Some(Ty::Configured { fields, .. }) | Some(Ty::List(Ty::Configured { fields, .. })) => fields,
                _ => &[],
            }
        }
    }
}

/// Stages of the analysed file whose output is one of `outputs`.
fn stages(analysis: &Analysis, outputs: &[Output]) -> Vec<CompletionItem> {
    let Some(program) = &analysis.program else { return Vec::new() };
    program
        .stages
        .iter()
        .filter(|s| outputs.contains(&s.method.output))
        .map(|s| item(&s.name, CompletionItemKind::VARIABLE, format!("{} {} → {}", s.category, s.method.name, s.method.output.article())))
        .collect()
}

fn datasets(analysis: &Analysis) -> Vec<String> {
    analysis
        .program
        .as_ref()
        .map_or_else(Vec::new, |p| p.stages.iter().filter(|s| s.category == Category::Dataset).map(|s| s.name.clone()).collect())
}

fn words(words: &[&str], detail: &str) -> Vec<CompletionItem> {
    words.iter().map(|w| item(*w, CompletionItemKind::ENUM_MEMBER, detail)).collect()
}

fn values(ty: &Ty, in_string: bool, block: &[Token], analysis: &Analysis) -> Vec<CompletionItem> {
    if let Ty::Layer { needs } = ty {
        return layer_names(*needs, in_string, block, analysis);
    }
    if in_string {
        return Vec::new();
    }
    let members = |names: &[&str]| -> Vec<CompletionItem> {
        datasets(analysis)
            .iter()
            .flat_map(|d| {
                names.iter().map(move |m| item(format!("{d}.{m}"), CompletionItemKind::PROPERTY, format!("{m} of dataset `{d}`")))
            })
            .collect()
    };
    match ty {
        Ty::Word(list) => words(list, "word"),
        Ty::Bool => words(&["true", "false"], "bool"),
        Ty::Device => words(&["auto", "cpu", "cuda", "cuda(1)"], "device"),
        Ty::LrSchedule => words(&["constant", "cosine", "step(every = 30, gamma = 0.1)"], "learning-rate schedule"),
        Ty::Rewind => words(&["init", "none", "epoch(1)"], "rewind point"),
        Ty::Metric => words(&["spearman", "ssim", "top_iou(20%)"], "saliency metric"),
        Ty::Round => words(&["round(0)"], "round of the ticket series"),
        Ty::Dir { .. } => words(&["env(\"\")"], "folder from an environment variable"),
        Ty::File => words(&["file(\"\")"], "file relative to the experiment"),
        Ty::Stage(outputs) | Ty::Configured { of: outputs, .. } => stages(analysis, outputs),
        Ty::Split => members(&["train", "val", "test"]),
        Ty::Images => {
            let mut out = members(&["test", "val", "train"]);
            out.extend(members(&["test.sample(16, seed = 0)"]));
            out
        }
        Ty::ConceptLabels => members(&["concepts"]),
        Ty::Classes => members(&["classes"]),
        Ty::List(inner) => values(inner, false, block, analysis),
        _ => Vec::new(),
    }
}

/// Layer names of the model the block's `of` (or `from`) stage descends from.
fn layer_names(needs: LayerNeed, in_string: bool, block: &[Token], analysis: &Analysis) -> Vec<CompletionItem> {
    let source = block.windows(3).find_map(|w| match w {
        [Token::Word(field), Token::Punct('='), Token::Word(stage)] if field == "of" || field == "from" => Some(stage.clone()),
        _ => None,
    });
    let Some(program) = &analysis.program else { return Vec::new() };
    let Some(model) = source.as_deref().and_then(|s| program.model_of(s)) else { return Vec::new() };
    let Some(layers) = layers::builtin(model.method.name) else { return Vec::new() };
    layers
        .into_iter()
        .filter(|l| needs != LayerNeed::Spatial || l.kind.is_spatial())
        .map(|l| CompletionItem {
            insert_text: Some(if in_string { l.name.clone() } else { format!("\"{}\"", l.name) }),
            ..item(l.name, CompletionItemKind::ENUM_MEMBER, format!("{} of `{}` ({})", l.kind.describe(), model.name, model.method.name))
        })
        .collect()
}
