//! `lthlang run` end to end on a tiny experiment: what a rerun reuses, what a change reruns,
//! kills, concurrent runs and corrupt entries. Each test works in its own temporary folder.

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const TINY: &str = r#"// Small enough to train in a second or two.
dataset data = shapes { classes = 4  train = 96  val = 32  test = 32  seed = 3 }
model net = resnet_tiny { classes = data.classes  width = 4 }
train dense = sgd { model = net  data = data.train  val = data.val  epochs = 3  batch = 32  lr = 0.05 }
prune tickets = imp { from = dense  rounds = 2  rate = 50% }
"#;

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(source: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tiny.lth"), source).unwrap();
        Project { dir }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("tiny.lth")
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn edit(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.file()).unwrap();
        assert!(text.contains(from), "`{from}` is not in the experiment");
        std::fs::write(self.file(), text.replace(from, to)).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lthlang"));
        command.args(args).arg(self.file()).arg("--cache").arg(self.cache()).env_remove("LTHLANG_CACHE").env_remove("LTHLANG_WORKER");
        command
    }

    /// Runs to the end with `--json`; returns the exit code and the events.
    fn run(&self, extra: &[&str]) -> (i32, Vec<Value>) {
        let mut args = vec!["run", "--json"];
        args.extend_from_slice(extra);
        let output = self.command(&args).output().unwrap();
        (output.status.code().unwrap_or(-1), events(&output))
    }

    fn metrics(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.path().join("runs/tiny/metrics.json")).unwrap()).unwrap()
    }

    fn explain(&self) -> Vec<Value> {
        let output = self.command(&["plan", "--explain", "--json"]).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice::<Vec<Value>>(&output.stdout).unwrap()
    }
}

