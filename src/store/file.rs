//! Opening the cache file: where it lives, telling "locked" from "corrupt" from "unusable",
//! and moving a corrupt file aside so a fresh one can start.

use std::panic::catch_unwind;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{Database, DatabaseError, StorageError};
use tracing::{debug, warn};

use crate::panics::panic_message;

/// redb's page cache. Its default (1 GiB) is sized for a database server, not for a language
/// server that lives beside an editor; the hot part of a result cache is small.
const REDB_CACHE_BYTES: usize = 32 << 20;

/// Why the cache file could not be used.
pub(super) enum OpenFailure {
    /// Another process (or another `Store` in this one) has the file open: redb locks it.
    Locked,
    /// Not a redb file we can read: garbage, truncated, an incompatible format, or redb
    /// panicked reading it.
    Corrupt(String),
    /// Anything else, typically I/O (permissions, a directory in the way, a full disk).
    Other(String),
}

impl OpenFailure {
    pub(super) fn is_corrupt(&self) -> bool {
        matches!(self, OpenFailure::Corrupt(_))
    }
}

impl std::fmt::Display for OpenFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenFailure::Locked => f.write_str("the file is open in another process"),
            OpenFailure::Corrupt(why) => write!(f, "the file is corrupt: {why}"),
            OpenFailure::Other(why) => f.write_str(why),
        }
    }
}

/// What the first open found.
pub(super) enum Opened {
    Mine(Database),
    /// Another process has it now; the lease shares it.
    Held,
}

/// Opens the file, moving a corrupt one aside first. `None`: the file cannot be used at all
/// (I/O errors, a corrupt file that cannot be moved), and the store runs in memory.
pub(super) fn open_or_recreate(path: &Path) -> Option<Opened> {
    let reason = match open_db(path) {
        Ok(db) => return Some(Opened::Mine(db)),
        Err(OpenFailure::Locked) => {
            debug!(path = %path.display(), "the cache file is in use by another review-lsp process; sharing it");
            return Some(Opened::Held);
        }
        Err(OpenFailure::Other(err)) => {
            warn!(path = %path.display(), error = %err, "cannot open the cache file; caching in memory only");
            return None;
        }
        Err(OpenFailure::Corrupt(reason)) => reason,
    };

    let aside = match move_aside(path) {
        Ok(aside) => aside,
        Err(err) => {
            warn!(
                path = %path.display(), reason, error = %err,
                "the cache file is corrupt and cannot be moved aside; caching in memory only"
            );
            return None;
        }
    };
    warn!(
        path = %path.display(), moved_to = %aside.display(), reason,
        "the cache file was corrupt; moved it aside and started a fresh one"
    );
    match open_db(path) {
        Ok(db) => Some(Opened::Mine(db)),
        Err(OpenFailure::Locked) => Some(Opened::Held),
        Err(OpenFailure::Corrupt(err) | OpenFailure::Other(err)) => {
            warn!(path = %path.display(), error = %err, "cannot create a fresh cache file; caching in memory only");
            None
        }
    }
}

/// Renames a damaged file to `<name>.corrupt-<unix secs>`: out of the way, but kept for a bug
/// report rather than deleted.
pub(super) fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{now}"));
    let aside = PathBuf::from(aside);
    std::fs::rename(path, &aside)?;
    Ok(aside)
}

pub(super) fn open_db(path: &Path) -> Result<Database, OpenFailure> {
    let opened = catch_unwind(|| {
        let mut builder = Database::builder();
        builder.set_cache_size(REDB_CACHE_BYTES);
        builder.set_repair_callback(|session| {
            debug!(progress = session.progress(), "repairing the cache file after an unclean shutdown");
        });
        builder.create(path)
    });
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch)) => Err(OpenFailure::Locked),
        Ok(Err(
            err @ (DatabaseError::Storage(StorageError::Corrupted(_))
            | DatabaseError::UpgradeRequired(_)
            | DatabaseError::RepairAborted),
        )) => Err(OpenFailure::Corrupt(err.to_string())),
        // redb reports a file that is not a redb database (bad magic number) as InvalidData, and
        // a truncated one fails a read with UnexpectedEof. Other I/O errors (permissions, a
        // directory in the way) say nothing about the file's contents, so it is left alone.
        Ok(Err(DatabaseError::Storage(StorageError::Io(err))))
            if matches!(err.kind(), std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof) =>
        {
            Err(OpenFailure::Corrupt(err.to_string()))
        }
        Ok(Err(err)) => Err(OpenFailure::Other(err.to_string())),
        Err(panic) => Err(OpenFailure::Corrupt(format!("redb panicked opening it: {}", panic_message(&*panic)))),
    }
}

/// `<first 16 hex digits of blake3(canonical workspace path)>.redb`. Canonical so that the same
/// workspace reached through a symlink or a relative path shares one file.
pub(super) fn file_name(workspace: &Path) -> String {
    let canonical = std::fs::canonicalize(workspace)
        .or_else(|_| std::path::absolute(workspace))
        .unwrap_or_else(|_| workspace.to_path_buf());
    let hash = blake3::hash(canonical.as_os_str().as_encoded_bytes());
    format!("{}.redb", &hash.to_hex()[..16])
}
