//! Source texts and spans. Every diagnostic carries a [`Span`]; the text is attached only when a
//! diagnostic is rendered, so phases never copy source around.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Index of a source in a [`Sources`] set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub u32);

/// A byte range inside one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub source: SourceId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(source: SourceId, start: usize, end: usize) -> Self {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Span { source, start: clamp(start), end: clamp(end.max(start)) }
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.end == self.start
    }

    /// The smallest span covering both; `other` must be in the same source.
    pub fn to(self, other: Span) -> Span {
        Span { source: self.source, start: self.start.min(other.start), end: self.end.max(other.end) }
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// Where a source came from: a file the user named, or a stdlib module compiled into the binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Stdlib(&'static str),
}

#[derive(Debug)]
pub struct Source {
    pub origin: Origin,
    /// Name shown in diagnostics: the path as given, or `std/<module>.lth`.
    pub name: String,
    pub text: Arc<str>,
}

impl Source {
    pub fn directory(&self) -> Option<&Path> {
        match &self.origin {
            Origin::File(path) => path.parent(),
            Origin::Stdlib(_) => None,
        }
    }

    /// 1-based line and column of a byte offset, for plain-text locations.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = (offset as usize).min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// All sources taking part in one invocation.
#[derive(Debug, Default)]
pub struct Sources {
    sources: Vec<Source>,
}

impl Sources {
    pub fn add(&mut self, origin: Origin, name: String, text: impl Into<Arc<str>>) -> SourceId {
        let id = SourceId(u32::try_from(self.sources.len()).expect("fewer than 2^32 sources"));
        self.sources.push(Source { origin, name, text: text.into() });
        id
    }

    pub fn iter(&self) -> impl Iterator<Item = &Source> {
        self.sources.iter()
    }

    pub fn try_get(&self, id: SourceId) -> Option<&Source> {
        self.sources.get(id.0 as usize)
    }

    pub fn get(&self, id: SourceId) -> &Source {
        &self.sources[id.0 as usize]
    }

    pub fn find_stdlib(&self, module: &str) -> Option<SourceId> {
        self.sources
            .iter()
            .position(|s| matches!(s.origin, Origin::Stdlib(m) if m == module))
            .map(|i| SourceId(u32::try_from(i).unwrap_or(u32::MAX)))
    }

    pub fn snippet(&self, span: Span) -> &str {
        let text = &self.get(span.source).text;
        text.get(span.range()).unwrap_or("")
    }
}
