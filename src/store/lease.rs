//! Owns sharing one redb file between processes: a short-held lease on the database.
//!
//! redb lets one process open a file at a time ("Database already open", redb #811), and
//! editors start one server per window, so two windows on one workspace would otherwise leave
//! the second without a persistent cache. Instead of holding the file for the whole session, a
//! process holds it only while nobody else asks for it:
//!
//! - A process that finds the file locked touches `<file>.want` and polls (every 2 ms) until
//!   its patience runs out. Reads are patient for about 100 ms (a miss after that costs one
//!   review, not an error); the background writer waits for as long as it takes.
//! - The holder looks at `<file>.want` on every writer tick (20 ms). If it was touched after
//!   the holder took the file and the holder has had it for at least `MIN_HOLD`, the holder
//!   closes the database and stays away for `COOLDOWN`, which gives the waiter its turn.
//! - With nobody asking, the holder keeps the file open: a lone server pays nothing.
//!
//! Two busy servers therefore alternate in turns of about 50–100 ms; each turn costs one open
//! (about 0.5 ms, more after an unclean shutdown while redb repairs). A process killed while
//! holding the file releases it with its file descriptors, as flock locks do.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use redb::Database;
use tracing::debug;

use super::file::{OpenFailure, open_db};

/// How often a waiter retries the open.
const POLL: Duration = Duration::from_millis(2);
/// A waiter touches the want file at most this often.
const WANT_EVERY: Duration = Duration::from_millis(20);
/// The holder keeps the file at least this long before yielding, so that turns do some work.
const MIN_HOLD: Duration = Duration::from_millis(50);
/// After yielding, the holder waits this long before it asks again.
const COOLDOWN: Duration = Duration::from_millis(30);

pub(super) enum LeaseError {
    /// Another process held the file past our patience.
    Busy,
    /// The file cannot be opened for a reason other than the lock.
    Open(OpenFailure),
}

pub(super) struct Lease {
    path: PathBuf,
    want: PathBuf,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    db: Option<Arc<Database>>,
    /// When we took the file (wall clock, to compare with the want file's mtime).
    since: Option<SystemTime>,
    taken_at: Option<Instant>,
    cooldown_until: Option<Instant>,
    wanted_at: Option<Instant>,
}

impl Lease {
    /// A lease on `path`, starting with `db` already open (the caller's first open).
    pub(super) fn new(path: &Path, db: Option<Database>) -> Lease {
        let mut want = path.as_os_str().to_owned();
        want.push(".want");
        let held = match db {
            Some(db) => Held {
                db: Some(Arc::new(db)),
                since: Some(SystemTime::now()),
                taken_at: Some(Instant::now()),
                ..Held::default()
            },
            None => Held::default(),
        };
        Lease { path: path.to_path_buf(), want: want.into(), held: Mutex::new(held) }
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The open database, opening it if needed and waiting up to `patience` for another
    /// process to let go of it.
    pub(super) fn acquire(&self, patience: Duration) -> Result<Arc<Database>, LeaseError> {
        let deadline = Instant::now() + patience;
        loop {
            let now = Instant::now();
            {
                let mut held = self.lock();
                if let Some(db) = &held.db {
                    return Ok(Arc::clone(db));
                }
                if held.cooldown_until.is_none_or(|until| now >= until) {
                    match open_db(&self.path) {
                        Ok(db) => {
                            let db = Arc::new(db);
                            held.db = Some(Arc::clone(&db));
                            held.since = Some(SystemTime::now());
                            held.taken_at = Some(now);
                            held.cooldown_until = None;
                            return Ok(db);
                        }
                        Err(OpenFailure::Locked) => {
                            if held.wanted_at.is_none_or(|at| now.duration_since(at) >= WANT_EVERY) {
                                held.wanted_at = Some(now);
                                self.ask();
                            }
                        }
                        Err(other) => return Err(LeaseError::Open(other)),
                    }
                }
            }
            if now >= deadline {
                return Err(LeaseError::Busy);
            }
            std::thread::sleep(POLL.min(deadline.saturating_duration_since(now)).max(Duration::from_micros(100)));
        }
    }

    /// Tells the holder we are waiting.
    fn ask(&self) {
        let touched = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.want)
            .and_then(|f| f.set_modified(SystemTime::now()));
        if let Err(e) = touched {
            debug!(path = %self.want.display(), error = %e, "cannot signal that the store is wanted");
        }
    }

    /// Closes the database if another process asked for it since we took it (the writer calls
    /// this on every tick). The close happens when the last in-flight operation drops its handle.
    pub(super) fn yield_if_wanted(&self) {
        let mut held = self.lock();
        let (Some(since), Some(taken_at)) = (held.since, held.taken_at) else { return };
        if held.db.is_none() || taken_at.elapsed() < MIN_HOLD {
            return;
        }
        let wanted = std::fs::metadata(&self.want).and_then(|m| m.modified()).is_ok_and(|t| t > since);
        if wanted {
            debug!(path = %self.path.display(), "another process wants the store; yielding it");
            held.db = None;
            held.since = None;
            held.taken_at = None;
            held.cooldown_until = Some(Instant::now() + COOLDOWN);
        }
    }

    /// Closes the database now (the store is being dropped, or the file is abandoned).
    pub(super) fn close(&self) -> Option<Arc<Database>> {
        let mut held = self.lock();
        held.since = None;
        held.taken_at = None;
        held.db.take()
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}
