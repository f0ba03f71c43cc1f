//! Owns the `Finding`: what a review says about a span of a file, and the optional fix.
//!
//! Positions here are 0-based lines and UTF-8 byte columns, which is what tree-sitter gives.
//! The LSP layer converts to the client's encoding; the CLI converts to 1-based characters.

use serde::{Deserialize, Serialize};

/// Ordered so that `>=` means "at least as severe".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Hint,
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Hint => "hint",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// A review concern. Each category is served by one agent, so this doubles as the agent id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Security,
    Correctness,
    Performance,
    Maintainability,
    Documentation,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::Security,
        Category::Correctness,
        Category::Performance,
        Category::Maintainability,
        Category::Documentation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Security => "security",
            Category::Correctness => "correctness",
            Category::Performance => "performance",
            Category::Maintainability => "maintainability",
            Category::Documentation => "documentation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A half-open region: from (`start_line`, `start_col`) up to (`end_line`, `end_col`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Span {
    pub start_line: u32,
    pub start_col: u32,
    pub end_line: u32,
    pub end_col: u32,
}

impl Span {
    pub fn from_node(node: tree_sitter::Node<'_>) -> Self {
        let (s, e) = (node.start_position(), node.end_position());
        Span { start_line: s.row as u32, start_col: s.column as u32, end_line: e.row as u32, end_col: e.column as u32 }
    }

    /// The span moved down by `lines`; used to re-anchor cached chunk findings.
    pub fn shifted(self, lines: i64) -> Self {
        let mv = |l: u32| (l as i64 + lines).max(0) as u32;
        Span { start_line: mv(self.start_line), end_line: mv(self.end_line), ..self }
    }
}

/// The largest fix, in bytes of the lines it replaces and of its replacement: a fix is for a
/// person to accept, and a minified line is not one to fix by hand.
pub const MAX_FIX_BYTES: usize = 16 * 1024;

/// Replaces whole lines `start_line..=end_line`, line terminators included, with
/// `replacement`. Whole-line edits keep fixes easy to bound and to show in every output
/// format; `replacement` carries its own terminators, so `""` deletes the lines.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fix {
    pub start_line: u32,
    pub end_line: u32,
    pub replacement: String,
}

impl Fix {
    /// Builds the whole-line fix that results from replacing `source[start..end]` with
    /// `new_text`. Returns `None` when the byte range is not on char boundaries.
    pub fn from_edit(source: &str, start: usize, end: usize, new_text: &str) -> Option<Fix> {
        let start_line = source.get(..start)?.matches('\n').count() as u32;
        Fix::from_edit_on_line(source, start, end, new_text, start_line)
    }

    /// [`Fix::from_edit`] for callers that know the 0-based line `start` is on (a tree-sitter
    /// node's row). Counting the lines from the top of the file for every fix made a file
    /// with many fixes quadratic: 100K lines with 20K fixable findings took minutes to
    /// review (tests/stress_bad_input.rs). Offline rules use this one.
    pub fn from_edit_on_line(source: &str, start: usize, end: usize, new_text: &str, start_line: u32) -> Option<Fix> {
        if start > end || end > source.len() || !source.is_char_boundary(start) || !source.is_char_boundary(end) {
            return None;
        }
        if end - start > MAX_FIX_BYTES || new_text.len() > MAX_FIX_BYTES {
            return None;
        }
        // Looked for within the cap only: a minified line of 600 KB with 1,500 fixable
        // findings copied (and searched) the whole line per fix, 900 MB in all.
        let bytes = source.as_bytes();
        let lower = start.saturating_sub(MAX_FIX_BYTES);
        let line_start = match memchr::memrchr(b'\n', &bytes[lower..start]) {
            Some(i) => lower + i + 1,
            None if lower == 0 => 0,
            None => return None,
        };
        let upper = end.saturating_add(MAX_FIX_BYTES).min(source.len());
        let line_end = match memchr::memchr(b'\n', &bytes[end..upper]) {
            Some(i) => end + i + 1,
            None if upper == source.len() => source.len(),
            None => return None,
        };
        if line_end - line_start > MAX_FIX_BYTES {
            return None;
        }
        let end_line = start_line + source[line_start..line_end].trim_end_matches('\n').matches('\n').count() as u32;
        let mut replacement = String::with_capacity(line_end - line_start + new_text.len());
        replacement.push_str(&source[line_start..start]);
        replacement.push_str(new_text);
        replacement.push_str(&source[end..line_end]);
        Some(Fix { start_line, end_line, replacement })
    }

