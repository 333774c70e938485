//! The layout tree: the syntax tree with every comment attached to a row and every choice the
//! style leaves to the writer recorded (blank lines between rows, a block opened with a line
//! break). Printing it is then a pure function of this tree.

use super::comments::{Comment, Pool};
use crate::syntax::ast::{Arg, Declaration, ExperimentBlock, Expr, ExprKind, Field, Module, Use};
use std::ops::Range;

#[derive(Debug)]
pub enum Value {
    /// A literal or a name, written as in the source (`1e-4`, `72.9%`, `"a\"b"`).
    Atom(String),
    Member {
        base: Box<Value>,
        member: String,
    },
    Call {
        receiver: Option<Box<Value>>,
        function: String,
        args: Seq<ArgRow>,
    },
    List(Seq<Value>),
    Configured {
        base: Box<Value>,
        block: Block,
    },
}

#[derive(Debug)]
pub struct FieldRow {
    pub name: String,
    pub value: Value,
}

#[derive(Debug)]
pub struct ArgRow {
    pub name: Option<String>,
    pub value: Value,
}

/// A comment on a line of its own.
#[derive(Debug)]
pub struct Note {
    pub text: String,
    pub blank_before: bool,
}

#[derive(Debug)]
pub struct Row<T> {
    /// Comments on the lines above the row, and comments from inside the row that have no
    /// place of their own there (`a = b /* here */ .c`), moved above it.
    pub leading: Vec<Note>,
    pub blank_before: bool,
    pub item: T,
    /// Comments after the row on its last line.
    pub trailing: Vec<String>,
}

/// The rows between a pair of brackets, or of the whole file.
#[derive(Debug)]
pub struct Seq<T> {
    pub rows: Vec<Row<T>>,
    /// Comments after the last row.
    pub dangling: Vec<Note>,
}

impl<T> Seq<T> {
    pub fn has_comments(&self) -> bool {
        !self.dangling.is_empty() || self.rows.iter().any(|r| !r.leading.is_empty() || !r.trailing.is_empty())
    }

    /// Whether a row starts a new group of aligned rows: a blank line comes before it or its notes.
    pub fn starts_group(row: &Row<T>) -> bool {
        row.blank_before || row.leading.first().is_some_and(|n| n.blank_before)
    }
}

#[derive(Debug)]
pub struct Block {
    pub fields: Seq<FieldRow>,
    /// Written with a line break after `{`: kept on several lines even where one would do.
    pub opened_with_break: bool,
}

#[derive(Debug)]
pub enum Item {
    Use(String),
    Experiment(Block),
    /// `[preset] category name = base`, and the block if one was written.
    Declaration {
        head: String,
        block: Option<Block>,
    },
}

pub struct Builder<'a> {
    text: &'a str,
    pool: Pool,
}

