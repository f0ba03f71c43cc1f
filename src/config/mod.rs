//! Owns the settings schema and its parsing. One schema serves the user's file,
//! `review-lsp.toml`, `initializationOptions`, `workspace/didChangeConfiguration` and command
//! flags; [`load`] layers them (see `load.rs`), `sensitive.rs` says what a workspace may not
//! choose, `trust.rs` which workspaces may, `ranges.rs` what each number may be.
//!
//! Parsing never fails: an unknown key or a bad value becomes a [`Problem`] and that one
//! setting falls back to its default, so a typo never takes the server down.

mod layers;
mod load;
pub mod ranges;
pub mod sensitive;
mod show;
pub mod trust;

pub use layers::{Layer, Origin, leaves};
pub use load::{
    Locations, MAX_CONFIG_BYTES, ReadFile, Resolved, Sources, load, read_config_file, trust_from_env, user_config_path,
};
pub use show::{Report, Setting};
pub use trust::TrustStore;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::llm::limits::{BudgetSettings, LimitSettings};
use crate::review::finding::{Category, Severity};

pub const CONFIG_FILE_NAME: &str = "review-lsp.toml";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub review: ReviewSettings,
    pub llm: LlmSettings,
    /// Per-agent overrides of `[llm]`, e.g. a stronger model for security.
    pub agents: BTreeMap<Category, AgentOverride>,
    /// Rate limits, breaker and retry for LLM calls.
    pub limits: LimitSettings,
    /// Daily spend cap for LLM calls.
    pub budget: BudgetSettings,
    pub cache: CacheSettings,
    pub log: LogSettings,
    pub metrics: MetricsSettings,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsSettings {
    /// Serve Prometheus metrics at `http://<addr>/metrics`; a bare port means loopback.
    pub addr: Option<String>,
}

/// Which engine reviews: the built-in offline rules, or a model vendor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderSetting {
    #[default]
    Offline,
    #[serde(rename = "openai")]
    OpenAi,
    Anthropic,
    Gemini,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LlmSettings {
    pub provider: ProviderSetting,
    /// Model name; each provider has a default.
    pub model: Option<String>,
    /// Vendor endpoint; set it to use an OpenAI-compatible local server (Ollama, vLLM, ...).
    pub base_url: Option<String>,
    /// Name of the environment variable that holds the key (never the key itself).
    pub api_key_env: Option<String>,
    pub timeout_secs: u64,
    pub max_output_tokens: u32,
    /// A workspace-scan call groups at most this many files...
    pub batch_max_files: usize,
    /// ...and at most this many prompt tokens.
    pub batch_max_tokens: usize,
}

