//! Printing a layout tree in the canonical style (described in `fmt/mod.rs`).

use super::tree::{ArgRow, Block, FieldRow, Item, Note, Row, Seq, Value};

/// Lines longer than this are broken where the style allows.
pub const WIDTH: usize = 100;
const INDENT: usize = 2;

pub fn file(items: &Seq<Item>) -> String {
    let entries = rows(items, |row| vec![Entry::content(item(&row.item), &row.trailing)]);
    let mut out = render(&entries, 0);
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

fn item(item: &Item) -> String {
    match item {
        Item::Use(path) => format!("use {path}"),
        Item::Experiment(block) => format!("experiment {}", block_at(block, "experiment ".len(), 0)),
        Item::Declaration { head, block: None } => head.clone(),
        Item::Declaration { head, block: Some(block) } => format!("{head} {}", block_at(block, head.len() + 1, 0)),
    }
}

/// One printed line or group of lines inside a sequence.
enum Entry {
    Blank,
    Note(String),
    /// A row, possibly of several lines, and the comments after it on its last line.
    Content {
        text: String,
        trailing: Option<String>,
    },
}

impl Entry {
    fn content(text: String, trailing: &[String]) -> Entry {
        Entry::Content { text, trailing: if trailing.is_empty() { None } else { Some(trailing.join(" ")) } }
    }
}

/// The entries of a sequence: each row's notes, then the row as `print` lays it out, with blank
/// lines where the source had them (never before the first entry).
fn rows<T>(seq: &Seq<T>, mut print: impl FnMut(&Row<T>) -> Vec<Entry>) -> Vec<Entry> {
    let mut entries = Vec::new();
    let note = |entries: &mut Vec<Entry>, n: &Note| {
        if n.blank_before && !entries.is_empty() {
            entries.push(Entry::Blank);
        }
        entries.push(Entry::Note(n.text.clone()));
    };
    for row in &seq.rows {
        for n in &row.leading {
            note(&mut entries, n);
        }
        if row.blank_before && !entries.is_empty() {
            entries.push(Entry::Blank);
        }
        entries.extend(print(row));
    }
    for n in &seq.dangling {
        note(&mut entries, n);
    }
    entries
}

/// Joins entries into lines at `indent`. Trailing comments of consecutive one-line rows line up
/// two columns after the longest of those rows.
fn render(entries: &[Entry], indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut lines: Vec<String> = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        match &entries[i] {
            Entry::Blank => lines.push(String::new()),
            Entry::Note(text) => lines.push(format!("{pad}{text}")),
            Entry::Content { text, trailing: None } => lines.push(format!("{pad}{text}")),
            Entry::Content { text, trailing: Some(comment) } if text.contains('\n') => lines.push(format!("{pad}{text}  {comment}")),
            Entry::Content { .. } => {
                let run: Vec<(&String, &String)> = entries[i..]
                    .iter()
                    .map_while(|e| match e {
                        Entry::Content { text, trailing: Some(comment) } if !text.contains('\n') => Some((text, comment)),
                        _ => None,
                    })
                    .collect();
                let column = run.iter().map(|(text, _)| width(text)).max().unwrap_or(0) + 2;
                for (text, comment) in &run {
                    lines.push(format!("{pad}{text}{}{comment}", " ".repeat(column - width(text))));
                }
                i += run.len();
                continue;
            }
        }
        i += 1;
    }
    lines.iter().map(|l| l.trim_end()).collect::<Vec<_>>().join("\n")
}

pub fn width(text: &str) -> usize {
    text.chars().count()
}

/// The width of the last line of `text`.
fn last_line_width(text: &str) -> usize {
    width(text.rsplit('\n').next().unwrap_or(""))
}

/// A block whose `{` is at column `column` of a line indented by `indent`.
fn block_at(block: &Block, column: usize, indent: usize) -> String {
    if !block.opened_with_break {
        if let Some(flat) = flat_block(block) {
            if column + width(&flat) <= WIDTH {
                return flat;
            }
        }
    }
    if block.fields.rows.is_empty() && block.fields.dangling.is_empty() {
        return "{}".to_owned();
    }
    let inner = indent + INDENT;
    let names = name_columns(&block.fields);
    let mut index = 0;
    let entries = rows(&block.fields, |row| {
        let name_width = names[index];
        index += 1;
        let FieldRow { name, value: v } = &row.item;
        let prefix = format!("{name}{} = ", " ".repeat(name_width - width(name)));
        vec![Entry::content(format!("{prefix}{}", value(v, inner + width(&prefix), inner)), &row.trailing)]
    });
    format!("{{\n{}\n{}}}", render(&entries, inner), " ".repeat(indent))
}

