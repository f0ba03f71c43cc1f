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
use std::ops::Range;

use serde_json::Value;

use crate::review::finding::{Category, Finding, Fix, Severity, Span};
use crate::review::prompt::PLACEHOLDER_PREFIX;
use crate::syntax::Language;

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

/// Everything validation needs to know about where a reply's findings may land.
pub struct ValidationContext<'a> {
    text: &'a str,
    /// Byte offset where each line starts.
    starts: Vec<usize>,
    /// The chunk's lines, 0-based, half-open; several for a module remainder (or for the
    /// chunks of one file in a batch).
    allowed: Vec<Range<u32>>,
    language: Language,
    agent: Category,
    source: &'a str,
}

impl<'a> ValidationContext<'a> {
    /// `text` is the whole document; `ranges` the reviewed chunk's byte ranges (whole
    /// lines, as `Chunk::ranges`); `source` goes into `Finding::source`, e.g.
    /// `openai:gpt-4o-mini`.
    pub fn new(text: &'a str, ranges: &[Range<usize>], language: Language, agent: Category, source: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let line_of = |byte: usize| (starts.partition_point(|&s| s <= byte) - 1) as u32;
        let allowed =
            ranges.iter().filter(|r| r.start < r.end).map(|r| line_of(r.start)..line_of(r.end - 1) + 1).collect();
        ValidationContext { text, starts, allowed, language, agent, source }
    }

    fn line_count(&self) -> i64 {
        self.starts.len() as i64
    }

    /// Line `n` with its terminator.
    fn raw_line(&self, n: u32) -> &'a str {
        let start = self.starts[n as usize];
        let end = self.starts.get(n as usize + 1).copied().unwrap_or(self.text.len());
        &self.text[start..end]
    }

    /// Line `n` without its terminator.
    fn line(&self, n: u32) -> &'a str {
        let raw = self.raw_line(n);
        raw.strip_suffix('\n').map_or(raw, |l| l.strip_suffix('\r').unwrap_or(l))
    }

    /// Whether every line of `lo..=hi` lies inside one allowed range.
    fn in_chunk(&self, lo: i64, hi: i64) -> bool {
        lo >= 0
            && hi < self.line_count()
            && self.allowed.iter().any(|r| i64::from(r.start) <= lo && hi < i64::from(r.end))
    }
}

/// The rule id of an LLM finding: `<language>/<category>/llm`.
pub fn rule_id(language: Language, category: Category) -> String {
    format!("{}/{}/llm", language.name(), category.as_str())
}

/// Keeps the findings that hold up, in model order, placed on the document's real lines.
pub fn validate(raw: Vec<RawFinding>, ctx: &ValidationContext) -> Vec<Finding> {
    raw.into_iter().filter_map(|f| validate_one(f, ctx)).collect()
}

fn validate_one(f: RawFinding, ctx: &ValidationContext) -> Option<Finding> {
    let end = f.end_line.unwrap_or(f.line);
    if f.line < 1 || end < f.line || end > i64::from(u32::MAX) {
        tracing::debug!(line = f.line, end_line = end, "dropped a finding with impossible lines");
        return None;
    }
    let (line0, end0) = (f.line - 1, end - 1);
    let delta = anchor(&f.quote, line0, ctx)?;
    let (lo, hi) = (line0 + delta, end0 + delta);
    if !ctx.in_chunk(lo, hi) {
        tracing::debug!(line = f.line, end_line = end, "dropped a finding outside the reviewed chunk");
        return None;
    }
    let category = map_category(f.category.as_deref(), ctx.agent);
    let rule = rule_id(ctx.language, category);
    let fix = f.fix.and_then(|fix| confine(fix, f.line, end, delta, (lo, hi), ctx, &rule));
    let (lo, hi) = (lo as u32, hi as u32);
    let first = ctx.line(lo);
    let span = Span {
        start_line: lo,
        start_col: (first.len() - first.trim_start().len()) as u32,
        end_line: hi,
        end_col: ctx.line(hi).len() as u32,
    };
    let mut message = f.message.trim().to_string();
    if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
        message.truncate(cut);
        message.push('…');
    }
    Some(Finding {
        rule,
        category,
        severity: map_severity(f.severity.as_deref()),
        source: ctx.source.to_string(),
        message,
        span,
        fix,
    })
}

