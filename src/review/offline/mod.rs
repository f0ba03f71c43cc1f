//! Owns the built-in offline reviewer: tree-sitter rules, one file per language, grouped by
//! agent (category). It needs no key and no network, and it is the default agent.
//!
//! Each language contributes a rule table, one query per category and a `check` function.
//! Capture names carry the rule: the one capture without a dot in a pattern (`@eval`) is the
//! anchor, names the rule and must start inside the reviewed ranges; dotted captures
//! (`@eval.arg`) are parts the check looks at. Queries only find candidates cheaply; `check`
//! makes the final call, because precision matters more than recall here.

mod go;
mod javascript;
mod python;
mod rust;

use std::cell::RefCell;
use std::ops::Range;
use std::sync::LazyLock;

use streaming_iterator::StreamingIterator;
use tree_sitter::{Node, Query, QueryCursor, Tree};

use crate::review::finding::{Category, Finding, Fix, Severity, Span};
use crate::syntax::Language;

/// Part of every cache key for offline findings: bump it when any rule changes behaviour.
pub const RULESET_VERSION: &str = "offline-1";

/// What a rule is, for SARIF `tool.driver.rules`, docs and `disabled_rules` validation.
#[derive(Clone, Copy, Debug)]
pub struct RuleInfo {
    pub id: &'static str,
    pub category: Category,
    pub severity: Severity,
    pub summary: &'static str,
    pub has_fix: bool,
}

/// Shorthand for the rule tables in the language files.
const fn rule(
    id: &'static str,
    category: Category,
    severity: Severity,
    has_fix: bool,
    summary: &'static str,
) -> RuleInfo {
    RuleInfo { id, category, severity, summary, has_fix }
}

/// Every offline rule, across languages.
pub fn rules() -> &'static [RuleInfo] {
    static ALL: LazyLock<Vec<RuleInfo>> =
        LazyLock::new(|| [python::RULES, javascript::JS_RULES, javascript::TS_RULES, rust::RULES, go::RULES].concat());
    &ALL
}

/// Runs `agent`'s rules for `lang` over the nodes that start inside `ranges` (byte ranges of
/// one chunk of `source`, whose parse is `tree`).
///
/// A query's cost is dominated by walking the tree, not by how many patterns it has, so one
/// query per grammar serves all five categories, and the last chunk's findings are kept per
/// thread: the agents asking in turn about the same chunk share one walk.
pub fn review(lang: Language, agent: Category, tree: &Tree, source: &str, ranges: &[Range<usize>]) -> Vec<Finding> {
    thread_local! {
        static LAST: RefCell<Option<Memo>> = const { RefCell::new(None) };
    }
    LAST.with(|cell| {
        let mut last = cell.borrow_mut();
        let hit = last.as_ref().is_some_and(|m| m.lang == lang && m.ranges == ranges && m.source == source);
        if !hit {
            let findings = review_all(lang, tree, source, ranges);
            let mut buf = last.take().map(|m| m.source).unwrap_or_default();
            buf.clear();
            buf.push_str(source);
            *last = Some(Memo { lang, source: buf, ranges: ranges.to_vec(), findings });
        }
        let findings = last.as_ref().map_or(&[][..], |m| &m.findings[..]);
        findings.iter().filter(|f| f.category == agent).cloned().collect()
    })
}

/// The inputs and findings of the last `review` on this thread. The key is the source text
/// itself, not the tree, so a different tree at a reused address can never hit.
struct Memo {
    lang: Language,
    source: String,
    ranges: Vec<Range<usize>>,
    findings: Vec<Finding>,
}

