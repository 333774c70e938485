//! `lthlang fmt`: one canonical layout for `.lth` files.
//!
//! The style, which README.md repeats for users:
//!
//! - Items (`use`, `experiment`, declarations) keep their order. One blank line is kept where
//!   the source has one or more, between items and between fields; none at the start or end.
//! - A block goes on one line, `{ a = 1  b = 2 }` with two spaces between fields, when it fits
//!   in 100 columns, holds no comment, and was not written with a line break after its `{`.
//!   Otherwise it has one field per line, indented by two spaces, with the `=` of consecutive
//!   fields aligned (a blank line starts a new aligned group). So a short block stays open if
//!   its writer opened it, as the shipped experiment blocks are, and closes again if they join it.
//! - Lists and call arguments go on one line, `[a, b]` and `f(x, n = 1)`, when they fit and hold
//!   no comment; otherwise one element per line, each followed by a comma.
//! - Field separators (`,` and `;`, both optional) are dropped; spaces inside `a.b`, `0..15` and
//!   around `=` are normalised. Numbers and strings are kept exactly as written.
//! - Every comment is kept, with its text. A comment after a row on the same line stays there
//!   (two spaces after it; those of consecutive one-line rows line up); a comment on a line of its
//!   own stays above the row it precedes. A comment inside a value where no row can hold it
//!   (`a = b /* c */ .d`) moves to the line above the field.
//!
//! `fmt` never changes meaning: before it returns, it parses its output and compares the syntax
//! tree, positions aside, with the input's, and compares the comments. A difference is a bug in
//! the formatter and is reported as one; the input is left alone.

pub mod command;
mod comments;
mod print;
mod shape;
mod tree;

pub use comments::{scan as scan_comments, Comment};
pub use shape::of_module as shape;

use crate::diagnostic::Diagnostic;
use crate::source::SourceId;

#[derive(Debug)]
pub enum Error {
    /// The source does not parse; nothing can be formatted.
    Syntax(Vec<Diagnostic>),
    /// The formatter's output would differ in meaning or comments: a bug, never written out.
    Internal(String),
}

/// The canonical layout of `text`, which must parse.
pub fn format(source: SourceId, text: &str) -> Result<String, Error> {
    let module = crate::syntax::parse(source, text).map_err(Error::Syntax)?;
    let found = comments::scan(text);
    let mut builder = tree::Builder::new(text, comments::Pool::new(found.clone()));
    let items = builder.file(&module);
    if let Some(lost) = builder.leftover().first() {
        return Err(Error::Internal(format!("the comment `{}` found no place in the layout", lost.text)));
    }
    let formatted = print::file(&items);
    let reparsed = crate::syntax::parse(source, &formatted)
        .map_err(|d| Error::Internal(format!("the formatted text does not parse: {}", d.first().map_or("", |d| d.message.as_str()))))?;
    if shape::of_module(&reparsed) != shape::of_module(&module) {
        return Err(Error::Internal("the formatted text means something else".to_owned()));
    }
    let mut before: Vec<String> = found.into_iter().map(|c| c.text).collect();
    let mut after: Vec<String> = comments::scan(&formatted).into_iter().map(|c| c.text).collect();
    before.sort();
    after.sort();
    if before != after {
        return Err(Error::Internal("the formatted text lost or changed a comment".to_owned()));
    }
    Ok(formatted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(text: &str) -> String {
        match format(SourceId(0), text) {
            Ok(out) => out,
            Err(e) => panic!("{e:?} for:\n{text}"),
        }
    }

    #[test]
    fn short_blocks_join_and_fields_align_in_open_ones() {
        let text = "dataset d = shapes {train=2000,val=500}\nexperiment {\nseeds = [0]\n device=auto }\n";
        assert_eq!(fmt(text), "dataset d = shapes { train = 2000  val = 500 }\nexperiment {\n  seeds  = [0]\n  device = auto\n}\n");
    }

    #[test]
    fn long_blocks_break_one_field_per_line() {
        let text =
            "train dense = sgd { model = net  data = data.train  val = data.val  epochs = 6  batch = 32  lr = 0.05  momentum = 0.9 }";
        assert_eq!(
            fmt(text),
            "train dense = sgd {\n  model    = net\n  data     = data.train\n  val      = data.val\n  epochs   = 6\n  batch    = 32\n  lr       = 0.05\n  momentum = 0.9\n}\n"
        );
    }

    #[test]
    fn comments_stay_where_they_were_written() {
        let text =
            "// head\n\n\nuse std.models // why\nmodel m = resnet_tiny {\n  // lead\n  width = 8 # tail\n\n  classes = 4\n  // end\n}\n";
        assert_eq!(
            fmt(text),
            "// head\n\nuse std.models  // why\nmodel m = resnet_tiny {\n  // lead\n  width = 8  # tail\n\n  classes = 4\n  // end\n}\n"
        );
    }

    #[test]
    fn a_comment_inside_a_value_moves_above_its_field() {
        let text = "explain c = gradcam { images = d /* the test split */ .test.sample(4) }\n";
        assert_eq!(fmt(text), "explain c = gradcam {\n  /* the test split */\n  images = d.test.sample(4)\n}\n");
    }

    #[test]
    fn lists_with_comments_break() {
        let text = "compare c = compare { at = [100%, // dense\n 50%] }";
        assert_eq!(fmt(text), "compare c = compare {\n  at = [\n    100%,  // dense\n    50%,\n  ]\n}\n");
    }

    #[test]
    fn formatting_is_idempotent_on_awkward_input() {
        for text in [
            "",
            "// only a comment",
            "model m = resnet18 {}",
            "model m = resnet18 {\n}",
            "model m = resnet18 { /* empty */ }",
            "report r = html { include = [ a , b , ] ; title = \"x // y\" , }",
            "prune p = imp { rounds = 0 ..= 3 }",
            "explain c = gradcam { images = f(\n// a\nx = 1, # b\n y) }",
            "compare c = compare { concepts = head { top = 3 } saliency = cam {\n reference = round(0) } }",
        ] {
            let once = fmt(text);
            assert_eq!(fmt(&once), once, "not idempotent on {text:?}");
        }
    }

    #[test]
    fn syntax_errors_are_reported_not_formatted() {
        assert!(matches!(format(SourceId(0), "model m = {"), Err(Error::Syntax(_))));
    }
}
