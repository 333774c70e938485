//! The command line's conventions, driven as a user drives them: read-only commands write
//! nothing, caches that are missing or unwritable are named, `--colour never` writes no escape
//! codes on a terminal, standard input, `--force` names, JSON for tools, the generated reference,
//! and the shipped experiments checked without their data.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Quick to compute: the pty test runs it.
const TINY: &str = r#"dataset data = shapes { classes = 4  train = 64  val = 32  test = 32  seed = 3 }
model net = resnet_tiny { classes = data.classes  width = 4 }
train dense = sgd { model = net  data = data.train  epochs = 1  batch = 32  lr = 0.05 }
prune tickets = imp { from = dense  rounds = 2  rate = 50% }
"#;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn lthlang(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lthlang"));
    command.args(args).current_dir(dir).env_remove("LTHLANG_CACHE").env_remove("LTHLANG_WORKER").env_remove("NO_COLOR");
    command
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = lthlang(dir, args).stdin(Stdio::null()).output().unwrap();
    texts(&output)
}

fn texts(output: &Output) -> (i32, String, String) {
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            out.push(entry.path().strip_prefix(dir).unwrap().display().to_string());
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn read_only_commands_create_nothing_and_name_missing_caches() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.lth"), TINY).unwrap();
    let d = dir.path();
    for args in [
        &["check", "tiny.lth"][..],
        &["check", "--no-data", "--format", "json", "tiny.lth"],
        &["plan", "tiny.lth"],
        &["plan", "--json", "tiny.lth"],
        &["graph", "tiny.lth"],
        &["graph", "--format", "mermaid", "tiny.lth"],
        &["status", "tiny.lth"],
        &["status"],
        &["gc", "tiny.lth"],
        &["gc", "--dry-run", "tiny.lth"],
        &["doc", "sgd"],
        &["explain", "unknown_name"],
    ] {
        let (code, _, stderr) = run(d, args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
    }
    // Explained against no cache at all: every node is simply not computed yet.
    let (code, stdout, _) = run(d, &["plan", "--explain", "tiny.lth"]);
    assert_eq!(code, 0);
    let nodes: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(nodes.len(), 5);
    assert!(nodes.iter().all(|l| l.ends_with("run     not computed yet")), "{stdout}");
    let (_, stdout, _) = run(d, &["status", "tiny.lth"]);
    assert!(stdout.starts_with("nothing cached yet (no cache at"), "{stdout}");
    // `report` with nothing cached has its own exit code.
    let (code, _, stderr) = run(d, &["report", "tiny.lth"]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("nothing cached yet"), "{stderr}");
    // A cache named on the command line or in the environment that is not there is an error.
    let typo = d.join("typo");
    let typo_arg = typo.to_str().unwrap();
    for args in [
        &["status", "--cache", typo_arg][..],
        &["gc", "--dry-run", "--cache", typo_arg, "tiny.lth"],
        &["gc", "--cache", typo_arg, "tiny.lth"],
        &["plan", "--explain", "--cache", typo_arg, "tiny.lth"],
        &["report", "--cache", typo_arg, "tiny.lth"],
    ] {
        let (code, _, stderr) = run(d, args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(stderr, format!("error: no cache at {typo_arg}\n"), "{args:?}");
    }
    let output = lthlang(d, &["status"]).env("LTHLANG_CACHE", &typo).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(tree(d), ["tiny.lth"], "a read-only command wrote something");
}

#[test]
fn an_unwritable_cache_fails_once_up_front_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.lth"), TINY).unwrap();
    // Root ignores permission bits, so the test makes writing fail for everyone: a cache whose
    // parent is a regular file cannot be created (ENOTDIR) by any user.
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let cache = dir.path().join("a-file/cache");
    let (code, stdout, stderr) = run(dir.path(), &["run", "tiny.lth", "--cache", cache.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("error: cannot write to the cache {}: ", cache.display())), "{stderr}");
    assert!(!stderr.contains("report"), "{stderr}");

    // An existing cache that refuses writes: immutable (`chattr +i`, which binds root too) where
    // the filesystem supports it, else read-only permissions for an ordinary user.
    let existing = dir.path().join("cache");
    for sub in ["entries", "tmp", "locks", "partial", "last"] {
        std::fs::create_dir_all(existing.join(sub)).unwrap();
    }
    let locked = [existing.join("tmp"), existing.join("locks")];
    let immutable = locked.iter().all(|p| Command::new("chattr").arg("+i").arg(p).status().is_ok_and(|s| s.success()));
    if !immutable {
        use std::os::unix::fs::PermissionsExt as _;
        for p in &locked {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o555)).unwrap();
        }
    }
    let refuses = std::fs::write(existing.join("tmp/probe"), "").is_err();
    let result = run(dir.path(), &["run", "tiny.lth", "--cache", existing.to_str().unwrap()]);
    for p in &locked {
        if immutable {
            let _ = Command::new("chattr").arg("-i").arg(p).status();
        }
    }
    if refuses {
        let (code, _, stderr) = result;
        assert_eq!(code, 2, "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(&format!("error: cannot write to the cache {}: ", existing.display())), "{stderr}");
    } else {
        eprintln!("neither chattr nor permissions make a folder unwritable here; only the first case was tested");
    }
}

