//! Owns the one list of settings a repository may not choose for the user, and the limits it
//! may only tighten.
//!
//! **Sensitive** settings decide where code, keys and findings go, what is written where, or
//! whose quota is charged. From an untrusted workspace file they are dropped and named.
//!
//! **Spend and rate limits** from an untrusted workspace apply only where they lower spend or
//! rate compared with the layers below (defaults and the user's file): a repository may make
//! review-lsp more careful with the user's money, never less.

use serde_json::Value;

use super::layers::{Merged, for_each_match, leaves};

/// Dotted keys; `*` matches one segment (an agent name). A key covers everything under it.
pub const SENSITIVE: &[&str] = &[
    "llm.provider",
    "llm.base_url",
    "llm.api_key_env",
    "agents.*.provider",
    "agents.*.base_url",
    "agents.*.api_key_env",
    "cache.dir",
    "cache.redis_url",
    "cache.namespace",
    "cache.team_key_env",
    // Every `[log]` setting: the file, and anything later added that decides what is written.
    "log",
    "metrics",
    "limits.user",
    "limits.tenant",
    // Lower prices make the dollar cap allow more spend; they are the user's call.
    "budget.prices",
];

/// Which way a limit is safer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Safer {
    /// A smaller number; `0` (or absent) means no limit at all.
    LowerZeroUnlimited,
    /// A smaller number; absent (`null`) means no limit, `0` allows nothing.
    LowerAbsentUnlimited,
    /// A smaller number; `0` is simply the smallest.
    Lower,
    /// A larger number (a longer wait, a longer pause).
    Higher,
}

/// Limits an untrusted workspace may only tighten.
const LIMITS: &[(&str, Safer)] = &[
    ("limits.requests_per_minute", Safer::LowerZeroUnlimited),
    ("limits.tokens_per_minute", Safer::LowerZeroUnlimited),
    ("limits.burst", Safer::LowerZeroUnlimited),
    ("limits.max_concurrency", Safer::LowerZeroUnlimited),
    ("limits.per_user_requests_per_minute", Safer::LowerZeroUnlimited),
    ("limits.per_user_burst", Safer::LowerZeroUnlimited),
    ("limits.per_tenant_requests_per_minute", Safer::LowerZeroUnlimited),
    ("limits.per_tenant_burst", Safer::LowerZeroUnlimited),
    ("limits.breaker_failures", Safer::LowerZeroUnlimited),
    ("limits.breaker_min_calls", Safer::Lower),
    ("limits.breaker_failure_percent", Safer::Lower),
    ("limits.breaker_window_secs", Safer::Higher),
    ("limits.breaker_open_secs", Safer::Higher),
    ("limits.breaker_max_open_secs", Safer::Higher),
    ("limits.retry_attempts", Safer::Lower),
    ("limits.retry_base_delay_ms", Safer::Higher),
    ("limits.retry_max_delay_ms", Safer::Higher),
    ("limits.throttle_recover_successes", Safer::Higher),
    ("limits.throttle_quiet_secs", Safer::Higher),
    ("budget.daily_token_budget", Safer::LowerAbsentUnlimited),
    ("budget.daily_cost_budget_usd", Safer::LowerAbsentUnlimited),
    ("llm.max_output_tokens", Safer::Lower),
];

/// True when `key` (dotted) is or lies under a sensitive setting.
pub fn is_sensitive(key: &str) -> bool {
    SENSITIVE.iter().any(|pattern| covers(pattern, key))
}

fn covers(pattern: &str, key: &str) -> bool {
    let mut key_parts = key.split('.');
    pattern.split('.').all(|p| key_parts.next().is_some_and(|k| p == "*" || p == k))
}

/// Removes every sensitive setting from an untrusted layer, naming each in `withheld`.
pub fn strip(value: &mut Value, withheld: &mut Vec<String>) {
    for pattern in SENSITIVE {
        for_each_match(value, pattern, &mut |table, key, path| {
            if let Some(removed) = table.remove(key) {
                // Name the settings themselves (`log.file`), not just their table.
                withheld.extend(
                    leaves(&removed)
                        .into_iter()
                        .map(|(k, _)| if k.is_empty() { path.to_string() } else { format!("{path}.{k}") }),
                );
            }
        });
    }
}

/// Drops every limit in an untrusted layer that would loosen what the layers below set,
/// naming each in `withheld`.
pub fn keep_only_tighter(value: &mut Value, below: &Merged, withheld: &mut Vec<String>) {
    for (key, safer) in LIMITS {
        let Some((section, name)) = key.split_once('.') else { continue };
        let Some(Value::Object(table)) = value.get_mut(section) else { continue };
        let Some(asked) = table.get(name) else { continue };
        if !is_tighter(*safer, asked, below.get(key)) {
            table.remove(name);
            withheld.push((*key).to_string());
        }
    }
}