/// Every category's findings for one chunk, sorted by position.
fn review_all(lang: Language, tree: &Tree, source: &str, ranges: &[Range<usize>]) -> Vec<Finding> {
    let spec = spec(lang);
    let Ok(compiled) = compiled(lang) else {
        return Vec::new();
    };
    let names = compiled.query.capture_names();
    let mut findings = Vec::new();
    let mut cursor = QueryCursor::new();
    for range in ranges {
        let range = range.start.min(source.len())..range.end.min(source.len());
        if range.is_empty() {
            continue;
        }
        cursor.set_byte_range(range.clone());
        let mut matches = cursor.matches(&compiled.query, tree.root_node(), source.as_bytes());
        while let Some(m) = matches.next() {
            let Some((info, anchor)) =
                m.captures().iter().find_map(|c| Some((compiled.anchors[c.index as usize]?, c.node)))
            else {
                continue;
            };
            if !range.contains(&anchor.start_byte()) {
                continue;
            }
            let caps = Match { caps: m.captures().iter().map(|c| (names[c.index as usize], c.node)).collect() };
            let Some(verdict) = (spec.check)(short_name(info.id), anchor, &caps, source) else {
                continue;
            };
            let finding = Finding {
                rule: info.id.to_string(),
                category: info.category,
                severity: info.severity,
                source: "offline".to_string(),
                message: verdict.message,
                span: verdict.span,
                fix: verdict.fix,
            };
            findings.push(finding.contain_fix());
        }
    }
    // Overlapping ranges or two patterns for one rule can report a node twice.
    findings.sort_by(|a, b| (a.span, &a.rule).cmp(&(b.span, &b.rule)));
    findings.dedup_by(|a, b| a.span == b.span && a.rule == b.rule);
    findings
}

/// What a language plugs into the engine.
struct Spec {
    rules: &'static [RuleInfo],
    /// Query source for one category; empty when the language has no rules there.
    query: fn(Category) -> &'static str,
    /// Decides whether a candidate match is a finding. `rule` is the anchor capture name.
    check: for<'t> fn(rule: &str, anchor: Node<'t>, m: &Match<'t>, src: &str) -> Option<Verdict>,
}

fn spec(lang: Language) -> &'static Spec {
    match lang {
        Language::Python => &python::SPEC,
        Language::JavaScript => &javascript::JS_SPEC,
        Language::TypeScript | Language::Tsx => &javascript::TS_SPEC,
        Language::Rust => &rust::SPEC,
        Language::Go => &go::SPEC,
    }
}

/// `eval` for `python/security/eval`: the capture name that anchors the rule.
fn short_name(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

struct Compiled {
    query: Query,
    /// Per capture index, the rule that capture anchors; `None` for part captures.
    anchors: Vec<Option<&'static RuleInfo>>,
}

fn compile(lang: Language) -> Result<Compiled, String> {
    let spec = spec(lang);
    let source: String = Category::ALL.map(spec.query).concat();
    let query = Query::new(&lang.grammar(), &source).map_err(|e| format!("{e}"))?;
    let anchors = query
        .capture_names()
        .iter()
        .map(|name| match name.contains('.') {
            true => Ok(None),
            false => {
                spec.rules.iter().find(|r| short_name(r.id) == *name).map(Some).ok_or(format!("@{name} names no rule"))
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(Compiled { query, anchors })
}

/// Queries are compiled once per grammar (TypeScript and TSX are different grammars).
fn compiled(lang: Language) -> &'static Result<Compiled, String> {
    fn init(lang: Language) -> Result<Compiled, String> {
        compile(lang)
            .inspect_err(|e| tracing::error!(lang = lang.name(), "offline rules disabled, query does not compile: {e}"))
    }
    static PY: LazyLock<Result<Compiled, String>> = LazyLock::new(|| init(Language::Python));
    static JS: LazyLock<Result<Compiled, String>> = LazyLock::new(|| init(Language::JavaScript));
    static TS: LazyLock<Result<Compiled, String>> = LazyLock::new(|| init(Language::TypeScript));
    static TSX: LazyLock<Result<Compiled, String>> = LazyLock::new(|| init(Language::Tsx));
    static RS: LazyLock<Result<Compiled, String>> = LazyLock::new(|| init(Language::Rust));
    static GO: LazyLock<Result<Compiled, String>> = LazyLock::new(|| init(Language::Go));
    match lang {
        Language::Python => &PY,
        Language::JavaScript => &JS,
        Language::TypeScript => &TS,
        Language::Tsx => &TSX,
        Language::Rust => &RS,
        Language::Go => &GO,
    }
}

/// The captures of one query match, by name.
struct Match<'t> {
    caps: Vec<(&'static str, Node<'t>)>,
}

impl<'t> Match<'t> {
    /// The node captured as `<rule>.<part>`; `part` alone is enough because a pattern only
    /// ever captures parts of its own rule.
    fn get(&self, part: &str) -> Option<Node<'t>> {
        self.caps.iter().find(|(name, _)| name.split_once('.').is_some_and(|(_, p)| p == part)).map(|&(_, n)| n)
    }
}

/// A check's decision: where the finding sits, what it says, and the optional fix.
struct Verdict {
    span: Span,
    message: String,
    fix: Option<Fix>,
}

impl Verdict {
    fn new(span: Node<'_>, message: impl Into<String>) -> Self {
        Verdict { span: Span::from_node(span), message: message.into(), fix: None }
    }

    /// A finding from the start of `first` to the end of `last`, for rules whose culprit is
    /// the tail of a longer expression (a method chain).
    fn between(first: Node<'_>, last: Node<'_>, message: impl Into<String>) -> Self {
        let (s, e) = (Span::from_node(first), Span::from_node(last));
        let span = Span { end_line: e.end_line, end_col: e.end_col, ..s };
        Verdict { span, message: message.into(), fix: None }
    }

    fn with_fix(mut self, fix: Option<Fix>) -> Self {
        self.fix = fix;
        self
    }
}

fn text<'s>(node: Node<'_>, src: &'s str) -> &'s str {
    src.get(node.byte_range()).unwrap_or("")
}

/// A fix that replaces exactly `node`'s text.
fn replace(src: &str, node: Node<'_>, new_text: &str) -> Option<Fix> {
    Fix::from_edit(src, node.start_byte(), node.end_byte(), new_text)
}

/// The operand children of a binary-like node, skipping comments.
fn operands<'t>(node: Node<'t>) -> Vec<Node<'t>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor).filter(|n| !n.kind().contains("comment")).collect()
}

