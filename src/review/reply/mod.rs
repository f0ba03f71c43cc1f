//! Turns a model's reply into findings we can trust.
//!
//! [`parse`] is tolerant of how models really answer: markdown fences, chatter around the
//! JSON, a bare array instead of `{"findings": [...]}`, trailing commas, a reply cut off by
//! the token limit (complete findings are kept, the partial one dropped). Anything else is
//! one [`ReplyError::Unparseable`], and the chunk counts as unreviewed.
//!
//! [`validate`] trusts nothing a finding says: its lines must lie in the chunk; it is
//! re-anchored on its `quote` (models misnumber lines) or dropped when the quote cannot be
//! placed; its fix must stay within its lines and be about their size (a prompt-injected
//! "fix" that rewrites the file is never offered); its severity and category are mapped
//! onto ours.
//!
//! Rule ids of LLM findings are `<language>/<category>/llm`, e.g. `python/security/llm`:
//! the same three-part shape as offline rules, so `disabled_rules`, severity overrides and
//! `review-lsp: ignore[...]` work on them, stable across models and prompt versions.

use std::collections::BTreeMap;

use serde_json::Value;

mod validate;

pub use validate::{ValidationContext, fix_size_is_plausible, map_category, map_severity, rule_id, validate};

/// How far (in lines, either way) a finding may move to where its quote really is.
pub const ANCHOR_WINDOW: i64 = 8;
/// A fix touching more lines than this is a rewrite, not a fix of one finding.
pub const MAX_FIX_LINES: i64 = 40;
/// Messages are shown in editors; a runaway one is cut.
const MAX_MESSAGE_CHARS: usize = 1000;
/// How many `{`/`[` positions are tried as the start of the JSON before giving up.
const MAX_CANDIDATES: usize = 64;

/// A finding as the model wrote it: 1-based lines in the prompt's numbering, free-form
/// severity and category. `path` is set in batched replies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawFinding {
    pub path: Option<String>,
    pub line: i64,
    pub end_line: Option<i64>,
    pub severity: Option<String>,
    pub category: Option<String>,
    pub message: String,
    pub quote: String,
    pub fix: Option<RawFix>,
}

/// A fix as the model wrote it; missing lines default to the finding's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawFix {
    pub line: Option<i64>,
    pub end_line: Option<i64>,
    pub replacement: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// `excerpt` is the reply's first characters (at most 80), for the log.
    #[error("unparseable reply ({reason}); it starts: {excerpt:?}")]
    Unparseable { reason: &'static str, excerpt: String },
}

/// What [`parse_reply`] found. A `truncated` reply's findings are real but the review is
/// partial: the engine should use them and still not cache the chunk as reviewed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub findings: Vec<RawFinding>,
    pub truncated: bool,
    /// Findings dropped for missing or mistyped fields.
    pub dropped: usize,
}

/// The findings in a reply; see [`parse_reply`].
pub fn parse(text: &str) -> Result<Vec<RawFinding>, ReplyError> {
    parse_reply(text).map(|p| p.findings)
}

