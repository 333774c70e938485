//! Mutation testing of the checker: every shipped `.lth` file (experiments and stdlib, read at test
//! time) is mutated — characters deleted, inserted and swapped, identifiers renamed or misspelt,
//! numbers replaced by huge, negative, zero, fractional and percentage values — and each mutant is
//! checked. The checker must never panic; it either yields a program with no error diagnostics or
//! reports at least one error; every diagnostic renders; every clean program plans.
//!
//! Most cases drive the library in-process; a smaller number drive the `lthlang` binary and assert
//! that it exits with 0 or 1, never 101 (a panic) or a signal.
//!
//! `MUTATION_CASES` and `MUTATION_BINARY_CASES` override the number of cases.

use lthlang::check::{self, Checked};
use lthlang::diagnostic::{render, Style};
use lthlang::kinds::Category;
use lthlang::plan;
use lthlang::source::{Origin, Sources};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// Fixtures: the shipped files, and dataset folders in their published layout.

struct Fixture {
    /// Keeps the dataset folders alive for the whole test binary.
    _dir: tempfile::TempDir,
    /// `(variable, folder)` for the datasets the shipped experiments read.
    env: Vec<(&'static str, PathBuf)>,
    /// `(path, text)` of every shipped file.
    files: Vec<(PathBuf, String)>,
    /// Identifier-like words: from the shipped files and the kinds registry.
    vocabulary: Vec<String>,
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Creates `root` with the entries a dataset's `contains` list names: a name with no extension is
/// a folder, anything else an empty file.
fn layout(root: &Path, entries: &[&str]) {
    std::fs::create_dir_all(root).unwrap();
    for entry in entries {
        let path = root.join(entry);
        if Path::new(entry).extension().is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "").unwrap();
        } else {
            std::fs::create_dir_all(&path).unwrap();
        }
    }
}

fn shipped_files() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for folder in ["experiments", "stdlib"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(manifest_dir().join(folder))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "lth"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            files.push((path, text));
        }
    }
    assert!(files.len() >= 8, "expected the shipped experiments and stdlib modules, found {}", files.len());
    files
}

