//! Python rules: a matcher per node kind that anchors a rule, and the checks that keep them
//! precise.

use tree_sitter::Node;

mod checks;

use super::{
    Report, RuleInfo, Spec, Verdict, field, first_named, is, is_token, is_wild, operands, replace, rule, text,
};
use crate::review::finding::Category::*;
use crate::review::finding::Fix;
use crate::review::finding::Severity::*;
use checks::{
    has_docstring, in_call_argument, is_plain_string, is_secret_name, is_type_call, is_value_literal,
    looks_like_secret, reraises, sql_formatting, string_content,
};

pub(super) static SPEC: Spec = Spec { rules: RULES, anchors: ANCHORS, visit };

/// The node kinds `visit` has arms for. The walk skips every other kind, so a kind missing
/// here silently disables its rules (tests/offline_rules.rs would catch it).
pub(super) const ANCHORS: &[&str] = &[
    "call",
    "assignment",
    "keyword_argument",
    "default_parameter",
    "typed_default_parameter",
    "comparison_operator",
    "except_clause",
    "assert_statement",
    "import_from_statement",
    "function_definition",
    "class_definition",
];

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

/// Dispatches on the kind of node each rule is anchored at.
fn visit(node: Node<'_>, src: &str, out: &mut Report) {
    match node.kind() {
        "call" => call(node, src, out),
        "assignment" => {
            let name = field(node, "left").and_then(|left| match left.kind() {
                "identifier" => Some(left),
                "attribute" => field(left, "attribute").filter(|a| is(*a, "identifier")),
                _ => None,
            });
            out.add("hardcoded-password", hardcoded_password(node, name, field(node, "right"), src));
        }
        "keyword_argument" | "default_parameter" => {
            let name = field(node, "name").filter(|n| is(*n, "identifier"));
            out.add("hardcoded-password", hardcoded_password(node, name, field(node, "value"), src));
            if node.kind() == "default_parameter" {
                out.add("mutable-default", mutable_default(node, src));
            }
        }
        "typed_default_parameter" => out.add("mutable-default", mutable_default(node, src)),
        "comparison_operator" => comparison(node, src, out),
        "except_clause" => out.add("bare-except", bare_except(node, src)),
        "assert_statement" => out.add("assert-tuple", assert_tuple(node, src)),
        "import_from_statement" => out.add("star-import", star_import(node)),
        "function_definition" | "class_definition" => out.add("missing-docstring", missing_docstring(node, src)),
        kind => debug_assert!(false, "`{kind}` is in ANCHORS but has no matcher"),
    }
}

/// The call rules, which all start from the callee: `eval(..)`, or `module.attr(..)`.
fn call(node: Node<'_>, src: &str, out: &mut Report) {
    let Some(func) = field(node, "function") else { return };
    // `f(x for x in xs)` has a generator expression instead of an argument list.
    let args = field(node, "arguments").filter(|a| is(*a, "argument_list"));
    if is(func, "identifier") {
        if let (name @ ("eval" | "exec"), Some(args)) = (text(func, src), args) {
            let rule = if name == "eval" { "eval" } else { "exec" };
            out.add(rule, eval_exec(rule, node, args));
        }
        return;
    }
    if !is(func, "attribute") {
        return;
    }
    let (Some(object), Some(attr)) = (field(func, "object"), field(func, "attribute").filter(|a| is(*a, "identifier")))
    else {
        return;
    };
    let module = if is(object, "identifier") { text(object, src) } else { "" };
    let attr = text(attr, src);
    if ["pickle", "cPickle", "_pickle", "dill"].contains(&module) && ["load", "loads"].contains(&attr) {
        out.add(
            "pickle-load",
            Some(Verdict::new(
                node,
                "unpickling data runs code chosen by whoever produced it; only load pickles you wrote yourself, or use json",
            )),
        );
    }
    let Some(args) = args else { return };
    if (module, attr) == ("yaml", "load") {
        out.add("yaml-load", yaml_load(node, func, args, src));
    }
    if module == "subprocess" && ["run", "call", "Popen", "check_call", "check_output"].contains(&attr) {
        out.add("subprocess-shell", subprocess_shell(node, args, src));
    }
    if ["execute", "executemany"].contains(&attr) {
        out.add("sql-format", sql_format(node, args, src));
    }
    let http =
        ["get", "post", "put", "patch", "delete", "head", "options", "request", "stream", "Client", "AsyncClient"];
    if http.contains(&attr) {
        // Each `verify=False` is its own finding (and fix).
        for kwarg in keyword_arguments(args, src, "verify") {
            if field(kwarg, "value").is_some_and(|v| is(v, "false")) {
                out.add("requests-verify-false", verify_false(kwarg, src));
            }
        }
    }
}

