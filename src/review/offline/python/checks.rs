//! The Python checks' building blocks: what counts as a literal, SQL formatting, credential
//! heuristics, and a few questions about a node's surroundings.

use tree_sitter::Node;

use crate::review::offline::{child_of_kind, looks_like_sql, operands, text};

/// A string literal without interpolation (concatenations of those count too).
pub(super) fn is_plain_string(n: Node<'_>) -> bool {
    match n.kind() {
        "string" => child_of_kind(n, "interpolation").is_none(),
        "concatenated_string" => operands(n).into_iter().all(is_plain_string),
        _ => false,
    }
}

pub(super) fn string_content<'s>(n: Node<'_>, src: &'s str) -> Option<&'s str> {
    let start = child_of_kind(n, "string_start")?.end_byte();
    let end = child_of_kind(n, "string_end")?.start_byte();
    src.get(start..end)
}

/// Which kind of formatting makes `arg` an SQL string built from values, if any.
pub(super) fn sql_formatting(arg: Node<'_>, src: &str) -> Option<&'static str> {
    match arg.kind() {
        "string" if child_of_kind(arg, "interpolation").is_some() => {
            looks_like_sql(text(arg, src)).then_some("an f-string")
        }
        "binary_operator" => {
            let (left, right) = (arg.child_by_field_name("left")?, arg.child_by_field_name("right")?);
            let op = text(arg.child_by_field_name("operator")?, src);
            let sql =
                |n: Node<'_>| matches!(n.kind(), "string" | "concatenated_string") && looks_like_sql(text(n, src));
            match op {
                "%" if sql(left) => Some("% formatting"),
                "+" if (sql(left) && !is_plain_string(right)) || (sql(right) && !is_plain_string(left)) => {
                    Some("string concatenation")
                }
                _ => None,
            }
        }
        "call" => {
            let f = arg.child_by_field_name("function")?;
            let obj = f.child_by_field_name("object")?;
            let attr = f.child_by_field_name("attribute")?;
            (f.kind() == "attribute"
                && text(attr, src) == "format"
                && obj.kind() == "string"
                && looks_like_sql(text(obj, src)))
            .then_some("str.format")
        }
        _ => None,
    }
}

pub(super) fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let suffixes = [
        "password",
        "passwd",
        "passphrase",
        "secret",
        "secret_key",
        "api_key",
        "apikey",
        "token",
        "private_key",
        "access_key",
    ];
    suffixes.iter().any(|s| name.ends_with(s))
}

/// Whether a value assigned to a secret-sounding name looks like a real secret rather than
/// a placeholder, a key name or an environment variable name.
pub(super) fn looks_like_secret(value: &str, name: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let placeholders = [
        "changeme",
        "change_me",
        "change-me",
        "example",
        "placeholder",
        "dummy",
        "xxx",
        "***",
        "your",
        "redacted",
        "<",
        "{",
        "$",
        "%",
        "todo",
        "fixme",
        "://",
        "test",
        "fake",
        "mock",
        "sample",
        "demo",
    ];
    // Words and identifiers ("Incorrect", "access_token") are labels far more often than
    // secrets; real credentials carry digits or symbols.
    let mixed = value.chars().any(|c| c.is_ascii_digit() || "!@#$%^&*+=?~/".contains(c));
    let env_like = value.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    let first = value.chars().next();
    value.len() >= 8
        && !value.chars().any(char::is_whitespace)
        && !placeholders.iter().any(|p| lower.contains(p))
        && !lower.eq_ignore_ascii_case(name)
        && mixed
        && !env_like
        && !value.chars().all(|c| Some(c) == first)
}

pub(super) fn is_value_literal(n: Node<'_>) -> bool {
    match n.kind() {
        "string" | "concatenated_string" | "integer" | "float" => true,
        "unary_operator" => n.child_by_field_name("argument").is_some_and(|a| matches!(a.kind(), "integer" | "float")),
        _ => false,
    }
}

pub(super) fn is_type_call(n: Node<'_>, src: &str) -> bool {
    n.kind() == "call" && n.child_by_field_name("function").is_some_and(|f| text(f, src) == "type")
}

/// ORMs and array libraries overload `== None` inside call arguments (`.filter(Col == None)`),
/// where `is None` would be a bug.
pub(super) fn in_call_argument(node: Node<'_>) -> bool {
    let mut cur = node.parent();
    while let Some(n) = cur {
        match n.kind() {
            "argument_list" | "keyword_argument" | "subscript" => return true,
            k if k.ends_with("statement") || k == "block" || k == "lambda" => return false,
            _ => cur = n.parent(),
        }
    }
    false
}

/// `except: cleanup(); raise` re-raises everything, which is a legitimate use of bare except.
pub(super) fn reraises(except: Node<'_>) -> bool {
    let Some(block) = child_of_kind(except, "block") else { return false };
    let mut cursor = block.walk();
    block.named_children(&mut cursor).any(|s| s.kind() == "raise_statement" && s.named_child_count() == 0)
}

pub(super) fn has_docstring(body: Node<'_>) -> bool {
    let mut cursor = body.walk();
    let first = body.named_children(&mut cursor).find(|n| n.kind() != "comment");
    first.is_some_and(|s| s.kind() == "expression_statement" && s.named_child(0).is_some_and(|e| e.kind() == "string"))
}
