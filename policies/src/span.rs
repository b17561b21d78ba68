//! Byte spans, as toml reports them, turned into the 1-based `line:column` people and
//! editors use.

use std::ops::Range;

/// A place in the file: 1-based line and column, the column counted in characters so that
/// it agrees with what an editor shows on lines holding non-ASCII text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// Where byte `offset` of `source` is. Offsets past the end, or inside a multi-byte
    /// character, are pulled back rather than trusted: this runs on error paths, which must
    /// not panic.
    pub fn of(source: &str, offset: usize) -> Self {
        let mut offset = offset.min(source.len());
        while !source.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &source[..offset];
        // A byte-order mark is invisible in editors; columns should not count it.
        let line_start = before
            .rfind('\n')
            .map_or(if before.starts_with('\u{feff}') { 3 } else { 0 }, |nl| {
                nl + 1
            });
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }

    /// Where a span starts.
    pub fn of_span(source: &str, span: &Range<usize>) -> Self {
        Self::of(source, span.start)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::Position;

    #[test]
    fn positions() {
        let s = "ab\ncd\n\u{e9}x";
        assert_eq!(Position::of(s, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::of(s, 1), Position { line: 1, column: 2 });
        assert_eq!(Position::of(s, 3), Position { line: 2, column: 1 });
        // `x` follows a two-byte character: column 2, not 3.
        assert_eq!(Position::of(s, 8), Position { line: 3, column: 2 });
        // Inside the two-byte character, and far past the end: no panic.
        assert_eq!(Position::of(s, 7), Position { line: 3, column: 1 });
        assert_eq!(Position::of(s, 999), Position { line: 3, column: 3 });
        assert_eq!(Position::of("", 5), Position { line: 1, column: 1 });
        assert_eq!(
            Position::of("\u{feff}x", 3),
            Position { line: 1, column: 1 }
        );
    }
}
