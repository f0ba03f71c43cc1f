//! Owns `scan --format text`, the default: one ruff-like line per finding,
//! `path:line:col: severity[rule] message`, then a summary line. It always writes styles;
//! the caller's `anstream` stream strips them when stdout is not a terminal (or `NO_COLOR`).
//! Skip messages are not part of it: they go to stderr whatever the format. Paths, rule ids
//! and messages are outside text, escaped to one line each ([`crate::escape::line`]).

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};

use super::Report;
use crate::escape;
use crate::review::finding::Severity;

const PATH: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

fn severity_style(severity: Severity) -> Style {
    let color = match severity {
        Severity::Error => AnsiColor::Red,
        Severity::Warning => AnsiColor::Yellow,
        Severity::Info => AnsiColor::Blue,
        Severity::Hint => AnsiColor::Cyan,
    };
    Style::new().fg_color(Some(color.into())).bold()
}

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for r in &report.findings {
        let f = &r.finding;
        let sev = severity_style(f.severity);
        write!(
            out,
            "{PATH}{}{PATH:#}:{}:{}: {sev}{}{sev:#}{DIM}[{}]{DIM:#} {}",
            escape::line(&r.path),
            r.start.line,
            r.start.column,
            f.severity.as_str(),
            escape::line(&f.rule),
            escape::line(&f.message),
        )?;
        if r.fix.is_some() {
            write!(out, " {DIM}(fix available){DIM:#}")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "{}", summary(report))
}

fn summary(report: &Report) -> String {
    let s = &report.stats;
    let files = plural(s.files_scanned, "file");
    let mut line = if s.findings == 0 {
        format!("No findings in {files}.")
    } else {
        let fixable = report.findings.iter().filter(|r| r.fix.is_some()).count();
        let fixable = if fixable > 0 { format!(" ({fixable} fixable)") } else { String::new() };
        format!("Found {}{fixable} in {files}.", plural(s.findings, "finding"))
    };
    if s.files_skipped > 0 {
        line.push_str(&format!(" {} skipped (see stderr).", plural(s.files_skipped, "file")));
    }
    line
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::output::{Pos, Reported, ReportedFix, Stats};
    use crate::review::finding::{Category, Finding, Span};

    #[test]
    fn ruff_like_lines_and_summary() {
        let span = Span { start_line: 0, start_col: 0, end_line: 0, end_col: 1 };
        let report = Report {
            findings: vec![Reported {
                path: "src/a.py".into(),
                start: Pos { line: 3, column: 7 },
                end: Pos { line: 3, column: 9 },
                fix: Some(ReportedFix {
                    line: 3,
                    end_line: 3,
                    replacement: String::new(),
                    deleted_end: Pos { line: 4, column: 1 },
                }),
                finding: Finding {
                    rule: "python/security/eval".into(),
                    category: Category::Security,
                    severity: Severity::Error,
                    source: "offline".into(),
                    message: "eval of untrusted input".into(),
                    span,
                    fix: None,
                },
            }],
            stats: Stats { files_scanned: 2, findings: 1, files_skipped: 1, ..Stats::default() },
            ..Report::default()
        };
        let mut buf = Vec::new();
        write(&report, &mut buf).unwrap();
        let plain = anstream::adapter::strip_str(std::str::from_utf8(&buf).unwrap()).to_string();
        assert_eq!(
            plain,
            "src/a.py:3:7: error[python/security/eval] eval of untrusted input (fix available)\n\
             Found 1 finding (1 fixable) in 2 files. 1 file skipped (see stderr).\n"
        );
    }
}
