//! Every diagnostic, as a user sees it: `lthlang check --colour never FILE` on one small failing
//! file per code in `tests/diagnostics/`, its whole stderr snapshotted. The binary runs inside that
//! folder with a relative file name, so every path it prints is stable.
//!
//! A new code in `src/check/codes.rs` needs a file here; `every_code_has_a_file` says which.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The variable `env_unset.lth` reads; removed from the child's environment to be sure.
const UNSET_VARIABLE: &str = "LTHLANG_SURELY_UNSET_ROOT";

fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("diagnostics")
}

fn lthlang(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lthlang"))
        .args(args)
        .current_dir(folder())
        .env_remove(UNSET_VARIABLE)
        .output()
        .expect("the lthlang binary runs")
}

/// Runs `check` on one file of the folder: (exit status, stderr).
fn check(file: &str) -> (i32, String) {
    assert!(folder().join(file).is_file(), "tests/diagnostics/{file} is missing");
    let output = lthlang(&["check", "--colour", "never", file]);
    let stderr = String::from_utf8(output.stderr).expect("stderr is UTF-8");
    assert!(!stderr.contains("panicked"), "`lthlang check {file}` panicked:\n{stderr}");
    assert!(output.stdout.is_empty(), "`check` prints nothing on stdout");
    (output.status.code().expect("lthlang exits with a status"), stderr)
}

/// `diagnostic!(file_stem, "code", exit status)`: the file reports `code`, exits with the status,
/// and its stderr matches the snapshot `diagnostics__<file_stem>.snap`.
macro_rules! diagnostic {
    ($name:ident, $code:expr, $status:expr) => {
        #[test]
        fn $name() {
            let (status, stderr) = check(concat!(stringify!($name), ".lth"));
            insta::assert_snapshot!(stringify!($name), stderr);
            assert!(stderr.lines().any(|l| l.trim() == $code), "expected the code {} in:\n{stderr}", $code);
            assert_eq!(status, $status, "exit status of `check {}.lth`; stderr:\n{stderr}", stringify!($name));
        }
    };
}

diagnostic!(unknown_module, "lth::check::unknown_module", 1);
diagnostic!(unknown_name, "lth::check::unknown_name", 1);
diagnostic!(unknown_method, "lth::check::unknown_method", 1);
diagnostic!(unknown_field, "lth::check::unknown_field", 1);
diagnostic!(unknown_word, "lth::check::unknown_word", 1);
diagnostic!(unknown_member, "lth::check::unknown_member", 1);
diagnostic!(unknown_function, "lth::check::unknown_function", 1);
diagnostic!(duplicate_name, "lth::check::duplicate_name", 1);
diagnostic!(duplicate_field, "lth::check::duplicate_field", 1);
diagnostic!(missing_field, "lth::check::missing_field", 1);
diagnostic!(type_mismatch, "lth::check::type_mismatch", 1);
diagnostic!(out_of_range, "lth::check::out_of_range", 1);
diagnostic!(bad_argument, "lth::check::bad_argument", 1);
diagnostic!(env_unset, "lth::check::env_unset", 1);
diagnostic!(missing_path, "lth::check::missing_path", 1);
diagnostic!(cycle, "lth::check::cycle", 1);
diagnostic!(unknown_layer, "lth::check::unknown_layer", 1);
diagnostic!(layer_not_convolutional, "lth::check::layer_not_convolutional", 1);
diagnostic!(no_concept_labels, "lth::check::no_concept_labels", 1);
diagnostic!(sparsity_unreached, "lth::check::sparsity_unreached", 1);
diagnostic!(tcav_before_head, "lth::check::tcav_before_head", 0);
diagnostic!(tcav_few_runs, "lth::check::tcav_few_runs", 0);
diagnostic!(field_without_effect, "lth::check::field_without_effect", 0);
diagnostic!(reduced_precision_on_cpu, "lth::check::reduced_precision_on_cpu", 0);
diagnostic!(tcav_unlabelled_bank, "lth::check::tcav_unlabelled_bank", 1);
diagnostic!(tcav_bank_mismatch, "lth::check::tcav_bank_mismatch", 1);
diagnostic!(features_mismatch, "lth::check::features_mismatch", 1);
diagnostic!(empty_split, "lth::check::empty_split", 1);
diagnostic!(mixed_series, "lth::check::mixed_series", 1);
diagnostic!(image_too_small, "lth::check::image_too_small", 1);
diagnostic!(normalize_untrained, "lth::check::normalize_untrained", 1);
diagnostic!(single_image_batch, "lth::check::single_image_batch", 1);
diagnostic!(nothing_declared, "lth::check::nothing_declared", 0);
diagnostic!(reserved_flag, "lth::check::reserved_flag", 1);
diagnostic!(unexpected, "lth::syntax::unexpected", 1);
diagnostic!(number_out_of_range, "lth::syntax::number_out_of_range", 1);

