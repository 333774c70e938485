//! Command-line definitions (clap) only; `app.rs` carries them out.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "lthlang", version, about = "Lottery-ticket explainability experiments, declared in .lth files")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Colour diagnostics: auto (when stderr is a terminal and NO_COLOR is unset), always, never.
    #[arg(long, global = true, value_enum, default_value_t = Colour::Auto)]
    pub colour: Colour,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check files without running anything: every problem found, sorted by position.
    Check {
        /// `.lth` files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show the graph of nodes a run would compute, in dependency order.
    Plan {
        file: PathBuf,
        /// Print the nodes as a JSON array.
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
        /// Stream events as JSON lines on stdout instead of progress bars.
        #[arg(long)]
        json: bool,
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
    /// Print the plan's graph for Graphviz or Mermaid.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
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