enum ItemRef<'m> {
    Use(&'m Use),
    Experiment(&'m ExperimentBlock),
    Declaration(&'m Declaration),
}

impl<'a> Builder<'a> {
    pub fn new(text: &'a str, pool: Pool) -> Self {
        Builder { text, pool }
    }

    /// The comments no row claimed. Empty for every tree built from a parsed module; the caller
    /// checks, so a comment can never be lost silently.
    pub fn leftover(&self) -> Vec<Comment> {
        self.pool.unclaimed().cloned().collect()
    }

    pub fn file(&mut self, module: &Module) -> Seq<Item> {
        let mut items: Vec<(Range<usize>, ItemRef<'_>)> = Vec::new();
        items.extend(module.uses.iter().map(|u| (u.span.range(), ItemRef::Use(u))));
        items.extend(module.declarations.iter().map(|d| (d.span.range(), ItemRef::Declaration(d))));
        for experiment in &module.experiments {
            let (_, close) = self.experiment_brackets(experiment);
            items.push((experiment.keyword.start as usize..close + 1, ItemRef::Experiment(experiment)));
        }
        items.sort_by_key(|(range, _)| range.start);
        self.seq(0..self.text.len(), &items, |(range, _)| range.clone(), |b, (_, item)| b.item(item))
    }

    fn item(&mut self, item: &ItemRef<'_>) -> Item {
        match item {
            ItemRef::Use(u) => Item::Use(u.path.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(".")),
            ItemRef::Experiment(experiment) => {
                let (open, close) = self.experiment_brackets(experiment);
                Item::Experiment(self.block(open, close, &experiment.fields))
            }
            ItemRef::Declaration(d) => {
                let preset = if d.preset { "preset " } else { "" };
                let head = format!("{preset}{} {} = {}", d.category.name, d.name.name, d.base.name);
                let end = d.span.end as usize;
                let block = if self.text.as_bytes().get(end.wrapping_sub(1)) == Some(&b'}') {
                    let open = self.pool.next_token(self.text, d.base.span.end as usize, &[]);
                    Some(self.block(open, end - 1, &d.fields))
                } else {
                    None
                };
                Item::Declaration { head, block }
            }
        }
    }

    /// The offsets of an experiment's `{` and `}`; the syntax tree records only its keyword.
    fn experiment_brackets(&self, experiment: &ExperimentBlock) -> (usize, usize) {
        let open = self.pool.next_token(self.text, experiment.keyword.end as usize, &[]);
        let after = experiment.fields.last().map_or(open + 1, |f| f.value.span.end as usize);
        (open, self.pool.next_token(self.text, after, b",;"))
    }

    /// The block between the `{` at `open` and the `}` at `close`.
    fn block(&mut self, open: usize, close: usize, fields: &[Field]) -> Block {
        let first = fields.first().map_or(close, |f| f.name.span.start as usize);
        let opened_with_break = self.text.get(open + 1..first).is_some_and(|gap| gap.contains('\n'));
        let fields = self.seq(
            open + 1..close,
            fields,
            |f| f.name.span.start as usize..f.value.span.end as usize,
            |b, f| FieldRow { name: f.name.name.clone(), value: b.value(&f.value) },
        );
        Block { fields, opened_with_break }
    }

    fn value(&mut self, expr: &Expr) -> Value {
        let span = expr.span.range();
        match &expr.kind {
            ExprKind::Integer(_) | ExprKind::Float(_) | ExprKind::Percent(_) | ExprKind::Str(_) | ExprKind::Name(_) => {
                Value::Atom(self.text[span].to_owned())
            }
            // A range may hold spaces and comments between its parts; its numbers say all of it.
            ExprKind::Range { start, end, inclusive } => Value::Atom(format!("{start}..{}{end}", if *inclusive { "=" } else { "" })),
            ExprKind::List(items) => Value::List(self.seq(span.start + 1..span.end - 1, items, |e| e.span.range(), Self::value)),
            ExprKind::Member { base, member } => Value::Member { base: Box::new(self.value(base)), member: member.name.clone() },
            ExprKind::Call { receiver, function, args } => {
                let receiver = receiver.as_ref().map(|r| Box::new(self.value(r)));
                let open = self.pool.next_token(self.text, function.span.end as usize, &[]);
                let args = self.seq(
                    open + 1..span.end - 1,
                    args,
                    |a| a.name.as_ref().map_or(a.value.span.start, |n| n.span.start) as usize..a.value.span.end as usize,
                    |b, a: &Arg| ArgRow { name: a.name.as_ref().map(|n| n.name.clone()), value: b.value(&a.value) },
                );
                Value::Call { receiver, function: function.name.clone(), args }
            }
            ExprKind::Configured { base, fields } => {
                let base_value = self.value(base);
                let open = self.pool.next_token(self.text, base.span.end as usize, &[]);
                Value::Configured { base: Box::new(base_value), block: self.block(open, span.end - 1, fields) }
            }
        }
    }

    /// Builds the rows of `items` between brackets (`interior` excludes them) and gives each
    /// comment there to a row: after a row on its line, it trails the row; otherwise it leads
    /// the next row, or dangles after the last.
    fn seq<S, T>(
        &mut self,
        interior: Range<usize>,
        items: &[S],
        span: impl Fn(&S) -> Range<usize>,
        mut build: impl FnMut(&mut Self, &S) -> T,
    ) -> Seq<T> {
        let mut rows: Vec<Row<T>> = Vec::new();
        let mut previous = interior.start;
        for source in items {
            let range = span(source);
            let (leading, blank_before) = self.gap(previous, range.start, &mut rows);
            let item = build(self, source);
            let mut row = Row { leading, blank_before, item, trailing: Vec::new() };
            let mut moved = self.pool.take(range.clone()).into_iter();
            if let Some(first) = moved.next() {
                row.leading.push(Note { text: first.text, blank_before: std::mem::take(&mut row.blank_before) });
                row.leading.extend(moved.map(|c| Note { text: c.text, blank_before: false }));
            }
            rows.push(row);
            previous = range.end;
        }
        let (dangling, _) = self.gap(previous, interior.end, &mut rows);
        Seq { rows, dangling }
    }

    /// The comments between `from` and `to`: those on the line `from` ends trail the last row;
    /// the others come back as notes, with whether a blank line separates `to` from what precedes.
    fn gap<T>(&mut self, from: usize, to: usize, rows: &mut [Row<T>]) -> (Vec<Note>, bool) {
        let mut notes = Vec::new();
        let mut cursor = from;
        for comment in self.pool.take(from..to) {
            let between = &self.text[cursor..comment.range.start];
            match rows.last_mut() {
                Some(row) if notes.is_empty() && !between.contains('\n') => row.trailing.push(comment.text),
                _ => notes.push(Note { text: comment.text, blank_before: blank_line(between) }),
            }
            cursor = comment.range.end;
        }
        (notes, blank_line(&self.text[cursor..to.max(cursor)]))
    }
}

/// Whether `gap` (whitespace and separators) holds an empty line.
fn blank_line(gap: &str) -> bool {
    let lines: Vec<&str> = gap.split('\n').collect();
    lines.len() > 2 && lines[1..lines.len() - 1].iter().any(|l| l.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::blank_line;

    #[test]
    fn blank_lines_need_two_line_breaks() {
        assert!(!blank_line("  "));
        assert!(!blank_line(",\n  "));
        assert!(blank_line("\n\n"));
        assert!(blank_line(" ,\n \t\n  "));
    }
}
