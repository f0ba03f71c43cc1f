//! Owns tracing setup for the two ways review-lsp runs. Logs NEVER go to stdout: for the
//! server stdout is the LSP protocol, for the CLI it is the report. Every sink is wrapped in
//! [`escaped::Escaped`], so one event is one line and outside text in it (paths, settings
//! keys, provider errors) can neither forge lines nor reach a terminal as escape sequences.
//! Where log files may be written is `file`'s business.
//!
//! The filter comes from `REVIEW_LSP_LOG` (`tracing_subscriber::EnvFilter` syntax, e.g.
//! `debug` or `review_lsp::store=trace`); the default is `warn` for the CLI and `info` for
//! the server.

mod escaped;
mod file;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

pub use escaped::{Escaped, EscapedWriter};
pub use file::{KEPT_LOG_FILES, default_log_dir, open_named};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::escape;

pub const LOG_ENV: &str = "REVIEW_LSP_LOG";

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

/// CLI logging: compact lines on stderr. No colours: the escaping that keeps a file name's
/// ESC sequence off the terminal would spell out the colour codes too. Safe to call twice
/// (the second call does nothing), which tests rely on.
pub fn init_cli() {
    let (filter, bad) = filter("warn");
    let ok = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Escaped(std::io::stderr))
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init()
        .is_ok();
    if let (true, Some(bad)) = (ok, bad) {
        tracing::warn!("{bad}");
    }
}

/// Server logging: stderr (editors show it in their output panel, so no colours) plus a file:
/// `file` if given (opened as [`open_named`] allows), else daily files in
/// [`default_log_dir`]. If no file can be opened the server still logs to stderr, with a
/// warning saying why.
///
/// Keep the returned guard alive for the life of the server: dropping it flushes the file.
pub fn init_server(file: Option<PathBuf>) -> Option<WorkerGuard> {
    let (filter, bad) = filter("info");
    let stderr_layer = tracing_subscriber::fmt::layer().with_writer(Escaped(std::io::stderr)).with_ansi(false);

    let (shown, opened) = match &file {
        Some(path) => (escape::path(path), open_named(path).map(|f| Box::new(f) as Sink)),
        None => {
            let dir = default_log_dir();
            (escape::path(&dir), file::rolling(&dir).map(|f| Box::new(f) as Sink))
        }
    };
    let (sink, file_error) = match opened {
        Ok(sink) => (Some(sink), None),
        Err(err) => (None, Some(err)),
    };
    // Installed even without a file, so the `[log] file` setting can start one later.
    let target = LOG_TARGET.get_or_init(LogFile::default).clone();
    target.replace(sink);
    let (writer, guard) = tracing_appender::non_blocking(target);
    let file_layer = tracing_subscriber::fmt::layer().with_writer(Escaped(writer)).with_ansi(false);
    let ok = tracing_subscriber::registry().with(filter).with(stderr_layer).with(file_layer).try_init().is_ok();
    if let Some(bad) = bad {
        tracing::warn!("{bad}");
    }
    match file_error {
        Some(err) => tracing::warn!("cannot open the log file {shown}: {err}; logging to stderr only"),
        None => tracing::info!("logging to {shown}"),
    }
    ok.then_some(guard)
}

/// Points the server's log file at `path` (the `[log] file` setting, known only once the
/// workspace is). Only a regular file is accepted, and the call never blocks (see
/// [`open_named`]); a path that cannot be used keeps the current file.
pub fn redirect_log_file(path: &Path) -> std::io::Result<()> {
    let Some(target) = LOG_TARGET.get() else {
        return Ok(());
    };
    let file = open_named(path)?;
    tracing::info!("logging to {}", escape::path(path));
    target.replace(Some(Box::new(file)));
    Ok(())
}

type Sink = Box<dyn Write + Send>;

static LOG_TARGET: OnceLock<LogFile> = OnceLock::new();

/// The log file behind the non-blocking writer, swappable at run time.
#[derive(Clone, Default)]
struct LogFile(Arc<Mutex<Option<Sink>>>);

impl LogFile {
    fn replace(&self, sink: Option<Sink>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = sink;
    }
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(sink) => sink.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(sink) => sink.flush(),
            None => Ok(()),
        }
    }
}
