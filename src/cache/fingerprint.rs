//! Fingerprints: what a node's result depends on, as data. The cache key is the blake3 hash of
//! the fingerprint's canonical JSON (maps are ordered, so equal meaning gives equal bytes). The
//! fingerprint is stored beside the artifact so `plan --explain` can say what changed.

use crate::check::{Program, Stage, Value, Written};
use crate::exec::job::stream_seed;
use crate::kinds::{Category, Effect};
use crate::plan::Plan;
use crate::source::Span;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped when the fingerprint's own layout changes.
pub const FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub format: u32,
    pub kind: Category,
    pub method: String,
    /// The implementation's version (`Method::version`).
    pub version: u32,
    /// Fields that can change the result, after defaults and presets, in name order.
    pub fields: BTreeMap<String, Value>,
    /// Content hashes of the files named by `file(...)` fields, by field, so editing a weights
    /// file reruns what read it. Folders (dataset roots) enter by path only: hashing a whole
    /// dataset on every plan would cost more than it saves.
    pub files: BTreeMap<String, String>,
    /// The random stream the node draws from; none for datasets, seeded by their own field.
    pub seed: Option<u64>,
    pub round: Option<u32>,
    /// Keys of the nodes read, by node id.
    pub inputs: BTreeMap<String, String>,
    /// `"cuda"` when the node runs networks on a GPU. GPU kernels round differently from the
    /// CPU's (and from run to run), so results computed on the two never share an entry. Absent
    /// on the CPU, so CPU keys are what they were before the field existed; absent too for the
    /// nodes whose result does not depend on the device (datasets decode and models draw their
    /// weights on the CPU; comparisons and reports run in the front end). See [`device_class`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// The device class the experiment's networks run on, as keys record it: `None` for the CPU,
/// `Some("cuda")` for a GPU. `device = auto` is resolved on this machine, from the GPUs it shows
/// (`CUDA_VISIBLE_DEVICES`, else the NVIDIA device files), which is also what the worker's
/// libtorch obeys; a worker that computes on another class than the key says fails the node
/// rather than caching it under the wrong key.
pub fn device_class(device: &crate::check::Device) -> Option<String> {
    use crate::check::Device;
    match device {
        Device::Cpu => None,
        Device::Cuda(_) => Some("cuda".to_owned()),
        Device::Auto => (!crate::exec::local::visible_gpus().is_empty()).then(|| "cuda".to_owned()),
    }
}

/// The class of a device the worker names (`cpu`, `cuda:0`), as [`device_class`] gives it.
pub fn class_of_worker_device(device: &str) -> Option<String> {
    (device.split(':').next() == Some("cuda")).then(|| "cuda".to_owned())
}

/// Whether a node of this kind computes on the experiment's device.
fn on_device(kind: Category) -> bool {
    !matches!(kind, Category::Dataset | Category::Model | Category::Compare | Category::Report)
}

impl Fingerprint {
    pub fn key(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        blake3::hash(&bytes).to_hex().to_string()
    }
}

/// The fingerprint of every node of `plan`, by node id, in plan order (inputs first).
pub fn of_plan(program: &Program, plan: &Plan) -> Vec<(String, Fingerprint)> {
    let seed0 = program.experiment.seeds.first().copied().unwrap_or(0);
    let device = device_class(&program.experiment.device);
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::with_capacity(plan.nodes.len());
    for node in &plan.nodes {
        let Some(stage) = program.stage(&node.stage) else { continue };
        let stage_seed = stage.value("seed").and_then(Value::as_int).unwrap_or(0);
        let seed = (node.kind != Category::Dataset).then(|| stream_seed(node.seed.unwrap_or(seed0), &node.stage, node.round, stage_seed));
        let fingerprint = Fingerprint {
            format: FORMAT,
            kind: node.kind,
            method: node.method.to_owned(),
            version: stage.method.version,
            fields: if node.kind == Category::Report { rendering_fields(program, stage) } else { result_fields(stage) },
            files: file_hashes(stage),
            seed,
            round: node.round,
            inputs: node.inputs.iter().map(|i| (i.clone(), keys.get(i).cloned().unwrap_or_default())).collect(),
            device: device.clone().filter(|_| on_device(node.kind)),
        };
        keys.insert(node.id.clone(), fingerprint.key());
        out.push((node.id.clone(), fingerprint));
    }
    out
}

