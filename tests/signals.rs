//! Signals to `lthlang run`: SIGINT and SIGTERM stop at the next epoch checkpoint with exit 130 and
//! 143, a second signal stops at once, no worker outlives the run, and the resumed run's metrics
//! equal an uninterrupted run's.

use serde_json::Value;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Long enough that a signal arrives mid-training (6 epochs, then one pruning round retrained).
const EXPERIMENT: &str = r#"dataset data = shapes { classes = 4  train = 96  val = 32  test = 32  seed = 3 }
model net = resnet_tiny { classes = data.classes  width = 4 }
train dense = sgd { model = net  data = data.train  val = data.val  epochs = 6  batch = 32  lr = 0.05 }
prune tickets = imp { from = dense  rounds = 1  rate = 50% }
"#;

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("signals.lth"), EXPERIMENT).unwrap();
    dir
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lthlang"));
    command
        .args(args)
        .arg(dir.join("signals.lth"))
        .arg("--cache")
        .arg(dir.join("cache"))
        .env_remove("LTHLANG_CACHE")
        .env_remove("LTHLANG_WORKER");
    command
}

fn metrics(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("runs/signals/metrics.json")).unwrap()).unwrap()
}

/// The children of a process, from /proc (the worker is the front end's only child).
/// The child processes of `pid`, whichever of its threads started them (the local executor starts
/// workers from its scheduler's threads, and /proc lists children per thread).
fn children(pid: u32) -> Vec<u32> {
    let tasks =
        std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>()).unwrap_or_default();
    tasks
        .iter()
        .flat_map(|task| {
            std::fs::read_to_string(task.join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Whether `pid` is a live process (a zombie counts as gone: it runs nothing).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit(')').next().unwrap_or("").split_whitespace().next().unwrap_or("");
        state != "Z" && state != "X"
    })
}

struct Interrupted {
    code: i32,
    /// From the (last) signal to the process's exit.
    took: Duration,
    events: Vec<Value>,
    worker: Vec<u32>,
}

/// Runs with --json and sends `signals` (one after the other) when an epoch event of `node`
/// reaches `epoch`.
fn interrupt_at(dir: &Path, node: &str, epoch: u64, signals: &[i32]) -> Interrupted {
    let mut child = command(dir, &["run", "--json"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    let mut events = Vec::new();
    let mut worker = Vec::new();
    let mut sent_at = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let Ok(event) = serde_json::from_str::<Value>(&line.unwrap()) else { continue };
        let reached = event["worker"]["event"] == "epoch" && event["worker"]["node"] == node && event["worker"]["epoch"] == epoch;
        events.push(event);
        if reached && sent_at.is_none() {
            worker = children(pid);
            for signal in signals {
                // SAFETY: kill takes two integers.
                unsafe {
                    libc::kill(i32::try_from(pid).unwrap(), *signal);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            sent_at = Some(Instant::now());
        }
    }
    let status = child.wait().unwrap();
    let took = sent_at.expect("the epoch to interrupt at was never reached").elapsed();
    Interrupted { code: status.code().unwrap_or(-1), took, events, worker }
}

fn summary(events: &[Value]) -> &Value {
    let last = events.last().unwrap();
    assert_eq!(last["event"], "summary", "the last event is the summary: {last}");
    last
}

fn unfinished(summary: &Value) -> Vec<String> {
    summary["unfinished"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn signals_stop_at_a_checkpoint_and_the_resumed_run_matches_an_uninterrupted_one() {
    let reference = project();
    let output = command(reference.path(), &["run", "--json"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let expected = metrics(reference.path());

    let dir = project();
    // SIGINT in the middle of the dense training.
    let first = interrupt_at(dir.path(), "dense", 2, &[libc::SIGINT]);
    assert_eq!(first.code, 130, "{:?}", first.events.last());
    assert!(first.took < Duration::from_secs(10), "took {:?} to stop", first.took);
    assert_eq!(first.worker.len(), 1, "one worker was running");
    assert!(first.worker.iter().all(|w| !alive(*w)), "a worker outlived the run");
    let said = summary(&first.events);
    assert_eq!(said["outcome"], "interrupted");
    assert_eq!(said["signal"], "SIGINT");
    assert_eq!(said["computed"], 2, "data and net finished: {said}");
    assert_eq!(unfinished(said), ["dense", "tickets[1]"]);
    let stopped = said["unfinished"][0]["message"].as_str().unwrap();
    assert!(stopped.starts_with("stopped after epoch"), "{stopped}");
    assert!(first.events.iter().any(|e| e["event"] == "interrupted" && e["at_once"] == false));
    // The finished nodes are cached; the interrupted one left its epoch state and no entry.
    let explained = command(dir.path(), &["plan", "--explain", "--json"]).output().unwrap();
    let explained: Vec<Value> = serde_json::from_slice(&explained.stdout).unwrap();
    let state = |id: &str| explained.iter().find(|n| n["id"] == id).unwrap()["status"].clone();
    assert_eq!((state("data"), state("net"), state("dense")), ("cached".into(), "cached".into(), "run".into()));
    assert_eq!(std::fs::read_dir(dir.path().join("cache/partial")).unwrap().count(), 1);
    assert_eq!(std::fs::read_dir(dir.path().join("cache/tmp")).unwrap().count(), 0, "nothing half-written");
    // An interrupted run does not write the run folder.
    assert!(!dir.path().join("runs/signals/metrics.json").exists());

    // SIGTERM (Slurm, a workflow manager) in the pruning round's retraining: 143.
    let second = interrupt_at(dir.path(), "tickets[1]", 2, &[libc::SIGTERM]);
    assert_eq!(second.code, 143);
    assert_eq!(summary(&second.events)["signal"], "SIGTERM");
    let resumed = |e: &Value| e["worker"]["message"].as_str().is_some_and(|m| m.starts_with("resuming after epoch"));
    assert!(second.events.iter().any(resumed), "dense did not resume from its saved epoch");
    assert!(second.worker.iter().all(|w| !alive(*w)));

    // Two signals: the second stops at once, killing the worker mid-epoch.
    let third = interrupt_at(dir.path(), "tickets[1]", 4, &[libc::SIGINT, libc::SIGINT]);
    assert_eq!(third.code, 130);
    assert!(third.events.iter().any(|e| e["event"] == "interrupted" && e["at_once"] == true));
    assert!(third.worker.iter().all(|w| !alive(*w)), "the second signal left a worker running");

    let output = command(dir.path(), &["run", "--json"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(metrics(dir.path()), expected, "the resumed run differs from the uninterrupted one");
    assert_eq!(std::fs::read_dir(dir.path().join("cache/partial")).unwrap().count(), 0);
}
