//! JavaScript and TypeScript rules. One set of matchers serves the JavaScript, TypeScript and
//! TSX grammars (they only name node kinds the three share); each rule is registered twice,
//! as `javascript/...` for JS files and `typescript/...` for TS and TSX files.

use tree_sitter::Node;

use super::{
    Report, RuleInfo, Spec, Verdict, child_of_kind, delete_if_alone, field, first_named, is, is_token, is_wild,
    replace, text,
};
use crate::review::finding::Category::*;
use crate::review::finding::Severity::*;

/// Declares the rule table once and expands it under both language prefixes.
macro_rules! js_rules {
    ($(($cat:ident, $cat_str:literal, $name:literal, $sev:ident, $fix:literal, $summary:literal)),* $(,)?) => {
        pub(super) const JS_RULES: &[RuleInfo] = &[
            $(super::rule(concat!("javascript/", $cat_str, "/", $name), $cat, $sev, $fix, $summary)),*
        ];
        pub(super) const TS_RULES: &[RuleInfo] = &[
            $(super::rule(concat!("typescript/", $cat_str, "/", $name), $cat, $sev, $fix, $summary)),*
        ];
    };
}

js_rules! {
    (Security, "security", "eval", Warning, false, "eval() of a non-literal runs arbitrary code"),
    (Security, "security", "new-function", Warning, false, "Function constructor compiles code from a string"),
    (Security, "security", "inner-html", Warning, false, "assigning non-literal HTML to innerHTML/outerHTML invites XSS"),
    (Security, "security", "document-write", Warning, false, "document.write of a non-literal invites XSS"),
    (Correctness, "correctness", "loose-equality", Warning, true, "== / != coerce types; use === / !=="),
    (Correctness, "correctness", "invalid-typeof", Error, true, "typeof compared with a string it can never return"),
    (Maintainability, "maintainability", "debugger", Warning, true, "debugger statement left in code"),
    (Maintainability, "maintainability", "var", Info, false, "var is function-scoped and hoisted; use let or const"),
}

pub(super) static JS_SPEC: Spec = Spec { rules: JS_RULES, anchors: ANCHORS, visit };
pub(super) static TS_SPEC: Spec = Spec { rules: TS_RULES, anchors: ANCHORS, visit };

/// The node kinds `visit` has arms for. The walk skips every other kind, so a kind missing
/// here silently disables its rules (tests/offline_rules.rs would catch it).
const ANCHORS: &[&str] = &[
    "call_expression",
    "new_expression",
    "assignment_expression",
    "augmented_assignment_expression",
    "binary_expression",
    "debugger_statement",
    "variable_declaration",
];

const TYPEOF_RESULTS: [&str; 8] =
    ["undefined", "object", "boolean", "number", "string", "function", "symbol", "bigint"];

/// Dispatches on the kind of node each rule is anchored at.
fn visit(node: Node<'_>, src: &str, out: &mut Report) {
    match node.kind() {
        "call_expression" => {
            let (Some(func), Some(args)) = (field(node, "function"), field(node, "arguments")) else { return };
            // A tagged template (`tag`...``) has no argument list.
            if !is(args, "arguments") {
                return;
            }
            if is(func, "identifier") {
                match text(func, src) {
                    "eval" => out.add("eval", eval(node, args)),
                    "Function" => out.add("new-function", new_function(node, args)),
                    _ => {}
                }
            } else if is(func, "member_expression") {
                out.add("document-write", document_write(node, func, args, src));
            }
        }
        "new_expression" => {
            let ctor = field(node, "constructor").filter(|c| is(*c, "identifier") && text(*c, src) == "Function");
            // `new Function` without parentheses has no arguments to look at.
            if let (Some(_), Some(args)) = (ctor, field(node, "arguments").filter(|a| is(*a, "arguments"))) {
                out.add("new-function", new_function(node, args));
            }
        }
        "assignment_expression" | "augmented_assignment_expression" => out.add("inner-html", inner_html(node, src)),
        "binary_expression" => {
            let Some(op) = field(node, "operator") else { return };
            if is_token(op, &["==", "!="]) {
                out.add("loose-equality", loose_equality(node, op, src));
            }
            if is_token(op, &["==", "===", "!=", "!=="]) {
                out.add("invalid-typeof", invalid_typeof(node, src));
            }
        }
        "debugger_statement" => out.add(
            "debugger",
            Some(Verdict::new(node, "remove the debugger statement").with_fix(delete_if_alone(src, node))),
        ),
        "variable_declaration" => out.add("var", var(node)),
        kind => debug_assert!(false, "`{kind}` is in ANCHORS but has no matcher"),
    }
}

fn eval(node: Node<'_>, args: Node<'_>) -> Option<Verdict> {
    if is_plain_string(first_named(args)?) {
        return None;
    }
    Some(Verdict::new(node, "eval() of a non-literal runs arbitrary code; parse the data (e.g. JSON.parse) instead"))
}

/// `new Function(..)` or `Function(..)` with anything but string literals.
fn new_function(node: Node<'_>, args: Node<'_>) -> Option<Verdict> {
    let mut cursor = args.walk();
    if args.named_children(&mut cursor).all(|a| is_plain_string(a) || a.kind() == "comment") {
        return None;
    }
    Some(Verdict::new(
        node,
        "the Function constructor compiles code from strings, like eval; avoid building code at run time",
    ))
}

