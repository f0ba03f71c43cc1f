//! Owns one source of settings ([`Layer`]), where it came from ([`Origin`]), and merging layers
//! key by key while remembering, for every resolved value, which layer set it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Map, Value};

use super::Problem;

/// Where a resolved value came from, lowest layer first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Origin {
    /// Built into review-lsp.
    Default,
    /// The user's own file (`$REVIEW_LSP_CONFIG`, else `$XDG_CONFIG_HOME/review-lsp/config.toml`).
    User(PathBuf),
    /// A file named on the command line (`scan --config FILE`): the user's own choice, so
    /// trusted, in the place of the workspace file.
    ConfigFlag(PathBuf),
    /// The workspace's `review-lsp.toml`.
    Workspace(PathBuf),
    /// The editor: `initializationOptions` or `workspace/didChangeConfiguration`.
    Editor(String),
    /// Command-line flags.
    Cli,
}

impl Origin {
    /// The layers the user wrote or chose themselves (everything but a workspace file).
    pub fn is_users_own(&self) -> bool {
        !matches!(self, Origin::Workspace(_))
    }
}

/// Unescaped: callers showing it to a person go through [`crate::escape`] (as `Problem` does).
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::User(p) => write!(f, "user config {}", p.display()),
            Origin::ConfigFlag(p) => write!(f, "--config {}", p.display()),
            Origin::Workspace(p) => write!(f, "{}", p.display()),
            Origin::Editor(s) => write!(f, "editor ({s})"),
            Origin::Cli => f.write_str("command line"),
        }
    }
}

/// One source of settings, before merging.
#[derive(Clone, Debug)]
pub struct Layer {
    pub origin: Origin,
    pub value: Value,
}

impl Layer {
    pub fn from_toml_str(text: &str, origin: Origin) -> Result<Layer, Problem> {
        match toml::from_str::<Value>(text) {
            Ok(value) => Ok(Layer { origin, value }),
            Err(e) => Err(Problem::new(&origin, format!("invalid TOML, file ignored: {}", e.message()))),
        }
    }

    /// Settings sent by an editor. Clients nest them under their section name, so accept
    /// `{"review-lsp": {...}}` as well as the bare object. `null` means no settings.
    pub fn from_client(value: Value, origin: &str) -> Layer {
        let value = match value {
            Value::Object(mut map)
                if map.len() == 1 && (map.contains_key("review-lsp") || map.contains_key("reviewLsp")) =>
            {
                map.remove("review-lsp").or_else(|| map.remove("reviewLsp")).unwrap_or(Value::Null)
            }
            Value::Null => Value::Object(Default::default()),
            other => other,
        };
        Layer { origin: Origin::Editor(origin.to_string()), value }
    }

    /// Command-line flags as a layer: `("llm.model", "x")` pairs.
    pub fn from_flags<'a>(flags: impl IntoIterator<Item = (&'a str, Value)>) -> Option<Layer> {
        let mut value = Value::Object(Default::default());
        for (key, v) in flags {
            set_path(&mut value, key, v);
        }
        (value.as_object().is_some_and(|m| !m.is_empty())).then_some(Layer { origin: Origin::Cli, value })
    }
}

/// Sets a dotted key, creating the tables on the way.
fn set_path(root: &mut Value, dotted: &str, v: Value) {
    let mut cur = root;
    let mut parts = dotted.split('.').peekable();
    while let Some(part) = parts.next() {
        let Value::Object(map) = cur else { return };
        if parts.peek().is_none() {
            map.insert(part.to_string(), v);
            return;
        }
        cur = map.entry(part.to_string()).or_insert_with(|| Value::Object(Default::default()));
    }
}

/// The merged value and, for every leaf (a non-table value, arrays included), the layer that
/// set it, keyed by dotted path (`review.debounce_ms`, `agents.security.model`).
#[derive(Default)]
pub struct Merged {
    pub value: Value,
    pub origins: BTreeMap<String, Origin>,
}

impl Merged {
    pub fn new() -> Merged {
        Merged { value: Value::Object(Default::default()), origins: BTreeMap::new() }
    }

    /// Lays `overlay` over what is there: tables merge key by key, anything else replaces.
    pub fn apply(&mut self, overlay: Value, origin: &Origin) {
        merge(&mut self.value, overlay, origin, &mut self.origins, "");
    }

