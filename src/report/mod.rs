//! Everything users see on the console goes through here, and the report files: the compare
//! stage's output (`crate::compare::format`) and the run's context (`run_context`) rendered as one
//! self-contained HTML page (`html`, figures from `plots`) or as JSON (`json`).

pub mod console;
#[doc(hidden)]
pub mod example;
pub mod explained;
pub mod html;
pub mod json;
pub mod json_diagnostics;
pub mod number_format;
pub mod overlay_blend;
pub mod plots;
pub mod progress;
pub mod run_context;
pub mod run_folder;
pub mod run_summary;
pub mod stage;
pub mod weights_axis;
