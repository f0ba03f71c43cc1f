//! Owns the allowed range of every numeric setting. A value outside its range is a problem
//! and falls back to what the layers below (in the end the default) say, so no setting can
//! size an allocation, a wait or a loop beyond what the program was built for.

use serde_json::Value;

use super::layers::for_each_match;
use super::{Origin, Problem};

/// Dotted key (`*` matches one segment), inclusive minimum and maximum. README's settings
/// block states the same ranges (keep them in step); the tests below check that every default
/// is inside its range and that every numeric setting has one.
pub const RANGES: &[(&str, f64, f64)] = &[
    ("review.debounce_ms", 0.0, 60_000.0),
    ("review.max_file_size", 1.0, 268_435_456.0),
    ("review.max_findings_per_file", 1.0, 100_000.0),
    ("review.workers", 0.0, 256.0),
    ("llm.timeout_secs", 1.0, 3_600.0),
    ("llm.max_output_tokens", 1.0, 200_000.0),
    ("llm.batch_max_files", 1.0, 100.0),
    ("llm.batch_max_tokens", 1.0, 2_000_000.0),
    ("limits.requests_per_minute", 0.0, 100_000.0),
    ("limits.tokens_per_minute", 0.0, 100_000_000.0),
    ("limits.burst", 0.0, 10_000.0),
    ("limits.max_concurrency", 0.0, 1_024.0),
    ("limits.per_user_requests_per_minute", 0.0, 100_000.0),
    ("limits.per_user_burst", 0.0, 10_000.0),
    ("limits.per_tenant_requests_per_minute", 0.0, 1_000_000.0),
    ("limits.per_tenant_burst", 0.0, 100_000.0),
    ("limits.breaker_failures", 1.0, 10_000.0),
    ("limits.breaker_window_secs", 1.0, 86_400.0),
    ("limits.breaker_min_calls", 0.0, 1_000_000.0),
    ("limits.breaker_failure_percent", 1.0, 100.0),
    ("limits.breaker_open_secs", 0.0, 86_400.0),
    ("limits.breaker_max_open_secs", 0.0, 86_400.0),
    ("limits.retry_attempts", 1.0, 20.0),
    ("limits.retry_base_delay_ms", 0.0, 600_000.0),
    ("limits.retry_max_delay_ms", 0.0, 3_600_000.0),
    ("limits.throttle_recover_successes", 0.0, 10_000.0),
    ("limits.throttle_quiet_secs", 0.0, 86_400.0),
    ("budget.daily_token_budget", 0.0, 1e12),
    ("budget.daily_cost_budget_usd", 0.0, 1e6),
    ("budget.prices.*.input", 0.0, 1e6),
    ("budget.prices.*.output", 0.0, 1e6),
    ("cache.ttl_secs", 0.0, 315_360_000.0),
    ("cache.max_size_mb", 1.0, 1_048_576.0),
    ("cache.memory_entries", 0.0, 1_000_000.0),
];

/// Removes every out-of-range number from a layer, with one problem each.
pub fn enforce(value: &mut Value, origin: &Origin, problems: &mut Vec<Problem>) {
    for (pattern, min, max) in RANGES {
        for_each_match(value, pattern, &mut |table, key, path| {
            let Some(n) = table.get(key).and_then(Value::as_f64) else { return };
            if !(*min..=*max).contains(&n) {
                table.remove(key);
                problems.push(Problem::new(
                    origin,
                    format!("`{path}` = {n} is outside {min}..={max}; using the value below it (the default)"),
                ));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::layers::leaves;
    use serde_json::json;

    #[test]
    fn every_default_is_in_range_and_every_range_names_a_setting() {
        let mut defaults = serde_json::to_value(Config::default()).unwrap();
        let mut problems = Vec::new();
        enforce(&mut defaults, &Origin::Default, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let known: Vec<String> = leaves(&defaults).into_iter().map(|(k, _)| k).collect();
        for (key, ..) in RANGES.iter().filter(|(k, ..)| !k.contains('*')) {
            assert!(known.iter().any(|k| k == key), "{key} is not a setting");
        }
    }

    #[test]
    fn every_numeric_setting_has_a_range() {
        let defaults = serde_json::to_value(Config::default()).unwrap();
        for (key, v) in leaves(&defaults) {
            if v.is_number() {
                assert!(RANGES.iter().any(|(k, ..)| *k == key), "{key} has no range");
            }
        }
    }

    #[test]
    fn out_of_range_is_removed_with_a_problem() {
        let mut v = json!({"cache": {"memory_entries": 100_000_000_000u64, "ttl_secs": 5},
                           "budget": {"prices": {"m": {"input": -1.0, "output": 1.0}}}});
        let mut problems = Vec::new();
        enforce(&mut v, &Origin::Cli, &mut problems);
        assert_eq!(v, json!({"cache": {"ttl_secs": 5}, "budget": {"prices": {"m": {"output": 1.0}}}}));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[1].message.contains("cache.memory_entries"), "{problems:?}");
    }
}