/// Finds the reply's JSON: the first `{` or `[` (fences and chatter are skipped this way)
/// whose balanced, string-aware extent parses as `{"findings": [...]}`, a bare array of
/// findings, or a single finding. An extent that never closes (the reply was cut off) is
/// repaired by cutting after its last complete finding and closing what is open.
pub fn parse_reply(text: &str) -> Result<Parsed, ReplyError> {
    let mut reason = "no JSON object with findings";
    let mut weak: Option<Parsed> = None;
    let mut from = 0;
    for _ in 0..MAX_CANDIDATES {
        let Some(offset) = text[from..].find(['{', '[']) else { break };
        let start = from + offset;
        from = start + 1;
        let (value, truncated) = match scan(&text[start..]) {
            Scan::Complete(end) => {
                let value = json(&text[start..start + end]);
                // Balanced text that is not JSON at all (echoed code, `{this}` in prose) is
                // skipped whole; JSON of another shape is searched inside.
                if value.is_none() {
                    from = start + end;
                }
                (value, false)
            }
            Scan::Truncated(Some(repaired)) => (json(&repaired), true),
            Scan::Truncated(None) => {
                reason = "reply cut off before its first complete finding";
                continue;
            }
        };
        let Some(items) = value.as_ref().and_then(findings_of) else { continue };
        let total = items.len();
        let findings: Vec<RawFinding> = items.iter().filter_map(finding_of).collect();
        let parsed = Parsed { dropped: total - findings.len(), findings, truncated };
        if total == 0 && !matches!(value, Some(Value::Object(_))) {
            // A bare `[]` may be chatter ("the list [] is empty"); prefer a later answer.
            weak.get_or_insert(parsed);
            continue;
        }
        return Ok(parsed);
    }
    weak.ok_or_else(|| ReplyError::Unparseable { reason, excerpt: text.trim().chars().take(80).collect() })
}

enum Scan {
    /// Byte length of the balanced value.
    Complete(usize),
    /// The text ended inside the value; the repaired JSON if a complete finding was seen.
    Truncated(Option<String>),
}

/// Walks one JSON-ish value from its opening bracket, aware of strings and escapes. While
/// walking it remembers the last point where a findings-level element had just closed,
/// which is where a cut-off reply can be cut and closed.
fn scan(s: &str) -> Scan {
    let mut stack: Vec<u8> = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    let mut cut: Option<(usize, Vec<u8>)> = None;
    for (i, b) in s.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => stack.push(b),
            b'}' | b']' => {
                stack.pop();
                if stack.is_empty() {
                    return Scan::Complete(i + 1);
                }
                // Findings-level: an element of a top-level array or of the array inside
                // the top-level object, or the array itself closing inside that object.
                let at_findings = matches!(stack.as_slice(), [b'['] | [b'{', b'[']) || (stack == [b'{'] && b == b']');
                if at_findings {
                    cut = Some((i + 1, stack.clone()));
                }
            }
            _ => {}
        }
    }
    Scan::Truncated(cut.map(|(at, open)| {
        let mut repaired = s[..at].to_string();
        repaired.extend(open.iter().rev().map(|&b| if b == b'{' { '}' } else { ']' }));
        repaired
    }))
}

/// Parses JSON, retrying without trailing commas (`[a, b,]`), a common model slip.
fn json(s: &str) -> Option<Value> {
    serde_json::from_str(s).ok().or_else(|| serde_json::from_str(&without_trailing_commas(s)).ok())
}

fn without_trailing_commas(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut in_string, mut escaped) = (false, false);
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if in_string {
            // A quote ends the string unless the char before it escaped it. (This used to
            // test the escape state after updating it for `c`, so `\"` ended the string and
            // an odd number of escaped quotes left the rest of the reply inverted.)
            let quoted = escaped;
            escaped = !quoted && c == '\\';
            in_string = quoted || c != '"';
        } else if c == '"' {
            in_string = true;
        } else if c == ',' && chars[i + 1..].iter().find(|c| !c.is_whitespace()).is_some_and(|&n| n == ']' || n == '}')
        {
            continue;
        }
        out.push(c);
    }
    out
}

/// The list of findings a reply value holds, if it has the shape of one.
fn findings_of(value: &Value) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) => (items.is_empty() || items.iter().any(Value::is_object)).then(|| items.clone()),
        Value::Object(map) => {
            for key in ["findings", "issues", "results", "problems", "comments"] {
                match map.get(key) {
                    Some(Value::Array(items)) => return Some(items.clone()),
                    Some(Value::Null) => return Some(Vec::new()),
                    _ => {}
                }
            }
            // A single finding on its own.
            if map.contains_key("line") && map.contains_key("message") {
                return Some(vec![value.clone()]);
            }
            // One level down: `{"review": {"findings": [...]}}`.
            map.values().filter(|v| v.is_object()).find_map(|v| match v.get("findings") {
                Some(Value::Array(items)) => Some(items.clone()),
                _ => None,
            })
        }
        _ => None,
    }
}

