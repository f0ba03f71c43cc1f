//! The value layout: `[FORMAT_VERSION: u8][created: unix secs, u64 LE][serde_json of Vec<Finding>]`.

use std::time::Duration;

use tracing::{debug, warn};

use super::CacheKey;
use crate::review::finding::Finding;

/// Bumped whenever the value layout or the meaning of its JSON changes. A value of another
/// version is a miss (and is overwritten by the next put), so old files need no migration.
pub(super) const FORMAT_VERSION: u8 = 1;
/// Version byte + creation time.
pub(super) const HEADER_LEN: usize = 1 + 8;

pub(super) fn encode(created: u64, findings: &[Finding]) -> Option<Vec<u8>> {
    let mut value = Vec::with_capacity(HEADER_LEN + 128 * findings.len());
    value.push(FORMAT_VERSION);
    value.extend_from_slice(&created.to_le_bytes());
    match serde_json::to_writer(&mut value, findings) {
        Ok(()) => Some(value),
        Err(err) => {
            warn!(error = %err, "cannot encode findings for the cache; not cached");
            None
        }
    }
}

/// The findings in `value`, unless it has expired or cannot be decoded. Undecodable values are
/// expected after a format change, so they are logged at debug level only.
pub(super) fn decode(key: &CacheKey, value: &[u8], now: u64, ttl: Duration) -> Option<Vec<Finding>> {
    let Some((header, json)) = value.split_at_checked(HEADER_LEN) else {
        debug!(key = key.short(), len = value.len(), "cache value too short; treated as a miss");
        return None;
    };
    if header[0] != FORMAT_VERSION {
        debug!(key = key.short(), version = header[0], "cache value of another format; treated as a miss");
        return None;
    }
    let created = u64::from_le_bytes(header[1..].try_into().ok()?);
    // A clock that went backwards makes an entry young, not invalid.
    if Duration::from_secs(now.saturating_sub(created)) > ttl {
        return None;
    }
    match serde_json::from_slice(json) {
        Ok(findings) => Some(findings),
        Err(err) => {
            debug!(key = key.short(), error = %err, "cannot decode a cached value; treated as a miss");
            None
        }
    }
}
