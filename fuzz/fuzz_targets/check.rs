//! Arbitrary text through the parser, the checker and the planner: nothing may panic, a file
//! checks clean exactly when no error is reported, and every diagnostic renders.
//!
//! Bytes that are not UTF-8 are replaced (U+FFFD) rather than skipped, so that every input the
//! fuzzer mutates from the seed corpus still reaches the parser.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lthlang::diagnostic::{render, Style};
use lthlang::source::{Origin, Sources};
use std::path::PathBuf;
use std::sync::Once;

/// Points CUB_ROOT, HAM10000_ROOT and DERM7PT_ROOT at folders in each dataset's published layout,
/// so that mutants of the shipped experiments can check clean and reach the planner.
fn fixtures() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let root = std::env::temp_dir().join("lthlang-fuzz-fixtures");
        let layouts: [(&str, &str, &[&str]); 3] = [
            ("CUB_ROOT", "CUB_200_2011", &["images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt", "images"]),
            ("HAM10000_ROOT", "HAM10000", &["HAM10000_metadata.csv"]),
            ("DERM7PT_ROOT", "release_v0", &["meta/meta.csv", "images"]),
        ];
        for (var, folder, entries) in layouts {
            let dir = root.join(folder);
            for entry in entries {
                let path = dir.join(entry);
                if PathBuf::from(entry).extension().is_some() {
                    let _ = std::fs::create_dir_all(path.parent().unwrap_or(&dir));
                    let _ = std::fs::write(&path, "");
                } else {
                    let _ = std::fs::create_dir_all(&path);
                }
            }
            // The fuzzer runs the target on one thread; nothing reads the environment meanwhile.
            std::env::set_var(var, &dir);
        }
    });
}

fuzz_target!(|data: &[u8]| {
    fixtures();
    let text = String::from_utf8_lossy(data);
    let mut sources = Sources::default();
    let id = sources.add(Origin::File(PathBuf::from("fuzz/input.lth")), "fuzz/input.lth".to_owned(), text.as_ref());
    let checked = lthlang::check::check(&mut sources, id);
    for diagnostic in &checked.diagnostics {
        let _ = render(diagnostic, &sources, Style::PLAIN);
    }
    let _ = lthlang::diagnostic::summary(&checked.diagnostics);
    match &checked.program {
        Some(program) => {
            assert!(!checked.has_errors(), "a program came back with errors");
            let plan = lthlang::plan::plan(program);
            let mut ids = std::collections::HashSet::new();
            for node in &plan.nodes {
                assert!(ids.insert(node.id.as_str()), "the plan holds node `{}` twice", node.id);
            }
            for node in &plan.nodes {
                for input in &node.inputs {
                    assert!(ids.contains(input.as_str()), "node `{}` reads `{input}`, which the plan lacks", node.id);
                }
            }
            let _ = lthlang::plan::to_table(&plan);
            let _ = lthlang::plan::to_dot(&plan);
            let _ = lthlang::plan::to_mermaid(&plan);
        }
        None => assert!(checked.has_errors(), "no program and no error diagnostic"),
    }
});
