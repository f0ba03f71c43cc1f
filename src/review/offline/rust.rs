//! Rust rules: leftover debugging macros, undocumented `unsafe`, and a few clippy-style
//! lints that need no type information.

use tree_sitter::Node;

use super::{
    Match, RuleInfo, Spec, Verdict, comment_lines_above, delete_if_alone, line_of, operands, replace, rule, text,
};
use crate::review::finding::Category::{self, *};
use crate::review::finding::Fix;
use crate::review::finding::Severity::*;

pub(super) static SPEC: Spec = Spec { rules: RULES, query, check };

#[rustfmt::skip]
pub(super) const RULES: &[RuleInfo] = &[
    rule("rust/security/unsafe-without-safety-comment", Security, Warning, false, "unsafe block without a `// SAFETY:` comment"),
    rule("rust/correctness/nan-comparison", Correctness, Error, true, "comparison with NAN is always false (or always true for !=)"),
    rule("rust/performance/collect-len", Performance, Warning, true, "collecting into a Vec only to take its length"),
    rule("rust/maintainability/dbg-macro", Maintainability, Warning, true, "dbg! left in code"),
    rule("rust/maintainability/todo-macro", Maintainability, Warning, false, "todo!, or unimplemented! without a reason, panics when reached"),
    rule("rust/documentation/missing-safety-doc", Documentation, Warning, false, "pub unsafe fn without a `# Safety` doc section"),
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
(unsafe_block) @unsafe-without-safety-comment
"#;

const CORRECTNESS: &str = r#"
((binary_expression operator: ["==" "!="] @nan-comparison.op right: (scoped_identifier name: (identifier) @nan-comparison.nan) @nan-comparison.const) @nan-comparison
  (#eq? @nan-comparison.nan "NAN"))
((binary_expression left: (scoped_identifier name: (identifier) @nan-comparison.nan) @nan-comparison.const operator: ["==" "!="] @nan-comparison.op) @nan-comparison
  (#eq? @nan-comparison.nan "NAN"))
"#;

const PERFORMANCE: &str = r#"
((call_expression
   function: (field_expression
     value: (call_expression
       function: (generic_function
         function: (field_expression field: (field_identifier) @collect-len.collect)
         type_arguments: (type_arguments . (generic_type type: (type_identifier) @collect-len.vec) .))
       arguments: (arguments) @collect-len.args1)
     field: (field_identifier) @collect-len.len)
   arguments: (arguments) @collect-len.args2) @collect-len
  (#eq? @collect-len.collect "collect") (#eq? @collect-len.vec "Vec") (#eq? @collect-len.len "len"))
"#;

const MAINTAINABILITY: &str = r#"
((macro_invocation macro: (identifier) @dbg-macro.name (token_tree) @dbg-macro.args) @dbg-macro
  (#eq? @dbg-macro.name "dbg"))
((macro_invocation macro: (identifier) @todo-macro.name (token_tree) @todo-macro.args) @todo-macro
  (#any-of? @todo-macro.name "todo" "unimplemented"))
"#;

const DOCUMENTATION: &str = r#"
(function_item
  (visibility_modifier) @missing-safety-doc.vis
  (function_modifiers) @missing-safety-doc.mods
  name: (identifier) @missing-safety-doc.name) @missing-safety-doc
"#;

fn check<'t>(rule: &str, node: Node<'t>, m: &Match<'t>, src: &str) -> Option<Verdict> {
    match rule {
        "unsafe-without-safety-comment" => {
            if has_safety_comment(node, src) {
                return None;
            }
            Some(Verdict::new(node.child(0)?, "unsafe block without a `// SAFETY:` comment explaining why it is sound"))
        }
        "nan-comparison" => {
            let konst = m.get("const")?;
            let path = text(konst, src).replace(char::is_whitespace, "");
            let nan_paths =
                ["f32::NAN", "f64::NAN", "std::f32::NAN", "std::f64::NAN", "core::f32::NAN", "core::f64::NAN"];
            if !nan_paths.contains(&path.as_str()) {
                return None;
            }
            let ops = operands(node);
            let other = ops.iter().find(|o| **o != konst)?;
            let other_text = text(*other, src);
            let receiver = if is_postfix_operand(*other) { other_text.to_string() } else { format!("({other_text})") };
            let negate = m.get("op")?.kind() == "!=";
            let new = format!("{}{receiver}.is_nan()", if negate { "!" } else { "" });
            Some(
                Verdict::new(node, format!("NAN is not equal to anything, itself included; use `{new}`"))
                    .with_fix(replace(src, node, &new)),
            )
        }
        "collect-len" => {
            if m.get("args1")?.named_child_count() != 0 || m.get("args2")?.named_child_count() != 0 {
                return None;
            }
            let collect = m.get("collect")?;
            let fix = Fix::from_edit(src, collect.start_byte(), node.end_byte(), "count()");
            let message = "collecting into a Vec just to take its length allocates; use `.count()`";
            Some(Verdict::between(collect, node, message).with_fix(fix))
        }
        "dbg-macro" => Some(Verdict::new(node, "remove the dbg! call before committing").with_fix(dbg_fix(
            node,
            m.get("args")?,
            src,
        ))),
        "todo-macro" => {
            let name = text(m.get("name")?, src);
            // `unimplemented!("not supported on Windows")` documents a deliberate gap.
            if name == "unimplemented" && m.get("args")?.named_child_count() > 0 {
                return None;
            }
            Some(Verdict::new(node, format!("{name}!() panics when reached; finish the code or return an error")))
        }
        "missing-safety-doc" => {
            let mods = m.get("mods")?;
            let mut cursor = mods.walk();
            let is_unsafe = mods.children(&mut cursor).any(|c| c.kind() == "unsafe");
            if text(m.get("vis")?, src) != "pub" || !is_unsafe || has_safety_section(node, src) {
                return None;
            }
            let name = text(m.get("name")?, src);
            Some(Verdict::new(
                m.get("name")?,
                format!(
                    "`pub unsafe fn {name}` needs a `# Safety` section in its docs stating what callers must uphold"
                ),
            ))
        }
        _ => None,
    }
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
