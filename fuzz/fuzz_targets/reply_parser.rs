//! Model replies are untrusted text: arbitrary bytes go through `parse_reply`, `route` and
//! `validate` against two small fixed documents, and every finding that survives must stay
//! inside the reviewed chunk with its fix inside the finding (`Finding::fix_is_contained`).
#![no_main]
#![allow(clippy::single_range_in_vec_init)] // the APIs take a slice of ranges

use std::ops::Range;

use libfuzzer_sys::fuzz_target;
use review_lsp::review::finding::{Category, Finding};
use review_lsp::review::reply::{self, MAX_FIX_LINES, ReplyError, ValidationContext};
use review_lsp::syntax::Language;
use serde_json::Value;

/// LF document; two chunks of a module remainder, with a gap between them.
const DOC_A: &str = "import os\n\ndef f(x):\n    y = g(x)\n    return y\n\nKEY = 'x'  # é😀\ndef h():\n    return 1\n";
/// CRLF document without a final newline, one chunk in the middle.
const DOC_B: &str = "fn a() {}\r\nfn b(x: u8) -> u8 {\r\n    x + 1\r\n}\r\nfn c() {}";

fn ranges_a() -> Vec<Range<usize>> {
    let second = DOC_A.find("def f").unwrap()..DOC_A.find("\nKEY").unwrap() + 1;
    let third = DOC_A.find("def h").unwrap()..DOC_A.len();
    vec![0..DOC_A.find("\n\n").unwrap() + 1, second, third]
}

fn ranges_b() -> Vec<Range<usize>> {
    vec![DOC_B.find("fn b").unwrap()..DOC_B.find("fn c").unwrap()]
}

/// The 0-based lines a chunk byte range covers, as `ValidationContext::new` computes them.
fn allowed_lines(text: &str, ranges: &[Range<usize>]) -> Vec<Range<u32>> {
    let line_of = |byte: usize| text.as_bytes()[..byte].iter().filter(|&&c| c == b'\n').count() as u32;
    ranges.iter().filter(|r| r.start < r.end).map(|r| line_of(r.start)..line_of(r.end - 1) + 1).collect()
}

fn check(findings: &[Finding], text: &str, ranges: &[Range<usize>]) {
    let allowed = allowed_lines(text, ranges);
    let lines: Vec<&str> = text.split('\n').collect();
    for f in findings {
        let s = f.span;
        assert!(s.start_line <= s.end_line, "inverted span {s:?}");
        assert!(
            allowed.iter().any(|r| r.start <= s.start_line && s.end_line < r.end),
            "finding {s:?} outside the chunk lines {allowed:?}"
        );
        assert!(f.fix_is_contained(), "fix {:?} escapes its finding {s:?}", f.fix);
        if let Some(fix) = &f.fix {
            assert!(
                allowed.iter().any(|r| r.start <= fix.start_line && fix.end_line < r.end),
                "fix {fix:?} outside the chunk lines {allowed:?}"
            );
            assert!(i64::from(fix.end_line - fix.start_line) < MAX_FIX_LINES, "fix too long: {fix:?}");
            assert!(!fix.replacement.contains("<REDACTED:"), "fix writes a placeholder: {fix:?}");
        }
        let end_line = lines[s.end_line as usize].trim_end_matches('\r');
        assert!(s.end_col as usize <= end_line.len(), "end column past the line: {s:?}");
        assert!(!f.message.trim().is_empty(), "empty message");
        assert!(f.message.chars().count() <= 1001, "message not capped");
        assert!(f.rule.ends_with("/llm"), "rule id {}", f.rule);
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = match reply::parse_reply(&text) {
        Ok(parsed) => parsed,
        Err(err @ ReplyError::Unparseable { .. }) => {
            let ReplyError::Unparseable { reason, excerpt } = &err;
            assert!(!reason.is_empty() && excerpt.chars().count() <= 80);
            assert!(!err.to_string().is_empty());
            return;
        }
    };
    // An oracle: a reply that is exactly `{"findings": [...]}` (as serde_json reads it) is
    // complete, and every element is either a finding or counted as dropped.
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&text)
        && let Some(Value::Array(items)) = map.get("findings")
    {
        assert!(!parsed.truncated, "a complete JSON reply was taken as cut off");
        assert_eq!(parsed.findings.len() + parsed.dropped, items.len(), "findings lost from a JSON reply");
    }
    let (ra, rb) = (ranges_a(), ranges_b());
    let ctx_a = ValidationContext::new(DOC_A, &ra, Language::Python, Category::Correctness, "fuzz:a");
    let ctx_b = ValidationContext::new(DOC_B, &rb, Language::Rust, Category::Security, "fuzz:b");

    // Single-file call: every finding is checked against DOC_A.
    check(&reply::validate(parsed.findings.clone(), &ctx_a), DOC_A, &ra);
    check(&reply::validate(parsed.findings.clone(), &ctx_b), DOC_B, &rb);

    // Batched call: findings are routed by path first.
    let total = parsed.findings.len();
    let routed = reply::route(parsed.findings, &["src/a.py", "lib/b.rs"]);
    assert!(routed.values().map(Vec::len).sum::<usize>() <= total);
    for (path, raw) in routed {
        match path.as_str() {
            "src/a.py" => check(&reply::validate(raw, &ctx_a), DOC_A, &ra),
            "lib/b.rs" => check(&reply::validate(raw, &ctx_b), DOC_B, &rb),
            other => panic!("routed to a path not in the batch: {other}"),
        }
    }
});
