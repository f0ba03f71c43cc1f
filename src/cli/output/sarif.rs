//! Owns `scan --format sarif`: a SARIF 2.1.0 log with one run, for code-scanning UIs
//! (GitHub, GitLab, IDE viewers). Artifact URIs are relative to `%SRCROOT%`, the scan root,
//! whose absolute URI is given in `originalUriBaseIds`; columns are Unicode code points
//! (`columnKind`). Skipped files become tool execution notifications.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::{Pos, Report, Reported};
use crate::escape;
use crate::review::finding::Severity;
use crate::review::offline;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const SRCROOT: &str = "%SRCROOT%";

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        // SARIF has no "info" or "hint"; "note" is its lowest level.
        Severity::Info | Severity::Hint => "note",
    }
}

pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    // Typed and borrowed, not `serde_json::Value`: a log of 80,000 results built as a
    // `Value` tree took gigabytes and seconds; this streams with little more than the report.
    serde_json::to_writer_pretty(&mut *out, &log(report))?;
    writeln!(out)
}

// The SARIF object model, as much of it as we write. Field names follow the spec.

#[derive(Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: Tool<'a>,
    invocations: [Invocation<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    original_uri_base_ids: Option<BTreeMap<&'static str, ArtifactLocation<'a>>>,
    column_kind: &'static str,
    results: Vec<SarifResult<'a>>,
}

#[derive(Serialize)]
struct Tool<'a> {
    driver: Driver<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver<'a> {
    name: &'static str,
    version: &'static str,
    semantic_version: &'static str,
    rules: Vec<Rule<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    short_description: Option<Message<'a>>,
    default_configuration: RuleConfig,
    properties: RuleProperties,
}

#[derive(Serialize)]
struct RuleConfig {
    level: &'static str,
}

