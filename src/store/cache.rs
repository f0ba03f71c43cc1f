//! The result cache: the findings of one review, keyed by [`CacheKey`], kept in one redb file
//! per workspace.
//!
//! Layout: `<dir>/<first 16 hex digits of blake3(canonical workspace path)>.redb`, holding one
//! table, `findings`, from the 32-byte key to
//! `[FORMAT_VERSION: u8][created: unix secs, u64 LE][serde_json of Vec<Finding>]`.
//!
//! How it behaves, and why:
//! - Reads run on the caller's thread, in a redb read transaction. redb is MVCC, so a read never
//!   waits for the writer, and a warm lookup costs microseconds.
//! - Writes are handed to one background thread and committed in batches. A commit is an fsync;
//!   paying one per file would make a cold scan of a large workspace disk-bound, and the LSP loop
//!   must never wait on the disk at all. Until its batch is committed, an entry is served from a
//!   small in-memory map, so a get right after a put hits.
//! - Nothing here fails or panics outward. A cache that cannot open its file (another process
//!   has it, it is unreadable, it is corrupt) runs in memory; a read or write that fails is a miss
//!   or a no-op, logged. Reviewing without a cache is slower; refusing to review because of one
//!   would be a bug.

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition, TableError};
use tracing::{debug, warn};

use crate::panics::panic_message;
use crate::review::finding::Finding;

const TABLE: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("findings");
/// Small named values that are not cached results and so survive `clear` and the TTL: the
/// daily spend counters, for one.
const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");

/// The writer commits once this many entries are queued...
const MAX_BATCH: usize = 512;
/// ...or once the oldest queued entry has waited this long. Committing as soon as the channel
/// runs dry would fsync once per result whenever reviews finish more slowly than a commit takes,
/// which is the common case; a short linger bounds commits to a few per second instead. Entries
/// are readable from memory meanwhile, and losing the last 100 ms of a cache to a crash is
/// harmless.
const MAX_COMMIT_DELAY: Duration = Duration::from_millis(100);

/// Identifies one cached review. The engine derives it from everything that determines the
/// result: the content hash, the agent, the source/model and the rules/prompt version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey(pub [u8; 32]);