fn identifiers(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push((start, i));
        } else if c.is_ascii_digit() {
            // Skip numbers so that `1e4` does not yield the identifier `e4`.
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Numeric literals as the grammar writes them: `-?digits(.digits)?(e[+-]?digits)?%?`, not part
/// of an identifier (`resnet50`) and not inside a range's dots.
fn numbers(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let digits = |mut i: usize| {
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let after_word = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if after_word && (c.is_ascii_digit() || c.is_ascii_alphabetic() || c == b'_') {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i;
        if bytes[j] == b'-' {
            j += 1;
        }
        if j < bytes.len() && bytes[j].is_ascii_digit() {
            j = digits(j);
            if j + 1 < bytes.len() && bytes[j] == b'.' && bytes[j + 1].is_ascii_digit() {
                j = digits(j + 1);
            }
            if j < bytes.len() && (bytes[j] == b'e' || bytes[j] == b'E') {
                let mut k = j + 1;
                if k < bytes.len() && (bytes[k] == b'+' || bytes[k] == b'-') {
                    k += 1;
                }
                if k < bytes.len() && bytes[k].is_ascii_digit() {
                    j = digits(k);
                }
            }
            if j < bytes.len() && bytes[j] == b'%' {
                j += 1;
            }
            out.push((start, j));
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let folders =
            [("CUB_ROOT", "CUB_200_2011", "cub200"), ("HAM10000_ROOT", "HAM10000", "ham10000"), ("DERM7PT_ROOT", "release_v0", "derm7pt")];
        let mut env = Vec::new();
        for (var, folder, method) in folders {
            let root = dir.path().join(folder);
            let method = Category::Dataset.method(method).unwrap();
            let spec = method.field("root").unwrap();
            let lthlang::kinds::Ty::Dir { contains } = spec.ty else { panic!("`{}` root is not a folder", method.name) };
            layout(&root, contains);
            env.push((var, root));
        }
        // Every test reaches this before it checks anything, and the OnceLock makes the others
        // wait, so no thread reads the environment while it is written.
        for (var, root) in &env {
            std::env::set_var(var, root);
        }
        let files = shipped_files();
        let mut vocabulary: BTreeSet<String> = BTreeSet::new();
        for (_, text) in &files {
            for (s, e) in identifiers(text) {
                vocabulary.insert(text[s..e].to_owned());
            }
        }
        for category in Category::ALL {
            vocabulary.insert(category.name().to_owned());
            for method in category.methods() {
                vocabulary.insert(method.name.to_owned());
                vocabulary.extend(method.fields.iter().map(|f| f.name.to_owned()));
            }
        }
        vocabulary.extend(
            [
                "use",
                "preset",
                "experiment",
                "none",
                "true",
                "false",
                "std",
                "env",
                "file",
                "step",
                "epoch",
                "round",
                "cuda",
                "top_iou",
                "sample",
            ]
            .map(String::from),
        );
        Fixture { _dir: dir, env, files, vocabulary: vocabulary.into_iter().collect() }
    })
}

// ---------------------------------------------------------------------------------------------
// Checking one text in-process.

/// Checks `text` as if it were the file at `path`; asserts the checker's contract and returns
/// whether it checked clean.
fn check_text(path: &Path, text: &str) -> bool {
    check_codes(path, text).is_none()
}

/// As [`check_text`]; returns the codes of the error diagnostics, or None when it checked clean.
fn check_codes(path: &Path, text: &str) -> Option<Vec<&'static str>> {
    let mut sources = Sources::default();
    let id = sources.add(Origin::File(path.to_path_buf()), path.display().to_string(), text.to_owned());
    let checked: Checked = check::check(&mut sources, id);
    for d in &checked.diagnostics {
        assert!(!d.code.is_empty() && !d.message.is_empty(), "diagnostic without code or message: {d:?}");
        for label in std::iter::once(&d.primary).chain(&d.secondary) {
            let source = sources.try_get(label.span.source).unwrap_or_else(|| panic!("label in an unknown source: {d:?}"));
            let range = label.span.range();
            assert!(
                source.text.get(range.clone()).is_some(),
                "label span {range:?} is not a char range of `{}` ({} bytes): {d:?}",
                source.name,
                source.text.len()
            );
        }
        let plain = render(d, &sources, Style::PLAIN);
        assert!(plain.contains(d.code), "rendered diagnostic lacks its code `{}`:\n{plain}", d.code);
        let _ = render(d, &sources, Style { colour: true, width: 100 });
    }
    let _ = lthlang::diagnostic::summary(&checked.diagnostics);
    match &checked.program {
        Some(program) => {
            assert!(!checked.has_errors(), "a program came back with errors: {:?}", checked.diagnostics);
            let planned = plan::plan(program);
            let mut ids = BTreeSet::new();
            for node in &planned.nodes {
                assert!(ids.insert(node.id.as_str()), "the plan holds node `{}` twice", node.id);
            }
            for node in &planned.nodes {
                for input in &node.inputs {
                    assert!(ids.contains(input.as_str()), "node `{}` reads `{input}`, which the plan lacks", node.id);
                }
            }
            let _ = plan::to_table(&planned);
            let _ = plan::to_dot(&planned);
            let _ = plan::to_mermaid(&planned);
            let _ = serde_json::to_string(&planned.nodes).unwrap();
            None
        }
        None => {
            assert!(checked.has_errors(), "no program and no error diagnostic; diagnostics: {:?}", checked.diagnostics);
            Some(checked.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.code).collect())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations.

#[derive(Clone, Debug)]
enum Typo {
    Drop(Index),
    Double(Index),
    SwapAdjacent(Index),
    Replace(Index, char),
    Append(char),
    Case,
    Truncate(Index),
}

#[derive(Clone, Debug)]
enum Rename {
    /// Another word from the shipped files or the kinds registry.
    Vocabulary(Index),
    Typo(Typo),
    Fresh(String),
}

#[derive(Clone, Debug)]
enum Mutation {
    DeleteChar(Index),
    DeleteRange(Index, usize),
    InsertChar(Index, char),
    InsertText(Index, &'static str),
    SwapAdjacent(Index),
    SwapChars(Index, Index),
    Rename(Index, Rename),
    Renumber(Index, String),
    DuplicateLine(Index),
    DeleteLine(Index),
}

/// Characters with a meaning in the grammar, weighted above arbitrary Unicode.
const INTERESTING: &[char] = &[
    '{', '}', '[', ']', '(', ')', '=', ',', ';', '.', '"', '%', '-', '_', '\n', ' ', '\t', '/', '*', '#', '\\', 'e', 'E', '0', '1', '9',
    'a', 'z', 'é', '✓', '\u{0}', '\u{200b}', '\r',
];

/// Fragments of syntax that make structurally interesting mutants.
const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "{ }",
    "[]",
    "[",
    "]",
    "()",
    "= ",
    " = x",
    "..",
    "..=",
    "0..5",
    "5..0",
    "0..=1000",
    ".train",
    ".classes",
    ".concepts",
    ".sample(16)",
    ".sample(0, seed = -1)",
    "round(300)",
    "epoch(99999)",
    "top_iou(0%)",
    "env(\"NO_SUCH_VARIABLE_X\")",
    "env()",
    "file(\"missing.safetensors\")",
    "file(\"\")",
    "\"\"",
    "\"unterminated",
    "\"a\\nb\\\"\"",
    "// comment\n",
    "/* block */",
    "/*",
    "use std.models\n",
    "use std\n",
    "use std.nothing.here.more\n",
    "experiment { seeds = 0..=3 }\n",
    "experiment { }\n",
    "experiment { device = cuda(1) }\n",
    "preset ",
    "preset train p = sgd { lr = 0.5 }\n",
    "preset prune loop = loop {}\n",
    "prune again = imp { from = dense rounds = 200 }\n",
    "train t = t { }\n",
    "embed e = pooled { of = e layer = \"x\" data = e }\n",
    "dataset d = shapes\n",
    "model m = torchscript { }\n",
    "compare c = compare { at = [50%] }\n",
    "report r = json { include = [r] }\n",
    " { top = 3 } ",
    "none",
    "true",
    "\u{feff}",
    "ñ",
    "😀",
];

/// Replacement numbers: boundaries of the registry's ranges, overflow, signs, floats, shares.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "7",
    "14",
    "199",
    "200",
    "201",
    "1000",
    "2048",
    "2049",
    "100000",
    "1000000",
    "1_000_000",
    "00",
    "0_",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999999999999999",
    "0.0",
    "-0.0",
    "0.5",
    "1.0",
    "1.5",
    "3.14159",
    "1e-4",
    "1e4",
    "1E+2",
    "1e308",
    "1e309",
    "-1e309",
    "1e-320",
    "0e0",
    "0%",
    "1%",
    "0.1%",
    "0.001%",
    "22.9%",
    "23%",
    "50%",
    "99.99999999999999999%",
    "100%",
    "100.0%",
    "100.0001%",
    "101%",
    "-10%",
    "1000000000000000000000000000000%",
    "0..15",
    "0..=3",
    "3..1",
    "-1..2",
    "0..9223372036854775807",
];

fn rename_strategy() -> impl Strategy<Value = Rename> {
    let typo = prop_oneof![
        any::<Index>().prop_map(Typo::Drop),
        any::<Index>().prop_map(Typo::Double),
        any::<Index>().prop_map(Typo::SwapAdjacent),
        (any::<Index>(), prop::char::range('a', 'z')).prop_map(|(i, c)| Typo::Replace(i, c)),
        prop::sample::select(vec!['s', '_', '2', 'x']).prop_map(Typo::Append),
        Just(Typo::Case),
        any::<Index>().prop_map(Typo::Truncate),
    ];
    prop_oneof![
        4 => any::<Index>().prop_map(Rename::Vocabulary),
        4 => typo.prop_map(Rename::Typo),
        1 => "[a-zA-Z_][a-zA-Z0-9_]{0,12}".prop_map(Rename::Fresh),
    ]
}

fn number_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(NUMBERS).prop_map(str::to_owned),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => (-1000i64..1000).prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|x| format!("{x:?}")),
        1 => (-200.0f64..200.0).prop_map(|x| format!("{x:.3}%")),
        1 => (0u32..40, 0u32..4).prop_map(|(r, places)| format!("{:.*}%", places as usize, 0.9f64.powi(r as i32) * 100.0)),
    ]
}

