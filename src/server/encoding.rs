//! Owns position conversion between the client's encoding (UTF-16 by default, UTF-8 when
//! the client offers it) and our rope/byte positions.

use ropey::{Rope, RopeSlice};
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

/// The LSP position of a (0-based line, UTF-8 byte column) location in `rope`.
pub fn byte_column_to_position(rope: &Rope, line: u32, byte_col: u32, enc: PositionEncoding) -> Position {
    let l = line as usize;
    if l >= rope.len_lines() {
        let last = rope.len_lines().saturating_sub(1);
        return Position::new(last as u32, encoded_len(line_content(rope, last), enc));
    }
    let content = line_content(rope, l);
    let byte = (byte_col as usize).min(content.len_bytes());
    let ch = content.byte_to_char(byte);
    let character = match enc {
        PositionEncoding::Utf8 => content.char_to_byte(ch),
        PositionEncoding::Utf16 => content.char_to_utf16_cu(ch),
    };
    Position::new(line, character as u32)
}

/// The position just past the end of `line`'s content.
pub fn end_of_line(rope: &Rope, line: u32, enc: PositionEncoding) -> Position {
    let l = (line as usize).min(rope.len_lines().saturating_sub(1));
    Position::new(l as u32, encoded_len(line_content(rope, l), enc))
}

fn encoded_len(slice: RopeSlice<'_>, enc: PositionEncoding) -> u32 {
    match enc {
        PositionEncoding::Utf8 => slice.len_bytes() as u32,
        PositionEncoding::Utf16 => slice.len_utf16_cu() as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_counts_two_utf16_units_and_four_bytes() {
        let rope = Rope::from_str("a😀b\n");
        // 'b' is at byte 5, char 2, UTF-16 unit 3.
        assert_eq!(byte_column_to_position(&rope, 0, 5, PositionEncoding::Utf16), Position::new(0, 3));
        assert_eq!(byte_column_to_position(&rope, 0, 5, PositionEncoding::Utf8), Position::new(0, 5));
        assert_eq!(position_to_char(&rope, Position::new(0, 3), PositionEncoding::Utf16), 2);
        assert_eq!(position_to_char(&rope, Position::new(0, 5), PositionEncoding::Utf8), 2);
    }

    #[test]
    fn crlf_is_not_part_of_the_line() {
        let rope = Rope::from_str("ab\r\ncd\r\n");
        assert_eq!(end_of_line(&rope, 0, PositionEncoding::Utf16), Position::new(0, 2));
        assert_eq!(position_to_char(&rope, Position::new(0, 99), PositionEncoding::Utf16), 2);
        assert_eq!(position_to_char(&rope, Position::new(1, 1), PositionEncoding::Utf16), 5);
    }

    #[test]
    fn combining_marks_are_separate_chars() {
        let rope = Rope::from_str("e\u{301}x\n");
        // x: byte 3, UTF-16 unit 2.
        assert_eq!(byte_column_to_position(&rope, 0, 3, PositionEncoding::Utf16), Position::new(0, 2));
    }

    #[test]
    fn positions_past_the_end_clamp() {
        let rope = Rope::from_str("abc");
        assert_eq!(position_to_char(&rope, Position::new(9, 0), PositionEncoding::Utf16), 3);
        assert_eq!(byte_column_to_position(&rope, 0, 99, PositionEncoding::Utf16), Position::new(0, 3));
    }
}
