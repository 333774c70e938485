//! The text tables datasets are published with: comma-separated files with a header row
//! (HAM10000, Derm7pt) and whitespace-separated files without one (CUB-200). Every error names
//! the file, and the line or column at fault.

use super::super::{io_error, Result, StageError};
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub struct Table {
    pub path: PathBuf,
    header: Vec<String>,
    pub rows: Vec<Row>,
}

/// One record and the line it starts on (1-based, counting the header).
pub struct Row {
    pub line: usize,
    pub fields: Vec<String>,
}

/// A file's text; a missing file is reported as such, with its path.
pub fn read_text(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(missing_file(path)),
        Err(e) => Err(io_error(path, &e)),
    }
}

pub fn missing_file(path: &Path) -> StageError {
    StageError::new(format!("missing file {}", path.display()))
}

/// Fails with "missing folder" unless `path` is a folder.
pub fn require_dir(path: &Path) -> Result<()> {
    if path.is_dir() {
        Ok(())
    } else {
        Err(StageError::new(format!("missing folder {}", path.display())))
    }
}

impl Table {
    /// A comma-separated file whose first record names the columns. Fields may be quoted
    /// (`"a, b"`, with `""` for a quote inside), as spreadsheet exports write them.
    pub fn csv(path: &Path) -> Result<Table> {
        let text = read_text(path)?;
        let mut records = parse_csv(text.strip_prefix('\u{feff}').unwrap_or(&text))
            .map_err(|line| StageError::new(format!("{}, line {line}: a quoted field is never closed", path.display())))?;
        if records.is_empty() {
            return Err(StageError::new(format!("{} is empty; its first line should name the columns", path.display())));
        }
        let header = records.remove(0).fields.into_iter().map(|h| h.trim().to_owned()).collect();
        Ok(Table { path: path.to_owned(), header, rows: records })
    }

    /// A file of whitespace-separated words, one record per non-empty line, without a header.
    pub fn words(path: &Path) -> Result<Table> {
        let text = read_text(path)?;
        let rows = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| Row { line: i + 1, fields: l.split_whitespace().map(str::to_owned).collect() })
            .collect();
        Ok(Table { path: path.to_owned(), header: Vec::new(), rows })
    }

    /// The position of a named column.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.header.iter().position(|h| h == name).ok_or_else(|| {
            StageError::new(format!("{} has no column `{name}` (its columns: {})", self.path.display(), self.header.join(", ")))
        })
    }

    pub fn error(&self, row: &Row, message: impl std::fmt::Display) -> StageError {
        StageError::new(format!("{}, line {}: {message}", self.path.display(), row.line))
    }

    /// Field `column` of `row`, trimmed; a short row is an error.
    pub fn field<'a>(&self, row: &'a Row, column: usize) -> Result<&'a str> {
        row.fields
            .get(column)
            .map(|f| f.trim())
            .ok_or_else(|| self.error(row, format!("expected at least {} fields, found {}", column + 1, row.fields.len())))
    }

    /// Field `column` of `row` parsed as a number; `what` names it in the error.
    pub fn number<T: FromStr>(&self, row: &Row, column: usize, what: &str) -> Result<T> {
        let text = self.field(row, column)?;
        text.parse().map_err(|_| self.error(row, format!("{what} should be a number, found `{text}`")))
    }
}

/// Splits CSV text into records with the `csv` crate: fields may be quoted (`"a, b"`, `""` for
/// a quote inside, line breaks inside), rows may differ in length (a short row is reported when
/// a missing field is read), and blank lines are skipped. Err(line) when the last field opens a
/// quote that is never closed: the parser then runs to the end of the file, so a field holding a
/// line break where the file does not end on a closing quote can only be that.
fn parse_csv(text: &str) -> std::result::Result<Vec<Row>, usize> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        // Reading from a string fails only on invalid UTF-8, which a `&str` cannot hold.
        let Ok(record) = record else { continue };
        // The reader's position lies before the line breaks that precede a record (blank lines
        // too), so the record's first line is counted from the first byte after them.
        let byte = record.position().map_or(0, |p| usize::try_from(p.byte()).unwrap_or(0)).min(text.len());
        let start = byte + text.as_bytes()[byte..].iter().take_while(|c| matches!(c, b'\n' | b'\r')).count();
        let line = text.as_bytes()[..start].iter().filter(|c| **c == b'\n').count() + 1;
        let fields: Vec<String> = record.iter().map(str::to_owned).collect();
        if fields.len() == 1 && fields[0].trim().is_empty() {
            continue;
        }
        rows.push(Row { line, fields });
    }
    let unclosed = rows.last().and_then(|r| r.fields.last()).is_some_and(|f| f.contains('\n')) && !text.trim_end().ends_with('"');
    match rows.last() {
        Some(last) if unclosed => Err(last.line),
        _ => Ok(rows),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(rows: &[Row]) -> Vec<Vec<&str>> {
        rows.iter().map(|r| r.fields.iter().map(String::as_str).collect()).collect()
    }

    #[test]
    fn quoted_fields_keep_commas_quotes_and_line_breaks() {
        let rows = parse_csv("a,b,c\r\n1,\"x, y\",\"say \"\"hi\"\"\"\n\n2,\"two\nlines\",z").unwrap_or_else(|l| panic!("line {l}"));
        assert_eq!(fields(&rows), vec![vec!["a", "b", "c"], vec!["1", "x, y", "say \"hi\""], vec!["2", "two\nlines", "z"]]);
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![1, 2, 4]);
        assert_eq!(parse_csv("a\n\"open,\n").err(), Some(2));
    }

    #[test]
    fn a_missing_column_and_a_bad_number_are_named() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "\u{feff}id,name\n1,x\ntwo,y\n").unwrap_or_else(|e| panic!("{e}"));
        let table = Table::csv(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(table.column("name").ok(), Some(1));
        let err = table.column("dx").err().map(|e| e.0).unwrap_or_default();
        assert!(err.contains("t.csv has no column `dx`") && err.contains("id, name"), "{err}");
        assert_eq!(table.number::<u32>(&table.rows[0], 0, "id").ok(), Some(1));
        let err = table.number::<u32>(&table.rows[1], 0, "the id").err().map(|e| e.0).unwrap_or_default();
        assert!(err.contains("t.csv, line 3: the id should be a number, found `two`"), "{err}");
        let err = Table::words(&dir.path().join("absent.txt")).err().map(|e| e.0).unwrap_or_default();
        assert!(err.starts_with("missing file") && err.contains("absent.txt"), "{err}");
    }
}