/// Slurm site settings come from `lthlang.toml` beside the file or in the user's config folder
/// (here `site-config/`, relative so the path shown is stable); `check` points into the TOML.
#[test]
fn site_settings() {
    let output = Command::new(env!("CARGO_BIN_EXE_lthlang"))
        .args(["check", "--colour", "never", "site_settings.lth"])
        .current_dir(folder())
        .env("XDG_CONFIG_HOME", "site-config")
        .output()
        .expect("the lthlang binary runs");
    let stderr = String::from_utf8(output.stderr).expect("stderr is UTF-8");
    insta::assert_snapshot!("site_settings", stderr);
    assert!(stderr.lines().any(|l| l.trim() == "lth::check::site_settings"), "{stderr}");
    assert_eq!(output.status.code(), Some(1));
    // Without the settings the same file is fine.
    assert_eq!(check("site_settings.lth").0, 0);
}

/// Every code the checker can emit has a file here (and so a test above).
#[test]
fn every_code_has_a_file() {
    let codes = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/check/codes.rs")).expect("src/check/codes.rs");
    let names: Vec<&str> = codes.split('"').filter_map(|piece| piece.strip_prefix("lth::check::")).collect();
    assert!(names.len() >= 20, "codes.rs lists its codes as \"lth::check::...\" strings; found {names:?}");
    let missing: Vec<&&str> = names.iter().filter(|name| !folder().join(format!("{name}.lth")).is_file()).collect();
    assert!(missing.is_empty(), "codes without a file in tests/diagnostics/: {missing:?}");
}

/// One file with several problems: all are reported, sorted by position, and counted.
#[test]
fn several_problems_are_all_reported_in_order() {
    let (status, stderr) = check("several.lth");
    insta::assert_snapshot!("several", stderr);
    assert_eq!(status, 1);
    // The location miette prints first for each diagnostic is its primary label's.
    let mut locations = Vec::new();
    let mut expect_location = false;
    for line in stderr.lines() {
        if line.starts_with("lth::") {
            expect_location = true;
        } else if let (true, Some(at)) = (expect_location, line.split_once("[several.lth:")) {
            let (line_no, column) = at.1.trim_end_matches(']').split_once(':').expect("line:column");
            locations.push((line_no.parse::<u32>().expect("line"), column.parse::<u32>().expect("column")));
            expect_location = false;
        }
    }
    assert_eq!(locations.len(), 6, "six diagnostics in:\n{stderr}");
    assert!(locations.windows(2).all(|w| w[0] <= w[1]), "not sorted by position: {locations:?}");
    assert!(stderr.trim_end().ends_with("several.lth: failed (6 errors, 0 warnings)"), "{stderr}");
}

#[test]
fn a_file_that_cannot_be_read_is_a_usage_error() {
    let output = lthlang(&["check", "--colour", "never", "no_such_file.lth"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot read `no_such_file.lth`"), "{stderr}");
}

#[test]
fn check_without_a_file_is_a_usage_error() {
    let output = lthlang(&["check"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("Usage"), "{stderr}");
}

/// Several files: the worst status wins, and each file gets its own summary line.
#[test]
fn checking_several_files_reports_each() {
    let output = lthlang(&["check", "--colour", "never", "tcav_before_head.lth", "unknown_name.lth"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("tcav_before_head.lth: ok (0 errors, 1 warning)"), "{stderr}");
    assert!(stderr.contains("unknown_name.lth: failed (1 error, 0 warnings)"), "{stderr}");
}

/// A rejected value is reported once and feeds no later rule: no `sparsity_unreached` against
/// the default rate the user never wrote.
#[test]
fn a_rejected_value_feeds_no_later_rule() {
    let (status, stderr) = check("rejected_value.lth");
    insta::assert_snapshot!("rejected_value", stderr);
    assert_eq!(status, 1);
    assert!(stderr.contains("lth::check::out_of_range"), "{stderr}");
    assert!(!stderr.contains("sparsity_unreached"), "{stderr}");
    assert!(stderr.trim_end().ends_with("failed (1 error, 0 warnings)"), "{stderr}");
}

/// Editors on Windows start UTF-8 files with a byte-order mark; it is no character of the file.
#[test]
fn a_byte_order_mark_is_accepted() {
    let (status, stderr) = check("byte_order_mark.lth");
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(stderr.trim(), "byte_order_mark.lth: ok (0 errors, 0 warnings)");
}