fn mutation_strategy() -> impl Strategy<Value = Mutation> {
    let character = prop_oneof![3 => prop::sample::select(INTERESTING), 1 => any::<char>()];
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::DeleteChar),
        1 => (any::<Index>(), 1usize..24).prop_map(|(i, n)| Mutation::DeleteRange(i, n)),
        2 => (any::<Index>(), character).prop_map(|(i, c)| Mutation::InsertChar(i, c)),
        1 => (any::<Index>(), prop::sample::select(FRAGMENTS)).prop_map(|(i, t)| Mutation::InsertText(i, t)),
        1 => any::<Index>().prop_map(Mutation::SwapAdjacent),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapChars(a, b)),
        4 => (any::<Index>(), rename_strategy()).prop_map(|(i, r)| Mutation::Rename(i, r)),
        4 => (any::<Index>(), number_strategy()).prop_map(|(i, n)| Mutation::Renumber(i, n)),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => any::<Index>().prop_map(Mutation::DeleteLine),
    ]
}

/// A mutant: which shipped file, and the mutations applied to it in order.
fn case_strategy() -> impl Strategy<Value = (Index, Vec<Mutation>)> {
    (any::<Index>(), prop::collection::vec(mutation_strategy(), 1..4))
}

fn misspell(word: &str, typo: &Typo) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    let n = chars.len();
    match typo {
        Typo::Drop(i) if n > 1 => {
            chars.remove(i.index(n));
        }
        Typo::Double(i) => {
            let i = i.index(n);
            chars.insert(i, chars[i]);
        }
        Typo::SwapAdjacent(i) if n > 1 => {
            let i = i.index(n - 1);
            chars.swap(i, i + 1);
        }
        Typo::Replace(i, c) => chars[i.index(n)] = *c,
        Typo::Append(c) => chars.push(*c),
        Typo::Case => {
            return if word.chars().any(|c| c.is_ascii_lowercase()) { word.to_ascii_uppercase() } else { word.to_ascii_lowercase() };
        }
        Typo::Truncate(i) if n > 1 => chars.truncate(1 + i.index(n - 1)),
        _ => chars.push('_'),
    }
    chars.into_iter().collect()
}

