//! Byte offsets ↔ LSP positions (line, UTF-16 code unit), as the protocol's default encoding asks.

use lsp_types::{Position, Range};

pub struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset where each line starts.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    pub fn position(&self, offset: usize) -> Position {
        let offset = floor_boundary(self.text, offset.min(self.text.len()));
        let line = self.starts.partition_point(|s| *s <= offset) - 1;
        let column: usize = self.text[self.starts[line]..offset].chars().map(char::len_utf16).sum();
        Position { line: u32::try_from(line).unwrap_or(u32::MAX), character: u32::try_from(column).unwrap_or(u32::MAX) }
    }

    pub fn range(&self, range: std::ops::Range<usize>) -> Range {
        Range { start: self.position(range.start), end: self.position(range.end) }
    }

    /// The byte offset of a position; past the end of a line or of the text, the nearest end.
    pub fn offset(&self, position: Position) -> usize {
        let Some(&start) = self.starts.get(position.line as usize) else { return self.text.len() };
        let end = self.starts.get(position.line as usize + 1).map_or(self.text.len(), |next| next - 1);
        let mut units = 0;
        for (i, c) in self.text[start..end].char_indices() {
            if units >= position.character as usize {
                return start + i;
            }
            units += c.len_utf16();
        }
        end
    }
}

fn floor_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units() {
        let text = "ab\n\u{1F600}x\n";
        let index = LineIndex::new(text);
        assert_eq!(index.position(4), Position { line: 1, character: 0 });
        assert_eq!(index.position(7), Position { line: 1, character: 2 });
        assert_eq!(index.position(8), Position { line: 1, character: 3 });
        assert_eq!(index.offset(Position { line: 1, character: 2 }), 7);
        assert_eq!(index.offset(Position { line: 0, character: 99 }), 2);
        assert_eq!(index.offset(Position { line: 9, character: 0 }), text.len());
        assert_eq!(index.position(5), Position { line: 1, character: 0 });
    }
}