fn is_tighter(safer: Safer, asked: &Value, current: Option<&Value>) -> bool {
    let current = current.and_then(Value::as_f64);
    let Some(asked) = asked.as_f64() else {
        // `null` or another non-number asks for "no limit": never tighter than a limit.
        return current.is_none() && safer != Safer::Higher;
    };
    match (safer, current) {
        (Safer::LowerZeroUnlimited, _) if asked == 0.0 => current.is_none_or(|c| c == 0.0),
        (Safer::LowerZeroUnlimited, None) => true,
        (Safer::LowerZeroUnlimited, Some(c)) => c == 0.0 || asked <= c,
        (Safer::LowerAbsentUnlimited, None) => true,
        (Safer::Lower | Safer::LowerAbsentUnlimited, Some(c)) => asked <= c,
        (Safer::Higher, Some(c)) => asked >= c,
        (_, None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Origin;
    use serde_json::json;

    #[test]
    fn sensitive_keys_are_stripped_and_named_harmless_ones_stay() {
        let mut v = json!({
            "llm": {"provider": "openai", "base_url": "http://x", "api_key_env": "AWS_SECRET", "model": "m"},
            "agents": {"security": {"base_url": "http://y", "model": "big"}},
            "cache": {"dir": "/tmp/x", "redis_url": "redis://h", "namespace": "n", "ttl_secs": 5},
            "log": {"file": "/etc/passwd"},
            "metrics": {"addr": "0.0.0.0:9"},
            "limits": {"user": "u", "tenant": "t"},
            "review": {"debounce_ms": 5},
        });
        let mut withheld = Vec::new();
        strip(&mut v, &mut withheld);
        withheld.sort();
        assert_eq!(
            withheld,
            [
                "agents.security.base_url",
                "cache.dir",
                "cache.namespace",
                "cache.redis_url",
                "limits.tenant",
                "limits.user",
                "llm.api_key_env",
                "llm.base_url",
                "llm.provider",
                "log.file",
                "metrics.addr"
            ]
        );
        assert_eq!(v["llm"], json!({"model": "m"}));
        assert_eq!(v["agents"]["security"], json!({"model": "big"}));
        assert_eq!(v["cache"], json!({"ttl_secs": 5}));
        assert_eq!(v["review"]["debounce_ms"], json!(5));
    }

    #[test]
    fn is_sensitive_matches_wildcards_and_subkeys() {
        assert!(is_sensitive("agents.style.api_key_env"));
        assert!(is_sensitive("log.file"));
        assert!(!is_sensitive("agents.style.model"));
        assert!(!is_sensitive("review.agents"));
    }

    fn below(v: Value) -> Merged {
        let mut m = Merged::new();
        m.apply(v, &Origin::Default);
        m
    }

    #[test]
    fn limits_apply_only_when_they_lower_spend_or_rate() {
        let below = below(json!({
            "limits": {"requests_per_minute": 60, "retry_attempts": 4, "retry_base_delay_ms": 500,
                       "per_tenant_requests_per_minute": 0},
            "budget": {"daily_token_budget": null, "daily_cost_budget_usd": 5.0},
        }));
        let mut v = json!({
            "limits": {"requests_per_minute": 10, "retry_attempts": 9, "retry_base_delay_ms": 10,
                       "per_tenant_requests_per_minute": 30},
            "budget": {"daily_token_budget": 1000, "daily_cost_budget_usd": 50.0},
        });
        let mut withheld = Vec::new();
        keep_only_tighter(&mut v, &below, &mut withheld);
        assert_eq!(v["limits"], json!({"requests_per_minute": 10, "per_tenant_requests_per_minute": 30}));
        assert_eq!(v["budget"], json!({"daily_token_budget": 1000}));
        withheld.sort();
        assert_eq!(withheld, ["budget.daily_cost_budget_usd", "limits.retry_attempts", "limits.retry_base_delay_ms"]);
    }

    #[test]
    fn zero_means_unlimited_so_it_never_tightens_a_limit() {
        let below = below(json!({"limits": {"requests_per_minute": 60}}));
        let mut v = json!({"limits": {"requests_per_minute": 0}});
        let mut withheld = Vec::new();
        keep_only_tighter(&mut v, &below, &mut withheld);
        assert_eq!(withheld, ["limits.requests_per_minute"]);
    }
}