fn apply(text: &str, mutation: &Mutation, vocabulary: &[String]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    match mutation {
        Mutation::DeleteChar(i) if n > 0 => {
            chars.remove(i.index(n));
        }
        Mutation::DeleteRange(i, len) if n > 0 => {
            let start = i.index(n);
            chars.drain(start..(start + len).min(n));
        }
        Mutation::InsertChar(i, c) => chars.insert(i.index(n + 1), *c),
        Mutation::InsertText(i, fragment) => {
            let at = i.index(n + 1);
            chars.splice(at..at, fragment.chars());
        }
        Mutation::SwapAdjacent(i) if n > 1 => {
            let i = i.index(n - 1);
            chars.swap(i, i + 1);
        }
        Mutation::SwapChars(a, b) if n > 0 => chars.swap(a.index(n), b.index(n)),
        Mutation::Rename(i, rename) => {
            let words = identifiers(text);
            if words.is_empty() {
                return text.to_owned();
            }
            let (s, e) = words[i.index(words.len())];
            let replacement = match rename {
                Rename::Vocabulary(v) => vocabulary[v.index(vocabulary.len())].clone(),
                Rename::Typo(typo) => misspell(&text[s..e], typo),
                Rename::Fresh(word) => word.clone(),
            };
            return format!("{}{replacement}{}", &text[..s], &text[e..]);
        }
        Mutation::Renumber(i, number) => {
            let found = numbers(text);
            if found.is_empty() {
                return text.to_owned();
            }
            let (s, e) = found[i.index(found.len())];
            return format!("{}{number}{}", &text[..s], &text[e..]);
        }
        Mutation::DuplicateLine(i) | Mutation::DeleteLine(i) => {
            let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
            if lines.is_empty() {
                return text.to_owned();
            }
            let at = i.index(lines.len());
            if matches!(mutation, Mutation::DuplicateLine(_)) {
                let line = lines[at];
                lines.insert(at, line);
            } else {
                lines.remove(at);
            }
            return lines.concat();
        }
        _ => {}
    }
    chars.into_iter().collect()
}

