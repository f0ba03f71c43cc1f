//! Owns `scan --format json`: exactly one JSON object on stdout,
//! `{"findings": [...], "skipped": [...], "stats": {...}}`. The field names are a contract
//! with scripts and CI; add fields, never rename them.

use std::io::{self, Write};

use serde::Serialize;

use super::{Report, Reported, Skipped, Stats};

#[derive(Serialize)]
struct JsonReport<'a> {
    findings: Vec<JsonFinding<'a>>,
    skipped: &'a [Skipped],
    stats: &'a Stats,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    path: &'a str,
    line: u32,
    column: u32,
    end_line: u32,
    end_column: u32,
    severity: &'static str,
    category: &'static str,
    rule: &'a str,
    source: &'a str,
    message: &'a str,
    fix: Option<JsonFix<'a>>,
}

#[derive(Serialize)]
struct JsonFix<'a> {
    line: u32,
    end_line: u32,
    replacement: &'a str,
}

fn finding(r: &Reported) -> JsonFinding<'_> {
    let f = &r.finding;
    JsonFinding {
        path: &r.path,
        line: r.start.line,
        column: r.start.column,
        end_line: r.end.line,
        end_column: r.end.column,
        severity: f.severity.as_str(),
        category: f.category.as_str(),
        rule: &f.rule,
        source: &f.source,
        message: &f.message,
        fix: r.fix.as_ref().map(|x| JsonFix { line: x.line, end_line: x.end_line, replacement: &x.replacement }),
    }
}

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let doc = JsonReport {
        findings: report.findings.iter().map(finding).collect(),
        skipped: &report.skipped,
        stats: &report.stats,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::output::{Pos, ReportedFix};
    use crate::review::finding::{Category, Finding, Severity, Span};

    #[test]
    fn shape_is_the_documented_one() {
        let span = Span { start_line: 0, start_col: 0, end_line: 0, end_col: 1 };
        let report = Report {
            findings: vec![Reported {
                path: "a.py".into(),
                start: Pos { line: 1, column: 4 },
                end: Pos { line: 1, column: 9 },
                fix: Some(ReportedFix {
                    line: 1,
                    end_line: 1,
                    replacement: "x\n".into(),
                    deleted_end: Pos { line: 2, column: 1 },
                }),
                finding: Finding {
                    rule: "python/correctness/none-comparison".into(),
                    category: Category::Correctness,
                    severity: Severity::Warning,
                    source: "offline".into(),
                    message: "m".into(),
                    span,
                    fix: None,
                },
            }],
            skipped: vec![Skipped { path: "b.py".into(), reason: "binary".into() }],
            ..Report::default()
        };
        let mut buf = Vec::new();
        write(&report, &mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        let f = &v["findings"][0];
        assert_eq!((f["line"].as_u64(), f["column"].as_u64(), f["end_column"].as_u64()), (Some(1), Some(4), Some(9)));
        assert_eq!(f["severity"], "warning");
        assert_eq!(f["category"], "correctness");
        assert_eq!(f["fix"]["replacement"], "x\n");
        assert_eq!(v["skipped"][0]["reason"], "binary");
        for key in [
            "files_scanned",
            "files_skipped",
            "findings",
            "cache_hits",
            "cache_misses",
            "llm_calls",
            "prompt_tokens",
            "completion_tokens",
            "duration_ms",
        ] {
            assert!(v["stats"][key].is_u64(), "{key}");
        }
    }
}
