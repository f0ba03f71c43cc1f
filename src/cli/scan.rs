//! Owns `review-lsp scan`: settings, cache, discovery, the parallel review of every file, and
//! handing the [`Report`] to the chosen format. The review itself is
//! [`phases`], the same entry point the server uses.
//!
//! Decisions worth knowing:
//! - A broken settings file (unreadable, not TOML) is exit 2 whether it came from `--config`
//!   or from `<root>/review-lsp.toml`: in CI, silently scanning with defaults would hide it.
//!   Unknown keys and bad values are warnings, and the rest applies.
//! - Skipped files (too large, binary, not UTF-8, unreadable) are reported on stderr and in
//!   the report, and do not change the exit code.
//! - A panic while reviewing one file skips that file; the rest of the scan goes on.

use std::io::{self, IsTerminal, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::output::{self, Report, Reported, Skipped, stderr};
use super::{EXIT_USAGE, Format, ScanArgs};
use crate::config::{self, Config, Layer};
use crate::llm::limits::Priority;
use crate::review::llm_agents::{self, CallRecord, Routing};
use crate::review::{Engine, Outcome, Request, phases};
use crate::store::{HistoryRow, Store, StoredReport};
use crate::syntax::Language;
use crate::workspace;

pub fn run(args: &ScanArgs) -> ExitCode {
    crate::logging::init_cli();
    match scan(args) {
        Ok(code) => code,
        Err(message) => {
            stderr::error(message);
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// `Err` is a usage or configuration error (exit 2), already worded for the user.
fn scan(args: &ScanArgs) -> Result<ExitCode, String> {
    let started = Instant::now();
    for path in &args.paths {
        if let Err(err) = std::fs::metadata(path) {
            return Err(format!("{}: {err}", path.display()));
        }
    }
    let root = scan_root(&args.paths[0]);
    let resolved = load_config(args.config.as_deref(), &root, args)?;
    let (routing, problems) = Routing::from_resolved(&resolved);
    let config = resolved.config;
    // Before anything is read or sent: the user (or a CI log) sees where the code goes.
    for destination in routing.destinations() {
        stderr::say(format!("review-lsp: {destination}"));
    }
    llm_agents::configure(&config.limits, &config.budget);
    for problem in problems {
        stderr::warning(problem);
    }

    // Opened even without caching: it also keeps the daily spend, which must persist.
    let store = Arc::new(Store::open(&config.cache.resolved_dir(), &root, &config.cache.store_settings()));
    llm_agents::persist_budget_in(Arc::clone(&store));
    llm_agents::share_limits_through(&store);
    let cache = (!args.no_cache && config.cache.enabled).then(|| Arc::clone(&store));
    let engine = Engine::new(config.review.clone(), cache.clone()).with_llm(routing);

    let files = workspace::discover(&args.paths);
    let mut results = review_all(&engine, &files, &root, config.review.max_file_size);
    let calls = run_llm_agents(&engine, &mut results);

    let mut report = Report { root_uri: root_uri(&root), ..Report::default() };
    for call in &calls {
        report.stats.llm_calls += 1;
        report.stats.prompt_tokens += call.prompt_tokens;
        report.stats.completion_tokens += call.completion_tokens;
    }
    // `results` are in `files` order.
    for (file, result) in files.iter().zip(results) {
        match result {
            FileResult::Reviewed { findings, outcome, .. } => {
                let s = &mut report.stats;
                s.files_scanned += 1;
                if outcome.cache_hit {
                    s.cache_hits += 1;
                } else {
                    s.cache_misses += 1;
                }
                for why in &outcome.llm_unavailable {
                    // Named, so a user (or a test) can tell which files lack the model's review.
                    stderr::warning(format_args!(
                        "LLM review unavailable for {}: {why}",
                        output::relative_path(&root, file)
                    ));
                }
                report.findings.extend(findings);
            }
            FileResult::Skipped(skipped) => report.skipped.push(skipped),
        }
    }
    report.stats.files_skipped = report.skipped.len() as u64;
    report.stats.findings = report.findings.len() as u64;
    report.stats.duration_ms = started.elapsed().as_millis() as u64;

    for s in &report.skipped {
        stderr::say(format_args!("skipped {}: {}", s.path, s.reason));
    }
    if files.is_empty() {
        stderr::warning(format_args!("no files to review under {}", display_paths(&args.paths)));
    }

    keep_artifacts(&store, &report, &root, &engine, &config);
    store.flush();
    if let Some(file) = &args.metrics_file {
        llm_agents::export_metrics();
        crate::metrics::set_redis_up(store.team().map(|t| t.state() == crate::store::redis_backend::BackendState::Up));
        std::fs::write(file, crate::metrics::encode())
            .map_err(|e| format!("cannot write the metrics to {}: {e}", file.display()))?;
    }

    let failed = args.fail_on.threshold().is_some_and(|min| report.findings.iter().any(|r| r.finding.severity >= min));
    let code = if failed { ExitCode::from(1) } else { ExitCode::SUCCESS };
    match print(&report, args.format) {
        Ok(()) => Ok(code),
        // `review-lsp scan | head`: the reader left, which is not our failure.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(code),
        Err(err) => Err(format!("cannot write the report: {err}")),
    }
}

/// Keeps the report (JSON, SARIF, markdown) and a history row in the workspace's store.
fn keep_artifacts(store: &Store, report: &Report, root: &Path, engine: &Engine, config: &Config) {
    let render = |write: fn(&Report, &mut dyn Write) -> io::Result<()>| {
        let mut out = Vec::new();
        write(report, &mut out).ok().map(|()| String::from_utf8_lossy(&out).into_owned()).unwrap_or_default()
    };
    let shown_root = root.display().to_string();
    let s = &report.stats;
    store.save_report(StoredReport {
        id: 0,
        time: HistoryRow::now(),
        root: shown_root.clone(),
        files: s.files_scanned,
        findings: s.findings,
        json: render(output::json::write),
        sarif: render(output::sarif::write),
        markdown: output::markdown::summary(report, &shown_root),
    });
    let (source, model) = engine.routing().describe();
    store.record_review(&HistoryRow {
        time: HistoryRow::now(),
        trigger: "cli".into(),
        files: s.files_scanned,
        agents: config.review.agents.iter().map(|a| a.as_str().to_string()).collect(),
        source,
        model,
        tokens: s.prompt_tokens + s.completion_tokens,
        duration_ms: s.duration_ms,
        outcome: "ok".into(),
    });
}

/// Where paths are relative to and `review-lsp.toml` is read from: the first path if it is a
/// directory, else its parent.
fn scan_root(first: &Path) -> PathBuf {
    if first.is_dir() {
        return first.to_path_buf();
    }
    match first.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn root_uri(root: &Path) -> Option<String> {
    let abs = std::fs::canonicalize(root).or_else(|_| std::path::absolute(root)).ok()?;
    let uri = output::sarif::file_uri(&abs);
    Some(if uri.ends_with('/') { uri } else { uri + "/" })
}

/// Resolves settings for a scan. Sensitive keys from the scanned tree's own file apply only
/// with `--trust-workspace-config`, REVIEW_LSP_TRUST_WORKSPACE=1 or a trusted folder; what was
/// ignored is said on stderr in one line. A file given with `--config` is trusted.
fn load_config(explicit: Option<&Path>, root: &Path, args: &ScanArgs) -> Result<config::Resolved, String> {
    let mut sources = config::Sources::new(Some(root));
    sources.config_file = explicit.map(Layer::from_config_flag).transpose().map_err(|p| p.to_string())?;
    sources.trust_workspace = args.trust_workspace_config || config::trust_from_env();
    // Command-line flags win over every file, through the same schema.
    let flags = [("llm.provider", &args.provider), ("llm.model", &args.model), ("llm.base_url", &args.base_url)];
    sources.cli = Layer::from_flags(
        flags.into_iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, serde_json::Value::String(v.clone())))),
    );
    let resolved = config::load(sources);
    for warning in resolved.warnings() {
        stderr::warning(warning);
    }
    Ok(resolved)
}

enum FileResult {
    /// `pending` is what the LLM agents still have to review in the file.
    Reviewed {
        findings: Vec<Reported>,
        outcome: Outcome,
        pending: Option<Box<phases::ModelPhase>>,
    },
    Skipped(Skipped),
}

/// Sends every file's pending LLM jobs in batches (across files, per agent), then folds the
/// findings back into each file. Texts are kept only for files with pending jobs.
fn run_llm_agents(engine: &Engine, results: &mut [FileResult]) -> Vec<CallRecord> {
    let mut work = Vec::new();
    let mut owners = Vec::new();
    for (i, result) in results.iter_mut().enumerate() {
        if let FileResult::Reviewed { pending: pending @ Some(_), .. } = result {
            work.extend(pending.take().map(|m| *m));
            owners.push(i);
        }
    }
    if work.is_empty() {
        return Vec::new();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            stderr::warning(format_args!("cannot start the async runtime for LLM calls ({e}); offline findings only"));
            return Vec::new();
        }
    };
    stderr::say(format_args!("sending {} files to the LLM agents", work.len()));
    let cancel = CancellationToken::new();
    let llm_started = Instant::now();
    let shown: Vec<(String, Arc<str>)> = work.iter().map(|m| (m.file().path.clone(), m.file().text.clone())).collect();
    let report = runtime.block_on(async {
        let progress = tokio::spawn(super::llm_progress::report(work.len()));
        let report = phases::models(engine, work, Priority::Workspace, &cancel).await;
        progress.abort();
        report
    });
    for ((i, (path, text)), mut combined) in owners.into_iter().zip(shown).zip(report.outcomes) {
        if let FileResult::Reviewed { findings, outcome, .. } = &mut results[i] {
            *findings = output::locate(&path, &text, std::mem::take(&mut combined.findings));
            *outcome = combined;
            // These files waited for the whole LLM phase.
            let status = if outcome.llm_unavailable.is_empty() { "ok" } else { "error" };
            crate::metrics::review("cli", status, llm_started.elapsed().as_secs_f64());
        }
    }
    report.calls
}

/// Reviews `files` on one worker per core (or `review.workers`). Workers pull the next index
/// from a shared counter, so a few huge files do not leave the other workers idle, and
/// results come back in `files` order.
fn review_all(engine: &Engine, files: &[PathBuf], root: &Path, max_size: u64) -> Vec<FileResult> {
    let workers = engine.settings().worker_count().clamp(1, files.len().max(1));
    let progress = progress_bar(files.len());
    let next = AtomicUsize::new(0);
    let mut indexed: Vec<(usize, FileResult)> = Vec::with_capacity(files.len());

    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(i) else { break };
                        done.push((i, review_file(engine, path, root, max_size)));
                        if let Some(bar) = &progress {
                            bar.inc(1);
                        }
                    }
                    done
                })
            })
            .collect();
        for handle in handles {
            // `review_file` catches panics, so a worker itself does not panic.
            indexed.extend(handle.join().unwrap_or_default());
        }
    });
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    indexed.sort_unstable_by_key(|(i, _)| *i);
    indexed.into_iter().map(|(_, r)| r).collect()
}

