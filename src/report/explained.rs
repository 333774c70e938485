//! `plan --explain` as a table and as JSON.

use crate::cache::fingerprint::Reason;
use crate::exec::explain::{Explained, NodeStatus};
use crate::plan::Plan;
use crate::source::Sources;
use std::fmt::Write as _;

pub fn table(plan: &Plan, explained: &[Explained], sources: &Sources) -> String {
    let mut out = String::new();
    let runs = explained.iter().filter(|e| e.status == NodeStatus::Run).count();
    let _ = writeln!(out, "plan for `{}`: {} nodes, {} cached, {runs} to run", plan.experiment, explained.len(), explained.len() - runs);
    let width = explained.iter().map(|e| e.id.len()).max().unwrap_or(4).max(4);
    for e in explained {
        let status = match e.status {
            NodeStatus::Cached => "cached",
            NodeStatus::Run => "run",
        };
        let reasons: Vec<String> = e.reasons.iter().map(|r| describe(r, sources)).collect();
        let line = format!("{:<width$}  {status:<6}  {}", e.id, reasons.join("; "));
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// A reason, with where a changed field is written (`file:line:column`).
fn describe(reason: &Reason, sources: &Sources) -> String {
    let text = reason.describe();
    match reason {
        Reason::FieldChanged { span: Some(span), .. } => match sources.try_get(span.source) {
            Some(source) => {
                let (line, col) = source.line_col(span.start);
                format!("{text} (at {}:{line}:{col})", source.name)
            }
            None => text,
        },
        _ => text,
    }
}

pub fn json(plan: &Plan, explained: &[Explained]) -> String {
    let nodes: Vec<serde_json::Value> = plan
        .nodes
        .iter()
        .zip(explained)
        .map(|(node, e)| {
            let mut value = serde_json::to_value(node).unwrap_or_default();
            if let Some(map) = value.as_object_mut() {
                map.insert("key".to_owned(), e.key.clone().into());
                map.insert("status".to_owned(), serde_json::to_value(e.status).unwrap_or_default());
                map.insert("reasons".to_owned(), serde_json::to_value(&e.reasons).unwrap_or_default());
            }
            value
        })
        .collect();
    serde_json::to_string_pretty(&nodes).unwrap_or_default()
}
