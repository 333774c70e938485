//! Comparison metrics: pure-Rust numbers computed from stage artifacts (weight rows, saliency maps,
//! curves, per-seed results). Nothing here touches tch, so the `compare` stage and the front end can
//! both use it, and every formula is tested against hand-worked or independently computed values.
//!
//! - [`concept_importance`]: what a concept's importance is, and which concepts a class lists.
//! - [`consistency`]: agreement of one round with a reference round (weights and maps).
//! - [`ground_truth`]: agreement with what the dataset knows (defining concepts, object masks).
//! - [`faithfulness`]: deletion and insertion curves.
//! - [`summary`]: accuracy-type scores and intervals over seeds.
//!
//! Inputs may be `f32` or `f64`; all arithmetic is in `f64`. Bad input (length mismatch, NaN, empty
//! data) is a [`MetricError`], never a panic.

pub mod concept_importance;
pub mod consistency;
pub mod error;
pub mod faithfulness;
pub mod ground_truth;
pub mod ranking;
pub mod summary;

pub use error::MetricError;

/// Result of a metric computation.
pub type Result<T> = std::result::Result<T, MetricError>;