/// `el.innerHTML = ..` or `el.outerHTML += ..` with markup that is not a literal.
fn inner_html(node: Node<'_>, src: &str) -> Option<Verdict> {
    let left = field(node, "left").filter(|l| is(*l, "member_expression"))?;
    let prop = field(left, "property").filter(|p| is(*p, "property_identifier"))?;
    let prop = text(prop, src);
    let value = field(node, "right").filter(|r| is_wild(*r))?;
    if !matches!(prop, "innerHTML" | "outerHTML") || is_plain_string(value) || is_sanitized(value, src) {
        return None;
    }
    Some(Verdict::new(
        node,
        format!("assigning non-literal HTML to {prop} invites XSS; use textContent or sanitize the markup"),
    ))
}

fn document_write(node: Node<'_>, func: Node<'_>, args: Node<'_>, src: &str) -> Option<Verdict> {
    field(func, "object").filter(|o| is(*o, "identifier") && text(*o, src) == "document")?;
    let prop = field(func, "property").filter(|p| is(*p, "property_identifier"))?;
    if !matches!(text(prop, src), "write" | "writeln") {
        return None;
    }
    let mut cursor = args.walk();
    if args.named_children(&mut cursor).all(|a| is_plain_string(a) || a.kind() == "comment") {
        return None;
    }
    Some(Verdict::new(node, "document.write of a non-literal invites XSS; build DOM nodes instead"))
}

fn loose_equality(node: Node<'_>, op: Node<'_>, src: &str) -> Option<Verdict> {
    let (left, right) = (node.child_by_field_name("left")?, node.child_by_field_name("right")?);
    // `x == null` is the idiom for "null or undefined", and typeof always yields a
    // string, so neither coerces anything surprising.
    if [left, right].iter().any(|n| matches!(n.kind(), "null" | "undefined") || is_typeof(*n)) {
        return None;
    }
    let new = if op.kind() == "==" { "===" } else { "!==" };
    Some(
        Verdict::new(node, format!("`{}` coerces its operands; use `{new}`", op.kind()))
            .with_fix(replace(src, op, new)),
    )
}

/// `typeof x === "strng"`, either way round.
fn invalid_typeof(node: Node<'_>, src: &str) -> Option<Verdict> {
    let (left, right) = (field(node, "left")?, field(node, "right")?);
    let s = if is_typeof(left) && is(right, "string") {
        right
    } else if is(left, "string") && is_typeof(right) {
        left
    } else {
        return None;
    };
    let value = string_value(s, src)?;
    if TYPEOF_RESULTS.contains(&value) {
        return None;
    }
    let fix = closest_typeof(value).and_then(|good| {
        let q = &text(s, src)[..1];
        replace(src, s, &format!("{q}{good}{q}"))
    });
    Some(Verdict::new(s, format!("typeof never returns \"{value}\"; this comparison is always the same")).with_fix(fix))
}

fn var(node: Node<'_>) -> Option<Verdict> {
    let mut cur = node.parent();
    while let Some(n) = cur {
        // `declare var` and `declare global { var ... }` are how TS types globals.
        if n.kind() == "ambient_declaration" {
            return None;
        }
        cur = n.parent();
    }
    Some(Verdict::new(node.child(0)?, "`var` is function-scoped and hoisted; use `let` or `const`"))
}

/// A string literal, or a template literal without substitutions.
fn is_plain_string(n: Node<'_>) -> bool {
    match n.kind() {
        "string" => true,
        "template_string" => child_of_kind(n, "template_substitution").is_none(),
        _ => false,
    }
}

fn is_typeof(n: Node<'_>) -> bool {
    n.kind() == "unary_expression" && n.child_by_field_name("operator").is_some_and(|o| o.kind() == "typeof")
}

/// Markup passed through a sanitizer (DOMPurify.sanitize, sanitizeHtml, ...) is the fix
/// this rule asks for, so it is not reported.
fn is_sanitized(value: Node<'_>, src: &str) -> bool {
    value.kind() == "call_expression"
        && value.child_by_field_name("function").is_some_and(|f| text(f, src).to_ascii_lowercase().contains("sanitiz"))
}

fn string_value<'s>(s: Node<'_>, src: &'s str) -> Option<&'s str> {
    let t = text(s, src);
    t.get(1..t.len().checked_sub(1)?)
}

/// The valid typeof result a typo most likely meant, when exactly one is within two edits.
fn closest_typeof(value: &str) -> Option<&'static str> {
    let mut near = TYPEOF_RESULTS.iter().filter(|good| edit_distance(value, good) <= 2);
    let first = near.next()?;
    near.next().is_none().then_some(*first)
}

/// Optimal string alignment distance: Levenshtein plus adjacent transpositions ("fucntion").
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggestions_are_unambiguous() {
        assert_eq!(closest_typeof("strng"), Some("string"));
        assert_eq!(closest_typeof("fucntion"), Some("function"));
        assert_eq!(closest_typeof("undefned"), Some("undefined"));
        assert_eq!(closest_typeof("array"), None);
        assert_eq!(closest_typeof("null"), None);
    }
}
