//! The language reference, generated from the kinds registry (`crate::kinds`), so what `doc`
//! prints, what docs/reference.md holds and what `check` accepts can never disagree:
//! `lthlang doc [CATEGORY | METHOD | CATEGORY.METHOD]` on the console, `doc --markdown` for the
//! file (a test fails when the file is stale).

pub mod codes;

use crate::kinds::{Category, Effect, FieldSpec, Method, Ty};
use std::fmt::Write as _;

/// What a `doc` topic names.
pub enum Topic {
    Everything,
    Category(Category),
    Methods(Vec<&'static Method>),
}

/// Every method of every category.
fn all_methods() -> impl Iterator<Item = &'static Method> {
    Category::ALL.into_iter().flat_map(|c| c.methods().iter())
}

/// Resolves a topic, or says why not (with the nearest name).
pub fn topic(word: Option<&str>) -> Result<Topic, String> {
    let Some(word) = word else { return Ok(Topic::Everything) };
    if let Some((category, method)) = word.split_once('.') {
        let Some(c) = Category::parse(category) else { return Err(unknown(category, "category")) };
        return match c.method(method) {
            Some(m) => Ok(Topic::Methods(vec![m])),
            None => Err(format!(
                "`{category}` has no method `{method}`{}; its methods: {}",
                hint(method, c.methods().iter().map(|m| m.name)),
                c.methods().iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
            )),
        };
    }
    if let Some(c) = Category::parse(word) {
        return Ok(Topic::Category(c));
    }
    // A method name may belong to several categories (`random` prunes and makes concepts).
    let methods: Vec<&'static Method> = all_methods().filter(|m| m.name == word).collect();
    if methods.is_empty() {
        return Err(unknown(word, "category or method"));
    }
    Ok(Topic::Methods(methods))
}

fn hint<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    crate::diagnostic::did_you_mean(word, candidates).map(|h| format!(" ({h})")).unwrap_or_default()
}

fn unknown(word: &str, what: &str) -> String {
    let names = Category::ALL.iter().map(|c| c.name()).chain(all_methods().map(|m| m.name));
    format!("no {what} `{word}`{}; `lthlang doc` lists them", hint(word, names.collect::<Vec<_>>().iter().copied()))
}

/// `lthlang doc`: prints the topic; exit code 0, or 2 for an unknown topic.
pub fn command(word: Option<&str>, markdown: bool) -> u8 {
    if markdown {
        crate::report::console::output(&reference_markdown());
        return 0;
    }
    match topic(word) {
        Ok(Topic::Everything) => crate::report::console::output(&overview()),
        Ok(Topic::Category(c)) => crate::report::console::output(&category_text(c)),
        Ok(Topic::Methods(methods)) => {
            let texts: Vec<String> = methods.iter().map(|m| method_text(m)).collect();
            crate::report::console::output(&texts.join("\n"));
        }
        Err(message) => {
            crate::report::console::error_line(&message);
            return 2;
        }
    }
    0
}

/// Every category and its methods, one line each.
pub fn overview() -> String {
    let mut out = String::from("Stages are declared `CATEGORY NAME = METHOD { field = value ... }`.\n");
    out.push_str("`lthlang doc CATEGORY` or `lthlang doc METHOD` shows the fields.\n");
    for category in Category::ALL {
        let _ = writeln!(out, "\n{category}");
        let width = category.methods().iter().map(|m| m.name.len()).max().unwrap_or(0);
        for method in category.methods() {
            let _ = writeln!(out, "  {:<width$}  {}", method.name, method.doc);
        }
    }
    out
}

pub fn category_text(category: Category) -> String {
    let texts: Vec<String> = category.methods().iter().map(method_text).collect();
    texts.join("\n")
}

/// The default as the user writes it; "required" when there is none.
fn default_of(field: &FieldSpec) -> &'static str {
    field.default.unwrap_or("required")
}

/// The type, with its range, and what makes the field special.
fn type_of(field: &FieldSpec) -> String {
    let mut ty = match field.ty {
        Ty::Int { min, max: i64::MAX } => format!("an integer, {min} or more"),
        // The range as the user writes it: percentages, bounds included (as `check` applies it).
        Ty::Fraction { min, max } => format!("a percentage from {}% to {}% (or a fraction such as `0.1`)", percent(min), percent(max)),
        _ => field.ty.expected(),
    };
    if field.effect == Effect::Cosmetic {
        ty.push_str(" (cosmetic: changing it reruns nothing but the report)");
    }
    ty
}

/// Fields a configured reference takes (`head { top = 3 }`), for the nested listing.
fn nested(field: &FieldSpec) -> Option<&'static [FieldSpec]> {
    match field.ty {
        Ty::Configured { fields, .. } => Some(fields),
        _ => None,
    }
}

