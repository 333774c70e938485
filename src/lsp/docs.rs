//! Markdown for hovers and completion details, from the stage registry and the checked program.

use super::analysis::Analysis;
use crate::check::Value;
use crate::kinds::{prune, Category, Effect, FieldSpec, Method, Output, Ty};

pub fn category(category: Category) -> String {
    let methods: Vec<String> = category.methods().iter().map(|m| format!("`{}`", m.name)).collect();
    format!("**{category}** stage\n\nmethods: {}", methods.join(", "))
}

pub fn method(method: &Method) -> String {
    let mut out = format!("**{}** — {} method, produces {}\n\n{}\n", method.name, method.category, method.output.article(), method.doc);
    if !method.fields.is_empty() {
        out.push_str("\n| field | type | default |\n|---|---|---|\n");
        for f in method.fields {
            let default = f.default.map_or_else(|| "required".to_owned(), |d| format!("`{d}`"));
            out.push_str(&format!("| `{}` | {} | {default} |\n", f.name, ty(&f.ty).replace('|', "\\|")));
        }
    }
    out
}

pub fn field(spec: &FieldSpec, owner: &str) -> String {
    let default = spec.default.map_or_else(|| "required".to_owned(), |d| format!("default `{d}`"));
    let cosmetic = if spec.effect == Effect::Cosmetic { "\n\nCosmetic: changing it never recomputes a result." } else { "" };
    format!("**{}** — field of `{owner}`\n\n{}\n\ntype: {}; {default}{cosmetic}", spec.name, spec.doc, ty(&spec.ty))
}

/// A type in words, with its range where it has one.
pub fn ty(ty: &Ty) -> String {
    match ty {
        Ty::Int { min, max } if *max == i64::MAX => format!("integer ≥ {min}"),
        Ty::Fraction { min, max } => format!("percentage strictly between {}% and {}%", min * 100.0, max * 100.0),
        _ => ty.expected(),
    }
}

/// What the stage `name` produces; for a prune stage, its rounds and the weights left after each.
pub fn stage(analysis: &Analysis, name: &str) -> Option<String> {
    let program = analysis.program.as_ref()?;
    let stage = program.stage(name)?;
    let method = stage.method;
    let mut out = format!("**{name}** — {} `{}`, produces {}\n\n{}", stage.category, method.name, method.output.article(), method.doc);
    if method.output == Output::Tickets {
        let rounds = stage.value("rounds").and_then(Value::as_int).unwrap_or(0);
        let rate = stage.value("rate").and_then(Value::as_fraction).unwrap_or(0.0);
        out.push_str(&format!(
            "\n\n{rounds} rounds at {}% per round; weights remaining:\n\n| round | remaining |\n|---|---|\n",
            trim(rate * 100.0)
        ));
        for round in 0..=u32::try_from(rounds.clamp(0, 200)).unwrap_or(0) {
            out.push_str(&format!("| {round} | {}% |\n", trim(prune::remaining(rate, round) * 100.0)));
        }
    }
    if let Some(model) = program.model_of(name).filter(|m| m.name != name) {
        out.push_str(&format!("\n\nmodel: `{}` ({})", model.name, model.method.name));
    }
    Some(out)
}

/// A number with at most three decimals and no trailing zeros.
fn trim(x: f64) -> String {
    let text = format!("{x:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The spec of `field` in the block of a method (or of the experiment).
pub fn spec_of<'a>(method: Option<&'a Method>, field: &str) -> Option<&'a FieldSpec> {
    match method {
        Some(m) => m.field(field),
        None => crate::check::EXPERIMENT_FIELDS.iter().find(|f| f.name == field),
    }
}
