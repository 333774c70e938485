//! `lthlang fmt` and `lthlang completions` as a user runs them.

use std::io::Write as _;
use std::process::{Command, Stdio};

fn lthlang(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lthlang")).args(args).output().unwrap()
}

const MESSY: &str = "model net = resnet_tiny {classes=4,width=8} // tiny\n\n\n\ndataset d = shapes {\n}\n";
const TIDY: &str = "model net = resnet_tiny { classes = 4  width = 8 }  // tiny\n\ndataset d = shapes {}\n";

#[test]
fn fmt_rewrites_in_place_and_check_reports_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.lth");
    std::fs::write(&file, MESSY).unwrap();
    let file = file.to_str().unwrap();

    let check = lthlang(&["fmt", "--check", file]);
    assert_eq!(check.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), file, "--check lists the file");
    assert_eq!(std::fs::read_to_string(file).unwrap(), MESSY, "--check writes nothing");

    assert_eq!(lthlang(&["fmt", file]).status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(file).unwrap(), TIDY);
    assert_eq!(lthlang(&["fmt", "--check", file]).status.code(), Some(0));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
}

#[test]
fn fmt_reads_stdin_with_a_dash() {
    let mut child =
        Command::new(env!("CARGO_BIN_EXE_lthlang")).args(["fmt", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(MESSY.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), TIDY);
}

#[test]
fn fmt_leaves_a_file_with_a_syntax_error_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.lth");
    std::fs::write(&file, "model net = resnet_tiny { classes = }\n").unwrap();
    let output = lthlang(&["fmt", "--colour", "never", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lth::syntax::unexpected") && stderr.contains("not formatted"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "model net = resnet_tiny { classes = }\n");
}

#[test]
fn completions_for_each_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let output = lthlang(&["completions", shell]);
        assert_eq!(output.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        for command in ["check", "plan", "fmt", "lsp", "completions"] {
            assert!(script.contains(command), "{shell} completion lacks `{command}`");
        }
    }
    // The bash script is valid bash.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("lthlang.bash");
    std::fs::write(&script, lthlang(&["completions", "bash"]).stdout).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&script).status().unwrap();
    assert!(syntax.success());
}
