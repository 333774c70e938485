//! Where the cursor is, read from the text before it with a small tolerant scan, so completion
//! works in a file that does not parse (`layer = "` has an open string).

use crate::kinds::Category;

#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    Word(String),
    Punct(char),
    /// A string; `closed` is false for one the text before the cursor leaves open.
    Str {
        body: String,
        closed: bool,
    },
    Number,
}

#[derive(Debug, PartialEq)]
pub enum Context {
    /// Where an item starts: keywords and categories.
    Item,
    /// `use std.` (None) or `use std.<module>.` (Some).
    UsePath(Option<String>),
    /// `<category> <name> = ` at the top level: methods and presets.
    Base(Category),
    /// A field name inside the block that `owner` opens.
    FieldName {
        owner: Owner,
        written: Vec<String>,
    },
    /// The value of `field` in that block; `in_list` inside `[ ]`, `in_string` inside `"`.
    Value {
        owner: Owner,
        field: String,
        in_list: bool,
        in_string: bool,
        block: Vec<Token>,
    },
    None,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Owner {
    Experiment,
    /// A declaration: its category and base (method or preset).
    Declaration {
        category: Category,
        base: String,
    },
    /// `field = ref { ... }` inside a declaration's block: the outer field's name.
    Configured {
        category: Category,
        base: String,
        field: String,
    },
}

/// Tokens of `text`, comments skipped. Returns None when `text` ends inside a comment.
pub fn lex(text: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' || (c == '/' && chars.get(i + 1) == Some(&'/')) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            if i == chars.len() {
                return None;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            let mut j = i + 2;
            while j + 1 < chars.len() && !(chars[j] == '*' && chars[j + 1] == '/') {
                j += 1;
            }
            if j + 1 >= chars.len() {
                return None;
            }
            i = j + 2;
        } else if c == '"' {
            let mut body = String::new();
            let mut j = i + 1;
            let mut closed = false;
            while j < chars.len() {
                match chars[j] {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\n' => break,
                    '\\' => {
                        body.extend(chars.get(j + 1));
                        j += 2;
                        continue;
                    }
                    other => body.push(other),
                }
                j += 1;
            }
            tokens.push(Token::Str { body, closed });
            i = if closed { j + 1 } else { j };
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '%') {
                i += 1;
            }
            // `1.5` is one number; `0..3` is a range of two.
            while i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit() {
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '%') {
                    i += 1;
                }
            }
            tokens.push(Token::Number);
        } else {
            tokens.push(Token::Punct(c));
            i += 1;
        }
    }
    Some(tokens)
}

fn word(token: Option<&Token>) -> Option<&str> {
    match token {
        Some(Token::Word(w)) => Some(w),
        _ => None,
    }
}

fn is(token: Option<&Token>, c: char) -> bool {
    token == Some(&Token::Punct(c))
}

/// The context at the cursor, between `before` and `after`.
pub fn at(before: &str, after: &str) -> Context {
    let Some(mut tokens) = lex(before) else { return Context::None };
    let in_string = matches!(tokens.last(), Some(Token::Str { closed: false, .. }));
    if in_string {
        tokens.pop();
    } else if before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') && matches!(tokens.last(), Some(Token::Word(_))) {
        // The word being typed: the context is what precedes it.
        tokens.pop();
    }
    let mut stack: Vec<usize> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::Punct('{' | '[' | '(') => stack.push(i),
            Token::Punct('}' | ']' | ')') => {
                stack.pop();
            }
            _ => {}
        }
    }
    let Some(&open) = stack.last() else { return top_level(&tokens) };
    // The block the cursor is in, and whether it is inside a list of that block.
    let (block_open, in_list) = match tokens[open] {
        Token::Punct('{') => (open, false),
        Token::Punct('[') => match stack.iter().rev().nth(1) {
            Some(&outer) if is(tokens.get(outer), '{') => (outer, true),
            _ => return Context::None,
        },
        _ => return Context::None,
    };
    let Some(owner) = owner(&tokens[..block_open]) else { return Context::None };
    let inside = &tokens[block_open + 1..];
    let depth0 = depth_zero(inside);
    let last = depth0.last().copied();
    let field_before = |end: usize| -> Option<String> {
        // `name = ` (a value about to start) or `name = [...` (inside its list).
        if end >= 2 && is(depth0.get(end - 1).copied(), '=') {
            word(depth0.get(end - 2).copied()).map(str::to_owned)
        } else {
            None
        }
    };
    if in_list {
        // The list's `[` is the last depth-0 token of the block.
        if let Some(field) = field_before(depth0.len().saturating_sub(1)) {
            return Context::Value { owner, field, in_list: true, in_string, block: inside.to_vec() };
        }
        return Context::None;
    }
    if is(last, '=') {
        if let Some(field) = field_before(depth0.len()) {
            return Context::Value { owner, field, in_list: false, in_string, block: inside.to_vec() };
        }
    }
    if in_string {
        return Context::None;
    }
    let mut written: Vec<String> =
        depth0.windows(2).filter(|w| is(Some(w[1]), '=')).filter_map(|w| word(Some(w[0])).map(str::to_owned)).collect();
    written.extend(written_after(after));
    Context::FieldName { owner, written }
}

