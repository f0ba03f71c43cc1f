//! Unit tests of parsing and validation, including the private helpers.

use super::validate::quote_matches;
use super::*;
use crate::review::finding::{Category, Severity};
use crate::syntax::Language;

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
    let text = "{\"findings\": [{\"line\": 1, \"message\": \"a {b}\", \"fix\": {\"line\": 1}}, {\"line\": 2, \"mess";
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
