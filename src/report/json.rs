//! `report json`: every number the HTML report shows, for scripts and for other plots. The
//! compare stage's output goes in whole (not re-derived), beside the run's context.

use super::run_context::RunContext;
use crate::compare::format::Compare;
use serde_json::{json, Value};

pub const FORMAT: &str = "lthlang-report-1";

pub fn render_json(compare: &Compare, context: &RunContext) -> Value {
    let mut value = json!({
        "format": FORMAT,
        "title": context.heading(),
        "experiment": context.experiment,
        "source": { "file": context.source_name, "text": context.source_text },
        "device": context.device,
        "total_seconds": context.total_seconds(),
        "nodes": context.nodes,
        "compare": compare,
    });
    if let Some(n) = context.smoke {
        value["smoke"] = json!({ "batches": n });
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::example;

    #[test]
    fn carries_the_whole_comparison_and_the_run() {
        let (compare, context) = (example::compare(), example::context());
        let value = render_json(&compare, &context);
        assert_eq!(value["format"], FORMAT);
        assert_eq!(value["title"], "<Tickets> & \"drift\"");
        assert_eq!(value["source"]["file"], "quickstart.lth");
        assert_eq!(value["device"], "cpu");
        // Read back, the comparison is the one given: nothing dropped or rounded.
        let back: Compare = serde_json::from_value(value["compare"].clone()).unwrap();
        assert_eq!(back, compare);
        let dense = value["nodes"].as_array().unwrap().iter().find(|n| n["id"] == "dense").unwrap();
        assert_eq!(dense["seconds"], 41.75);
        assert_eq!(dense["key"].as_str().unwrap().len(), 64);
        let lth = value["nodes"].as_array().unwrap().iter().find(|n| n["id"] == "lth").unwrap();
        assert!(lth["seconds"].is_null());
        // 3.25 + 0.05 + 41.75 (data, net, dense) + 39.5 + 40.5 + 41.5 + 42.5 (rounds 1–4) + 5 × 1.5 (cam).
        let total = value["total_seconds"].as_f64().unwrap();
        assert!((total - 216.55).abs() < 1e-9, "{total}");
    }
}
