//! Carries out one command line. Returns the process exit code: 0 clean (warnings allowed),
//! 1 problems in the input, 2 usage.

use crate::cache::fingerprint;
use crate::cache::store::{Store, CACHE_ENV};
use crate::check::{self, Program};
use crate::cli::{CacheArgs, Cli, Colour, Command, GraphFormat};
use crate::diagnostic::{summary, Style};
use crate::exec::{self, explain, run::Options};
use crate::plan;
use crate::report::console;
use crate::report::progress::{self, Progress};
use crate::report::{explained, run_folder};
use crate::source::Sources;
use std::collections::BTreeSet;
use std::io::IsTerminal as _;
use std::path::Path;
use std::path::PathBuf;

pub const EXIT_OK: u8 = 0;
pub const EXIT_INPUT: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
/// A run in which some node failed (the others completed and are cached).
pub const EXIT_FAILED: u8 = 3;

pub fn run(cli: &Cli) -> u8 {
    let style = style(cli.colour);
    match &cli.command {
        Command::Check { files } => {
            let mut worst = EXIT_OK;
            for file in files {
                let code = match load(file, style) {
                    Ok((_, _, checked)) => {
                        let status = if checked.has_errors() { "failed" } else { "ok" };
                        console::status(&format!("{}: {status} ({})", file.display(), summary(&checked.diagnostics)));
                        if checked.has_errors() {
                            EXIT_INPUT
                        } else {
                            EXIT_OK
                        }
                    }
                    Err(code) => code,
                };
                worst = worst.max(code);
            }
            worst
        }
        Command::Plan { file, json, explain: true, cache, force } => with_program(file, style, |program, sources| {
            let plan = plan::plan(program);
            let Some(store) = open_store(cache, Some(file)) else { return EXIT_USAGE };
            let fingerprints = fingerprint::of_plan(program, &plan);
            let force: BTreeSet<String> = force.iter().cloned().collect();
            let explained = explain::explain(program, &plan, &fingerprints, &store, &force);
            if *json {
                console::output(&format!("{}\n", explained::json(&plan, &explained)));
            } else {
                console::output(&explained::table(&plan, &explained, sources));
            }
            EXIT_OK
        }),
        Command::Plan { file, json, .. } => with_program(file, style, |program, _| {
            let plan = plan::plan(program);
            if *json {
                let text = serde_json::to_string_pretty(&plan.nodes).unwrap_or_default();
                console::output(&format!("{text}\n"));
            } else {
                console::output(&plan::to_table(&plan));
            }
            EXIT_OK
        }),
        Command::Graph { file, format } => with_program(file, style, |program, _| {
            let plan = plan::plan(program);
            console::output(&match format {
                GraphFormat::Dot => plan::to_dot(&plan),
                GraphFormat::Mermaid => plan::to_mermaid(&plan),
            });
            EXIT_OK
        }),
        Command::Run { file, cache, force, json, smoke } => {
            with_program(file, style, |program, sources| run_experiment(file, program, sources, cache, force, *json, *smoke))
        }
        Command::Report { file, cache, open } => {
            with_program(file, style, |program, sources| rerender(file, program, sources, cache, *open))
        }
        Command::Status { file, cache } => match open_store(cache, file.as_deref()) {
            Some(store) => match store.entries() {
                Ok(entries) => {
                    console::output(&run_folder::status_table(&store, &entries));
                    EXIT_OK
                }
                Err(e) => {
                    console::error_line(&format!("cannot read the cache `{}`: {e}", store.root().display()));
                    EXIT_USAGE
                }
            },
            None => EXIT_USAGE,
        },
        Command::Gc { files, cache, dry_run } => collect_garbage(files, cache, *dry_run, style),
    }
}

