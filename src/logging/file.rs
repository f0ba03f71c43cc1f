//! Owns where log files may be written. The default log lives in a folder this program owns
//! and rotates there through `tracing-appender`'s rolling appender, which only ever prunes its
//! own dated files. A log file named by a setting (`[log] file`) is outside text: it is only
//! appended to, only if it is a regular file (never a FIFO, device, symlink or directory),
//! never rotated, renamed or truncated, and its parent folder is created only inside the
//! state or cache directory.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};

use tracing_appender::rolling::{RollingFileAppender, Rotation};

use crate::escape;

/// A week of daily files: enough to read back a problem from last week, and a bound on
/// what a chatty log can take.
pub const KEPT_LOG_FILES: usize = 7;
const LOG_PREFIX: &str = "review-lsp";
const LOG_SUFFIX: &str = "log";

/// Where the server logs by default: `<cache dir>/logs/`. The cache directory rather than the
/// XDG state directory because it is where logs have always been (users and tests look
/// there), every test harness already isolates it through `XDG_CACHE_HOME`, and its contents
/// are, like logs, machine-local and safe to delete.
pub fn default_log_dir() -> PathBuf {
    crate::config::default_cache_dir().join("logs")
}

/// The default log: daily files `review-lsp.YYYY-MM-DD.log` in `dir`, at most
/// [`KEPT_LOG_FILES`] of them. The appender deletes only regular files in `dir` named with
/// its prefix and suffix, so nothing outside this folder is ever touched.
pub fn rolling(dir: &Path) -> io::Result<RollingFileAppender> {
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(LOG_PREFIX)
        .filename_suffix(LOG_SUFFIX)
        .max_log_files(KEPT_LOG_FILES)
        .build(dir)
        .map_err(io::Error::other)
}

/// Opens a log file named by a setting for appending, or says why not. Never blocks: a FIFO
/// without a reader fails at once (`O_NONBLOCK`), and one with a reader is refused after
/// `fstat`. Never follows a symlink in the last component (`O_NOFOLLOW`), never makes a
/// terminal the controlling one (`O_NOCTTY`).
pub fn open_named(path: &Path) -> io::Result<File> {
    let refuse = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
    if path.file_name().is_none() {
        return Err(refuse("not a file name".into()));
    }
    // Looked at before opening, so a device is refused without being opened at all; the
    // `fstat` after opening closes the gap between the two.
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_file() => return Err(refuse(not_regular(&meta.file_type()))),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => ensure_parent(path)?,
        Err(e) => return Err(e),
    }
    let file = open_append(path).map_err(|e| match e.raw_os_error() {
        Some(code) if code == libc::ELOOP => refuse("a symbolic link; name the file itself".into()),
        Some(code) if code == libc::ENXIO => refuse(not_regular_name("a FIFO or socket")),
        _ => e,
    })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(refuse(not_regular(&meta.file_type())));
    }
    Ok(file)
}

#[cfg(unix)]
fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

#[cfg(not(unix))]
fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

fn not_regular(kind: &std::fs::FileType) -> String {
    let what = if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "a device, FIFO or socket"
    };
    not_regular_name(what)
}

fn not_regular_name(what: &str) -> String {
    format!("{what}, not a regular file; review-lsp only appends to regular files")
}

/// Creates the parent folder of a log file that does not exist yet, but only inside the
/// folders this program owns; anywhere else the folder must already exist.
fn ensure_parent(path: &Path) -> io::Result<()> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.is_dir() {
        return Ok(());
    }
    let owned_dirs = [crate::config::default_cache_dir(), crate::config::default_state_dir()];
    if inside_any(parent, &owned_dirs) {
        return std::fs::create_dir_all(parent);
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "the folder {} does not exist; review-lsp creates folders only inside {} or {}",
            escape::path(parent),
            escape::path(&owned_dirs[0]),
            escape::path(&owned_dirs[1]),
        ),
    ))
}

