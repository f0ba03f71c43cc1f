//! Rust rules: leftover debugging macros, undocumented `unsafe`, and a few clippy-style
//! lints that need no type information.

use tree_sitter::Node;

use super::{
    Report, RuleInfo, Spec, Verdict, comment_lines_above, delete_if_alone, field, is, is_token, line_of, only_named,
    operands, replace, rule, text,
};
use crate::review::finding::Category::*;
use crate::review::finding::Fix;
use crate::review::finding::Severity::*;

pub(super) static SPEC: Spec = Spec { rules: RULES, anchors: ANCHORS, visit };

/// The node kinds `visit` has arms for. The walk skips every other kind, so a kind missing
/// here silently disables its rules (tests/offline_rules.rs would catch it).
const ANCHORS: &[&str] = &["unsafe_block", "binary_expression", "call_expression", "macro_invocation", "function_item"];

#[rustfmt::skip]
pub(super) const RULES: &[RuleInfo] = &[
    rule("rust/security/unsafe-without-safety-comment", Security, Warning, false, "unsafe block without a `// SAFETY:` comment"),
    rule("rust/correctness/nan-comparison", Correctness, Error, true, "comparison with NAN is always false (or always true for !=)"),
    rule("rust/performance/collect-len", Performance, Warning, true, "collecting into a Vec only to take its length"),
    rule("rust/maintainability/dbg-macro", Maintainability, Warning, true, "dbg! left in code"),
    rule("rust/maintainability/todo-macro", Maintainability, Warning, false, "todo!, or unimplemented! without a reason, panics when reached"),
    rule("rust/documentation/missing-safety-doc", Documentation, Warning, false, "pub unsafe fn without a `# Safety` doc section"),
];

/// Dispatches on the kind of node each rule is anchored at.
fn visit(node: Node<'_>, src: &str, out: &mut Report) {
    match node.kind() {
        "unsafe_block" => out.add("unsafe-without-safety-comment", unsafe_block(node, src)),
        "binary_expression" => out.add("nan-comparison", nan_comparison(node, src)),
        "call_expression" => out.add("collect-len", collect_len(node, src)),
        "macro_invocation" => {
            let Some(name) = field(node, "macro").filter(|m| is(*m, "identifier")) else { return };
            // The token tree follows the macro's name.
            let mut cursor = node.walk();
            let args = node.children(&mut cursor).skip_while(|c| *c != name).find(|c| is(*c, "token_tree"));
            let Some(args) = args else { return };
            match text(name, src) {
                "dbg" => out.add(
                    "dbg-macro",
                    Some(
                        Verdict::new(node, "remove the dbg! call before committing").with_fix(dbg_fix(node, args, src)),
                    ),
                ),
                name @ ("todo" | "unimplemented") => out.add("todo-macro", todo_macro(node, name, args)),
                _ => {}
            }
        }
        "function_item" => out.add("missing-safety-doc", missing_safety_doc(node, src)),
        kind => debug_assert!(false, "`{kind}` is in ANCHORS but has no matcher"),
    }
}

fn unsafe_block(node: Node<'_>, src: &str) -> Option<Verdict> {
    if has_safety_comment(node, src) {
        return None;
    }
    Some(Verdict::new(node.child(0)?, "unsafe block without a `// SAFETY:` comment explaining why it is sound"))
}

