//! Properties that must hold for any input, checked with proptest:
//!
//! - a model's reply, whatever it is, parses into findings (which then validate or are
//!   dropped) or is one clear error;
//! - no fix ever escapes its finding or the reviewed chunk, whatever lines the model claims;
//! - positions round-trip between UTF-8 byte columns and the client's UTF-16 (or UTF-8)
//!   positions at every char boundary.
//!
//! Case counts are modest (256, 64 for the heavy ones) so the file runs in seconds;
//! `PROPTEST_CASES=10000 cargo test --test properties` runs more.

#![allow(clippy::single_range_in_vec_init)] // the APIs take a slice of ranges

use std::ops::Range;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use review_lsp::lines::Locator;
use review_lsp::review::finding::{Category, Finding};
use review_lsp::review::reply::{self, MAX_FIX_LINES, ReplyError, ValidationContext};
use review_lsp::server::encoding::{PositionEncoding, byte_column_to_position, position_to_char};
use review_lsp::syntax::Language;
use ropey::Rope;
use serde_json::{Value, json};
use tower_lsp_server::ls_types::Position;

// ------------------------------------------------------------------ helpers

/// `n` cases, unless `PROPTEST_CASES` asks for another number. Failures are not persisted
/// to a `*.proptest-regressions` file: a case worth keeping becomes a plain `#[test]` below.
fn cases(n: u32) -> ProptestConfig {
    let mut config = ProptestConfig { failure_persistence: None, ..ProptestConfig::default() };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = n;
    }
    config
}

/// The lines (0-based, half-open) a chunk's byte ranges cover, as validation computes them.
fn allowed_lines(text: &str, ranges: &[Range<usize>]) -> Vec<Range<u32>> {
    let line_of = |b: usize| text.as_bytes()[..b].iter().filter(|&&c| c == b'\n').count() as u32;
    ranges.iter().filter(|r| r.start < r.end).map(|r| line_of(r.start)..line_of(r.end - 1) + 1).collect()
}

/// Byte ranges of whole lines `lines` (0-based, inclusive bounds) of `text`.
fn line_range(text: &str, first: usize, last: usize) -> Range<usize> {
    let starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let start = starts[first.min(starts.len() - 1)];
    let end = starts.get(last + 1).copied().unwrap_or(text.len());
    start..end.max(start)
}

/// Everything a validated finding promises, whatever the model said.
fn assert_sound(findings: &[Finding], text: &str, ranges: &[Range<usize>]) -> Result<(), TestCaseError> {
    let allowed = allowed_lines(text, ranges);
    let inside = |lo: u32, hi: u32| allowed.iter().any(|r| r.start <= lo && hi < r.end);
    let lines: Vec<&str> = text.split('\n').collect();
    for f in findings {
        let s = f.span;
        prop_assert!(s.start_line <= s.end_line, "inverted span {:?}", s);
        prop_assert!(inside(s.start_line, s.end_line), "span {:?} outside the chunk lines {:?}", s, allowed);
        prop_assert!(f.fix_is_contained(), "fix {:?} escapes span {:?}", f.fix, s);
        prop_assert!(s.end_col as usize <= lines[s.end_line as usize].trim_end_matches('\r').len());
        if let Some(fix) = &f.fix {
            prop_assert!(fix.start_line <= fix.end_line);
            prop_assert!(fix.start_line >= s.start_line && fix.end_line <= s.end_line);
            prop_assert!(inside(fix.start_line, fix.end_line), "fix {:?} outside {:?}", fix, allowed);
            prop_assert!(i64::from(fix.end_line - fix.start_line) < MAX_FIX_LINES);
        }
        prop_assert!(!f.message.trim().is_empty());
    }
    Ok(())
}

// ------------------------------------------------------------------ generators

