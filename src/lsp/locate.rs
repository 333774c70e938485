//! What the syntax tree holds at a byte offset: the word a hover, a definition or a completion is
//! about, and the declaration and field around it.

use crate::source::Span;
use crate::syntax::ast::{Declaration, Expr, ExprKind, Field, Ident, Module};

#[derive(Clone, Copy)]
pub enum Owner<'m> {
    Declaration(&'m Declaration),
    Experiment,
}

pub enum Hit<'m> {
    /// Word `index` of a `use` path.
    Use {
        path: &'m [Ident],
        index: usize,
    },
    Category(&'m Declaration),
    Name(&'m Declaration),
    Base(&'m Declaration),
    /// A field's name; `outer` is the field whose configured value (`head { top = 3 }`) holds it.
    FieldName {
        owner: Owner<'m>,
        outer: Option<&'m Field>,
        field: &'m Field,
    },
    /// The innermost value at the offset, inside `field`.
    Value {
        owner: Owner<'m>,
        field: &'m Field,
        expr: &'m Expr,
    },
}

fn contains(span: Span, offset: usize) -> bool {
    span.start as usize <= offset && offset <= span.end as usize
}

pub fn at(module: &Module, offset: usize) -> Option<Hit<'_>> {
    for u in &module.uses {
        if let Some(index) = u.path.iter().position(|p| contains(p.span, offset)) {
            return Some(Hit::Use { path: &u.path, index });
        }
    }
    for experiment in &module.experiments {
        if let Some(hit) = in_fields(Owner::Experiment, None, &experiment.fields, offset) {
            return Some(hit);
        }
    }
    for d in &module.declarations {
        if !contains(d.span, offset) {
            continue;
        }
        if contains(d.category.span, offset) {
            return Some(Hit::Category(d));
        }
        if contains(d.name.span, offset) {
            return Some(Hit::Name(d));
        }
        if contains(d.base.span, offset) {
            return Some(Hit::Base(d));
        }
        return in_fields(Owner::Declaration(d), None, &d.fields, offset);
    }
    None
}

fn in_fields<'m>(owner: Owner<'m>, outer: Option<&'m Field>, fields: &'m [Field], offset: usize) -> Option<Hit<'m>> {
    for field in fields {
        if contains(field.name.span, offset) {
            return Some(Hit::FieldName { owner, outer, field });
        }
        if contains(field.value.span, offset) {
            return Some(in_value(owner, field, &field.value, offset));
        }
    }
    None
}

fn in_value<'m>(owner: Owner<'m>, field: &'m Field, expr: &'m Expr, offset: usize) -> Hit<'m> {
    let mut current = expr;
    // Iterative descent: values nest up to the parser's bound, and member chains are long lists.
    loop {
        let next = match &current.kind {
            ExprKind::List(items) => items.iter().find(|e| contains(e.span, offset)),
            ExprKind::Member { base, .. } => Some(base.as_ref()).filter(|b| contains(b.span, offset)),
            ExprKind::Call { receiver, args, .. } => receiver
                .as_deref()
                .filter(|r| contains(r.span, offset))
                .or_else(|| args.iter().map(|a| &a.value).find(|v| contains(v.span, offset))),
            ExprKind::Configured { base, fields } => {
                if contains(base.span, offset) {
                    Some(base.as_ref())
                } else {
                    return in_fields(owner, Some(field), fields, offset).unwrap_or(Hit::Value { owner, field, expr: current });
                }
            }
            _ => None,
        };
        match next {
            Some(inner) => current = inner,
            None => return Hit::Value { owner, field, expr: current },
        }
    }
}
