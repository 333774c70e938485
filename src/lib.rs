//! lthlang: a declarative language for lottery-ticket explainability experiments.
//!
//! Phases, each a folder with one entry: `syntax` (text → AST), `check` (AST → checked program),
//! `plan` (checked program → graph of nodes). `kinds` is the registry of stage signatures that
//! all phases share; `report` owns everything printed. `metrics` holds the pure-Rust comparison
//! metrics that stages compute from artifacts.

pub mod app;
pub mod cache;
pub mod check;
pub mod cli;
pub mod compare;
pub mod diagnostic;
pub mod doc;
pub mod exec;
pub mod fmt;
pub mod generate;
pub mod kinds;
pub mod lsp;
pub mod metrics;
pub mod plan;
pub mod report;
pub mod solvers;
pub mod source;
pub mod stdlib;
pub mod syntax;