    /// Deletes the lines the node covers, for statements that should simply go.
    pub fn delete_lines(start_line: u32, end_line: u32) -> Fix {
        Fix { start_line, end_line, replacement: String::new() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id, `language/category/name`, e.g. `python/security/eval`.
    pub rule: String,
    pub category: Category,
    pub severity: Severity,
    /// `offline`, or `provider:model` for LLM agents.
    pub source: String,
    pub message: String,
    pub span: Span,
    pub fix: Option<Fix>,
}

impl Finding {
    /// Whether the fix stays inside the lines the finding covers. A fix that does not is
    /// never offered: we do not edit code the finding does not talk about.
    pub fn fix_is_contained(&self) -> bool {
        self.fix.as_ref().is_none_or(|f| {
            f.start_line <= f.end_line && f.start_line >= self.span.start_line && f.end_line <= self.span.end_line
        })
    }

    /// The finding moved down by `lines` (up when negative), fix included; used to store
    /// chunk findings relative to the chunk and to place them back where the chunk is now.
    pub fn shifted(mut self, lines: i64) -> Self {
        self.span = self.span.shifted(lines);
        if let Some(fix) = &mut self.fix {
            fix.start_line = (fix.start_line as i64 + lines).max(0) as u32;
            fix.end_line = (fix.end_line as i64 + lines).max(0) as u32;
        }
        self
    }

    /// Drops a fix that escapes the finding's lines, keeping the finding itself.
    pub fn contain_fix(mut self) -> Self {
        if !self.fix_is_contained() {
            tracing::warn!(rule = %self.rule, "dropped a fix that reached outside its finding");
            self.fix = None;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_becomes_whole_line_fix() {
        let src = "a = 1\nif x == None:\n    pass\n";
        let start = src.find("==").unwrap();
        let fix = Fix::from_edit(src, start, start + 2, "is").unwrap();
        assert_eq!(fix, Fix { start_line: 1, end_line: 1, replacement: "if x is None:\n".into() });
    }

    #[test]
    fn edit_on_last_line_without_newline_keeps_it_that_way() {
        let src = "a\nb == None";
        let start = src.find("==").unwrap();
        let fix = Fix::from_edit(src, start, start + 2, "is").unwrap();
        assert_eq!(fix.start_line, 1);
        assert_eq!(fix.replacement, "b is None");
    }

    #[test]
    fn multi_line_edit_spans_lines() {
        let src = "x = f(\n  1,\n  2)\ny = 2\n";
        let fix = Fix::from_edit(src, 4, src.find("y").unwrap() - 1, "g()").unwrap();
        assert_eq!((fix.start_line, fix.end_line), (0, 2));
        assert_eq!(fix.replacement, "x = g()\n");
    }

    #[test]
    fn no_fix_on_a_line_over_the_cap() {
        let src = format!("a == b;{}\nc == d;\n", " ".repeat(MAX_FIX_BYTES));
        assert!(Fix::from_edit(&src, 2, 4, "===").is_none());
        let second = src.rfind("==").unwrap();
        assert_eq!(Fix::from_edit(&src, second, second + 2, "===").unwrap().replacement, "c === d;\n");
    }

    #[test]
    fn escaping_fix_is_dropped() {
        let f = Finding {
            rule: "x".into(),
            category: Category::Correctness,
            severity: Severity::Warning,
            source: "offline".into(),
            message: "m".into(),
            span: Span { start_line: 3, start_col: 0, end_line: 3, end_col: 1 },
            fix: Some(Fix { start_line: 2, end_line: 3, replacement: String::new() }),
        };
        assert!(!f.fix_is_contained());
        assert!(f.contain_fix().fix.is_none());
    }
}