/// The first child of `node` with the given (possibly anonymous) kind.
fn child_of_kind<'t>(node: Node<'t>, kind: &str) -> Option<Node<'t>> {
    let mut cursor = node.walk();
    node.children(&mut cursor).find(|n| n.kind() == kind)
}

/// Deletes the node's lines when nothing else shares them, so a fix never eats a neighbour.
fn delete_if_alone(src: &str, node: Node<'_>) -> Option<Fix> {
    let line_start = src[..node.start_byte()].rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[node.end_byte()..].find('\n').map_or(src.len(), |i| node.end_byte() + i);
    let before = &src[line_start..node.start_byte()];
    let after = &src[node.end_byte()..line_end];
    let after = after.trim();
    (before.trim().is_empty() && (after.is_empty() || after == ";"))
        .then(|| Fix::delete_lines(node.start_position().row as u32, node.end_position().row as u32))
}

/// The text of the line `node` starts on.
fn line_of<'s>(src: &'s str, node: Node<'_>) -> &'s str {
    let start = node.start_byte() - node.start_position().column;
    src.get(start..).and_then(|rest| rest.lines().next()).unwrap_or("")
}

/// The lines directly above the line `node` starts on, nearest first, while they are
/// `//` or `/* */` comments or attributes (which may sit between a comment and its code).
fn comment_lines_above<'s>(src: &'s str, node: Node<'_>) -> impl Iterator<Item = &'s str> {
    let line_start = node.start_byte() - node.start_position().column;
    src.get(..line_start)
        .unwrap_or("")
        .lines()
        .rev()
        .map(str::trim)
        .take_while(|l| ["//", "/*", "* ", "*/", "#["].iter().any(|p| l.starts_with(p)) || *l == "*")
}