/// An integer field: a JSON integer, an integral float or a numeric string. `Err` when the
/// field is there but is not a number (the finding is then dropped); `Ok(None)` if absent.
fn int_field(map: &serde_json::Map<String, Value>, keys: &[&str]) -> Result<Option<i64>, ()> {
    let Some(v) = keys.iter().find_map(|k| map.get(*k)) else { return Ok(None) };
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => {
            n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)).map(Some).ok_or(())
        }
        Value::String(s) => s.trim().parse().map(Some).map_err(|_| ()),
        _ => Err(()),
    }
}

/// A string field: `Err` when present with another type.
fn str_field(map: &serde_json::Map<String, Value>, keys: &[&str]) -> Result<Option<String>, ()> {
    match keys.iter().find_map(|k| map.get(*k)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    }
}

/// One finding from its JSON; `None` when a required field is missing or a field has the
/// wrong type. A malformed `fix` only loses the fix.
fn finding_of(value: &Value) -> Option<RawFinding> {
    let map = value.as_object()?;
    let line = int_field(map, &["line", "start_line", "line_start", "startLine"]).ok()??;
    let end_line = int_field(map, &["end_line", "endLine", "line_end"]).ok()?;
    let message = str_field(map, &["message", "description", "issue"]).ok()??;
    if message.trim().is_empty() {
        return None;
    }
    let fix = match map.get("fix") {
        Some(Value::Object(f)) => match (int_field(f, &["line", "start_line"]), int_field(f, &["end_line", "endLine"]))
        {
            (Ok(line), Ok(end_line)) => str_field(f, &["replacement", "code"])
                .ok()
                .flatten()
                .map(|replacement| RawFix { line, end_line, replacement }),
            _ => None,
        },
        _ => None,
    };
    Some(RawFinding {
        path: str_field(map, &["path", "file"]).ok()?,
        line,
        end_line,
        severity: str_field(map, &["severity", "level"]).ok()?,
        category: str_field(map, &["category"]).ok()?,
        message,
        quote: str_field(map, &["quote"]).ok()?.unwrap_or_default(),
        fix,
    })
}

/// Splits a batched reply's findings by file. A finding's `path` must name one of `paths`
/// (after trimming `./`, quotes and backslashes), or be a unique suffix of one (`app.py`
/// for `src/app.py`); without a path it goes to the only file, if there is only one.
/// Findings that match no file are dropped.
pub fn route(raw: Vec<RawFinding>, paths: &[&str]) -> BTreeMap<String, Vec<RawFinding>> {
    fn norm(p: &str) -> String {
        let p = p.trim().trim_matches(|c| c == '`' || c == '"' || c == '\'').replace('\\', "/");
        p.trim_start_matches("./").to_string()
    }
    let known: Vec<(String, &str)> = paths.iter().map(|p| (norm(p), *p)).collect();
    let mut out: BTreeMap<String, Vec<RawFinding>> = BTreeMap::new();
    for f in raw {
        let target = match f.path.as_deref().map(norm).filter(|p| !p.is_empty()) {
            None => (paths.len() == 1).then(|| paths[0]),
            Some(p) => known.iter().find(|(k, _)| *k == p).map(|(_, orig)| *orig).or_else(|| {
                let mut by_suffix = known.iter().filter(|(k, _)| k.ends_with(&format!("/{p}")));
                match (by_suffix.next(), by_suffix.next()) {
                    (Some((_, orig)), None) => Some(*orig),
                    _ => None,
                }
            }),
        };
        match target {
            Some(path) => out.entry(path.to_string()).or_default().push(f),
            None => tracing::debug!(line = f.line, "dropped a batched finding that names no file of the batch"),
        }
    }
    out
}

#[allow(clippy::single_range_in_vec_init)] // the APIs take a slice of ranges
#[cfg(test)]
mod tests;
