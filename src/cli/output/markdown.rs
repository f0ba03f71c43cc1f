//! Owns the markdown summary of a scan: a short page for a CI job summary or a PR comment,
//! kept with every scan report in the store (`review-lsp report show ID --format md`).
//! Paths and rule ids are outside text: each is escaped to one line and shown as a code span
//! that neither its backticks nor a `|` can break out of ([`code`]).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::Report;
use crate::escape;

/// Rules and files listed at most; the JSON and SARIF hold everything.
const TOP: usize = 10;

pub fn summary(report: &Report, root: &str) -> String {
    let s = &report.stats;
    let mut out = String::new();
    let _ = writeln!(out, "# review-lsp scan of {}\n", code(root));
    let _ = writeln!(
        out,
        "{} findings in {} files ({} skipped) in {:.1} s; {} LLM calls, {} tokens.\n",
        s.findings,
        s.files_scanned,
        s.files_skipped,
        s.duration_ms as f64 / 1000.0,
        s.llm_calls,
        s.prompt_tokens + s.completion_tokens
    );
    if report.findings.is_empty() {
        out.push_str("No findings.\n");
        return out;
    }
    let mut by_severity: BTreeMap<std::cmp::Reverse<_>, usize> = BTreeMap::new();
    let mut by_rule: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_file: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &report.findings {
        *by_severity.entry(std::cmp::Reverse(r.finding.severity)).or_default() += 1;
        *by_rule.entry(r.finding.rule.as_str()).or_default() += 1;
        *by_file.entry(r.path.as_str()).or_default() += 1;
    }
    out.push_str("| severity | findings |\n|---|---|\n");
    for (severity, n) in &by_severity {
        let _ = writeln!(out, "| {} | {n} |", severity.0.as_str());
    }
    for (title, counts) in [("rule", by_rule), ("file", by_file)] {
        let mut top: Vec<(&str, usize)> = counts.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let _ = writeln!(out, "\n| {title} | findings |\n|---|---|");
        for (name, n) in top.iter().take(TOP) {
            let _ = writeln!(out, "| {} | {n} |", code(name));
        }
        if top.len() > TOP {
            let _ = writeln!(out, "| … {} more | |", top.len() - TOP);
        }
    }
    out
}

/// `text` as one inline code span: control and bidi characters escaped, `|` escaped for the
/// table, and fenced with one backtick more than the longest run inside (CommonMark's rule),
/// padded so a leading or trailing backtick stays content.
fn code(text: &str) -> String {
    let text = escape::line(text).replace('|', "\\|");
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    if longest == 0 { format!("{fence}{text}{fence}") } else { format!("{fence} {text} {fence}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_their_code_span_and_cell() {
        assert_eq!(code("src/a.py"), "`src/a.py`");
        assert_eq!(code("a`b``c"), "``` a`b``c ```");
        assert_eq!(code("x|y\n\u{1b}]0;t\u{7}\u{202e}"), "`x\\|y\\n\\u{1b}]0;t\\u{7}\\u{202e}`");
    }
}
