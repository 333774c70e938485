//! The pest binding: parses with `grammar/lth.pest` and lowers pest pairs to the AST.

use super::ast::{Arg, Declaration, ExperimentBlock, Expr, ExprKind, Field, Ident, Module, Use};
use crate::diagnostic::Diagnostic;
use crate::source::{SourceId, Span};
use pest::iterators::Pair;
use pest::Parser as _;
use pest_derive::Parser;

#[derive(Parser)]
#[grammar = "../grammar/lth.pest"]
struct LthParser;

/// Parses one source. A syntax error stops the parse (a PEG parser cannot resume reliably), so at
/// most one syntax diagnostic comes back; malformed literals are collected alongside.
pub fn parse(source: SourceId, text: &str) -> Result<Module, Vec<Diagnostic>> {
    // Track parse attempts so a syntax error can name the literal tokens expected (`=`, `}`).
    pest::set_error_detail(true);
    let pairs = LthParser::parse(Rule::file, text).map_err(|e| vec![syntax_error(source, text, &e)])?;
    let mut lower = Lower { source, diagnostics: Vec::new(), depth: 0 };
    let mut module = Module::default();
    for pair in pairs.flatten().filter(|p| p.as_rule() == Rule::file) {
        for item in pair.into_inner() {
            match item.as_rule() {
                Rule::use_decl => module.uses.push(lower.use_decl(item)),
                Rule::experiment => module.experiments.push(lower.experiment(item)),
                Rule::declaration => module.declarations.push(lower.declaration(item)),
                _ => {}
            }
        }
    }
    if lower.diagnostics.is_empty() {
        Ok(module)
    } else {
        Err(lower.diagnostics)
    }
}

/// Parses a single value written in the language, such as a field's default (`[spearman, ssim]`).
pub fn parse_value(source: SourceId, text: &str) -> Result<Expr, Vec<Diagnostic>> {
    let mut pairs = LthParser::parse(Rule::value_only, text).map_err(|e| vec![syntax_error(source, text, &e)])?;
    let mut lower = Lower { source, diagnostics: Vec::new(), depth: 0 };
    let expr = pairs.next().and_then(|p| p.into_inner().next()).map(|p| lower.expr(p));
    match expr {
        Some(expr) if lower.diagnostics.is_empty() => Ok(expr),
        _ => Err(lower.diagnostics),
    }
}

/// How deeply values may nest: brackets, calls, configured blocks and `.member` chains each add a
/// level. Lowering, checking and dropping the AST recurse once per level, so without a bound a
/// long chain or deep nesting overflows the stack; no experiment needs more than a handful.
const MAX_NESTING: usize = 64;

struct Lower {
    source: SourceId,
    diagnostics: Vec<Diagnostic>,
    /// Nesting level of the value being lowered.
    depth: usize,
}