/// The fields written after the cursor, up to the `}` that closes its block.
fn written_after(after: &str) -> Vec<String> {
    let tokens = lex_all(after);
    let mut depth = 0usize;
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::Punct('{' | '[' | '(') => depth += 1,
            Token::Punct('}' | ']' | ')') if depth == 0 => break,
            Token::Punct('}' | ']' | ')') => depth -= 1,
            Token::Word(w) if depth == 0 && is(tokens.get(i + 1), '=') => out.push(w.clone()),
            _ => {}
        }
    }
    out
}

/// Tokens of a whole text, a comment running to its end included.
fn lex_all(text: &str) -> Vec<Token> {
    lex(text).or_else(|| lex(&format!("{text}\n"))).unwrap_or_default()
}

/// The tokens of a block's body outside any nested brackets.
fn depth_zero(inside: &[Token]) -> Vec<&Token> {
    let mut depth = 0usize;
    let mut out = Vec::new();
    for t in inside {
        match t {
            Token::Punct('{' | '[' | '(') => {
                if depth == 0 {
                    out.push(t);
                }
                depth += 1;
            }
            Token::Punct('}' | ']' | ')') => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(t),
            _ => {}
        }
    }
    out
}

/// Who opens the block whose `{` follows `before`.
fn owner(before: &[Token]) -> Option<Owner> {
    let n = before.len();
    if word(before.last()) == Some("experiment") {
        return Some(Owner::Experiment);
    }
    if n >= 4 && is(before.get(n - 2), '=') {
        let base = word(before.get(n - 1))?.to_owned();
        if let Some(category) = word(before.get(n - 4)).and_then(Category::parse) {
            return Some(Owner::Declaration { category, base });
        }
        // `field = ref {` inside a declaration's block: find that declaration.
        let field = word(before.get(n - 3))?.to_owned();
        let mut depth = 0usize;
        for i in (0..n - 3).rev() {
            match before[i] {
                Token::Punct('}' | ']' | ')') => depth += 1,
                Token::Punct('{' | '[' | '(') if depth > 0 => depth -= 1,
                Token::Punct('{') => {
                    return match owner(&before[..i])? {
                        Owner::Declaration { category, base: outer } => Some(Owner::Configured { category, base: outer, field }),
                        _ => None,
                    };
                }
                _ => {}
            }
        }
    }
    None
}

fn top_level(tokens: &[Token]) -> Context {
    let n = tokens.len();
    // `use std.` / `use std.module.`
    let mut i = n;
    while i >= 2 && is(tokens.get(i - 1), '.') && word(tokens.get(i - 2)).is_some() {
        i -= 2;
    }
    if i < n && i >= 1 && word(tokens.get(i - 1)) == Some("use") {
        let path: Vec<&str> = (i..n).step_by(2).filter_map(|k| word(tokens.get(k))).collect();
        return match path.as_slice() {
            ["std"] => Context::UsePath(None),
            ["std", module] => Context::UsePath(Some((*module).to_owned())),
            _ => Context::None,
        };
    }
    if n >= 3 && is(tokens.get(n - 1), '=') {
        if let Some(category) = word(tokens.get(n - 3)).and_then(Category::parse) {
            return Context::Base(category);
        }
    }
    if n >= 2 && word(tokens.get(n - 1)).is_some() && word(tokens.get(n - 2)).and_then(Category::parse).is_some() {
        return Context::None; // naming a new stage
    }
    Context::Item
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declaration(category: Category, base: &str) -> Owner {
        Owner::Declaration { category, base: base.to_owned() }
    }

    fn at_end(before: &str) -> Context {
        at(before, "")
    }

    #[test]
    fn fields_after_the_cursor_count_as_written() {
        assert_eq!(
            at("model net = resnet_tiny { ", " width = 8 } model m = x { classes = 3 }"),
            Context::FieldName { owner: declaration(Category::Model, "resnet_tiny"), written: vec!["width".into()] }
        );
    }

    #[test]
    fn contexts_of_a_file_being_written() {
        assert_eq!(at_end(""), Context::Item);
        assert_eq!(at_end("use std.datasets.shapes\nmod"), Context::Item);
        assert_eq!(at_end("use std."), Context::UsePath(None));
        assert_eq!(at_end("use std.models.res"), Context::UsePath(Some("models".into())));
        assert_eq!(at_end("prune t = "), Context::Base(Category::Prune));
        assert_eq!(
            at_end("model net = resnet_tiny { "),
            Context::FieldName { owner: declaration(Category::Model, "resnet_tiny"), written: vec![] }
        );
        assert_eq!(
            at_end("model net = resnet_tiny { width = 8  cla"),
            Context::FieldName { owner: declaration(Category::Model, "resnet_tiny"), written: vec!["width".into()] }
        );
        assert!(matches!(
            at_end("explain c = gradcam { of = t  layer = \"la"),
            Context::Value { field, in_string: true, in_list: false, .. } if field == "layer"
        ));
        assert!(
            matches!(at_end("compare c = compare { accuracy = [t, "), Context::Value { field, in_list: true, .. } if field == "accuracy")
        );
        assert!(matches!(
            at_end("compare c = compare { concepts = head { "),
            Context::FieldName { owner: Owner::Configured { field, .. }, .. } if field == "concepts"
        ));
        assert_eq!(at_end("model m = x { // a comment"), Context::None);
    }
}
