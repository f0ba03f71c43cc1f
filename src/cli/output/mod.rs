//! Owns what every `scan` report format shares: the [`Report`] model and the conversion of
//! engine positions (0-based lines, UTF-8 byte columns) to report positions (1-based lines,
//! 1-based columns in Unicode code points). The formats themselves live in `text`, `json`,
//! `sarif` and `github`; each writes a whole [`Report`] to stdout. Lines for people on stderr
//! go through `stderr`.

pub mod github;
pub mod json;
pub mod markdown;
pub mod sarif;
pub mod stderr;
pub mod text;

use std::path::{Component, Path};

use serde::Serialize;

use crate::lines::Locator;
use crate::review::finding::Finding;

/// Everything a scan produced, in path order.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Reported>,
    pub skipped: Vec<Skipped>,
    pub stats: Stats,
    /// The scan root as an absolute `file://` URI ending in `/`, for SARIF's `%SRCROOT%`.
    pub root_uri: Option<String>,
}

/// A finding placed in its file: what the report formats print.
#[derive(Clone, Debug, PartialEq)]
pub struct Reported {
    /// Relative to the scan root, forward slashes.
    pub path: String,
    pub start: Pos,
    /// Exclusive: the character after the finding, as SARIF's `endColumn`.
    pub end: Pos,
    pub fix: Option<ReportedFix>,
    pub finding: Finding,
}

/// A 1-based line and a 1-based column counted in Unicode code points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

/// A whole-line fix in report terms.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportedFix {
    /// First and last replaced line, 1-based, inclusive.
    pub line: u32,
    pub end_line: u32,
    /// Replaces the lines including their terminators.
    pub replacement: String,
    /// Where the replaced text ends, exclusive: the start of the line after `end_line`, or
    /// the end of `end_line` when it is the last line and has no terminator. With
    /// (`line`, 1) this is the exact region for formats that want columns (SARIF).
    pub deleted_end: Pos,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// The `stats` object of the JSON report; field names are part of the format.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub files_scanned: u64,
    pub files_skipped: u64,
    pub findings: u64,
    /// Files whose findings came from the cache.
    pub cache_hits: u64,
    /// Files reviewed afresh (`files_scanned - cache_hits`, also with the cache off).
    pub cache_misses: u64,
    pub llm_calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub duration_ms: u64,
}

/// Places `findings` of one file, whose text is `text`, for the report. Lines are the
/// LSP's (`\n`, `\r\n` and a lone `\r` end one); see [`crate::lines`].
pub fn locate(path: &str, text: &str, findings: Vec<Finding>) -> Vec<Reported> {
    if findings.is_empty() {
        return Vec::new();
    }
    let loc = Locator::new(text);
    findings
        .into_iter()
        .map(|finding| {
            let span = finding.span;
            let fix = finding.fix.as_ref().map(|fix| {
                let (start, end) = (loc.row_start(fix.start_line), loc.row_end(fix.end_line));
                ReportedFix {
                    line: loc.line_of(start) as u32 + 1,
                    end_line: loc.line_of(end.saturating_sub(1).max(start)) as u32 + 1,
                    replacement: fix.replacement.clone(),
                    deleted_end: pos_at(&loc, end),
                }
            });
            Reported {
                path: path.to_string(),
                start: pos(&loc, span.start_line, span.start_col),
                end: pos(&loc, span.end_line, span.end_col),
                fix,
                finding,
            }
        })
        .collect()
}

/// An engine (row, byte column) as a report position: 1-based line, 1-based column in chars.
fn pos(loc: &Locator, row: u32, byte_col: u32) -> Pos {
    if !loc.has_row(row) {
        // Past the end of the text: nothing to count with, keep the engine's numbers.
        return Pos { line: row + 1, column: byte_col + 1 };
    }
    pos_at(loc, loc.offset(row, byte_col))
}

fn pos_at(loc: &Locator, byte: usize) -> Pos {
    let (line, column) = loc.line_and_char(byte);
    Pos { line: line as u32 + 1, column: column as u32 + 1 }
}