/// A report is a rendering, so everything that changes how it looks enters its key: all of its
/// own fields, and the cosmetic fields of every other stage (as `stage.field`). Changing a title
/// or an overlay's opacity reruns the report and nothing else.
fn rendering_fields(program: &Program, report: &Stage) -> BTreeMap<String, Value> {
    let mut fields: BTreeMap<String, Value> = report.fields.iter().map(|(name, f)| (name.clone(), f.value.clone())).collect();
    for stage in program.stages.iter().filter(|s| s.name != report.name) {
        for (name, f) in stage.fields.iter().filter(|(_, f)| f.effect == Effect::Cosmetic) {
            fields.insert(format!("{}.{name}", stage.name), f.value.clone());
        }
    }
    fields
}

fn file_hashes(stage: &Stage) -> BTreeMap<String, String> {
    stage
        .fields
        .iter()
        .filter(|(_, f)| f.effect == Effect::Result)
        .filter_map(|(name, f)| match &f.value {
            Value::Path(path) if path.is_file() => {
                let hash = std::fs::read(path)
                    .map(|bytes| blake3::hash(&bytes).to_hex().to_string())
                    .unwrap_or_else(|e| format!("unreadable: {e}"));
                Some((name.clone(), hash))
            }
            _ => None,
        })
        .collect()
}

/// Fields that shape the graph rather than a node: `rounds` decides how many prune nodes exist,
/// and round r's result is the same whatever the final round count.
const GRAPH_ONLY: &[(Category, &str)] = &[(Category::Prune, "rounds")];

/// The fields of `stage` that enter its nodes' keys.
pub fn result_fields(stage: &Stage) -> BTreeMap<String, Value> {
    stage
        .fields
        .iter()
        .filter(|(name, f)| f.effect == Effect::Result && !GRAPH_ONLY.contains(&(stage.category, name.as_str())))
        .map(|(name, f)| (name.clone(), f.value.clone()))
        .collect()
}

/// Where each field of `stage` is written (for explanations), by field name.
pub fn field_spans(stage: &Stage) -> BTreeMap<String, Span> {
    stage
        .fields
        .iter()
        .filter_map(|(name, f)| match f.written {
            Written::At(span) => Some((name.clone(), span)),
            Written::Default => None,
        })
        .collect()
}

/// Why a node must run, comparing its fingerprint with the one last cached for it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    NoEntry,
    FieldChanged {
        field: String,
        old: Option<Value>,
        new: Option<Value>,
        #[serde(skip)]
        span: Option<Span>,
    },
    InputChanged {
        input: String,
    },
    FileChanged {
        field: String,
    },
    VersionChanged {
        old: u32,
        new: u32,
    },
    SeedChanged,
    Corrupt {
        detail: String,
    },
    Forced,
}

impl Reason {
    pub fn describe(&self) -> String {
        let show = |v: &Option<Value>| v.as_ref().map_or_else(|| "(unset)".to_owned(), describe_value);
        match self {
            Reason::NoEntry => "not computed yet".to_owned(),
            Reason::FieldChanged { field, old, new, .. } => format!("field `{field}` changed from {} to {}", show(old), show(new)),
            Reason::InputChanged { input } => format!("input `{input}` changed"),
            Reason::FileChanged { field } => format!("the file named by `{field}` changed on disk"),
            Reason::VersionChanged { old, new } => format!("implementation version changed from {old} to {new}"),
            Reason::SeedChanged => "its random stream changed".to_owned(),
            Reason::Corrupt { detail } => format!("the cached entry is corrupt ({detail})"),
            Reason::Forced => "forced with --force".to_owned(),
        }
    }
}