fn events(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Node ids whose outcome in `events` has the given status.
fn with_status(events: &[Value], status: &str) -> BTreeSet<String> {
    events
        .iter()
        .filter(|e| e["event"] == "node_done" && e["outcome"]["status"] == status)
        .map(|e| e["outcome"]["id"].as_str().unwrap().to_owned())
        .collect()
}

fn to_run(explained: &[Value]) -> BTreeSet<String> {
    explained.iter().filter(|n| n["status"] == "run").map(|n| n["id"].as_str().unwrap().to_owned()).collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

fn all_nodes() -> BTreeSet<String> {
    set(&["data", "net", "dense", "tickets[1]", "tickets[2]"])
}

#[test]
fn a_rerun_with_nothing_changed_starts_no_worker_and_finds_every_node_cached() {
    let project = Project::new(TINY);
    let (code, first) = project.run(&[]);
    assert_eq!(code, 0, "{first:?}");
    assert_eq!(with_status(&first, "computed"), all_nodes());

    // With no worker to be found, the rerun can only succeed by starting none.
    let output = project.command(&["run", "--json"]).env("LTHLANG_WORKER", "/nonexistent/lthlang-worker").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let second = events(&output);
    assert_eq!(with_status(&second, "cached"), all_nodes());
    assert!(!second.iter().any(|e| e["event"] == "worker_starting"));
    let timings: Value =
        serde_json::from_str(&std::fs::read_to_string(project.dir.path().join("runs/tiny/timings.json")).unwrap()).unwrap();
    assert_eq!(timings["worker_started"], false);
    assert!(to_run(&project.explain()).is_empty());
}

#[test]
fn changes_rerun_only_what_they_reach() {
    let project = Project::new(TINY);
    assert_eq!(project.run(&[]).0, 0);

    // Raising `rounds` adds a round and reuses the earlier ones.
    project.edit("rounds = 2", "rounds = 3");
    let explained = project.explain();
    assert_eq!(to_run(&explained), set(&["tickets[3]"]));
    assert_eq!(explained.iter().find(|n| n["id"] == "tickets[3]").unwrap()["reasons"][0]["reason"], "no_entry");
    let (code, events) = project.run(&[]);
    assert_eq!(code, 0);
    assert_eq!(with_status(&events, "computed"), set(&["tickets[3]"]));

    // A new pruning rate reprunes every round but keeps the dense network.
    project.edit("rate = 50%", "rate = 30%");
    let explained = project.explain();
    assert_eq!(to_run(&explained), set(&["tickets[1]", "tickets[2]", "tickets[3]"]));
    let first_round = explained.iter().find(|n| n["id"] == "tickets[1]").unwrap();
    assert_eq!(
        first_round["reasons"][0],
        serde_json::json!({"reason": "field_changed", "field": "rate", "old": {"fraction": 0.5}, "new": {"fraction": 0.3}})
    );
    let (code, events) = project.run(&[]);
    assert_eq!(code, 0);
    assert_eq!(with_status(&events, "computed"), set(&["tickets[1]", "tickets[2]", "tickets[3]"]));
    assert!(with_status(&events, "cached").contains("dense"));

    // Comments and declaration order change no key.
    project.edit("// Small enough", "// A comment edited. Small enough");
    assert!(to_run(&project.explain()).is_empty());

    // --force recomputes a stage and everything downstream of it.
    let (code, events) = project.run(&["--force", "dense"]);
    assert_eq!(code, 0);
    assert_eq!(with_status(&events, "computed"), set(&["dense", "tickets[1]", "tickets[2]", "tickets[3]"]));
}

#[test]
fn the_explanation_names_the_changed_field_and_where_it_is_written() {
    let project = Project::new(TINY);
    assert_eq!(project.run(&[]).0, 0);
    project.edit("epochs = 3  batch = 32", "epochs = 3  batch = 16");
    let output = project.command(&["plan", "--explain"]).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let dense = text.lines().find(|l| l.starts_with("dense ")).unwrap();
    assert!(dense.contains("field `batch` changed from 32 to 16 (at "), "{dense}");
    assert!(dense.ends_with("tiny.lth:4:89)"), "{dense}");
    let round = text.lines().find(|l| l.starts_with("tickets[1]")).unwrap();
    assert!(round.contains("input `dense` changed"), "{round}");
    assert!(text.lines().find(|l| l.starts_with("data ")).unwrap().contains("cached"));
}

/// Starts a run and kills it (SIGKILL) when an event matching `when` arrives; false if the run
/// ended first.
fn kill_when(project: &Project, when: impl Fn(&Value) -> bool) -> bool {
    let mut child = project.command(&["run", "--json"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let Ok(event) = serde_json::from_str::<Value>(&line.unwrap()) else { continue };
        if when(&event) {
            child.kill().unwrap();
            killed = true;
            break;
        }
    }
    child.wait().unwrap();
    killed
}

#[test]
fn runs_killed_at_several_points_resume_to_the_same_metrics() {
    let reference = Project::new(TINY);
    assert_eq!(reference.run(&[]).0, 0);
    let expected = reference.metrics();

    let project = Project::new(TINY);
    // Worker events are relayed flattened: {"event": "worker", ...} carries the worker's own
    // event under the same object, so match on the inner fields.
    let inner = |e: &Value, kind: &str, node: &str, epoch: Option<u64>| {
        e["event"] == "worker"
            && e["worker"]["event"] == kind
            && e["worker"]["node"] == node
            && epoch.is_none_or(|n| e["worker"]["epoch"] == n)
    };
    type Point = Box<dyn Fn(&Value) -> bool>;
    let points: Vec<Point> = vec![
        Box::new(move |e| inner(e, "started", "data", None)),
        Box::new(move |e| inner(e, "epoch", "dense", Some(1))),
        Box::new(move |e| inner(e, "epoch", "dense", Some(2))),
        Box::new(move |e| inner(e, "started", "tickets[1]", None)),
        Box::new(move |e| inner(e, "epoch", "tickets[2]", Some(2))),
    ];
    for (i, point) in points.iter().enumerate() {
        assert!(kill_when(&project, point), "kill point {i} was never reached");
    }
    let (code, _) = project.run(&[]);
    assert_eq!(code, 0);
    assert_eq!(project.metrics(), expected);
    // Nothing half-written is left behind once the run completes.
    assert_eq!(std::fs::read_dir(project.cache().join("partial")).unwrap().count(), 0);
}

#[test]
fn two_runs_over_one_cache_both_succeed_and_compute_each_node_once() {
    let project = Project::new(TINY);
    let spawn = || project.command(&["run", "--json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let (ea, eb) = (events(&a), events(&b));
    let computed_a = with_status(&ea, "computed");
    let computed_b = with_status(&eb, "computed");
    assert!(computed_a.is_disjoint(&computed_b), "computed twice: {:?}", computed_a.intersection(&computed_b).collect::<Vec<_>>());
    assert_eq!(computed_a.union(&computed_b).cloned().collect::<BTreeSet<_>>(), all_nodes());
    for (events, computed) in [(&ea, &computed_a), (&eb, &computed_b)] {
        let mut reused = with_status(events, "cached");
        reused.extend(with_status(events, "cached_by_other"));
        assert_eq!(reused.union(computed).cloned().collect::<BTreeSet<_>>(), all_nodes());
    }
}

fn entry_of(project: &Project, id: &str) -> PathBuf {
    let explained = project.explain();
    let key = explained.iter().find(|n| n["id"] == id).unwrap()["key"].as_str().unwrap().to_owned();
    project.cache().join("entries").join(key)
}

fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_corrupted_artifact_is_reported_and_recomputed() {
    let project = Project::new(TINY);
    assert_eq!(project.run(&[]).0, 0);
    let expected = project.metrics();
    flip_a_byte(&entry_of(&project, "dense").join("model.safetensors"));

    let explained = project.explain();
    let dense = explained.iter().find(|n| n["id"] == "dense").unwrap();
    assert_eq!(dense["status"], "run");
    assert_eq!(dense["reasons"][0]["reason"], "corrupt");
    assert_eq!(dense["reasons"][0]["detail"], "`model.safetensors` does not match its checksum");

    let (code, events) = project.run(&[]);
    assert_eq!(code, 0);
    let warning = events.iter().find(|e| e["event"] == "warning").expect("a warning about the corrupt entry");
    assert!(warning["message"].as_str().unwrap().contains("`dense` is corrupt"), "{warning}");
    assert_eq!(with_status(&events, "computed"), set(&["dense"]));
    assert_eq!(project.metrics(), expected);
}

#[test]
fn a_failing_node_fails_the_run_but_not_the_nodes_beside_it() {
    // A worker that cannot start fails every node it is asked for; the run names them and exits 3.
    let project = Project::new(TINY);
    let output = project.command(&["run"]).env("LTHLANG_WORKER", "/nonexistent/lthlang-worker").output().unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("failed: `data`: cannot start the worker `/nonexistent/lthlang-worker`"), "{stderr}");
    assert!(stderr.contains("4 skipped"), "{stderr}");
}

#[test]
fn status_and_gc_account_for_entries() {
    let project = Project::new(TINY);
    assert_eq!(project.run(&[]).0, 0);
    let status = project.command(&["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.lines().any(|l| l.starts_with("prune") && l.split_whitespace().nth(1) == Some("2")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("total") && l.split_whitespace().nth(1) == Some("5")), "{text}");

    project.edit("rate = 50%", "rate = 30%");
    let dry = project.command(&["gc", "--dry-run"]).output().unwrap();
    let listed = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(listed.lines().filter(|l| l.starts_with("would delete")).count(), 2, "{listed}");
    assert_eq!(std::fs::read_dir(project.cache().join("entries")).unwrap().count(), 5);
    let gc = project.command(&["gc"]).output().unwrap();
    assert!(gc.status.success());
    assert_eq!(std::fs::read_dir(project.cache().join("entries")).unwrap().count(), 3);
}

const EXPLAINED: &str = r#"explain cam = gradcam { of = tickets  layer = "layer3"  images = data.test.sample(4, seed = 0) }
compare lth = compare { at = [100%, 50%, 25%]  accuracy = [tickets]  saliency = cam }
report summary = html { include = [lth]  title = "First title" }
"#;

#[test]
fn a_saliency_field_reruns_the_maps_and_their_readers_and_a_title_only_the_report() {
    let project = Project::new(&format!("{TINY}{EXPLAINED}"));
    let (code, events) = project.run(&[]);
    assert_eq!(code, 0, "{events:?}");
    let report = project.dir.path().join("runs/tiny/report.html");
    assert!(std::fs::read_to_string(&report).unwrap().contains("First title"));

    project.edit("images = data.test.sample(4, seed = 0) }", "images = data.test.sample(4, seed = 0)  target = label }");
    let expected = set(&["cam[0]", "cam[1]", "cam[2]", "lth", "summary"]);
    assert_eq!(to_run(&project.explain()), expected);
    let (code, events) = project.run(&[]);
    assert_eq!(code, 0);
    assert_eq!(with_status(&events, "computed"), expected);

    project.edit("First title", "Second title");
    assert_eq!(to_run(&project.explain()), set(&["summary"]));
    let (code, events) = project.run(&[]);
    assert_eq!(code, 0);
    assert_eq!(with_status(&events, "computed"), set(&["summary"]));
    assert!(std::fs::read_to_string(&report).unwrap().contains("Second title"));
    let metrics = project.metrics();
    assert_eq!(metrics["rounds"].as_array().unwrap().len(), 3, "{metrics}");

    // `lthlang report` re-renders from the cache and computes nothing else.
    std::fs::remove_file(&report).unwrap();
    let output = project.command(&["report"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(std::fs::read_to_string(&report).unwrap().contains("Second title"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 computed"), "{stderr}");
}

#[test]
fn report_refuses_to_render_before_the_results_exist() {
    let project = Project::new(&format!("{TINY}{EXPLAINED}"));
    // A cache named with --cache that does not exist is a usage error (a typo, most often).
    let output = project.command(&["report"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&output.stderr), format!("error: no cache at {}\n", project.cache().display()));
    // An empty cache: "not cached" has its own exit code, 4.
    std::fs::create_dir_all(project.cache().join("entries")).unwrap();
    let output = project.command(&["report"]).output().unwrap();
    assert_eq!(output.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the cache lacks 9 node(s) the report needs (data, net, dense, tickets[1], tickets[2] and 4 more)"),
        "{stderr}"
    );
}

#[test]
fn several_seeds_give_means_with_intervals_for_every_metric() {
    let project = Project::new(&format!("experiment {{ seeds = [0, 1] }}\n{TINY}{EXPLAINED}"));
    let (code, events) = project.run(&[]);
    assert_eq!(code, 0, "{events:?}");
    let metrics = project.metrics();
    let lth = metrics["nodes"].as_array().unwrap().iter().find(|n| n["id"] == "lth").unwrap();
    let compare: Value = serde_json::from_str(
        &std::fs::read_to_string(project.cache().join("entries").join(lth["key"].as_str().unwrap()).join("compare.json")).unwrap(),
    )
    .unwrap();
    for round in compare["networks"][0]["rounds"].as_array().unwrap() {
        let interval = round["interval"].as_array().unwrap_or_else(|| panic!("no interval in {round}"));
        let (low, high, mean) = (interval[0].as_f64().unwrap(), interval[1].as_f64().unwrap(), round["accuracy"].as_f64().unwrap());
        assert!(low <= mean && mean <= high, "{round}");
    }
    for row in compare["saliency"]["consistency"].as_array().unwrap() {
        for metric in ["spearman", "ssim", "top_iou"] {
            assert!(row["intervals"][metric].is_array(), "no interval for {metric} in {row}");
        }
    }
    for row in compare["faithfulness"].as_array().unwrap() {
        assert!(row["intervals"]["deletion_auc"].is_array(), "{row}");
    }
    assert!(project.dir.path().join("runs/tiny/report.html").is_file());
}

/// The published HAM10000 set-up in miniature: concepts learned on a probe dataset's embeddings
/// (Derm7pt there, a second shapes set here) explain the task's network through `features`.
#[test]
fn a_bank_learned_on_a_probe_set_explains_the_task_through_features() {
    let probe = r#"dataset probe = shapes { classes = 4  train = 64  val = 32  test = 32  seed = 9 }
embed task_feats = pooled { of = tickets  layer = "layer3"  data = data }
embed probe_feats = pooled { of = tickets  layer = "layer3"  data = probe }
concepts bank = annotated { from = probe_feats  labels = probe.concepts }
explain head = pcbm { concepts = bank  features = task_feats  epochs = 5 }
"#;
    let project = Project::new(&format!("{TINY}{probe}"));
    let (code, events) = project.run(&[]);
    assert_eq!(code, 0, "{events:?}");
    let metrics = project.metrics();
    let nodes = metrics["nodes"].as_array().unwrap();
    let node = |id: &str| nodes.iter().find(|n| n["id"] == id).unwrap_or_else(|| panic!("no node {id}"));
    for round in 0..=2 {
        let head = &node(&format!("head[{round}]"))["metrics"];
        // Fitted on the task's 96 training images, not the probe set's, and scored on its test split.
        assert_eq!(head["train_examples"], 96, "{head}");
        assert!(head["accuracy"].as_f64().is_some_and(|a| (0.0..=1.0).contains(&a)), "{head}");
        assert_eq!(head["top"].as_object().map(|t| t.len()), Some(4), "one row per task class: {head}");
    }
}

/// On a binary task (digits, even against odd) the networks and PCBMs also report balanced
/// accuracy and AUROC, and the report's table at the compared rounds shows them.
#[test]
fn a_binary_task_reports_balanced_accuracy_and_auroc() {
    let project = Project::new(
        r#"dataset digits8 = digits { task = even_odd  image = 8 }
model net = resnet_tiny { classes = digits8.classes  width = 4 }
train dense = sgd { model = net  data = digits8.train  val = digits8.val  epochs = 2  batch = 64  lr = 0.05 }
prune tickets = imp { from = dense  rounds = 1  rate = 50% }
embed feats = pooled { of = tickets  layer = "layer3"  data = digits8 }
concepts bank = annotated { from = feats  labels = digits8.concepts }
explain head = pcbm { concepts = bank  epochs = 5 }
compare lth = compare { at = [100%, 50%]  accuracy = [tickets, head] }
report summary = html { include = [lth] }
"#,
    );
    let (code, events) = project.run(&[]);
    assert_eq!(code, 0, "{events:?}");
    let metrics = project.metrics();
    let rows = metrics["rounds"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in rows {
        for score in ["auroc", "pcbm_auroc", "balanced_accuracy", "pcbm_balanced_accuracy"] {
            let value = row[score].as_f64().unwrap_or_else(|| panic!("no {score} in {row}"));
            assert!((0.0..=1.0).contains(&value), "{score} = {value}");
        }
        // Two epochs already separate even from odd far better than chance.
        assert!(row["auroc"].as_f64().unwrap() > 0.8, "{row}");
    }
    let report = std::fs::read_to_string(project.dir.path().join("runs/tiny/report.html")).unwrap();
    assert!(report.contains("<th>network AUROC</th>"));
}

/// An unreadable image in a dataset with `skip_corrupt = true` is left out, and the report says
/// which.
#[test]
fn the_report_names_the_images_a_dataset_skipped() {
    let project = Project::new("");
    let root = project.dir.path().join("pictures");
    for (class, colour) in [("red", [200u8, 30, 30]), ("blue", [30, 30, 200])] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..8u8 {
            let picture = image::RgbImage::from_fn(8, 8, |x, y| {
                image::Rgb([colour[0], colour[1].wrapping_add(i * 7), colour[2].wrapping_add((x + y) as u8)])
            });
            picture.save(root.join(class).join(format!("{i}.png"))).unwrap();
        }
    }
    std::fs::write(root.join("red/broken.png"), b"not a png").unwrap();
    std::fs::write(
        project.file(),
        r#"dataset pictures = image_folder { root = "pictures"  image = 8  val = 25%  test = 25%  skip_corrupt = true }
model net = resnet_tiny { classes = pictures.classes  width = 4 }
train dense = sgd { model = net  data = pictures.train  epochs = 1  batch = 8  lr = 0.05 }
prune tickets = imp { from = dense  rounds = 1  rate = 50% }
compare lth = compare { at = [100%, 50%]  accuracy = [tickets] }
report summary = html { include = [lth] }
"#,
    )
    .unwrap();
    let (code, events) = project.run(&[]);
    assert_eq!(code, 0, "{events:?}");
    let report = std::fs::read_to_string(project.dir.path().join("runs/tiny/report.html")).unwrap();
    assert!(report.contains("left out 1 unreadable image"), "the report does not mention the skipped image");
    assert!(report.contains("<code>red/broken.png</code>"));
}

#[test]
fn a_smoke_run_stops_loops_early_and_keeps_its_results_apart_from_real_ones() {
    let project = Project::new(&format!("{TINY}{EXPLAINED}"));
    let (code, smoke) = project.run(&["--smoke", "1"]);
    assert_eq!(code, 0, "{smoke:?}");
    assert!(with_status(&smoke, "computed").contains("dense"));
    // One batch of 32 of the 96 training images, in one epoch of the declared three.
    let epochs: Vec<&Value> = smoke.iter().filter(|e| e["event"] == "worker" && e["worker"]["event"] == "epoch").collect();
    assert!(epochs.iter().all(|e| e["worker"]["epochs"] == 1), "{epochs:?}");
    assert!(project.cache().join("smoke-1/entries").is_dir());
    let folder = project.dir.path().join("runs/tiny-smoke");
    let html = std::fs::read_to_string(folder.join("report.html")).unwrap();
    assert!(html.contains("<strong>Smoke run</strong>: every training, embedding and explainer loop stopped after 1 batch."), "{html}");
    assert!(!project.dir.path().join("runs/tiny").exists());

    // The real run finds none of the smoke run's results.
    let (code, real) = project.run(&[]);
    assert_eq!(code, 0, "{real:?}");
    assert!(with_status(&real, "cached").is_empty(), "{real:?}");
    let html = std::fs::read_to_string(project.dir.path().join("runs/tiny/report.html")).unwrap();
    assert!(!html.contains("Smoke run"));
}
