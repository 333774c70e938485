//! What the report says about the run itself, beside the compare stage's numbers: where the
//! experiment came from, which cache entries hold each node, the device and how long each stage
//! took. The front end fills it from the plan and the run's outcome.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

#[derive(Clone, Debug, Serialize)]
pub struct RunContext {
    pub experiment: String,
    /// The report's `title` field; empty means the experiment's name.
    pub title: String,
    pub source_name: String,
    pub source_text: String,
    /// The device the worker reported; `None` when every node came from the cache.
    pub device: Option<String>,
    pub nodes: Vec<NodeRecord>,
    /// Datasets that left unreadable images out (`skip_corrupt = true`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_images: Vec<SkippedImages>,
    /// Warnings the nodes gave when they were computed, whether this run or an earlier one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<NodeWarning>,
    /// Set in a smoke run (`run --smoke N`): every loop stopped after N batches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoke: Option<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeWarning {
    pub node: String,
    pub message: String,
}

/// Images a dataset node skipped as unreadable, with their paths relative to its folder.
#[derive(Clone, Debug, Serialize)]
pub struct SkippedImages {
    pub dataset: String,
    pub count: usize,
    pub files: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeRecord {
    pub id: String,
    pub stage: String,
    pub kind: String,
    pub method: String,
    pub key: String,
    /// How long the node took this run; `None` when it was not run (skipped, or not timed).
    pub seconds: Option<f64>,
}

impl RunContext {
    pub fn heading(&self) -> &str {
        if self.title.trim().is_empty() {
            &self.experiment
        } else {
            &self.title
        }
    }

    /// Seconds over the nodes that were timed.
    pub fn total_seconds(&self) -> f64 {
        self.nodes.iter().filter_map(|n| n.seconds).sum()
    }
}

/// Reads overlay files from the explainer nodes' cache folders. A `file` that would leave its
/// node's folder (absolute, or through `..`) is refused: the name comes from an artifact, and the
/// report must not embed whatever a path happens to reach.
///
/// A heatmap (`heatmaps/<i>.png`) comes back laid over its image (`images/<i>.png`) at the
/// node's `alpha` from `alphas` (0.5 when it has none); any other file comes back as stored.
pub fn overlay_reader<'a>(
    folders: &'a BTreeMap<String, PathBuf>,
    alphas: &'a BTreeMap<String, f64>,
) -> impl Fn(&str, &str) -> Option<Vec<u8>> + 'a {
    move |node, file| {
        let folder = folders.get(node)?;
        let relative = Path::new(file);
        let stays_inside = relative.components().all(|c| matches!(c, Component::Normal(_)));
        if !stays_inside {
            return None;
        }
        let stored = std::fs::read(folder.join(relative)).ok()?;
        match relative.strip_prefix("heatmaps") {
            Ok(name) => {
                let image = std::fs::read(folder.join("images").join(name)).ok()?;
                super::overlay_blend::blend(&image, &stored, alphas.get(node).copied().unwrap_or(0.5))
            }
            Err(_) => Some(stored),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inside_a_node_folder_and_refuses_to_leave_it() {
        let root = tempfile::tempdir().unwrap();
        let node_dir = root.path().join("entry");
        std::fs::create_dir_all(node_dir.join("overlays")).unwrap();
        std::fs::write(node_dir.join("overlays/3.png"), b"png bytes").unwrap();
        std::fs::write(root.path().join("secret"), b"outside").unwrap();
        let folders = BTreeMap::from([("cam[0]".to_string(), node_dir)]);
        let alphas = BTreeMap::new();
        let read = overlay_reader(&folders, &alphas);
        assert_eq!(read("cam[0]", "overlays/3.png").as_deref(), Some(&b"png bytes"[..]));
        assert_eq!(read("cam[0]", "../secret"), None);
        assert_eq!(read("cam[0]", root.path().join("secret").to_str().unwrap()), None);
        assert_eq!(read("cam[1]", "overlays/3.png"), None);
        assert_eq!(read("cam[0]", "overlays/4.png"), None);
    }

    #[test]
    fn an_empty_title_falls_back_to_the_experiment() {
        let mut context = RunContext {
            experiment: "quickstart".into(),
            title: "  ".into(),
            source_name: String::new(),
            source_text: String::new(),
            device: None,
            nodes: vec![],
            skipped_images: vec![],
            warnings: vec![],
            smoke: None,
        };
        assert_eq!(context.heading(), "quickstart");
        context.title = "Tickets".into();
        assert_eq!(context.heading(), "Tickets");
    }
}