fn mutant(file: &Index, mutations: &[Mutation]) -> (PathBuf, String) {
    let fixture = fixture();
    let (path, text) = &fixture.files[file.index(fixture.files.len())];
    let mut text = text.clone();
    for m in mutations {
        text = apply(&text, m, &fixture.vocabulary);
    }
    (path.clone(), text)
}

fn cases(var: &str, default: u32) -> u32 {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        // Regressions found here become plain #[test]s below; no files are written.
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(config(cases("MUTATION_CASES", 2000)))]

    #[test]
    fn mutants_check_without_panicking((file, mutations) in case_strategy()) {
        let (path, text) = mutant(&file, &mutations);
        check_text(&path, &text);
    }
}

proptest! {
    #![proptest_config(config(cases("MUTATION_BINARY_CASES", 40)))]

    #[test]
    fn binary_exits_0_or_1_on_mutants((file, mutations) in case_strategy(), command in 0u8..4) {
        let (path, text) = mutant(&file, &mutations);
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join(path.file_name().unwrap());
        std::fs::write(&copy, &text).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lthlang"));
        match command {
            0 | 1 => cmd.arg("check"),
            2 => cmd.args(["plan", "--json"]),
            _ => cmd.args(["graph", "--format", "mermaid"]),
        };
        cmd.arg(&copy).arg("--colour").arg(if command == 1 { "always" } else { "never" });
        for (var, root) in &fixture().env {
            cmd.env(var, root);
        }
        let output = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        prop_assert!(!stderr.contains("panicked"), "lthlang panicked on the mutant:\n{text}\n{stderr}");
        prop_assert!(matches!(output.status.code(), Some(0 | 1)), "lthlang exited with {:?} on the mutant:\n{text}\n{stderr}", output.status);
    }
}

// ---------------------------------------------------------------------------------------------
// Plain tests: the unmutated files, the mutation helpers, and regressions found by the above.

#[test]
fn shipped_files_check_clean_with_fixtures() {
    for (path, text) in &fixture().files {
        assert!(check_text(path, text), "{} does not check clean", path.display());
    }
}

#[test]
fn shipped_experiments_check_clean_through_the_binary() {
    let fixture = fixture();
    for (path, _) in fixture.files.iter().filter(|(p, _)| p.parent().is_some_and(|d| d.ends_with("experiments"))) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lthlang"));
        cmd.arg("check").arg(path);
        for (var, root) in &fixture.env {
            cmd.env(var, root);
        }
        let output = cmd.output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}: {}", path.display(), String::from_utf8_lossy(&output.stderr));
    }
}

#[test]
fn scanners_find_words_and_numbers() {
    let text = "prune t = imp { rounds = 14 rate = 10% } x = [100%, 72.9%, -3, 1e-4, 0..15] resnet50";
    let words: Vec<&str> = identifiers(text).into_iter().map(|(s, e)| &text[s..e]).collect();
    assert!(words.contains(&"resnet50") && words.contains(&"rounds") && !words.contains(&"e"));
    let found: Vec<&str> = numbers(text).into_iter().map(|(s, e)| &text[s..e]).collect();
    assert_eq!(found, ["14", "10%", "100%", "72.9%", "-3", "1e-4", "0", "15"]);
}

/// The mutants are worth checking only if they reach past the parser: a fixed sample must hold
/// clean mutants, syntax errors and errors from the checker proper.
#[test]
fn mutants_reach_every_phase() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]));
    let mut codes: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    let total = 400;
    for _ in 0..total {
        let (file, mutations) = case_strategy().new_tree(&mut runner).unwrap().current();
        let (path, text) = mutant(&file, &mutations);
        match check_codes(&path, &text) {
            None => *codes.entry("clean").or_default() += 1,
            Some(found) => {
                for code in found.into_iter().collect::<BTreeSet<_>>() {
                    *codes.entry(code).or_default() += 1;
                }
            }
        }
    }
    eprintln!("outcomes of {total} mutants: {codes:#?}");
    let syntax = codes.iter().filter(|(c, _)| c.starts_with("lth::syntax")).map(|(_, n)| n).sum::<usize>();
    let checker = codes.iter().filter(|(c, _)| c.starts_with("lth::check")).count();
    assert!(codes.get("clean").copied().unwrap_or(0) >= total / 20, "too few clean mutants: {codes:?}");
    assert!(syntax >= total / 20, "too few syntax errors: {codes:?}");
    assert!(checker >= 8, "mutants reach too few of the checker's diagnostics: {codes:?}");
}