fn review_file(engine: &Engine, path: &Path, root: &Path, max_size: u64) -> FileResult {
    let rel = output::relative_path(root, path);
    let skipped = |reason: String| FileResult::Skipped(Skipped { path: rel.clone(), reason });
    let Some(language) = Language::from_path(path) else {
        return skipped("not a supported language".into());
    };
    let text = match workspace::load(path, max_size) {
        Ok(text) => text,
        Err(skip) => return skipped(skip.to_string()),
    };
    let started = Instant::now();
    let text: Arc<str> = Arc::from(text);
    let file = phases::File { language, text: text.clone(), path: rel.clone(), ignore_check: None };
    let reviewed = catch_unwind(AssertUnwindSafe(|| {
        phases::offline_blocking(engine, file, &Request::default(), &CancellationToken::new())
    }));
    // A file with LLM work pending is counted when that work is done (`run_llm_agents`).
    let pending_llm = matches!(&reviewed, Ok(Ok(r)) if r.model.is_some());
    if !pending_llm {
        let status = if reviewed.is_ok() { "ok" } else { "error" };
        crate::metrics::review("cli", status, started.elapsed().as_secs_f64());
    }
    match reviewed {
        Ok(Ok(phases::Reviewed { mut offline, model })) => {
            let findings = output::locate(&rel, &text, std::mem::take(&mut offline.findings));
            FileResult::Reviewed { findings, outcome: offline, pending: model.map(Box::new) }
        }
        // Nothing cancels a scan's token; kept total rather than unreachable.
        Ok(Err(cancelled)) => skipped(cancelled.to_string()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(path = %rel, "review panicked: {what}");
            skipped(format!("internal error while reviewing (a bug, please report it): {what}"))
        }
    }
}

/// A bar on stderr, and only when stderr is a terminal: logs and CI output stay clean.
fn progress_bar(len: usize) -> Option<ProgressBar> {
    if !io::stderr().is_terminal() || len == 0 {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} reviewing {pos}/{len} files {wide_bar} {elapsed}") {
        bar.set_style(style);
    }
    Some(bar)
}

fn print(report: &Report, format: Format) -> io::Result<()> {
    match format {
        Format::Text => {
            // anstream strips the styles unless stdout is a terminal that wants colour.
            let mut out = io::BufWriter::new(anstream::stdout().lock());
            output::text::write(report, &mut out)?;
            out.flush()
        }
        Format::Json => print_plain(report, output::json::write),
        Format::Sarif => print_plain(report, output::sarif::write),
        Format::Github => print_plain(report, output::github::write),
    }
}

fn print_plain(report: &Report, write: fn(&Report, &mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    write(report, &mut out)?;
    out.flush()
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}
