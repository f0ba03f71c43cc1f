//! Owns persistence: everything review-lsp keeps between runs, in one redb file per workspace
//! (`<dir>/<first 16 hex digits of blake3(canonical workspace path)>.redb`).
//!
//! Tables:
//! - `cache`: [`CacheKey`] → `[format][created][findings JSON]`, the result cache;
//! - `cache_meta`: the same key → created, last access, size and [`Tags`], for expiry,
//!   least-recently-used eviction under the size cap, and `invalidate`;
//! - `records`: small named values that outlive the cache (the daily spend, `budget/<day>`);
//! - `reports`: scan artifacts (JSON findings, SARIF, a markdown summary); `history`: one row
//!   per review. Both keyed by a time-ordered id.
//!
//! How it behaves, and why:
//! - Reads run on the caller's thread. Hot entries come from an in-memory LRU of decoded
//!   findings; the rest from a redb read transaction (MVCC: a read never waits for the writer).
//! - Writes go to one background thread that commits in batches: a commit is an fsync, and the
//!   LSP loop must never wait on the disk. Until its batch is committed an entry is served from
//!   memory, so a get right after a put hits.
//! - Several processes (editor windows) share the file through a short-held [`lease`]: the
//!   holder yields it when another process asks, so every server keeps a persistent cache.
//! - Nothing here fails or panics outward. A file that cannot be used (unreadable, corrupt and
//!   impossible to move aside) leaves the store in memory; a failed read is a miss, a failed
//!   write is logged. Reviewing without a cache is slower; refusing to review would be a bug.

mod codec;
mod file;
mod key;
mod lease;
mod maintenance;
pub mod redis_backend;
mod reports;
mod shared;
mod writer;

use std::fmt;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition, TableError};
use serde::Serialize;
use tracing::warn;

pub use key::{CacheKey, Filter, Tags};
pub use maintenance::GcReport;
pub use reports::{HistoryRow, ReportEntry, StoredReport};

use crate::review::finding::Finding;
use codec::{decode, encode};
use file::{Opened, file_name, move_aside, open_or_recreate};
use lease::Lease;
use redis_backend::{RedisBackend, RedisStats};
use shared::{Clock, PendingEntry, Shared};
use writer::{Msg, Slot, Writer};

const CACHE: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("cache");
const CACHE_META: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("cache_meta");
const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
const REPORTS: TableDefinition<u64, &[u8]> = TableDefinition::new("reports");
const HISTORY: TableDefinition<u64, &[u8]> = TableDefinition::new("history");

/// Decides whether findings read from the team's Redis may be used: `Err` says why not.
pub type TeamCheck<'a> = &'a dyn Fn(&[Finding]) -> Result<(), &'static str>;

/// How long a read waits for another process to yield the file before it counts as a miss.
const READ_PATIENCE: Duration = Duration::from_millis(100);

/// `[cache]` limits, adjustable at run time (except the Redis link, fixed at open).
#[derive(Clone, Debug, PartialEq)]
pub struct StoreSettings {
    pub ttl: Duration,
    /// The cached findings' total size; least recently used entries go first beyond it.
    pub max_bytes: u64,
    /// Decoded entries kept in memory in front of redb.
    pub memory_entries: usize,
    /// The team tier: a Redis shared by every server and CI run of a team.
    pub redis: Option<RedisSettings>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisSettings {
    pub url: String,
    /// Key prefix, so one Redis can serve several teams or projects.
    pub namespace: String,
    /// `[cache] team_key_env`: the env var holding the team's secret, read when the store
    /// opens. Named but unset or empty, the team tier stays off (nothing unauthenticated is
    /// written or trusted when the user asked for authentication).
    pub key_env: Option<String>,
}

/// A lookup in Redis waits this long at most; then it is a miss and the review goes on.
const TEAM_TIMEOUT: Duration = Duration::from_millis(50);
/// Opening waits this long for Redis to answer at all; an unreachable one is then left to
/// reconnect in the background.
const TEAM_CONNECT_WAIT: Duration = Duration::from_millis(250);

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings { ttl: Duration::from_secs(3600), max_bytes: 256 << 20, memory_entries: 4096, redis: None }
    }
}