impl Lower {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.source, s.start(), s.end())
    }

    fn ident(&self, pair: &Pair<'_, Rule>) -> Ident {
        Ident { name: pair.as_str().to_owned(), span: self.span(pair) }
    }

    fn use_decl(&mut self, pair: Pair<'_, Rule>) -> Use {
        let span = self.span(&pair);
        let path = pair.into_inner().flat_map(Pair::into_inner).map(|p| self.ident(&p)).collect();
        Use { path, span }
    }

    fn experiment(&mut self, pair: Pair<'_, Rule>) -> ExperimentBlock {
        let span = self.span(&pair);
        let keyword = Span::new(self.source, span.start as usize, span.start as usize + "experiment".len());
        let fields = pair.into_inner().find(|p| p.as_rule() == Rule::block).map(|b| self.block(b)).unwrap_or_default();
        ExperimentBlock { keyword, fields }
    }

    fn declaration(&mut self, pair: Pair<'_, Rule>) -> Declaration {
        let span = self.span(&pair);
        let mut preset = false;
        let mut idents = Vec::new();
        let mut fields = Vec::new();
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::preset_marker => preset = true,
                Rule::category | Rule::ident => idents.push(self.ident(&part)),
                Rule::block => fields = self.block(part),
                _ => {}
            }
        }
        let [category, name, base]: [Ident; 3] =
            idents.try_into().unwrap_or_else(|_| unreachable!("the grammar gives a declaration a category, a name and a base"));
        Declaration { preset, category, name, base, fields, span }
    }

    fn block(&mut self, pair: Pair<'_, Rule>) -> Vec<Field> {
        pair.into_inner().filter(|p| p.as_rule() == Rule::field).map(|f| self.field(f)).collect()
    }

    fn field(&mut self, pair: Pair<'_, Rule>) -> Field {
        let mut inner = pair.into_inner();
        let (Some(name), Some(value)) = (inner.next(), inner.next()) else { unreachable!("the grammar gives a field a name and a value") };
        Field { name: self.ident(&name), value: self.expr(value) }
    }

    /// Reports a value nested deeper than [`MAX_NESTING`] (once per file) at its first character.
    fn too_deep(&mut self, pair: &Pair<'_, Rule>) {
        if self.diagnostics.iter().any(|d| d.code == "lth::syntax::nesting_too_deep") {
            return;
        }
        let start = pair.as_span().start();
        let width = pair.as_str().chars().next().map_or(0, char::len_utf8);
        self.diagnostics.push(
            Diagnostic::error(
                "lth::syntax::nesting_too_deep",
                Span::new(self.source, start, start + width),
                "value nested too deeply",
                format!("level {} of nesting starts here", MAX_NESTING + 1),
            )
            .with_help(format!(
                "values nest at most {MAX_NESTING} levels deep; brackets, calls, `{{ }}` blocks and `.member` steps each add a level"
            )),
        );
    }

    fn expr(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::expr if self.depth >= MAX_NESTING => {
                self.too_deep(&pair);
                Expr { kind: ExprKind::List(Vec::new()), span }
            }
            Rule::expr => {
                self.depth += 1;
                let mut inner = pair.into_inner();
                let base = inner.next().map(|p| self.expr(p));
                let base = base.unwrap_or(Expr { kind: ExprKind::List(Vec::new()), span });
                let expr = match inner.next() {
                    Some(block) => Expr { kind: ExprKind::Configured { base: Box::new(base), fields: self.block(block) }, span },
                    None => base,
                };
                self.depth -= 1;
                expr
            }
            Rule::postfix => {
                let mut inner = pair.into_inner();
                let mut expr = match inner.next() {
                    Some(primary) => self.expr(primary),
                    None => Expr { kind: ExprKind::List(Vec::new()), span },
                };
                let outer = self.depth;
                for suffix in inner {
                    // Each step wraps the value so far: `a.b.c` nests as deeply as `[[a]]`.
                    self.depth += 1;
                    if self.depth > MAX_NESTING {
                        self.too_deep(&suffix);
                        break;
                    }
                    let whole = expr.span.to(self.span(&suffix));
                    let rule = suffix.as_rule();
                    let mut parts = suffix.into_inner();
                    let Some(name) = parts.next().map(|p| self.ident(&p)) else { continue };
                    expr = if rule == Rule::method_call {
                        let args = parts.next().map(|a| self.args(a)).unwrap_or_default();
                        Expr { kind: ExprKind::Call { receiver: Some(Box::new(expr)), function: name, args }, span: whole }
                    } else {
                        Expr { kind: ExprKind::Member { base: Box::new(expr), member: name }, span: whole }
                    };
                }
                self.depth = outer;
                expr
            }
            Rule::call => {
                let mut inner = pair.into_inner();
                let function = inner.next().map(|p| self.ident(&p)).unwrap_or(Ident { name: String::new(), span });
                let args = inner.next().map(|a| self.args(a)).unwrap_or_default();
                Expr { kind: ExprKind::Call { receiver: None, function, args }, span }
            }
            Rule::list => Expr { kind: ExprKind::List(pair.into_inner().map(|p| self.expr(p)).collect()), span },
            Rule::range => {
                let mut inner = pair.into_inner();
                let start = inner.next().map_or(0, |p| self.integer(&p));
                let inclusive = inner.next().is_some_and(|p| p.as_rule() == Rule::range_inclusive);
                let end = inner.next().map_or(0, |p| self.integer(&p));
                Expr { kind: ExprKind::Range { start, end, inclusive }, span }
            }
            Rule::percent => {
                let digits = pair.as_str().trim_end_matches('%');
                Expr { kind: ExprKind::Percent(self.number(digits, span)), span }
            }
            Rule::float => Expr { kind: ExprKind::Float(self.number(pair.as_str(), span)), span },
            Rule::integer => Expr { kind: ExprKind::Integer(self.integer(&pair)), span },
            Rule::string => {
                let body = pair.into_inner().next().map_or("", |p| p.as_str());
                Expr { kind: ExprKind::Str(unescape(body)), span }
            }
            Rule::ident => Expr { kind: ExprKind::Name(pair.as_str().to_owned()), span },
            _ => unreachable!("the grammar only nests expression rules inside `expr`"),
        }
    }

    fn args(&mut self, pair: Pair<'_, Rule>) -> Vec<Arg> {
        pair.into_inner()
            .map(|arg| {
                let Some(inner) = arg.into_inner().next() else { unreachable!("the grammar gives an argument a value") };
                if inner.as_rule() == Rule::named_arg {
                    let mut parts = inner.into_inner();
                    let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
                        unreachable!("the grammar gives a named argument a name and a value")
                    };
                    Arg { name: Some(self.ident(&name)), value: self.expr(value) }
                } else {
                    Arg { name: None, value: self.expr(inner) }
                }
            })
            .collect()
    }

    fn integer(&mut self, pair: &Pair<'_, Rule>) -> i64 {
        let text: String = pair.as_str().chars().filter(|c| *c != '_').collect();
        text.parse().unwrap_or_else(|_| {
            self.diagnostics.push(
                Diagnostic::error(
                    "lth::syntax::number_out_of_range",
                    self.span(pair),
                    format!("integer `{}` is out of range", pair.as_str()),
                    "does not fit in 64 bits",
                )
                .with_help("integers must lie between -9223372036854775808 and 9223372036854775807"),
            );
            0
        })
    }

    fn number(&mut self, text: &str, span: Span) -> f64 {
        let cleaned: String = text.chars().filter(|c| *c != '_').collect();
        match cleaned.parse::<f64>() {
            Ok(x) if x.is_finite() => x,
            _ => {
                self.diagnostics.push(Diagnostic::error(
                    "lth::syntax::number_out_of_range",
                    span,
                    format!("number `{text}` is out of range"),
                    "not a finite number",
                ));
                0.0
            }
        }
    }
}

