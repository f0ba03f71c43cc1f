//! Python rules: what the queries look for and the checks that keep them precise.

use tree_sitter::Node;

use super::{Match, RuleInfo, Spec, Verdict, child_of_kind, looks_like_sql, operands, replace, rule, text};
use crate::review::finding::Category::{self, *};
use crate::review::finding::Fix;
use crate::review::finding::Severity::*;

pub(super) static SPEC: Spec = Spec { rules: RULES, query, check };

#[rustfmt::skip]
pub(super) const RULES: &[RuleInfo] = &[
    rule("python/security/eval", Security, Warning, false, "eval() of a non-literal runs arbitrary code"),
    rule("python/security/exec", Security, Warning, false, "exec() of a non-literal runs arbitrary code"),
    rule("python/security/yaml-load", Security, Warning, true, "yaml.load without a Loader can build arbitrary objects"),
    rule("python/security/subprocess-shell", Security, Warning, true, "subprocess with shell=True and a non-literal command"),
    rule("python/security/pickle-load", Security, Warning, false, "unpickling runs code chosen by whoever wrote the data"),
    rule("python/security/sql-format", Security, Warning, false, "SQL built by string formatting is open to injection"),
    rule("python/security/requests-verify-false", Security, Warning, true, "TLS certificate verification disabled"),
    rule("python/security/hardcoded-password", Security, Warning, false, "credential hard-coded in source"),
    rule("python/correctness/none-comparison", Correctness, Warning, true, "comparison to None with == or !="),
    rule("python/correctness/mutable-default", Correctness, Warning, false, "mutable default argument is shared between calls"),
    rule("python/correctness/bare-except", Correctness, Warning, true, "bare except also catches KeyboardInterrupt and SystemExit"),
    rule("python/correctness/is-literal", Correctness, Warning, true, "identity comparison with a literal"),
    rule("python/correctness/assert-tuple", Correctness, Error, true, "assert on a tuple is always true"),
    rule("python/performance/dict-keys-membership", Performance, Info, true, "membership test on .keys() instead of the dict"),
    rule("python/maintainability/star-import", Maintainability, Warning, false, "wildcard import hides where names come from"),
    rule("python/maintainability/type-comparison", Maintainability, Info, false, "type(x) == T instead of isinstance"),
    rule("python/documentation/missing-docstring", Documentation, Info, false, "public top-level definition of 10+ lines without a docstring"),
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
((call function: (identifier) @eval.fn arguments: (argument_list . (_) @eval.arg)) @eval
  (#eq? @eval.fn "eval"))
((call function: (identifier) @exec.fn arguments: (argument_list . (_) @exec.arg)) @exec
  (#eq? @exec.fn "exec"))
((call
   function: (attribute object: (identifier) @yaml-load.mod attribute: (identifier) @yaml-load.attr) @yaml-load.fn
   arguments: (argument_list) @yaml-load.args) @yaml-load
  (#eq? @yaml-load.mod "yaml") (#eq? @yaml-load.attr "load"))
((call
   function: (attribute object: (identifier) @subprocess-shell.mod attribute: (identifier) @subprocess-shell.attr)
   arguments: (argument_list
     (keyword_argument name: (identifier) @subprocess-shell.kw value: (true)) @subprocess-shell.shell) @subprocess-shell.args) @subprocess-shell
  (#eq? @subprocess-shell.mod "subprocess")
  (#any-of? @subprocess-shell.attr "run" "call" "Popen" "check_call" "check_output")
  (#eq? @subprocess-shell.kw "shell"))
((call function: (attribute object: (identifier) @pickle-load.mod attribute: (identifier) @pickle-load.attr)) @pickle-load
  (#any-of? @pickle-load.mod "pickle" "cPickle" "_pickle" "dill")
  (#any-of? @pickle-load.attr "load" "loads"))
((call
   function: (attribute attribute: (identifier) @sql-format.attr)
   arguments: (argument_list . [(string) (binary_operator) (call)] @sql-format.arg)) @sql-format
  (#any-of? @sql-format.attr "execute" "executemany"))
((call
   function: (attribute attribute: (identifier) @requests-verify-false.attr)
   arguments: (argument_list
     (keyword_argument name: (identifier) @requests-verify-false.kw value: (false) @requests-verify-false.value) @requests-verify-false.kwarg)) @requests-verify-false
  (#eq? @requests-verify-false.kw "verify")
  (#any-of? @requests-verify-false.attr "get" "post" "put" "patch" "delete" "head" "options" "request" "stream" "Client" "AsyncClient"))
(assignment left: (identifier) @hardcoded-password.name right: (string) @hardcoded-password.value) @hardcoded-password
(assignment left: (attribute attribute: (identifier) @hardcoded-password.name) right: (string) @hardcoded-password.value) @hardcoded-password
(keyword_argument name: (identifier) @hardcoded-password.name value: (string) @hardcoded-password.value) @hardcoded-password
(default_parameter name: (identifier) @hardcoded-password.name value: (string) @hardcoded-password.value) @hardcoded-password
"#;

const CORRECTNESS: &str = r#"
(comparison_operator operators: ["==" "!="]) @none-comparison
(comparison_operator operators: ["is" "is not"]) @is-literal
(default_parameter value: [(list) (dictionary) (set)] @mutable-default.value) @mutable-default
(typed_default_parameter value: [(list) (dictionary) (set)] @mutable-default.value) @mutable-default
((default_parameter value: (call function: (identifier) @mutable-default.ctor arguments: (argument_list) @mutable-default.args) @mutable-default.value) @mutable-default
  (#any-of? @mutable-default.ctor "list" "dict" "set"))
((typed_default_parameter value: (call function: (identifier) @mutable-default.ctor arguments: (argument_list) @mutable-default.args) @mutable-default.value) @mutable-default
  (#any-of? @mutable-default.ctor "list" "dict" "set"))
(except_clause) @bare-except
(assert_statement . (tuple) @assert-tuple.tuple) @assert-tuple
"#;

const PERFORMANCE: &str = r#"
((comparison_operator
   operators: ["in" "not in"]
   (call
     function: (attribute object: (_) @dict-keys-membership.obj attribute: (identifier) @dict-keys-membership.attr)
     arguments: (argument_list) @dict-keys-membership.args) @dict-keys-membership.call) @dict-keys-membership
  (#eq? @dict-keys-membership.attr "keys"))
"#;

const MAINTAINABILITY: &str = r#"
(import_from_statement module_name: (dotted_name) (wildcard_import)) @star-import
((comparison_operator
   (call function: (identifier) @type-comparison.fn arguments: (argument_list)) @type-comparison.call
   operators: ["==" "!="]) @type-comparison
  (#eq? @type-comparison.fn "type"))
"#;

const DOCUMENTATION: &str = r#"
(function_definition name: (identifier) @missing-docstring.name body: (block) @missing-docstring.body) @missing-docstring
(class_definition name: (identifier) @missing-docstring.name body: (block) @missing-docstring.body) @missing-docstring
"#;

fn check<'t>(rule: &str, node: Node<'t>, m: &Match<'t>, src: &str) -> Option<Verdict> {
    match rule {
        "eval" | "exec" => {
            let arg = m.get("arg")?;
            if is_plain_string(arg) || arg.kind() == "keyword_argument" {
                return None;
            }
            Some(Verdict::new(
                node,
                format!(
                    "{rule}() of a non-literal runs arbitrary code; parse the data instead (e.g. ast.literal_eval, json.loads)"
                ),
            ))
        }
        "yaml-load" => {
            let args = operands(m.get("args")?);
            if args.len() != 1 || args[0].kind().contains("keyword") || args[0].kind().contains("splat") {
                // An explicit Loader, positional or keyword, is a deliberate choice.
                return None;
            }
            let fix = replace(src, m.get("fn")?, "yaml.safe_load");
            Some(
                Verdict::new(node, "yaml.load without a Loader can construct arbitrary objects; use yaml.safe_load")
                    .with_fix(fix),
            )
        }
        "subprocess-shell" => {
            let args = operands(m.get("args")?);
            let cmd = args.iter().find(|a| a.kind() != "keyword_argument").copied().or_else(|| {
                let kw = args.iter().find(|a| a.child_by_field_name("name").is_some_and(|n| text(n, src) == "args"))?;
                kw.child_by_field_name("value")
            })?;
            // A command made only of literals cannot be injected into.
            let literal_list = matches!(cmd.kind(), "list" | "tuple") && operands(cmd).into_iter().all(is_plain_string);
            if is_plain_string(cmd) || literal_list {
                return None;
            }
            // With a list, shell=True hands only the first item to the shell, so dropping it
            // is what the author meant; for strings the quoting would have to change too.
            let shell = m.get("shell")?;
            let fix = if cmd.kind() == "list" {
                shell
                    .prev_sibling()
                    .and_then(|comma| comma.prev_sibling())
                    .filter(|prev| !prev.kind().contains("comment") && prev.end_byte() <= shell.start_byte())
                    .and_then(|prev| Fix::from_edit(src, prev.end_byte(), shell.end_byte(), ""))
            } else {
                None
            };
            Some(Verdict::new(node, "subprocess call with shell=True and a non-literal command is open to shell injection; pass an argument list without shell=True").with_fix(fix))
        }
        "pickle-load" => Some(Verdict::new(
            node,
            "unpickling data runs code chosen by whoever produced it; only load pickles you wrote yourself, or use json",
        )),
        "sql-format" => {
            let arg = m.get("arg")?;
            let how = sql_formatting(arg, src)?;
            Some(Verdict::new(
                node,
                format!("SQL built with {how} is open to injection; pass the values as query parameters"),
            ))
        }
        "requests-verify-false" => {
            let fix = replace(src, m.get("value")?, "True");
            Some(
                Verdict::new(
                    m.get("kwarg")?,
                    "verify=False disables TLS certificate checks and allows man-in-the-middle attacks",
                )
                .with_fix(fix),
            )
        }
        "hardcoded-password" => {
            let name = text(m.get("name")?, src);
            let value = m.get("value")?;
            if !is_plain_string(value) || !is_secret_name(name) || !looks_like_secret(string_content(value, src)?, name)
            {
                return None;
            }
            Some(Verdict::new(
                node,
                format!("`{name}` is set to a hard-coded credential; read it from the environment or a secret store"),
            ))
        }
        "none-comparison" => {
            let ops = operands(node);
            if ops.len() != 2 || !ops.iter().any(|o| o.kind() == "none") || in_call_argument(node) {
                return None;
            }
            let op = node.child_by_field_name("operators")?;
            let new = if text(op, src) == "==" { "is" } else { "is not" };
            Some(
                Verdict::new(node, format!("compare to None with `{new}`, not `{}`", text(op, src)))
                    .with_fix(replace(src, op, new)),
            )
        }
        "is-literal" => {
            let ops = operands(node);
            if ops.len() != 2 || !ops.iter().any(|o| is_value_literal(*o)) {
                return None;
            }
            let op = node.child_by_field_name("operators")?;
            let new = if op.kind() == "is" { "==" } else { "!=" };
            Some(
                Verdict::new(
                    node,
                    format!("`{}` compares identity, which is unreliable for literals; use `{new}`", op.kind()),
                )
                .with_fix(replace(src, op, new)),
            )
        }
        "mutable-default" => {
            let value = m.get("value")?;
            if m.get("args").is_some_and(|a| !operands(a).is_empty()) {
                return None;
            }
            Some(Verdict::new(
                value,
                "mutable default argument is created once and shared between calls; default to None and create it in the body",
            ))
        }
        "bare-except" => {
            if node.child_by_field_name("value").is_some() || reraises(node) {
                return None;
            }
            let fix = replace(src, node.child(0)?, "except Exception");
            Some(Verdict::new(node.child(0)?, "bare `except:` also catches KeyboardInterrupt and SystemExit; catch Exception (or something narrower)").with_fix(fix))
        }
        "assert-tuple" => {
            let tuple = m.get("tuple")?;
            let items = operands(tuple);
            if items.is_empty() {
                return None;
            }
            let single_line = tuple.start_position().row == tuple.end_position().row;
            let fix = (items.len() == 2 && single_line)
                .then(|| replace(src, tuple, &format!("{}, {}", text(items[0], src), text(items[1], src))))
                .flatten();
            Some(Verdict::new(node, "assert on a non-empty tuple is always true; drop the parentheses").with_fix(fix))
        }
        "dict-keys-membership" => {
            let call = m.get("call")?;
            let ops = operands(node);
            if ops.len() != 2 || ops[1] != call || !operands(m.get("args")?).is_empty() {
                return None;
            }
            let fix = replace(src, call, text(m.get("obj")?, src));
            Some(
                Verdict::new(node, "test membership on the dict itself; `.keys()` adds a call for nothing")
                    .with_fix(fix),
            )
        }
        "star-import" => Some(Verdict::new(
            node,
            "wildcard import hides where names come from and can shadow builtins; import the names you use",
        )),
        "type-comparison" => {
            let ops = operands(node);
            let call = m.get("call")?;
            let other = ops.iter().find(|o| **o != call)?;
            if ops.len() != 2 || is_type_call(*other, src) {
                return None;
            }
            Some(Verdict::new(
                node,
                "use isinstance() rather than comparing type() with ==, so subclasses are accepted",
            ))
        }
        "missing-docstring" => {
            let name = text(m.get("name")?, src);
            let top_level = match node.parent()?.kind() {
                "module" => true,
                "decorated_definition" => node.parent()?.parent()?.kind() == "module",
                _ => false,
            };
            let is_test = name.starts_with("test")
                || name.starts_with("Test")
                || ["Test", "Tests", "TestCase"].iter().any(|t| name.ends_with(t))
                || node.child_by_field_name("superclasses").is_some_and(|s| text(s, src).contains("TestCase"));
            let lines = node.end_position().row - node.start_position().row + 1;
            if !top_level || name.starts_with('_') || is_test || lines < 10 || has_docstring(m.get("body")?) {
                return None;
            }
            let what = if node.kind() == "class_definition" { "class" } else { "function" };
            Some(Verdict::new(m.get("name")?, format!("public {what} `{name}` ({lines} lines) has no docstring")))
        }
        _ => None,
    }
}

/// A string literal without interpolation (concatenations of those count too).
fn is_plain_string(n: Node<'_>) -> bool {
    match n.kind() {
        "string" => child_of_kind(n, "interpolation").is_none(),
        "concatenated_string" => operands(n).into_iter().all(is_plain_string),
        _ => false,
    }
}

fn string_content<'s>(n: Node<'_>, src: &'s str) -> Option<&'s str> {
    let start = child_of_kind(n, "string_start")?.end_byte();
    let end = child_of_kind(n, "string_end")?.start_byte();
    src.get(start..end)
}

/// Which kind of formatting makes `arg` an SQL string built from values, if any.
fn sql_formatting(arg: Node<'_>, src: &str) -> Option<&'static str> {
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

fn is_secret_name(name: &str) -> bool {
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
fn looks_like_secret(value: &str, name: &str) -> bool {
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

fn is_value_literal(n: Node<'_>) -> bool {
    match n.kind() {
        "string" | "concatenated_string" | "integer" | "float" => true,
        "unary_operator" => n.child_by_field_name("argument").is_some_and(|a| matches!(a.kind(), "integer" | "float")),
        _ => false,
    }
}

fn is_type_call(n: Node<'_>, src: &str) -> bool {
    n.kind() == "call" && n.child_by_field_name("function").is_some_and(|f| text(f, src) == "type")
}

/// ORMs and array libraries overload `== None` inside call arguments (`.filter(Col == None)`),
/// where `is None` would be a bug.
fn in_call_argument(node: Node<'_>) -> bool {
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
fn reraises(except: Node<'_>) -> bool {
    let Some(block) = child_of_kind(except, "block") else { return false };
    let mut cursor = block.walk();
    block.named_children(&mut cursor).any(|s| s.kind() == "raise_statement" && s.named_child_count() == 0)
}

fn has_docstring(body: Node<'_>) -> bool {
    let mut cursor = body.walk();
    let first = body.named_children(&mut cursor).find(|n| n.kind() != "comment");
    first.is_some_and(|s| s.kind() == "expression_statement" && s.named_child(0).is_some_and(|e| e.kind() == "string"))
}