/// Checks each regression input in-process and through the binary.
fn regression(text: &str) {
    let path = manifest_dir().join("experiments").join("regression.lth");
    check_text(&path, text);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("regression.lth");
    std::fs::write(&copy, text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lthlang"));
    cmd.arg("check").arg(&copy);
    for (var, root) in &fixture().env {
        cmd.env(var, root);
    }
    let output = cmd.output().unwrap();
    assert!(matches!(output.status.code(), Some(0 | 1)), "exit {:?}: {}", output.status, String::from_utf8_lossy(&output.stderr));
}

#[test]
fn regression_empty_and_blank_files() {
    regression("");
    regression("\n\n");
    regression("\u{feff}");
}

/// Checks `text` and returns the codes of its error diagnostics (empty when it checked clean).
fn error_codes(text: &str) -> Vec<&'static str> {
    fixture();
    check_codes(&manifest_dir().join("experiments").join("regression.lth"), text).unwrap_or_default()
}

fn nested(open: &str, middle: &str, close: &str, depth: usize) -> String {
    format!("compare c = compare {{ at = {}{middle}{} }}\n", open.repeat(depth), close.repeat(depth))
}

/// Deep nesting overflowed the stack (an abort, not even a panic) while lowering the parse tree to
/// the AST: about 700 nested lists in a debug build. A long `.member` chain, which pest parses
/// without recursion, overflowed it later, in the checker and in dropping the AST. Values now
/// nest at most 64 levels; deeper ones are one syntax error.
#[test]
fn regression_deep_nesting_is_a_diagnostic_not_a_stack_overflow() {
    const TOO_DEEP: &str = "lth::syntax::nesting_too_deep";
    for text in [
        nested("[", "", "]", 1000),
        nested("[", "", "]", 65),
        nested("x { a = ", "1", " }", 1500),
        nested("f(", "", ")", 1000),
        nested("round(", "1", ")", 200),
        format!("compare c = compare {{ at = x{} }}\n", ".b".repeat(200_000)),
        format!("explain c = gradcam {{ images = d{}.sample(1) }}\n", ".test".repeat(70)),
    ] {
        let codes = error_codes(&text);
        assert!(codes.contains(&TOO_DEEP) || codes == ["lth::syntax::unexpected"], "{codes:?} for {}", &text[..80]);
        regression(&text);
    }
    // pest's own stack guard answers first for nesting too deep for it to parse at all.
    regression(&nested("[", "", "]", 100_000));
    // Nesting within the bound is not a syntax error: these fail as the wrong type.
    for text in [nested("[", "", "]", 63), format!("compare c = compare {{ at = x{} }}\n", ".b".repeat(62))] {
        let codes = error_codes(&text);
        assert!(!codes.iter().any(|c| c.starts_with("lth::syntax")), "{codes:?}");
    }
}

/// `seeds = [1, 1]` checked clean and planned every seeded node twice under one id; `seeds = []`
/// checked clean and planned no seeded node at all.
#[test]
fn regression_seeds_must_be_distinct_and_present() {
    let quickstart = std::fs::read_to_string(manifest_dir().join("experiments/quickstart.lth")).unwrap();
    assert!(quickstart.contains("seeds  = [0]"));
    for (seeds, code) in
        [("[1, 1]", "lth::check::duplicate_name"), ("[0, 2, 0]", "lth::check::duplicate_name"), ("[]", "lth::check::out_of_range")]
    {
        let text = quickstart.replace("seeds  = [0]", &format!("seeds = {seeds}"));
        assert_eq!(error_codes(&text), [code], "seeds = {seeds}");
        regression(&text);
    }
    for seeds in ["[3, 1]", "0..=2", "7"] {
        let text = quickstart.replace("seeds  = [0]", &format!("seeds = {seeds}"));
        assert!(error_codes(&text).is_empty(), "seeds = {seeds}");
    }
}

// ---------------------------------------------------------------------------------------------
// `lthlang fmt` on the shipped files and on mutants: idempotent, and never a change of meaning.

