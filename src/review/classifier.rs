//! Owns the local classifier: per chunk, which agents are worth running and why. It reads
//! the syntax tree only (no model, no network), so it costs microseconds and saves whole
//! LLM calls for agents that have nothing to look at.

use std::collections::BTreeSet;

use tree_sitter::{Node, Tree};

use crate::review::chunk::{Chunk, ChunkKind};
use crate::review::finding::Category;
use crate::syntax::Language;

/// One agent chosen for one chunk, with the first signal that chose it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pub agent: Category,
    pub reason: &'static str,
}

/// Names whose presence makes a chunk security-relevant: dangerous calls, sinks and
/// settings across our languages.
const SECURITY_NAMES: &[&str] = &[
    "eval",
    "exec",
    "execfile",
    "compile",
    "system",
    "popen",
    "Popen",
    "run",
    "call",
    "check_call",
    "check_output",
    "spawn",
    "execSync",
    "load",
    "loads",
    "pickle",
    "yaml",
    "marshal",
    "subprocess",
    "shell",
    "execute",
    "executemany",
    "executescript",
    "raw",
    "Query",
    "QueryRow",
    "QueryContext",
    "Exec",
    "ExecContext",
    "innerHTML",
    "outerHTML",
    "insertAdjacentHTML",
    "write",
    "writeln",
    "Function",
    "setTimeout",
    "setInterval",
    "verify",
    "InsecureSkipVerify",
    "transmute",
    "from_raw_parts",
    "dangerouslySetInnerHTML",
    "md5",
    "sha1",
    "Command",
    "tls",
    "ssl",
    "crypto",
];

/// Substrings of identifiers that suggest credentials in code.
const SECRET_HINTS: &[&str] = &["password", "passwd", "secret", "token", "api_key", "apikey", "private_key"];

const CORRECTNESS_KINDS: &[&str] = &[
    "comparison_operator",
    "binary_expression",
    "binary_operator",
    "except_clause",
    "try_statement",
    "default_parameter",
    "typed_default_parameter",
    "defer_statement",
    "assert_statement",
    "if_statement",
    "if_expression",
    "match_expression",
    "switch_statement",
    "unary_expression",
    "boolean_operator",
    "optional_parameter",
    "assignment_pattern",
];

const LOOP_KINDS: &[&str] = &[
    "for_statement",
    "while_statement",
    "for_in_statement",
    "do_statement",
    "for_expression",
    "while_expression",
    "loop_expression",
    "list_comprehension",
    "dictionary_comprehension",
    "set_comprehension",
    "generator_expression",
    "range_clause",
    "for_clause",
];

const PERFORMANCE_NAMES: &[&str] = &[
    "keys",
    "collect",
    "clone",
    "to_vec",
    "to_string",
    "len",
    "count",
    "sort",
    "sorted",
    "append",
    "push",
    "concat",
    "join",
    "map",
    "filter",
    "forEach",
    "reduce",
    "readFileSync",
    "Sprintf",
];

const MAINTAINABILITY_KINDS: &[&str] = &["debugger_statement", "wildcard_import", "variable_declaration"];

const MAINTAINABILITY_NAMES: &[&str] = &["dbg", "todo", "unimplemented", "type", "New", "Errorf", "print", "console"];

/// A chunk this long (lines) is worth a maintainability look whatever it contains.
const LONG_CHUNK_LINES: u32 = 40;
/// Nesting this deep is worth a maintainability look.
const DEEP_NESTING: usize = 4;

#[derive(Default)]
struct Signals {
    security: Option<&'static str>,
    correctness: Option<&'static str>,
    performance: Option<&'static str>,
    maintainability: Option<&'static str>,
    max_depth: usize,
}

