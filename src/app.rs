//! Carries out one command line. Returns the process exit code (the README's "Exit codes"):
//! 0 success (warnings allowed), 1 problems in the input, 2 usage or environment (a path, the
//! cache, a flag), 3 some node failed, 4 nothing (or not enough) cached for what was asked,
//! 128 + N stopped by signal N (130 Ctrl-C, 143 SIGTERM).

use crate::cache::fingerprint;
use crate::cache::store::{Store, CACHE_ENV};
use crate::check::{self, Program};
use crate::cli::{CacheArgs, Cli, Colour, Command, DiagnosticFormat, GraphFormat};
use crate::diagnostic::{summary, Style};
use crate::exec::{self, explain, interrupt, run::Options};
use crate::plan;
use crate::report::console;
use crate::report::progress::{self, Progress};
use crate::report::run_summary::Summary;
use crate::report::{explained, json_diagnostics, run_folder};
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
/// What was asked needs results the cache does not hold yet (`report` before `run`).
pub const EXIT_NOT_CACHED: u8 = 4;

/// How output is shown, from the global flags.
#[derive(Clone, Copy)]
struct Ui {
    style: Style,
    verbose: bool,
    quiet: bool,
}

/// Where diagnostics go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Diagnostics {
    /// Rendered on stderr.
    Human,
    /// One JSON object per line on stdout (`check --format json`).
    JsonLines,
    /// Rendered on stderr, except that errors replace the output: `{"diagnostics": [...]}` on
    /// stdout, so stdout is always one JSON document (`plan --json`).
    JsonOnError,
}

/// Data folders must exist for commands that read them; the others look at the plan only.
const NEEDS_DATA: check::Options = check::Options { require_data: true, quiet_about_data: false };
const PLAN_ONLY: check::Options = check::Options { require_data: false, quiet_about_data: false };

