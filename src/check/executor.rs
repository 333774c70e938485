//! The experiment's `executor` setting: `local` (the default) or `slurm { ... }` with the
//! resources its jobs ask for. Overrides per stage category or per stage name are written as
//! fields holding another `slurm { ... }`:
//!
//! ```text
//! experiment {
//!   executor = slurm {
//!     time = "30"  cpus = 4  mem = "8G"
//!     train = slurm { gpus = 1  time = "4:00:00" }
//!     lth   = slurm { time = "10" }
//!   }
//! }
//! ```
//!
//! Site matters (partition names, account, module loads) belong in `lthlang.toml`, so the same
//! file runs on two clusters; the two are merged, the experiment's fields winning.

use super::codes;
use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::exec::slurm::settings::{reserved, Resources, Settings};
use crate::kinds::Category;
use crate::syntax::ast::{Expr, ExprKind, Field};
use std::collections::BTreeSet;

#[derive(Clone, Debug, Default, PartialEq)]
pub enum Executor {
    #[default]
    Local,
    /// Boxed: the settings are large and most experiments run locally.
    Slurm(Box<Settings>),
}

const RESOURCE_FIELDS: &[&str] = &["partition", "gpus", "cpus", "mem", "time", "account", "qos", "sbatch_args"];
/// Fields only the top `slurm { }` takes.
const TOP_FIELDS: &[&str] = &["setup", "poll_seconds"];

/// Reads the `executor` field; `stages` are the declared stage names (for overrides).
pub fn executor(field: &Field, stages: &BTreeSet<String>, diagnostics: &mut Vec<Diagnostic>) -> Executor {
    let (word, fields) = match &field.value.kind {
        ExprKind::Name(word) => (word.as_str(), None),
        ExprKind::Configured { base, fields } => match &base.kind {
            ExprKind::Name(word) => (word.as_str(), Some(fields)),
            _ => return mismatch(&field.value, diagnostics),
        },
        _ => return mismatch(&field.value, diagnostics),
    };
    match (word, fields) {
        ("local", None) => Executor::Local,
        ("slurm", None) => Executor::Slurm(Box::default()),
        ("slurm", Some(fields)) => Executor::Slurm(Box::new(settings(fields, stages, diagnostics))),
        ("local", Some(fields)) => {
            let span = fields.first().map_or(field.value.span, |f| f.name.span);
            diagnostics.push(
                Diagnostic::error(codes::UNKNOWN_FIELD, span, "the local executor takes no fields", "not a field of `local`")
                    .with_help("the number of local workers is `lthlang run --jobs N`"),
            );
            Executor::Local
        }
        (other, _) => {
            let name_span = match &field.value.kind {
                ExprKind::Configured { base, .. } => base.span,
                _ => field.value.span,
            };
            diagnostics.push(
                Diagnostic::error(codes::UNKNOWN_WORD, name_span, format!("unknown executor `{other}`"), "not an executor")
                    .with_help(did_you_mean(other, ["local", "slurm"]).unwrap_or_else(|| "executors: `local`, `slurm { ... }`".to_owned())),
            );
            Executor::Local
        }
    }
}

fn mismatch(expr: &Expr, diagnostics: &mut Vec<Diagnostic>) -> Executor {
    diagnostics.push(Diagnostic::error(
        codes::TYPE_MISMATCH,
        expr.span,
        format!("expected `local` or `slurm {{ ... }}`, found {}", expr.describe()),
        "wrong type",
    ));
    Executor::Local
}