/// Source-ish text: identifiers, operators, indentation, non-ASCII, blank lines, LF or CRLF.
fn source_text() -> impl Strategy<Value = String> {
    let line = prop::collection::vec(
        prop_oneof![
            4 => "[a-z_]{1,8}",
            2 => Just(" ".to_string()),
            1 => Just("    ".to_string()),
            1 => Just("= ".to_string()),
            1 => Just("(x)".to_string()),
            1 => Just("é".to_string()),
            1 => Just("😀".to_string()),
            1 => Just("e\u{301}".to_string()),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat());
    (prop::collection::vec(line, 1..30), any::<bool>(), any::<bool>()).prop_map(|(lines, crlf, final_eol)| {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = lines.join(eol);
        if final_eol {
            text.push_str(eol);
        }
        text
    })
}

/// A chunk: one to three runs of whole lines, given as fractions of the line count.
fn chunk_spans() -> impl Strategy<Value = Vec<(f64, f64)>> {
    prop::collection::vec((0.0..1.0f64, 0.0..1.0f64), 1..4)
}

fn ranges_for(text: &str, spans: &[(f64, f64)]) -> Vec<Range<usize>> {
    let lines = text.split('\n').count();
    spans
        .iter()
        .map(|&(a, b)| {
            let (a, b) = ((a * lines as f64) as usize, (b * lines as f64) as usize);
            line_range(text, a.min(b), a.max(b))
        })
        .collect()
}

/// Line numbers as models write them: plausible, off by a little, or absurd.
fn line_number() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 1..40i64,
        1 => -5..=0i64,
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
        1 => Just(i64::from(u32::MAX)),
        1 => Just(i64::from(u32::MAX) + 1),
        1 => any::<i64>(),
    ]
}

/// How a model writes a number: an integer, a float, a string, or nonsense.
fn number_value(n: i64) -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => Just(json!(n)),
        1 => Just(json!(n as f64)),
        1 => Just(json!(n.to_string())),
        1 => Just(json!(format!(" {n} "))),
    ]
}

#[derive(Clone, Debug)]
struct GenFinding {
    value: Value,
    /// Whether the parser must keep it: integer-ish `line` and a non-blank `message`.
    keep: bool,
}

/// A finding object about line `anchor` (0-based) of a document whose lines are `lines`:
/// mostly stated on that line and quoting it, with a fix on its lines, as a model that did
/// its job writes; often off by a few lines, quoting something else, or with absurd,
/// negative, reversed or huge line numbers for the finding or the fix.
fn finding(lines: Vec<String>) -> impl Strategy<Value = GenFinding> {
    let count = lines.len().max(1);
    (0..count).prop_flat_map(move |anchor| {
        let here = anchor as i64 + 1;
        let own = lines.get(anchor).map(|l| l.trim().to_string()).unwrap_or_default();
        let line = prop_oneof![4 => Just(here), 2 => here - 3..=here + 3, 1 => line_number()];
        let span = prop_oneof![3 => Just(None), 3 => (0..3i64).prop_map(Some), 1 => line_number().prop_map(move |n| Some(n.wrapping_sub(here)))];
        let quote = prop_oneof![
            5 => Just(own),
            1 => Just(String::new()),
            1 => ".{0,12}",
            1 => Just("<REDACTED:aws-access-key>".to_string()),
        ];
        // Offsets from the finding's stated line; `None` means "the finding's own lines".
        let fix_start = prop_oneof![
            4 => Just(Some(0i64)),
            2 => (0..3i64).prop_map(Some),
            1 => Just(None),
            1 => line_number().prop_map(move |n| Some(n.wrapping_sub(here))),
        ];
        let fix_end = prop_oneof![
            3 => Just(None),
            2 => (0..3i64).prop_map(Some),
            1 => line_number().prop_map(move |n| Some(n.wrapping_sub(here))),
        ];
        let fix = prop::option::weighted(
            0.7,
            (
                fix_start,
                fix_end,
                prop_oneof![
                    5 => "    [a-z =()]{1,30}\n?",
                    2 => "[a-z =()\n]{0,40}",
                    1 => Just(String::new()),
                    1 => Just("x\n".repeat(100)),
                    1 => Just("k = '<REDACTED:jwt>'\n".to_string()),
                    1 => Just(format!("{here}: y = 1\n{}: z = 2\n", here + 1)),
                ],
            ),
        );
        let message = prop_oneof![
            8 => "[a-zA-Z {}\\[\\]\"é]{1,30}",
            1 => Just(String::new()),
            1 => Just("   ".to_string()),
        ];
        (
            line,
            span,
            prop::option::of(prop::sample::select(vec!["error", "HIGH", "nit", "whatever", ""])),
            prop::option::of(prop::sample::select(vec!["security", "Bug", "perf", "vibes"])),
            message,
            quote,
            fix,
        )
    })
    .prop_flat_map(|(line, span, severity, category, message, quote, fix)| {
        let keep = !message.trim().is_empty();
        // Relative offsets become absolute lines here; wrapping keeps the absurd ones absurd.
        let end_line = span.map(|d| line.wrapping_add(d));
        let fix = fix.map(|(l, e, r)| (l.map(|d| line.wrapping_add(d)), e.map(|d| line.wrapping_add(d)), r));
        (number_value(line), number_value(end_line.unwrap_or(line))).prop_map(move |(line_v, end_v)| {
            let mut obj = json!({"line": line_v, "message": message, "quote": quote});
            if end_line.is_some() {
                obj["end_line"] = end_v;
            }
            if let Some(s) = severity {
                obj["severity"] = json!(s);
            }
            if let Some(c) = category {
                obj["category"] = json!(c);
            }
            if let Some((fl, fe, replacement)) = &fix {
                obj["fix"] = json!({"line": fl, "end_line": fe, "replacement": replacement});
            }
            GenFinding { value: obj, keep }
        })
    })
}