fn unescape(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The words a user sees for each grammar rule in "expected ..." messages.
fn describe(rule: Rule) -> &'static str {
    match rule {
        Rule::EOI => "end of file",
        // pest names the whole file when nothing at the start of an item matched.
        Rule::file => "`use`, `experiment` or a declaration (`dataset`, `model`, `train`, `prune`, `embed`, `concepts`, `explain`, `compare`, `report`, or `preset`)",
        Rule::use_decl | Rule::kw_use => "`use`",
        Rule::experiment | Rule::kw_experiment => "`experiment`",
        Rule::declaration | Rule::category | Rule::preset_marker => "a declaration (`dataset`, `model`, `train`, `prune`, `embed`, `concepts`, `explain`, `compare`, `report`, or `preset`)",
        Rule::block => "`{`",
        Rule::field => "a field (`name = value`) or `}`",
        Rule::expr | Rule::postfix | Rule::primary | Rule::value_only => "a value",
        Rule::member | Rule::method_call => "`.member`",
        Rule::call | Rule::args => "`(`",
        Rule::arg | Rule::named_arg => "an argument",
        Rule::list => "a list",
        Rule::range | Rule::range_inclusive | Rule::range_exclusive => "a range",
        Rule::percent => "a percentage",
        Rule::float | Rule::integer => "a number",
        Rule::string | Rule::string_body => "a string",
        Rule::ident | Rule::module_path => "a name",
        _ => "something else",
    }
}

