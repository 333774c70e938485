//! `lthlang plan` and `lthlang graph` as a user runs them: the quickstart's plan as a table and as
//! JSON, and the graph of a small experiment (`tests/plan/small.lth`) for Graphviz and Mermaid.

use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::Command;

/// Runs lthlang from the repository root; returns stdout, after checking it succeeded quietly.
fn lthlang(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_lthlang"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the lthlang binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "`lthlang {}` failed:\n{stderr}", args.join(" "));
    assert!(stderr.is_empty(), "`lthlang {}` printed diagnostics:\n{stderr}", args.join(" "));
    String::from_utf8(output.stdout).expect("stdout is UTF-8")
}

#[test]
fn quickstart_plan_table() {
    insta::assert_snapshot!("quickstart_plan", lthlang(&["plan", "experiments/quickstart.lth"]));
}

#[test]
fn quickstart_plan_json() {
    let text = lthlang(&["plan", "--json", "experiments/quickstart.lth"]);
    let json: Value = serde_json::from_str(&text).expect("`plan --json` prints JSON");
    let nodes = json.as_array().expect("a JSON array of nodes");
    assert!(!nodes.is_empty());

    let mut seen: HashSet<&str> = HashSet::new();
    for node in nodes {
        let id = node["id"].as_str().unwrap_or_else(|| panic!("a string `id`: {node}"));
        for field in ["kind", "method"] {
            assert!(node[field].is_string(), "`{field}` is a string: {node}");
        }
        assert!(node["round"].is_null() || node["round"].is_u64(), "`round` is null or an integer: {node}");
        let inputs = node["inputs"].as_array().unwrap_or_else(|| panic!("an `inputs` array: {node}"));
        for input in inputs {
            let input = input.as_str().unwrap_or_else(|| panic!("input ids are strings: {node}"));
            assert!(seen.contains(input), "`{id}` reads `{input}`, which is not listed before it");
        }
        assert!(seen.insert(id), "`{id}` is listed twice");
    }

    let rounds = |stage: &str| -> BTreeSet<u64> {
        nodes
            .iter()
            .filter(|n| n["stage"] == stage)
            .map(|n| n["round"].as_u64().unwrap_or_else(|| panic!("`{stage}` nodes have rounds: {n}")))
            .collect()
    };
    assert_eq!(rounds("tickets"), (1..=6).collect(), "the prune stage has a node per pruning round");
    assert_eq!(rounds("feats"), (0..=6).collect(), "a stage fed by tickets is mapped over round 0 (dense) to 6");
    for node in nodes.iter().filter(|n| n["stage"] == "tickets") {
        assert_eq!(node["kind"], "prune");
        assert_eq!(node["method"], "imp");
    }
}

#[test]
fn small_graph_dot() {
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plan/small.lth").is_file());
    insta::assert_snapshot!("small_graph_dot", lthlang(&["graph", "--format", "dot", "tests/plan/small.lth"]));
}

#[test]
fn small_graph_mermaid() {
    insta::assert_snapshot!("small_graph_mermaid", lthlang(&["graph", "--format", "mermaid", "tests/plan/small.lth"]));
}

/// `graph` without `--format` draws dot.
#[test]
fn graph_defaults_to_dot() {
    assert_eq!(lthlang(&["graph", "tests/plan/small.lth"]), lthlang(&["graph", "--format", "dot", "tests/plan/small.lth"]));
}
