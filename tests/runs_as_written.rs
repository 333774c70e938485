//! Programs `check` accepts run as written: late rewinding keeps and restores epoch k, a stage's
//! `seed` changes what it draws, `compare` honours the options it is given, and a worker that
//! cannot run (a missing GPU, a hang) fails the run in a few clear lines. Each test drives the
//! binaries as a user would, in its own temporary folder.

use safetensors::SafeTensors;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lthlang"));
        command
            .args(args)
            .arg(self.file())
            .arg("--cache")
            .arg(self.dir.path().join("cache"))
            .env_remove("LTHLANG_CACHE")
            .env_remove("LTHLANG_WORKER")
            .env_remove("LTHLANG_WORKER_TIMEOUT");
        command
    }

    fn run(&self) -> Output {
        self.command(&["run"]).output().unwrap()
    }

    fn run_ok(&self) {
        let output = self.run();
        assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    }

    /// The cache entry folder of node `id`.
    fn entry(&self, id: &str) -> PathBuf {
        let output = self.command(&["plan", "--explain", "--json"]).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let nodes: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
        let key = nodes.iter().find(|n| n["id"] == id).unwrap_or_else(|| panic!("no node `{id}`"))["key"].as_str().unwrap().to_owned();
        self.dir.path().join("cache/entries").join(key)
    }

    fn run_folder(&self) -> PathBuf {
        self.dir.path().join("runs/tiny")
    }
}