/// A whole reply around generated findings: the canonical object, a bare array, fenced and
/// chatty, with trailing commas, or cut off.
#[derive(Clone, Debug)]
enum Wrapping {
    Object,
    Bare,
    Fenced,
    TrailingComma,
    Cut(f64),
}

fn wrapping() -> impl Strategy<Value = Wrapping> {
    prop_oneof![
        3 => Just(Wrapping::Object),
        1 => Just(Wrapping::Bare),
        2 => Just(Wrapping::Fenced),
        1 => Just(Wrapping::TrailingComma),
        1 => (0.0..1.0f64).prop_map(Wrapping::Cut),
    ]
}

fn render(findings: &[GenFinding], wrap: &Wrapping) -> String {
    let items: Vec<Value> = findings.iter().map(|f| f.value.clone()).collect();
    let object = json!({ "findings": items }).to_string();
    match wrap {
        Wrapping::Object => object,
        Wrapping::Bare => Value::Array(items).to_string(),
        Wrapping::Fenced => format!("Sure, here is my review:\n```json\n{object}\n```\nHope this helps!"),
        Wrapping::TrailingComma => {
            let body: Vec<String> = items.iter().map(|v| format!("{v},")).collect();
            format!("{{\"findings\": [{}]}}", body.concat())
        }
        Wrapping::Cut(at) => {
            let mut cut = (object.len() as f64 * at) as usize;
            while !object.is_char_boundary(cut) {
                cut -= 1;
            }
            object[..cut].to_string()
        }
    }
}

/// Document text, chunk ranges and a reply whose quotes come from the document.
fn reviewed_reply() -> impl Strategy<Value = (String, Vec<Range<usize>>, Vec<GenFinding>, Wrapping)> {
    (source_text(), chunk_spans()).prop_flat_map(|(text, spans)| {
        let ranges = ranges_for(&text, &spans);
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        (Just(text), Just(ranges), prop::collection::vec(finding(lines), 0..8), wrapping())
    })
}

fn ctx<'a>(text: &'a str, ranges: &[Range<usize>]) -> ValidationContext<'a> {
    ValidationContext::new(text, ranges, Language::Python, Category::Correctness, "prop:model")
}

// ------------------------------------------------------------------ reply properties

