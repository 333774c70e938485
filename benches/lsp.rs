//! Latency of diagnostics as you type: `lthlang lsp` is started over stdio with the CUB-200
//! experiment open, and each timed sample is one `didChange` (the whole text, one number edited)
//! until its `publishDiagnostics` arrives, measured at the client as an editor meets it. Beside
//! it, the same edit checked in-process (the checker alone), so the protocol's share shows.
//! The target is a median of at most 10 ms.
//!
//!   cargo bench --bench lsp
//!
//! `LTHLANG_BENCH_RUNS` sets the number of samples (default 300), `LTHLANG_BENCH_TARGET_MS` the
//! target (default 10). CUB_ROOT points at a fixture folder in the published CUB-200 layout, so
//! the dataset checks run; a missing folder would only be a diagnostic.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXPERIMENT: &str = "experiments/cub200_resnet50.lth";

fn env_number(var: &str, default: u64) -> u64 {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn write_file(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The CUB-200 layout the checker requires, as in tests/shipped.rs.
fn cub_fixture(base: &Path) -> std::path::PathBuf {
    let root = base.join("CUB_200_2011");
    let image = "001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg";
    write_file(&root.join("images.txt"), &format!("1 {image}\n"));
    write_file(&root.join("image_class_labels.txt"), "1 1\n");
    write_file(&root.join("train_test_split.txt"), "1 1\n");
    write_file(&root.join("classes.txt"), "1 001.Black_footed_Albatross\n");
    write_file(&root.join("bounding_boxes.txt"), "1 60.0 27.0 325.0 304.0\n");
    write_file(&root.join("attributes/image_attribute_labels.txt"), "1 1 0 3 27.7\n");
    write_file(&root.join("images").join(image), "");
    root
}

fn send(stdin: &mut impl std::io::Write, message: &Value) {
    let body = message.to_string();
    write!(stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    stdin.flush().unwrap();
}

fn receive(stdout: &mut impl BufRead) -> Value {
    let mut length = 0;
    loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the server closed its output");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(n) = line.strip_prefix("Content-Length: ") {
            length = n.parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    stdout.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

fn summary(label: &str, mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| samples[((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
    println!(
        "{label}: n={} min={:.2} ms median={:.2} ms p95={:.2} ms max={:.2} ms",
        samples.len(),
        ms(samples[0]),
        ms(at(0.5)),
        ms(at(0.95)),
        ms(*samples.last().unwrap())
    );
    ms(at(0.5))
}

fn main() {
    let runs = env_number("LTHLANG_BENCH_RUNS", 300) as usize;
    let target = env_number("LTHLANG_BENCH_TARGET_MS", 10) as f64;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = tempfile::tempdir().unwrap();
    let cub = cub_fixture(data.path());
    let path = root.join(EXPERIMENT);
    let text = std::fs::read_to_string(&path).unwrap();
    let uri = format!("file://{}", path.display());
    assert!(text.contains("epochs       = 60"), "the bench edits the epochs of `dense`");
    let edited = |i: usize| text.replace("epochs       = 60", &format!("epochs       = {}", 60 + i % 7));

    let mut child = Command::new(env!("CARGO_BIN_EXE_lthlang"))
        .arg("lsp")
        .env("CUB_ROOT", &cub)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    send(&mut stdin, &json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "capabilities": {} } }));
    receive(&mut stdout);
    send(&mut stdin, &json!({ "jsonrpc": "2.0", "method": "initialized", "params": {} }));
    let open = json!({ "jsonrpc": "2.0", "method": "textDocument/didOpen",
        "params": { "textDocument": { "uri": uri, "languageId": "lth", "version": 0, "text": text } } });
    send(&mut stdin, &open);
    let first = receive(&mut stdout);
    assert_eq!(first["params"]["diagnostics"], json!([]), "the CUB experiment checks clean with the fixture: {first}");

    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs + 20 {
        let change = json!({ "jsonrpc": "2.0", "method": "textDocument/didChange",
            "params": { "textDocument": { "uri": uri, "version": i + 1 }, "contentChanges": [{ "text": edited(i) }] } });
        let started = Instant::now();
        send(&mut stdin, &change);
        let reply = receive(&mut stdout);
        let elapsed = started.elapsed();
        assert_eq!(reply["method"], "textDocument/publishDiagnostics");
        assert_eq!(reply["params"]["version"], i + 1);
        // The first edits warm the process up (page faults, the stdlib's parse).
        if i >= 20 {
            samples.push(elapsed);
        }
    }
    send(&mut stdin, &json!({ "jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": null }));
    receive(&mut stdout);
    send(&mut stdin, &json!({ "jsonrpc": "2.0", "method": "exit", "params": null }));
    let _ = child.wait();

    std::env::set_var("CUB_ROOT", &cub);
    let mut in_process = Vec::with_capacity(runs);
    for i in 0..runs {
        let text = edited(i);
        let started = Instant::now();
        let analysis = lthlang::lsp::Analysis::new(&path, &text);
        assert!(analysis.diagnostics.is_empty());
        in_process.push(started.elapsed());
    }

    let median = summary("lsp didChange → publishDiagnostics (stdio)", samples);
    summary("the same check in-process (reference)", in_process);
    println!("target: median ≤ {target} ms");
    assert!(median <= target, "median {median:.2} ms is over the {target} ms target");
}