impl CacheKey {
    /// Hashes `parts` with blake3, each prefixed by its length, so that part boundaries matter:
    /// `["ab", "c"]` and `["a", "bc"]` give different keys.
    pub fn derive(parts: &[&[u8]]) -> CacheKey {
        // A derive-key context keeps these hashes apart from any other blake3 use in the crate
        // (content hashes among them), and is the place to version the key scheme.
        let mut hasher = blake3::Hasher::new_derive_key("review-lsp 2025 result cache key v1");
        for part in parts {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        CacheKey(*hasher.finalize().as_bytes())
    }

    /// The first bytes in hex, enough to tell keys apart in logs.
    fn short(&self) -> String {
        self.0[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A snapshot of the cache's counters, for `--stats` output and the server's status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Gets that returned findings, since this `Cache` was created.
    pub hits: u64,
    /// Gets that found nothing usable: missing, expired or undecodable.
    pub misses: u64,
    /// Entries stored, approximately: an entry queued for a commit may also be counted on disk.
    pub entries: u64,
    /// The file behind the cache; `None` when it runs in memory only.
    pub path: Option<PathBuf>,
    /// Whether entries are still being written to `path`. False in memory-only mode, and after a
    /// storage failure made the cache stop using its file.
    pub persistent: bool,
}

/// The result cache. `Send + Sync`; share it as `Arc<Cache>`. Dropping the last one commits
/// everything put so far.
pub struct Cache {
    shared: Arc<Shared>,
    /// `None` in memory-only mode; taken by `Drop`.
    writer: Option<Writer>,
    path: Option<PathBuf>,
}

/// What the caller's threads and the writer thread both use.
struct Shared {
    /// Seconds; a settings change adjusts it in place.
    ttl_secs: AtomicU64,
    clock: Clock,
    /// Entries not yet committed. In memory-only mode, every entry.
    pending: Mutex<Pending>,
    db: Option<Database>,
    /// Cleared for good when redb panics or reports an error it cannot recover from: the
    /// database may be poisoned, and the cache carries on in memory.
    disk_ok: AtomicBool,
    /// Set when the file turned out to be damaged after it opened; `Drop` moves it aside so the
    /// next run starts fresh instead of tripping over the same pages.
    damaged: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Successful commits, for tests of the batching.
    commits: AtomicU64,
}

#[derive(Default)]
struct Pending {
    next_seq: u64,
    map: HashMap<Slot, PendingEntry>,
}

/// Where a pending value goes: the findings table or the records table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Slot {
    Findings(CacheKey),
    Record(String),
}

struct PendingEntry {
    /// Lets the writer tell whether the entry it committed is still the newest for its key.
    seq: u64,
    value: Arc<[u8]>,
}

struct Writer {
    tx: mpsc::Sender<Msg>,
    thread: JoinHandle<()>,
}

enum Msg {
    Put { slot: Slot, seq: u64, value: Arc<[u8]> },
    Flush(mpsc::SyncSender<()>),
    Clear(mpsc::SyncSender<Result<(), String>>),
}

/// Seconds since the Unix epoch. Tests substitute a clock they move by hand.
#[derive(Clone, Default)]
struct Clock(Option<Arc<AtomicU64>>);

impl Clock {
    fn now(&self) -> u64 {
        match &self.0 {
            Some(manual) => manual.load(Ordering::Relaxed),
            None => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        }
    }
}

impl Cache {
    /// Opens (or creates) the cache file for `workspace` under `dir`:
    /// `<dir>/<first 16 hex of blake3(canonical workspace path)>.redb`.
    ///
    /// Never fails. The cache is an optimisation, so a file another process holds, an unreadable
    /// one or a corrupt one costs speed, never the review: it logs a warning and runs in memory.
    /// A corrupt file is moved aside to `<name>.corrupt-<unix secs>` (kept, not deleted, for a
    /// bug report) and a fresh one is created in its place.
    pub fn open(dir: &Path, workspace: &Path, ttl: Duration) -> Cache {
        Cache::open_with_clock(dir, workspace, ttl, Clock::default())
    }

    /// A cache without a file: entries live as long as the `Cache`.
    pub fn memory(ttl: Duration) -> Cache {
        Cache::memory_with_clock(ttl, Clock::default())
    }

    fn memory_with_clock(ttl: Duration, clock: Clock) -> Cache {
        Cache { shared: Arc::new(Shared::new(ttl, clock, None)), writer: None, path: None }
    }

    fn open_with_clock(dir: &Path, workspace: &Path, ttl: Duration, clock: Clock) -> Cache {
        let path = dir.join(file_name(workspace));
        let db = match std::fs::create_dir_all(dir) {
            Ok(()) => open_or_recreate(&path),
            Err(err) => {
                warn!(dir = %dir.display(), error = %err, "cannot create the cache directory; caching in memory only");
                None
            }
        };
        let Some(db) = db else {
            return Cache::memory_with_clock(ttl, clock);
        };

        let shared = Arc::new(Shared::new(ttl, clock, Some(db)));
        let (tx, rx) = mpsc::channel();
        let for_writer = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("review-lsp-cache-writer".into())
            .spawn(move || run_writer(&for_writer, &rx));
        match spawned {
            Ok(thread) => Cache { shared, writer: Some(Writer { tx, thread }), path: Some(path) },
            Err(err) => {
                warn!(error = %err, "cannot start the cache writer thread; caching in memory only");
                // Dropping `shared` closes the database and releases its lock.
                Cache::memory_with_clock(ttl, Clock::clone(&shared.clock))
            }
        }
    }

    /// The findings stored under `key`, or `None` if there are none, they are older than the
    /// TTL, or they cannot be decoded (an old format, a damaged value).
    pub fn get(&self, key: &CacheKey) -> Option<Vec<Finding>> {
        let found = self.lookup(key);
        let counter = if found.is_some() { &self.shared.hits } else { &self.shared.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn lookup(&self, key: &CacheKey) -> Option<Vec<Finding>> {
        let shared = &*self.shared;
        let now = shared.clock.now();
        // Clone the Arc and let go of the lock: decoding happens outside it.
        let queued = shared.lock_pending().map.get(&Slot::Findings(*key)).map(|e| Arc::clone(&e.value));
        if let Some(value) = queued {
            return decode(key, &value, now, shared.ttl());
        }
        let db = shared.disk()?;
        let read = shared.guard("read", || {
            let txn = db.begin_read()?;
            let table = match txn.open_table(TABLE) {
                Ok(table) => table,
                // Nothing has been committed to this file yet.
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(err) => return Err(err.into()),
            };
            Ok(table.get(&key.0)?.map(|value| decode(key, value.value(), now, shared.ttl())))
        });
        read.flatten().flatten()
    }

    /// Stores `findings` under `key`, replacing what was there. Returns at once: the write is
    /// committed by the background writer, and a get sees it immediately from memory.
    pub fn put(&self, key: CacheKey, findings: &[Finding]) {
        let Some(value) = encode(self.shared.clock.now(), findings) else {
            return;
        };
        self.queue(Slot::Findings(key), value.into());
    }

    /// The record stored under `name` by [`Cache::put_record`], if any. Records do not expire
    /// and `clear` keeps them.
    pub fn get_record(&self, name: &str) -> Option<Vec<u8>> {
        let shared = &*self.shared;
        let slot = Slot::Record(name.to_string());
        if let Some(entry) = shared.lock_pending().map.get(&slot) {
            return Some(entry.value.to_vec());
        }
        let db = shared.disk()?;
        let read = shared.guard("read record", || {
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
        self.queue(Slot::Record(name.to_string()), value.into());
    }

    fn queue(&self, slot: Slot, value: Arc<[u8]>) {
        let mut pending = self.shared.lock_pending();
        let seq = pending.next_seq;
        pending.next_seq += 1;
        pending.map.insert(slot.clone(), PendingEntry { seq, value: Arc::clone(&value) });
        // Sent under the lock so the channel sees puts in the order the map does; see `clear`.
        // The channel is unbounded, so this never waits.
        if let Some(writer) = self.live_writer() {
            if writer.tx.send(Msg::Put { slot, seq, value }).is_err() {
                // The writer is gone (it cannot normally be); the entry stays in memory.
                warn!("the cache writer has stopped; caching in memory only");
                self.shared.disk_ok.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Blocks until every put made before this call is committed to disk (or has failed and
    /// been logged). Returns at once in memory-only mode.
    pub fn flush(&self) {
        let Some(writer) = &self.writer else {
            return;
        };
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        if writer.tx.send(Msg::Flush(done_tx)).is_ok() {
            // An error means the writer has exited, so there is nothing left to wait for.
            let _ = done_rx.recv();
        }
    }

    /// Drops every cached result, in memory and on disk. Records stay.
    pub fn clear(&self) -> anyhow::Result<()> {
        let done_rx = {
            let mut pending = self.shared.lock_pending();
            pending.map.retain(|slot, _| matches!(slot, Slot::Record(_)));
            let Some(writer) = self.live_writer() else {
                // A damaged file is moved aside when the cache is dropped, which clears it too.
                if self.writer.is_some() && !self.shared.damaged.load(Ordering::Relaxed) {
                    anyhow::bail!("the cache file is out of use after an earlier error; it was not cleared");
                }
                return Ok(());
            };
            // Queued while holding the lock, like puts: every put the map lost above is ahead
            // of this message (the writer drops or overwrites it), and every later put is
            // behind it, so it survives.
            let (done_tx, done_rx) = mpsc::sync_channel(1);
            if writer.tx.send(Msg::Clear(done_tx)).is_err() {
                anyhow::bail!("the cache writer has stopped; the cache file was not cleared");
            }
            done_rx
        };
        match done_rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(anyhow::anyhow!("cannot clear the cache file: {err}")),
            Err(_) => anyhow::bail!("the cache writer has stopped; the cache file was not cleared"),
        }
    }

    /// Counters since this `Cache` was created, and the entry count (redb keeps table lengths,
    /// so this is cheap).
    pub fn stats(&self) -> CacheStats {
        let shared = &*self.shared;
        let queued = shared.lock_pending().map.keys().filter(|s| matches!(s, Slot::Findings(_))).count() as u64;
        let on_disk = shared.disk().and_then(|db| {
            shared.guard("count", || {
                let txn = db.begin_read()?;
                match txn.open_table(TABLE) {
                    Ok(table) => Ok(table.len()?),
                    Err(TableError::TableDoesNotExist(_)) => Ok(0),
                    Err(err) => Err(err.into()),
                }
            })
        });
        CacheStats {
            hits: shared.hits.load(Ordering::Relaxed),
            misses: shared.misses.load(Ordering::Relaxed),
            entries: queued + on_disk.unwrap_or(0),
            path: self.path.clone(),
            persistent: self.live_writer().is_some(),
        }
    }

    /// A new TTL for every entry, stored or not: age is counted from when an entry was put.
    pub fn set_ttl(&self, ttl: Duration) {
        self.shared.ttl_secs.store(ttl.as_secs(), Ordering::Relaxed);
    }

    /// The file behind the cache; `None` in memory-only mode (including the fallback).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The writer, unless there is none or the disk has been given up on.
    fn live_writer(&self) -> Option<&Writer> {
        self.writer.as_ref().filter(|_| self.shared.disk_ok.load(Ordering::Relaxed))
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        if let Some(Writer { tx, thread }) = self.writer.take() {
            // Closing the channel is the shutdown signal: the writer still receives everything
            // queued before it, commits, and exits. Joining it means that, once the drop is over,
            // the commit is done and (with the writer's reference gone, so the database closes
            // with this `Cache`) the file lock is released: the workspace can be reopened at once.
            drop(tx);
            if thread.join().is_err() {
                warn!("the cache writer panicked; recent cache entries may be lost");
            }
        }
        if !self.shared.damaged.load(Ordering::Relaxed) {
            return;
        }
        // The writer has exited, so this is the last reference and the database can be closed
        // here, before its file is moved. After a panic inside redb even the close may panic.
        let (Some(shared), Some(path)) = (Arc::get_mut(&mut self.shared), &self.path) else {
            return;
        };
        if let Some(db) = shared.db.take() {
            let _ = catch_unwind(AssertUnwindSafe(|| drop(db)));
        }
        match move_aside(path) {
            Ok(aside) => warn!(
                path = %path.display(), moved_to = %aside.display(),
                "the cache file was found damaged during this session; moved it aside so the next one starts fresh"
            ),
            Err(err) => {
                warn!(path = %path.display(), error = %err, "cannot move the damaged cache file aside")
            }
        }
    }
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("path", &self.path)
            .field("persistent", &self.live_writer().is_some())
            .field("ttl", &self.shared.ttl())
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn new(ttl: Duration, clock: Clock, db: Option<Database>) -> Shared {
        Shared {
            ttl_secs: AtomicU64::new(ttl.as_secs()),
            clock,
            pending: Mutex::default(),
            disk_ok: AtomicBool::new(db.is_some()),
            damaged: AtomicBool::new(false),
            db,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            commits: AtomicU64::new(0),
        }
    }

    /// Nothing panics while holding this lock, but if something ever did, the map is still
    /// consistent (every update is a single insert or remove), so poisoning is ignored.
    fn lock_pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_secs.load(Ordering::Relaxed))
    }

    fn disk(&self) -> Option<&Database> {
        self.db.as_ref().filter(|_| self.disk_ok.load(Ordering::Relaxed))
    }

    /// Runs a redb operation so that neither its error nor its panic reaches the caller. redb
    /// panics on some damaged pages (on more in debug builds, where its internal checks are
    /// assertions); after a panic, or an error that poisons the database for good, the file is
    /// abandoned for the rest of the session.
    fn guard<T>(&self, what: &str, op: impl FnOnce() -> Result<T, redb::Error>) -> Option<T> {
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
                    _ => {
                        warn!(operation = what, error = %err, "cache storage error; treated as a miss")
                    }
                }
                None
            }
            Err(panic) => {
                // redb panics on damaged pages (always for some, in debug builds for more).
                self.damaged.store(true, Ordering::Relaxed);
                self.abandon_disk(what, &panic_message(&*panic));
                None
            }
        }
    }

    fn abandon_disk(&self, what: &str, error: &str) {
        if self.disk_ok.swap(false, Ordering::Relaxed) {
            warn!(operation = what, error, "the cache file failed; caching in memory only from now on");
        }
    }
}

/// Commits queued puts in batches until every `Cache` handle is gone (the channel closes).
fn run_writer(shared: &Shared, rx: &mpsc::Receiver<Msg>) {
    let mut batch: Vec<(Slot, u64, Arc<[u8]>)> = Vec::new();
    // When the oldest entry of `batch` must be committed by.
    let mut deadline: Option<Instant> = None;
    loop {
        let msg = match deadline {
            None => match rx.recv() {
                Ok(msg) => msg,
                Err(_) => break,
            },
            Some(deadline_at) => match rx.recv_timeout(deadline_at.saturating_duration_since(Instant::now())) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => {
                    commit(shared, &mut batch);
                    deadline = None;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
        };
        match msg {
            Msg::Put { slot, seq, value } => {
                batch.push((slot, seq, value));
                if batch.len() >= MAX_BATCH {
                    commit(shared, &mut batch);
                    deadline = None;
                } else if deadline.is_none() {
                    deadline = Some(Instant::now() + MAX_COMMIT_DELAY);
                }
            }
            Msg::Flush(done) => {
                commit(shared, &mut batch);
                deadline = None;
                let _ = done.send(());
            }
            Msg::Clear(done) => {
                // These puts came before the clear; committing them only to delete them is waste.
                // Records are not part of the cache, so they stay.
                batch.retain(|(slot, ..)| matches!(slot, Slot::Record(_)));
                deadline = None;
                let _ = done.send(clear_disk(shared));
            }
        }
    }
    commit(shared, &mut batch);
}

fn commit(shared: &Shared, batch: &mut Vec<(Slot, u64, Arc<[u8]>)>) {
    if batch.is_empty() {
        return;
    }
    let entries = std::mem::take(batch);
    // Without a disk the entries stay in the pending map: the cache is in memory now.
    let Some(db) = shared.disk() else {
        return;
    };
    let committed = shared.guard("commit", || {
        let mut txn = db.begin_write()?;
        // Editors kill language servers routinely. Without quick-repair, the next open after a
        // kill walks the whole file to rebuild the allocator state; with it, each commit records
        // that state (an extra write and fsync), which batching makes cheap.
        txn.set_quick_repair(true);
        {
            let mut findings = txn.open_table(TABLE)?;
            let mut records = txn.open_table(RECORDS)?;
            // In queue order, so the last put of a key wins, as it did in the pending map.
            for (slot, _, value) in &entries {
                match slot {
                    Slot::Findings(key) => findings.insert(&key.0, &**value)?,
                    Slot::Record(name) => records.insert(name.as_str(), &**value)?,
                };
            }
        }
        txn.commit()?;
        Ok(())
    });
    if committed.is_none() {
        // Logged by `guard`. The entries stay in memory, so this run still hits them.
        debug!(entries = entries.len(), "cache batch not committed; kept in memory");
        return;
    }
    shared.commits.fetch_add(1, Ordering::Relaxed);
    let mut pending = shared.lock_pending();
    for (slot, seq, _) in &entries {
        // A newer put of the same key is still on its way to disk: leave it.
        if pending.map.get(slot).is_some_and(|e| e.seq == *seq) {
            pending.map.remove(slot);
        }
    }
}

fn clear_disk(shared: &Shared) -> Result<(), String> {
    let Some(db) = shared.disk() else {
        // The file was abandoned after an error; it cannot be cleared from here.
        return Err("the cache file is no longer in use after an earlier error".into());
    };
    shared
        .guard("clear", || {
            let txn = db.begin_write()?;
            // Deleting the table frees its pages wholesale, unlike removing entries one by one.
            txn.delete_table(TABLE)?;
            txn.open_table(TABLE)?;
            txn.commit()?;
            Ok(())
        })
        .ok_or_else(|| "a storage error (see the log)".to_string())
}

// The engine, server and CLI share one cache across threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Cache>();
};

mod codec;
mod file;
#[cfg(test)]
mod tests;

use codec::{decode, encode};
use file::{file_name, move_aside, open_or_recreate};
