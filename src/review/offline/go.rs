//! Go rules: resource and error-handling mistakes, injection and TLS settings, and the
//! doc-comment and error-string conventions `go vet`/staticcheck users expect.

use tree_sitter::Node;

use super::{
    Report, RuleInfo, Spec, Verdict, child_of_kind, field, first_named, is, is_token, looks_like_sql, only_named,
    replace, rule, text,
};
use crate::review::finding::Category::*;
use crate::review::finding::Fix;
use crate::review::finding::Severity::*;

pub(super) static SPEC: Spec = Spec { rules: RULES, anchors: ANCHORS, visit };

/// The node kinds `visit` has arms for. The walk skips every other kind, so a kind missing
/// here silently disables its rules (tests/offline_rules.rs would catch it).
const ANCHORS: &[&str] = &[
    "call_expression",
    "keyed_element",
    "assignment_statement",
    "defer_statement",
    "if_statement",
    "binary_expression",
    "function_declaration",
    "method_declaration",
];

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

/// Dispatches on the kind of node each rule is anchored at.
fn visit(node: Node<'_>, src: &str, out: &mut Report) {
    match node.kind() {
        "call_expression" => {
            let func = field(node, "function").filter(|f| is(*f, "selector_expression"));
            let args = field(node, "arguments").filter(|a| is(*a, "argument_list"));
            let (Some(func), Some(args)) = (func, args) else { return };
            let Some(method) = field(func, "field").filter(|f| is(*f, "field_identifier")) else { return };
            let method = text(method, src);
            out.add("sql-sprintf", sql_sprintf(node, method, args, src));
            if matches!(method, "New" | "Errorf") {
                out.add("error-string-capitalized", error_string_capitalized(func, method, args, src));
            }
        }
        "keyed_element" => {
            let key = field(node, "key").filter(|k| is(*k, "literal_element"));
            let key = key.and_then(|k| named_child_of_kind(k, "identifier"));
            let value = field(node, "value").filter(|v| is(*v, "literal_element"));
            let value = value.and_then(|v| named_child_of_kind(v, "true"));
            out.add("insecure-tls", insecure_tls(node, key, value, src));
        }
        "assignment_statement" => {
            let left = field(node, "left").filter(|l| is(*l, "expression_list")).and_then(only_named);
            let key = left.filter(|l| is(*l, "selector_expression")).and_then(|l| field(l, "field"));
            let key = key.filter(|k| is(*k, "field_identifier"));
            let right = field(node, "right").filter(|r| is(*r, "expression_list")).and_then(only_named);
            out.add("insecure-tls", insecure_tls(node, key, right.filter(|r| is(*r, "true")), src));
        }
        "defer_statement" => out.add("defer-in-loop", defer_in_loop(node)),
        "if_statement" => out.add("empty-error-check", empty_error_check(node, src)),
        "binary_expression" => out.add("case-insensitive-compare", case_insensitive_compare(node, src)),
        "function_declaration" => {
            let name = field(node, "name").filter(|n| is(*n, "identifier"));
            out.add("exported-no-comment", exported_no_comment(node, name, None, src));
        }
        "method_declaration" => {
            let recv = field(node, "receiver").filter(|r| is(*r, "parameter_list"));
            let name = field(node, "name").filter(|n| is(*n, "field_identifier"));
            if recv.is_some() {
                out.add("exported-no-comment", exported_no_comment(node, name, recv, src));
            }
        }
        kind => debug_assert!(false, "`{kind}` is in ANCHORS but has no matcher"),
    }
}

fn named_child_of_kind<'t>(node: Node<'t>, kind: &str) -> Option<Node<'t>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor).find(|c| is(*c, kind))
}

/// `db.Query(fmt.Sprintf("SELECT .. %s", x))` and the like.
fn sql_sprintf(node: Node<'_>, method: &str, args: Node<'_>, src: &str) -> Option<Verdict> {
    let methods = [
        "Query",
        "QueryRow",
        "Exec",
        "QueryContext",
        "QueryRowContext",
        "ExecContext",
        "Prepare",
        "PrepareContext",
        "Queryx",
        "QueryRowx",
        "MustExec",
        "NamedExec",
        "Get",
        "Select",
    ];
    if !methods.contains(&method) {
        return None;
    }
    let mut cursor = args.walk();
    let how = args.named_children(&mut cursor).find_map(|a| sql_building(a, src))?;
    Some(Verdict::new(
        node,
        format!("SQL built with {how} is open to injection; use query placeholders and pass the values as arguments"),
    ))
}

/// `InsecureSkipVerify: true` in a literal, or `cfg.InsecureSkipVerify = true`.
fn insecure_tls(node: Node<'_>, key: Option<Node<'_>>, value: Option<Node<'_>>, src: &str) -> Option<Verdict> {
    let (key, value) = (key?, value?);
    if text(key, src) != "InsecureSkipVerify" {
        return None;
    }
    let fix = replace(src, value, "false");
    Some(
        Verdict::new(
            node,
            "InsecureSkipVerify: true disables certificate verification and allows man-in-the-middle attacks",
        )
        .with_fix(fix),
    )
}