pub fn run(cli: &Cli) -> u8 {
    let ui = Ui { style: style(cli.colour), verbose: cli.verbose, quiet: cli.quiet };
    console::set_quiet(cli.quiet);
    let style = ui.style;
    match &cli.command {
        Command::Check { files, format, no_data } => {
            let options = if *no_data { PLAN_ONLY } else { NEEDS_DATA };
            let shown = match format {
                DiagnosticFormat::Human => Diagnostics::Human,
                DiagnosticFormat::Json => Diagnostics::JsonLines,
            };
            let mut worst = EXIT_OK;
            for file in files {
                let code = match load(file, style, options, shown) {
                    Ok((_, _, checked)) => {
                        let status = if checked.has_errors() { "failed" } else { "ok" };
                        let name = if is_stdin(file) { "<stdin>".to_owned() } else { file.display().to_string() };
                        if shown == Diagnostics::JsonLines {
                            console::output(&json_diagnostics::checked_line(&name, &checked.diagnostics));
                        } else {
                            console::status(&format!("{name}: {status} ({})", summary(&checked.diagnostics)));
                        }
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
        // Explaining needs the real keys, hence the real dataset paths.
        Command::Plan { file, json, explain: true, cache, force } => with_program(file, style, NEEDS_DATA, *json, |program, sources| {
            let plan = plan::plan(program);
            let force = match valid_force(force, program, &plan, file) {
                Ok(f) => f,
                Err(code) => return code,
            };
            let store = match read_cache(cache, Some(file)) {
                Ok(Cache::Found(store)) => store,
                // An absent cache explains as an empty one: every node "not computed yet".
                Ok(Cache::NothingYet(root)) => Store::read_only(&root),
                Err(code) => return code,
            };
            let fingerprints = fingerprint::of_plan(program, &plan);
            let explained = explain::explain(program, &plan, &fingerprints, &store, &force);
            if *json {
                console::output(&format!("{}\n", explained::json(&plan, &explained)));
            } else {
                console::output(&explained::table(&plan, &explained, sources));
            }
            EXIT_OK
        }),
        Command::Plan { file, json, .. } => with_program(file, style, PLAN_ONLY, *json, |program, _| {
            let plan = plan::plan(program);
            if *json {
                let text = serde_json::to_string_pretty(&plan.nodes).unwrap_or_default();
                console::output(&format!("{text}\n"));
            } else {
                console::output(&plan::to_table(&plan));
            }
            EXIT_OK
        }),
        Command::Graph { file, format } => with_program(file, style, PLAN_ONLY, false, |program, _| {
            let plan = plan::plan(program);
            console::output(&match format {
                GraphFormat::Dot => plan::to_dot(&plan),
                GraphFormat::Mermaid => plan::to_mermaid(&plan),
            });
            EXIT_OK
        }),
        Command::Run { dry_run: true, file, .. } => {
            console::error_line(&format!(
                "`run` has no --dry-run; `lthlang plan --explain {}` lists what a run would compute and why",
                file.display()
            ));
            EXIT_USAGE
        }
        Command::Run { file, cache, force, json, executor, smoke, .. } => {
            with_program(file, style, NEEDS_DATA, false, |program, sources| {
                run_experiment(file, program, sources, cache, force, *json, executor, *smoke, ui)
            })
        }
        Command::Report { file, cache, open } => {
            with_program(file, style, NEEDS_DATA, false, |program, sources| rerender(file, program, sources, cache, *open, ui))
        }
        Command::Status { file, cache } => match read_cache(cache, file.as_deref()) {
            Ok(Cache::Found(store)) => match store.entries() {
                Ok(entries) => {
                    console::output(&run_folder::status_table(&store, &entries));
                    console::output(&exec::slurm::manage::status(&store));
                    EXIT_OK
                }
                Err(e) => {
                    console::error_line(&format!("cannot read the cache `{}`: {e}", store.root().display()));
                    EXIT_USAGE
                }
            },
            Ok(Cache::NothingYet(root)) => {
                console::output(&format!("nothing cached yet (no cache at {})\n", root.display()));
                EXIT_OK
            }
            Err(code) => code,
        },
        Command::Cancel { file, cache } => with_program(file, style, NEEDS_DATA, false, |program, _| {
            let Some(store) = writable_store(cache, Some(file)) else { return EXIT_USAGE };
            match exec::slurm::manage::cancel(&store, &program.experiment.name) {
                Ok(jobs) => {
                    for job in &jobs {
                        console::output(&format!("cancelled job {} ({})\n", job.job, job.node));
                    }
                    console::status(&format!("{} job(s) of `{}` cancelled", jobs.len(), program.experiment.name));
                    EXIT_OK
                }
                Err(e) => {
                    console::error_line(&e);
                    EXIT_USAGE
                }
            }
        }),
        Command::SlurmJob { request } => exec::slurm::job::run(request),
        Command::Gc { files, cache, dry_run } => collect_garbage(files, cache, *dry_run, style),
        Command::Doc { topic, markdown } => crate::doc::command(topic.as_deref(), *markdown),
        Command::Explain { code } => crate::doc::codes::command(code.as_deref()),
        Command::Fmt { files, check } => crate::fmt::command::run(files, *check, style),
        Command::Lsp => crate::lsp::serve(),
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut <Cli as clap::CommandFactory>::command(), "lthlang", &mut std::io::stdout());
            EXIT_OK
        }
    }
}

fn style(colour: Colour) -> Style {
    let colour = match colour {
        Colour::Always => true,
        Colour::Never => false,
        Colour::Auto => {
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        }
    };
    let width = if colour { 100 } else { Style::PLAIN.width };
    Style { colour, width }
}

/// The name `-` stands for standard input (`check -`).
fn is_stdin(file: &Path) -> bool {
    file.as_os_str() == "-"
}

/// Reads and checks a file, showing its diagnostics as `shown` says. Err carries the exit code of
/// a file that could not be read.
fn load(
    file: &Path,
    style: Style,
    options: check::Options,
    shown: Diagnostics,
) -> Result<(crate::source::SourceId, Sources, check::Checked), u8> {
    let mut sources = Sources::default();
    let checked = if is_stdin(file) {
        let mut text = String::new();
        match std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
            // Relative paths in it are read from the current folder, as if it were a file here.
            Ok(_) => {
                let here = std::env::current_dir().unwrap_or_default().join("<stdin>");
                let id = sources.add(crate::source::Origin::File(here), "<stdin>".to_owned(), text);
                Ok((id, check::check_with(&mut sources, id, options)))
            }
            Err(e) => Err(e),
        }
    } else {
        check::check_path_with(&mut sources, file, options)
    };
    match checked {
        Ok((id, mut checked)) => {
            if options.quiet_about_data {
                checked.diagnostics.retain(|d| !check::is_data_warning(d));
            }
            match shown {
                Diagnostics::Human => console::diagnostics(&checked.diagnostics, &sources, style),
                Diagnostics::JsonLines => console::output(&json_diagnostics::lines(&checked.diagnostics, &sources)),
                Diagnostics::JsonOnError if checked.has_errors() => {
                    let all: Vec<_> = checked.diagnostics.iter().map(|d| json_diagnostics::of(d, &sources)).collect();
                    let text = serde_json::to_string_pretty(&serde_json::json!({ "diagnostics": all })).unwrap_or_default();
                    console::output(&format!("{text}\n"));
                }
                Diagnostics::JsonOnError => console::diagnostics(&checked.diagnostics, &sources, style),
            }
            Ok((id, sources, checked))
        }
        Err(e) => {
            console::error_line(&format!("cannot read `{}`: {e}", file.display()));
            Err(EXIT_USAGE)
        }
    }
}

fn with_program(file: &Path, style: Style, options: check::Options, json: bool, body: impl FnOnce(&Program, &Sources) -> u8) -> u8 {
    let shown = if json { Diagnostics::JsonOnError } else { Diagnostics::Human };
    // Commands that never read the data (`plan`, `graph`) do not mention that it is missing.
    let options = check::Options { quiet_about_data: !options.require_data, ..options };
    match load(file, style, options, shown) {
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

/// `--force` names: stages, or single nodes (`tickets[3]`: one round). An unknown name is a usage
/// error that lists what exists and suggests the nearest.
fn valid_force(force: &[String], program: &Program, plan: &plan::Plan, file: &Path) -> Result<BTreeSet<String>, u8> {
    for name in force {
        if program.stage(name).is_some() || plan.nodes.iter().any(|n| &n.id == name) {
            continue;
        }
        let stages: Vec<&str> = program.stages.iter().map(|s| s.name.as_str()).collect();
        let message = match name.split_once('[').filter(|(stage, _)| program.stage(stage).is_some()) {
            Some((stage, _)) => {
                let nodes: Vec<&str> = plan.nodes.iter().filter(|n| n.stage == stage).map(|n| n.id.as_str()).collect();
                format!("--force names `{name}`, which is not a node of `{}`; `{stage}` has {}", file.display(), nodes.join(", "))
            }
            None => {
                let hint = crate::diagnostic::did_you_mean(name, stages.iter().copied()).map(|h| format!(" ({h})")).unwrap_or_default();
                format!(
                    "--force names `{name}`, which is not a stage of `{}`{hint}\n  its stages: {}\n  one round of a series: STAGE[ROUND], e.g. `{}`",
                    file.display(),
                    stages.join(", "),
                    plan.nodes.iter().find(|n| n.round.is_some()).map_or("tickets[1]", |n| n.id.as_str())
                )
            }
        };
        console::error_line(&message);
        return Err(EXIT_USAGE);
    }
    Ok(force.iter().cloned().collect())
}

/// A cache as the read-only commands find it.
enum Cache {
    Found(Store),
    /// The default cache of an experiment that has never run.
    NothingYet(PathBuf),
}

/// Opens the cache for reading, creating nothing. A cache named with --cache or LTHLANG_CACHE
/// that is not there is a usage error (a typo would otherwise read as an empty cache); the
/// default one beside the experiment simply has nothing yet.
fn read_cache(args: &CacheArgs, file: Option<&Path>) -> Result<Cache, u8> {
    let root = cache_root(args, file);
    if Store::is_cache(&root) {
        return Ok(Cache::Found(Store::read_only(&root)));
    }
    let named = args.cache.is_some() || std::env::var_os(CACHE_ENV).is_some_and(|d| !d.is_empty());
    if named {
        console::error_line(&format!("no cache at {}", root.display()));
        return Err(EXIT_USAGE);
    }
    Ok(Cache::NothingYet(root))
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

/// Opens the cache for a run, creating it when needed, and makes sure it can be written: an
/// unwritable cache is one error naming the folder, before anything starts.
fn writable_store(args: &CacheArgs, file: Option<&Path>) -> Option<Store> {
    let root = cache_root(args, file);
    match Store::open(&root).and_then(|store| store.check_writable().map(|()| store)) {
        Ok(store) => Some(store),
        Err(e) => {
            console::error_line(&format!("cannot write to the cache {}: {e}", root.display()));
            None
        }
    }
}

/// `lthlang report`: reruns only the report stages, over a cache that must hold everything else.
fn rerender(file: &Path, program: &Program, sources: &Sources, cache: &CacheArgs, open: bool, ui: Ui) -> u8 {
    let plan = plan::plan(program);
    let store = match read_cache(cache, Some(file)) {
        Ok(Cache::Found(store)) => store,
        Ok(Cache::NothingYet(root)) => {
            console::error_line(&format!(
                "nothing cached yet (no cache at {}); run `lthlang run {}` first",
                root.display(),
                file.display()
            ));
            return EXIT_NOT_CACHED;
        }
        Err(code) => return code,
    };
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
        return EXIT_NOT_CACHED;
    }
    let local = crate::cli::ExecutorArgs { jobs: None, executor: Some(crate::cli::ExecutorKind::Local) };
    let code = run_experiment(file, program, sources, cache, &reports, false, &local, None, ui);
    let html = run_folder::folder_of(file, &program.experiment.name).join("report.html");
    if code == EXIT_OK && open && html.exists() {
        return open_in_viewer(&html);
    }
    code
}

/// `report --open`: the desktop's opener, whose failure is reported (exit 2) rather than lost.
fn open_in_viewer(html: &Path) -> u8 {
    let viewer = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let failure = match std::process::Command::new(viewer).arg(html).status() {
        Ok(status) if status.success() => return EXIT_OK,
        Ok(status) => format!("`{viewer}` failed ({status})"),
        Err(e) => format!("cannot start `{viewer}`: {e}"),
    };
    console::error_line(&format!("{failure}; open {} in a browser", html.display()));
    EXIT_USAGE
}

/// `device = cuda` (or `cuda(k)`) on a machine that shows no such GPU, when a node must be
/// computed there: an error before anything runs, not a failure of the first node that needs
/// the worker. Local runs only: a Slurm job's GPUs are on the compute nodes, not here. Results
/// already cached for the GPU are still read on a machine without one.
fn missing_gpu(
    program: &Program,
    executor: &crate::cli::ExecutorArgs,
    fingerprints: &[(String, crate::cache::Fingerprint)],
    store: &Store,
) -> Option<String> {
    let check::Device::Cuda(index) = program.experiment.device else { return None };
    let local = match executor.executor {
        Some(kind) => kind == crate::cli::ExecutorKind::Local,
        None => matches!(program.experiment.executor, check::Executor::Local),
    };
    let needed = fingerprints.iter().any(|(_, fp)| fp.device.is_some() && !store.contains(&fp.key()));
    let gpus = exec::local::visible_gpus();
    if !local || !needed || usize::try_from(index).is_ok_and(|i| i < gpus.len()) {
        return None;
    }
    let seen = match gpus.len() {
        0 => "this machine shows no GPU (CUDA_VISIBLE_DEVICES is unset or empty and there is no /dev/nvidia* device)".to_owned(),
        n => format!("this machine shows {n} GPU{} (cuda(0) to cuda({}))", if n == 1 { "" } else { "s" }, n - 1),
    };
    Some(format!(
        "`device = {}` in the experiment block, but {seen}; nothing was run. Set `device = cpu` or `device = auto`, or run where the GPU is",
        if index == 0 { "cuda".to_owned() } else { format!("cuda({index})") }
    ))
}

#[allow(clippy::too_many_arguments, reason = "one call per command; the arguments are the command's flags")]
fn run_experiment(
    file: &Path,
    program: &Program,
    sources: &Sources,
    cache: &CacheArgs,
    force: &[String],
    json: bool,
    executor: &crate::cli::ExecutorArgs,
    smoke: Option<u32>,
    ui: Ui,
) -> u8 {
    let plan = plan::plan(program);
    let force = match valid_force(force, program, &plan, file) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if program.stages.is_empty() {
        console::error_line(&format!("{} declares no stage: nothing to run", file.display()));
        return EXIT_INPUT;
    }
    let silence_limit = match exec::worker::silence_limit() {
        Ok(limit) => limit,
        Err(message) => {
            console::error_line(&message);
            return EXIT_USAGE;
        }
    };
    let Some(store) = writable_store(cache, Some(file)) else { return EXIT_USAGE };
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
    if let Some(message) = missing_gpu(program, executor, &fingerprints, &store) {
        console::error_line(&message);
        return EXIT_USAGE;
    }
    let mut document = document(file, program, sources, &plan, &fingerprints);
    document.smoke = smoke;
    let options = Options {
        force,
        worker: exec::worker::worker_path(),
        log: Some(folder.join("worker.log")),
        document,
        silence_limit,
        jobs: executor.jobs.map(usize::from),
        smoke,
    };
    let terminal = std::io::stderr().is_terminal();
    let mode = if json {
        progress::Mode::Json
    } else if ui.quiet {
        progress::Mode::Quiet
    } else if terminal && ui.style.colour {
        progress::Mode::Bars
    } else if terminal || ui.verbose {
        progress::Mode::Lines
    } else {
        progress::Mode::Quiet
    };
    let mut display = Progress::new(mode, ui.verbose);
    let announcer = display.announcer();
    if let Err(e) = interrupt::install(move |interruption| announcer.announce(interruption)) {
        console::error_line(&format!("cannot handle SIGINT/SIGTERM, so a Ctrl-C will stop the run at once: {e}"));
    }
    let chosen = executor.executor.unwrap_or(match program.experiment.executor {
        check::Executor::Slurm(_) => crate::cli::ExecutorKind::Slurm,
        check::Executor::Local => crate::cli::ExecutorKind::Local,
    });
    let outcome = match chosen {
        crate::cli::ExecutorKind::Local => {
            exec::local::run(program, &plan, &fingerprints, &store, &options, &mut |event| display.observe(event))
        }
        crate::cli::ExecutorKind::Slurm => {
            let settings = match exec::slurm::site::settings_for(file, program) {
                Ok(settings) => settings,
                Err(e) => {
                    console::error_line(&e);
                    return EXIT_USAGE;
                }
            };
            match exec::slurm::run(program, &plan, &fingerprints, &store, &options, &settings, &mut |event| display.observe(event)) {
                Ok(outcome) => outcome,
                Err(e) => {
                    display.finish();
                    console::error_line(&format!("cannot run on Slurm: {e}"));
                    return EXIT_USAGE;
                }
            }
        }
    };
    display.finish();
    let seconds = started.elapsed().as_secs_f64();
    let signal = interrupt::requested();
    // An interrupted run leaves the run folder as the last complete run wrote it: half a table of
    // metrics beside an older report would mislead more than a stale but whole one.
    let written = match signal {
        Some(_) => None,
        None => Some(run_folder::write(&folder, program, &plan, &outcome, seconds, &store)),
    };
    if let Some(Err(e)) = &written {
        console::error_line(&format!("cannot write the run folder {}: {e}", folder.display()));
    }
    let code = if let Some(signal) = signal {
        interrupt::exit_code(signal)
    } else if !outcome.failed().is_empty() {
        EXIT_FAILED
    } else if matches!(written, Some(Err(_))) {
        EXIT_USAGE
    } else {
        EXIT_OK
    };
    let folder_written = matches!(written, Some(Ok(()))).then_some(folder);
    let summary = Summary::of(&outcome, signal, code, seconds, folder_written);
    if json {
        console::output(&format!("{}\n", summary.json()));
    } else if signal.is_some() || !outcome.failed().is_empty() {
        // Said even with -q: the user must learn why the exit code is not 0.
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), format!("{}\n", summary.text()).as_bytes());
    } else {
        console::status(&summary.text());
    }
    code
}

fn collect_garbage(files: &[PathBuf], cache: &CacheArgs, dry_run: bool, style: Style) -> u8 {
    let store = match read_cache(cache, files.first().map(PathBuf::as_path)) {
        Ok(Cache::Found(store)) => store,
        Ok(Cache::NothingYet(root)) => {
            console::status(&format!("nothing cached yet (no cache at {}); nothing to delete", root.display()));
            return EXIT_OK;
        }
        Err(code) => return code,
    };
    let mut reachable = BTreeSet::new();
    for file in files {
        // The data must be there: entries key on the dataset folder's path, and an unset
        // variable would make keys that match nothing, so gc would delete what a run uses.
        match load(file, style, NEEDS_DATA, Diagnostics::Human) {
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