/// A value as it would be written in a `.lth` file.
pub fn describe_value(value: &Value) -> String {
    match value {
        Value::Int(n) => n.to_string(),
        Value::Float(x) => format!("{x}"),
        Value::Fraction(x) => {
            let p = format!("{:.4}", x * 100.0);
            format!("{}%", p.trim_end_matches('0').trim_end_matches('.'))
        }
        Value::Str(s) => format!("\"{s}\""),
        Value::Bool(b) => b.to_string(),
        Value::Word(w) | Value::Stage(w) => w.clone(),
        Value::Path(p) => format!("\"{}\"", p.display()),
        Value::None => "none".to_owned(),
        Value::Split { dataset, split } => format!("{dataset}.{split}"),
        Value::Sample { dataset, split, count, seed } => format!("{dataset}.{split}.sample({count}, seed = {seed})"),
        Value::ConceptLabels { dataset } => format!("{dataset}.concepts"),
        Value::ClassesOf { dataset } => format!("{dataset}.classes"),
        Value::Call { function, args } => {
            let args: Vec<String> = args.iter().map(|(k, v)| format!("{k} = {}", describe_value(v))).collect();
            format!("{function}({})", args.join(", "))
        }
        Value::List(items) => format!("[{}]", items.iter().map(describe_value).collect::<Vec<_>>().join(", ")),
        Value::Configured { stage, fields } => {
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k} = {}", describe_value(v))).collect();
            format!("{stage} {{ {} }}", fields.join("  "))
        }
    }
}

/// Reasons `new` differs from `old` (empty when equal).
pub fn diff(old: &Fingerprint, new: &Fingerprint, spans: &BTreeMap<String, Span>) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if old.version != new.version || old.method != new.method || old.format != new.format {
        reasons.push(Reason::VersionChanged { old: old.version, new: new.version });
    }
    let names: std::collections::BTreeSet<&String> = old.fields.keys().chain(new.fields.keys()).collect();
    for name in names {
        let (a, b) = (old.fields.get(name), new.fields.get(name));
        if a != b {
            reasons.push(Reason::FieldChanged { field: name.clone(), old: a.cloned(), new: b.cloned(), span: spans.get(name).copied() });
        }
    }
    for name in old.files.keys().chain(new.files.keys()).collect::<std::collections::BTreeSet<_>>() {
        if old.files.get(name) != new.files.get(name) && old.fields.get(name) == new.fields.get(name) {
            reasons.push(Reason::FileChanged { field: name.clone() });
        }
    }
    if old.device != new.device {
        let class = |d: &Option<String>| Some(Value::Word(d.clone().unwrap_or_else(|| "cpu".to_owned())));
        reasons.push(Reason::FieldChanged { field: "device".to_owned(), old: class(&old.device), new: class(&new.device), span: None });
    }
    if old.seed != new.seed || old.round != new.round {
        reasons.push(Reason::SeedChanged);
    }
    let inputs: std::collections::BTreeSet<&String> = old.inputs.keys().chain(new.inputs.keys()).collect();
    for input in inputs {
        if old.inputs.get(input) != new.inputs.get(input) {
            reasons.push(Reason::InputChanged { input: input.clone() });
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fingerprint read back from its stored JSON is the one written: no field is named as
    /// changed between equal values (the quickstart's sparsities once were, parsed an ulp off).
    #[test]
    fn a_stored_fingerprint_reads_back_equal() {
        let at: Vec<Value> = [1.0, 0.6, 0.36, 0.216, 0.13, 0.078, 0.047, 0.1296, 0.07776]
            .iter()
            .chain(&[1e-5, 0.99, 5e-4, 0.05, 0.1, 0.3])
            .map(|x| Value::Fraction(*x))
            .collect();
        let mut fields = BTreeMap::new();
        fields.insert("at".to_owned(), Value::List(at));
        fields.insert("lambda".to_owned(), Value::Float(1e-4));
        for k in 1..200 {
            fields.insert(format!("p{k}"), Value::Fraction(f64::from(k) / 100.0 * 0.6_f64.powi(k % 15)));
        }
        let written = Fingerprint {
            format: FORMAT,
            kind: Category::Compare,
            method: "compare".to_owned(),
            version: 3,
            fields,
            files: BTreeMap::new(),
            seed: Some(u64::MAX >> 1),
            round: None,
            inputs: BTreeMap::new(),
            device: Some("cuda".to_owned()),
        };
        let text = serde_json::to_string_pretty(&written).unwrap_or_default();
        let read: Fingerprint = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(diff(&read, &written, &BTreeMap::new()), Vec::new());
        assert_eq!(read.key(), written.key());
    }
}