proptest! {
    #![proptest_config(cases(256))]

    /// Any text at all: findings (which then validate or are dropped) or one clear error.
    #[test]
    fn any_text_parses_or_is_one_clear_error(text in prop_oneof![
        any::<String>(),
        "[\\[\\]{}\",:0-9a-z \n\\\\]{0,200}",
        "(```json\n)?\\{\"findings\": \\[(\\{\"line\": [0-9]{1,3}, \"message\": \"[a-z]{0,5}\"\\},?){0,4}",
    ]) {
        let doc = "def f(x):\n    y = g(x)\n    return y\n";
        match reply::parse_reply(&text) {
            Ok(parsed) => {
                let n = parsed.findings.len();
                let valid = reply::validate(parsed.findings, &ctx(doc, &[0..doc.len()]));
                prop_assert!(valid.len() <= n);
                assert_sound(&valid, doc, &[0..doc.len()])?;
            }
            Err(err) => {
                let ReplyError::Unparseable { reason, excerpt } = &err;
                prop_assert!(!reason.is_empty());
                prop_assert!(excerpt.chars().count() <= 80);
                prop_assert!(err.to_string().starts_with("unparseable reply ("));
            }
        }
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// Well-formed replies, however wrapped, keep every finding that has its required
    /// fields and count the rest as dropped; cut-off ones keep a prefix and say so.
    #[test]
    fn structured_replies_parse_to_their_findings((text, ranges, findings, wrap) in reviewed_reply()) {
        let reply_text = render(&findings, &wrap);
        let parsed = reply::parse_reply(&reply_text);
        let want_kept: Vec<&GenFinding> = findings.iter().filter(|f| f.keep).collect();
        match (&wrap, parsed) {
            (Wrapping::Cut(_), Ok(p)) => {
                prop_assert!(p.truncated || p.findings.len() + p.dropped <= findings.len());
                prop_assert!(p.findings.len() <= want_kept.len());
                for (got, want) in p.findings.iter().zip(&want_kept) {
                    prop_assert_eq!(&json!(got.message), &want.value["message"]);
                }
            }
            (Wrapping::Cut(_), Err(ReplyError::Unparseable { reason, .. })) => prop_assert!(!reason.is_empty()),
            (Wrapping::Bare, Ok(p)) if findings.is_empty() => prop_assert!(p.findings.is_empty()),
            (_, Ok(p)) => {
                prop_assert!(!p.truncated);
                prop_assert_eq!(p.findings.len(), want_kept.len(), "reply: {}", reply_text);
                prop_assert_eq!(p.dropped, findings.len() - want_kept.len());
                for (got, want) in p.findings.iter().zip(&want_kept) {
                    prop_assert_eq!(&json!(got.message), &want.value["message"]);
                    prop_assert_eq!(&json!(got.quote), &want.value["quote"]);
                }
                let valid = reply::validate(p.findings, &ctx(&text, &ranges));
                assert_sound(&valid, &text, &ranges)?;
            }
            (_, Err(e)) => prop_assert!(false, "well-formed reply rejected: {} ({})", e, reply_text),
        }
    }

    /// Whatever lines a finding and its fix claim (huge, negative, reversed, past the end),
    /// every finding that survives validation lies in the chunk and its fix in the finding.
    #[test]
    fn no_fix_escapes_its_range((text, ranges, findings, _) in reviewed_reply()) {
        let raw = reply::parse_reply(&render(&findings, &Wrapping::Object)).expect("well-formed").findings;
        let valid = reply::validate(raw.clone(), &ctx(&text, &ranges));
        assert_sound(&valid, &text, &ranges)?;
        // The same findings batched under a path route back to this file and stay sound.
        let routed = reply::route(raw, &["src/app.py"]);
        for (_, raw) in routed {
            assert_sound(&reply::validate(raw, &ctx(&text, &ranges)), &text, &ranges)?;
        }
    }
}

// ------------------------------------------------------------------ positions

/// Text where encodings disagree: ASCII, 2-, 3- and 4-byte chars, a combining mark (its own
/// char), a ZWJ sequence, tabs, and LF / CRLF line ends.
fn tricky_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            6 => "[a-z ]{1,4}",
            1 => Just("é".to_string()),
            1 => Just("e\u{301}".to_string()),
            1 => Just("中文".to_string()),
            1 => Just("😀".to_string()),
            1 => Just("👩\u{200d}💻".to_string()),
            1 => Just("\u{10348}".to_string()),
            1 => Just("\t".to_string()),
            2 => Just("\n".to_string()),
            2 => Just("\r\n".to_string()),
            2 => Just("\r".to_string()),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

/// The oracle, written from the LSP spec and independent of ropey: each line's first byte
/// and content, lines ending at `\n`, `\r\n` or a lone `\r`.
fn spec_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let (mut start, mut i) = (0, 0);
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let width = match (bytes[i], bytes.get(i + 1)) {
            (b'\r', Some(b'\n')) => 2,
            (b'\r', _) | (b'\n', _) => 1,
            _ => 0,
        };
        if width == 0 {
            i += 1;
            continue;
        }
        lines.push((start, text[start..i].to_string()));
        i += width;
        start = i;
    }
    lines.push((start, text[start..].to_string()));
    lines
}

/// The engine's (tree-sitter's) row and byte column of a byte: rows end at `\n` only.
fn engine_row_col(text: &str, byte: usize) -> (u32, u32) {
    let before = &text[..byte];
    let row_start = before.rfind('\n').map_or(0, |i| i + 1);
    (before.matches('\n').count() as u32, (byte - row_start) as u32)
}