/// A safetensors file as name → (dtype, raw bytes).
fn tensors(path: &Path) -> BTreeMap<String, (String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = SafeTensors::deserialize(&bytes).unwrap();
    file.tensors().into_iter().map(|(name, view)| (name, (format!("{:?}", view.dtype()), view.data().to_vec()))).collect()
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Layerwise magnitude pruning as science.md states it: remove round(rate × alive) of the alive
/// weights with the smallest |w|, ties to the lower index.
fn magnitude_mask(weights: &[f32], alive: &[bool], rate: f64) -> Vec<bool> {
    let mut order: Vec<usize> = (0..weights.len()).filter(|i| alive[*i]).collect();
    order.sort_by(|a, b| weights[*a].abs().total_cmp(&weights[*b].abs()).then(a.cmp(b)));
    let remove = (rate * order.len() as f64).round() as usize;
    let mut mask = alive.to_vec();
    for i in order.into_iter().take(remove) {
        mask[i] = false;
    }
    mask
}

const REWIND: &str = r#"dataset data = shapes { classes = 4  train = 64  val = 32  test = 32  seed = 3 }
model net = resnet_tiny { classes = data.classes  width = 4 }
train dense = sgd { model = net  data = data.train  epochs = 2  batch = 32  lr = 0.05 }
prune tickets = imp { from = dense  rounds = 2  rate = 50%  rewind = epoch(1) }
"#;

/// `rewind = epoch(1)`: the dense node keeps its weights after epoch 1; each round's mask comes
/// from the previous round's trained weights; and each round restarts (its kept epoch 0) from
/// epoch 1's weights bit for bit where the mask keeps them and from zero where it does not.
#[test]
fn late_rewinding_keeps_epoch_k_and_restarts_every_round_from_it() {
    let project = Project::new(REWIND);
    project.run_ok();
    let dense = project.entry("dense");
    let epoch_1 = tensors(&dense.join("epoch-1.safetensors"));
    let mut previous_weights = tensors(&dense.join("model.safetensors"));
    let mut previous_masks: Option<BTreeMap<String, (String, Vec<u8>)>> = None;
    for round in 1..=2 {
        let entry = project.entry(&format!("tickets[{round}]"));
        let masks = tensors(&entry.join("mask.safetensors"));
        assert!(!masks.is_empty());
        for (name, (_, mask)) in &masks {
            let weights = floats(&previous_weights[name].1);
            let alive: Vec<bool> = match &previous_masks {
                Some(m) => m[name].1.iter().map(|b| *b != 0).collect(),
                None => vec![true; weights.len()],
            };
            let expected = magnitude_mask(&weights, &alive, 0.5);
            let got: Vec<bool> = mask.iter().map(|b| *b != 0).collect();
            assert_eq!(got, expected, "round {round}: the mask of `{name}` is not magnitude pruning of the previous round's weights");
        }
        let start = tensors(&entry.join("epoch-0.safetensors"));
        assert_eq!(start.keys().collect::<Vec<_>>(), epoch_1.keys().collect::<Vec<_>>());
        for (name, (dtype, bytes)) in &start {
            match masks.get(name) {
                None => assert_eq!(bytes, &epoch_1[name].1, "round {round}: `{name}` ({dtype}) is not epoch 1's"),
                Some((_, mask)) => {
                    let (rewound, kept) = (floats(bytes), floats(&epoch_1[name].1));
                    for (i, alive) in mask.iter().enumerate() {
                        if *alive != 0 {
                            assert_eq!(rewound[i].to_bits(), kept[i].to_bits(), "round {round}: `{name}`[{i}] is not rewound bit for bit");
                        } else {
                            assert_eq!(rewound[i], 0.0, "round {round}: pruned `{name}`[{i}] is not zero");
                        }
                    }
                }
            }
        }
        let trained = tensors(&entry.join("model.safetensors"));
        assert_ne!(trained, start, "round {round} did not retrain");
        previous_weights = trained;
        previous_masks = Some(masks);
    }
}

const SEEDED: &str = r#"dataset data = shapes { classes = 4  train = 64  val = 32  test = 32  seed = 3 }
model net = resnet_tiny { classes = data.classes  width = 4 }
train dense = sgd { model = net  data = data.train  epochs = 1  batch = 16  lr = 0.05  seed = SEED }
prune tickets = random { from = dense  rounds = 1  rate = 50%  seed = SEED }
embed feats = pooled { of = dense  layer = "layer3"  data = data }
concepts bank = random { from = feats  count = 4  seed = SEED }
concepts probes = annotated { from = feats  labels = data.concepts  solver = sgd  epochs = 2  seed = SEED }
"#;

/// Every artifact of a node but its timing, by file name.
fn artifacts(entry: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(entry)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

/// A stage's `seed` enters its random stream: two values draw differently, the same value gives
/// the same bytes in a fresh cache.
#[test]
fn a_stage_seed_changes_what_it_draws_and_repeats_with_the_same_value() {
    let runs: Vec<Project> = ["1", "1", "2"].iter().map(|s| Project::new(&SEEDED.replace("SEED", s))).collect();
    for project in &runs {
        project.run_ok();
    }
    for node in ["dense", "tickets[1]", "bank", "probes"] {
        let [one, again, two] = [0, 1, 2].map(|i| artifacts(&runs[i].entry(node)));
        assert!(!one.is_empty(), "`{node}` wrote no tensors");
        assert_eq!(one, again, "`{node}` with the same seed differs between two caches");
        assert_ne!(one, two, "`{node}` is the same with seeds 1 and 2");
    }
}

const COMPARED: &str = r#"dataset data = shapes { classes = 4  train = 64  val = 32  test = 32  seed = 3 }
model net = resnet_tiny { classes = data.classes  width = 4 }
train dense = sgd { model = net  data = data.train  epochs = 1  batch = 16  lr = 0.05 }
prune tickets = imp { from = dense  rounds = 1  rate = 50% }
embed feats = pooled { of = tickets  layer = "layer3"  data = data }
concepts bank = annotated { from = feats  labels = data.concepts }
explain head = pcbm { concepts = bank  epochs = 5 }
explain cam = gradcam { of = tickets  layer = "layer3"  images = data.test.sample(4, seed = 0) }
compare lth = compare {
  at       = [100%, 50%]
  accuracy = tickets
  concepts = head { classes = [0, 3] }
  saliency = cam { metrics = [ssim] }
}
"#;

/// `classes = [0, 3]` picks classes by index; `metrics = [ssim]` measures SSIM alone; and the
/// PCBM a `concepts` section reads has its accuracy in the table though `accuracy` names only
/// the networks.
#[test]
fn compare_honours_class_indices_chosen_metrics_and_fills_the_pcbm_column() {
    let project = Project::new(COMPARED);
    project.run_ok();
    let compare: Value = serde_json::from_slice(&std::fs::read(project.entry("lth").join("compare.json")).unwrap()).unwrap();
    let classes: Vec<&str> = compare["concepts"]["classes"].as_array().unwrap().iter().map(|c| c["class"].as_str().unwrap()).collect();
    let names: Vec<String> = {
        let meta: Value = serde_json::from_slice(&std::fs::read(project.entry("data").join("meta.json")).unwrap()).unwrap();
        meta["class_names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(classes, [names[0].as_str(), names[3].as_str()], "{}", compare["concepts"]);
    let rows = compare["saliency"]["consistency"].as_array().unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        assert!(row["ssim"].is_f64(), "{row}");
        assert!(row["spearman"].is_null() && row["top_iou"].is_null(), "metrics not asked for were measured: {row}");
    }
    for row in compare["rounds"].as_array().unwrap() {
        assert!(row["pcbm_accuracy"].is_f64(), "the PCBM column is empty: {row}");
    }
}

const SMALL: &str = r#"dataset data = shapes { classes = 4  train = 32  val = 16  test = 16  seed = 3 }
model net = resnet_tiny { classes = data.classes  width = 4 }
train dense = sgd { model = net  data = data.train  epochs = 1  batch = 16 }
"#;

/// `device = cuda` on a machine that shows no GPU is an error before anything runs: exit 2, one
/// line that says why, and nothing computed or cached. (`CUDA_VISIBLE_DEVICES=""` hides every
/// GPU, so this holds on any machine.)
#[test]
fn cuda_on_a_machine_without_a_gpu_is_an_error_before_anything_runs() {
    let project = Project::new(&format!("experiment {{ device = cuda }}\n{SMALL}"));
    let output = project.command(&["run"]).env("CUDA_VISIBLE_DEVICES", "").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`device = cuda` in the experiment block, but this machine shows no GPU"), "{stderr}");
    assert!(stderr.contains("nothing was run"), "{stderr}");
    assert!(stderr.lines().count() <= 2, "more than a line or two:\n{stderr}");
    let entries = project.dir.path().join("cache/entries");
    assert_eq!(std::fs::read_dir(&entries).map(Iterator::count).unwrap_or(0), 0, "something was cached");
    assert!(!project.run_folder().join("timings.json").exists());
}

/// When the machine shows a GPU that libtorch cannot use (here: a GPU index made visible on a
/// machine without CUDA), the worker still refuses it: the first node fails in a line that says
/// why, the rest are skipped, no libtorch backtrace is printed and no CUDA device is recorded.
#[test]
fn cuda_that_libtorch_cannot_see_fails_at_once_in_a_few_clear_lines() {
    let project = Project::new(&format!("experiment {{ device = cuda }}\n{SMALL}"));
    let output = project.command(&["run"]).env("CUDA_VISIBLE_DEVICES", "0").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let timings: Value = serde_json::from_slice(&std::fs::read(project.run_folder().join("timings.json")).unwrap()).unwrap();
    if output.status.code() == Some(0) {
        // A machine with CUDA runs it there.
        assert_eq!(timings["device"], "cuda:0", "{timings}");
        return;
    }
    // scripts/gpu-check.sh sets LTHLANG_REQUIRE_CUDA=1: there a failure to run on CUDA is a
    // failure of this test, not the expected CPU-machine outcome.
    assert!(std::env::var("LTHLANG_REQUIRE_CUDA").as_deref() != Ok("1"), "LTHLANG_REQUIRE_CUDA=1 but the run failed:\n{stderr}");
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("failed: `data`: device `cuda:0` is not available: libtorch sees no CUDA device"), "{stderr}");
    assert!(stderr.contains("2 skipped"), "{stderr}");
    assert!(stderr.lines().count() <= 6, "more than a few lines:\n{stderr}");
    assert!(!stderr.contains("Exception raised from") && !stderr.contains("frame #"), "{stderr}");
    assert_ne!(timings["device"], "cuda:0", "{timings}");
}

/// The device class enters the keys of the nodes that compute on it, and only those: CPU keys
/// are the same whether the CPU is named or `auto` finds no GPU, a GPU run never reuses a CPU
/// result (or the reverse), and datasets and initial weights are shared.
#[test]
fn the_device_class_enters_the_keys_of_nodes_that_compute_on_it() {
    let keys = |device: &str, visible: &str| -> BTreeMap<String, String> {
        let project = Project::new(&format!("experiment {{ device = {device} }}\n{SMALL}"));
        std::fs::create_dir_all(project.dir.path().join("cache/entries")).unwrap();
        let output = project.command(&["plan", "--explain", "--json"]).env("CUDA_VISIBLE_DEVICES", visible).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let nodes: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
        nodes.iter().map(|n| (n["id"].as_str().unwrap().to_owned(), n["key"].as_str().unwrap().to_owned())).collect()
    };
    let (cpu, auto_without, auto_with, cuda) = (keys("cpu", ""), keys("auto", ""), keys("auto", "0"), keys("cuda", ""));
    assert_eq!(cpu, auto_without);
    assert_eq!(auto_with, cuda);
    assert_eq!(cpu["data"], cuda["data"]);
    assert_eq!(cpu["net"], cuda["net"]);
    assert_ne!(cpu["dense"], cuda["dense"]);
}

/// A worker that sends nothing for `LTHLANG_WORKER_TIMEOUT` seconds is killed and its node fails
/// saying so; a malformed limit is a usage error.
#[test]
fn a_silent_worker_is_killed_and_its_node_fails_clearly() {
    let project = Project::new(SMALL);
    let output = project.command(&["run"]).env("LTHLANG_WORKER_TIMEOUT", "0.001").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("failed: `data`: the worker sent nothing for 0.001 s and was killed as hung"), "{stderr}");

    let output = project.command(&["run"]).env("LTHLANG_WORKER_TIMEOUT", "soon").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("LTHLANG_WORKER_TIMEOUT=`soon` is not a positive number of seconds"), "{stderr}");
}

