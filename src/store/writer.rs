//! Owns the one thread that writes the store: it commits queued puts in batches, records
//! accesses for the LRU, runs maintenance (expiry, the size cap, invalidation), and yields the
//! file when another process asks for it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{ReadableTable, WriteTransaction};
use tracing::{debug, warn};

use super::codec::{self, Meta};
use super::maintenance::{self, GcReport};
use super::{CACHE, CACHE_META, CacheKey, Filter, HISTORY, RECORDS, REPORTS, Shared, Tags};

/// The writer commits once this many entries are queued...
const MAX_BATCH: usize = 512;
/// ...or once the oldest queued entry has waited this long. Committing as soon as the channel
/// runs dry would fsync once per result whenever reviews finish more slowly than a commit takes,
/// which is the common case; a short linger bounds commits to a few per second instead. Entries
/// are readable from memory meanwhile, and losing the last 100 ms of a cache to a crash is
/// harmless.
const MAX_COMMIT_DELAY: Duration = Duration::from_millis(100);
/// How often the writer wakes with nothing to do: to yield the file to another process, and to
/// retry a commit the file was too busy for.
const TICK: Duration = Duration::from_millis(20);
/// How long a commit waits for another process to yield the file before it retries later.
const WRITE_PATIENCE: Duration = Duration::from_millis(500);
/// An access is recorded only if the stored one is older than this: LRU order at minute
/// granularity is plenty, and it keeps reads from turning into writes.
const ACCESS_GRANULARITY: u64 = 60;
/// Maintenance runs after this share of the size cap has been written since the last run.
const GC_EVERY_FRACTION: u64 = 8;

/// Where a queued value goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Slot {
    Findings(CacheKey),
    Record(String),
    Report(u64),
    History(u64),
}

pub(super) enum Msg {
    Put { slot: Slot, seq: u64, value: Arc<[u8]>, tags: Option<Tags> },
    Flush(mpsc::SyncSender<()>),
    Clear(mpsc::SyncSender<Result<(), String>>),
    Invalidate(Filter, mpsc::SyncSender<Result<Vec<[u8; 32]>, String>>),
    Gc(mpsc::SyncSender<Result<GcReport, String>>),
}

pub(super) struct Writer {
    tx: mpsc::Sender<Msg>,
    thread: JoinHandle<()>,
}

impl Writer {
    pub(super) fn start(shared: Arc<Shared>) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel();
        let thread =
            std::thread::Builder::new().name("review-lsp-store-writer".into()).spawn(move || run(&shared, &rx))?;
        Ok(Writer { tx, thread })
    }

    /// False when the writer has exited.
    pub(super) fn send(&self, msg: Msg) -> bool {
        self.tx.send(msg).is_ok()
    }

    /// Closing the channel is the shutdown signal: the writer still receives everything queued
    /// before it, commits, and exits. Joining means that, once this returns, the commit is done.
    pub(super) fn stop(self) {
        drop(self.tx);
        if self.thread.join().is_err() {
            warn!("the cache writer panicked; recent cache entries may be lost");
        }
    }
}

type Batch = Vec<(Slot, u64, Arc<[u8]>, Option<Tags>)>;

struct State {
    batch: Batch,
    /// When the oldest entry of `batch` must be committed by.
    deadline: Option<Instant>,
    written_since_gc: u64,
    gc_due: bool,
}