proptest! {
    #![proptest_config(cases(256))]

    /// For every line and every char boundary of its content (lines as the spec splits them,
    /// lone `\r` included): the engine's row/column → position is the spec's line and the
    /// prefix's length in the encoding, position → char lands on the same byte, and a column
    /// inside a char or past the line's end clamps.
    #[test]
    fn positions_round_trip_at_every_char_boundary(text in tricky_text()) {
        let rope = Rope::from_str(&text);
        let loc = Locator::new(&text);
        let lines = spec_lines(&text);
        prop_assert_eq!(rope.len_lines(), lines.len(), "line count of {:?}", text);
        for (line, (line_start, content)) in lines.into_iter().enumerate() {
            let line = line as u32;
            for (col, _) in content.char_indices().chain(std::iter::once((content.len(), ' '))) {
                let byte = line_start + col;
                let (row, row_col) = engine_row_col(&text, byte);
                for enc in [PositionEncoding::Utf16, PositionEncoding::Utf8] {
                    let pos = byte_column_to_position(&loc, row, row_col, enc);
                    let want = match enc {
                        PositionEncoding::Utf16 => content[..col].encode_utf16().count(),
                        PositionEncoding::Utf8 => col,
                    };
                    prop_assert_eq!(pos, Position::new(line, want as u32), "{:?} col {} of {:?}", enc, col, content);
                    let ch = position_to_char(&rope, pos, enc);
                    prop_assert_eq!(rope.char_to_byte(ch), byte, "{:?} {:?} of {:?}", enc, pos, content);
                }
            }
            // A column inside a multi-byte char means that char's start; past the end, the end.
            for (col, c) in content.char_indices().filter(|(_, c)| c.len_utf8() > 1) {
                let (row, row_col) = engine_row_col(&text, line_start + col);
                let inside = byte_column_to_position(&loc, row, row_col + 1, PositionEncoding::Utf16);
                let start = byte_column_to_position(&loc, row, row_col, PositionEncoding::Utf16);
                prop_assert_eq!(inside, start, "inside {:?}", c);
            }
            let end = content.encode_utf16().count() as u32;
            let past = position_to_char(&rope, Position::new(line, end + 7), PositionEncoding::Utf16);
            prop_assert_eq!(rope.char_to_byte(past), line_start + content.len());
        }
    }
}

// ------------------------------------------------------------------ regressions

/// Found by `structured_replies_parse_to_their_findings`: the trailing-comma repair tracked
/// strings wrongly after an escaped quote, so `{"findings": [{..."a \"b"},]}` was unparseable.
#[test]
fn trailing_comma_after_escaped_quotes_parses() {
    let text = r#"{"findings": [{"line": 1, "message": "K\"\"LF}EN}k}\"r}", "quote": "(x)="},]}"#;
    let parsed = reply::parse_reply(text).expect("parses");
    assert_eq!(parsed.findings.len(), 1);
    assert_eq!(parsed.findings[0].message, r#"K""LF}EN}k}"r}"#);
    let text = r#"{"findings": [{"line": 1, "message": "a \"b, ]"},]}"#;
    assert_eq!(reply::parse(text).unwrap()[0].message, r#"a "b, ]"#);
}

/// The properties above are only as good as their inputs: the generated replies must reach
/// the interesting cases (findings that survive validation, fixes that are kept, fixes that
/// are dropped) often enough, or the properties would pass vacuously.
#[test]
fn generated_replies_reach_kept_and_dropped_fixes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut kept, mut with_fix, mut fix_kept) = (0, 0, 0);
    for _ in 0..256 {
        let (text, ranges, findings, _) = reviewed_reply().new_tree(&mut runner).unwrap().current();
        with_fix += findings.iter().filter(|f| f.value.get("fix").is_some()).count();
        let raw = reply::parse_reply(&render(&findings, &Wrapping::Object)).unwrap().findings;
        let valid = reply::validate(raw, &ctx(&text, &ranges));
        kept += valid.len();
        fix_kept += valid.iter().filter(|f| f.fix.is_some()).count();
    }
    eprintln!("{kept} findings kept, {fix_kept} with their fix, of {with_fix} generated with a fix");
    assert!(kept >= 150 && fix_kept >= 50 && with_fix >= fix_kept + 150, "{kept} {fix_kept} {with_fix}");
}