/// The worker refuses a device string it does not know instead of computing on the CPU.
#[test]
fn the_worker_refuses_an_unknown_device() {
    let worker = Path::new(env!("CARGO_BIN_EXE_lthlang")).with_file_name(format!("lthlang-worker{}", std::env::consts::EXE_SUFFIX));
    let dir = tempfile::tempdir().unwrap();
    let request = serde_json::json!({
        "id": "data", "stage": "data", "category": "dataset", "method": "shapes", "round": null, "seed": 0,
        "fields": {}, "upstream": [], "output": dir.path(), "partial": dir.path(), "device": "tpu:0",
    });
    let mut child = Command::new(worker).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{request}").unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let events: Vec<Value> = String::from_utf8_lossy(&output.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "failed");
    assert_eq!(events[0]["node"], "");
    assert!(events[0]["message"].as_str().unwrap().starts_with("unknown device `tpu:0`"), "{events:?}");
}

const OVERLAID: &str = r#"dataset data = shapes { classes = 4  train = 32  val = 16  test = 16  seed = 3 }
model net = resnet_tiny { classes = data.classes  width = 4 }
train dense = sgd { model = net  data = data.train  epochs = 1  batch = 16 }
prune tickets = imp { from = dense  rounds = 1  rate = 50% }
explain cam = gradcam { of = tickets  layer = "layer3"  images = data.test.sample(2, seed = 0)  alpha = 0.5 }
compare lth = compare { at = [100%, 50%]  accuracy = [tickets]  saliency = cam }
report summary = html { include = [lth] }
"#;

