//! The shipped quickstart, run as a user runs it, read against the ground truth of `shapes`:
//! every class of the dense network lists exactly its defining concept values, concept fidelity
//! is close to the ceiling of a PCBM on the true concept labels, the random bank stays inside
//! its chance range, and every fit reached its tolerance.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quickstart.lth")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn node<'a>(metrics: &'a Value, id: &str) -> &'a Value {
    metrics["nodes"].as_array().unwrap().iter().find(|n| n["id"] == id).unwrap_or_else(|| panic!("no node `{id}`"))
}

fn entry(dir: &Path, metrics: &Value, id: &str) -> PathBuf {
    dir.join(".lth/cache/entries").join(node(metrics, id)["key"].as_str().unwrap())
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

#[test]
fn the_quickstart_lists_each_class_defining_values_and_its_fidelity_is_near_the_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quickstart.lth");
    std::fs::copy(shipped(), &file).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_lthlang")).arg("run").arg(&file).env_remove("LTHLANG_CACHE").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metrics = read_json(&dir.path().join("runs/quickstart/metrics.json"));
    let compare = read_json(&entry(dir.path(), &metrics, "lth").join("compare.json"));
    let meta = read_json(&entry(dir.path(), &metrics, "data").join("meta.json"));

    // At round 0 every class lists exactly its defining values: the concept table answers the
    // ground truth (shape and background define no class, by construction).
    let concept_names: Vec<&str> = meta["concept_names"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let classes = compare["concepts"]["classes"].as_array().unwrap();
    assert_eq!(classes.len(), meta["class_names"].as_array().unwrap().len());
    for table in classes {
        let class = table["class"].as_str().unwrap();
        let index = meta["class_names"].as_array().unwrap().iter().position(|c| c == class).unwrap();
        let defining = sorted(
            meta["class_concepts"][index]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| concept_names[i.as_u64().unwrap() as usize].to_owned())
                .collect(),
        );
        let round0 = table["rounds"].as_array().unwrap().iter().find(|r| r["round"] == 0).unwrap();
        let listed = sorted(round0["positive"].as_array().unwrap().iter().map(|p| p[0].as_str().unwrap().to_owned()).collect());
        assert_eq!(listed, defining, "class {class}: listed {listed:?}, defined by {defining:?}");
    }

    // Fidelity at round 0: high, and within 0.05 of the same PCBM on the true concept labels.
    let at0 = |rows: &Value| rows.as_array().unwrap().iter().find(|r| r["round"] == 0).cloned().unwrap();
    let learned = at0(&compare["concepts"]["fidelity"]);
    let ceiling = at0(&compare["concepts"]["ceiling_fidelity"]);
    let figure = |row: &Value, name: &str| row[name].as_f64().unwrap_or_else(|| panic!("{name} missing in {row}"));
    eprintln!("round 0 fidelity: learned {learned}, ceiling {ceiling}");
    assert!(figure(&learned, "recall_at_k") >= 0.85, "{learned}");
    assert!(figure(&learned, "ranking_auc") >= 0.97, "{learned}");
    for name in ["recall_at_k", "ranking_auc"] {
        assert!(figure(&ceiling, name) - figure(&learned, name) <= 0.05, "{name}: learned {learned} vs ceiling {ceiling}");
    }

    // The random bank stays at chance: its ranking AUC lies inside the 95% range its own models
    // give with their concept columns relabelled at random. Seven rounds are seven draws, so one
    // may fall outside by chance (expected 0.35 of them); two or more would not be chance.
    let outside: Vec<String> = compare["concepts"]["random_fidelity"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| {
            let auc = figure(row, "ranking_auc");
            let band = row["chance_auc"].as_array().unwrap_or_else(|| panic!("no chance range in {row}"));
            !(band[0].as_f64().unwrap() <= auc && auc <= band[1].as_f64().unwrap())
        })
        .map(|row| row.to_string())
        .collect();
    assert!(outside.len() <= 1, "the random bank leaves its chance range in {} rounds: {outside:?}", outside.len());

    // Every fit of the run reached its tolerance: the PCBMs and the concept probes.
    let mut fits = 0;
    for n in metrics["nodes"].as_array().unwrap() {
        let m = &n["metrics"];
        if n["method"] == "pcbm" {
            assert_eq!(m["converged"], true, "{}: {m}", n["id"]);
            fits += 1;
        }
        if n["method"] == "annotated" {
            assert_eq!(m["probes"]["converged"], true, "{}: {m}", n["id"]);
        }
    }
    assert_eq!(fits, 3 * 7, "three PCBM stages over seven rounds");
}