/// `path` relative to `root`, with forward slashes, for reports. A path outside the root is
/// shown as given.
pub fn relative_path(root: &Path, path: &Path) -> String {
    let lexical = strip_cur_dir(path).strip_prefix(strip_cur_dir(root)).ok().map(Path::to_path_buf);
    let rel = lexical.or_else(|| {
        let (root, path) = (std::path::absolute(root).ok()?, std::path::absolute(path).ok()?);
        path.strip_prefix(root).ok().map(Path::to_path_buf)
    });
    let shown = rel.as_deref().unwrap_or(path);
    let mut out = String::new();
    for component in shown.components() {
        match component {
            Component::CurDir => continue,
            Component::RootDir => out.push('/'),
            Component::Prefix(p) => out.push_str(&p.as_os_str().to_string_lossy()),
            Component::ParentDir | Component::Normal(_) => {
                if !out.is_empty() && !out.ends_with('/') {
                    out.push('/');
                }
                out.push_str(&component.as_os_str().to_string_lossy());
            }
        }
    }
    out
}

fn strip_cur_dir(path: &Path) -> &Path {
    let mut components = path.components();
    while components.clone().next() == Some(Component::CurDir) {
        components.next();
    }
    components.as_path()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::finding::{Category, Fix, Severity, Span};

    fn finding(span: Span, fix: Option<Fix>) -> Finding {
        Finding {
            rule: "r".into(),
            category: Category::Correctness,
            severity: Severity::Warning,
            source: "offline".into(),
            message: "m".into(),
            span,
            fix,
        }
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        // "😀" is 4 bytes and 1 char, "é" 2 bytes and 1 char.
        let text = "a = 1\ns = \"😀é\"; x == None\n";
        let start = text.lines().nth(1).unwrap().find("x").unwrap() as u32;
        let span = Span { start_line: 1, start_col: start, end_line: 1, end_col: start + 9 };
        let r = &locate("a.py", text, vec![finding(span, None)])[0];
        assert_eq!(r.start, Pos { line: 2, column: 11 });
        assert_eq!(r.end, Pos { line: 2, column: 20 });
    }

    #[test]
    fn fix_region_ends_at_next_line_or_end_of_text() {
        let text = "a\nb == None";
        let span = Span { start_line: 0, start_col: 0, end_line: 0, end_col: 1 };
        let fix = Fix { start_line: 0, end_line: 0, replacement: String::new() };
        let r = &locate("a.py", text, vec![finding(span, Some(fix))])[0];
        let f = r.fix.as_ref().unwrap();
        assert_eq!((f.line, f.end_line, f.deleted_end), (1, 1, Pos { line: 2, column: 1 }));

        let span = Span { start_line: 1, start_col: 0, end_line: 1, end_col: 1 };
        let fix = Fix { start_line: 1, end_line: 1, replacement: "b is None".into() };
        let r = &locate("a.py", text, vec![finding(span, Some(fix))])[0];
        assert_eq!(r.fix.as_ref().unwrap().deleted_end, Pos { line: 2, column: 10 });
    }

    #[test]
    fn a_lone_cr_ends_a_line() {
        // Engine row 0 is "a = 1\ry == None" (tree-sitter rows end at \n only).
        let text = "a = 1\ry == None\nz\n";
        let span = Span { start_line: 0, start_col: 8, end_line: 0, end_col: 10 };
        let fix = Fix { start_line: 0, end_line: 0, replacement: "a = 1\ry is None\n".into() };
        let r = &locate("a.py", text, vec![finding(span, Some(fix))])[0];
        assert_eq!((r.start, r.end), (Pos { line: 2, column: 3 }, Pos { line: 2, column: 5 }));
        let f = r.fix.as_ref().unwrap();
        assert_eq!((f.line, f.end_line, f.deleted_end), (1, 2, Pos { line: 3, column: 1 }));
    }

    #[test]
    fn out_of_range_positions_do_not_panic() {
        let span = Span { start_line: 5, start_col: 3, end_line: 0, end_col: 99 };
        let r = &locate("a.py", "ab\n", vec![finding(span, None)])[0];
        assert_eq!((r.start, r.end), (Pos { line: 6, column: 4 }, Pos { line: 1, column: 3 }));
    }

    #[test]
    fn paths_are_relative_with_forward_slashes() {
        assert_eq!(relative_path(Path::new("."), Path::new("src/a.py")), "src/a.py");
        assert_eq!(relative_path(Path::new("."), Path::new("./src/a.py")), "src/a.py");
        assert_eq!(relative_path(Path::new("./proj"), Path::new("proj/src/a.py")), "src/a.py");
        assert_eq!(relative_path(Path::new("/w/proj"), Path::new("/w/proj/a.py")), "a.py");
        assert_eq!(relative_path(Path::new("/w/proj"), Path::new("/elsewhere/a.py")), "/elsewhere/a.py");
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(relative_path(&cwd, Path::new("src/a.py")), "src/a.py");
    }
}
