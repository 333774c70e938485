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

/// `tests/rare_concepts.lth`: in `shapes` seed 3 no class uses yellow, so no probe image shows
/// `colour:yellow`. `check` cannot know that, so the run must complete: the `cav` bank gives the
/// concept a zero direction and TCAV leaves it untested, each with a warning, while every other
/// concept is fitted and tested as usual.
#[test]
fn a_concept_no_probe_image_shows_is_skipped_with_a_warning_and_the_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rare_concepts.lth");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rare_concepts.lth"), &file).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_lthlang"))
        .arg("run")
        .arg(&file)
        .env_remove("LTHLANG_CACHE")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    assert!(
        warnings[0].starts_with("warning: `bank`: 1 of 15 concepts get no CAV")
            && warnings[0].contains("`colour:yellow` (0 present, 64 absent)")
    );
    assert!(warnings[1].starts_with("warning: `scores`: TCAV cannot test 1 of 15 concepts") && warnings[1].contains("`colour:yellow`"));

    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("runs/rare_concepts/metrics.json")).unwrap()).unwrap();
    let bank = &node(&metrics, "bank")["metrics"];
    assert_eq!(bank["skipped"], 1);
    assert_eq!(bank["concepts_with_cav"], 14);
    let yellow = &bank["cav"]["colour:yellow"];
    assert_eq!((yellow["present"].as_u64(), yellow["absent"].as_u64()), (Some(0), Some(64)));
    assert!(yellow["held_out_accuracy"].is_null() && yellow["skipped"].is_string());
    let fitted = bank["cav"].as_object().unwrap().iter().filter(|(_, c)| c["held_out_accuracy"].is_number()).count();
    assert_eq!(fitted, 14);

    let tcav = &node(&metrics, "scores")["metrics"];
    assert_eq!(tcav["untestable"][0]["concept"], "colour:yellow");
    for class in tcav["classes"].as_array().unwrap() {
        for row in class["concepts"].as_array().unwrap() {
            if row["concept"] == "colour:yellow" {
                for field in ["mean", "p", "p_corrected", "significant", "runs"] {
                    assert!(row[field].is_null(), "class {}: untestable concept has {field} = {}", class["class"], row[field]);
                }
            } else {
                assert!(row["p"].is_number() && row["significant"].is_boolean(), "class {}: {row}", class["class"]);
            }
        }
    }
}
