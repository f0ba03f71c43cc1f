//! Owns turning findings into LSP diagnostics: positions through the line model, each fix as
//! the smallest edit plus what it was computed for (the reviewed version and the original
//! rows) in `Diagnostic.data`, and the per-file caps. Built from a cloned rope, outside every
//! lock.

use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::{Diagnostic, DiagnosticSeverity, NumberOrString, Range};

use super::encoding::{PositionEncoding, byte_column_to_position, position_at};
use crate::lines::Locator;
use crate::review::finding::{Finding, MAX_FIX_BYTES, Severity};

pub const SOURCE: &str = "review-lsp";

/// Longest message shown, in chars; a model's or the team tier's text can be any length.
pub const MAX_MESSAGE_CHARS: usize = 2_000;

/// What rides in `Diagnostic.data`: everything a code action needs, so a quick fix is a
/// decode plus a check against the current text, with no re-review.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DiagnosticData {
    pub rule: String,
    pub origin: String,
    /// The document version the finding was computed for; `None` for a file read from disk.
    #[serde(default)]
    pub version: Option<i32>,
    /// The diagnostic's start line when it was published, to follow a client that moves
    /// diagnostics with edits.
    #[serde(default)]
    pub line: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<FixEdit>,
}

/// The smallest edit, and the whole rows it was computed from so that it can be checked
/// against (and re-anchored in) the text the code action sees.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FixEdit {
    pub range: Range,
    #[serde(rename = "newText")]
    pub new_text: String,
    /// The rows the fix rewrites, terminators included, as reviewed.
    pub rows: String,
    /// The line `rows` started on.
    #[serde(rename = "rowsLine")]
    pub rows_line: u32,
    /// The replaced bytes: `rows[at..at + len]`.
    pub at: u32,
    pub len: u32,
}

/// The diagnostics of one file: most severe first when over `max`, then one summary.
pub fn build(
    loc: &Locator,
    version: Option<i32>,
    findings: &[Finding],
    enc: PositionEncoding,
    max: usize,
) -> Vec<Diagnostic> {
    let mut order: Vec<&Finding> = findings.iter().collect();
    if order.len() > max {
        order.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.span.cmp(&b.span)));
        order.truncate(max);
    }
    let mut out: Vec<Diagnostic> = order.into_iter().map(|f| to_diagnostic(loc, version, f, enc)).collect();
    if findings.len() > max {
        out.push(Diagnostic {
            range: Range::default(),
            severity: Some(DiagnosticSeverity::INFORMATION),
            source: Some(SOURCE.to_string()),
            message: format!("{} more findings not shown (review.max_findings_per_file = {max})", findings.len() - max),
            ..Default::default()
        });
    }
    out
}

pub fn to_diagnostic(loc: &Locator, version: Option<i32>, finding: &Finding, enc: PositionEncoding) -> Diagnostic {
    let s = &finding.span;
    let range = Range::new(
        byte_column_to_position(loc, s.start_line, s.start_col, enc),
        byte_column_to_position(loc, s.end_line, s.end_col, enc),
    );
    let fix = finding.fix.as_ref().and_then(|f| minimal_edit(loc, f.start_line, f.end_line, &f.replacement, enc));
    let data = DiagnosticData {
        rule: finding.rule.clone(),
        origin: finding.source.clone(),
        version,
        line: range.start.line,
        fix,
    };
    Diagnostic {
        range,
        severity: Some(severity(finding.severity)),
        // Rule ids and messages can come from a model or the team's Redis: shown escaped, since
        // a terminal editor (Neovim, Helix) would otherwise act on their control characters.
        code: Some(NumberOrString::String(crate::escape::line(&finding.rule).into_owned())),
        source: Some(SOURCE.to_string()),
        message: crate::escape::lines(&capped(&finding.message)).into_owned(),
        data: serde_json::to_value(data).ok(),
        ..Default::default()
    }
}

