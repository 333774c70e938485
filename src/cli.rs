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
    },
    /// Print the plan's graph for Graphviz or Mermaid.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
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