#[derive(Serialize)]
struct RuleProperties {
    category: &'static str,
    tags: [&'static str; 1],
}

#[derive(Serialize)]
struct Message<'a> {
    text: Cow<'a, str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Invocation<'a> {
    execution_successful: bool,
    tool_execution_notifications: Vec<Notification<'a>>,
}

#[derive(Serialize)]
struct Notification<'a> {
    level: &'static str,
    message: Message<'a>,
    locations: [Location<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location<'a> {
    physical_location: PhysicalLocation<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation<'a> {
    artifact_location: ArtifactLocation<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Region>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation<'a> {
    uri: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri_base_id: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: u32,
    start_column: u32,
    end_line: u32,
    end_column: u32,
}

impl Region {
    fn new(start: Pos, end: Pos) -> Region {
        Region { start_line: start.line, start_column: start.column, end_line: end.line, end_column: end.column }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    rule_index: usize,
    level: &'static str,
    message: Message<'a>,
    locations: [Location<'a>; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fixes: Vec<SarifFix<'a>>,
    properties: ResultProperties<'a>,
}

#[derive(Serialize)]
struct ResultProperties<'a> {
    category: &'static str,
    source: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifFix<'a> {
    description: Message<'a>,
    artifact_changes: [ArtifactChange<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactChange<'a> {
    artifact_location: ArtifactLocation<'a>,
    replacements: [Replacement<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Replacement<'a> {
    deleted_region: Region,
    inserted_content: Message<'a>,
}

fn log(report: &Report) -> Log<'_> {
    // Every offline rule, then any rule a finding names that the table does not know (an
    // LLM agent's), so every result can carry a `ruleIndex`.
    let mut rules: Vec<Rule> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for rule in offline::rules() {
        index.insert(rule.id, rules.len());
        rules.push(Rule {
            id: rule.id,
            short_description: Some(Message { text: rule.summary.into() }),
            default_configuration: RuleConfig { level: level(rule.severity) },
            properties: RuleProperties { category: rule.category.as_str(), tags: [rule.category.as_str()] },
        });
    }
    for r in &report.findings {
        let f = &r.finding;
        if !index.contains_key(f.rule.as_str()) {
            index.insert(&f.rule, rules.len());
            rules.push(Rule {
                id: &f.rule,
                short_description: None,
                default_configuration: RuleConfig { level: level(f.severity) },
                properties: RuleProperties { category: f.category.as_str(), tags: [f.category.as_str()] },
            });
        }
    }

    let results = report.findings.iter().map(|r| result(r, index[r.finding.rule.as_str()])).collect();
    let notifications = report
        .skipped
        .iter()
        .map(|s| Notification {
            level: "warning",
            message: Message { text: escape::line(&format!("skipped {}: {}", s.path, s.reason)).into_owned().into() },
            locations: [Location {
                physical_location: PhysicalLocation { artifact_location: artifact(&s.path), region: None },
            }],
        })
        .collect();
    let original_uri_base_ids = report
        .root_uri
        .as_deref()
        .map(|uri| BTreeMap::from([(SRCROOT, ArtifactLocation { uri: uri.into(), uri_base_id: None })]));

    let run = Run {
        tool: Tool {
            driver: Driver {
                name: "review-lsp",
                version: env!("CARGO_PKG_VERSION"),
                semantic_version: env!("CARGO_PKG_VERSION"),
                rules,
            },
        },
        invocations: [Invocation { execution_successful: true, tool_execution_notifications: notifications }],
        original_uri_base_ids,
        column_kind: "unicodeCodePoints",
        results,
    };
    Log { schema: SCHEMA, version: "2.1.0", runs: [run] }
}

fn result(r: &Reported, rule_index: usize) -> SarifResult<'_> {
    let f = &r.finding;
    // The replaced region is whole lines with their terminators: from the start of the first
    // line to the start of the line after the last (or the end of the text).
    let fixes = r
        .fix
        .iter()
        .map(|fix| SarifFix {
            description: Message { text: escape::line(&format!("Fix for {}", f.rule)).into_owned().into() },
            artifact_changes: [ArtifactChange {
                artifact_location: artifact(&r.path),
                replacements: [Replacement {
                    deleted_region: Region::new(Pos { line: fix.line, column: 1 }, fix.deleted_end),
                    inserted_content: Message { text: fix.replacement.as_str().into() },
                }],
            }],
        })
        .collect();
    SarifResult {
        rule_id: &f.rule,
        rule_index,
        level: level(f.severity),
        // Shown by code-scanning UIs: made safe like any displayed text (the JSON encoding
        // only covers C0). The fix's inserted text is left exact: it is applied, not shown.
        message: Message { text: escape::lines(&f.message) },
        locations: [Location {
            physical_location: PhysicalLocation {
                artifact_location: artifact(&r.path),
                region: Some(Region::new(r.start, r.end)),
            },
        }],
        fixes,
        properties: ResultProperties { category: f.category.as_str(), source: &f.source },
    }
}

/// A relative path is a URI reference against `%SRCROOT%`; one outside the root (shown
/// absolute) becomes a `file://` URI of its own.
fn artifact(path: &str) -> ArtifactLocation<'static> {
    if Path::new(path).is_absolute() {
        ArtifactLocation { uri: file_uri(Path::new(path)).into(), uri_base_id: None }
    } else {
        ArtifactLocation { uri: encode(path, false).into(), uri_base_id: Some(SRCROOT) }
    }
}

/// `file://` URI of an absolute directory or file path; a directory (`dir`) ends in `/`, as
/// SARIF requires of a base URI.
pub fn file_uri(path: &Path) -> String {
    let mut text = path.to_string_lossy().replace('\\', "/");
    if !text.starts_with('/') {
        // A Windows drive path, `C:/x`.
        text.insert(0, '/');
    }
    format!("file://{}", encode(&text, true))
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `/`. A `:` is kept
/// only when asked (a drive letter); in a relative reference it would read as a scheme.
fn encode(path: &str, keep_colon: bool) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        let keep =
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') || (keep_colon && b == b':');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::output::{Pos, ReportedFix, Skipped};
    use crate::review::finding::{Category, Finding, Span};

    #[test]
    fn uris_are_encoded() {
        assert_eq!(encode("src/my file.py", false), "src/my%20file.py");
        assert_eq!(encode("c:x/é.py", false), "c%3Ax/%C3%A9.py");
        assert_eq!(file_uri(Path::new("/w/a b/")), "file:///w/a%20b/");
    }

    #[test]
    fn log_has_results_fixes_and_notifications() {
        let span = Span { start_line: 0, start_col: 0, end_line: 0, end_col: 1 };
        let report = Report {
            findings: vec![Reported {
                path: "a.py".into(),
                start: Pos { line: 2, column: 4 },
                end: Pos { line: 2, column: 13 },
                fix: Some(ReportedFix {
                    line: 2,
                    end_line: 2,
                    replacement: "x is None\u{202e}\n".into(),
                    deleted_end: Pos { line: 3, column: 1 },
                }),
                finding: Finding {
                    rule: "llm/made-up".into(),
                    category: Category::Correctness,
                    severity: Severity::Hint,
                    source: "offline".into(),
                    message: "m\u{1b}]0;t\u{7}\nnext\u{202e}".into(),
                    span,
                    fix: None,
                },
            }],
            skipped: vec![Skipped { path: "b\r.py".into(), reason: "binary file".into() }],
            root_uri: Some("file:///w/".into()),
            ..Report::default()
        };
        let v = serde_json::to_value(log(&report)).unwrap();
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        assert_eq!(run["columnKind"], "unicodeCodePoints");
        assert_eq!(run["originalUriBaseIds"]["%SRCROOT%"]["uri"], "file:///w/");
        let res = &run["results"][0];
        assert_eq!(res["level"], "note");
        let idx = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(run["tool"]["driver"]["rules"][idx]["id"], "llm/made-up");
        assert_eq!(res["locations"][0]["physicalLocation"]["region"]["startColumn"], 4);
        let rep = &res["fixes"][0]["artifactChanges"][0]["replacements"][0];
        assert_eq!(rep["deletedRegion"]["endLine"], 3);
        // Shown text is escaped (line breaks kept); the fix is applied, so it stays exact.
        assert_eq!(res["message"]["text"], "m\\u{1b}]0;t\\u{7}\nnext\\u{202e}");
        assert_eq!(rep["insertedContent"]["text"], "x is None\u{202e}\n");
        let note = &run["invocations"][0]["toolExecutionNotifications"][0];
        assert_eq!(note["message"]["text"], "skipped b\\r.py: binary file");
        assert_eq!(note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "b%0D.py");
    }
}
