//! The run folder `runs/<experiment>/` beside the experiment file:
//! - `metrics.json`: every node's metrics and cache key. It holds only what the seed determines
//!   (no times, no cached-or-computed), so two runs of one experiment give equal files.
//! - `timings.json`: how each node ended this time and how long it took, and the device.
//! - `worker.log`: what the worker wrote on stderr.
//! - `report.html` / `report.json`: copied from the report stage's cache entry (issue 6).

use crate::cache::store::{EntryInfo, Store};
use crate::check::Program;
use crate::exec::run::{Outcome, Status};
use crate::kinds::Category;
use crate::plan::Plan;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// `runs/<name>/` next to the experiment file; the name is made safe for a folder.
pub fn folder_of(file: &Path, experiment: &str) -> PathBuf {
    let base = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let safe: String =
        experiment.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' }).collect();
    base.join("runs").join(safe)
}

pub fn write(folder: &Path, program: &Program, plan: &Plan, outcome: &Outcome, seconds: f64, store: &Store) -> std::io::Result<()> {
    let mut nodes = Vec::new();
    let mut rounds = Vec::new();
    let mut timings = Vec::new();
    for (node, result) in plan.nodes.iter().zip(&outcome.nodes) {
        let state = match &result.status {
            Status::Cached | Status::CachedByOther | Status::Computed => "ok",
            Status::Failed { .. } => "failed",
            Status::Skipped { .. } => "skipped",
            Status::Interrupted { .. } => "interrupted",
        };
        let mut entry = json!({
            "id": node.id,
            "stage": node.stage,
            "kind": node.kind,
            "method": node.method,
            "round": node.round,
            "seed": node.seed,
            "key": result.key,
            "state": state,
            "metrics": result.metrics,
        });
        if let Status::Failed { message } = &result.status {
            entry["error"] = message.clone().into();
        }
        let done = matches!(result.status, Status::Cached | Status::CachedByOther | Status::Computed);
        if done && node.kind == Category::Compare {
            if let Some(table) = result.metrics.as_ref().and_then(|m| m["rounds"].as_array()) {
                // The compare stage's own rows (format::RoundRow), each tagged with its stage.
                rounds.extend(table.iter().filter_map(|r| {
                    let mut row = r.as_object()?.clone();
                    row.insert("compare".to_owned(), json!(node.id));
                    Some(serde_json::Value::Object(row))
                }));
            }
        }
        if done && node.kind == Category::Report {
            copy_report(store, &result.key, folder)?;
        }
        nodes.push(entry);
        timings.push(json!({ "id": node.id, "outcome": result.status, "seconds": result.seconds }));
    }
    let metrics = json!({
        "experiment": program.experiment.name,
        "seeds": program.experiment.seeds,
        "cache": "entries/<key>/ in the cache folder hold each node's artifacts",
        "rounds": rounds,
        "nodes": nodes,
    });
    write_json(&folder.join("metrics.json"), &metrics)?;
    let timing = json!({
        "device": outcome.device,
        "worker_started": outcome.worker_started,
        "seconds": seconds,
        "nodes": timings,
    });
    write_json(&folder.join("timings.json"), &timing)
}

/// Copies a report node's files (report.html, report.json, report-<stage>.*) into the run folder.
fn copy_report(store: &Store, key: &str, folder: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(store.entry_dir(key))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("report") {
            let tmp = folder.join(format!(".{name}.tmp"));
            std::fs::copy(entry.path(), &tmp)?;
            std::fs::rename(tmp, folder.join(&name))?;
        }
    }
    Ok(())
}

fn write_json(path: &Path, value: &serde_json::Value) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text + "\n")?;
    std::fs::rename(tmp, path)
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `lthlang status`: entries and bytes per stage kind.
pub fn status_table(store: &Store, entries: &[EntryInfo]) -> String {
    let mut per_kind: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for entry in entries {
        let kind = entry.fingerprint.as_ref().map_or_else(|| "(unreadable)".to_owned(), |fp| fp.kind.name().to_owned());
        let slot = per_kind.entry(kind).or_default();
        slot.0 += 1;
        slot.1 += entry.bytes;
    }
    let mut out = String::new();
    let _ = writeln!(out, "cache {}", store.root().display());
    let _ = writeln!(out, "{:<10}  {:>7}  {:>10}", "kind", "entries", "bytes");
    for (kind, (n, b)) in &per_kind {
        let _ = writeln!(out, "{kind:<10}  {n:>7}  {:>10}", bytes(*b));
    }
    let total: u64 = entries.iter().map(|e| e.bytes).sum();
    let _ = writeln!(out, "{:<10}  {:>7}  {:>10}", "total", entries.len(), bytes(total));
    let scratch = store.scratch_bytes();
    if scratch > 0 {
        let _ = writeln!(out, "plus {} of partial training state and unfinished entries", bytes(scratch));
    }
    out
}
