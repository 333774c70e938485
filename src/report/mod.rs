//! Everything users see on the console goes through here, and the report's figures (`plots`,
//! on the `weights_axis`, numbers written as `number_format` says).

pub mod console;
pub mod explained;
pub mod number_format;
pub mod plots;
pub mod progress;
pub mod run_folder;
pub mod weights_axis;