fn defer_in_loop(node: Node<'_>) -> Option<Verdict> {
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

/// `if err != nil {}` with nothing in the block, not even a comment.
fn empty_error_check(node: Node<'_>, src: &str) -> Option<Verdict> {
    let cond = field(node, "condition").filter(|c| is(*c, "binary_expression"))?;
    let err = field(cond, "left").filter(|l| is(*l, "identifier"))?;
    field(cond, "operator").filter(|o| is_token(*o, &["!="]))?;
    field(cond, "right").filter(|r| is(*r, "nil"))?;
    let body = field(node, "consequence").filter(|b| is(*b, "block"))?;
    let err = text(err, src);
    // A comment in the block says the error is ignored on purpose.
    if !err.to_ascii_lowercase().contains("err")
        || body.named_child_count() != 0
        || node.child_by_field_name("alternative").is_some()
    {
        return None;
    }
    Some(Verdict::new(
        node,
        format!("`{err}` is checked but the block is empty, so the error is silently dropped; handle or return it"),
    ))
}

/// `strings.ToLower(a) == strings.ToLower(b)`.
fn case_insensitive_compare(node: Node<'_>, src: &str) -> Option<Verdict> {
    let op = field(node, "operator").filter(|o| is_token(*o, &["==", "!="]))?;
    // `pkg.Fn(arg)` with exactly one argument: the package, the function and the argument.
    let side = |side: Option<Node<'_>>| {
        let call = side.filter(|c| is(*c, "call_expression"))?;
        let func = field(call, "function").filter(|f| is(*f, "selector_expression"))?;
        let pkg = field(func, "operand").filter(|p| is(*p, "identifier"))?;
        let name = field(func, "field").filter(|f| is(*f, "field_identifier"))?;
        let arg = field(call, "arguments").filter(|a| is(*a, "argument_list")).and_then(only_named)?;
        Some((text(pkg, src), text(name, src), text(arg, src)))
    };
    let ((pkg1, f1, a), (pkg2, f2, b)) = (side(field(node, "left"))?, side(field(node, "right"))?);
    if (pkg1, pkg2) != ("strings", "strings") || f1 != f2 || !matches!(f1, "ToLower" | "ToUpper") {
        return None;
    }
    let not = if op.kind() == "!=" { "!" } else { "" };
    let new = format!("{not}strings.EqualFold({a}, {b})");
    Some(Verdict::new(node, format!("comparing {f1} copies allocates; use `{new}`")).with_fix(replace(src, node, &new)))
}

/// `errors.New("Something failed")` or `fmt.Errorf("Invalid ..")`.
fn error_string_capitalized(func: Node<'_>, method: &str, args: Node<'_>, src: &str) -> Option<Verdict> {
    let pkg = field(func, "operand").filter(|p| is(*p, "identifier"))?;
    let msg = first_named(args).filter(|m| string_literal(*m))?;
    if !matches!((text(pkg, src), method), ("errors", "New") | ("fmt", "Errorf")) {
        return None;
    }
    let bytes = text(msg, src).as_bytes();
    // An uppercase letter followed by a lowercase one is a capitalized word; "HTTP"
    // or "I/O" are acronyms and stay.
    let (Some(first), Some(second)) = (bytes.get(1), bytes.get(2)) else { return None };
    if !first.is_ascii_uppercase() || !second.is_ascii_lowercase() {
        return None;
    }
    let at = msg.start_byte() + 1;
    let lower = (first.to_ascii_lowercase() as char).to_string();
    let fix = Fix::from_edit_on_line(src, at, at + 1, &lower, msg.start_position().row as u32);
    Some(
        Verdict::new(msg, "error strings should start lowercase, since they are usually wrapped in other messages")
            .with_fix(fix),
    )
}

/// An exported function, or a method of an exported type, without a doc comment.
fn exported_no_comment(node: Node<'_>, name: Option<Node<'_>>, recv: Option<Node<'_>>, src: &str) -> Option<Verdict> {
    let name_node = name?;
    let name = text(name_node, src);
    if !name.starts_with(|c: char| c.is_ascii_uppercase()) || is_test_func(name) || in_main_package(node, src) {
        return None;
    }
    if let Some(recv) = recv {
        // Methods of unexported types are not part of the package's API.
        let ty = first_of_kind(recv, "type_identifier").map(|t| text(t, src));
        if !ty.is_some_and(|t| t.starts_with(|c: char| c.is_ascii_uppercase())) {
            return None;
        }
    }
    let row = node.start_position().row;
    let documented = node.prev_sibling().is_some_and(|p| p.kind() == "comment" && p.end_position().row + 1 == row);
    if documented {
        return None;
    }
    let what = if recv.is_some() { "method" } else { "function" };
    Some(Verdict::new(name_node, format!("exported {what} `{name}` should have a doc comment starting with its name")))
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

/// The operands of a `+` chain (through parentheses), left to right.
///
/// Iterative, with an explicit stack: recursion overflowed the stack, aborting the whole
/// process, on a chain of 5,000 `+` or 5,000 nested parentheses (tests/stress_bad_input.rs).
fn concat_leaves<'t>(n: Node<'t>, src: &str, out: &mut Vec<Node<'t>>) {
    let mut todo = vec![n];
    while let Some(n) = todo.pop() {
        let op = n.child_by_field_name("operator").map(|o| text(o, src));
        match (n.kind(), n.child_by_field_name("left"), n.child_by_field_name("right")) {
            ("binary_expression", Some(l), Some(r)) if op == Some("+") => {
                // Right first, so the left is taken first.
                todo.push(r);
                todo.push(l);
            }
            ("parenthesized_expression", ..) => todo.extend(n.named_child(0)),
            _ => out.push(n),
        }
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

/// The first node of `kind` at or under `n`, in pre-order. Iterative for the same reason
/// as [`concat_leaves`]: parenthesized types nest without limit.
fn first_of_kind<'t>(n: Node<'t>, kind: &str) -> Option<Node<'t>> {
    let mut todo = vec![n];
    while let Some(n) = todo.pop() {
        if n.kind() == kind {
            return Some(n);
        }
        let mut cursor = n.walk();
        let children: Vec<_> = n.named_children(&mut cursor).collect();
        todo.extend(children.into_iter().rev());
    }
    None
}