impl Default for LlmSettings {
    fn default() -> Self {
        LlmSettings {
            provider: ProviderSetting::Offline,
            model: None,
            base_url: None,
            api_key_env: None,
            timeout_secs: 60,
            max_output_tokens: 2048,
            batch_max_files: 10,
            batch_max_tokens: 50_000,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentOverride {
    pub provider: Option<ProviderSetting>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReviewSettings {
    /// Quiet time after the last edit before a review starts.
    pub debounce_ms: u64,
    /// Files larger than this many bytes are skipped with a message.
    pub max_file_size: u64,
    /// At most this many diagnostics per file in the editor; one more says how many were left out.
    pub max_findings_per_file: usize,
    /// The agents that may run; the classifier picks among these per chunk.
    pub agents: Vec<Category>,
    /// Rule ids never reported.
    pub disabled_rules: Vec<String>,
    /// Per-rule severity overrides.
    pub severity: BTreeMap<String, Severity>,
    /// Review workers; 0 means one per core.
    pub workers: usize,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        ReviewSettings {
            debounce_ms: 300,
            max_file_size: 1024 * 1024,
            max_findings_per_file: 500,
            agents: Category::ALL.to_vec(),
            disabled_rules: Vec::new(),
            severity: BTreeMap::new(),
            workers: 0,
        }
    }
}

impl ReviewSettings {
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 { self.workers } else { std::thread::available_parallelism().map_or(2, |n| n.get()) }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheSettings {
    pub enabled: bool,
    /// Where cache files live; default `$XDG_CACHE_HOME/review-lsp`, else `~/.cache/review-lsp`.
    pub dir: Option<PathBuf>,
    pub ttl_secs: u64,
    /// Cap on the cached findings on disk; least recently used entries are evicted beyond it.
    pub max_size_mb: u64,
    /// Decoded entries kept in memory in front of the file.
    pub memory_entries: usize,
    /// A Redis shared by the team: a second-level cache and one rate quota for every server.
    pub redis_url: Option<String>,
    /// Key prefix in that Redis.
    pub namespace: String,
    /// The NAME of an env var holding a secret the team shares: then every team-tier value
    /// carries a keyed MAC and values without a valid one are ignored. Sensitive: user config.
    pub team_key_env: Option<String>,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            enabled: true,
            dir: None,
            ttl_secs: 3600,
            max_size_mb: 256,
            memory_entries: 4096,
            redis_url: None,
            namespace: "review-lsp".into(),
            team_key_env: None,
        }
    }
}

impl CacheSettings {
    pub fn resolved_dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(default_cache_dir)
    }

    pub fn store_settings(&self) -> crate::store::StoreSettings {
        crate::store::StoreSettings {
            ttl: std::time::Duration::from_secs(self.ttl_secs),
            max_bytes: self.max_size_mb.saturating_mul(1 << 20),
            memory_entries: self.memory_entries,
            redis: self.redis_url.as_ref().filter(|u| !u.trim().is_empty()).map(|url| crate::store::RedisSettings {
                url: url.clone(),
                namespace: self.namespace.clone(),
                key_env: self.team_key_env.clone().filter(|name| !name.trim().is_empty()),
            }),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// Log file for the server; default daily files `<cache dir>/logs/review-lsp.DATE.log`.
    pub file: Option<PathBuf>,
}

/// `$XDG_CACHE_HOME/review-lsp`, else `~/.cache/review-lsp`: results, the store, logs.
pub fn default_cache_dir() -> PathBuf {
    xdg_dir("XDG_CACHE_HOME", ".cache", "review-lsp")
}

/// `$XDG_STATE_HOME/review-lsp`, else `~/.local/state/review-lsp`: the trust store, and a
/// named log file's folder may be created here.
pub fn default_state_dir() -> PathBuf {
    xdg_dir("XDG_STATE_HOME", ".local/state", "review-lsp-state")
}

/// This program's folder under an XDG base directory; without a home, under the temp dir.
fn xdg_dir(variable: &str, under_home: &str, in_temp: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os(variable).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("review-lsp");
    }
    match std::env::home_dir() {
        Some(home) => home.join(under_home).join("review-lsp"),
        None => std::env::temp_dir().join(in_temp),
    }
}

/// Something wrong with one setting. The rest of the settings still apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where the setting came from: a file path, `initializationOptions`, ...
    pub origin: String,
    pub message: String,
}

impl Problem {
    pub fn new(origin: &Origin, message: String) -> Problem {
        Problem { origin: origin.to_string(), message }
    }
}

/// Escaped: both parts carry outside text (a file's path, its keys and values).
impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", crate::escape::line(&self.origin), crate::escape::line(&self.message))
    }
}

/// Merges layers in order (later wins, key by key) and parses the result: every layer is
/// taken as trusted and nothing is read from disk. [`load`] is the whole resolution.
pub fn resolve(layers: &[Layer]) -> (Config, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut merged = layers::Merged::new();
    for layer in layers {
        let mut cleaned = clean_layer(layer, &mut problems);
        ranges::enforce(&mut cleaned, &layer.origin, &mut problems);
        merged.apply(cleaned, &layer.origin);
    }
    (parse_merged(merged.value), problems)
}

/// Every layer is clean on its own, and merging clean objects keeps them clean.
fn parse_merged(merged: Value) -> Config {
    serde_json::from_value(merged).unwrap_or_else(|e| {
        tracing::error!("merged settings failed to parse ({e}); using defaults");
        Config::default()
    })
}

/// Parses one layer, reporting unknown keys and removing bad values until what remains
/// parses. Bounded: each round removes one value.
fn clean_layer(layer: &Layer, problems: &mut Vec<Problem>) -> Value {
    let mut value = layer.value.clone();
    if !value.is_object() {
        problems.push(Problem::new(&layer.origin, "settings must be a table/object; ignored".into()));
        return Value::Object(Default::default());
    }
    for _ in 0..256 {
        let mut unknown = Vec::new();
        let mut track = serde_path_to_error::Track::new();
        let de = serde_path_to_error::Deserializer::new(&value, &mut track);
        let result: Result<Config, _> = serde_ignored::deserialize(de, |path| unknown.push(path.to_string()));
        match result {
            Ok(_) => {
                for key in unknown {
                    problems.push(Problem::new(&layer.origin, format!("unknown setting `{key}` (ignored)")));
                    remove_path(&mut value, &key.split('.').map(str::to_string).collect::<Vec<_>>());
                }
                return value;
            }
            Err(err) => {
                let path = track.path();
                let segments: Vec<String> = path.iter().map(|s| s.to_string()).collect();
                problems.push(Problem::new(&layer.origin, format!("bad value for `{path}`: {err}; using the default")));
                // A bad map key shows up as a `?` segment: remove the nearest enclosing setting
                // that exists, so one bad key never costs the rest of the layer.
                let removed = (1..=segments.len()).rev().any(|n| remove_path(&mut value, &segments[..n]));
                if !removed {
                    return Value::Object(Default::default());
                }
            }
        }
    }
    Value::Object(Default::default())
}