/// How far the finding must move so its first line is the line its quote is on: 0 when the
/// quote is on the stated line, the offset of the one line within ±[`ANCHOR_WINDOW`] of the
/// chunk that has it, `None` (drop) when no line or several do. An empty quote cannot be
/// checked: the finding is kept where it is if that line is in the chunk and not blank (the
/// model saw it), and dropped otherwise.
fn anchor(quote: &str, line0: i64, ctx: &ValidationContext) -> Option<i64> {
    let quotes = quote_forms(quote);
    if quotes.is_empty() {
        let seen = ctx.in_chunk(line0, line0) && !ctx.line(line0 as u32).trim().is_empty();
        if !seen {
            tracing::debug!(line = line0 + 1, "dropped an unquoted finding on a line the model did not see");
        }
        return seen.then_some(0);
    }
    let has = |n: i64| ctx.in_chunk(n, n) && quotes.iter().any(|q| quote_matches(ctx.line(n as u32), q));
    if line0 < ctx.line_count() && has(line0) {
        return Some(0);
    }
    let mut found = (line0 - ANCHOR_WINDOW..=line0 + ANCHOR_WINDOW).filter(|&n| n != line0 && has(n));
    match (found.next(), found.next()) {
        (Some(n), None) => Some(n - line0),
        (None, _) => {
            tracing::debug!(line = line0 + 1, "dropped a finding whose quote is not near its line");
            None
        }
        (Some(_), Some(_)) => {
            tracing::debug!(line = line0 + 1, "dropped a finding whose quote is on several nearby lines");
            None
        }
    }
}