fn style(colour: Colour) -> Style {
    let colour = match colour {
        Colour::Always => true,
        Colour::Never => false,
        Colour::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let width = if colour { 100 } else { Style::PLAIN.width };
    Style { colour, width }
}

/// Reads and checks a file, printing its diagnostics. Err carries the exit code of a file that
/// could not be read.
fn load(file: &Path, style: Style) -> Result<(crate::source::SourceId, Sources, check::Checked), u8> {
    let mut sources = Sources::default();
    match check::check_path(&mut sources, file) {
        Ok((id, checked)) => {
            console::diagnostics(&checked.diagnostics, &sources, style);
            Ok((id, sources, checked))
        }
        Err(e) => {
            console::error_line(&format!("cannot read `{}`: {e}", file.display()));
            Err(EXIT_USAGE)
        }
    }
}

fn with_program(file: &Path, style: Style, body: impl FnOnce(&Program, &Sources) -> u8) -> u8 {
    match load(file, style) {
        Ok((_, sources, checked)) => match checked.program {
            Some(program) => body(&program, &sources),
            None => {
                console::status(&format!("{}: failed ({})", file.display(), summary(&checked.diagnostics)));
                EXIT_INPUT
            }
        },
        Err(code) => code,
    }
}

/// The cache folder: `--cache`, else `LTHLANG_CACHE`, else `.lth/cache` beside the experiment
/// (or in the current folder when there is none).
fn cache_root(args: &CacheArgs, file: Option<&Path>) -> PathBuf {
    if let Some(dir) = &args.cache {
        return dir.clone();
    }
    if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = file.and_then(Path::parent).filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    base.join(".lth").join("cache")
}

fn open_store(args: &CacheArgs, file: Option<&Path>) -> Option<Store> {
    let root = cache_root(args, file);
    match Store::open(&root) {
        Ok(store) => Some(store),
        Err(e) => {
            console::error_line(&format!("cannot open the cache `{}`: {e}", root.display()));
            None
        }
    }
}

/// `lthlang report`: reruns only the report stages, over a cache that must hold everything else.
fn rerender(file: &Path, program: &Program, sources: &Sources, cache: &CacheArgs, open: bool) -> u8 {
    let plan = plan::plan(program);
    let Some(store) = open_store(cache, Some(file)) else { return EXIT_USAGE };
    let fingerprints = fingerprint::of_plan(program, &plan);
    let missing: Vec<&str> = plan
        .nodes
        .iter()
        .zip(&fingerprints)
        .filter(|(n, (_, fp))| n.kind != crate::kinds::Category::Report && !store.contains(&fp.key()))
        .map(|(n, _)| n.id.as_str())
        .collect();
    let reports: Vec<String> =
        program.stages.iter().filter(|s| s.category == crate::kinds::Category::Report).map(|s| s.name.clone()).collect();
    if reports.is_empty() {
        console::error_line(&format!("{} declares no report stage", file.display()));
        return EXIT_INPUT;
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).copied().collect();
        let more = if missing.len() > 5 { format!(" and {} more", missing.len() - 5) } else { String::new() };
        console::error_line(&format!(
            "the cache lacks {} node(s) the report needs ({}{more}); run `lthlang run {}` first",
            missing.len(),
            shown.join(", "),
            file.display()
        ));
        return EXIT_FAILED;
    }
    let code = run_experiment(file, program, sources, cache, &reports, false, None);
    let html = run_folder::folder_of(file, &program.experiment.name).join("report.html");
    if code == EXIT_OK && open && html.exists() {
        let viewer = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
        if std::process::Command::new(viewer).arg(&html).spawn().is_err() {
            console::status(&format!("could not start `{viewer}`; open {} in a browser", html.display()));
        }
    }
    code
}

fn run_experiment(
    file: &Path,
    program: &Program,
    sources: &Sources,
    cache: &CacheArgs,
    force: &[String],
    json: bool,
    smoke: Option<u32>,
) -> u8 {
    let plan = plan::plan(program);
    let unknown: Vec<&String> = force.iter().filter(|f| program.stage(f).is_none()).collect();
    if let Some(name) = unknown.first() {
        console::error_line(&format!("--force names `{name}`, which is not a stage of `{}`", file.display()));
        return EXIT_USAGE;
    }
    let Some(store) = open_store(cache, Some(file)) else { return EXIT_USAGE };
    // A smoke run's results are not results: they live in a namespace of their own, per N, that
    // a real run never reads, and in a run folder of their own.
    let (store, folder) = match smoke {
        Some(n) => match Store::open(&store.root().join(format!("smoke-{n}"))) {
            Ok(s) => (s, run_folder::folder_of(file, &format!("{}-smoke", program.experiment.name))),
            Err(e) => {
                console::error_line(&format!("cannot open the smoke cache in `{}`: {e}", store.root().display()));
                return EXIT_USAGE;
            }
        },
        None => (store, run_folder::folder_of(file, &program.experiment.name)),
    };
    if let Err(e) = std::fs::create_dir_all(&folder) {
        console::error_line(&format!("cannot create the run folder `{}`: {e}", folder.display()));
        return EXIT_USAGE;
    }
    let started = std::time::Instant::now();
    let fingerprints = fingerprint::of_plan(program, &plan);
    let mut document = document(file, program, sources, &plan, &fingerprints);
    document.smoke = smoke;
    let options = Options {
        force: force.iter().cloned().collect(),
        worker: exec::worker::worker_path(),
        log: Some(folder.join("worker.log")),
        document,
        smoke,
    };
    let mode = if json {
        progress::Mode::Json
    } else if std::io::stderr().is_terminal() {
        progress::Mode::Bars
    } else {
        progress::Mode::Quiet
    };
    let mut display = Progress::new(mode);
    let outcome = exec::run::run(program, &plan, &fingerprints, &store, &options, &mut |event| display.observe(event));
    display.finish();
    let written = run_folder::write(&folder, program, &plan, &outcome, started.elapsed().as_secs_f64(), &store);
    if let Err(e) = &written {
        console::error_line(&format!("cannot write the run folder `{}`: {e}", folder.display()));
    }
    if !json {
        console::status(&run_folder::summary(&folder, &outcome, started.elapsed().as_secs_f64()));
    }
    if !outcome.failed().is_empty() {
        EXIT_FAILED
    } else if written.is_err() {
        EXIT_USAGE
    } else {
        EXIT_OK
    }
}