/// The width each field's name is padded to: the longest name in its group, a run of fields not
/// separated by a blank line.
fn name_columns(fields: &Seq<FieldRow>) -> Vec<usize> {
    let mut out = vec![0; fields.rows.len()];
    let mut start = 0;
    for end in 1..=fields.rows.len() {
        if end == fields.rows.len() || Seq::starts_group(&fields.rows[end]) {
            let longest = fields.rows[start..end].iter().map(|r| width(&r.item.name)).max().unwrap_or(0);
            out[start..end].fill(longest);
            start = end;
        }
    }
    out
}

/// A value starting at `column` of a line indented by `indent`: on one line if it fits and holds
/// no comment, else broken at its outermost brackets.
fn value(v: &Value, column: usize, indent: usize) -> String {
    if let Some(flat) = flat(v) {
        if column + width(&flat) <= WIDTH {
            return flat;
        }
    }
    match v {
        Value::Atom(text) => text.clone(),
        Value::Member { base, member } => format!("{}.{member}", value(base, column, indent)),
        Value::Call { receiver, function, args } => {
            let head = match receiver {
                Some(r) => {
                    let r = value(r, column, indent);
                    format!("{r}.{function}")
                }
                None => function.clone(),
            };
            let end = if head.contains('\n') { last_line_width(&head) } else { column + width(&head) };
            if let Some(flat) = flat_seq(args, arg).filter(|f| end + width(f) + 2 <= WIDTH) {
                return format!("{head}({flat})");
            }
            format!("{head}({})", broken_seq(args, indent, |a, column| arg_broken(a, column, indent + INDENT)))
        }
        Value::List(items) => format!("[{}]", broken_seq(items, indent, |item, column| value(item, column, indent + INDENT))),
        Value::Configured { base, block } => {
            let base = value(base, column, indent);
            let column = if base.contains('\n') { last_line_width(&base) } else { column + width(&base) };
            format!("{base} {}", block_at(block, column + 1, indent))
        }
    }
}

fn arg_broken(a: &ArgRow, column: usize, indent: usize) -> String {
    match &a.name {
        Some(name) => format!("{name} = {}", value(&a.value, column + width(name) + 3, indent)),
        None => value(&a.value, column, indent),
    }
}

/// The rows of a list or argument list, one per line with a comma after each, then the closing
/// bracket's indentation.
fn broken_seq<T>(seq: &Seq<T>, indent: usize, print: impl Fn(&T, usize) -> String) -> String {
    if seq.rows.is_empty() && seq.dangling.is_empty() {
        return String::new();
    }
    let inner = indent + INDENT;
    let entries = rows(seq, |row| vec![Entry::content(format!("{},", print(&row.item, inner)), &row.trailing)]);
    format!("\n{}\n{}", render(&entries, inner), " ".repeat(indent))
}

/// The value on one line, or None if it holds a comment or a block written open.
fn flat(v: &Value) -> Option<String> {
    Some(match v {
        Value::Atom(text) => text.clone(),
        Value::Member { base, member } => format!("{}.{member}", flat(base)?),
        Value::Call { receiver, function, args } => {
            let receiver = match receiver {
                Some(r) => format!("{}.", flat(r)?),
                None => String::new(),
            };
            format!("{receiver}{function}({})", flat_seq(args, arg)?)
        }
        Value::List(items) => format!("[{}]", flat_seq(items, flat)?),
        Value::Configured { base, block } if !block.opened_with_break => format!("{} {}", flat(base)?, flat_block(block)?),
        Value::Configured { .. } => return None,
    })
}

fn arg(a: &ArgRow) -> Option<String> {
    let value = flat(&a.value)?;
    Some(match &a.name {
        Some(name) => format!("{name} = {value}"),
        None => value,
    })
}

fn flat_seq<T>(seq: &Seq<T>, print: impl Fn(&T) -> Option<String>) -> Option<String> {
    if seq.has_comments() {
        return None;
    }
    Some(seq.rows.iter().map(|r| print(&r.item)).collect::<Option<Vec<_>>>()?.join(", "))
}

fn flat_block(block: &Block) -> Option<String> {
    if block.fields.has_comments() {
        return None;
    }
    if block.fields.rows.is_empty() {
        return Some("{}".to_owned());
    }
    let fields: Option<Vec<String>> =
        block.fields.rows.iter().map(|r| Some(format!("{} = {}", r.item.name, flat(&r.item.value)?))).collect();
    Some(format!("{{ {} }}", fields?.join("  ")))
}
