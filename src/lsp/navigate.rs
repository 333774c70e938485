//! Hover, go to definition and document symbols, read from the syntax tree at the cursor.

use super::analysis::Analysis;
use super::docs;
use super::locate::{self, Hit, Owner};
use crate::kinds::{Category, Ty};
use crate::source::Span;
use crate::syntax::ast::{Declaration, ExprKind};

/// Markdown about what is at `offset`, and the byte range it covers.
pub fn hover(analysis: &Analysis, offset: usize) -> Option<(String, std::ops::Range<usize>)> {
    let module = analysis.module.as_ref()?;
    match locate::at(module, offset)? {
        Hit::Use { path, index } => {
            let word = &path[index];
            let text = match index {
                0 => "the standard library, compiled into `lthlang`".to_owned(),
                1 => format!("stdlib module `std.{}`", word.name),
                _ => analysis
                    .imported_presets()
                    .iter()
                    .find(|p| p.declaration.name.name == word.name)
                    .map(|p| preset_text(analysis, p.declaration, p.module))?,
            };
            Some((text, word.span.range()))
        }
        Hit::Category(d) => Some((docs::category(Category::parse(&d.category.name)?), d.category.span.range())),
        Hit::Name(d) => Some((docs::stage(analysis, &d.name.name).or_else(|| base_text(analysis, d))?, d.name.span.range())),
        Hit::Base(d) => Some((base_text(analysis, d)?, d.base.span.range())),
        Hit::FieldName { owner, outer, field } => {
            let (spec, owner_name) = field_spec(analysis, owner, outer.map(|o| o.name.name.as_str()), &field.name.name)?;
            Some((docs::field(spec, &owner_name), field.name.span.range()))
        }
        Hit::Value { owner, field, expr } => {
            let range = expr.span.range();
            match &expr.kind {
                ExprKind::Name(name) => {
                    if let Some(text) = docs::stage(analysis, name) {
                        return Some((text, range));
                    }
                    let (spec, _) = field_spec(analysis, owner, None, &field.name.name)?;
                    Some((format!("`{name}`: {}", docs::ty(&spec.ty)), range))
                }
                ExprKind::Member { base, member } => {
                    let ExprKind::Name(dataset) = &base.kind else { return None };
                    Some((format!("`{}` of dataset `{dataset}`", member.name), range))
                }
                _ => {
                    let (spec, _) = field_spec(analysis, owner, None, &field.name.name)?;
                    Some((format!("`{}`: {}", field.name.name, docs::ty(&spec.ty)), range))
                }
            }
        }
    }
}

fn field_spec(
    analysis: &Analysis,
    owner: Owner<'_>,
    outer: Option<&str>,
    name: &str,
) -> Option<(&'static crate::kinds::FieldSpec, String)> {
    let method = match owner {
        Owner::Experiment => None,
        Owner::Declaration(d) => Some(analysis.method_of(d)?),
    };
    if let (Some(outer), Some(method)) = (outer, method) {
        let fields = match &method.field(outer)?.ty {
            Ty::Configured { fields, .. } | Ty::List(Ty::Configured { fields, .. }) => *fields,
            _ => return None,
        };
        return Some((fields.iter().find(|f| f.name == name)?, outer.to_owned()));
    }
    Some((docs::spec_of(method, name)?, method.map_or("experiment", |m| m.name).to_owned()))
}

fn base_text(analysis: &Analysis, d: &Declaration) -> Option<String> {
    let category = Category::parse(&d.category.name)?;
    match analysis.preset(&d.base.name, category).filter(|p| !std::ptr::eq(p.declaration, d)) {
        Some(site) => Some(preset_text(analysis, site.declaration, site.module)),
        None => category.method(&d.base.name).map(docs::method),
    }
}

fn preset_text(analysis: &Analysis, preset: &Declaration, module: Option<&str>) -> String {
    let from = module.map_or_else(|| "this file".to_owned(), |m| format!("`std.{m}`"));
    let fields: Vec<String> = preset.fields.iter().map(|f| f.name.name.clone()).collect();
    let mut out = format!(
        "**{}** — {} preset from {from} = `{}`; sets {}",
        preset.name.name,
        preset.category.name,
        preset.base.name,
        fields.join(", ")
    );
    if let Some(method) = analysis.method_of(preset) {
        out.push_str(&format!("\n\n---\n\n{}", docs::method(method)));
    }
    out
}

/// Where the thing at `offset` is declared: a span in the document, or in a stdlib module.
pub enum Target {
    Here(Span),
    Stdlib(&'static str, Span),
}

pub fn definition(analysis: &Analysis, offset: usize) -> Option<Target> {
    let module = analysis.module.as_ref()?;
    let preset_target = |name: &str, category: Option<Category>| -> Option<Target> {
        let site = match category {
            Some(c) => analysis.preset(name, c)?,
            None => analysis.imported_presets().into_iter().find(|p| p.declaration.name.name == name)?,
        };
        Some(match site.module {
            Some(m) => Target::Stdlib(m, site.declaration.name.span),
            None => Target::Here(site.declaration.name.span),
        })
    };
    match locate::at(module, offset)? {
        Hit::Use { path, index } if index >= 2 => preset_target(&path[index].name, None),
        Hit::Use { path, index: 1 } => {
            let name = crate::stdlib::MODULES.iter().find(|(n, _)| *n == path[1].name)?.0;
            Some(Target::Stdlib(name, Span::new(crate::source::SourceId(0), 0, 0)))
        }
        Hit::Base(d) => preset_target(&d.base.name, Category::parse(&d.category.name)).filter(|t| match t {
            Target::Here(span) => *span != d.name.span,
            Target::Stdlib(..) => true,
        }),
        Hit::Value { expr, .. } => {
            let ExprKind::Name(name) = &expr.kind else { return None };
            analysis.declaration(name).map(|d| Target::Here(d.name.span))
        }
        _ => None,
    }
}

/// `(name, detail, category, whole span, name span, fields as (name, span))` of each item.
pub struct Symbol {
    pub name: String,
    pub detail: String,
    pub category: Option<Category>,
    pub span: Span,
    pub name_span: Span,
    pub fields: Vec<(String, Span)>,
}

pub fn symbols(analysis: &Analysis) -> Vec<Symbol> {
    let Some(module) = &analysis.module else { return Vec::new() };
    let fields = |fields: &[crate::syntax::ast::Field]| -> Vec<(String, Span)> {
        fields.iter().map(|f| (f.name.name.clone(), f.name.span.to(f.value.span))).collect()
    };
    let mut out: Vec<Symbol> = module
        .experiments
        .iter()
        .map(|e| {
            let end = e.fields.last().map_or(e.keyword, |f| f.value.span);
            Symbol {
                name: "experiment".to_owned(),
                detail: String::new(),
                category: None,
                span: e.keyword.to(end),
                name_span: e.keyword,
                fields: fields(&e.fields),
            }
        })
        .collect();
    out.extend(module.declarations.iter().map(|d| Symbol {
        name: d.name.name.clone(),
        detail: format!("{}{} = {}", if d.preset { "preset " } else { "" }, d.category.name, d.base.name),
        category: Category::parse(&d.category.name),
        span: d.span,
        name_span: d.name.span,
        fields: fields(&d.fields),
    }));
    out.sort_by_key(|s| s.span.start);
    out
}