/// Overlay opacity is cosmetic: a new `alpha` recomputes no map, only the report, whose overlays
/// change with it.
#[test]
fn a_new_overlay_opacity_redraws_only_the_report() {
    let project = Project::new(OVERLAID);
    project.run_ok();
    let report = project.run_folder().join("report.html");
    let before = std::fs::read_to_string(&report).unwrap();
    assert!(before.contains("<img class=\"overlay\""), "no overlay in the report");
    let text = std::fs::read_to_string(project.file()).unwrap();
    std::fs::write(project.file(), text.replace("alpha = 0.5", "alpha = 0.9")).unwrap();
    let output = project.command(&["plan", "--explain", "--json"]).output().unwrap();
    let nodes: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let to_run: Vec<&str> = nodes.iter().filter(|n| n["status"] == "run").map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(to_run, ["summary"]);
    let output = project.command(&["run", "--json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let after = std::fs::read_to_string(&report).unwrap();
    let overlays = |page: &str| {
        page.split("<img class=\"overlay\" src=\"").skip(1).map(|s| s.split('"').next().unwrap_or("").to_owned()).collect::<Vec<_>>()
    };
    let (old, new) = (overlays(&before), overlays(&after));
    assert_eq!(old.len(), new.len());
    assert!(old.iter().zip(&new).all(|(a, b)| a != b), "the overlays did not change with alpha");
}

/// A split without images has no accuracy: null, not 0.
#[test]
fn an_empty_test_split_scores_null() {
    let project = Project::new(
        "dataset data = digits { test = 0%  val = 10% }\nmodel net = resnet_tiny { classes = data.classes  width = 4 }\ntrain dense = sgd { model = net  data = data.train  val = data.val  epochs = 1  batch = 64 }\n",
    );
    project.run_ok();
    let metrics: Value = serde_json::from_slice(&std::fs::read(project.entry("dense").join("metrics.json")).unwrap()).unwrap();
    assert!(metrics["test_accuracy"].is_null(), "{metrics}");
    assert!(metrics["val_accuracy"].is_f64(), "{metrics}");
}

const WARNED: &str = r#"dataset data = shapes { classes = 4  train = 32  val = 16  test = 16  seed = 3 }
model net = resnet_tiny { classes = data.classes  width = 4 }
train dense = sgd { model = net  data = data.train  epochs = 1  batch = 16 }
embed feats = pooled { of = dense  layer = "layer3"  data = data }
concepts bank = random { from = feats  count = 6 }
explain head = pcbm { concepts = bank  lambda = 0  epochs = 1  batch = 65536 }
compare lth = compare { at = [100%]  accuracy = [dense, head] }
report summary = html { include = [lth] }
"#;

/// A warning is stored with the result: a cached rerun repeats it and the report shows it.
#[test]
fn warnings_are_kept_with_the_result_repeated_when_cached_and_reported() {
    let project = Project::new(WARNED);
    let warnings = |output: &Output| -> Vec<String> {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["event"] == "warning")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let first = project.command(&["run", "--json"]).output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    let first = warnings(&first);
    assert!(first.iter().any(|w| w.starts_with("`head`: the PCBM stopped after")), "{first:?}");
    let again = project.command(&["run", "--json"]).output().unwrap();
    let again = warnings(&again);
    assert!(again.iter().any(|w| w.starts_with("`head`: the PCBM stopped after") && w.ends_with("(from the cached result)")), "{again:?}");
    let report = std::fs::read_to_string(project.run_folder().join("report.html")).unwrap();
    assert!(report.contains("Warning from <code>head</code>: the PCBM stopped after"), "the report shows no warning");
}