/// `x == f64::NAN` or `f64::NAN != x`. When both sides are NAN constants, the left one is
/// taken as the constant first, the order the query engine used to report them in.
fn nan_comparison(node: Node<'_>, src: &str) -> Option<Verdict> {
    let op = field(node, "operator").filter(|o| is_token(*o, &["==", "!="]))?;
    let is_nan = |s: &Node<'_>| {
        is(*s, "scoped_identifier") && field(*s, "name").is_some_and(|n| is(n, "identifier") && text(n, src) == "NAN")
    };
    [field(node, "left"), field(node, "right")].into_iter().flatten().filter(is_nan).find_map(|konst| {
        let path = text(konst, src).replace(char::is_whitespace, "");
        let nan_paths = ["f32::NAN", "f64::NAN", "std::f32::NAN", "std::f64::NAN", "core::f32::NAN", "core::f64::NAN"];
        if !nan_paths.contains(&path.as_str()) {
            return None;
        }
        let ops = operands(node);
        let other = ops.iter().find(|o| **o != konst)?;
        let other_text = text(*other, src);
        let receiver = if is_postfix_operand(*other) { other_text.to_string() } else { format!("({other_text})") };
        let negate = op.kind() == "!=";
        let new = format!("{}{receiver}.is_nan()", if negate { "!" } else { "" });
        Some(
            Verdict::new(node, format!("NAN is not equal to anything, itself included; use `{new}`"))
                .with_fix(replace(src, node, &new)),
        )
    })
}

/// `iter.collect::<Vec<_>>().len()`.
fn collect_len(node: Node<'_>, src: &str) -> Option<Verdict> {
    let len = field(node, "function").filter(|f| is(*f, "field_expression"))?;
    field(len, "field").filter(|f| is(*f, "field_identifier") && text(*f, src) == "len")?;
    let args2 = field(node, "arguments").filter(|a| is(*a, "arguments"))?;
    let inner = field(len, "value").filter(|v| is(*v, "call_expression"))?;
    let args1 = field(inner, "arguments").filter(|a| is(*a, "arguments"))?;
    let generic = field(inner, "function").filter(|f| is(*f, "generic_function"))?;
    let collect = field(generic, "function").filter(|f| is(*f, "field_expression"))?;
    let collect = field(collect, "field").filter(|f| is(*f, "field_identifier") && text(*f, src) == "collect")?;
    let types = field(generic, "type_arguments").filter(|t| is(*t, "type_arguments"))?;
    let vec = only_named(types).filter(|t| is(*t, "generic_type"))?;
    field(vec, "type").filter(|t| is(*t, "type_identifier") && text(*t, src) == "Vec")?;
    if args1.named_child_count() != 0 || args2.named_child_count() != 0 {
        return None;
    }
    let row = collect.start_position().row as u32;
    let fix = Fix::from_edit_on_line(src, collect.start_byte(), node.end_byte(), "count()", row);
    let message = "collecting into a Vec just to take its length allocates; use `.count()`";
    Some(Verdict::between(collect, node, message).with_fix(fix))
}

fn todo_macro(node: Node<'_>, name: &str, args: Node<'_>) -> Option<Verdict> {
    // `unimplemented!("not supported on Windows")` documents a deliberate gap.
    if name == "unimplemented" && args.named_child_count() > 0 {
        return None;
    }
    Some(Verdict::new(node, format!("{name}!() panics when reached; finish the code or return an error")))
}

/// `pub unsafe fn` without a `# Safety` section in its docs.
fn missing_safety_doc(node: Node<'_>, src: &str) -> Option<Verdict> {
    // Visibility, then modifiers, then the name, in that order, as the query pattern had them.
    let mut cursor = node.walk();
    let mut children = node.children(&mut cursor);
    let vis = children.find(|c| is(*c, "visibility_modifier"))?;
    let mods = children.find(|c| is(*c, "function_modifiers"))?;
    let name = field(node, "name").filter(|n| is(*n, "identifier") && n.start_byte() >= mods.end_byte())?;
    let mut cursor = mods.walk();
    let is_unsafe = mods.children(&mut cursor).any(|c| c.kind() == "unsafe");
    if text(vis, src) != "pub" || !is_unsafe || has_safety_section(node, src) {
        return None;
    }
    let name_text = text(name, src);
    Some(Verdict::new(
        name,
        format!("`pub unsafe fn {name_text}` needs a `# Safety` section in its docs stating what callers must uphold"),
    ))
}

