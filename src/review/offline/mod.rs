//! Owns the built-in offline reviewer: tree-sitter rules, one file per language, grouped by
//! agent (category). It needs no key and no network, and it is the default agent.
//!
//! Each language contributes a rule table, the node kinds its rules are anchored at, and a
//! `visit` function. One pre-order walk over a chunk calls `visit` on every node of those
//! kinds that starts inside the chunk; `visit` dispatches on the node's kind to the matchers
//! of the rules anchored there. A matcher checks the node's shape in Rust (what a query
//! pattern used to describe), then makes the final call, because precision matters more
//! than recall here. There are no tree-sitter queries: compiling them cost tens of
//! milliseconds per grammar, which alone broke the start-up budget.

mod go;
mod javascript;
mod python;
mod rust;

use std::cell::RefCell;
use std::ops::Range;
use std::sync::LazyLock;

use tree_sitter::{Node, Tree};

use crate::review::finding::{Category, Finding, Fix, Severity, Span};
use crate::syntax::Language;

/// Part of every cache key for offline findings: bump it when any rule changes behaviour.
pub const RULESET_VERSION: &str = "offline-2";

/// `Finding::source` of every offline finding.
pub const SOURCE: &str = "offline";

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
/// One walk finds every category's findings, and the last chunk's findings are kept per
/// thread: the agents asking in turn about the same chunk share that walk.
pub fn review(lang: Language, agent: Category, tree: &Tree, source: &str, ranges: &[Range<usize>]) -> Vec<Finding> {
    thread_local! {
        static LAST: RefCell<Option<Memo>> = const { RefCell::new(None) };
    }
    LAST.with(|cell| {
        let mut last = cell.borrow_mut();
        let key = MemoKey::new(lang, tree, source);
        let hit = last.as_ref().is_some_and(|m| m.key == key && m.ranges == ranges);
        if !hit {
            let findings = review_all(lang, tree, source, ranges);
            // Dropping the previous memo first lets its tree go before this one is pinned.
            *last = None;
            *last = Some(Memo { key, _pin: tree.clone(), ranges: ranges.to_vec(), findings });
        }
        let findings = last.as_ref().map_or(&[][..], |m| &m.findings[..]);
        findings.iter().filter(|f| f.category == agent).cloned().collect()
    })
}

/// Prepares `lang`'s rules ahead of the first review: builds the table of node kinds the
/// rules look at (microseconds; there are no queries to compile). The server calls it at
/// start-up; the first review would otherwise build it.
pub fn warm_up(lang: Language) {
    let _ = (rules(), anchor_table(lang));
}

/// The inputs and findings of the last `review` on this thread.
struct Memo {
    key: MemoKey,
    /// Keeps the tree's nodes alive, so no other tree can put a node at an address the key
    /// holds while the memo may answer for it (and editing the caller's tree copies those
    /// nodes instead of changing them in place).
    _pin: Tree,
    ranges: Vec<Range<usize>>,
    findings: Vec<Finding>,
}

/// Identifies a (tree, text) pair in constant time: comparing or copying the whole text
/// cost O(file size) per call, several calls per chunk, up to 6% of a scan's instructions.
///
/// Node ids are addresses. The root's id is the address of the `Tree` value, which the pin
/// (a clone) does not keep; its first child's id points into the root node's memory, which
/// the pin does keep. Only an incremental reparse could build another tree around that same
/// child, and it would also need the memo tree's address and text address to match:
/// `syntax::parse` never reparses incrementally.
#[derive(PartialEq, Eq)]
struct MemoKey {
    lang: Language,
    root: usize,
    /// `None` for a root without children, which gives no findings anyway.
    first: Option<usize>,
    text: *const u8,
    len: usize,
}

impl MemoKey {
    fn new(lang: Language, tree: &Tree, source: &str) -> Self {
        let root = tree.root_node();
        MemoKey {
            lang,
            root: root.id(),
            first: root.child(0).map(|n| n.id()),
            text: source.as_ptr(),
            len: source.len(),
        }
    }
}

/// Every category's findings for one chunk, sorted by position.
fn review_all(lang: Language, tree: &Tree, source: &str, ranges: &[Range<usize>]) -> Vec<Finding> {
    let spec = spec(lang);
    let mut report = Report::default();
    walk(tree, &merged(ranges, source.len()), anchor_table(lang), |node| (spec.visit)(node, source, &mut report));
    let mut findings: Vec<Finding> = report
        .found
        .into_iter()
        .filter_map(|(name, verdict)| {
            let info = spec.rules.iter().find(|r| short_name(r.id) == name);
            debug_assert!(info.is_some(), "{lang:?} reported `{name}`, which names no rule");
            let info = info?;
            let finding = Finding {
                rule: info.id.to_string(),
                category: info.category,
                severity: info.severity,
                source: SOURCE.to_string(),
                message: verdict.message,
                span: verdict.span,
                fix: verdict.fix,
            };
            Some(finding.contain_fix())
        })
        .collect();
    // A rule can report one node for several reasons; keep the first, as the walk found it.
    findings.sort_by(|a, b| (a.span, &a.rule).cmp(&(b.span, &b.rule)));
    findings.dedup_by(|a, b| a.span == b.span && a.rule == b.rule);
    findings
}

