//! Go rules: resource and error-handling mistakes, injection and TLS settings, and the
//! doc-comment and error-string conventions `go vet`/staticcheck users expect.

use tree_sitter::Node;

use super::{Match, RuleInfo, Spec, Verdict, child_of_kind, looks_like_sql, replace, rule, text};
use crate::review::finding::Category::{self, *};
use crate::review::finding::Fix;
use crate::review::finding::Severity::*;

pub(super) static SPEC: Spec = Spec { rules: RULES, query, check };

#[rustfmt::skip]
pub(super) const RULES: &[RuleInfo] = &[
    rule("go/security/sql-sprintf", Security, Warning, false, "SQL built with fmt.Sprintf or concatenation is open to injection"),
    rule("go/security/insecure-tls", Security, Warning, true, "InsecureSkipVerify disables TLS certificate checks"),
    rule("go/correctness/defer-in-loop", Correctness, Warning, false, "defer in a loop runs only when the function returns"),
    rule("go/correctness/empty-error-check", Correctness, Warning, false, "error checked and then ignored by an empty block"),
    rule("go/performance/case-insensitive-compare", Performance, Info, true, "comparing ToLower/ToUpper copies instead of strings.EqualFold"),
    rule("go/maintainability/error-string-capitalized", Maintainability, Info, true, "error strings should not be capitalized"),
    rule("go/documentation/exported-no-comment", Documentation, Info, false, "exported function or method without a doc comment"),
];

fn query(cat: Category) -> &'static str {
    match cat {
        Security => SECURITY,
        Correctness => CORRECTNESS,
        Performance => PERFORMANCE,
        Maintainability => MAINTAINABILITY,
        Documentation => DOCUMENTATION,
    }
}

const SECURITY: &str = r#"
((call_expression
   function: (selector_expression field: (field_identifier) @sql-sprintf.method)
   arguments: (argument_list) @sql-sprintf.args) @sql-sprintf
  (#any-of? @sql-sprintf.method "Query" "QueryRow" "Exec" "QueryContext" "QueryRowContext" "ExecContext"
    "Prepare" "PrepareContext" "Queryx" "QueryRowx" "MustExec" "NamedExec" "Get" "Select"))