fn collect_garbage(files: &[PathBuf], cache: &CacheArgs, dry_run: bool, style: Style) -> u8 {
    let Some(store) = open_store(cache, files.first().map(PathBuf::as_path)) else { return EXIT_USAGE };
    let mut reachable = BTreeSet::new();
    for file in files {
        match load(file, style) {
            Ok((_, _, checked)) => match checked.program {
                Some(program) => {
                    let plan = plan::plan(&program);
                    reachable.extend(fingerprint::of_plan(&program, &plan).into_iter().map(|(_, fp)| fp.key()));
                }
                None => {
                    console::error_line(&format!(
                        "{} has errors; gc needs every experiment to check clean so it keeps what they use",
                        file.display()
                    ));
                    return EXIT_INPUT;
                }
            },
            Err(code) => return code,
        }
    }
    let entries = match store.entries() {
        Ok(e) => e,
        Err(e) => {
            console::error_line(&format!("cannot read the cache `{}`: {e}", store.root().display()));
            return EXIT_USAGE;
        }
    };
    let doomed: Vec<_> = entries.iter().filter(|e| !reachable.contains(&e.key)).collect();
    let bytes: u64 = doomed.iter().map(|e| e.bytes).sum();
    for entry in &doomed {
        let what =
            entry.fingerprint.as_ref().map_or_else(|| "unreadable fingerprint".to_owned(), |fp| format!("{} {}", fp.kind, fp.method));
        console::output(&format!(
            "{} {}  {what}  {}\n",
            if dry_run { "would delete" } else { "deleted" },
            &entry.key[..16.min(entry.key.len())],
            run_folder::bytes(entry.bytes)
        ));
        if !dry_run {
            if let Err(e) = store.discard(&entry.key) {
                console::error_line(&format!("cannot delete `{}`: {e}", entry.dir.display()));
                return EXIT_USAGE;
            }
        }
    }
    let verb = if dry_run { "would free" } else { "freed" };
    console::status(&format!("{} of {} entries unreachable; {verb} {}", doomed.len(), entries.len(), run_folder::bytes(bytes)));
    EXIT_OK
}

/// The report's view of the run: the experiment's own source text and every node's key.
fn document(
    file: &Path,
    program: &Program,
    sources: &Sources,
    plan: &plan::Plan,
    fingerprints: &[(String, crate::cache::Fingerprint)],
) -> crate::report::stage::Document {
    let text = sources
        .iter()
        .find(|s| matches!(&s.origin, crate::source::Origin::File(_)))
        .map(|s| s.text.to_string())
        .or_else(|| std::fs::read_to_string(file).ok())
        .unwrap_or_default();
    let nodes = plan
        .nodes
        .iter()
        .zip(fingerprints)
        .map(|(n, (_, fp))| (n.id.clone(), n.stage.clone(), n.kind, n.method.to_owned(), fp.key()))
        .collect();
    crate::report::stage::Document {
        experiment: program.experiment.name.clone(),
        source_name: file.display().to_string(),
        source_text: text,
        nodes,
        smoke: None,
    }
}
