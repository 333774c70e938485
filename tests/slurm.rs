//! `lthlang run --executor slurm` on a real Slurm cluster: `scripts/slurm-cluster.sh start` (two
//! one-CPU nodes, n1 and n2, on this machine) with SLURM_CONF exported, as scripts/test.sh does.
//! Without SLURM_CONF these tests say so on stderr and pass without running: a developer's
//! `cargo test` needs no cluster, and CI always has one.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Two independent branches (so two jobs can run at once, one per node) over a shared dataset.
const TWO_BRANCHES: &str = r#"
dataset data = shapes { classes = 4  image = 16  train = 64  val = 32  test = 32  seed = 3 }
model net = resnet_tiny { classes = data.classes  width = 4 }
model wide = resnet_tiny { classes = data.classes  width = 8 }
train dense = sgd { model = net  data = data.train  val = data.val  epochs = 1  batch = 32  lr = 0.05 }
train other = sgd { model = wide  data = data.train  val = data.val  epochs = 1  batch = 32  lr = 0.05 }
prune tickets = imp { from = dense  rounds = 1  rate = 50% }
"#;

fn cluster() -> bool {
    if std::env::var_os("SLURM_CONF").is_none() {
        eprintln!("SLURM_CONF is not set: start the cluster with `scripts/slurm-cluster.sh start` to run this test");
        return false;
    }
    true
}

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(files: &[(&str, &str)]) -> Project {
        // Under the working folder rather than /tmp: the nodes must see the cache, and on a real
        // cluster /tmp is per node.
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = tempfile::tempdir_in(base).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Project { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cache(&self) -> PathBuf {
        self.path("cache")
    }

    fn command(&self, file: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lthlang"));
        command
            .args(args)
            .arg(self.path(file))
            .arg("--cache")
            .arg(self.cache())
            .current_dir(self.dir.path())
            .env_remove("LTHLANG_CACHE")
            .env_remove("LTHLANG_WORKER");
        command
    }

    fn run(&self, file: &str, extra: &[&str]) -> (i32, Vec<Value>, String) {
        let mut args = vec!["run", "--json"];
        args.extend_from_slice(extra);
        let output = self.command(file, &args).output().unwrap();
        let events = String::from_utf8_lossy(&output.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        (output.status.code().unwrap_or(-1), events, String::from_utf8_lossy(&output.stderr).into_owned())
    }

    fn metrics(&self, experiment: &str) -> Vec<u8> {
        std::fs::read(self.path(&format!("runs/{experiment}/metrics.json"))).unwrap()
    }
}

fn jobs(events: &[Value], state: &str) -> BTreeMap<String, String> {
    events
        .iter()
        .filter(|e| e["event"] == "job" && e["state"] == state)
        .map(|e| (e["node"].as_str().unwrap().to_owned(), e["job"].as_str().unwrap().to_owned()))
        .collect()
}

fn statuses(events: &[Value]) -> BTreeMap<String, String> {
    events
        .iter()
        .filter(|e| e["event"] == "node_done")
        .map(|e| (e["outcome"]["id"].as_str().unwrap().to_owned(), e["outcome"]["status"].as_str().unwrap().to_owned()))
        .collect()
}

fn hosts(events: &[Value]) -> BTreeSet<String> {
    events.iter().filter(|e| e["event"] == "job").filter_map(|e| e["host"].as_str().map(str::to_owned)).collect()
}

#[test]
fn the_cluster_gives_the_local_metrics_and_uses_both_nodes() {
    if !cluster() {
        return;
    }
    let local = Project::new(&[("tiny.lth", TWO_BRANCHES)]);
    let (code, _, stderr) = local.run("tiny.lth", &[]);
    assert_eq!(code, 0, "{stderr}");
    let remote = Project::new(&[("tiny.lth", TWO_BRANCHES)]);
    let (code, events, stderr) = remote.run("tiny.lth", &["--executor", "slurm"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(local.metrics("tiny"), remote.metrics("tiny"), "metrics.json differs between the local and the Slurm run");
    let submitted = jobs(&events, "SUBMITTED");
    assert_eq!(submitted.len(), 6, "one job per node: {submitted:?}");
    assert!(statuses(&events).values().all(|s| s == "computed"), "{:?}", statuses(&events));
    let used = hosts(&events);
    assert!(used.contains("n1") && used.contains("n2"), "jobs ran on {used:?}");
    // Dependencies: `dense` started only after `net` and `data` had ended (afterok), seen from
    // the order of the events.
    let position = |node: &str, state: &str| events.iter().position(|e| e["event"] == "job" && e["node"] == node && e["state"] == state);
    // (Within one look at the queue, jobs are reported in plan order, `net` before `dense`.)
    let net_done = position("net", "COMPLETED").expect("`net` completed");
    if let Some(running) = position("dense", "RUNNING") {
        assert!(net_done < running, "`dense` ran before `net` ended");
    }
    // A second run finds everything cached and submits nothing.
    let (code, events, _) = remote.run("tiny.lth", &["--executor", "slurm"]);
    assert_eq!(code, 0);
    assert!(jobs(&events, "SUBMITTED").is_empty());
    assert!(statuses(&events).values().all(|s| s == "cached"));
}

#[test]
fn a_failed_job_cancels_its_dependants_and_a_rerun_submits_only_them() {
    if !cluster() {
        return;
    }
    let source = TWO_BRANCHES.replace(
        "model net = resnet_tiny { classes = data.classes  width = 4 }",
        "model net = resnet_tiny { classes = data.classes  width = 4  weights = file(\"net.safetensors\") }",
    );
    let project = Project::new(&[("tiny.lth", &source), ("net.safetensors", "this is not a safetensors file")]);
    let (code, events, stderr) = project.run("tiny.lth", &["--executor", "slurm"]);
    assert_eq!(code, 3, "{stderr}");
    let status = statuses(&events);
    assert_eq!(status["net"], "failed", "{status:?}");
    assert_eq!(status["dense"], "skipped");
    assert_eq!(status["tickets[1]"], "skipped");
    assert_eq!(status["data"], "computed");
    assert_eq!(status["other"], "computed");
    // The dependants never started: Slurm cancelled them.
    let started: BTreeSet<String> =
        events.iter().filter(|e| e["event"] == "job" && e["state"] == "RUNNING").map(|e| e["node"].as_str().unwrap().to_owned()).collect();
    assert!(!started.contains("dense") && !started.contains("tickets[1]"), "{started:?}");
    let failure = events.iter().find(|e| e["event"] == "node_done" && e["outcome"]["id"] == "net").unwrap();
    let message = failure["outcome"]["message"].as_str().unwrap();
    let job = &jobs(&events, "SUBMITTED")["net"];
    assert!(message.contains(&format!("Slurm job {job} of `net`")), "{message}");
    assert!(message.contains("log tail:"), "{message}");
    assert!(message.contains("exit code 1:0"), "{message}");

    // The fix: the model draws its weights from the seed. Only `net` and what reads it run again.
    std::fs::write(project.path("tiny.lth"), TWO_BRANCHES).unwrap();
    let (code, events, stderr) = project.run("tiny.lth", &["--executor", "slurm"]);
    assert_eq!(code, 0, "{stderr}");
    let submitted: BTreeSet<String> = jobs(&events, "SUBMITTED").into_keys().collect();
    assert_eq!(submitted, ["dense", "net", "tickets[1]"].map(String::from).into_iter().collect());
}

#[test]
fn a_killed_front_end_is_attached_to_and_nothing_is_submitted_twice() {
    if !cluster() {
        return;
    }
    let reference = Project::new(&[("tiny.lth", TWO_BRANCHES)]);
    assert_eq!(reference.run("tiny.lth", &[]).0, 0);
    let project = Project::new(&[("tiny.lth", TWO_BRANCHES)]);
    let mut child = project
        .command("tiny.lth", &["run", "--json", "--executor", "slurm"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let running = event["event"] == "job" && event["state"] == "RUNNING";
        first.push(event);
        if running {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let submitted_first = jobs(&first, "SUBMITTED");
    assert_eq!(submitted_first.len(), 6, "every node was submitted before the kill");
    let (code, events, stderr) = project.run("tiny.lth", &["--executor", "slurm"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(jobs(&events, "SUBMITTED").is_empty(), "resubmitted: {:?}", jobs(&events, "SUBMITTED"));
    // Every node not yet cached was attached to under its first job id.
    for (node, job) in jobs(&events, "ATTACHED") {
        assert_eq!(submitted_first[&node], job);
    }
    assert!(!jobs(&events, "ATTACHED").is_empty(), "the run ended before the kill; nothing to attach to");
    assert_eq!(project.metrics("tiny"), reference.metrics("tiny"));
}

#[test]
fn two_experiments_sharing_a_prefix_compute_it_once() {
    if !cluster() {
        return;
    }
    let other = TWO_BRANCHES.replace("rate = 50%", "rate = 30%");
    let project = Project::new(&[("a.lth", TWO_BRANCHES), ("b.lth", &other)]);
    let spawn = |file: &str| {
        project.command(file, &["run", "--json", "--executor", "slurm"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    };
    let (a, b) = (spawn("a.lth"), spawn("b.lth"));
    let mut computed: BTreeMap<String, usize> = BTreeMap::new();
    let mut submitted: BTreeMap<String, usize> = BTreeMap::new();
    for child in [a, b] {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let events: Vec<Value> = String::from_utf8_lossy(&output.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        for (node, status) in statuses(&events) {
            if status == "computed" {
                *computed.entry(node).or_default() += 1;
            }
        }
        for node in jobs(&events, "SUBMITTED").into_keys() {
            *submitted.entry(node).or_default() += 1;
        }
    }
    for shared in ["data", "net", "wide", "dense", "other"] {
        assert_eq!(submitted.get(shared), Some(&1), "`{shared}` submitted {:?} times", submitted.get(shared));
    }
    // Each experiment's own ticket round was submitted by its own run.
    assert_eq!(submitted.get("tickets[1]"), Some(&2));
    assert!(computed.values().all(|n| *n <= 2));
}

#[test]
fn bad_configurations_are_refused_before_anything_is_submitted() {
    if !cluster() {
        return;
    }
    let project = Project::new(&[("tiny.lth", TWO_BRANCHES)]);
    // No Slurm on PATH.
    let output = project.command("tiny.lth", &["run", "--executor", "slurm"]).env("PATH", project.path("empty")).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`sbatch` is not on PATH"), "{stderr}");
    assert!(
        !project.cache().join("slurm/jobs").exists() || std::fs::read_dir(project.cache().join("slurm/jobs")).unwrap().next().is_none()
    );

    // A partition the cluster lacks, named in the site settings beside the experiment.
    std::fs::write(project.path("lthlang.toml"), "[slurm]\npartition = \"debgu\"\n").unwrap();
    let output = project.command("tiny.lth", &["run", "--executor", "slurm"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the partition `debgu` is unknown to this cluster (sinfo lists: debug); did you mean `debug`?"), "{stderr}");
    std::fs::remove_file(project.path("lthlang.toml")).unwrap();

    // A cache the nodes cannot see: the front end runs in a mount namespace of its own with a
    // private tmpfs over the cache folder, so the probe job writes into the folder underneath.
    let hidden = project.path("hidden-cache");
    std::fs::create_dir_all(&hidden).unwrap();
    let script = format!(
        "mount -t tmpfs lthlang-private {cache} && exec {exe} run {file} --cache {cache} --executor slurm",
        cache = hidden.display(),
        exe = env!("CARGO_BIN_EXE_lthlang"),
        file = project.path("tiny.lth").display()
    );
    let output = Command::new("unshare").args(["--mount", "--propagation", "private", "sh", "-c", &script]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not visible from the cluster's nodes: probe job"), "{stderr}");
    assert!(std::fs::read_dir(&hidden).unwrap().next().is_none(), "the probe could not write beneath the private mount");
}

#[test]
fn status_lists_the_jobs_and_cancel_cancels_them() {
    if !cluster() {
        return;
    }
    let project = Project::new(&[("tiny.lth", TWO_BRANCHES)]);
    let mut child = project
        .command("tiny.lth", &["run", "--json", "--executor", "slurm"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut submitted = BTreeMap::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if event["event"] == "job" && event["state"] == "SUBMITTED" {
            submitted.insert(event["node"].as_str().unwrap().to_owned(), event["job"].as_str().unwrap().to_owned());
        }
        if submitted.len() == 6 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let output = project.command("tiny.lth", &["status"]).output().unwrap();
    let status = String::from_utf8_lossy(&output.stdout);
    assert!(status.contains("Slurm jobs of `tiny` (6 jobs"), "{status}");
    for (node, job) in &submitted {
        assert!(status.lines().any(|l| l.contains(job.as_str()) && l.contains(node.as_str())), "{node} ({job}) missing:\n{status}");
    }
    let output = project.command("tiny.lth", &["cancel"]).output().unwrap();
    assert!(output.status.success());
    let cancelled = String::from_utf8_lossy(&output.stdout);
    // The last node cannot have started yet (it waits on two others): it is among the cancelled.
    assert!(cancelled.contains(&format!("cancelled job {} (tickets[1])", submitted["tickets[1]"])), "{cancelled}");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let output = project.command("tiny.lth", &["status"]).output().unwrap();
    let status = String::from_utf8_lossy(&output.stdout);
    assert!(status.contains("0 queued or running"), "{status}");
    assert!(status.lines().any(|l| l.contains(submitted["tickets[1]"].as_str()) && l.contains("CANCELLED")), "{status}");
}