/// The quote's first non-blank line, whitespace-normalised; and without a copied `N: `
/// line-number prefix as a second form.
fn quote_forms(quote: &str) -> Vec<String> {
    let Some(first) = quote.lines().map(squash).find(|l| !l.is_empty()) else { return Vec::new() };
    let unnumbered = first
        .split_once(':')
        .filter(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .map(|(_, rest)| rest.trim().to_string())
        .filter(|r| !r.is_empty());
    std::iter::once(first).chain(unnumbered).collect()
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether a document line holds the quote. Containment rather than equality: the model saw
/// the line without its trailing comment, and may quote part of it. A `<REDACTED:kind>`
/// placeholder matches anything, since the model never saw the secret.
fn quote_matches(line: &str, quote: &str) -> bool {
    let line = squash(line);
    if !quote.contains(PLACEHOLDER_PREFIX) {
        return line.contains(quote);
    }
    let mut rest = line.as_str();
    let mut pieces = Vec::new();
    let mut q = quote;
    while let Some(at) = q.find(PLACEHOLDER_PREFIX) {
        pieces.push(&q[..at]);
        q = q[at..].find('>').map_or("", |end| &q[at + end + 1..]);
    }
    pieces.push(q);
    pieces.iter().map(|p| p.trim()).filter(|p| !p.is_empty()).all(|p| match rest.find(p) {
        Some(at) => {
            rest = &rest[at + p.len()..];
            true
        }
        None => false,
    })
}

/// The model's fix as a whole-line [`Fix`] on the document, or `None` (logged) when it would
/// touch lines outside the finding, is far larger than what it replaces, writes a redaction
/// placeholder into the code, or changes nothing. Its lines move with the finding's
/// re-anchoring; the replacement gets the document's line endings.
fn confine(
    fix: RawFix,
    line: i64,
    end: i64,
    delta: i64,
    (lo, hi): (i64, i64),
    ctx: &ValidationContext,
    rule: &str,
) -> Option<Fix> {
    let reject = |why: &str| {
        tracing::warn!(rule, line = lo + 1, reason = why, "dropped the fix of an LLM finding");
        None
    };
    let (fl, fe) = match (fix.line, fix.end_line) {
        (Some(l), e) => (l, e.unwrap_or(l)),
        (None, _) => (line, end),
    };
    if fl < 1 || fe < fl || fe > i64::from(u32::MAX) {
        return reject("fix lines impossible");
    }
    let (fl0, fe0) = (fl - 1 + delta, fe - 1 + delta);
    if fl0 < lo || fe0 > hi {
        return reject("fix lines outside the finding");
    }
    if fe0 - fl0 + 1 > MAX_FIX_LINES {
        return reject("fix spans too many lines");
    }
    if fix.replacement.contains(PLACEHOLDER_PREFIX) {
        return reject("fix would write a redaction placeholder");
    }
    let original: String = (fl0..=fe0).map(|n| ctx.raw_line(n as u32)).collect();
    let eol = ["\r\n", "\n"].into_iter().find(|e| original.ends_with(e)).unwrap_or("");
    let mut replacement = unnumbered(&fix.replacement, fl).replace("\r\n", "\n");
    if eol == "\r\n" {
        replacement = replacement.replace('\n', "\r\n");
    }
    if !replacement.is_empty() {
        if eol.is_empty() {
            replacement.truncate(replacement.trim_end_matches(['\r', '\n']).len());
        } else if !replacement.ends_with(eol) {
            replacement.push_str(eol);
        }
    }
    let lines = (fe0 - fl0 + 1) as usize;
    if replacement.lines().count() > 2 * lines + 5 || replacement.len() > 4 * original.len() + 400 {
        return reject("fix is far larger than the lines it replaces");
    }
    if replacement == original {
        tracing::debug!(rule, "dropped a fix that changes nothing");
        return None;
    }
    Some(Fix { start_line: fl0 as u32, end_line: fe0 as u32, replacement })
}

/// The replacement without `N: ` prefixes, when the model copied the prompt's numbering
/// onto every line (consecutive numbers from the fix's first line); otherwise unchanged.
fn unnumbered(replacement: &str, first: i64) -> String {
    let mut out = String::with_capacity(replacement.len());
    for (i, l) in replacement.split_inclusive('\n').enumerate() {
        let prefix = format!("{}:", first + i as i64);
        let Some(rest) = l.strip_prefix(&prefix) else { return replacement.to_string() };
        out.push_str(rest.strip_prefix(' ').unwrap_or(rest));
    }
    out
}

/// Severities outside the schema, to the nearest of ours. Missing or unknown ones become
/// `info`: a model that ignores the schema does not get to raise alarms.
pub fn map_severity(s: Option<&str>) -> Severity {
    match s.unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "error" | "critical" | "high" | "blocker" | "fatal" | "severe" => Severity::Error,
        "warning" | "warn" | "medium" | "moderate" | "major" => Severity::Warning,
        "hint" | "style" | "nit" | "nitpick" | "suggestion" | "trivial" | "optional" => Severity::Hint,
        _ => Severity::Info, // info, low, minor, note, informational, and anything else
    }
}

/// Categories outside the schema, to the nearest of ours; unknown ones to the agent's own.
pub fn map_category(c: Option<&str>, agent: Category) -> Category {
    let c = c.unwrap_or("").trim().to_ascii_lowercase().replace(['_', ' '], "-");
    if let Some(exact) = Category::parse(&c) {
        return exact;
    }
    match c.as_str() {
        "vulnerability" | "vuln" | "secret" | "secrets" | "injection" | "auth" | "crypto" | "safety" => {
            Category::Security
        }
        "bug" | "bugs" | "logic" | "error-handling" | "reliability" | "correct" => Category::Correctness,
        "perf" | "efficiency" | "speed" | "memory" => Category::Performance,
        "style" | "readability" | "complexity" | "design" | "quality" | "code-quality" | "maintenance" => {
            Category::Maintainability
        }
        "doc" | "docs" | "docstring" | "docstrings" | "comment" | "comments" => Category::Documentation,
        _ => agent,
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // the APIs take a slice of ranges
mod tests {
    use super::*;

    const DOC: &str = "def f(x):\n    y = g(x)\n    return y\n\ndef h():\n    return 1\n";

    fn ctx(text: &str) -> ValidationContext<'_> {
        ValidationContext::new(text, &[0..text.len()], Language::Python, Category::Correctness, "test:model")
    }

    fn raw(line: i64, quote: &str) -> RawFinding {
        RawFinding { line, message: "m".into(), quote: quote.into(), ..Default::default() }
    }

    #[test]
    fn fenced_chatty_and_bare_replies_parse() {
        let fenced = "Sure! Here you go:\n```json\n{\"findings\": [{\"line\": 2, \"message\": \"m\", \"quote\": \"y\"}]}\n```\nHope {this} helps.";
        assert_eq!(parse(fenced).unwrap().len(), 1);
        let bare = "The list [] is empty. [{\"line\": \"3\", \"message\": \"m\", \"extra\": true}]";
        let nested = "{\"review\": {\"findings\": [{\"line\": 1, \"message\": \"m\"}]}}";
        assert_eq!(parse(nested).unwrap().len(), 1);
        let code_first = "fn f() { x[0] }\n{\"findings\": [{\"line\": 1, \"message\": \"m\"}]}";
        assert_eq!(parse(code_first).unwrap().len(), 1);
        assert_eq!(parse(bare).unwrap()[0].line, 3);
        assert_eq!(parse("{\"findings\": []}").unwrap(), vec![]);
        assert_eq!(parse("{\"findings\": [{\"line\": 1, \"message\": \"a\"},]}").unwrap().len(), 1);
    }

    #[test]
    fn trailing_commas_are_removed_around_escaped_quotes() {
        // Found by tests/properties.rs: an odd number of `\"` in a string made the trailing
        // comma look quoted, and the whole reply was unparseable.
        let text = r#"{"findings": [{"line": 1, "message": "say \"x\" or \"y"},]}"#;
        assert_eq!(parse(text).unwrap()[0].message, r#"say "x" or "y"#);
        // A comma before `]` inside a string after an escaped quote is text, not a slip.
        let text = r#"{"findings": [{"line": 1, "message": "a \"b, ]"},]}"#;
        assert_eq!(parse(text).unwrap()[0].message, r#"a "b, ]"#);
        assert_eq!(without_trailing_commas(r#"["\\", "\"", ]"#), r#"["\\", "\"" ]"#);
    }

    #[test]
    fn a_mistyped_finding_is_dropped_and_the_others_kept() {
        let text = r#"{"findings": [{"line": "two", "message": "a"}, {"line": 2, "message": 5},
            {"line": 2.0, "message": "ok", "fix": "not an object"}]}"#;
        let p = parse_reply(text).unwrap();
        assert_eq!((p.findings.len(), p.dropped), (1, 2));
        assert!(p.findings[0].fix.is_none());
    }

    #[test]
    fn a_cut_off_reply_keeps_its_complete_findings() {
        let text =
            "{\"findings\": [{\"line\": 1, \"message\": \"a {b}\", \"fix\": {\"line\": 1}}, {\"line\": 2, \"mess";
        let p = parse_reply(text).unwrap();
        assert!(p.truncated);
        assert_eq!(p.findings.len(), 1);
        let early = parse("{\"findings\": [{\"line\": 1, \"message\": \"a");
        assert!(matches!(early, Err(ReplyError::Unparseable { reason, .. }) if reason.contains("cut off")));
    }

    #[test]
    fn garbage_is_one_clear_error_with_a_short_excerpt() {
        let err = parse(&"I could not review this code, sorry. ".repeat(10)).unwrap_err();
        let ReplyError::Unparseable { excerpt, .. } = &err;
        assert!(excerpt.chars().count() <= 80);
        assert!(err.to_string().starts_with("unparseable reply"));
    }

    #[test]
    fn quotes_re_anchor_or_drop() {
        let c = ctx(DOC);
        // Stated line 1, quote on line 2 (0-based 1): moved.
        let got = validate(vec![raw(1, "y = g(x)")], &c);
        assert_eq!(got[0].span.start_line, 1);
        assert_eq!(got[0].span.start_col, 4);
        assert_eq!(got[0].span.end_col, 12);
        // `return` is on lines 3 and 6: ambiguous from line 4.
        assert!(validate(vec![raw(4, "return")], &c).is_empty());
        assert!(validate(vec![raw(2, "nowhere()")], &c).is_empty());
        // On the stated line: kept even when ambiguous elsewhere; a copied number is fine.
        assert_eq!(validate(vec![raw(3, "3: return y")], &c)[0].span.start_line, 2);
        // Empty quote: kept on a non-blank line only.
        assert_eq!(validate(vec![raw(2, "")], &c).len(), 1);
        assert!(validate(vec![raw(4, "")], &c).is_empty());
    }

    #[test]
    fn placeholders_match_the_secret_they_hide() {
        assert!(quote_matches("KEY = 'AKIAIOSFODNN7EXAMPLE'  # prod", "KEY = '<REDACTED:aws-access-key>'"));
        assert!(!quote_matches("OTHER = 'x'", "KEY = '<REDACTED:aws-access-key>'"));
    }

    #[test]
    fn lines_outside_the_chunk_or_inverted_are_dropped() {
        let text = DOC;
        let second = text.find("def h").unwrap()..text.len();
        let c = ValidationContext::new(text, &[second], Language::Python, Category::Security, "s");
        assert!(validate(vec![raw(2, "y = g(x)")], &c).is_empty());
        assert_eq!(validate(vec![raw(6, "return 1")], &c).len(), 1);
        let inverted = RawFinding { end_line: Some(5), ..raw(6, "return 1") };
        assert!(validate(vec![inverted, raw(0, ""), raw(-3, "")], &c).is_empty());
        assert!(validate(vec![raw(60, "return 1")], &c).is_empty());
    }

    #[test]
    fn fixes_are_confined_and_get_line_endings() {
        let c = ctx(DOC);
        let fix = |line, end_line, replacement: &str| RawFix { line, end_line, replacement: replacement.into() };
        let with = |fx| validate(vec![RawFinding { fix: Some(fx), ..raw(2, "y = g(x)") }], &c)[0].fix.clone();
        assert_eq!(with(fix(Some(2), None, "    y = g(x) or 0")).unwrap().replacement, "    y = g(x) or 0\n");
        assert_eq!(with(fix(None, None, "2:     y = h(x)\n")).unwrap().replacement, "    y = h(x)\n");
        assert!(with(fix(Some(1), Some(6), "import os\n")).is_none(), "whole-file rewrite");
        assert!(with(fix(Some(3), Some(3), "x\n")).is_none(), "outside the finding");
        assert!(with(fix(Some(2), None, &"evil()\n".repeat(20))).is_none(), "far larger");
        assert!(with(fix(Some(2), None, "    y = g(x)\n")).is_none(), "no-op");
        assert!(with(fix(Some(2), None, "k = '<REDACTED:jwt>'")).is_none(), "placeholder");
        let crlf = "a = 1\r\nb = 2";
        let c = ctx(crlf);
        let f = |line, q: &str, r: &str| RawFinding { fix: Some(fix(Some(line), None, r)), ..raw(line, q) };
        let got = validate(vec![f(1, "a = 1", "a = 2\n"), f(2, "b = 2", "b = 3\n")], &c);
        assert_eq!(got[0].fix.as_ref().unwrap().replacement, "a = 2\r\n");
        assert_eq!(got[1].fix.as_ref().unwrap().replacement, "b = 3");
    }

    #[test]
    fn severities_and_categories_map_to_ours() {
        let cases = [("critical", Severity::Error), ("HIGH", Severity::Error), ("medium", Severity::Warning)];
        for (s, want) in cases {
            assert_eq!(map_severity(Some(s)), want);
        }
        assert_eq!(map_severity(Some("minor")), Severity::Info);
        assert_eq!(map_severity(Some("nit")), Severity::Hint);
        assert_eq!(map_severity(None), Severity::Info);
        assert_eq!(map_category(Some("Bug"), Category::Security), Category::Correctness);
        assert_eq!(map_category(Some("whatever"), Category::Performance), Category::Performance);
        let f = RawFinding { category: Some("perf".into()), ..raw(2, "y") };
        assert_eq!(validate(vec![f], &ctx(DOC))[0].rule, "python/performance/llm");
    }

    #[test]
    fn batched_findings_route_by_path() {
        let f = |p: &str| RawFinding { path: Some(p.into()), ..raw(1, "") };
        let routed = route(vec![f("./src/a.py"), f("b.py"), f("c.py"), f("src\\a.py")], &["src/a.py", "lib/b.py"]);
        assert_eq!(routed["src/a.py"].len(), 2);
        assert_eq!(routed["lib/b.py"].len(), 1);
        assert_eq!(routed.values().map(Vec::len).sum::<usize>(), 3);
        assert_eq!(route(vec![raw(1, "")], &["only.py"])["only.py"].len(), 1);
    }
}
