//! `run --jobs N` (several local workers over the plan's ready queue) and the choice of executor,
//! which need no cluster.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Two independent branches, so two workers have something to do at once.
const TWO_BRANCHES: &str = r#"
dataset data = shapes { classes = 4  image = 16  train = 64  val = 32  test = 32  seed = 3 }
model net = resnet_tiny { classes = data.classes  width = 4 }
model wide = resnet_tiny { classes = data.classes  width = 8 }
train dense = sgd { model = net  data = data.train  val = data.val  epochs = 2  batch = 32  lr = 0.05 }
train other = sgd { model = wide  data = data.train  val = data.val  epochs = 2  batch = 32  lr = 0.05 }
prune tickets = imp { from = dense  rounds = 1  rate = 50% }
"#;

fn project(source: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.lth");
    std::fs::write(&file, source).unwrap();
    (dir, file)
}

fn lthlang(file: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lthlang"));
    command.arg("run").arg(file).args(args).env_remove("LTHLANG_CACHE").env_remove("LTHLANG_WORKER");
    command
}

fn events(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn two_workers_give_the_metrics_of_one() {
    let (one, file_one) = project(TWO_BRANCHES);
    let (two, file_two) = project(TWO_BRANCHES);
    let a = lthlang(&file_one, &["--json", "--jobs", "1"]).output().unwrap();
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let b = lthlang(&file_two, &["--json", "--jobs", "2"]).output().unwrap();
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let metrics = |dir: &Path| std::fs::read(dir.join("runs/tiny/metrics.json")).unwrap();
    assert_eq!(metrics(one.path()), metrics(two.path()), "metrics.json differs between --jobs 1 and --jobs 2");
    // Two workers really ran: two `ready` events, and the second branch started before the first
    // branch's last node ended.
    let b = events(&b.stdout);
    let ready = b.iter().filter(|e| e["event"] == "worker" && e["worker"]["event"] == "ready").count();
    assert_eq!(ready, 2, "one ready event per worker");
    let done: Vec<String> =
        b.iter().filter(|e| e["event"] == "node_done").map(|e| e["outcome"]["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(done.len(), 6);
    // Every node is reported once, and after its inputs.
    let at = |id: &str| done.iter().position(|d| d == id).unwrap();
    assert!(at("data") < at("dense") && at("net") < at("dense") && at("dense") < at("tickets[1]"));
    assert!(at("wide") < at("other"));
    // --jobs 1 keeps plan order exactly.
    let a = events(&a.stdout);
    let order: Vec<&str> = a.iter().filter(|e| e["event"] == "node_done").map(|e| e["outcome"]["id"].as_str().unwrap()).collect();
    assert_eq!(order, ["data", "net", "wide", "dense", "other", "tickets[1]"]);
}

#[test]
fn a_failed_node_skips_its_dependants_with_two_workers_too() {
    let source = TWO_BRANCHES.replace(
        "model net = resnet_tiny { classes = data.classes  width = 4 }",
        "model net = resnet_tiny { classes = data.classes  width = 4  weights = file(\"net.safetensors\") }",
    );
    let (dir, file) = project(&source);
    std::fs::write(dir.path().join("net.safetensors"), "not safetensors").unwrap();
    let output = lthlang(&file, &["--json", "--jobs", "2"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let status: std::collections::BTreeMap<String, String> = events(&output.stdout)
        .iter()
        .filter(|e| e["event"] == "node_done")
        .map(|e| (e["outcome"]["id"].as_str().unwrap().to_owned(), e["outcome"]["status"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(status["net"], "failed");
    assert_eq!(status["dense"], "skipped");
    assert_eq!(status["tickets[1]"], "skipped");
    assert_eq!(status["other"], "computed");
}

#[test]
fn the_experiment_chooses_slurm_and_the_flag_overrides_it() {
    let source = format!("experiment {{ executor = slurm {{ time = \"10\" }} }}\n{TWO_BRANCHES}");
    let (dir, file) = project(&source);
    let empty = dir.path().join("no-tools");
    std::fs::create_dir_all(&empty).unwrap();
    let output = lthlang(&file, &[]).env("PATH", &empty).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot run on Slurm: `sbatch` is not on PATH"), "{stderr}");
    let output = lthlang(&file, &["--executor", "local"]).env("PATH", &empty).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}
