//! The `report` stage: renders the included comparisons with the run's context (source, keys,
//! device, stage times) into the node's folder. Runs in the front end, like `compare`, and again
//! on `lthlang report` from cached comparisons without recomputing anything.

use super::run_context::{overlay_reader, NodeRecord, NodeWarning, RunContext, SkippedImages};
use super::{html, json};
use crate::cache::store::TIMING_FILE;
use crate::compare::format::Compare;
use crate::compare::OUTPUT_FILE as COMPARE_FILE;
use crate::exec::job::NodeRequest;
use crate::kinds::Category;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the report shows that no stage artifact holds.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Document {
    pub experiment: String,
    pub source_name: String,
    pub source_text: String,
    /// Every node of the plan with its key, in plan order.
    pub nodes: Vec<(String, String, Category, String, String)>,
    /// `run --smoke N`: the report says its numbers come from N batches per loop.
    pub smoke: Option<u32>,
}

pub const HTML_FILE: &str = "report.html";
pub const JSON_FILE: &str = "report.json";

/// The file a report method writes.
pub fn file_of(method: &str) -> &'static str {
    if method == "json" {
        JSON_FILE
    } else {
        HTML_FILE
    }
}

/// Renders `request` (a report node) into `out`; returns the node's metrics.
pub fn render(
    request: &NodeRequest,
    document: &Document,
    entries: &dyn Fn(&str) -> PathBuf,
    out: &Path,
) -> Result<serde_json::Value, String> {
    let included: Vec<&str> = match request.fields.get("include") {
        Some(crate::check::Value::List(items)) => items.iter().filter_map(crate::check::Value::as_stage).collect(),
        _ => Vec::new(),
    };
    let title = match request.fields.get("title") {
        Some(crate::check::Value::Str(s)) => s.clone(),
        _ => String::new(),
    };
    // Times and the device come from the entries, recorded when each node was computed.
    let mut device = None;
    let mut nodes = Vec::new();
    let mut folders: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut skipped_images = Vec::new();
    let mut warnings = Vec::new();
    for (id, stage, kind, method, key) in &document.nodes {
        let dir = entries(key);
        let timing = std::fs::read_to_string(dir.join(TIMING_FILE)).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        let seconds = timing.as_ref().and_then(|t| t["seconds"].as_f64());
        if let Some(d) = timing.as_ref().and_then(|t| t["device"].as_str()).filter(|d| *d != "front end" && !d.is_empty()) {
            device.get_or_insert_with(|| d.to_owned());
        }
        if *kind == Category::Dataset {
            let metrics = crate::compare::artifacts::metrics(&dir);
            let count = metrics["skipped"].as_u64().and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
            if count > 0 {
                let files = metrics["skipped_files"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                skipped_images.push(SkippedImages { dataset: id.clone(), count, files });
            }
        }
        nodes.push(NodeRecord {
            id: id.clone(),
            stage: stage.clone(),
            kind: kind.name().to_owned(),
            method: method.clone(),
            key: key.clone(),
            seconds,
        });
        warnings.extend(crate::exec::run::stored_warnings(&dir).into_iter().map(|message| NodeWarning { node: id.clone(), message }));
        folders.insert(id.clone(), dir);
    }
    let context = RunContext {
        experiment: document.experiment.clone(),
        title,
        source_name: document.source_name.clone(),
        source_text: document.source_text.clone(),
        device,
        nodes,
        skipped_images,
        warnings,
        smoke: document.smoke,
    };
    // Each explainer's overlay opacity, by node: a cosmetic field the report applies.
    let alphas: BTreeMap<String, f64> = request
        .upstream
        .iter()
        .filter_map(|u| u.fields.get("alpha").and_then(crate::check::Value::as_fraction).map(|a| (u.id.clone(), a)))
        .collect();
    let mut written = Vec::new();
    for (i, stage) in included.iter().enumerate() {
        let node = request
            .upstream
            .iter()
            .find(|u| u.stage == *stage)
            .ok_or_else(|| format!("the report includes `{stage}`, whose output was not provided"))?;
        let path = node.dir.join(COMPARE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let compare = Compare::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        // The first comparison is the report; any further one gets a page of its own.
        let name = if i == 0 {
            file_of(&request.method).to_owned()
        } else {
            format!("report-{stage}.{}", if request.method == "json" { "json" } else { "html" })
        };
        let body = if request.method == "json" {
            serde_json::to_string_pretty(&json::render_json(&compare, &context)).map_err(|e| e.to_string())?
        } else {
            html::render_html(&compare, &context, &overlay_reader(&folders, &alphas))
        };
        let target = out.join(&name);
        std::fs::write(&target, body).map_err(|e| format!("{}: {e}", target.display()))?;
        written.push(name);
    }
    Ok(serde_json::json!({ "files": written }))
}