fn remove_path(value: &mut Value, segments: &[String]) -> bool {
    let Some((last, parents)) = segments.split_last() else { return false };
    let mut cur = value;
    for seg in parents {
        cur = match cur {
            Value::Object(map) => match map.get_mut(seg) {
                Some(v) => v,
                None => return false,
            },
            Value::Array(items) => match seg.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match cur {
        Value::Object(map) => map.remove(last).is_some(),
        Value::Array(items) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn layer(v: Value) -> Layer {
        Layer { origin: Origin::Cli, value: v }
    }

    #[test]
    fn defaults_when_empty() {
        let (c, p) = resolve(&[layer(json!({}))]);
        assert_eq!(c, Config::default());
        assert!(p.is_empty());
    }

    #[test]
    fn unknown_key_reported_rest_applies() {
        let (c, p) = resolve(&[layer(json!({"review": {"debounce_ms": 50, "debounse": 1}, "bogus": true}))]);
        assert_eq!(c.review.debounce_ms, 50);
        let msgs: Vec<_> = p.iter().map(|p| p.message.clone()).collect();
        assert!(msgs.iter().any(|m| m.contains("`review.debounse`")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.contains("`bogus`")), "{msgs:?}");
    }

    #[test]
    fn bad_value_falls_back_to_default_only_for_that_key() {
        let (c, p) = resolve(&[layer(json!({"review": {"debounce_ms": "fast", "max_file_size": 10}}))]);
        assert_eq!(c.review.debounce_ms, 300);
        assert_eq!(c.review.max_file_size, 10);
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("review.debounce_ms"), "{}", p[0].message);
    }

    #[test]
    fn bad_agent_name_is_reported() {
        let (c, p) = resolve(&[layer(json!({"review": {"agents": ["security", "vibes"]}}))]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].message.contains("review.agents") && p[0].message.contains("vibes"), "{}", p[0].message);
        // The setting as a whole falls back; a half-applied list would surprise more.
        assert_eq!(c.review.agents, Category::ALL.to_vec());
    }

    #[test]
    fn later_layers_win_key_by_key() {
        let (c, _) = resolve(&[
            layer(json!({"review": {"debounce_ms": 10, "max_file_size": 5}})),
            layer(json!({"review": {"debounce_ms": 20}})),
        ]);
        assert_eq!((c.review.debounce_ms, c.review.max_file_size), (20, 5));
    }

    #[test]
    fn llm_section_and_agent_overrides_parse() {
        let (c, p) = resolve(&[layer(json!({
            "llm": {"provider": "openai", "model": "m", "base_url": "http://127.0.0.1:1/v1"},
            "agents": {"security": {"model": "big"}}
        }))]);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.llm.provider, ProviderSetting::OpenAi);
        assert_eq!(c.agents[&Category::Security].model.as_deref(), Some("big"));
        let (c, p) = resolve(&[layer(json!({"llm": {"provider": "skynet"}, "agents": {"vibes": {}}}))]);
        assert_eq!(c.llm.provider, ProviderSetting::Offline);
        assert_eq!(p.len(), 2, "{p:?}");
    }

    #[test]
    fn client_settings_may_be_wrapped() {
        let l = Layer::from_client(json!({"review-lsp": {"review": {"debounce_ms": 7}}}), "client");
        assert_eq!(resolve(&[l]).0.review.debounce_ms, 7);
    }

    #[test]
    fn a_problem_escapes_what_came_from_the_file() {
        let p =
            Problem { origin: "/repo/\u{1b}]0;owned\u{7}.toml".into(), message: "bad `a\u{202e}b`\n::error x".into() };
        let shown = p.to_string();
        assert!(!shown.chars().any(crate::escape::is_unsafe), "{shown:?}");
        assert!(shown.contains("\\u{1b}") && shown.contains("\\n::error"), "{shown}");
    }

    #[test]
    fn invalid_toml_is_a_problem_not_a_crash() {
        assert!(Layer::from_toml_str("[review\nx=", Origin::Cli).is_err());
    }
}
