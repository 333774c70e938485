//! Text forms of a plan: the table `lthlang plan` prints, Graphviz dot and Mermaid.

use super::{counts, Plan};
use std::fmt::Write as _;

pub fn to_table(plan: &Plan) -> String {
    let mut out = String::new();
    let seeds: Vec<String> = plan.seeds.iter().map(ToString::to_string).collect();
    let per_kind: Vec<String> = counts(plan).iter().map(|(k, n)| format!("{n} {k}")).collect();
    let _ = writeln!(
        out,
        "plan for `{}`: {} nodes ({}), seed{} {}",
        plan.experiment,
        plan.nodes.len(),
        per_kind.join(", "),
        if seeds.len() == 1 { "" } else { "s" },
        seeds.join(", ")
    );
    let id_width = plan.nodes.iter().map(|n| n.id.len()).max().unwrap_or(4).max(4);
    let method_width = plan.nodes.iter().map(|n| n.method.len()).max().unwrap_or(6).max(6);
    let number_width = plan.nodes.len().to_string().len();
    let _ = writeln!(out, "{:>number_width$}  {:<id_width$}  {:<8}  {:<method_width$}  inputs", "#", "node", "kind", "method");
    for (i, node) in plan.nodes.iter().enumerate() {
        let inputs: Vec<String> = plan.deps.inputs(i).into_iter().map(|j| plan.nodes[j].id.clone()).collect();
        let inputs = if inputs.is_empty() { "-".to_owned() } else { compress(&inputs) };
        let line =
            format!("{:>number_width$}  {:<id_width$}  {:<8}  {:<method_width$}  {inputs}", i + 1, node.id, node.kind.name(), node.method);
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// Joins node ids, folding runs of consecutive rounds: `head[0], head[1], head[2]` → `head[0..2]`.
fn compress(ids: &[String]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut run: Option<(String, u32, u32, String)> = None; // (stage, first, last, suffix)
    let flush = |run: &mut Option<(String, u32, u32, String)>, parts: &mut Vec<String>| {
        if let Some((stage, first, last, suffix)) = run.take() {
            parts.push(if first == last { format!("{stage}[{first}]{suffix}") } else { format!("{stage}[{first}..{last}]{suffix}") });
        }
    };
    for id in ids {
        let parsed = id.split_once('[').and_then(|(stage, rest)| {
            let (round, suffix) = rest.split_once(']')?;
            Some((stage.to_owned(), round.parse::<u32>().ok()?, suffix.to_owned()))
        });
        match (parsed, &mut run) {
            (Some((stage, round, suffix)), Some((s, _, last, x))) if *s == stage && *x == suffix && *last + 1 == round => *last = round,
            (Some((stage, round, suffix)), _) => {
                flush(&mut run, &mut parts);
                run = Some((stage, round, round, suffix));
            }
            (None, _) => {
                flush(&mut run, &mut parts);
                parts.push(id.clone());
            }
        }
    }
    flush(&mut run, &mut parts);
    parts.join(", ")
}

/// The text of a dot string, without its quotes: backslashes and quotes escaped.
fn escaped(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn quoted(id: &str) -> String {
    format!("\"{}\"", escaped(id))
}

pub fn to_dot(plan: &Plan) -> String {
    let mut out = format!("digraph {} {{\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n", quoted(&plan.experiment));
    for node in &plan.nodes {
        // `\n` is dot's line break inside a label, so the parts are escaped, not the whole.
        let _ = writeln!(out, "  {} [label=\"{}\\n{} {}\"];", quoted(&node.id), escaped(&node.id), node.kind.name(), node.method);
    }
    for (from, to) in plan.deps.edges() {
        let _ = writeln!(out, "  {} -> {};", quoted(&plan.nodes[from].id), quoted(&plan.nodes[to].id));
    }
    out.push_str("}\n");
    out
}

/// Mermaid ids must be plain words, so nodes are numbered and labelled with their ids.
pub fn to_mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart LR\n");
    for (i, node) in plan.nodes.iter().enumerate() {
        let _ = writeln!(out, "  n{i}[\"{}<br/>{} {}\"]", node.id.replace('"', "#quot;"), node.kind.name(), node.method);
    }
    for (j, i) in plan.deps.edges() {
        let _ = writeln!(out, "  n{j} --> n{i}");
    }
    out
}
