//! The value layout: `[FORMAT_VERSION: u8][created: unix secs, u64 LE][serde_json of Vec<Finding>]`.

use std::time::Duration;

use tracing::{debug, warn};

use super::{CacheKey, Tags};
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

/// When the value was stored, if it is of this format.
pub(super) fn created(value: &[u8]) -> Option<u64> {
    let header = value.get(..HEADER_LEN)?;
    (header[0] == FORMAT_VERSION).then(|| u64::from_le_bytes(header[1..].try_into().unwrap_or_default()))
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

/// What is kept about each cached entry besides its findings, in the `cache_meta` table:
/// `[created: u64 LE][last access: u64 LE][size of the value: u32 LE][serde_json of Tags]`.
/// Kept apart from the findings so that recording an access, expiring and evicting read and
/// write a few dozen bytes, not the findings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Meta {
    pub created: u64,
    pub last_access: u64,
    pub size: u32,
    pub tags: Tags,
}

const META_HEADER: usize = 8 + 8 + 4;

impl Meta {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(META_HEADER + 64);
        out.extend_from_slice(&self.created.to_le_bytes());
        out.extend_from_slice(&self.last_access.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        // Tags are plain strings: serializing them cannot fail.
        let _ = serde_json::to_writer(&mut out, &self.tags);
        out
    }

    /// `None` for a row this version cannot read; maintenance then drops the entry.
    pub(super) fn decode(bytes: &[u8]) -> Option<Meta> {
        let (header, tags) = bytes.split_at_checked(META_HEADER)?;
        Some(Meta {
            created: u64::from_le_bytes(header[0..8].try_into().ok()?),
            last_access: u64::from_le_bytes(header[8..16].try_into().ok()?),
            size: u32::from_le_bytes(header[16..20].try_into().ok()?),
            tags: serde_json::from_slice(tags).ok()?,
        })
    }
}

/// What the team tier stores: `[tags length: u32 LE][tags JSON][the value as in redb]`, so a
/// teammate's hit is written back to redb with its tags and stays invalidatable.
pub(super) fn team_value(tags: &Tags, value: &[u8]) -> Vec<u8> {
    let tags = serde_json::to_vec(tags).unwrap_or_default();
    let mut out = Vec::with_capacity(4 + tags.len() + value.len());
    out.extend_from_slice(&(tags.len() as u32).to_le_bytes());
    out.extend_from_slice(&tags);
    out.extend_from_slice(value);
    out
}

pub(super) fn split_team_value(bytes: &[u8]) -> Option<(Tags, Vec<u8>)> {
    let (len, rest) = bytes.split_at_checked(4)?;
    let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
    let (tags, value) = rest.split_at_checked(len)?;
    Some((serde_json::from_slice(tags).ok()?, value.to_vec()))
}