/// Picks the agents for `chunk`, limited to `allowed` (settings, or what a command asked for).
pub fn classify(
    lang: Language,
    tree: &Tree,
    source: &str,
    chunk: &Chunk,
    allowed: &BTreeSet<Category>,
) -> Vec<Selection> {
    let mut s = Signals::default();
    for range in &chunk.ranges {
        let Some(node) =
            tree.root_node().descendant_for_byte_range(range.start, range.end.saturating_sub(1).max(range.start))
        else {
            continue;
        };
        // Walk the smallest node covering the range, but only count what starts inside it.
        walk(node, source, range.clone(), &mut s);
    }
    let lines = chunk.end_line - chunk.start_line + 1;
    if s.maintainability.is_none() {
        if lines >= LONG_CHUNK_LINES {
            s.maintainability = Some("long chunk");
        } else if s.max_depth >= DEEP_NESTING {
            s.maintainability = Some("deep nesting");
        }
    }
    if s.performance.is_none() && lines >= 2 * LONG_CHUNK_LINES {
        s.performance = Some("long chunk");
    }
    let documentation = is_public_definition(lang, tree, source, chunk).then_some("public definition");

    let candidates = [
        (Category::Security, s.security),
        (Category::Correctness, s.correctness),
        (Category::Performance, s.performance),
        (Category::Maintainability, s.maintainability),
        (Category::Documentation, documentation),
    ];
    candidates
        .into_iter()
        .filter(|(agent, _)| allowed.contains(agent))
        .filter_map(|(agent, reason)| reason.map(|reason| Selection { agent, reason }))
        .collect()
}

/// Counts the signals of the nodes under `node` that start inside `range`, and the deepest
/// block nesting that overlaps it.
///
/// Iterative (a tree cursor and a stack of depths) rather than recursive: a recursive walk
/// overflowed the stack, aborting the whole process, on deeply nested code such as 5,000
/// nested brackets (tests/stress_bad_input.rs).
fn walk(node: Node, source: &str, range: std::ops::Range<usize>, s: &mut Signals) {
    let mut cursor = node.walk();
    // The nesting depth of each ancestor on the cursor's path below `node`: what a child
    // inherits is the last one.
    let mut depths: Vec<usize> = Vec::new();
    loop {
        let node = cursor.node();
        if node.end_byte() > range.start && node.start_byte() < range.end {
            let kind = node.kind();
            let nests =
                kind.ends_with("block") || kind == "compound_statement" || kind == "statement_block" || kind == "body";
            let parent = depths.last().copied().unwrap_or(0);
            let depth = if nests { parent + 1 } else { parent };
            s.max_depth = s.max_depth.max(depth);
            if node.start_byte() >= range.start {
                note(node, kind, source, s);
            }
            if cursor.goto_first_child() {
                depths.push(depth);
                continue;
            }
        }
        // Next sibling, or up until there is one; done when back at `node`.
        loop {
            if depths.is_empty() {
                return;
            }
            if cursor.goto_next_sibling() {
                break;
            }
            cursor.goto_parent();
            depths.pop();
        }
    }
}

fn note(node: Node, kind: &str, source: &str, s: &mut Signals) {
    if s.correctness.is_none() && CORRECTNESS_KINDS.contains(&kind) {
        s.correctness = Some("branches or comparisons");
    }
    if s.performance.is_none() && LOOP_KINDS.contains(&kind) {
        s.performance = Some("loops");
    }
    if s.maintainability.is_none() && MAINTAINABILITY_KINDS.contains(&kind) {
        s.maintainability = Some("debug or legacy construct");
    }
    if s.security.is_none() && (kind == "unsafe_block" || kind == "unsafe") {
        s.security = Some("unsafe code");
    }
    let is_name = matches!(
        kind,
        "identifier" | "property_identifier" | "field_identifier" | "type_identifier" | "shorthand_property_identifier"
    );
    if is_name {
        let Ok(text) = node.utf8_text(source.as_bytes()) else { return };
        if s.security.is_none() {
            if SECURITY_NAMES.contains(&text) {
                s.security = Some("sensitive call or setting");
            } else if looks_like_secret_name(text) {
                s.security = Some("credential-like name");
            }
        }
        if s.performance.is_none() && PERFORMANCE_NAMES.contains(&text) {
            s.performance = Some("collection operations");
        }
        if s.maintainability.is_none() && MAINTAINABILITY_NAMES.contains(&text) {
            s.maintainability = Some("debug or legacy construct");
        }
    } else if s.security.is_none() && is_string_kind(kind) {
        if let Ok(text) = node.utf8_text(source.as_bytes()) {
            if looks_like_sql(text) {
                s.security = Some("SQL in a string");
            } else if looks_like_shell(text) {
                s.security = Some("shell command in a string");
            }
        }
    }
}

