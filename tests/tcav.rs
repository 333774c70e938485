//! TCAV on `shapes`, through the binary, as Kim et al. (2018) test it: a class's defining colour
//! is significant after the correction, and a random image set taken as a concept is not.
//! Numbers come from the run folder's metrics, as a user would read them.

use serde_json::Value;
use std::process::Command;

const EXPERIMENT: &str = r#"// The network of tests/science.rs, explained by TCAV at layer2 (layer3 is before the head).
dataset data = shapes { classes = 4  train = 800  val = 200  test = 200  seed = 5 }
model net = resnet_tiny { classes = data.classes  width = 8 }
train dense = sgd { model = net  data = data.train  val = data.val  epochs = 6  batch = 32  lr = 0.05  lr_schedule = cosine }
embed feats = pooled { of = dense  layer = "layer2"  data = data }
concepts bank = annotated { from = feats  labels = data.concepts }
explain scores = tcav { of = dense  layer = "layer2"  concepts = bank  images = data.test  runs = 10 }
"#;

fn node<'a>(metrics: &'a Value, id: &str) -> &'a Value {
    metrics["nodes"].as_array().unwrap().iter().find(|n| n["id"] == id).unwrap_or_else(|| panic!("no node `{id}`"))
}

#[test]
fn tcav_on_shapes_finds_defining_colours_and_not_random_concepts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tcav.lth"), EXPERIMENT).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_lthlang"))
        .arg("run")
        .arg(dir.path().join("tcav.lth"))
        .env_remove("LTHLANG_CACHE")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metrics: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("runs/tcav/metrics.json")).unwrap()).unwrap();
    let key = node(&metrics, "data")["key"].as_str().unwrap();
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(".lth/cache/entries").join(key).join("meta.json")).unwrap()).unwrap();
    let names: Vec<&str> = meta["concept_names"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let tcav = &node(&metrics, "scores")["metrics"];
    assert_eq!(tcav["runs"], 10);
    assert_eq!(tcav["correction"], "bonferroni");

    let mut colour_found = Vec::new();
    for (k, class) in tcav["classes"].as_array().unwrap().iter().enumerate() {
        let defining: Vec<&str> =
            meta["class_concepts"][k].as_array().unwrap().iter().filter_map(|c| c.as_u64()).map(|c| names[c as usize]).collect();
        let rows = class["concepts"].as_array().unwrap();
        let row = |name: &str| rows.iter().find(|r| r["concept"] == name).unwrap_or_else(|| panic!("no row for {name}"));
        for concept in &defining {
            let r = row(concept);
            eprintln!(
                "class {} ({}): {concept} mean {:.3} vs random {:.3}, p {:.2e}, corrected {:.2e}, significant {}",
                class["class"],
                defining.join(" "),
                r["mean"].as_f64().unwrap(),
                class["random_mean"].as_f64().unwrap(),
                r["p"].as_f64().unwrap_or(f64::NAN),
                r["p_corrected"].as_f64().unwrap_or(f64::NAN),
                r["significant"]
            );
            if concept.starts_with("colour:") && r["significant"] == true {
                colour_found.push(format!("{} {concept}", class["class"]));
            }
        }
        // The random image set taken as a concept is not significant after the correction.
        let control = &class["control"];
        eprintln!(
            "class {}: random concept mean {:.3}, p {:.2e}, corrected {:.2e}",
            class["class"],
            control["mean"].as_f64().unwrap(),
            control["p"].as_f64().unwrap_or(f64::NAN),
            control["p_corrected"].as_f64().unwrap_or(f64::NAN)
        );
        assert_eq!(control["significant"], false, "class {}: the random concept came out significant: {control}", class["class"]);
        // Each run gives one score per concept.
        assert!(rows.iter().all(|r| r["runs"].as_array().map(Vec::len) == Some(10)));
    }
    assert!(!colour_found.is_empty(), "no class's defining colour is significant after correction");
    eprintln!("defining colours significant after Bonferroni: {colour_found:?}");
}
