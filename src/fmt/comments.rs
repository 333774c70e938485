//! The comments of a source, which the parser skips: found by a scan that knows strings (so `"//"`
//! inside a string is not a comment), and handed out once each as the layout tree claims them.

use std::ops::Range;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    /// Byte range in the source, `//` or `#` to the end of the line (newline excluded), or
    /// `/*` to `*/`.
    pub range: Range<usize>,
    /// The comment as written, without trailing whitespace.
    pub text: String,
}

/// Every comment of `text` in source order. `text` is expected to parse: in a file that does not,
/// an unclosed string or block comment simply runs to the end.
pub fn scan(text: &str) -> Vec<Comment> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && !matches!(bytes[i], b'"' | b'\n') {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'#' => i = line_comment(text, i, &mut out),
            b'/' if bytes.get(i + 1) == Some(&b'/') => i = line_comment(text, i, &mut out),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..].find("*/").map_or(text.len(), |n| i + 2 + n + 2);
                out.push(Comment { range: i..end, text: text[i..end].to_owned() });
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

fn line_comment(text: &str, start: usize, out: &mut Vec<Comment>) -> usize {
    let end = text[start..].find('\n').map_or(text.len(), |n| start + n);
    out.push(Comment { range: start..end, text: text[start..end].trim_end().to_owned() });
    end
}

/// The comments of one source, each to be claimed exactly once.
pub struct Pool {
    comments: Vec<Comment>,
    claimed: Vec<bool>,
}

impl Pool {
    pub fn new(comments: Vec<Comment>) -> Pool {
        let claimed = vec![false; comments.len()];
        Pool { comments, claimed }
    }

    /// Claims the unclaimed comments that lie wholly inside `range`, in source order.
    pub fn take(&mut self, range: Range<usize>) -> Vec<Comment> {
        let first = self.comments.partition_point(|c| c.range.start < range.start);
        let mut out = Vec::new();
        for (comment, claimed) in self.comments[first..].iter().zip(&mut self.claimed[first..]) {
            if comment.range.start >= range.end {
                break;
            }
            if !*claimed && comment.range.end <= range.end {
                *claimed = true;
                out.push(comment.clone());
            }
        }
        out
    }

    /// The first offset at or after `at` that is neither whitespace, a comment, nor one of `skip`.
    pub fn next_token(&self, text: &str, mut at: usize, skip: &[u8]) -> usize {
        let bytes = text.as_bytes();
        loop {
            while at < bytes.len() && (bytes[at].is_ascii_whitespace() || skip.contains(&bytes[at])) {
                at += 1;
            }
            match self.comments.iter().find(|c| c.range.start == at) {
                Some(comment) => at = comment.range.end,
                None => return at,
            }
        }
    }

    pub fn unclaimed(&self) -> impl Iterator<Item = &Comment> {
        self.comments.iter().zip(&self.claimed).filter(|(_, claimed)| !**claimed).map(|(c, _)| c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_hide_comment_markers() {
        let text = "a = \"// not # a /* comment\" // one\n# two\nb = /* three */ 1";
        let found: Vec<String> = scan(text).into_iter().map(|c| c.text).collect();
        assert_eq!(found, ["// one", "# two", "/* three */"]);
    }

    #[test]
    fn escaped_quotes_stay_inside_the_string() {
        let found = scan(r#"a = "x\"// y" // z"#);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].text, "// z");
    }

    #[test]
    fn each_comment_is_claimed_once() {
        let text = "// a\nx /* b */ y // c";
        let mut pool = Pool::new(scan(text));
        assert_eq!(pool.take(0..14).len(), 2);
        assert!(pool.take(0..14).is_empty());
        assert_eq!(pool.take(0..text.len()).len(), 1);
        assert_eq!(pool.unclaimed().count(), 0);
    }
}