fn is_string_kind(kind: &str) -> bool {
    matches!(
        kind,
        "string"
            | "string_literal"
            | "template_string"
            | "interpreted_string_literal"
            | "raw_string_literal"
            | "concatenated_string"
    )
}

fn looks_like_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_HINTS.iter().any(|h| lower.contains(h))
}

/// SQL keywords in the shapes statements take; single words like "select" in prose don't count.
pub fn looks_like_sql(text: &str) -> bool {
    let upper = text.to_ascii_uppercase();
    let has = |a: &str, b: &str| upper.find(a).is_some_and(|i| upper[i..].contains(b));
    has("SELECT ", " FROM ")
        || has("INSERT INTO", "")
        || has("UPDATE ", " SET ")
        || has("DELETE FROM", "")
        || has("DROP TABLE", "")
}

pub fn looks_like_shell(text: &str) -> bool {
    ["sh -c", "bash -c", "rm -rf", "| sh", "curl ", "wget ", "&& ", "; rm "].iter().any(|p| text.contains(p))
}

fn is_public_definition(lang: Language, tree: &Tree, source: &str, chunk: &Chunk) -> bool {
    if chunk.kind == ChunkKind::Module {
        return false;
    }
    let Some(range) = chunk.ranges.first() else { return false };
    let line = &source[range.clone()];
    let first_code = line.lines().map(str::trim_start).find(|l| !l.is_empty() && !l.starts_with('@')).unwrap_or("");
    match lang {
        Language::Python => {
            let name = chunk.name.as_str();
            !name.starts_with('_')
        }
        Language::Go => chunk.name.chars().next().is_some_and(char::is_uppercase),
        Language::Rust => first_code.starts_with("pub ") || first_code.starts_with("pub("),
        Language::JavaScript | Language::TypeScript | Language::Tsx => {
            let _ = tree;
            first_code.starts_with("export ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::chunk::split;
    use crate::syntax::parse;

    fn agents_for(lang: Language, src: &str) -> Vec<Vec<Category>> {
        let tree = parse(lang, src).unwrap();
        let all: BTreeSet<_> = Category::ALL.into_iter().collect();
        split(lang, &tree, src)
            .iter()
            .map(|c| classify(lang, &tree, src, c, &all).into_iter().map(|s| s.agent).collect())
            .collect()
    }

    #[test]
    fn trivial_private_function_needs_no_agent() {
        assert_eq!(agents_for(Language::Python, "def _f():\n    return 1\n"), vec![Vec::<Category>::new()]);
    }

    #[test]
    fn eval_makes_security_relevant() {
        let got = agents_for(Language::Python, "def _f(x):\n    return eval(x)\n");
        assert_eq!(got, vec![vec![Category::Security]]);
    }

    #[test]
    fn sql_string_makes_security_relevant() {
        let got = agents_for(Language::Go, "package p\nfunc q() string { return \"SELECT a FROM t\" }\n");
        assert!(got[0].contains(&Category::Security), "{got:?}");
        assert!(got[0].contains(&Category::Documentation) == false);
    }

    #[test]
    fn loops_and_comparisons() {
        let got = agents_for(Language::JavaScript, "function f(a) { for (const x of a) { if (x == 1) return x; } }\n");
        assert!(got[0].contains(&Category::Performance) && got[0].contains(&Category::Correctness), "{got:?}");
    }

    #[test]
    fn allowed_set_limits_agents() {
        let src = "def f(x):\n    return eval(x)\n";
        let tree = parse(Language::Python, src).unwrap();
        let chunk = &split(Language::Python, &tree, src)[0];
        let only_docs: BTreeSet<_> = [Category::Documentation].into_iter().collect();
        let got = classify(Language::Python, &tree, src, chunk, &only_docs);
        assert_eq!(got, vec![Selection { agent: Category::Documentation, reason: "public definition" }]);
    }
}
