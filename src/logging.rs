//! Owns tracing setup for the two ways review-lsp runs. Logs NEVER go to stdout: for the
//! server stdout is the LSP protocol, for the CLI it is the report.
//!
//! The filter comes from `REVIEW_LSP_LOG` (`tracing_subscriber::EnvFilter` syntax, e.g.
//! `debug` or `review_lsp::store=trace`); the default is `warn` for the CLI and `info` for
//! the server.

use std::fs::{File, OpenOptions};
use std::io::IsTerminal;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub const LOG_ENV: &str = "REVIEW_LSP_LOG";

/// A log file over this size is moved to `<name>.1` at server start, so it cannot grow
/// without bound across sessions while the last session's log stays readable.
const MAX_LOG_BYTES: u64 = 10 << 20;

/// The filter from `REVIEW_LSP_LOG`, or `default`; a bad value is reported once logging
/// is up (returned as the second item) rather than silently ignored.
fn filter(default: &str) -> (EnvFilter, Option<String>) {
    match std::env::var(LOG_ENV) {
        Ok(spec) if !spec.trim().is_empty() => match EnvFilter::try_new(&spec) {
            Ok(filter) => (filter, None),
            Err(err) => (EnvFilter::new(default), Some(format!("ignoring {LOG_ENV}={spec:?}: {err}"))),
        },
        _ => (EnvFilter::new(default), None),
    }
}

/// CLI logging: compact lines on stderr, coloured only on a terminal. Safe to call twice
/// (the second call does nothing), which tests rely on.
pub fn init_cli() {
    let (filter, bad) = filter("warn");
    let ok = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .try_init()
        .is_ok();
    if let (true, Some(bad)) = (ok, bad) {
        tracing::warn!("{bad}");
    }
}

/// Server logging: stderr (editors show it in their output panel, so no colours) plus a file,
/// by default `<cache dir>/logs/review-lsp.log`. If the file cannot be opened the server
/// still logs to stderr, with a warning saying why.
///
/// Keep the returned guard alive for the life of the server: dropping it flushes the file.
pub fn init_server(file: Option<PathBuf>) -> Option<WorkerGuard> {
    let (filter, bad) = filter("info");
    let path = file.unwrap_or_else(|| crate::config::default_cache_dir().join("logs").join("review-lsp.log"));
    let stderr_layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false);

    let (file, file_error) = match open_log_file(&path) {
        Ok(file) => (Some(file), None),
        Err(err) => (None, Some(err)),
    };
    // Installed even without a file, so the `[log] file` setting can start one later.
    let target = LOG_TARGET.get_or_init(LogFile::default).clone();
    target.replace(file);
    let (writer, guard) = tracing_appender::non_blocking(target);
    let file_layer = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(false);
    let ok = tracing_subscriber::registry().with(filter).with(stderr_layer).with(file_layer).try_init().is_ok();
    if let Some(bad) = bad {
        tracing::warn!("{bad}");
    }
    match file_error {
        Some(err) => tracing::warn!("cannot open the log file {}: {err}; logging to stderr only", path.display()),
        None => tracing::info!("logging to {}", path.display()),
    }
    ok.then_some(guard)
}

/// Points the server's log file at `path` (the `[log] file` setting, known only once the
/// workspace is). A path that cannot be opened keeps the current file.
pub fn redirect_log_file(path: &Path) -> std::io::Result<()> {
    let Some(target) = LOG_TARGET.get() else {
        return Ok(());
    };
    let file = open_log_file(path)?;
    tracing::info!("logging to {}", path.display());
    target.replace(Some(file));
    Ok(())
}

static LOG_TARGET: OnceLock<LogFile> = OnceLock::new();

/// The log file behind the non-blocking writer, swappable at run time.
#[derive(Clone, Default)]
struct LogFile(Arc<Mutex<Option<File>>>);

impl LogFile {
    fn replace(&self, file: Option<File>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = file;
    }
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(file) => file.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

fn open_log_file(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    if std::fs::metadata(path).is_ok_and(|m| m.len() > MAX_LOG_BYTES) {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        // Best effort: if the rename fails we append to the big file, which is still correct.
        let _ = std::fs::rename(path, PathBuf::from(old));
    }
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_file_is_created_with_its_directory_and_rotated_when_big() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/nested/review-lsp.log");
        open_log_file(&path).unwrap();
        assert!(path.is_file());

        std::fs::write(&path, vec![b'x'; MAX_LOG_BYTES as usize + 1]).unwrap();
        open_log_file(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "a fresh file after rotation");
        assert!(dir.path().join("logs/nested/review-lsp.log.1").is_file());
    }

    #[test]
    fn unusable_log_path_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        assert!(open_log_file(&blocker.join("review-lsp.log")).is_err());
    }
}