/// What the checker makes of `text`, positions aside: for a clean program every stage's method
/// and resolved fields and every node's cache key; otherwise every diagnostic's code and message.
fn meaning(path: &Path, text: &str) -> String {
    use std::fmt::Write as _;
    let mut sources = Sources::default();
    let id = sources.add(Origin::File(path.to_path_buf()), path.display().to_string(), text.to_owned());
    let checked = check::check(&mut sources, id);
    let mut out = String::new();
    for d in &checked.diagnostics {
        let _ = writeln!(out, "{:?} {} {}", d.level, d.code, d.message);
    }
    if let Some(program) = &checked.program {
        let e = &program.experiment;
        let _ = writeln!(out, "experiment {} {:?} {:?}", e.name, e.seeds, e.device);
        for stage in &program.stages {
            let _ = writeln!(out, "{} {} = {}", stage.category.name(), stage.name, stage.method.name);
            for (name, field) in &stage.fields {
                let written = matches!(field.written, check::Written::Default);
                let _ = writeln!(out, "  {name} = {:?} {:?} default={written}", field.value, field.effect);
            }
        }
        let planned = plan::plan(program);
        for (id, fingerprint) in lthlang::cache::fingerprint::of_plan(program, &planned) {
            let _ = writeln!(out, "{id} {}", fingerprint.key());
        }
    }
    out
}

/// Formats `text`; if it parses, asserts that the layout is stable and that the meaning and the
/// comments survive. Returns whether it parsed.
fn format_preserves_meaning(path: &Path, text: &str) -> Result<bool, TestCaseError> {
    use lthlang::fmt::{self, Error};
    use lthlang::source::SourceId;
    let formatted = match fmt::format(SourceId(0), text) {
        Ok(formatted) => formatted,
        Err(Error::Syntax(_)) => return Ok(false),
        Err(Error::Internal(why)) => return Err(TestCaseError::fail(format!("fmt failed: {why} on:\n{text}"))),
    };
    let again = fmt::format(SourceId(0), &formatted).map_err(|e| TestCaseError::fail(format!("{e:?} on the formatted:\n{formatted}")))?;
    prop_assert_eq!(&again, &formatted, "not idempotent; the input was:\n{}", text);
    prop_assert_eq!(meaning(path, &formatted), meaning(path, text), "the meaning changed:\n{}\n---\n{}", text, formatted);
    let comments = |t: &str| {
        let mut found: Vec<String> = fmt::scan_comments(t).into_iter().map(|c| c.text).collect();
        found.sort();
        found
    };
    prop_assert_eq!(comments(&formatted), comments(text));
    Ok(true)
}

#[test]
fn fmt_is_idempotent_and_meaning_preserving_on_shipped_files() {
    for (path, text) in &fixture().files {
        assert!(format_preserves_meaning(path, text).unwrap(), "{} does not parse", path.display());
    }
}

#[test]
fn shipped_files_are_formatted() {
    for (path, text) in &fixture().files {
        let formatted = lthlang::fmt::format(lthlang::source::SourceId(0), text).unwrap();
        assert!(formatted == *text, "{} is not in the canonical layout; run `lthlang fmt {}`", path.display(), path.display());
    }
}

// 10,000 mutants in all (`FMT_MUTATION_CASES`), split in two so the test threads share them.
proptest! {
    #![proptest_config(config(cases("FMT_MUTATION_CASES", 10_000) / 2))]

    #[test]
    fn fmt_is_idempotent_and_meaning_preserving_on_mutants((file, mutations) in case_strategy()) {
        let (path, text) = mutant(&file, &mutations);
        format_preserves_meaning(&path, &text)?;
    }

    #[test]
    fn fmt_is_idempotent_and_meaning_preserving_on_more_mutants((file, mutations) in case_strategy()) {
        let (path, text) = mutant(&file, &mutations);
        format_preserves_meaning(&path, &text)?;
    }
}

// ---------------------------------------------------------------------------------------------
// The language server answers on any text: completion, hover and definition at many offsets of
// each mutant, document symbols and diagnostics, without a panic.

proptest! {
    #![proptest_config(config(cases("LSP_MUTATION_CASES", 1000)))]

    #[test]
    fn language_server_answers_on_mutants((file, mutations) in case_strategy(), step in 1usize..60) {
        let (_, text) = mutant(&file, &mutations);
        lthlang::lsp::exercise(&text, step.max(text.len() / 40));
    }
}
