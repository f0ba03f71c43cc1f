//! Owns the commands that look into a workspace's store: `cache stats | clear | gc |
//! invalidate`, `report list | show`, and `history`. They open the same file the server and
//! `scan` use, sharing it with a running server (see `store::lease`).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand, ValueEnum};

use crate::config::{self, Config};
use crate::store::{Filter, Store};

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The workspace whose store to open; its `review-lsp.toml` says where the store lives.
    #[arg(long, global = true, default_value = ".")]
    pub root: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Entries, size, cap and location.
    Stats {
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Drop every cached result (reports, history and the daily spend stay).
    Clear,
    /// Expire old entries and evict the least recently used beyond the size cap, now.
    Gc,
    /// Drop the results matching every given condition.
    Invalidate {
        /// A glob over workspace-relative paths, e.g. `src/**/*.py`.
        #[arg(long)]
        path: Option<String>,
        /// An agent: security, correctness, performance, maintainability, documentation.
        #[arg(long)]
        agent: Option<String>,
        /// A model name, or `offline` for the built-in rules.
        #[arg(long)]
        model: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportAction {
    /// Kept scan reports, newest first.
    List {
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// One report.
    Show {
        id: u64,
        #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
        format: ReportFormat,
    },
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// How far back: a duration (`2h`, `7d`, `1week`) or a date (`2026-11-01`, RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Json,
    Sarif,
    Md,
}

fn open(root: &Path) -> Result<Store, String> {
    crate::logging::init_cli();
    if !root.is_dir() {
        return Err(format!("{} is not a directory", root.display()));
    }
    let mut sources = config::Sources::new(Some(root));
    sources.trust_workspace = config::trust_from_env();
    let resolved = config::load(sources);
    for warning in resolved.warnings() {
        super::output::stderr::warning(warning);
    }
    let config: Config = resolved.config;
    Ok(Store::open(&config.cache.resolved_dir(), root, &config.cache.store_settings()))
}

/// Text for people (tables, the markdown summary): roots, models and outcomes come from
/// settings and stored reports, so control characters are escaped; line breaks stay.
fn emit_text(text: &str) -> Result<ExitCode, String> {
    emit(&crate::escape::lines(text))
}

pub(super) fn emit(text: &str) -> Result<ExitCode, String> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(format!("cannot write: {e}")),
    }
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).map(|s| s + "\n").unwrap_or_default()
}

pub fn cache(args: &StoreArgs, action: &CacheAction) -> Result<ExitCode, String> {
    let store = open(&args.root)?;
    match action {
        CacheAction::Stats { format } => {
            let s = store.stats();
            if *format == ListFormat::Json {
                return emit(&json(&s));
            }
            let where_ = s
                .path
                .as_ref()
                .map_or("memory only (the file is unusable; see the log)".into(), |p| p.display().to_string());
            let size = s.bytes.map_or("unknown (busy)".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0));
            emit_text(&format!(
                "store: {where_}\nentries: {}\nsize: {size} of {:.0} MiB\n",
                s.entries,
                s.max_bytes as f64 / 1048576.0
            ))
        }
        CacheAction::Clear => {
            store.clear().map_err(|e| e.to_string())?;
            emit("cleared\n")
        }
        CacheAction::Gc => {
            let r = store.gc().map_err(|e| e.to_string())?;
            emit(&format!(
                "expired {}, evicted {}; {} entries, {} bytes left\n",
                r.expired, r.evicted, r.entries, r.bytes
            ))
        }
        CacheAction::Invalidate { path, agent, model } => {
            let filter = Filter::new(path.as_deref(), agent.as_deref(), model.as_deref())?;
            let n = store.invalidate(&filter).map_err(|e| e.to_string())?;
            emit(&format!("invalidated {n} entries\n"))
        }
    }
}

pub fn report(args: &StoreArgs, action: &ReportAction) -> Result<ExitCode, String> {
    let store = open(&args.root)?;
    match action {
        ReportAction::List { format } => {
            let reports = store.reports();
            if *format == ListFormat::Json {
                return emit(&json(&reports));
            }
            let mut out = String::from("id                 time                  files  findings  root\n");
            for r in &reports {
                out += &format!("{:<18} {:<21} {:>5} {:>9}  {}\n", r.id, when(r.time), r.files, r.findings, r.root);
            }
            if reports.is_empty() {
                out = "no reports yet: `review-lsp scan` keeps one per run\n".into();
            }
            emit_text(&out)
        }
        ReportAction::Show { id, format } => {
            let report =
                store.report(*id).ok_or_else(|| format!("no report {id}; `review-lsp report list` shows them"))?;
            match format {
                ReportFormat::Json => emit(&report.json),
                ReportFormat::Sarif => emit(&report.sarif),
                ReportFormat::Md => emit_text(&report.markdown),
            }
        }
    }
}

pub fn history(args: &StoreArgs, history: &HistoryArgs) -> Result<ExitCode, String> {
    let since = history.since.as_deref().map(parse_since).transpose()?.unwrap_or(0);
    let store = open(&args.root)?;
    let rows = store.history(since);
    if history.format == ListFormat::Json {
        return emit(&json(&rows));
    }
    let mut out = String::from("time                  trigger  files  tokens  duration  source / model  outcome\n");
    for r in &rows {
        out += &format!(
            "{:<21} {:<8} {:>5} {:>7} {:>7.1}s  {} / {}  {}\n",
            when(r.time),
            r.trigger,
            r.files,
            r.tokens,
            r.duration_ms as f64 / 1000.0,
            r.source,
            if r.model.is_empty() { "-" } else { &r.model },
            r.outcome
        );
    }
    emit_text(&out)
}

/// `2h`, `7d` (ago) or a date / RFC 3339 time, to unix seconds.
fn parse_since(s: &str) -> Result<u64, String> {
    let now = SystemTime::now();
    let at = match humantime::parse_duration(s) {
        Ok(ago) => now.checked_sub(ago).unwrap_or(UNIX_EPOCH),
        Err(_) => {
            let full = if s.len() == 10 { format!("{s}T00:00:00Z") } else { s.to_string() };
            humantime::parse_rfc3339_weak(&full)
                .map_err(|_| format!("--since {s:?}: give a duration like 2h or 7d, or a date like 2026-11-01"))?
        }
    };
    Ok(at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs())
}

fn when(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs))
        .to_string()
        .replace('T', " ")
        .replace('Z', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_dates() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let two_hours = parse_since("2h").unwrap();
        assert!((now - 7200).abs_diff(two_hours) <= 2);
        assert_eq!(parse_since("2026-11-01").unwrap(), 1_793_491_200);
        assert!(parse_since("yesterday-ish").unwrap_err().contains("--since"));
        assert_eq!(when(1_793_491_200), "2026-11-01 00:00:00");
    }
}