/// Runs `command` under a pseudo-terminal (util-linux `script`), returning what the terminal got.
fn on_a_terminal(dir: &Path, command: &str) -> Vec<u8> {
    let output = Command::new("script")
        .args(["-qefc", command, "/dev/null"])
        .current_dir(dir)
        .env_remove("LTHLANG_CACHE")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .output()
        .expect("`script` (util-linux) runs commands on a pseudo-terminal");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    output.stdout
}

#[test]
fn colour_never_writes_no_escape_codes_on_a_terminal_and_always_does() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tiny.lth"), TINY).unwrap();
    std::fs::write(dir.path().join("bad.lth"), "dataset data = shapes { clases = 4 }\n").unwrap();
    let bin = env!("CARGO_BIN_EXE_lthlang");
    let never =
        on_a_terminal(dir.path(), &format!("{bin} --colour never run tiny.lth --cache never; {bin} --color never check bad.lth; true"));
    let text = String::from_utf8_lossy(&never);
    assert!(text.contains("   done  dense"), "the run was not shown: {text}");
    assert!(text.contains("unknown_field"), "{text}");
    assert!(!never.contains(&0x1b), "escape codes with --colour never: {text:?}");
    // The same on a fresh cache with `always`: the terminal does get escape codes, so the test
    // above can tell.
    let always =
        on_a_terminal(dir.path(), &format!("{bin} --colour always run tiny.lth --cache always; {bin} --colour always check bad.lth; true"));
    assert!(always.contains(&0x1b), "{}", String::from_utf8_lossy(&always));

    // The cache is full now: `--force` takes one round, and names the stages when it is wrong.
    let (code, stdout, _) = run(dir.path(), &["plan", "--explain", "--json", "--cache", "never", "--force", "tickets[2]", "tiny.lth"]);
    assert_eq!(code, 0);
    let explained: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let to_run: Vec<&str> = explained.iter().filter(|n| n["status"] == "run").map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(to_run, ["tickets[2]"]);
    let (code, _, stderr) = run(dir.path(), &["run", "--cache", "never", "--force", "tickts", "tiny.lth"]);
    assert_eq!(code, 2);
    insta::assert_snapshot!("force_unknown_stage", stderr);
    let (code, _, stderr) = run(dir.path(), &["run", "--cache", "never", "--force", "tickets[3]", "tiny.lth"]);
    assert_eq!(code, 2);
    insta::assert_snapshot!("force_unknown_round", stderr);

    // The final event of `run --json`, with what differs between machines and runs masked.
    let output = lthlang(dir.path(), &["run", "--json", "--cache", "never", "--force", "tickets[2]", "tiny.lth"]).output().unwrap();
    let (code, stdout, _) = texts(&output);
    assert_eq!(code, 0);
    let mut summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["run_folder"], "./runs/tiny");
    summary["seconds"] = "[seconds]".into();
    insta::assert_snapshot!("run_json_summary", serde_json::to_string_pretty(&summary).unwrap());
}

