//! Owns the store's artifacts: scan reports (the JSON findings, the SARIF and a markdown
//! summary of one scan) and the review history (one row per review), both keyed by a
//! time-ordered id so listing is a range read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{ReadableDatabase, TableDefinition, TableError, TableHandle};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::writer::Slot;
use super::{HISTORY, REPORTS, Store};

/// Reads of artifacts wait this long for another process to yield the file.
const PATIENCE: Duration = Duration::from_secs(2);

/// One scan's report, as kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredReport {
    pub id: u64,
    /// Unix seconds.
    pub time: u64,
    pub root: String,
    pub files: u64,
    pub findings: u64,
    pub json: String,
    pub sarif: String,
    pub markdown: String,
}

/// A report without its bodies, for listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportEntry {
    pub id: u64,
    pub time: u64,
    pub root: String,
    pub files: u64,
    pub findings: u64,
}

/// One review: of a file as it was edited, or of a whole scan.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    /// Unix seconds.
    pub time: u64,
    /// `edit`, `scan` (the editor's workspace scan) or `cli`.
    pub trigger: String,
    pub files: u64,
    pub agents: Vec<String>,
    /// `offline`, or the providers that took part.
    pub source: String,
    pub model: String,
    pub tokens: u64,
    pub duration_ms: u64,
    /// `ok`, `cancelled`, or what went wrong.
    pub outcome: String,
}

impl HistoryRow {
    pub fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}

/// Microseconds since the epoch, bumped past the last id this process issued: unique within a
/// process, and ordered by time across processes.
fn next_id() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let id = now.max(last + 1);
        match LAST.compare_exchange(last, id, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return id,
            Err(seen) => last = seen,
        }
    }
}

impl Store {
    /// Keeps a scan report; returns its id. Committed in the background like every write.
    pub fn save_report(&self, mut report: StoredReport) -> u64 {
        report.id = next_id();
        if let Ok(bytes) = serde_json::to_vec(&report) {
            self.queue(Slot::Report(report.id), bytes.into(), None);
        }
        report.id
    }

    /// Reports, newest first.
    pub fn reports(&self) -> Vec<ReportEntry> {
        self.read_all::<StoredReport>(REPORTS, 0)
            .into_iter()
            .rev()
            .map(|r| ReportEntry { id: r.id, time: r.time, root: r.root, files: r.files, findings: r.findings })
            .collect()
    }

    pub fn report(&self, id: u64) -> Option<StoredReport> {
        self.read_all::<StoredReport>(REPORTS, id).into_iter().find(|r| r.id == id)
    }

    pub fn record_review(&self, row: &HistoryRow) {
        if let Ok(bytes) = serde_json::to_vec(row) {
            self.queue(Slot::History(next_id()), bytes.into(), None);
        }
    }

    /// History rows from `since` (unix seconds) on, oldest first.
    pub fn history(&self, since: u64) -> Vec<HistoryRow> {
        self.read_all::<HistoryRow>(HISTORY, since.saturating_mul(1_000_000))
    }

    /// Rows of an id-keyed table from `from` on, after committing what this process queued.
    fn read_all<T: DeserializeOwned>(&self, table: TableDefinition<u64, &[u8]>, from: u64) -> Vec<T> {
        if self.writer.is_none() {
            return self.queued_rows(table, from);
        }
        self.flush();
        let read = self.shared.read("read artifacts", PATIENCE, |db| {
            let txn = db.begin_read()?;
            let t = match txn.open_table(table) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut out = Vec::new();
            for row in t.range(from..)? {
                let (_, v) = row?;
                out.extend(serde_json::from_slice::<T>(v.value()).ok());
            }
            Ok(out)
        });
        read.unwrap_or_default()
    }

    /// In memory-only mode nothing reaches a table: the rows are the queued values.
    fn queued_rows<T: DeserializeOwned>(&self, table: TableDefinition<u64, &[u8]>, from: u64) -> Vec<T> {
        let reports = table.name() == REPORTS.name();
        let pending = self.shared.lock_pending();
        let mut rows: Vec<(u64, T)> = pending
            .map
            .iter()
            .filter_map(|(slot, e)| match *slot {
                Slot::Report(id) if reports && id >= from => Some((id, e)),
                Slot::History(id) if !reports && id >= from => Some((id, e)),
                _ => None,
            })
            .filter_map(|(id, e)| serde_json::from_slice(&e.value).ok().map(|v| (id, v)))
            .collect();
        rows.sort_by_key(|(id, _)| *id);
        rows.into_iter().map(|(_, v)| v).collect()
    }
}