/// `ranges` clipped to the source, sorted, without empty ones, and with overlapping or
/// touching ones joined, so the walk can step through them in order.
fn merged(ranges: &[Range<usize>], len: usize) -> Vec<Range<usize>> {
    let mut sorted: Vec<_> =
        ranges.iter().map(|r| r.start.min(len)..r.end.min(len)).filter(|r| !r.is_empty()).collect();
    sorted.sort_by_key(|r| r.start);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Calls `visit` on every node that starts inside `ranges` (sorted and disjoint) and whose
/// kind id is marked in `wanted`, in pre-order. Pre-order visits nodes by non-decreasing
/// start byte, so the current range only ever moves forward; subtrees that end before it
/// are skipped whole, and the walk stops at the first node past the last range.
fn walk<'t>(tree: &'t Tree, ranges: &[Range<usize>], wanted: &[bool], mut visit: impl FnMut(Node<'t>)) {
    let mut cursor = tree.walk();
    let mut current = 0;
    loop {
        let node = cursor.node();
        let start = node.start_byte();
        while ranges.get(current).is_some_and(|r| r.end <= start) {
            current += 1;
        }
        let Some(range) = ranges.get(current) else { return };
        let inside = start >= range.start;
        if inside && wanted.get(usize::from(node.kind_id())).copied().unwrap_or(false) {
            visit(node);
        }
        let descended = if inside {
            cursor.goto_first_child()
        } else {
            // A node that starts before the range can still hold nodes that start inside
            // it. Jump to its first child that reaches the range: the ones before cannot
            // hold such nodes, and the jump passes over whole runs of them at once (one
            // chunk per function would otherwise step past every function before it). The
            // jump gives up when a hidden token (Go's newline) overhangs the range's start;
            // then step through the children instead.
            node.end_byte() > range.start
                && (cursor.goto_first_child_for_byte(range.start).is_some() || cursor.goto_first_child())
        };
        if descended {
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                return;
            }
        }
    }
}

/// What a language plugs into the engine.
struct Spec {
    rules: &'static [RuleInfo],
    /// The named node kinds `visit` has matchers for; the walk hands it no other node.
    anchors: &'static [&'static str],
    /// Runs the rules anchored at `node` (a named node starting inside the chunk) and adds
    /// their verdicts to the report, under the rule's short name.
    visit: for<'t> fn(node: Node<'t>, src: &str, out: &mut Report),
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

/// Per kind id of `lang`'s grammar, whether it is one of the spec's anchor kinds. The walk
/// asks this of every node, and a kind id lookup is far cheaper than `Node::kind`, which
/// converts and checks a C string each time.
fn anchor_table(lang: Language) -> &'static [bool] {
    fn build(lang: Language) -> Vec<bool> {
        let grammar = lang.grammar();
        let anchors = spec(lang).anchors;
        // Every id with an anchor's name: aliases can give one name several ids.
        (0..grammar.node_kind_count())
            .map(|id| {
                let id = id as u16;
                grammar.node_kind_is_named(id) && grammar.node_kind_for_id(id).is_some_and(|k| anchors.contains(&k))
            })
            .collect()
    }
    static PY: LazyLock<Vec<bool>> = LazyLock::new(|| build(Language::Python));
    static JS: LazyLock<Vec<bool>> = LazyLock::new(|| build(Language::JavaScript));
    static TS: LazyLock<Vec<bool>> = LazyLock::new(|| build(Language::TypeScript));
    static TSX: LazyLock<Vec<bool>> = LazyLock::new(|| build(Language::Tsx));
    static RS: LazyLock<Vec<bool>> = LazyLock::new(|| build(Language::Rust));
    static GO: LazyLock<Vec<bool>> = LazyLock::new(|| build(Language::Go));
    match lang {
        Language::Python => &PY,
        Language::JavaScript => &JS,
        Language::TypeScript => &TS,
        Language::Tsx => &TSX,
        Language::Rust => &RS,
        Language::Go => &GO,
    }
}

/// `eval` for `python/security/eval`: the name a language's matchers report the rule by.
fn short_name(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// The verdicts of one walk, each with the short name of the rule that gave it.
#[derive(Default)]
struct Report {
    found: Vec<(&'static str, Verdict)>,
}

impl Report {
    fn add(&mut self, rule: &'static str, verdict: Option<Verdict>) {
        if let Some(verdict) = verdict {
            self.found.push((rule, verdict));
        }
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

// ---- Shape tests: what query patterns used to say, as plain functions.

/// Whether `node` is a named node of `kind`, like `(kind)` in a query. Named-ness matters
/// where a grammar also has a keyword token of the same name (TypeScript's `string`).
fn is(node: Node<'_>, kind: &str) -> bool {
    node.is_named() && node.kind() == kind
}

/// Whether `node` is one of the anonymous tokens `kinds`, like `["==" "!="]` in a query.
fn is_token(node: Node<'_>, kinds: &[&str]) -> bool {
    !node.is_named() && kinds.contains(&node.kind())
}

/// Whether `node` would match a query's `(_)`: any named node except an error.
fn is_wild(node: Node<'_>) -> bool {
    node.is_named() && !node.is_error()
}

/// The child in field `name`, like `name: (...)` in a query.
fn field<'t>(node: Node<'t>, name: &str) -> Option<Node<'t>> {
    node.child_by_field_name(name)
}

/// The first named child, when it is one a query's `(parent . (_))` could match. Comments
/// count as named children, as they do for a query anchor.
fn first_named(node: Node<'_>) -> Option<Node<'_>> {
    node.named_child(0).filter(|n| is_wild(*n))
}

/// The only named child, like `(parent . (_) .)` in a query.
fn only_named(node: Node<'_>) -> Option<Node<'_>> {
    first_named(node).filter(|_| node.named_child_count() == 1)
}

// ---- Helpers the checks share.

fn text<'s>(node: Node<'_>, src: &'s str) -> &'s str {
    src.get(node.byte_range()).unwrap_or("")
}

/// A fix that replaces exactly `node`'s text.
fn replace(src: &str, node: Node<'_>, new_text: &str) -> Option<Fix> {
    Fix::from_edit_on_line(src, node.start_byte(), node.end_byte(), new_text, node.start_position().row as u32)
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
mod tests;
