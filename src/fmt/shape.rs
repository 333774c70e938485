//! The syntax tree without positions: two sources with the same shape mean the same thing to the
//! checker, whatever their layout and comments. `fmt` compares shapes before it writes anything.

use crate::syntax::ast::{Expr, ExprKind, Field, Module};
use std::fmt::Write as _;

pub fn of_module(module: &Module) -> String {
    let mut out = String::new();
    for u in &module.uses {
        let path: Vec<&str> = u.path.iter().map(|p| p.name.as_str()).collect();
        let _ = writeln!(out, "use {}", path.join("."));
    }
    for experiment in &module.experiments {
        out.push_str("experiment");
        fields(&mut out, &experiment.fields);
        out.push('\n');
    }
    for d in &module.declarations {
        let _ = write!(out, "{} {} {} = {}", d.preset, d.category.name, d.name.name, d.base.name);
        fields(&mut out, &d.fields);
        out.push('\n');
    }
    out
}

fn fields(out: &mut String, fields: &[Field]) {
    out.push('{');
    for f in fields {
        let _ = write!(out, "{}=", f.name.name);
        expr(out, &f.value);
        out.push(';');
    }
    out.push('}');
}

fn expr(out: &mut String, e: &Expr) {
    // Debug forms of the numbers: equal shapes need bit-equal values, not equal spellings.
    let _ = match &e.kind {
        ExprKind::Integer(n) => write!(out, "int({n})"),
        ExprKind::Float(x) => write!(out, "float({x:?})"),
        ExprKind::Percent(x) => write!(out, "percent({x:?})"),
        ExprKind::Str(s) => write!(out, "str({s:?})"),
        ExprKind::Name(n) => write!(out, "name({n})"),
        ExprKind::Range { start, end, inclusive } => write!(out, "range({start},{end},{inclusive})"),
        ExprKind::List(items) => {
            out.push('[');
            for item in items {
                expr(out, item);
                out.push(',');
            }
            write!(out, "]")
        }
        ExprKind::Member { base, member } => {
            expr(out, base);
            write!(out, ".{}", member.name)
        }
        ExprKind::Call { receiver, function, args } => {
            if let Some(r) = receiver {
                expr(out, r);
                out.push('.');
            }
            let _ = write!(out, "{}(", function.name);
            for a in args {
                if let Some(name) = &a.name {
                    let _ = write!(out, "{}=", name.name);
                }
                expr(out, &a.value);
                out.push(',');
            }
            write!(out, ")")
        }
        ExprKind::Configured { base, fields: f } => {
            expr(out, base);
            fields(out, f);
            Ok(())
        }
    };
}
