//! Owns an open document: its rope, version and language, and applying incremental edits.

use std::sync::Arc;

use ropey::Rope;
use tower_lsp_server::ls_types::TextDocumentContentChangeEvent;

use super::encoding::{PositionEncoding, position_to_char};
use crate::review::finding::Finding;
use crate::syntax::Language;

pub struct TextDocument {
    pub rope: Rope,
    pub version: i32,
    /// `None` for files we don't review; they are still tracked so edits stay consistent.
    pub language: Option<Language>,
    /// The findings last published, and for which version: a review with one agent
    /// (`reviewFile {agent}`) replaces only that agent's part of them.
    pub published: Option<(i32, Arc<Vec<Finding>>)>,
}

impl TextDocument {
    pub fn new(text: &str, version: i32, language: Option<Language>) -> TextDocument {
        TextDocument { rope: Rope::from_str(text), version, language, published: None }
    }

    /// Applies one didChange batch in order. A change without a range replaces the text.
    pub fn apply(&mut self, changes: Vec<TextDocumentContentChangeEvent>, version: i32, enc: PositionEncoding) {
        for change in changes {
            match change.range {
                Some(range) => {
                    let start = position_to_char(&self.rope, range.start, enc);
                    let end = position_to_char(&self.rope, range.end, enc).max(start);
                    self.rope.remove(start..end);
                    self.rope.insert(start, &change.text);
                }
                None => self.rope = Rope::from_str(&change.text),
            }
        }
        self.version = version;
    }

    /// The `\r\n` or `\n` this document uses, judged by its first line.
    pub fn newline(&self) -> &'static str {
        newline_of(&self.rope)
    }
}

/// The `\r\n` or `\n` a text uses, judged by its first line.
pub fn newline_of(rope: &Rope) -> &'static str {
    let first = rope.line(0);
    let n = first.len_chars();
    if n >= 2 && first.char(n - 2) == '\r' && first.char(n - 1) == '\n' { "\r\n" } else { "\n" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_lsp_server::ls_types::{Position, Range};

    fn edit(sl: u32, sc: u32, el: u32, ec: u32, text: &str) -> TextDocumentContentChangeEvent {
        TextDocumentContentChangeEvent {
            range: Some(Range::new(Position::new(sl, sc), Position::new(el, ec))),
            range_length: None,
            text: text.into(),
        }
    }

    #[test]
    fn incremental_edits_after_emoji_land_in_the_right_place() {
        let mut d = TextDocument::new("x = '😀'\ny = 1\n", 1, Some(Language::Python));
        // The emoji is two UTF-16 units, so the closing quote is at column 7.
        d.apply(vec![edit(0, 7, 0, 8, "!'")], 2, PositionEncoding::Utf16);
        assert_eq!(d.rope.to_string(), "x = '😀!'\ny = 1\n");
        d.apply(vec![edit(1, 4, 1, 5, "2"), edit(0, 0, 0, 0, "# c\n")], 3, PositionEncoding::Utf16);
        assert_eq!(d.rope.to_string(), "# c\nx = '😀!'\ny = 2\n");
        assert_eq!(d.version, 3);
    }

    #[test]
    fn full_replacement() {
        let mut d = TextDocument::new("a", 1, None);
        d.apply(
            vec![TextDocumentContentChangeEvent { range: None, range_length: None, text: "b\r\n".into() }],
            2,
            PositionEncoding::Utf8,
        );
        assert_eq!(d.rope.to_string(), "b\r\n");
        assert_eq!(d.newline(), "\r\n");
    }
}