/// Whether a string literal's text looks like SQL, so formatting it is an injection risk.
fn looks_like_sql(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    let starts = ["select ", "insert ", "update ", "delete ", "create ", "drop ", "alter ", "replace ", "with "];
    let t = s.trim_start_matches(|c: char| !c.is_ascii_alphabetic());
    starts.iter().any(|k| t.starts_with(k)) || [" from ", " where "].iter().any(|k| s.contains(k))
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // `review` takes a slice of ranges
mod tests {
    use super::*;

    #[test]
    fn every_query_compiles_for_every_grammar() {
        for lang in Language::ALL {
            // Each category on its own first, for an error message that points at the right text.
            for cat in Category::ALL {
                if let Err(e) = Query::new(&lang.grammar(), (spec(lang).query)(cat)) {
                    panic!("{lang:?} {} query: {e}", cat.as_str());
                }
            }
            if let Err(e) = compiled(lang) {
                panic!("{lang:?} combined query: {e}");
            }
        }
    }

    #[test]
    fn every_capture_names_a_rule_of_its_category() {
        for lang in Language::ALL {
            let spec = spec(lang);
            for cat in Category::ALL {
                let q = Query::new(&lang.grammar(), (spec.query)(cat)).unwrap();
                for name in q.capture_names() {
                    let rule = name.split('.').next().unwrap();
                    let id = format!("{}/{}/{rule}", lang.name(), cat.as_str());
                    assert!(spec.rules.iter().any(|r| r.id == id), "capture @{name} names no rule {id}");
                }
                for r in spec.rules.iter().filter(|r| r.category == cat) {
                    assert!(q.capture_names().contains(&short_name(r.id)), "{} has no anchor capture", r.id);
                }
            }
            let mut names: Vec<_> = spec.rules.iter().map(|r| short_name(r.id)).collect();
            names.sort();
            let before = names.len();
            names.dedup();
            assert_eq!(names.len(), before, "{lang:?}: rule names must be unique within a language");
        }
    }

    #[test]
    fn rule_ids_are_unique_well_formed_and_enough() {
        let all = rules();
        let mut ids: Vec<_> = all.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len(), "duplicate rule ids");
        assert!(all.len() >= 30, "only {} rules", all.len());
        let langs = ["python", "javascript", "typescript", "rust", "go"];
        for r in all {
            let parts: Vec<_> = r.id.split('/').collect();
            assert_eq!(parts.len(), 3, "{}", r.id);
            assert!(langs.contains(&parts[0]), "{}", r.id);
            assert_eq!(parts[1], r.category.as_str(), "{} registered as {:?}", r.id, r.category);
            let name_ok = !parts[2].is_empty()
                && parts[2].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            assert!(name_ok, "{}", r.id);
            assert!(!r.summary.is_empty(), "{}", r.id);
        }
        for cat in Category::ALL {
            assert!(all.iter().any(|r| r.category == cat), "no {} rules", cat.as_str());
        }
    }

    #[test]
    fn javascript_rules_mirror_typescript_rules() {
        let js: Vec<_> = javascript::JS_RULES.iter().map(|r| r.id.trim_start_matches("javascript/")).collect();
        let ts: Vec<_> = javascript::TS_RULES.iter().map(|r| r.id.trim_start_matches("typescript/")).collect();
        assert_eq!(js, ts);
    }

    #[test]
    fn only_nodes_starting_in_range_are_reported() {
        let src = "x = eval(a)\ny = eval(b)\nz = eval(c)\n";
        let tree = crate::syntax::parse(Language::Python, src).unwrap();
        let second = src.find("y =").unwrap()..src.find("z =").unwrap();
        let found = review(Language::Python, Category::Security, &tree, src, &[second]);
        assert_eq!(found.iter().map(|f| f.span.start_line).collect::<Vec<_>>(), [1]);
        let whole = 0..src.len();
        let found = review(Language::Python, Category::Security, &tree, src, &[whole.clone(), whole]);
        assert_eq!(found.len(), 3, "overlapping ranges must not duplicate findings");
    }

    #[test]
    fn memo_answers_each_category_and_notices_new_input() {
        let src = "x = eval(a)\nif y == None:\n    pass\n";
        let tree = crate::syntax::parse(Language::Python, src).unwrap();
        let all = [0..src.len()];
        let security = review(Language::Python, Category::Security, &tree, src, &all);
        let correctness = review(Language::Python, Category::Correctness, &tree, src, &all);
        assert_eq!(security.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(), ["python/security/eval"]);
        assert_eq!(
            correctness.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(),
            ["python/correctness/none-comparison"]
        );
        assert!(review(Language::Python, Category::Documentation, &tree, src, &all).is_empty());
        // Same text, other ranges; then other text: both must be recomputed.
        assert!(review(Language::Python, Category::Security, &tree, src, &[12..src.len()]).is_empty());
        let src2 = "x = exec(a)\n";
        let tree2 = crate::syntax::parse(Language::Python, src2).unwrap();
        let found = review(Language::Python, Category::Security, &tree2, src2, &[0..src2.len()]);
        assert_eq!(found.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(), ["python/security/exec"]);
    }

    #[test]
    fn sql_detection() {
        assert!(looks_like_sql("SELECT * FROM users WHERE id = %s"));
        assert!(looks_like_sql("  delete from t"));
        assert!(!looks_like_sql("hello {name}"));
        assert!(!looks_like_sql("selected item: {}"));
    }
}