/// The `name=...` keyword arguments among `args`' children.
fn keyword_arguments<'t>(args: Node<'t>, src: &str, name: &str) -> Vec<Node<'t>> {
    let mut cursor = args.walk();
    let named = |n: Node<'_>| is(n, "identifier") && text(n, src) == name;
    args.named_children(&mut cursor)
        .filter(|a| is(*a, "keyword_argument") && field(*a, "name").is_some_and(named))
        .collect()
}

fn eval_exec(rule: &str, node: Node<'_>, args: Node<'_>) -> Option<Verdict> {
    let arg = first_named(args)?;
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

fn yaml_load(node: Node<'_>, func: Node<'_>, args: Node<'_>, src: &str) -> Option<Verdict> {
    let args = operands(args);
    if args.len() != 1 || args[0].kind().contains("keyword") || args[0].kind().contains("splat") {
        // An explicit Loader, positional or keyword, is a deliberate choice.
        return None;
    }
    let fix = replace(src, func, "yaml.safe_load");
    Some(
        Verdict::new(node, "yaml.load without a Loader can construct arbitrary objects; use yaml.safe_load")
            .with_fix(fix),
    )
}

fn subprocess_shell(node: Node<'_>, args_node: Node<'_>, src: &str) -> Option<Verdict> {
    let shell = keyword_arguments(args_node, src, "shell")
        .into_iter()
        .find(|k| field(*k, "value").is_some_and(|v| is(v, "true")))?;
    let args = operands(args_node);
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
    let fix = if cmd.kind() == "list" {
        shell
            .prev_sibling()
            .and_then(|comma| comma.prev_sibling())
            .filter(|prev| !prev.kind().contains("comment") && prev.end_byte() <= shell.start_byte())
            .and_then(|prev| {
                Fix::from_edit_on_line(src, prev.end_byte(), shell.end_byte(), "", prev.end_position().row as u32)
            })
    } else {
        None
    };
    Some(Verdict::new(node, "subprocess call with shell=True and a non-literal command is open to shell injection; pass an argument list without shell=True").with_fix(fix))
}

fn sql_format(node: Node<'_>, args: Node<'_>, src: &str) -> Option<Verdict> {
    let arg = first_named(args).filter(|a| ["string", "binary_operator", "call"].iter().any(|k| is(*a, k)))?;
    let how = sql_formatting(arg, src)?;
    Some(Verdict::new(node, format!("SQL built with {how} is open to injection; pass the values as query parameters")))
}

fn verify_false(kwarg: Node<'_>, src: &str) -> Option<Verdict> {
    let fix = replace(src, field(kwarg, "value")?, "True");
    Some(
        Verdict::new(kwarg, "verify=False disables TLS certificate checks and allows man-in-the-middle attacks")
            .with_fix(fix),
    )
}

/// `name = "literal"` in an assignment, a keyword argument or a parameter default.
fn hardcoded_password(node: Node<'_>, name: Option<Node<'_>>, value: Option<Node<'_>>, src: &str) -> Option<Verdict> {
    let name = text(name?, src);
    let value = value.filter(|v| is(*v, "string"))?;
    if !is_plain_string(value) || !is_secret_name(name) || !looks_like_secret(string_content(value, src)?, name) {
        return None;
    }
    Some(Verdict::new(
        node,
        format!("`{name}` is set to a hard-coded credential; read it from the environment or a secret store"),
    ))
}

/// A `[]`, `{}` or `set()` default, for `default_parameter` and `typed_default_parameter`.
fn mutable_default(node: Node<'_>, src: &str) -> Option<Verdict> {
    let value = field(node, "value")?;
    let literal = ["list", "dictionary", "set"].iter().any(|k| is(value, k));
    // `list()`, `dict()` and `set()` without arguments build the same thing.
    let empty_ctor = is(value, "call")
        && field(value, "function")
            .is_some_and(|f| is(f, "identifier") && ["list", "dict", "set"].contains(&text(f, src)))
        && field(value, "arguments").is_some_and(|a| is(a, "argument_list") && operands(a).is_empty());
    if !literal && !empty_ctor {
        return None;
    }
    Some(Verdict::new(
        value,
        "mutable default argument is created once and shared between calls; default to None and create it in the body",
    ))
}

/// The comparison rules: `== None`, `is` with a literal, `in d.keys()`, `type(x) == T`.
fn comparison(node: Node<'_>, src: &str, out: &mut Report) {
    let mut cursor = node.walk();
    let ops: Vec<Node<'_>> = node.children_by_field_name("operators", &mut cursor).collect();
    if ops.iter().any(|o| is_token(*o, &["==", "!="])) {
        out.add("none-comparison", none_comparison(node, src));
    }
    if ops.iter().any(|o| is_token(*o, &["is", "is not"])) {
        out.add("is-literal", is_literal(node, src));
    }
    // A `.keys()` call counts after an `in`, a `type()` call before an `==`; the checks
    // then pin down which operand it is.
    let calls: Vec<Node<'_>> = node.named_children(&mut cursor).filter(|c| is(*c, "call")).collect();
    if let Some(op) = ops.iter().find(|o| is_token(**o, &["in", "not in"])) {
        let mut after = calls.iter().filter(|c| c.start_byte() >= op.end_byte());
        out.add("dict-keys-membership", after.find_map(|c| dict_keys_membership(node, *c, src)));
    }
    if let Some(op) = ops.iter().rev().find(|o| is_token(**o, &["==", "!="])) {
        let mut before = calls.iter().filter(|c| c.end_byte() <= op.start_byte());
        out.add("type-comparison", before.find_map(|c| type_comparison(node, *c, src)));
    }
}

fn none_comparison(node: Node<'_>, src: &str) -> Option<Verdict> {
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

fn is_literal(node: Node<'_>, src: &str) -> Option<Verdict> {
    let ops = operands(node);
    if ops.len() != 2 || !ops.iter().any(|o| is_value_literal(*o)) {
        return None;
    }
    let op = node.child_by_field_name("operators")?;
    let new = if op.kind() == "is" { "==" } else { "!=" };
    Some(
        Verdict::new(node, format!("`{}` compares identity, which is unreliable for literals; use `{new}`", op.kind()))
            .with_fix(replace(src, op, new)),
    )
}

/// `key in d.keys()`, where `call` is the `d.keys()` candidate.
fn dict_keys_membership(node: Node<'_>, call: Node<'_>, src: &str) -> Option<Verdict> {
    let func = field(call, "function").filter(|f| is(*f, "attribute"))?;
    let obj = field(func, "object").filter(|o| is_wild(*o))?;
    field(func, "attribute").filter(|a| is(*a, "identifier") && text(*a, src) == "keys")?;
    let args = field(call, "arguments").filter(|a| is(*a, "argument_list"))?;
    let ops = operands(node);
    if ops.len() != 2 || ops[1] != call || !operands(args).is_empty() {
        return None;
    }
    let fix = replace(src, call, text(obj, src));
    Some(Verdict::new(node, "test membership on the dict itself; `.keys()` adds a call for nothing").with_fix(fix))
}

/// `type(x) == T`, where `call` is the `type(x)` candidate.
fn type_comparison(node: Node<'_>, call: Node<'_>, src: &str) -> Option<Verdict> {
    field(call, "function").filter(|f| is(*f, "identifier") && text(*f, src) == "type")?;
    field(call, "arguments").filter(|a| is(*a, "argument_list"))?;
    let ops = operands(node);
    let other = ops.iter().find(|o| **o != call)?;
    if ops.len() != 2 || is_type_call(*other, src) {
        return None;
    }
    Some(Verdict::new(node, "use isinstance() rather than comparing type() with ==, so subclasses are accepted"))
}

fn bare_except(node: Node<'_>, src: &str) -> Option<Verdict> {
    if node.child_by_field_name("value").is_some() || reraises(node) {
        return None;
    }
    let fix = replace(src, node.child(0)?, "except Exception");
    Some(
        Verdict::new(
            node.child(0)?,
            "bare `except:` also catches KeyboardInterrupt and SystemExit; catch Exception (or something narrower)",
        )
        .with_fix(fix),
    )
}

fn assert_tuple(node: Node<'_>, src: &str) -> Option<Verdict> {
    let tuple = first_named(node).filter(|t| is(*t, "tuple"))?;
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

/// `from module import *`; `from . import *` is left alone.
fn star_import(node: Node<'_>) -> Option<Verdict> {
    let module = field(node, "module_name").filter(|m| is(*m, "dotted_name"))?;
    let mut cursor = node.walk();
    let mut after = node.named_children(&mut cursor).skip_while(|c| *c != module).skip(1);
    after.find(|c| is(*c, "wildcard_import"))?;
    Some(Verdict::new(
        node,
        "wildcard import hides where names come from and can shadow builtins; import the names you use",
    ))
}

fn missing_docstring(node: Node<'_>, src: &str) -> Option<Verdict> {
    let name_node = field(node, "name").filter(|n| is(*n, "identifier"))?;
    let body = field(node, "body").filter(|b| is(*b, "block"))?;
    let name = text(name_node, src);
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
    if !top_level || name.starts_with('_') || is_test || lines < 10 || has_docstring(body) {
        return None;
    }
    let what = if node.kind() == "class_definition" { "class" } else { "function" };
    Some(Verdict::new(name_node, format!("public {what} `{name}` ({lines} lines) has no docstring")))
}