/// Counters and state, for `cache stats`, `showStats` and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Gets answered from memory (the hot LRU or not-yet-committed entries)...
    pub memory_hits: u64,
    /// ...and from the redb file, since this store was opened.
    pub disk_hits: u64,
    /// ...and from the team's Redis (then written back to the file).
    pub team_hits: u64,
    /// Entries the team's Redis returned that failed the caller's check (planted or corrupt
    /// findings); each was a miss.
    pub team_rejected: u64,
    /// Gets that found nothing usable: missing, expired, undecodable or the file busy.
    pub misses: u64,
    /// Entries stored, approximately: an entry queued for a commit may also be counted on disk.
    pub entries: u64,
    /// Bytes of findings on disk (from the metadata; `None` when the file was busy).
    pub bytes: Option<u64>,
    pub max_bytes: u64,
    /// The file behind the store; `None` when it runs in memory only.
    pub path: Option<PathBuf>,
    /// Whether entries are still being written to `path`.
    pub persistent: bool,
    /// The team tier's state and counters, when one is configured.
    pub team: Option<RedisStats>,
}

impl CacheStats {
    pub fn hits(&self) -> u64 {
        self.memory_hits + self.disk_hits + self.team_hits
    }
}

/// The store. `Send + Sync`; share it as `Arc<Store>`. Dropping the last one commits
/// everything put so far.
pub struct Store {
    shared: Arc<Shared>,
    /// `None` in memory-only mode; taken by `Drop`.
    writer: Option<Writer>,
}

impl Store {
    /// Opens (or creates) the store for `workspace` under `dir`. Never fails: see the module
    /// documentation. A corrupt file is moved aside to `<name>.corrupt-<unix secs>` (kept for a
    /// bug report) and a fresh one is created in its place.
    pub fn open(dir: &Path, workspace: &Path, settings: &StoreSettings) -> Store {
        Store::open_with_clock(dir, workspace, settings, Clock::default())
    }

    /// A store without a file: entries live as long as the `Store`.
    pub fn memory(settings: &StoreSettings) -> Store {
        Store { shared: Arc::new(Shared::new(settings, Clock::default(), None)), writer: None }
    }

    /// The team's Redis, for the shared rate limiter.
    pub fn team(&self) -> Option<&Arc<RedisBackend>> {
        self.shared.team.as_ref()
    }

    fn open_with_clock(dir: &Path, workspace: &Path, settings: &StoreSettings, clock: Clock) -> Store {
        let path = dir.join(file_name(workspace));
        let lease = match std::fs::create_dir_all(dir) {
            Ok(()) => open_or_recreate(&path).map(|opened| match opened {
                Opened::Mine(db) => Lease::new(&path, Some(db)),
                Opened::Held => Lease::new(&path, None),
            }),
            Err(err) => {
                warn!(dir = %dir.display(), error = %err, "cannot create the cache directory; caching in memory only");
                None
            }
        };
        let shared = Arc::new(Shared::new(settings, clock, lease));
        if shared.lease.is_none() {
            return Store { shared, writer: None };
        }
        match Writer::start(Arc::clone(&shared)) {
            Ok(writer) => Store { shared, writer: Some(writer) },
            Err(err) => {
                warn!(error = %err, "cannot start the cache writer thread; caching in memory only");
                shared.disk_ok.store(false, Ordering::Relaxed);
                Store { shared, writer: None }
            }
        }
    }

    /// New limits for every entry, stored or not: age is counted from when an entry was put.
    pub fn set_settings(&self, settings: &StoreSettings) {
        self.shared.ttl_secs.store(settings.ttl.as_secs(), Ordering::Relaxed);
        self.shared.max_bytes.store(settings.max_bytes, Ordering::Relaxed);
        if let Some(n) = NonZeroUsize::new(settings.memory_entries) {
            self.shared.lock_hot().resize(n);
        }
    }

    /// The findings stored under `key` in this machine's tiers, or `None` if there are none,
    /// they are older than the TTL, they cannot be decoded, or another process held the file
    /// too long. The team tier is not asked: its entries are untrusted, see [`Store::get_checked`].
    pub fn get(&self, key: &CacheKey) -> Option<Vec<Finding>> {
        self.lookup(key, None)
    }