fn syntax_error(source: SourceId, text: &str, error: &pest::error::Error<Rule>) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let reported = match error.location {
        InputLocation::Pos(p) | InputLocation::Span((p, _)) => p,
    };
    // pest reports where the failing rule started; its parse attempts (see `parse`) also know the
    // furthest position any token was tried at and the literal tokens tried there (`=`, `}`),
    // which rule names never show: `dataset d shapes` fails at `shapes`, not at `dataset`.
    let attempts = error.parse_attempts();
    let furthest = attempts.as_ref().map_or(0, |a| a.max_position);
    // An unclosed string is tried to the end of its line; the error is where it opens.
    let use_furthest = furthest > reported && !text.get(reported..).is_some_and(|r| r.starts_with('"'));
    let start = if use_furthest { furthest } else { reported }.min(text.len());
    let start = (0..=start).rev().find(|n| text.is_char_boundary(*n)).unwrap_or(0);
    // At the end of the file, point just after the last token rather than past trailing blank
    // lines, where the label would have no line to sit on.
    let at_end = text[start..].trim().is_empty();
    let start = if at_end { text.trim_end().len() } else { start };
    // Underline the offending token (up to the next space) so the label points at something.
    let rest = &text[start..];
    let token_len = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len()).min(24);
    let token_len = (0..=token_len).rev().find(|n| rest.is_char_boundary(*n)).unwrap_or(0);
    let span = Span::new(source, start, start + token_len);
    let found = if at_end { "end of file".to_owned() } else { format!("`{}`", &rest[..token_len]) };
    let open = unclosed(text, start);
    let innermost = open.last().map(|(c, _)| *c);
    let mut words: Vec<&str> = Vec::new();
    let mut item_start = false;
    // pest's rule names describe its own position; they are kept only when that is the one shown.
    if let ErrorVariant::ParsingError { positives, .. } = &error.variant {
        if !use_furthest {
            words.extend(positives.iter().map(|r| describe(*r)));
            item_start = positives.iter().any(|r| matches!(r, Rule::file | Rule::declaration | Rule::category | Rule::EOI));
        }
    }
    for token in attempts.iter().filter(|_| use_furthest || furthest == reported).flat_map(|a| a.expected_tokens()) {
        // pest does not export the token type; a literal token displays as itself.
        words.push(match token.to_string().as_str() {
            "=" => "`=`",
            "{" => "`{`",
            "}" => "`}`",
            "]" => "`]`",
            ")" => "`)`",
            // Inside a block a comma between fields is optional; do not offer it there.
            "," if matches!(innermost, Some('[' | '(')) => "`,`",
            _ => continue,
        });
    }
    if innermost == Some('{') {
        // Inside a block, a name starts the next field.
        for word in &mut words {
            if *word == "a name" {
                *word = "a field (`name = value`)";
            }
        }
    }
    words.sort_unstable();
    words.dedup();
    let expected = join_alternatives(&words);
    let mut diagnostic = Diagnostic::error(
        "lth::syntax::unexpected",
        span,
        format!("unexpected {found}"),
        if expected.is_empty() { "not expected here".to_owned() } else { format!("expected {expected}") },
    );
    let closer = |c: char| match c {
        '{' => '}',
        '[' => ']',
        _ => ')',
    };
    if at_end {
        if let Some(&(c, at)) = open.last() {
            let mut counts: Vec<String> = Vec::new();
            for kind in ['{', '[', '('] {
                let n = open.iter().filter(|(o, _)| *o == kind).count();
                if n > 0 {
                    counts.push(format!("{n} `{kind}`"));
                }
            }
            diagnostic =
                diagnostic.with_label(Span::new(source, at, at + 1), format!("this `{c}` is not closed")).with_help(if open.len() == 1 {
                    format!("1 `{c}` not closed before the end of the file; close it with `{}`", closer(c))
                } else {
                    format!(
                        "{} not closed before the end of the file; close the innermost `{c}` with `{}` first",
                        counts.join(" and "),
                        closer(c)
                    )
                });
        }
    } else if let Some(found_char @ ('}' | ']' | ')')) = rest.chars().next() {
        match open.last() {
            Some(&(c, at)) if closer(c) != found_char => {
                diagnostic = diagnostic
                    .with_label(Span::new(source, at, at + 1), format!("this `{c}` is not closed"))
                    .with_help(format!("close the `{c}` with `{}` before this `{found_char}`", closer(c)));
            }
            None => {
                diagnostic = diagnostic.with_help(format!("this `{found_char}` closes nothing: every bracket before it is already closed"))
            }
            Some(_) => {}
        }
    } else if rest.starts_with('"') {
        diagnostic = diagnostic.with_help("this string is not closed: a string ends with `\"` on the same line");
    } else if item_start {
        // A misspelt keyword where an item starts: `datset`.
        const KEYWORDS: &[&str] =
            &["use", "experiment", "preset", "dataset", "model", "train", "prune", "embed", "concepts", "explain", "compare", "report"];
        let word: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !word.is_empty() && !KEYWORDS.contains(&word.as_str()) {
            diagnostic = diagnostic.with_help_opt(crate::diagnostic::did_you_mean(&word, KEYWORDS.iter().copied()));
        }
    }
    diagnostic
}

fn join_alternatives(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The brackets opened before `error_at` and not yet closed, innermost last, with their offsets.
/// Strings and comments are skipped, as the grammar skips them.
fn unclosed(text: &str, error_at: usize) -> Vec<(char, usize)> {
    let mut open = Vec::new();
    let mut chars = text[..error_at.min(text.len())].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' | '\n' => break,
                        _ => {}
                    }
                }
            }
            '#' => while chars.next_if(|(_, c)| *c != '\n').is_some() {},
            '/' if chars.peek().is_some_and(|(_, c)| *c == '/') => while chars.next_if(|(_, c)| *c != '\n').is_some() {},
            '/' if chars.peek().is_some_and(|(_, c)| *c == '*') => {
                chars.next();
                let mut star = false;
                for (_, c) in chars.by_ref() {
                    if star && c == '/' {
                        break;
                    }
                    star = c == '*';
                }
            }
            '{' | '[' | '(' => open.push((c, i)),
            '}' | ']' | ')' => {
                open.pop();
            }
            _ => {}
        }
    }
    open
}
