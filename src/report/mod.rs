//! Everything users see on the console goes through here.

pub mod console;
pub mod explained;
pub mod progress;
pub mod run_folder;