    /// [`Store::get`], then the team's Redis, whose entries are used (and kept locally) only if
    /// `check` accepts them: anyone who can write to that Redis can plant them. A rejected
    /// entry is a miss, counted in `team_rejected`.
    pub fn get_checked(&self, key: &CacheKey, check: TeamCheck<'_>) -> Option<Vec<Finding>> {
        self.lookup(key, Some(check))
    }

    fn lookup(&self, key: &CacheKey, team_check: Option<TeamCheck<'_>>) -> Option<Vec<Finding>> {
        let shared = &*self.shared;
        let now = shared.clock.now();
        let ttl = shared.ttl();
        let hot = shared.lock_hot().get(key).cloned();
        if let Some((created, findings)) = hot {
            if Duration::from_secs(now.saturating_sub(created)) <= ttl {
                shared.memory_hits.fetch_add(1, Ordering::Relaxed);
                crate::metrics::cache_hit("memory");
                shared.touch(*key, now);
                return Some(findings.as_ref().clone());
            }
        }
        let queued = shared.lock_pending().map.get(&Slot::Findings(*key)).map(|e| Arc::clone(&e.value));
        if let Some(value) = queued {
            let found = decode(key, &value, now, ttl);
            if found.is_some() {
                shared.memory_hits.fetch_add(1, Ordering::Relaxed);
                crate::metrics::cache_hit("memory");
            } else {
                shared.misses.fetch_add(1, Ordering::Relaxed);
                crate::metrics::cache_miss();
            }
            return found;
        }
        let from_disk = shared.read("read", READ_PATIENCE, |db| {
            let txn = db.begin_read()?;
            let table = match txn.open_table(CACHE) {
                Ok(table) => table,
                // Nothing has been committed to this file yet.
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(err) => return Err(err.into()),
            };
            Ok(table.get(&key.0)?.map(|v| v.value().to_vec()))
        });
        let found = from_disk.flatten().and_then(|value| {
            let created = codec::created(&value)?;
            decode(key, &value, now, ttl).map(|f| (created, f))
        });
        if let Some((created, findings)) = found {
            shared.disk_hits.fetch_add(1, Ordering::Relaxed);
            crate::metrics::cache_hit("disk");
            shared.touch(*key, now);
            shared.lock_hot().put(*key, (created, Arc::new(findings.clone())));
            return Some(findings);
        }
        if let Some(found) = team_check.and_then(|check| self.from_team(key, now, ttl, check)) {
            return Some(found);
        }
        shared.misses.fetch_add(1, Ordering::Relaxed);
        crate::metrics::cache_miss();
        None
    }

    /// The second level: a teammate's (or CI's) result, written back to the file so the next
    /// lookup is local.
    fn from_team(&self, key: &CacheKey, now: u64, ttl: Duration, check: TeamCheck<'_>) -> Option<Vec<Finding>> {
        let shared = &*self.shared;
        let (tags, value) = codec::split_team_value(&shared.team.as_ref()?.get(&key.0)?)?;
        let created = codec::created(&value)?;
        let findings = decode(key, &value, now, ttl)?;
        if let Err(why) = check(&findings) {
            shared.team_rejected.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(key = key.short(), reason = why, "rejected an entry from the team's Redis");
            return None;
        }
        shared.team_hits.fetch_add(1, Ordering::Relaxed);
        crate::metrics::cache_hit("team");
        shared.lock_hot().put(*key, (created, Arc::new(findings.clone())));
        self.queue(Slot::Findings(*key), value.into(), Some(tags));
        Some(findings)
    }

    /// Stores `findings` under `key`, replacing what was there. Returns at once: the write is
    /// committed by the background writer, and a get sees it immediately from memory.
    pub fn put(&self, key: CacheKey, findings: &[Finding], tags: Tags) {
        let now = self.shared.clock.now();
        let Some(value) = encode(now, findings) else {
            return;
        };
        self.shared.lock_hot().put(key, (now, Arc::new(findings.to_vec())));
        if let Some(team) = &self.shared.team {
            team.put(&key.0, &codec::team_value(&tags, &value), self.shared.ttl());
        }
        self.queue(Slot::Findings(key), value.into(), Some(tags));
    }