fn settings(fields: &[Field], stages: &BTreeSet<String>, diagnostics: &mut Vec<Diagnostic>) -> Settings {
    let mut out = Settings { defaults: resources(fields, true, diagnostics), ..Settings::default() };
    for field in fields {
        let name = field.name.name.as_str();
        match name {
            "setup" => out.setup = strings(&field.value, diagnostics),
            "poll_seconds" => match field.value.kind {
                ExprKind::Float(x) if x > 0.0 => out.poll_seconds = Some(x),
                ExprKind::Integer(n) if n > 0 => out.poll_seconds = Some(n as f64),
                _ => diagnostics.push(Diagnostic::error(
                    codes::TYPE_MISMATCH,
                    field.value.span,
                    format!("expected a positive number of seconds, found {}", field.value.describe()),
                    "wrong type",
                )),
            },
            _ if RESOURCE_FIELDS.contains(&name) => {}
            _ if Category::ALL.iter().any(|c| c.name() == name) || stages.contains(name) => {
                let nested = match &field.value.kind {
                    ExprKind::Configured { base, fields } if matches!(&base.kind, ExprKind::Name(w) if w == "slurm") => Some(fields),
                    _ => None,
                };
                match nested {
                    Some(fields) => {
                        out.overrides.insert(name.to_owned(), resources(fields, false, diagnostics));
                    }
                    None => diagnostics.push(
                        Diagnostic::error(
                            codes::TYPE_MISMATCH,
                            field.value.span,
                            format!("expected `slurm {{ ... }}` with the resources of `{name}`, found {}", field.value.describe()),
                            "wrong type",
                        )
                        .with_help(format!("for example `{name} = slurm {{ gpus = 1  time = \"2:00:00\" }}`")),
                    ),
                }
            }
            _ => {
                let known: Vec<&str> = RESOURCE_FIELDS.iter().chain(TOP_FIELDS).copied().collect();
                diagnostics.push(
                    Diagnostic::error(
                        codes::UNKNOWN_FIELD,
                        field.name.span,
                        format!("unknown `slurm` field `{name}`"),
                        "not a known `slurm` field",
                    )
                    .with_help(
                        did_you_mean(name, known.iter().copied())
                            .unwrap_or_else(|| format!("known: {}; or a stage category or stage name overriding them", known.join(", "))),
                    ),
                );
            }
        }
    }
    out
}

/// The resource fields of one block; other fields are left to the caller when `top`, else errors.
fn resources(fields: &[Field], top: bool, diagnostics: &mut Vec<Diagnostic>) -> Resources {
    let mut out = Resources::default();
    for field in fields {
        let value = &field.value;
        match field.name.name.as_str() {
            "partition" => out.partition = string(value, diagnostics),
            "mem" => out.mem = string(value, diagnostics),
            "time" => out.time = string(value, diagnostics),
            "account" => out.account = string(value, diagnostics),
            "qos" => out.qos = string(value, diagnostics),
            "gpus" => out.gpus = count(value, diagnostics),
            "cpus" => out.cpus = count(value, diagnostics),
            "sbatch_args" => {
                let items = match &value.kind {
                    ExprKind::List(items) => items.as_slice(),
                    _ => std::slice::from_ref(value),
                };
                for item in items {
                    let Some(arg) = string(item, diagnostics) else { continue };
                    if let Some(flag) = reserved(&arg) {
                        diagnostics.push(
                            Diagnostic::error(
                                codes::RESERVED_FLAG,
                                item.span,
                                format!("`sbatch_args` sets `{flag}`, which lthlang sets itself"),
                                "set by lthlang for every job",
                            )
                            .with_help("lthlang names each job, writes its log into the cache and chains jobs with --dependency; remove this argument"),
                        );
                    } else {
                        out.sbatch_args.push(arg);
                    }
                }
            }
            other if !top => diagnostics.push(
                Diagnostic::error(codes::UNKNOWN_FIELD, field.name.span, format!("unknown resource `{other}`"), "not a resource")
                    .with_help(
                        did_you_mean(other, RESOURCE_FIELDS.iter().copied())
                            .unwrap_or_else(|| format!("resources: {}", RESOURCE_FIELDS.join(", "))),
                    ),
            ),
            _ => {}
        }
    }
    out
}

fn string(expr: &Expr, diagnostics: &mut Vec<Diagnostic>) -> Option<String> {
    match &expr.kind {
        ExprKind::Str(s) => Some(s.clone()),
        _ => {
            diagnostics.push(Diagnostic::error(
                codes::TYPE_MISMATCH,
                expr.span,
                format!("expected a string, found {}", expr.describe()),
                "wrong type",
            ));
            None
        }
    }
}

fn strings(expr: &Expr, diagnostics: &mut Vec<Diagnostic>) -> Vec<String> {
    match &expr.kind {
        ExprKind::List(items) => items.iter().filter_map(|i| string(i, diagnostics)).collect(),
        _ => string(expr, diagnostics).into_iter().collect(),
    }
}

fn count(expr: &Expr, diagnostics: &mut Vec<Diagnostic>) -> Option<u32> {
    match expr.kind {
        ExprKind::Integer(n) if (0..=1_000_000).contains(&n) => u32::try_from(n).ok(),
        ExprKind::Integer(n) => {
            diagnostics.push(Diagnostic::error(codes::OUT_OF_RANGE, expr.span, format!("{n} is not a count of 0 or more"), "out of range"));
            None
        }
        _ => {
            diagnostics.push(Diagnostic::error(
                codes::TYPE_MISMATCH,
                expr.span,
                format!("expected a whole number, found {}", expr.describe()),
                "wrong type",
            ));
            None
        }
    }
}
