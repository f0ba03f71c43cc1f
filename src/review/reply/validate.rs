//! Validation: a parsed finding becomes a [`Finding`] only if its lines lie in the chunk
//! (after re-anchoring on its quote), and its fix only if it stays inside the finding.

use std::ops::Range;

use super::{ANCHOR_WINDOW, MAX_FIX_LINES, MAX_MESSAGE_CHARS, RawFinding, RawFix};
use crate::review::finding::{Category, Finding, Fix, Severity, Span};
use crate::review::prompt::PLACEHOLDER_PREFIX;
use crate::syntax::Language;

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
pub(super) fn quote_matches(line: &str, quote: &str) -> bool {
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
    if !fix_size_is_plausible(&replacement, original.len(), (fe0 - fl0 + 1) as usize) {
        return reject("fix is far larger than the lines it replaces");
    }
    if replacement == original {
        tracing::debug!(rule, "dropped a fix that changes nothing");
        return None;
    }
    Some(Fix { start_line: fl0 as u32, end_line: fe0 as u32, replacement })
}

/// Whether a replacement is about the size of the `lines` lines (`original_bytes` long) it
/// replaces; a rewrite smuggled in as a fix is not. Shared by model replies and team entries.
pub fn fix_size_is_plausible(replacement: &str, original_bytes: usize, lines: usize) -> bool {
    replacement.lines().count() <= 2 * lines + 5 && replacement.len() <= 4 * original_bytes + 400
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