/// `dbg!(expr)` evaluates to `expr`, so the fix keeps the expression. A `dbg!(&x);`
/// statement would leave a no-op behind, so such lines are deleted instead.
fn dbg_fix(node: Node<'_>, args: Node<'_>, src: &str) -> Option<Fix> {
    let mut cursor = args.walk();
    let tokens: Vec<Node<'_>> = args.children(&mut cursor).collect();
    if tokens.len() < 2 {
        return None; // error recovery can leave a token tree without its brackets
    }
    let (open, close) = (tokens.first()?, tokens.last()?);
    let inner = &tokens[1..tokens.len() - 1];
    let commas = inner.iter().filter(|t| t.kind() == ",").count();
    let trailing_comma = inner.last().is_some_and(|t| t.kind() == ",");
    let is_statement = node.parent().is_some_and(|p| p.kind() == "expression_statement");
    let arg_text = src.get(open.end_byte()..close.start_byte())?.trim().trim_end_matches(',').trim_end();
    let side_effect_free = arg_text.chars().all(|c| c.is_alphanumeric() || "_.&*: ".contains(c));
    let single = commas == 0 || (commas == 1 && trailing_comma);
    // An attribute on the statement (`#[cfg(..)] dbg!(x);`) would move to the next one.
    let attributed = node.parent().and_then(|p| p.prev_named_sibling()).is_some_and(|p| p.kind() == "attribute_item");
    if is_statement && side_effect_free && (inner.is_empty() || single) {
        // Keeping `&x;` would leave a no-op, so the statement goes, or no fix is offered.
        return node.parent().filter(|_| !attributed).and_then(|stmt| delete_if_alone(src, stmt));
    }
    if inner.is_empty() || commas > usize::from(trailing_comma) {
        return None; // dbg!() yields (), dbg!(a, b) a tuple: no one-to-one replacement.
    }
    replace(src, node, arg_text)
}

/// Expressions that can take a `.method()` suffix without parentheses.
fn is_postfix_operand(n: Node<'_>) -> bool {
    matches!(
        n.kind(),
        "identifier"
            | "field_expression"
            | "call_expression"
            | "index_expression"
            | "scoped_identifier"
            | "parenthesized_expression"
            | "self"
            | "float_literal"
    )
}

/// Looks where people put the justification: at the start of the block, trailing on the
/// `unsafe` line, or in the comments above the `unsafe` line or above the enclosing statement.
fn has_safety_comment(block: Node<'_>, src: &str) -> bool {
    let says_safety = |s: &str| s.to_ascii_uppercase().contains("SAFETY:");
    if says_safety(line_of(src, block)) {
        return true;
    }
    if let Some(inner) = block.child(1) {
        let mut cursor = inner.walk();
        let leading = inner.named_children(&mut cursor).take_while(|c| c.kind().ends_with("comment"));
        if leading.map(|c| text(c, src)).any(says_safety) {
            return true;
        }
    }
    let mut statement = block;
    while let Some(parent) = statement.parent() {
        if matches!(parent.kind(), "block" | "source_file" | "declaration_list") {
            break;
        }
        statement = parent;
    }
    [block, statement].into_iter().any(|n| comment_lines_above(src, n).any(says_safety))
}

/// Reads the doc comments and attributes above `item` for a `# Safety` heading. A
/// `#[doc = ...]` attribute could hold anything, so it counts as documented.
fn has_safety_section(item: Node<'_>, src: &str) -> bool {
    let mut cur = item.prev_sibling();
    while let Some(n) = cur {
        let t = text(n, src);
        match n.kind() {
            "attribute_item" if t.trim_start_matches("#[").trim_start().starts_with("doc") => return true,
            "attribute_item" => {}
            "line_comment" | "block_comment" => {
                let is_heading = |line: &str| {
                    let line = line.trim().trim_start_matches(['/', '*', '!']).trim();
                    line.starts_with('#') && line.trim_start_matches('#').trim().eq_ignore_ascii_case("safety")
                };
                if t.lines().any(is_heading) {
                    return true;
                }
            }
            _ => return false,
        }
        cur = n.prev_sibling();
    }
    false
}