((keyed_element
   key: (literal_element (identifier) @insecure-tls.key)
   value: (literal_element (true) @insecure-tls.value)) @insecure-tls
  (#eq? @insecure-tls.key "InsecureSkipVerify"))
((assignment_statement
   left: (expression_list . (selector_expression field: (field_identifier) @insecure-tls.key) .)
   right: (expression_list . (true) @insecure-tls.value .)) @insecure-tls
  (#eq? @insecure-tls.key "InsecureSkipVerify"))
"#;

const CORRECTNESS: &str = r#"
(defer_statement) @defer-in-loop
(if_statement
  condition: (binary_expression left: (identifier) @empty-error-check.err operator: "!=" right: (nil))
  consequence: (block) @empty-error-check.body) @empty-error-check
"#;

const PERFORMANCE: &str = r#"
(binary_expression
  left: (call_expression
    function: (selector_expression operand: (identifier) @case-insensitive-compare.pkg1 field: (field_identifier) @case-insensitive-compare.fn1)
    arguments: (argument_list . (_) @case-insensitive-compare.a .))
  operator: ["==" "!="] @case-insensitive-compare.op
  right: (call_expression
    function: (selector_expression operand: (identifier) @case-insensitive-compare.pkg2 field: (field_identifier) @case-insensitive-compare.fn2)
    arguments: (argument_list . (_) @case-insensitive-compare.b .))) @case-insensitive-compare
"#;

const MAINTAINABILITY: &str = r#"
((call_expression
   function: (selector_expression operand: (identifier) @error-string-capitalized.pkg field: (field_identifier) @error-string-capitalized.fn)
   arguments: (argument_list . [(interpreted_string_literal) (raw_string_literal)] @error-string-capitalized.msg)) @error-string-capitalized
  (#any-of? @error-string-capitalized.fn "New" "Errorf"))
"#;

const DOCUMENTATION: &str = r#"
(function_declaration name: (identifier) @exported-no-comment.name) @exported-no-comment
(method_declaration receiver: (parameter_list) @exported-no-comment.recv name: (field_identifier) @exported-no-comment.name) @exported-no-comment
"#;

fn check<'t>(rule: &str, node: Node<'t>, m: &Match<'t>, src: &str) -> Option<Verdict> {
    match rule {
        "sql-sprintf" => {
            let args = m.get("args")?;
            let mut cursor = args.walk();
            let how = args.named_children(&mut cursor).find_map(|a| sql_building(a, src))?;
            Some(Verdict::new(
                node,
                format!(
                    "SQL built with {how} is open to injection; use query placeholders and pass the values as arguments"
                ),
            ))
        }
        "insecure-tls" => {
            let fix = replace(src, m.get("value")?, "false");
            Some(
                Verdict::new(
                    node,
                    "InsecureSkipVerify: true disables certificate verification and allows man-in-the-middle attacks",
                )
                .with_fix(fix),
            )
        }
        "defer-in-loop" => {
            let mut cur = node.parent();
            while let Some(n) = cur {
                match n.kind() {
                    "for_statement" => {
                        return Some(Verdict::new(
                            node,
                            "defer in a loop runs only when the function returns, so resources pile up; move the body into a function or release explicitly",
                        ));
                    }
                    "func_literal" | "function_declaration" | "method_declaration" => return None,
                    _ => cur = n.parent(),
                }
            }
            None
        }
        "empty-error-check" => {
            let err = text(m.get("err")?, src);
            let body = m.get("body")?;
            // A comment in the block says the error is ignored on purpose.
            if !err.to_ascii_lowercase().contains("err")
                || body.named_child_count() != 0
                || node.child_by_field_name("alternative").is_some()
            {
                return None;
            }
            Some(Verdict::new(
                node,
                format!(
                    "`{err}` is checked but the block is empty, so the error is silently dropped; handle or return it"
                ),
            ))
        }
        "case-insensitive-compare" => {
            let names = ["pkg1", "pkg2", "fn1", "fn2"].map(|p| m.get(p).map(|n| text(n, src)));
            let [Some("strings"), Some("strings"), Some(f1), Some(f2)] = names else { return None };
            if f1 != f2 || !matches!(f1, "ToLower" | "ToUpper") {
                return None;
            }
            let (a, b) = (text(m.get("a")?, src), text(m.get("b")?, src));
            let not = if m.get("op")?.kind() == "!=" { "!" } else { "" };
            let new = format!("{not}strings.EqualFold({a}, {b})");
            Some(
                Verdict::new(node, format!("comparing {f1} copies allocates; use `{new}`"))
                    .with_fix(replace(src, node, &new)),
            )
        }
        "error-string-capitalized" => {
            let callee = (text(m.get("pkg")?, src), text(m.get("fn")?, src));
            if !matches!(callee, ("errors", "New") | ("fmt", "Errorf")) {
                return None;
            }
            let msg = m.get("msg")?;
            let bytes = text(msg, src).as_bytes();
            // An uppercase letter followed by a lowercase one is a capitalized word; "HTTP"
            // or "I/O" are acronyms and stay.
            let (Some(first), Some(second)) = (bytes.get(1), bytes.get(2)) else { return None };
            if !first.is_ascii_uppercase() || !second.is_ascii_lowercase() {
                return None;
            }
            let at = msg.start_byte() + 1;
            let fix = Fix::from_edit(src, at, at + 1, &(first.to_ascii_lowercase() as char).to_string());
            Some(
                Verdict::new(
                    msg,
                    "error strings should start lowercase, since they are usually wrapped in other messages",
                )
                .with_fix(fix),
            )
        }
        "exported-no-comment" => {
            let name = text(m.get("name")?, src);
            if !name.starts_with(|c: char| c.is_ascii_uppercase()) || is_test_func(name) || in_main_package(node, src) {
                return None;
            }
            if let Some(recv) = m.get("recv") {
                // Methods of unexported types are not part of the package's API.
                let ty = first_of_kind(recv, "type_identifier").map(|t| text(t, src));
                if !ty.is_some_and(|t| t.starts_with(|c: char| c.is_ascii_uppercase())) {
                    return None;
                }
            }
            let row = node.start_position().row;
            let documented =
                node.prev_sibling().is_some_and(|p| p.kind() == "comment" && p.end_position().row + 1 == row);
            if documented {
                return None;
            }
            let what = if m.get("recv").is_some() { "method" } else { "function" };
            Some(Verdict::new(
                m.get("name")?,
                format!("exported {what} `{name}` should have a doc comment starting with its name"),
            ))
        }
        _ => None,
    }
}

fn string_literal(n: Node<'_>) -> bool {
    matches!(n.kind(), "interpreted_string_literal" | "raw_string_literal")
}

/// How `arg` builds SQL out of values: `fmt.Sprintf` of an SQL format, or `+` chains that
/// mix an SQL literal with something else.
fn sql_building(arg: Node<'_>, src: &str) -> Option<&'static str> {
    match arg.kind() {
        "call_expression" => {
            let f = text(arg.child_by_field_name("function")?, src);
            let args = arg.child_by_field_name("arguments")?;
            let format = args.named_child(0)?;
            let has_values = args.named_child_count() > 1;
            (f == "fmt.Sprintf" && string_literal(format) && looks_like_sql(text(format, src)) && has_values)
                .then_some("fmt.Sprintf")
        }
        "binary_expression" => {
            let mut leaves = Vec::new();
            concat_leaves(arg, src, &mut leaves);
            let sql = leaves.iter().any(|l| string_literal(*l) && looks_like_sql(text(*l, src)));
            let dynamic = leaves.iter().any(|l| !string_literal(*l));
            (sql && dynamic).then_some("string concatenation")
        }
        _ => None,
    }
}

fn concat_leaves<'t>(n: Node<'t>, src: &str, out: &mut Vec<Node<'t>>) {
    let op = n.child_by_field_name("operator").map(|o| text(o, src));
    match (n.kind(), n.child_by_field_name("left"), n.child_by_field_name("right")) {
        ("binary_expression", Some(l), Some(r)) if op == Some("+") => {
            concat_leaves(l, src, out);
            concat_leaves(r, src, out);
        }
        ("parenthesized_expression", ..) => {
            if let Some(inner) = n.named_child(0) {
                concat_leaves(inner, src, out);
            }
        }
        _ => out.push(n),
    }
}

fn is_test_func(name: &str) -> bool {
    ["Test", "Benchmark", "Example", "Fuzz"].iter().any(|p| {
        name.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with(|c: char| !c.is_ascii_lowercase()))
    })
}

/// Exported names in `package main` are not importable, so they are not API to document.
fn in_main_package(node: Node<'_>, src: &str) -> bool {
    let Some(file) = node.parent() else { return false };
    child_of_kind(file, "package_clause")
        .and_then(|p| child_of_kind(p, "package_identifier"))
        .is_some_and(|id| text(id, src) == "main")
}

fn first_of_kind<'t>(n: Node<'t>, kind: &str) -> Option<Node<'t>> {
    if n.kind() == kind {
        return Some(n);
    }
    let mut cursor = n.walk();
    let children: Vec<_> = n.named_children(&mut cursor).collect();
    children.into_iter().find_map(|c| first_of_kind(c, kind))
}
