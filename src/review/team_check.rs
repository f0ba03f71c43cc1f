//! Owns checking results that come from the team's Redis before they are used. Whoever can
//! write to that Redis can plant entries, so they are untrusted input exactly like a model
//! reply: a planted finding could carry a one-click fix over the whole file, or an `error`
//! that flips `--fail-on error` in CI. An entry is used only if every finding in it holds up:
//! lines inside the file or chunk it is stored for, a fix inside its finding and no larger
//! than a model's fix may be, a source that could have produced it, bounded sizes. One bad
//! finding rejects the whole entry (a miss, reviewed afresh and overwritten), rather than
//! keeping the rest: a partial entry would be cached locally as if it were complete.

use std::ops::Range;

use crate::review::finding::Finding;
use crate::review::reply::{MAX_FIX_LINES, fix_size_is_plausible};

/// Findings one entry may hold. Real entries stay far below: a chunk's worth of rule matches,
/// or a file's.
const MAX_FINDINGS: usize = 10_000;
/// A model's message is cut to 1,000 characters (plus `…`); offline messages are one line.
const MAX_MESSAGE_CHARS: usize = 1_001;
/// Rule ids are `language/category/name`; sources are `offline` or `provider:model`.
const MAX_ID_CHARS: usize = 200;

/// Where an entry's findings may be and who may have produced them.
pub struct Expected<'a> {
    /// Allowed 0-based lines, half-open, in the entry's own coordinates (chunk entries are
    /// stored relative to the chunk's first line).
    pub lines: Vec<Range<u32>>,
    /// `offline` and/or the `provider:model` of each agent routed to a model.
    pub sources: &'a [String],
    /// The text the lines refer to (the file, or the chunk's own text), split into lines, for
    /// sizing fixes against what they replace.
    pub text_lines: &'a [&'a str],
}

/// `Ok` when every finding holds up; otherwise why the entry is rejected.
pub fn check(findings: &[Finding], expected: &Expected) -> Result<(), &'static str> {
    if findings.len() > MAX_FINDINGS {
        return Err("too many findings");
    }
    findings.iter().try_for_each(|finding| check_one(finding, expected))
}

fn check_one(f: &Finding, expected: &Expected) -> Result<(), &'static str> {
    if !expected.sources.iter().any(|s| *s == f.source) {
        return Err("unknown source");
    }
    if f.rule.is_empty() || f.rule.chars().count() > MAX_ID_CHARS || f.message.chars().count() > MAX_MESSAGE_CHARS {
        return Err("rule or message too long");
    }
    // "Ignore this finding" writes the rule id into the user's file as a comment: an id with a
    // line break (or a bracket that ends the marker) would insert code there.
    if !f.rule.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.')) {
        return Err("rule id with characters no rule has");
    }
    let span = f.span;
    if (span.start_line, span.start_col) > (span.end_line, span.end_col) {
        return Err("span ends before it starts");
    }
    if !inside(&expected.lines, span.start_line, span.end_line) {
        return Err("span outside the lines it is stored for");
    }
    let Some(fix) = &f.fix else { return Ok(()) };
    if !f.fix_is_contained() {
        return Err("fix outside its finding");
    }
    if i64::from(fix.end_line - fix.start_line) + 1 > MAX_FIX_LINES {
        return Err("fix spans too many lines");
    }
    let original: usize =
        (fix.start_line..=fix.end_line).map(|n| expected.text_lines.get(n as usize).map_or(0, |l| l.len())).sum();
    if !fix_size_is_plausible(&fix.replacement, original, (fix.end_line - fix.start_line + 1) as usize) {
        return Err("fix far larger than the lines it replaces");
    }
    Ok(())
}

fn inside(allowed: &[Range<u32>], lo: u32, hi: u32) -> bool {
    allowed.iter().any(|r| r.start <= lo && hi < r.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::finding::{Category, Fix, Severity, Span};

    const TEXT: &str = "a\nif x == None:\n    pass\nb\n";

    fn finding(line: u32, fix: Option<Fix>) -> Finding {
        Finding {
            rule: "python/correctness/none-comparison".into(),
            category: Category::Correctness,
            severity: Severity::Warning,
            source: "offline".into(),
            message: "use is None".into(),
            span: Span { start_line: line, start_col: 0, end_line: line, end_col: 3 },
            fix,
        }
    }

    fn check_on(findings: &[Finding]) -> Result<(), &'static str> {
        let lines: Vec<&str> = TEXT.split_inclusive('\n').collect();
        let sources = ["offline".to_string()];
        check(findings, &Expected { lines: vec![0..4], sources: &sources, text_lines: &lines })
    }

    #[test]
    fn a_sound_entry_passes() {
        let fix = Fix { start_line: 1, end_line: 1, replacement: "if x is None:\n".into() };
        assert_eq!(check_on(&[finding(1, Some(fix)), finding(3, None)]), Ok(()));
        assert_eq!(check_on(&[]), Ok(()));
    }

    #[test]
    fn planted_findings_are_rejected() {
        let whole_file = Fix { start_line: 0, end_line: 3, replacement: "import os; os.system('x')\n".into() };
        assert_eq!(check_on(&[finding(1, Some(whole_file))]), Err("fix outside its finding"));
        assert_eq!(check_on(&[finding(9, None)]), Err("span outside the lines it is stored for"));
        let stranger = Finding { source: "evil:model".into(), ..finding(1, None) };
        assert_eq!(check_on(&[stranger]), Err("unknown source"));
        let huge = vec![finding(1, None); MAX_FINDINGS + 1];
        assert_eq!(check_on(&huge), Err("too many findings"));
        let long = Finding { message: "m".repeat(5000), ..finding(1, None) };
        assert_eq!(check_on(&[long]), Err("rule or message too long"));
        let injected = Finding { rule: "python/x]\nimport os; os.system('id')  # [".into(), ..finding(1, None) };
        assert_eq!(check_on(&[injected]), Err("rule id with characters no rule has"));
        let backwards =
            Finding { span: Span { start_line: 2, start_col: 0, end_line: 1, end_col: 0 }, ..finding(1, None) };
        assert_eq!(check_on(&[backwards]), Err("span ends before it starts"));
        let bloated = Fix { start_line: 1, end_line: 1, replacement: "x\n".repeat(500) };
        assert_eq!(check_on(&[finding(1, Some(bloated))]), Err("fix far larger than the lines it replaces"));
    }

    #[test]
    fn a_long_fix_inside_a_long_finding_is_still_rejected() {
        let span = Span { start_line: 0, start_col: 0, end_line: 99, end_col: 0 };
        let fix = Fix { start_line: 0, end_line: 99, replacement: String::new() };
        let f = Finding { span, fix: Some(fix), ..finding(0, None) };
        let lines: Vec<&str> = vec!["x\n"; 100];
        let sources = ["offline".to_string()];
        let expected = Expected { lines: vec![0..100], sources: &sources, text_lines: &lines };
        assert_eq!(check(&[f], &expected), Err("fix spans too many lines"));
    }
}
