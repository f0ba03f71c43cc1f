//! Owns keeping the store bounded: expiry by TTL, the size cap with least-recently-used
//! eviction, invalidation by tags, and the retention of reports and history.
//!
//! The LRU is approximate, by design: each entry's last access is stored in `cache_meta` at
//! minute granularity (see the writer), and eviction sorts entries by it. Exact LRU would turn
//! every read into a write; this turns at most one read per entry per minute into one.
//! Eviction stops at 90 % of the cap, so a cache at its limit is not trimmed after every commit.

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, TableError, WriteTransaction};
use serde::Serialize;

use super::codec::Meta;
use super::{CACHE, CACHE_META, Filter, HISTORY, REPORTS};

/// Scan reports kept; older ones are dropped.
pub(super) const KEEP_REPORTS: u64 = 100;
/// History rows kept.
pub(super) const KEEP_HISTORY: u64 = 20_000;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    pub expired: u64,
    pub evicted: u64,
    /// Entries and bytes left.
    pub entries: u64,
    pub bytes: u64,
}

type MetaRow = ([u8; 32], Option<Meta>);

/// Every row of `cache_meta`; a row this version cannot read comes back as `None` (and is
/// dropped with its entry by `gc`).
fn rows(txn: &WriteTransaction) -> Result<Vec<MetaRow>, redb::Error> {
    let meta = txn.open_table(CACHE_META)?;
    let mut out = Vec::new();
    for row in meta.iter()? {
        let (k, v) = row?;
        out.push((*k.value(), Meta::decode(v.value())));
    }
    Ok(out)
}

fn remove(txn: &WriteTransaction, keys: &[[u8; 32]]) -> Result<(), redb::Error> {
    let mut cache = txn.open_table(CACHE)?;
    let mut meta = txn.open_table(CACHE_META)?;
    for key in keys {
        cache.remove(key)?;
        meta.remove(key)?;
    }
    Ok(())
}

pub(super) fn gc(txn: &WriteTransaction, now: u64, ttl: u64, max_bytes: u64) -> Result<GcReport, redb::Error> {
    let mut live = Vec::new();
    let mut doomed = Vec::new();
    for (key, meta) in rows(txn)? {
        match meta {
            Some(m) if now.saturating_sub(m.created) <= ttl => live.push((key, m)),
            _ => doomed.push(key),
        }
    }
    let expired = doomed.len() as u64;
    let mut bytes: u64 = live.iter().map(|(_, m)| u64::from(m.size)).sum();
    let mut evicted = 0;
    if bytes > max_bytes {
        live.sort_by_key(|(_, m)| m.last_access);
        let target = max_bytes / 10 * 9;
        let mut cut = 0;
        while bytes > target && cut < live.len() {
            bytes -= u64::from(live[cut].1.size);
            doomed.push(live[cut].0);
            cut += 1;
        }
        evicted = cut as u64;
        live.drain(..cut);
    }
    remove(txn, &doomed)?;
    trim_oldest(txn, REPORTS, KEEP_REPORTS)?;
    trim_oldest(txn, HISTORY, KEEP_HISTORY)?;
    Ok(GcReport { expired, evicted, entries: live.len() as u64, bytes })
}

/// Drops the oldest rows of an id-keyed table beyond `keep`.
fn trim_oldest(txn: &WriteTransaction, table: redb::TableDefinition<u64, &[u8]>, keep: u64) -> Result<(), redb::Error> {
    let mut t = txn.open_table(table)?;
    let len = t.len()?;
    if len <= keep {
        return Ok(());
    }
    let cut: Vec<u64> =
        t.iter()?.take((len - keep) as usize).map(|r| r.map(|(k, _)| k.value())).collect::<Result<_, _>>()?;
    for id in cut {
        t.remove(id)?;
    }
    Ok(())
}

/// Drops the matching entries; returns their keys.
pub(super) fn invalidate(txn: &WriteTransaction, filter: &Filter) -> Result<Vec<[u8; 32]>, redb::Error> {
    let doomed: Vec<[u8; 32]> = rows(txn)?
        .into_iter()
        .filter(|(_, m)| m.as_ref().is_some_and(|m| filter.matches(&m.tags)))
        .map(|(k, _)| k)
        .collect();
    remove(txn, &doomed)?;
    Ok(doomed)
}

/// The size of the cached findings, from their metadata.
pub(super) fn total_bytes(txn: &ReadTransaction) -> Result<u64, redb::Error> {
    let meta = match txn.open_table(CACHE_META) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut total = 0;
    for row in meta.iter()? {
        let (_, v) = row?;
        total += Meta::decode(v.value()).map_or(0, |m| u64::from(m.size));
    }
    Ok(total)
}
