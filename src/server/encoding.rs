//! Owns position conversion between the client's encoding (UTF-16 by default, UTF-8 when
//! the client offers it) and our rope/byte positions.

use ropey::{Rope, RopeSlice};

use crate::lines::Locator;
use tower_lsp_server::ls_types::{ClientCapabilities, Position, PositionEncodingKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PositionEncoding {
    Utf8,
    Utf16,
}

impl PositionEncoding {
    /// UTF-8 when the client lists it (no conversion needed for our byte columns),
    /// otherwise the mandatory UTF-16.
    pub fn negotiate(caps: &ClientCapabilities) -> PositionEncoding {
        let offered = caps.general.as_ref().and_then(|g| g.position_encodings.as_ref());
        if offered.is_some_and(|list| list.contains(&PositionEncodingKind::UTF8)) {
            PositionEncoding::Utf8
        } else {
            PositionEncoding::Utf16
        }
    }

    pub fn kind(self) -> PositionEncodingKind {
        match self {
            PositionEncoding::Utf8 => PositionEncodingKind::UTF8,
            PositionEncoding::Utf16 => PositionEncodingKind::UTF16,
        }
    }
}

/// A line's content without its terminator (`\n`, `\r\n` or a lone `\r`).
fn line_content(rope: &Rope, line: usize) -> RopeSlice<'_> {
    let slice = rope.line(line);
    let mut len = slice.len_chars();
    while len > 0 && matches!(slice.char(len - 1), '\n' | '\r') {
        len -= 1;
    }
    slice.slice(..len)
}

/// The char index of an LSP position. Out-of-range lines clamp to the end of the document
/// and out-of-range columns to the end of the line, as the spec asks.
pub fn position_to_char(rope: &Rope, pos: Position, enc: PositionEncoding) -> usize {
    let line = pos.line as usize;
    if line >= rope.len_lines() {
        return rope.len_chars();
    }
    let content = line_content(rope, line);
    let col = pos.character as usize;
    let in_line = match enc {
        PositionEncoding::Utf8 => {
            let byte = col.min(content.len_bytes());
            // A column inside a multi-byte char rounds down to the char's start.
            content.byte_to_char(byte)
        }
        PositionEncoding::Utf16 => content.utf16_cu_to_char(col.min(content.len_utf16_cu())),
    };
    rope.line_to_char(line) + in_line
}

/// The LSP position of a byte offset.
pub fn position_at(loc: &Locator, byte: usize, enc: PositionEncoding) -> Position {
    let (line, column) = match enc {
        PositionEncoding::Utf8 => loc.line_and_byte(byte),
        PositionEncoding::Utf16 => loc.line_and_utf16(byte),
    };
    Position::new(line as u32, column as u32)
}

/// The LSP position of an engine (row, UTF-8 byte column) location.
pub fn byte_column_to_position(loc: &Locator, row: u32, byte_col: u32, enc: PositionEncoding) -> Position {
    position_at(loc, loc.offset(row, byte_col), enc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_counts_two_utf16_units_and_four_bytes() {
        let rope = Rope::from_str("a😀b\n");
        let loc = Locator::from_rope(rope.clone());
        // 'b' is at byte 5, char 2, UTF-16 unit 3.
        assert_eq!(byte_column_to_position(&loc, 0, 5, PositionEncoding::Utf16), Position::new(0, 3));
        assert_eq!(byte_column_to_position(&loc, 0, 5, PositionEncoding::Utf8), Position::new(0, 5));
        assert_eq!(position_to_char(&rope, Position::new(0, 3), PositionEncoding::Utf16), 2);
        assert_eq!(position_to_char(&rope, Position::new(0, 5), PositionEncoding::Utf8), 2);
    }

    #[test]
    fn crlf_is_not_part_of_the_line() {
        let rope = Rope::from_str("ab\r\ncd\r\n");
        let loc = Locator::from_rope(rope.clone());
        assert_eq!(byte_column_to_position(&loc, 0, 9, PositionEncoding::Utf16), Position::new(0, 2));
        assert_eq!(position_to_char(&rope, Position::new(0, 99), PositionEncoding::Utf16), 2);
        assert_eq!(position_to_char(&rope, Position::new(1, 1), PositionEncoding::Utf16), 5);
    }

    #[test]
    fn combining_marks_are_separate_chars() {
        let loc = Locator::new("e\u{301}x\n");
        // x: byte 3, UTF-16 unit 2.
        assert_eq!(byte_column_to_position(&loc, 0, 3, PositionEncoding::Utf16), Position::new(0, 2));
    }

    #[test]
    fn a_lone_cr_ends_a_line() {
        let rope = Rope::from_str("a\rb\nc");
        assert_eq!(position_to_char(&rope, Position::new(1, 0), PositionEncoding::Utf16), 2);
        assert_eq!(position_to_char(&rope, Position::new(2, 0), PositionEncoding::Utf16), 4);
        // Engine row 0 is "a\rb": its column 2 is line 1, column 0.
        let loc = Locator::from_rope(rope);
        assert_eq!(byte_column_to_position(&loc, 0, 2, PositionEncoding::Utf16), Position::new(1, 0));
    }

    #[test]
    fn positions_past_the_end_clamp() {
        let rope = Rope::from_str("abc");
        assert_eq!(position_to_char(&rope, Position::new(9, 0), PositionEncoding::Utf16), 3);
        let loc = Locator::from_rope(rope.clone());
        assert_eq!(byte_column_to_position(&loc, 0, 99, PositionEncoding::Utf16), Position::new(0, 3));
        assert_eq!(byte_column_to_position(&loc, 7, 0, PositionEncoding::Utf16), Position::new(0, 3));
    }
}