#[test]
fn check_reads_standard_input() {
    let check = |text: &str| {
        let mut child = lthlang(&root(), &["check", "-"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
        texts(&child.wait_with_output().unwrap())
    };
    let (code, _, stderr) = check(TINY);
    assert_eq!((code, stderr.as_str()), (0, "<stdin>: ok (0 errors, 0 warnings)\n"));
    let (code, _, stderr) = check(&TINY.replace("epochs", "epohcs"));
    assert_eq!(code, 1);
    assert!(stderr.contains("<stdin>:3:"), "{stderr}");
}

#[test]
fn flags_people_try_point_at_what_exists() {
    let (code, _, stderr) = run(&root(), &["run", "--dry-run", "experiments/quickstart.lth"]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr,
        "error: `run` has no --dry-run; `lthlang plan --explain experiments/quickstart.lth` lists what a run would compute and why\n"
    );
    let (code, _, stderr) = run(&root(), &["-q", "-v", "check", "experiments/quickstart.lth"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run(&root(), &["-q", "check", "experiments/quickstart.lth"]);
    assert_eq!((code, stderr.as_str()), (0, ""));
}

#[test]
fn diagnostics_as_json_for_tools() {
    let (code, stdout, stderr) = run(&root(), &["check", "--format", "json", "tests/diagnostics/several.lth"]);
    assert_eq!(code, 1);
    assert_eq!(stderr, "", "json diagnostics go to stdout only");
    for line in stdout.lines() {
        serde_json::from_str::<Value>(line).unwrap();
    }
    insta::assert_snapshot!("check_format_json", stdout);
    // `plan --json` on a file with errors: one JSON document on stdout, the diagnostics.
    let (code, stdout, _) = run(&root(), &["plan", "--json", "tests/diagnostics/unknown_name.lth"]);
    assert_eq!(code, 1);
    let document: Value = serde_json::from_str(&stdout).unwrap();
    insta::assert_snapshot!("plan_json_errors", serde_json::to_string_pretty(&document).unwrap());
}

#[test]
fn every_shipped_experiment_checks_without_its_data_and_plans_and_graphs() {
    let experiments: Vec<PathBuf> = std::fs::read_dir(root().join("experiments"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "lth"))
        .collect();
    assert!(experiments.len() >= 3);
    // As on a fresh clone: no dataset variables, no data folders.
    let clean = |command: &mut Command| {
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().ends_with("_ROOT") {
                command.env_remove(name);
            }
        }
    };
    for file in &experiments {
        let file = file.strip_prefix(root()).unwrap().to_str().unwrap();
        for args in [&["check", "--no-data", file][..], &["plan", file], &["graph", file]] {
            let mut command = lthlang(&root(), args);
            clean(&mut command);
            let (code, _, stderr) = texts(&command.output().unwrap());
            assert_eq!(code, 0, "{args:?}: {stderr}");
            if args[0] != "check" {
                assert!(!stderr.contains("CUB_ROOT"), "plan and graph never read the data, so they do not mention it: {stderr}");
            }
        }
    }
    // What --no-data still says about the data: a warning each, in the snapshot.
    let mut command = lthlang(&root(), &["--colour", "never", "check", "--no-data", "experiments/cub200_resnet50.lth"]);
    clean(&mut command);
    let (_, _, stderr) = texts(&command.output().unwrap());
    insta::assert_snapshot!("check_no_data_cub", stderr);
}

#[test]
fn the_generated_reference_is_current() {
    let (code, generated, _) = run(&root(), &["doc", "--markdown"]);
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(root().join("docs/reference.md")).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/reference.md is stale: regenerate it with `cargo run --release -- doc --markdown > docs/reference.md`"
    );
}

#[test]
fn the_reference_and_the_explanations_read_as_shown() {
    let (code, stdout, _) = run(&root(), &["doc", "sgd"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("doc_sgd", stdout);
    let (code, stdout, _) = run(&root(), &["explain", "lth::check::unknown_name"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!("explain_unknown_name", stdout);
    let (code, _, stderr) = run(&root(), &["doc", "resnet_tny"]);
    assert_eq!(
        (code, stderr.as_str()),
        (2, "error: no category or method `resnet_tny` (did you mean `resnet_tiny`?); `lthlang doc` lists them\n")
    );
}

/// Every code the sources use, found by reading them, has an explanation (and nothing else does).
#[test]
fn every_diagnostic_code_has_an_explanation() {
    let mut used = std::collections::BTreeSet::new();
    let mut pending = vec![root().join("src")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("doc/codes.rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split("\"lth::").skip(1) {
                    used.insert(format!("lth::{}", piece.split('"').next().unwrap()));
                }
            }
        }
    }
    let explained: std::collections::BTreeSet<String> = lthlang::doc::codes::CODES.iter().map(|c| c.code.to_owned()).collect();
    assert_eq!(used, explained);
}

/// The README's complete experiment passes `check`.
#[test]
fn the_readme_experiment_checks() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let blocks: Vec<&str> = readme.split("```lth\n").skip(1).map(|b| b.split("```").next().unwrap()).collect();
    assert_eq!(blocks.len(), 1);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("readme.lth"), blocks[0]).unwrap();
    let (code, _, stderr) = run(dir.path(), &["check", "readme.lth"]);
    assert_eq!(code, 0, "{stderr}");
    let (_, plan, _) = run(dir.path(), &["plan", "--json", "readme.lth"]);
    let plan: Vec<Value> = serde_json::from_str(&plan).unwrap();
    let kinds: std::collections::BTreeSet<&str> = plan.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 9, "the README's experiment should use every category: {kinds:?}");
}
