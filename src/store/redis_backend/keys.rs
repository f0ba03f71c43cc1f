//! Owns the Redis key layout of the team tier: cache entries, rate-limit buckets, and the SCAN
//! pattern that `clear` uses, so every process agrees on names without sharing code paths.

use std::fmt::Write as _;
use std::time::Duration;

/// `{namespace}:c:{64 hex digits}`. Hex rather than the raw 32 bytes keeps keys readable in
/// `redis-cli` and safe to paste into a `MATCH` pattern.
pub(super) fn cache(namespace: &str, key: &[u8; 32]) -> String {
    let mut out = String::with_capacity(namespace.len() + 3 + 64);
    out.push_str(namespace);
    out.push_str(":c:");
    for byte in key {
        // Writing into a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// `{namespace}:rl:{bucket}`.
pub(super) fn bucket(namespace: &str, bucket: &str) -> String {
    format!("{namespace}:rl:{bucket}")
}

/// The `SCAN MATCH` pattern for every cache key of `namespace`. The namespace is escaped because
/// Redis treats `* ? [ ] \` as glob syntax; without escaping, a namespace like `team*` would let
/// `clear` delete other teams' entries.
pub(super) fn cache_pattern(namespace: &str) -> String {
    let mut out = String::with_capacity(namespace.len() + 5);
    for ch in namespace.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push_str(":c:*");
    out
}

/// The first bytes of a key, enough to follow one entry through debug logs without writing
/// whole keys into them.
pub(super) fn short(key: &[u8; 32]) -> String {
    format!("{:02x}{:02x}{:02x}{:02x}", key[0], key[1], key[2], key[3])
}

/// `SET .. EX` takes whole seconds and rejects 0; rounding up means an entry never lives shorter
/// than the caller asked.
pub(super) fn ttl_secs(ttl: Duration) -> u64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_is_namespace_then_hex() {
        let mut key = [0u8; 32];
        key[0] = 0xab;
        key[31] = 0x01;
        let name = cache("team", &key);
        assert!(name.starts_with("team:c:ab00"));
        assert!(name.ends_with("0001"));
        assert_eq!(name.len(), "team:c:".len() + 64);
    }

    #[test]
    fn bucket_key_layout() {
        assert_eq!(bucket("team", "openai/gpt"), "team:rl:openai/gpt");
    }

    #[test]
    fn pattern_escapes_glob_syntax() {
        assert_eq!(cache_pattern("team"), "team:c:*");
        assert_eq!(cache_pattern("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\:c:*");
    }

    #[test]
    fn short_is_first_four_bytes() {
        let mut key = [0xffu8; 32];
        key[0] = 0x0a;
        assert_eq!(short(&key), "0affffff");
    }

    #[test]
    fn ttl_rounds_up_to_at_least_one_second() {
        assert_eq!(ttl_secs(Duration::ZERO), 1);
        assert_eq!(ttl_secs(Duration::from_millis(10)), 1);
        assert_eq!(ttl_secs(Duration::from_secs(1)), 1);
        assert_eq!(ttl_secs(Duration::from_millis(1500)), 2);
        assert_eq!(ttl_secs(Duration::from_secs(3600)), 3600);
    }
}