pub fn method_text(method: &Method) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} {} — {}", method.category, method.name, method.doc);
    let _ = writeln!(out, "  produces {}", method.output.article());
    if let Some(facts) = method.dataset {
        let mut has = Vec::new();
        if facts.concept_labels {
            has.push("concept labels (`data.concepts`)");
        }
        if facts.object_masks {
            has.push("object masks");
        }
        if facts.bounding_boxes {
            has.push("bounding boxes");
        }
        if !has.is_empty() {
            let _ = writeln!(out, "  has {}", has.join(", "));
        }
        if let Some(n) = facts.fixed_classes {
            let _ = writeln!(out, "  classes: {n}");
        }
    }
    let required: Vec<&str> = method.fields.iter().filter(|f| f.default.is_none()).map(|f| f.name).collect();
    let example = required.iter().map(|f| format!("{f} = ...")).collect::<Vec<_>>().join("  ");
    let _ = writeln!(out, "  {} NAME = {} {{ {example} }}", method.category, method.name);
    let _ = writeln!(out);
    field_lines(&mut out, method.fields, "  ");
    out
}

fn field_lines(out: &mut String, fields: &[FieldSpec], indent: &str) {
    let width = fields.iter().map(|f| f.name.len()).max().unwrap_or(0);
    for field in fields {
        let _ = writeln!(out, "{indent}{:<width$}  {}", field.name, field.doc);
        let pad = " ".repeat(width);
        let _ = writeln!(out, "{indent}{pad}  type: {}", type_of(field));
        let _ = writeln!(out, "{indent}{pad}  default: {}", default_of(field));
        if let Some(inner) = nested(field) {
            let _ = writeln!(out, "{indent}{pad}  its own fields, written `{} = stage {{ field = value }}`:", field.name);
            field_lines(out, inner, &format!("{indent}{pad}    "));
        }
    }
}

/// docs/reference.md: every category, method and field, and every diagnostic code.
pub fn reference_markdown() -> String {
    let mut out = String::new();
    out.push_str("# lthlang reference\n\n");
    out.push_str("<!-- Generated by `lthlang doc --markdown` from the kinds registry (src/kinds/) and the diagnostic\n");
    out.push_str("     codes (src/doc/codes.rs). Do not edit: tests/reference.rs fails when this file is stale;\n");
    out.push_str("     regenerate with `cargo run --release -- doc --markdown > docs/reference.md`. -->\n\n");
    out.push_str("A stage is declared `CATEGORY NAME = METHOD { field = value ... }`. Fields without a default are\n");
    out.push_str("required. Percentages (`40%`) and fractions (`0.4`) are interchangeable. The same text is printed\n");
    out.push_str("by `lthlang doc CATEGORY`, `lthlang doc METHOD` and `lthlang doc CATEGORY.METHOD`.\n\n");
    for category in Category::ALL {
        let methods: Vec<String> = category.methods().iter().map(|m| format!("[`{}`](#{}{})", m.name, category.name(), m.name)).collect();
        let _ = writeln!(out, "- **{category}**: {}", methods.join(", "));
    }
    out.push_str("- [Diagnostic codes](#diagnostic-codes)\n");
    for category in Category::ALL {
        let _ = writeln!(out, "\n## {category}\n");
        for method in category.methods() {
            let _ = writeln!(out, "### {}.{}\n", category, method.name);
            let _ = writeln!(out, "{}. Produces {}.\n", capitalised(method.doc), method.output.article());
            let _ = writeln!(out, "| field | type | default | meaning |");
            let _ = writeln!(out, "|---|---|---|---|");
            for field in method.fields {
                markdown_row(&mut out, field, "");
                if let Some(inner) = nested(field) {
                    for f in inner {
                        markdown_row(&mut out, f, &format!("{} → ", field.name));
                    }
                }
            }
            out.push('\n');
        }
    }
    out.push_str("## Diagnostic codes\n\n");
    out.push_str("`lthlang explain CODE` prints the longer text with an example.\n\n");
    out.push_str("| code | meaning |\n|---|---|\n");
    for code in codes::CODES {
        let _ = writeln!(out, "| `{}` | {} |", code.code, code.summary);
    }
    out
}

fn markdown_row(out: &mut String, field: &FieldSpec, prefix: &str) {
    let cell = |s: &str| s.replace('|', "\\|");
    let default = field.default.map_or_else(|| "required".to_owned(), |d| format!("`{}`", cell(d)));
    let _ = writeln!(out, "| `{prefix}{}` | {} | {default} | {} |", field.name, cell(&type_of(field)), cell(field.doc));
}

/// A fraction as a percentage without float noise (0.001 → 0.1, 0.9 → 90).
fn percent(fraction: f64) -> String {
    let text = format!("{:.6}", fraction * 100.0);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