fn run(shared: &Shared, rx: &mpsc::Receiver<Msg>) {
    // Expired entries of earlier sessions go at the first opportunity.
    let mut st = State { batch: Vec::new(), deadline: None, written_since_gc: 0, gc_due: true };
    loop {
        let wait = st.deadline.map_or(TICK, |d| d.saturating_duration_since(Instant::now()).min(TICK));
        match rx.recv_timeout(wait) {
            Ok(msg) => handle(shared, &mut st, msg),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if st.deadline.is_some_and(|d| Instant::now() >= d) {
            commit(shared, &mut st);
        }
        if st.gc_due && st.batch.is_empty() {
            if let Err(e) = gc(shared, &mut st) {
                debug!("store maintenance postponed: {e}");
            }
        }
        if let Some(lease) = &shared.lease {
            lease.yield_if_wanted();
        }
    }
    commit(shared, &mut st);
}

fn handle(shared: &Shared, st: &mut State, msg: Msg) {
    match msg {
        Msg::Put { slot, seq, value, tags } => {
            st.batch.push((slot, seq, value, tags));
            if st.batch.len() >= MAX_BATCH {
                commit(shared, st);
            } else if st.deadline.is_none() {
                st.deadline = Some(Instant::now() + MAX_COMMIT_DELAY);
            }
        }
        Msg::Flush(done) => {
            commit(shared, st);
            let _ = done.send(());
        }
        Msg::Clear(done) => {
            // These puts came before the clear; committing them only to delete them is waste.
            st.batch.retain(|(slot, ..)| !matches!(slot, Slot::Findings(_)));
            let _ = done.send(write(shared, "clear", |txn| {
                // Deleting a table frees its pages wholesale, unlike removing entries one by one.
                txn.delete_table(CACHE)?;
                txn.delete_table(CACHE_META)?;
                Ok(())
            }));
        }
        Msg::Invalidate(filter, done) => {
            commit(shared, st);
            let _ = done.send(write(shared, "invalidate", |txn| maintenance::invalidate(txn, &filter)));
        }
        Msg::Gc(done) => {
            commit(shared, st);
            let _ = done.send(gc(shared, st));
        }
    }
}

fn gc(shared: &Shared, st: &mut State) -> Result<GcReport, String> {
    let now = shared.clock.now();
    let (ttl, max) = (shared.ttl().as_secs(), shared.max_bytes.load(Ordering::Relaxed));
    let report = write(shared, "maintenance", |txn| maintenance::gc(txn, now, ttl, max))?;
    st.gc_due = false;
    st.written_since_gc = 0;
    if report.expired + report.evicted > 0 {
        debug!(expired = report.expired, evicted = report.evicted, bytes = report.bytes, "store maintenance");
    }
    Ok(report)
}

/// Runs `op` in one write transaction; the error is for the caller, already logged.
fn write<T>(
    shared: &Shared,
    what: &str,
    op: impl FnOnce(&WriteTransaction) -> Result<T, redb::Error>,
) -> Result<T, String> {
    let db = shared
        .database(what, WRITE_PATIENCE)
        .ok_or_else(|| "the cache file is busy in another process or out of use (see the log)".to_string())?;
    shared
        .guard(what, || {
            let mut txn = db.begin_write()?;
            // Editors kill language servers routinely. Without quick-repair, the next open after a
            // kill walks the whole file to rebuild the allocator state; with it, each commit
            // records that state (an extra write), which batching makes cheap.
            txn.set_quick_repair(true);
            let value = op(&txn)?;
            txn.commit()?;
            Ok(value)
        })
        .ok_or_else(|| "a storage error (see the log)".to_string())
}

fn commit(shared: &Shared, st: &mut State) {
    let touched: HashMap<CacheKey, u64> =
        std::mem::take(&mut *shared.touched.lock().unwrap_or_else(PoisonError::into_inner));
    if st.batch.is_empty() && touched.is_empty() {
        st.deadline = None;
        return;
    }
    let now = shared.clock.now();
    let entries = std::mem::take(&mut st.batch);
    let committed = write(shared, "commit", |txn| {
        let mut cache = txn.open_table(CACHE)?;
        let mut meta = txn.open_table(CACHE_META)?;
        let mut records = txn.open_table(RECORDS)?;
        let mut reports = txn.open_table(REPORTS)?;
        let mut history = txn.open_table(HISTORY)?;
        // In queue order, so the last put of a key wins, as it did in the pending map.
        for (slot, _, value, tags) in &entries {
            match slot {
                Slot::Findings(key) => {
                    cache.insert(&key.0, &**value)?;
                    // Age counts from the put (in the value), not from this commit.
                    let created = codec::created(value).unwrap_or(now);
                    let row = Meta {
                        created,
                        last_access: created,
                        size: value.len() as u32,
                        tags: tags.clone().unwrap_or_default(),
                    };
                    meta.insert(&key.0, row.encode().as_slice())?;
                }
                Slot::Record(name) => {
                    records.insert(name.as_str(), &**value)?;
                }
                Slot::Report(id) => {
                    reports.insert(*id, &**value)?;
                }
                Slot::History(id) => {
                    history.insert(*id, &**value)?;
                }
            }
        }
        for (key, at) in &touched {
            let stale = meta
                .get(&key.0)?
                .and_then(|v| Meta::decode(v.value()))
                .filter(|m| *at >= m.last_access + ACCESS_GRANULARITY);
            if let Some(mut row) = stale {
                row.last_access = *at;
                meta.insert(&key.0, row.encode().as_slice())?;
            }
        }
        Ok(())
    });
    if let Err(e) = committed {
        // The entries stay readable from memory; put them back to try again.
        debug!(entries = entries.len(), "cache batch not committed ({e}); kept in memory");
        if shared.disk_ok.load(Ordering::Relaxed) {
            st.batch = entries;
            st.deadline = Some(Instant::now() + TICK);
        } else {
            st.deadline = None;
        }
        return;
    }
    st.deadline = None;
    shared.commits.fetch_add(1, Ordering::Relaxed);
    let written: u64 =
        entries.iter().filter(|(s, ..)| matches!(s, Slot::Findings(_))).map(|(_, _, v, _)| v.len() as u64).sum();
    st.written_since_gc += written;
    if st.written_since_gc > shared.max_bytes.load(Ordering::Relaxed) / GC_EVERY_FRACTION {
        st.gc_due = true;
    }
    let mut pending = shared.lock_pending();
    for (slot, seq, ..) in &entries {
        // A newer put of the same slot is still on its way to disk: leave it.
        if pending.map.get(slot).is_some_and(|e| e.seq == *seq) {
            pending.map.remove(slot);
        }
    }
}