    /// The record stored under `name` by [`Store::put_record`]. Records do not expire and
    /// `clear` keeps them.
    pub fn get_record(&self, name: &str) -> Option<Vec<u8>> {
        let shared = &*self.shared;
        if let Some(entry) = shared.lock_pending().map.get(&Slot::Record(name.to_string())) {
            return Some(entry.value.to_vec());
        }
        // The spend must be read even when another process holds the file for a while.
        let read = shared.read("read record", Duration::from_secs(2), |db| {
            let txn = db.begin_read()?;
            let table = match txn.open_table(RECORDS) {
                Ok(table) => table,
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(err) => return Err(err.into()),
            };
            Ok(table.get(name)?.map(|v| v.value().to_vec()))
        });
        read.flatten()
    }

    /// Stores a record; like `put`, it returns at once and is committed in the background.
    pub fn put_record(&self, name: &str, value: &[u8]) {
        self.queue(Slot::Record(name.to_string()), value.into(), None);
    }

    fn queue(&self, slot: Slot, value: Arc<[u8]>, tags: Option<Tags>) {
        let mut pending = self.shared.lock_pending();
        let seq = pending.next_seq;
        pending.next_seq += 1;
        pending.map.insert(slot.clone(), PendingEntry { seq, value: Arc::clone(&value), tags: tags.clone() });
        // Sent under the lock so the channel sees puts in the order the map does; see `clear`.
        // The channel is unbounded, so this never waits.
        if let Some(writer) = self.live_writer() {
            if !writer.send(Msg::Put { slot, seq, value, tags }) {
                warn!("the cache writer has stopped; caching in memory only");
                self.shared.disk_ok.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Blocks until every put made before this call is committed to disk (or has failed and
    /// been logged). Returns at once in memory-only mode.
    pub fn flush(&self) {
        if let Some(writer) = &self.writer {
            let (done_tx, done_rx) = mpsc::sync_channel(1);
            if writer.send(Msg::Flush(done_tx)) {
                // An error means the writer has exited, so there is nothing left to wait for.
                let _ = done_rx.recv();
            }
        }
    }

    /// Drops every cached result, in memory and on disk. Records, reports and history stay.
    pub fn clear(&self) -> anyhow::Result<()> {
        self.shared.lock_hot().clear();
        let done_rx = {
            let mut pending = self.shared.lock_pending();
            pending.map.retain(|slot, _| !matches!(slot, Slot::Findings(_)));
            let Some(writer) = self.live_writer() else {
                if self.writer.is_some() && !self.shared.damaged.load(Ordering::Relaxed) {
                    anyhow::bail!("the cache file is out of use after an earlier error; it was not cleared");
                }
                return Ok(());
            };
            // Queued while holding the lock, like puts: every put the map lost above is ahead
            // of this message (the writer drops it), and every later put is behind it.
            let (done_tx, done_rx) = mpsc::sync_channel(1);
            if !writer.send(Msg::Clear(done_tx)) {
                anyhow::bail!("the cache writer has stopped; the cache file was not cleared");
            }
            done_rx
        };
        match done_rx.recv() {
            Ok(result) => result.map_err(|e| anyhow::anyhow!("cannot clear the cache file: {e}")),
            Err(_) => anyhow::bail!("the cache writer has stopped; the cache file was not cleared"),
        }
    }

    /// Drops the cached results whose tags match `filter`; returns how many.
    pub fn invalidate(&self, filter: &Filter) -> anyhow::Result<u64> {
        self.shared.lock_hot().clear();
        let mut dropped: std::collections::HashSet<[u8; 32]> = std::collections::HashSet::new();
        self.shared.lock_pending().map.retain(|slot, e| match slot {
            Slot::Findings(key) if e.tags.as_ref().is_some_and(|t| filter.matches(t)) => {
                dropped.insert(key.0);
                false
            }
            _ => true,
        });
        let Some(writer) = self.live_writer() else {
            return Ok(dropped.len() as u64);
        };
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        if !writer.send(Msg::Invalidate(filter.clone(), done_tx)) {
            anyhow::bail!("the cache writer has stopped; nothing was invalidated on disk");
        }
        let on_disk = done_rx.recv().map_err(|_| anyhow::anyhow!("the cache writer has stopped"))?;
        let keys = on_disk.map_err(|e| anyhow::anyhow!("cannot invalidate: {e}"))?;
        // A pending entry may have been committed before the writer saw the filter.
        dropped.extend(keys);
        // The team's copies of what matched here go too; entries only others have stored are
        // not tagged in Redis and stay until their TTL.
        if let Some(team) = &self.shared.team {
            team.delete(&dropped.iter().copied().collect::<Vec<_>>());
        }
        Ok(dropped.len() as u64)
    }

    /// Expires old entries and evicts the least recently used beyond the size cap now (the
    /// writer also does this by itself as the cache grows).
    pub fn gc(&self) -> anyhow::Result<GcReport> {
        let Some(writer) = self.live_writer() else {
            return Ok(GcReport::default());
        };
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        if !writer.send(Msg::Gc(done_tx)) {
            anyhow::bail!("the cache writer has stopped");
        }
        done_rx.recv().map_err(|_| anyhow::anyhow!("the cache writer has stopped"))?.map_err(|e| anyhow::anyhow!(e))
    }

    /// Counters since this store was opened, and the entry count and size on disk.
    pub fn stats(&self) -> CacheStats {
        let shared = &*self.shared;
        let queued = shared.lock_pending().map.keys().filter(|s| matches!(s, Slot::Findings(_))).count() as u64;
        let on_disk = shared.read("count", READ_PATIENCE, |db| {
            let txn = db.begin_read()?;
            let entries = match txn.open_table(CACHE) {
                Ok(table) => table.len()?,
                Err(TableError::TableDoesNotExist(_)) => 0,
                Err(err) => return Err(err.into()),
            };
            Ok((entries, maintenance::total_bytes(&txn)?))
        });
        CacheStats {
            memory_hits: shared.memory_hits.load(Ordering::Relaxed),
            disk_hits: shared.disk_hits.load(Ordering::Relaxed),
            team_hits: shared.team_hits.load(Ordering::Relaxed),
            team_rejected: shared.team_rejected.load(Ordering::Relaxed),
            misses: shared.misses.load(Ordering::Relaxed),
            entries: queued + on_disk.map_or(0, |(n, _)| n),
            bytes: on_disk.map(|(_, b)| b),
            max_bytes: shared.max_bytes.load(Ordering::Relaxed),
            path: self.path().map(Path::to_path_buf),
            persistent: self.live_writer().is_some(),
            team: shared.team.as_ref().map(|t| t.stats()),
        }
    }

    /// The file behind the store; `None` in memory-only mode (including the fallback).
    pub fn path(&self) -> Option<&Path> {
        self.shared.lease.as_ref().filter(|_| self.writer.is_some()).map(|l| l.path())
    }

    /// The writer, unless there is none or the disk has been given up on.
    fn live_writer(&self) -> Option<&Writer> {
        self.writer.as_ref().filter(|_| self.shared.disk_ok.load(Ordering::Relaxed))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.stop();
        }
        let Some(lease) = &self.shared.lease else { return };
        let db = lease.close();
        if !self.shared.damaged.load(Ordering::Relaxed) {
            return;
        }
        // After a panic inside redb even the close may panic.
        if let Some(db) = db {
            let _ = catch_unwind(AssertUnwindSafe(|| drop(db)));
        }
        let path = lease.path();
        match move_aside(path) {
            Ok(aside) => warn!(
                path = %path.display(), moved_to = %aside.display(),
                "the cache file was found damaged during this session; moved it aside so the next one starts fresh"
            ),
            Err(err) => warn!(path = %path.display(), error = %err, "cannot move the damaged cache file aside"),
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path())
            .field("persistent", &self.live_writer().is_some())
            .field("ttl", &self.shared.ttl())
            .finish_non_exhaustive()
    }
}

// The engine, server and CLI share one store across threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Store>();
};

#[cfg(test)]
mod tests;
