//! The state the store's callers and its writer thread share: the entries not yet committed,
//! the decoded hot entries, access times to record, hit counters, and the guarded way to reach
//! the redb file (a failure there abandons the disk for the session instead of failing a call).

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lru::LruCache;
use redb::Database;
use tracing::warn;

use super::lease::{Lease, LeaseError};
use super::redis_backend::RedisBackend;
use super::writer::Slot;
use super::{CacheKey, StoreSettings, TEAM_CONNECT_WAIT, TEAM_TIMEOUT, Tags};
use crate::panics::panic_message;
use crate::review::finding::Finding;

/// What the caller's threads and the writer thread both use.
pub(crate) struct Shared {
    pub(super) ttl_secs: AtomicU64,
    pub(super) max_bytes: AtomicU64,
    pub(super) clock: Clock,
    /// `None` in memory-only mode.
    pub(super) lease: Option<Lease>,
    pub(super) team: Option<Arc<RedisBackend>>,
    /// Entries not yet committed. In memory-only mode, every entry.
    pub(super) pending: Mutex<Pending>,
    /// Decoded findings recently read or written, with their creation time.
    pub(super) hot: Mutex<Hot>,
    /// Keys read since the writer last recorded accesses, with when.
    pub(super) touched: Mutex<HashMap<CacheKey, u64>>,
    /// Cleared for good when redb panics or reports an error it cannot recover from.
    pub(super) disk_ok: AtomicBool,
    /// Set when the file turned out to be damaged after it opened; `Drop` moves it aside.
    pub(super) damaged: AtomicBool,
    pub(super) memory_hits: AtomicU64,
    pub(super) disk_hits: AtomicU64,
    pub(super) team_hits: AtomicU64,
    pub(super) team_rejected: AtomicU64,
    pub(super) misses: AtomicU64,
    /// Successful commits, for tests of the batching.
    pub(super) commits: AtomicU64,
}

/// Decoded findings by key, with when they were stored (for the TTL).
pub(super) type Hot = LruCache<CacheKey, (u64, Arc<Vec<Finding>>)>;

#[derive(Default)]
pub(crate) struct Pending {
    pub(super) next_seq: u64,
    pub(super) map: HashMap<Slot, PendingEntry>,
}

pub(crate) struct PendingEntry {
    /// Lets the writer tell whether the entry it committed is still the newest for its slot.
    pub(super) seq: u64,
    pub(super) value: Arc<[u8]>,
    pub(super) tags: Option<Tags>,
}

/// Seconds since the Unix epoch. Tests substitute a clock they move by hand.
#[derive(Clone, Default)]
pub(crate) struct Clock(pub(super) Option<Arc<AtomicU64>>);

impl Clock {
    pub(super) fn now(&self) -> u64 {
        match &self.0 {
            Some(manual) => manual.load(Ordering::Relaxed),
            None => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        }
    }
}

/// An LRU holding at most `cap` entries that allocates as entries arrive. `LruCache::new`
/// reserves room for `cap` up front, so a large `memory_entries` setting aborted the process
/// before it could answer; `resize` on an empty unbounded cache reserves nothing.
fn unallocated_lru(cap: NonZeroUsize) -> Hot {
    let mut lru = LruCache::unbounded();
    lru.resize(cap);
    lru
}

impl Shared {
    pub(super) fn new(settings: &StoreSettings, clock: Clock, lease: Option<Lease>) -> Shared {
        let hot = NonZeroUsize::new(settings.memory_entries).unwrap_or(NonZeroUsize::MIN);
        let team = settings.redis.as_ref().and_then(|r| {
            let team = RedisBackend::open_team(r, TEAM_TIMEOUT)?;
            team.wait_connected(TEAM_CONNECT_WAIT);
            Some(Arc::new(team))
        });
        Shared {
            team,
            ttl_secs: AtomicU64::new(settings.ttl.as_secs()),
            max_bytes: AtomicU64::new(settings.max_bytes),
            clock,
            disk_ok: AtomicBool::new(lease.is_some()),
            lease,
            pending: Mutex::default(),
            hot: Mutex::new(unallocated_lru(hot)),
            touched: Mutex::default(),
            damaged: AtomicBool::new(false),
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            team_hits: AtomicU64::new(0),
            team_rejected: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            commits: AtomicU64::new(0),
        }
    }

    pub(super) fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_secs.load(Ordering::Relaxed))
    }

    /// Nothing panics while holding these locks, but if something ever did, the maps are still
    /// consistent (every update is a single insert or remove), so poisoning is ignored.
    pub(super) fn lock_pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn lock_hot(&self) -> MutexGuard<'_, Hot> {
        self.hot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn touch(&self, key: CacheKey, now: u64) {
        if self.lease.is_some() {
            self.touched.lock().unwrap_or_else(PoisonError::into_inner).insert(key, now);
        }
    }

    /// Runs a read-only operation on the database, if there is one and it can be had within
    /// `patience`.
    pub(super) fn read<T>(
        &self,
        what: &str,
        patience: Duration,
        op: impl FnOnce(&Database) -> Result<T, redb::Error>,
    ) -> Option<T> {
        let db = self.database(what, patience)?;
        self.guard(what, || op(&db))
    }

    /// The database, unless the disk was given up on or another process holds it too long.
    pub(super) fn database(&self, what: &str, patience: Duration) -> Option<Arc<Database>> {
        let lease = self.lease.as_ref().filter(|_| self.disk_ok.load(Ordering::Relaxed))?;
        match lease.acquire(patience) {
            Ok(db) => Some(db),
            Err(LeaseError::Busy) => {
                tracing::debug!(operation = what, "the store is busy in another process; skipped");
                None
            }
            Err(LeaseError::Open(failure)) => {
                if failure.is_corrupt() {
                    self.damaged.store(true, Ordering::Relaxed);
                }
                self.abandon_disk(what, &failure.to_string());
                None
            }
        }
    }

    /// Runs a redb operation so that neither its error nor its panic reaches the caller. redb
    /// panics on some damaged pages (on more in debug builds, where its internal checks are
    /// assertions); after a panic, or an error that poisons the database for good, the file is
    /// abandoned for the rest of the session.
    pub(super) fn guard<T>(&self, what: &str, op: impl FnOnce() -> Result<T, redb::Error>) -> Option<T> {
        match catch_unwind(AssertUnwindSafe(op)) {
            Ok(Ok(value)) => Some(value),
            Ok(Err(err)) => {
                match err {
                    // Damage found after the open succeeded. Carrying on would repeat the error
                    // (and its warning) on every lookup that reaches the bad pages.
                    redb::Error::Corrupted(_) => {
                        self.damaged.store(true, Ordering::Relaxed);
                        self.abandon_disk(what, &err.to_string());
                    }
                    // The database refuses all further work after these.
                    redb::Error::PreviousIo | redb::Error::DatabaseClosed | redb::Error::LockPoisoned(_) => {
                        self.abandon_disk(what, &err.to_string());
                    }
                    _ => warn!(operation = what, error = %err, "cache storage error; treated as a miss"),
                }
                None
            }
            Err(panic) => {
                self.damaged.store(true, Ordering::Relaxed);
                self.abandon_disk(what, &panic_message(&*panic));
                None
            }
        }
    }

    pub(super) fn abandon_disk(&self, what: &str, error: &str) {
        if self.disk_ok.swap(false, Ordering::Relaxed) {
            warn!(operation = what, error, "the cache file failed; caching in memory only from now on");
        }
    }
}
