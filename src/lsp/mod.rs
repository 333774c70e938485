//! `lthlang lsp`: a language server over stdio.
//!
//! Built on `lsp-server` and `lsp-types`, the synchronous pair rust-analyzer uses: one thread
//! reads requests in order and answers each before the next, which is all a checker that answers
//! in about a millisecond needs, with no async runtime in the front end's dependency tree (it
//! must still install in minutes). Every answer comes from the same code `check` and `fmt` run:
//! diagnostics as you type, hover from the stage registry, completion, go to definition (into
//! the stdlib, written out as read-only files), document symbols and formatting.

pub mod analysis;
mod completion;
mod context;
mod docs;
mod locate;
mod navigate;
mod position;
mod server;
mod uri;

pub use analysis::Analysis;
pub use server::{serve, Server};

/// The completions, hover and definition at every `step`-th offset of `text`, for tests that
/// feed the server arbitrary text: none of it may panic.
pub fn exercise(text: &str, step: usize) -> usize {
    let analysis = Analysis::new(std::path::Path::new("exercise.lth"), text);
    let mut answers = 0;
    let mut offset = 0;
    while offset <= text.len() {
        answers += completion::complete(text, offset, &analysis).len();
        answers += usize::from(navigate::hover(&analysis, offset).is_some());
        answers += usize::from(navigate::definition(&analysis, offset).is_some());
        offset += step.max(1);
    }
    answers + navigate::symbols(&analysis).len() + server::diagnostics(&analysis, "file:///exercise.lth").len()
}