    /// The merged value at a dotted path.
    pub fn get(&self, dotted: &str) -> Option<&Value> {
        dotted.split('.').try_fold(&self.value, |cur, part| cur.get(part))
    }
}

fn merge(base: &mut Value, overlay: Value, origin: &Origin, origins: &mut BTreeMap<String, Origin>, prefix: &str) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                let path = join(prefix, &k);
                match b.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge(existing, v, origin, origins, &path)
                    }
                    _ => {
                        forget_under(origins, &path);
                        record_leaves(&v, origin, origins, &path);
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => {
            forget_under(origins, prefix);
            record_leaves(&o, origin, origins, prefix);
            *b = o;
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

fn forget_under(origins: &mut BTreeMap<String, Origin>, path: &str) {
    let nested = format!("{path}.");
    origins.retain(|k, _| k != path && !k.starts_with(&nested));
}

/// Records `origin` for every leaf of `v`. Iterative: a table nested as deep as TOML allows
/// must not overflow the stack.
fn record_leaves(v: &Value, origin: &Origin, origins: &mut BTreeMap<String, Origin>, path: &str) {
    let mut stack = vec![(path.to_string(), v)];
    while let Some((path, v)) = stack.pop() {
        match v {
            Value::Object(map) if !map.is_empty() => {
                stack.extend(map.iter().map(|(k, child)| (join(&path, k), child)));
            }
            _ => {
                origins.insert(path, origin.clone());
            }
        }
    }
}

/// Calls `f(table, key, dotted path)` for every existing key that matches `pattern` (dotted;
/// `*` matches any one segment), with the table that holds it, so `f` may read or remove it.
/// Recursion depth is the pattern's segment count, not the input's nesting.
pub fn for_each_match(value: &mut Value, pattern: &str, f: &mut dyn FnMut(&mut Map<String, Value>, &str, &str)) {
    let parts: Vec<&str> = pattern.split('.').collect();
    walk(value, &parts, "", f);
}

fn walk(value: &mut Value, parts: &[&str], prefix: &str, f: &mut dyn FnMut(&mut Map<String, Value>, &str, &str)) {
    let (Some((first, rest)), Value::Object(map)) = (parts.split_first(), value) else { return };
    let keys: Vec<String> = if *first == "*" { map.keys().cloned().collect() } else { vec![(*first).to_string()] };
    for key in keys {
        let path = join(prefix, &key);
        if rest.is_empty() {
            if map.contains_key(&key) {
                f(map, &key, &path);
            }
        } else if let Some(child) = map.get_mut(&key) {
            walk(child, rest, &path, f);
        }
    }
}

/// Every leaf of a value with its dotted path, in key order (for `config show`).
pub fn leaves(v: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), v)];
    while let Some((path, v)) = stack.pop() {
        match v {
            Value::Object(map) if !map.is_empty() => {
                stack.extend(map.iter().rev().map(|(k, child)| (join(&path, k), child)));
            }
            _ => out.push((path, v)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn later_layer_wins_and_records_its_origin_per_leaf() {
        let mut m = Merged::new();
        m.apply(json!({"review": {"debounce_ms": 300, "workers": 0}}), &Origin::Default);
        m.apply(json!({"review": {"debounce_ms": 50}}), &Origin::User("u.toml".into()));
        m.apply(json!({"review": {"workers": 2}}), &Origin::Cli);
        assert_eq!(m.get("review.debounce_ms"), Some(&json!(50)));
        assert_eq!(m.origins["review.debounce_ms"], Origin::User("u.toml".into()));
        assert_eq!(m.origins["review.workers"], Origin::Cli);
    }

    #[test]
    fn replacing_a_table_forgets_the_origins_under_it() {
        let mut m = Merged::new();
        m.apply(json!({"review": {"severity": {"a": "error"}}}), &Origin::Default);
        m.apply(json!({"review": 5}), &Origin::Cli);
        assert!(!m.origins.contains_key("review.severity.a"));
        assert_eq!(m.origins["review"], Origin::Cli);
    }

    #[test]
    fn flags_become_a_cli_layer() {
        let l = Layer::from_flags([("llm.model", json!("m")), ("llm.provider", json!("openai"))]).unwrap();
        assert_eq!(l.value, json!({"llm": {"model": "m", "provider": "openai"}}));
        assert!(Layer::from_flags([]).is_none());
    }
}
