//! Owns the line model. Positions we show (LSP, CLI reports) break lines at `\n`, `\r\n` and a
//! lone `\r`, as the LSP spec says; tree-sitter rows, and so the engine's `Span`/`Fix` rows,
//! break at `\n` only. [`Locator`] is the one place the two meet: it turns an engine
//! (row, byte column) into a byte offset, and a byte offset into a line and column.
//!
//! It sits on a ropey `Rope` built with `cr_lines` so that every lookup is O(log n): counting
//! columns from the start of the line per finding made a one-line minified file with 120 K
//! findings quadratic.

use ropey::Rope;

pub struct Locator {
    rope: Rope,
    /// Byte starts of the `\n`-rows, kept only when the text has a lone `\r` (otherwise rows
    /// and lines are the same and the rope answers directly).
    rows: Option<Vec<usize>>,
}

impl Locator {
    pub fn new(text: &str) -> Locator {
        Locator::from_rope(Rope::from_str(text))
    }

    /// Takes a (cheaply cloned) rope, e.g. an open document's.
    pub fn from_rope(rope: Rope) -> Locator {
        let rows = has_lone_cr(&rope).then(|| row_starts(&rope));
        Locator { rope, rows }
    }

    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    pub fn len(&self) -> usize {
        self.rope.len_bytes()
    }

    pub fn is_empty(&self) -> bool {
        self.rope.len_bytes() == 0
    }

    /// Whether engine row `row` exists (the text's last row may be empty).
    pub fn has_row(&self, row: u32) -> bool {
        (row as usize) < self.rows.as_ref().map_or(self.rope.len_lines(), Vec::len)
    }

    /// The byte where engine row `row` starts; the end of the text past the last row.
    pub fn row_start(&self, row: u32) -> usize {
        let row = row as usize;
        match &self.rows {
            Some(starts) => starts.get(row).copied().unwrap_or(self.len()),
            None if row < self.rope.len_lines() => self.rope.line_to_byte(row),
            None => self.len(),
        }
    }

    /// The byte after row `row`'s terminator: the next row's start or the end of the text.
    pub fn row_end(&self, row: u32) -> usize {
        self.row_start(row.saturating_add(1))
    }

    /// The byte offset of an engine position, clamped to the row's content (before its `\n` or
    /// `\r\n`) and moved back to a char boundary.
    pub fn offset(&self, row: u32, byte_col: u32) -> usize {
        let start = self.row_start(row);
        let end = self.content_end(start, self.row_end(row));
        let byte = start.saturating_add(byte_col as usize).min(end);
        self.rope.char_to_byte(self.rope.byte_to_char(byte))
    }

    /// `end` (a row end) without the row's `\n` / `\r\n`.
    fn content_end(&self, start: usize, end: usize) -> usize {
        let mut e = end;
        if e > start && self.rope.byte(e - 1) == b'\n' {
            e -= 1;
            if e > start && self.rope.byte(e - 1) == b'\r' {
                e -= 1;
            }
        }
        e
    }

    /// The 0-based line (LSP's model) holding `byte`.
    pub fn line_of(&self, byte: usize) -> usize {
        self.rope.byte_to_line(byte.min(self.len()))
    }

    /// `byte`'s 0-based line and its column in chars from the line start.
    pub fn line_and_char(&self, byte: usize) -> (usize, usize) {
        let line = self.line_of(byte);
        (line, self.rope.byte_to_char(byte.min(self.len())) - self.rope.line_to_char(line))
    }

    /// `byte`'s 0-based line and its column in UTF-16 code units.
    pub fn line_and_utf16(&self, byte: usize) -> (usize, usize) {
        let line = self.line_of(byte);
        let at = self.rope.char_to_utf16_cu(self.rope.byte_to_char(byte.min(self.len())));
        (line, at - self.rope.char_to_utf16_cu(self.rope.line_to_char(line)))
    }

    /// `byte`'s 0-based line and its column in bytes.
    pub fn line_and_byte(&self, byte: usize) -> (usize, usize) {
        let line = self.line_of(byte);
        (line, byte.min(self.len()) - self.rope.line_to_byte(line))
    }

    /// The text of `start..end` (byte offsets on char boundaries).
    pub fn text(&self, start: usize, end: usize) -> String {
        self.rope.byte_slice(start.min(end)..end.min(self.len())).to_string()
    }
}

/// Whether a `\r` that is not followed by `\n` occurs.
fn has_lone_cr(rope: &Rope) -> bool {
    let mut after_cr = false;
    for chunk in rope.chunks() {
        for &b in chunk.as_bytes() {
            if after_cr && b != b'\n' {
                return true;
            }
            after_cr = b == b'\r';
        }
    }
    after_cr
}

fn row_starts(rope: &Rope) -> Vec<usize> {
    let mut starts = vec![0];
    let mut at = 0;
    for chunk in rope.chunks() {
        starts.extend(chunk.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| at + i + 1));
        at += chunk.len();
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_cr_breaks_lines_but_not_rows() {
        // Row 1 ("b\rc\n") is lines 1 and 2.
        let l = Locator::new("a\nb\rc\nd");
        assert_eq!(l.offset(1, 2), 4);
        assert_eq!(l.line_and_char(l.offset(1, 2)), (2, 0));
        assert_eq!(l.line_and_char(l.offset(2, 0)), (3, 0));
        assert_eq!((l.row_start(1), l.row_end(1)), (2, 6));
    }

    #[test]
    fn crlf_is_one_break_and_columns_clamp_before_it() {
        let l = Locator::new("ab\r\ncd");
        assert_eq!(l.offset(0, 99), 2);
        assert_eq!(l.line_and_char(l.offset(1, 1)), (1, 1));
        assert_eq!(l.row_end(0), 4);
        assert_eq!(l.row_start(9), 6);
    }

    #[test]
    fn columns_in_each_unit() {
        let l = Locator::new("x\r😀y");
        let y = l.offset(0, 6);
        assert_eq!(l.line_and_char(y), (1, 1));
        assert_eq!(l.line_and_utf16(y), (1, 2));
        assert_eq!(l.line_and_byte(y), (1, 4));
        // A column inside the emoji rounds down to its start.
        assert_eq!(l.offset(0, 3), 2);
    }
}