/// The whole-row fix `first..=last` → `replacement` as the smallest edit: the rows' and the
/// replacement's common prefix and suffix are left alone. `None` over the size cap.
fn minimal_edit(loc: &Locator, first: u32, last: u32, replacement: &str, enc: PositionEncoding) -> Option<FixEdit> {
    let (start, end) = (loc.row_start(first), loc.row_end(last));
    if end < start || end - start > MAX_FIX_BYTES || replacement.len() > MAX_FIX_BYTES {
        return None;
    }
    let rows = loc.text(start, end);
    let (at, old_end, new_end) = trim_common(&rows, replacement);
    Some(FixEdit {
        range: Range::new(position_at(loc, start + at, enc), position_at(loc, start + old_end, enc)),
        new_text: replacement[at..new_end].to_string(),
        rows_line: loc.line_of(start) as u32,
        at: at as u32,
        len: (old_end - at) as u32,
        rows,
    })
}

/// `(prefix, old_end, new_end)`: `old[prefix..old_end]` is what differs from
/// `new[prefix..new_end]`, cut on char boundaries.
pub fn trim_common(old: &str, new: &str) -> (usize, usize, usize) {
    let mut prefix = old.bytes().zip(new.bytes()).take_while(|(a, b)| a == b).count();
    while !old.is_char_boundary(prefix) || !new.is_char_boundary(prefix) {
        prefix -= 1;
    }
    let room = old.len().min(new.len()) - prefix;
    let mut suffix = old.bytes().rev().zip(new.bytes().rev()).take(room).take_while(|(a, b)| a == b).count();
    while !old.is_char_boundary(old.len() - suffix) || !new.is_char_boundary(new.len() - suffix) {
        suffix -= 1;
    }
    (prefix, old.len() - suffix, new.len() - suffix)
}

fn capped(message: &str) -> std::borrow::Cow<'_, str> {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]).into(),
        None => message.into(),
    }
}

fn severity(s: Severity) -> DiagnosticSeverity {
    match s {
        Severity::Error => DiagnosticSeverity::ERROR,
        Severity::Warning => DiagnosticSeverity::WARNING,
        Severity::Info => DiagnosticSeverity::INFORMATION,
        Severity::Hint => DiagnosticSeverity::HINT,
    }
}

/// Where a fix's edit lands when its rows start at byte `rows_start` of the current text.
pub fn edit_range(loc: &Locator, fix: &FixEdit, rows_start: usize, enc: PositionEncoding) -> Range {
    let start = rows_start + fix.at as usize;
    Range::new(position_at(loc, start, enc), position_at(loc, start + fix.len as usize, enc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::finding::{Category, Fix, Span};
    use tower_lsp_server::ls_types::Position;

    fn finding(line: u32, fix: Option<Fix>) -> Finding {
        Finding {
            rule: "r".into(),
            category: Category::Correctness,
            severity: Severity::Warning,
            source: "offline".into(),
            message: "m".repeat(3 * MAX_MESSAGE_CHARS),
            span: Span { start_line: line, start_col: 0, end_line: line, end_col: 1 },
            fix,
        }
    }

    #[test]
    fn the_fix_is_the_smallest_edit() {
        let loc = Locator::new("a = 1\nif x == None:\n");
        let fix = Fix { start_line: 1, end_line: 1, replacement: "if x is None:\n".into() };
        let d = to_diagnostic(&loc, Some(3), &finding(1, Some(fix)), PositionEncoding::Utf16);
        let data: DiagnosticData = serde_json::from_value(d.data.unwrap()).unwrap();
        let fix = data.fix.unwrap();
        assert_eq!(fix.range, Range::new(Position::new(1, 5), Position::new(1, 7)));
        assert_eq!((fix.new_text.as_str(), fix.rows.as_str(), fix.at, fix.len), ("is", "if x == None:\n", 5, 2));
        assert_eq!(data.version, Some(3));
        assert!(d.message.chars().count() <= MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn trimming_respects_chars_and_never_overlaps() {
        assert_eq!(trim_common("aaa", "aa"), (2, 3, 2));
        assert_eq!(trim_common("é", "è"), (0, 2, 2));
        assert_eq!(trim_common("x\n", ""), (0, 2, 0));
    }

    #[test]
    fn over_the_cap_one_summary() {
        let text = "x\n".repeat(10);
        let loc = Locator::new(&text);
        let findings: Vec<Finding> = (0..10).map(|l| finding(l, None)).collect();
        let d = build(&loc, None, &findings, PositionEncoding::Utf16, 4);
        assert_eq!(d.len(), 5);
        assert!(d[4].message.starts_with("6 more findings not shown"), "{}", d[4].message);
    }
}
