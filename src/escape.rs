//! Owns making outside text safe to show. File names, rule ids from user rules, model replies,
//! provider error bodies and settings values all come from someone else; shown raw, an ESC or
//! OSC sequence retitles the terminal or clears the screen, a CR overwrites a line, a newline
//! forges a finding line (or a `::error` workflow command in CI), and a bidi control makes text
//! read differently from what it is. Everything a person sees passes through here first.
//!
//! Escapes use Rust's spelling (`\n`, `\u{1b}`), so the original is recoverable by eye.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for characters that must not reach a terminal, a log line or an editor message as
/// they are: C0 controls, DEL, C1 controls, and the bidi embedding, override and isolate
/// controls (plus the implicit marks, which are as invisible and as misleading).
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// One line of outside text, safe to print: every unsafe character, newlines included, is
/// escaped. Borrows when there is nothing to escape, which is almost always.
pub fn line(s: &str) -> Cow<'_, str> {
    escape_where(s, is_unsafe)
}

/// Several lines of outside text (a model's explanation, a provider's error body): `\n` is
/// kept as the line break it is, everything else unsafe is escaped, a lone `\r` included.
pub fn lines(s: &str) -> Cow<'_, str> {
    escape_where(s, |c| c != '\n' && is_unsafe(c))
}

fn escape_where(s: &str, unsafe_char: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(&unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !unsafe_char(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => {
                let _ = write!(out, "\\u{{{:x}}}", other as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// A path for display, escaped as one line. Paths are bytes on Unix; non-UTF-8 parts show as
/// U+FFFD rather than as raw bytes.
pub fn path(p: &std::path::Path) -> String {
    line(&p.to_string_lossy()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_untouched() {
        assert!(matches!(line("src/app.py: eval is dangerous — ünïcode ok"), Cow::Borrowed(_)));
        assert!(matches!(lines("two\nlines"), Cow::Borrowed(_)));
    }

    #[test]
    fn terminal_and_ci_attacks_are_defused() {
        let title = "a\u{1b}]0;pwned\u{7}b";
        assert_eq!(line(title), "a\\u{1b}]0;pwned\\u{7}b");
        assert_eq!(line("x\r\n::error file=a::forged"), "x\\r\\n::error file=a::forged");
        assert_eq!(line("evil\u{202e}txt.py"), "evil\\u{202e}txt.py");
        assert_eq!(line("del\u{7f} c1\u{9b}2J"), "del\\u{7f} c1\\u{9b}2J");
        assert_eq!(line("iso\u{2066}late\u{2069}"), "iso\\u{2066}late\\u{2069}");
        assert_eq!(line("tab\tbed"), "tab\\tbed");
    }

    #[test]
    fn multiline_keeps_newlines_only() {
        assert_eq!(lines("one\ntwo\rthree\u{1b}[2J"), "one\ntwo\\rthree\\u{1b}[2J");
    }

    #[test]
    fn nothing_unsafe_survives_any_input() {
        let every: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        assert!(!line(&every).chars().any(is_unsafe));
        assert!(!lines(&every).chars().any(|c| c != '\n' && is_unsafe(c)));
    }
}