/// True when `dir` is lexically inside one of `roots`. A `..` anywhere makes it false rather
/// than something to resolve.
fn inside_any(dir: &Path, roots: &[PathBuf]) -> bool {
    if dir.components().any(|c| c == Component::ParentDir) {
        return false;
    }
    let Ok(dir) = std::path::absolute(dir) else { return false };
    roots.iter().filter_map(|root| std::path::absolute(root).ok()).any(|root| dir.starts_with(root))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn refused(path: &Path) -> String {
        let started = Instant::now();
        let err = open_named(path).expect_err("refused");
        assert!(started.elapsed() < Duration::from_millis(500), "refusing took {:?}", started.elapsed());
        err.to_string()
    }

    #[test]
    fn a_fifo_is_refused_without_blocking_with_or_without_a_reader() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(refused(&fifo).contains("not a regular file"));
        // With a reader the open itself would succeed; fstat must still refuse it.
        let _reader = OpenOptions::new().read(true).custom_flags_nonblock().open(&fifo).unwrap();
        assert!(refused(&fifo).contains("not a regular file"));
    }

    trait NonBlock {
        fn custom_flags_nonblock(&mut self) -> &mut Self;
    }
    impl NonBlock for OpenOptions {
        fn custom_flags_nonblock(&mut self) -> &mut Self {
            use std::os::unix::fs::OpenOptionsExt;
            self.custom_flags(libc::O_NONBLOCK)
        }
    }

    #[test]
    fn devices_symlinks_directories_and_missing_folders_are_refused() {
        assert!(refused(Path::new("/dev/null")).contains("device"));
        assert!(refused(Path::new("/dev/stdout")).contains("symbolic link"));
        let dir = tempfile::tempdir().unwrap();
        assert!(refused(dir.path()).contains("directory"));

        let target = dir.path().join("victim");
        std::fs::write(&target, "precious\n").unwrap();
        let link = dir.path().join("link.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(refused(&link).contains("symbolic link"));
        let dangling = dir.path().join("dangling.log");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(refused(&dangling).contains("symbolic link"));
        assert!(!dir.path().join("nowhere").exists(), "a dangling link's target is not created");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");

        let missing = dir.path().join("new/nested/review.log");
        assert!(refused(&missing).contains("does not exist"));
        assert!(!dir.path().join("new").exists(), "no folder created outside the owned ones");
        assert!(refused(&dir.path().join("x/../review.log")).contains("does not exist"));
    }

    #[test]
    fn folders_are_created_only_inside_owned_ones() {
        let roots = [PathBuf::from("/home/u/.cache/review-lsp"), PathBuf::from("/home/u/.local/state/review-lsp")];
        assert!(inside_any(Path::new("/home/u/.cache/review-lsp/logs/a"), &roots));
        assert!(inside_any(Path::new("/home/u/.local/state/review-lsp"), &roots));
        assert!(!inside_any(Path::new("/home/u/.cache/review-lsp/../../.bashrc.d"), &roots));
        assert!(!inside_any(Path::new("/home/u/.cache/review-lsp-evil"), &roots));
        assert!(!inside_any(Path::new("/etc/cron.d"), &roots));
    }

    #[test]
    fn a_regular_file_is_appended_to_and_never_renamed_or_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        let big = vec![b'x'; 11 << 20];
        std::fs::write(&path, &big).unwrap();
        {
            use std::io::Write;
            open_named(&path).unwrap().write_all(b"more\n").unwrap();
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), big.len() as u64 + 5);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing renamed beside it");
        let fresh = dir.path().join("fresh.log");
        open_named(&fresh).unwrap();
        assert!(fresh.is_file());
    }

    #[test]
    fn rotation_prunes_only_its_own_files_in_its_own_folder() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let foreign = ["notes.txt", "other.log", "review-lsp.txt", "important"];
        for name in foreign {
            std::fs::write(logs.join(name), "keep").unwrap();
        }
        for day in 1..=12 {
            std::fs::write(logs.join(format!("review-lsp.2020-01-{day:02}.log")), "old").unwrap();
        }
        let outside = dir.path().join("review-lsp.2020-01-01.log");
        std::fs::write(&outside, "keep").unwrap();

        let appender = rolling(&logs).unwrap();
        drop(appender);
        let ours = std::fs::read_dir(&logs)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("review-lsp.") && n.ends_with(".log"))
            .count();
        assert_eq!(ours, KEPT_LOG_FILES, "old dated files pruned to the bound, today's created");
        for name in foreign {
            assert_eq!(std::fs::read_to_string(logs.join(name)).unwrap(), "keep", "{name} untouched");
        }
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
    }
}
