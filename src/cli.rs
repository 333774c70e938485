//! Command-line definitions (clap) only; `app.rs` carries them out.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "lthlang", version, about = "Lottery-ticket explainability experiments, declared in .lth files")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Colour and terminal effects: auto (when stderr is a terminal and NO_COLOR is unset),
    /// always, never (no escape codes at all: progress is written as plain lines).
    #[arg(long, visible_alias = "color", global = true, value_enum, default_value_t = Colour::Auto)]
    pub colour: Colour,
    /// Print only errors and warnings: no progress, no summary lines.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more: every node of a run as it ends, cached ones included.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check files without running anything: every problem found, sorted by position.
    Check {
        /// `.lth` files to check; `-` reads one from standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `human` (rendered on stderr) or `json` (one object per diagnostic on stdout).
        #[arg(long, value_enum, default_value_t = DiagnosticFormat::Human)]
        format: DiagnosticFormat,
        /// Check everything except that dataset folders exist (a missing one is a warning).
        #[arg(long)]
        no_data: bool,
    },
    /// Show the graph of nodes a run would compute, in dependency order.
    Plan {
        file: PathBuf,
        /// Print the nodes as a JSON array (diagnostics, if any, as JSON lines before it).
        #[arg(long)]
        json: bool,
        /// Say for every node whether the cache holds it and, if not, why it must run.
        #[arg(long)]
        explain: bool,
        #[command(flatten)]
        cache: CacheArgs,
        /// Explain as if these stages were forced (see `run --force`).
        #[arg(long, value_name = "STAGE")]
        force: Vec<String>,
    },
    /// Run an experiment: compute what the cache lacks, then write the run folder
    /// `runs/<experiment>/` next to the file (metrics.json, timings.json, the report).
    Run {
        file: PathBuf,
        #[command(flatten)]
        cache: CacheArgs,
        /// Recompute this stage and everything downstream of it, even if cached (repeatable).
        #[arg(long, value_name = "STAGE")]
        force: Vec<String>,
        /// Stream events as JSON lines on stdout instead of progress bars; the last is a summary.
        #[arg(long)]
        json: bool,
        /// Not an option of `run`: `lthlang plan --explain FILE` shows what a run would compute.
        #[arg(long, hide = true)]
        dry_run: bool,
        #[command(flatten)]
        executor: ExecutorArgs,
        /// Check a long experiment in minutes: every training, embedding and explainer loop stops
        /// after N batches (default 2), datasets are still read whole; results go to the cache's
        /// `smoke-N/` namespace, which real runs never read, and the run folder
        /// `runs/<experiment>-smoke/`, whose report says it is a smoke run.
        #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "2", value_parser = clap::value_parser!(u32).range(1..))]
        smoke: Option<u32>,
    },
    /// Re-render the report from cached results, computing nothing else; the run folder gets the
    /// new files. Fails, naming them, if nodes the report needs are not cached yet.
    Report {
        file: PathBuf,
        #[command(flatten)]
        cache: CacheArgs,
        /// Open the HTML report with the desktop's viewer (xdg-open or open).
        #[arg(long)]
        open: bool,
    },
    /// Entries and bytes in the cache, per stage kind.
    Status {
        /// An experiment whose cache to inspect (its `.lth/cache`); or use --cache.
        file: Option<PathBuf>,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Cancel the Slurm jobs still queued or running for an experiment.
    Cancel {
        file: PathBuf,
        #[command(flatten)]
        cache: CacheArgs,
    },
    /// Compute one node inside a Slurm job, from the request file the front end wrote.
    #[command(hide = true)]
    SlurmJob { request: PathBuf },
    /// Delete cache entries that none of the given experiments reaches.
    Gc {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        cache: CacheArgs,
        /// List what would be deleted without deleting it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Rewrite files in the canonical layout (README: "Formatting"); `-` formats stdin to stdout.
    Fmt {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write nothing: list the files whose layout differs, and exit 1 if any does.
        #[arg(long)]
        check: bool,
    },
    /// Serve the language server protocol on stdin and stdout (editors start this).
    Lsp,
    /// Print a completion script for a shell: `lthlang completions bash > ~/.local/share/bash-completion/completions/lthlang`.
    Completions { shell: clap_complete::Shell },
    /// Print the plan's graph for Graphviz or Mermaid.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// The language reference from the binary: categories, methods and their fields (type,
    /// range, default, meaning). `doc`, `doc train`, `doc sgd` or `doc train.sgd`.
    Doc {
        /// A category, a method, or `category.method`; nothing lists every category.
        topic: Option<String>,
        /// Print the whole reference as Markdown (what docs/reference.md holds).
        #[arg(long, conflicts_with = "topic")]
        markdown: bool,
    },
    /// A longer explanation of a diagnostic code, with an example: `explain lth::check::unknown_name`
    /// (or just `unknown_name`).
    Explain {
        /// The code; nothing lists every code.
        code: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    Human,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CacheArgs {
    /// The cache folder [default: `.lth/cache` next to the experiment; env: LTHLANG_CACHE].
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Colour {
    Auto,
    Always,
    Never,
}

/// Where and how widely `run` computes.
#[derive(Debug, clap::Args)]
pub struct ExecutorArgs {
    /// Nodes computed at once on this machine, each by its own worker [default: one per GPU with
    /// `device = auto` on a machine with several, else 1].
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Where nodes are computed [default: the experiment's `executor`, else local].
    #[arg(long, value_enum)]
    pub executor: Option<ExecutorKind>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExecutorKind {
    /// Worker processes on this machine.
    Local,
    /// One Slurm job per node, submitted with sbatch.
    Slurm,
}
