//! Everything lthlang ships checks clean: each experiment in `experiments/` and each stdlib module
//! in `stdlib/`. The CUB-200, HAM10000 and Derm7pt experiments read their data folders from
//! environment variables; the tests point those at tiny fixtures laid out as the datasets are
//! distributed (the entries the checker requires are the `contains` lists of
//! `src/kinds/dataset.rs`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DATA_VARIABLES: [&str; 3] = ["CUB_ROOT", "HAM10000_ROOT", "DERM7PT_ROOT"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `lthlang check --colour never FILE` from the repository root, with exactly the given data
/// variables set (the others removed, so the caller's environment cannot leak in).
fn check(file: &Path, variables: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lthlang"));
    command.args(["check", "--colour", "never"]).arg(file).current_dir(root());
    for name in DATA_VARIABLES {
        command.env_remove(name);
    }
    for (name, value) in variables {
        command.env(name, value);
    }
    command.output().expect("the lthlang binary runs")
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().expect("a parent folder")).expect("create fixture folder");
    fs::write(path, text).expect("write fixture file");
}

/// `CUB_200_2011/` as in the published archive: index files, class list and one image.
fn cub_fixture(base: &Path) -> PathBuf {
    let root = base.join("CUB_200_2011");
    let image = "001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg";
    write(&root.join("images.txt"), &format!("1 {image}\n"));
    write(&root.join("image_class_labels.txt"), "1 1\n");
    write(&root.join("train_test_split.txt"), "1 1\n");
    write(&root.join("classes.txt"), "1 001.Black_footed_Albatross\n");
    write(&root.join("bounding_boxes.txt"), "1 60.0 27.0 325.0 304.0\n");
    write(&root.join("attributes/image_attribute_labels.txt"), "1 1 0 3 27.7\n");
    write(&root.join("images").join(image), "");
    root
}

/// The HAM10000 release: the metadata table beside its two image folders.
fn ham10000_fixture(base: &Path) -> PathBuf {
    let root = base.join("HAM10000");
    write(
        &root.join("HAM10000_metadata.csv"),
        "lesion_id,image_id,dx,dx_type,age,sex,localization\nHAM_0000118,ISIC_0027419,bkl,histo,80.0,male,scalp\n",
    );
    write(&root.join("HAM10000_images_part_1/ISIC_0027419.jpg"), "");
    fs::create_dir_all(root.join("HAM10000_images_part_2")).expect("create fixture folder");
    root
}

/// The Derm7pt release: `meta/meta.csv` and the `images/` tree.
fn derm7pt_fixture(base: &Path) -> PathBuf {
    let root = base.join("release_v0");
    write(&root.join("meta/meta.csv"), "case_num,diagnosis,pigment_network,derm\n1,basal cell carcinoma,absent,Aaa/Aal002.jpg\n");
    write(&root.join("meta/train_indexes.csv"), "indexes\n0\n");
    write(&root.join("images/Aaa/Aal002.jpg"), "");
    root
}

fn shipped_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for folder in ["experiments", "stdlib"] {
        for entry in fs::read_dir(root().join(folder)).expect("read a shipped folder") {
            let path = entry.expect("a folder entry").path();
            if path.extension().is_some_and(|e| e == "lth") {
                files.push(path.strip_prefix(root()).expect("inside the repository").to_path_buf());
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_shipped_file_checks_clean() {
    let data = tempfile::tempdir().expect("a temporary folder");
    let (cub, ham, derm) = (cub_fixture(data.path()), ham10000_fixture(data.path()), derm7pt_fixture(data.path()));
    let variables = [("CUB_ROOT", cub.as_path()), ("HAM10000_ROOT", ham.as_path()), ("DERM7PT_ROOT", derm.as_path())];
    let files = shipped_files();
    for expected in
        ["experiments/quickstart.lth", "experiments/cub200_resnet50.lth", "experiments/ham10000_inception_v3.lth", "stdlib/datasets.lth"]
    {
        assert!(files.contains(&PathBuf::from(expected)), "{expected} is shipped");
    }
    let mut failures = Vec::new();
    for file in &files {
        let output = check(file, &variables);
        if output.status.code() != Some(0) {
            failures.push(format!("{}: exit {:?}\n{}", file.display(), output.status.code(), String::from_utf8_lossy(&output.stderr)));
        }
    }
    assert!(failures.is_empty(), "shipped files that do not check:\n{}", failures.join("\n"));
}

#[test]
fn the_cub_experiment_needs_cub_root() {
    let output = check(Path::new("experiments/cub200_resnet50.lth"), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lth::check::env_unset"), "{stderr}");
    assert!(stderr.contains("`CUB_ROOT`"), "{stderr}");
    assert!(stderr.contains("export CUB_ROOT="), "the help says how to set it:\n{stderr}");
}

/// A CUB_ROOT that exists but is not the distributed layout is caught before anything runs.
#[test]
fn the_cub_experiment_names_what_cub_root_lacks() {
    let data = tempfile::tempdir().expect("a temporary folder");
    let cub = cub_fixture(data.path());
    fs::remove_file(cub.join("train_test_split.txt")).expect("remove a fixture file");
    let output = check(Path::new("experiments/cub200_resnet50.lth"), &[("CUB_ROOT", &cub)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lth::check::missing_path"), "{stderr}");
    // The message holds the temporary folder's path and may wrap, so look for its words.
    for words in ["(from `CUB_ROOT`)", "lacks", "`train_test_split.txt`"] {
        assert!(stderr.contains(words), "expected {words} in:\n{stderr}");
    }
}
