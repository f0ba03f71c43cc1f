//! Owns the workspace scan command: discover the files of every workspace folder (or the one
//! given), queue one job per file in the workspace lane under the settings of the folder that
//! holds it, publish each file's diagnostics, and report `$/progress` until done or cancelled
//! (through `window/workDoneProgress/cancel` or `$/cancelRequest`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::{NumberOrString, ProgressToken, Uri};

use super::diagnostic_build;
use super::diagnostics::publish_if_current;
use super::folders::Folder;
use super::session::{Session, Snapshot};
use crate::lines::Locator;
use crate::llm::limits::Priority;
use crate::review::{Request, phases};
use crate::scheduler::{Job, Lane};
use crate::syntax::Language;
use crate::workspace;

/// Each scan gets a higher version, so a new scan supersedes the queued files of an old one.
static SCAN_GENERATION: AtomicI64 = AtomicI64::new(0);

/// Files a scan holds at once, from the first read to the last publish (model phase included):
/// what bounds its memory, whatever the workspace's size. At least two model batches, so one
/// batch can fill while the other's calls run.
fn files_in_flight(folders: &[Arc<Folder>]) -> usize {
    let batch = folders.iter().map(|f| f.engine().routing().batch_max_files).max().unwrap_or(1);
    (batch * 2).clamp(8, 256)
}

/// How often progress is reported at most; more would flood slow clients.
const REPORT_EVERY: Duration = Duration::from_millis(100);

/// One scanned file's result, with the index of its folder in the scan's folder list.
struct Reported {
    folder: usize,
    result: FileResult,
}

enum FileResult {
    Reviewed {
        findings: usize,
    },
    /// Offline findings are published; LLM jobs wait to be batched with other files'.
    Pending(Box<Pending>),
    Skipped,
}

struct Pending {
    uri: Uri,
    /// The open document's version, or `None` for a file read from disk.
    version: Option<i32>,
    language: Language,
    text: Arc<str>,
    model: phases::ModelPhase,
    started: Instant,
    /// Counts this file against the scan's files in flight until its batch is published.
    _slot: OwnedSemaphorePermit,
}

/// What one folder contributed to a scan, for its history row.
#[derive(Default)]
struct FolderTally {
    files: u64,
    skipped: u64,
    tokens: u64,
}

pub async fn scan_workspace(
    session: Arc<Session>,
    args: &[Value],
    client_token: Option<ProgressToken>,
) -> Result<Value> {
    let info = session.info();
    let roots: Vec<PathBuf> = targets(&session, args)?.iter().filter_map(|f| f.root.clone()).collect();
    let cancel = CancellationToken::new();
    // Dropping this handler's future (`$/cancelRequest`) cancels the scan too.
    let _cancel_on_drop = cancel.clone().drop_guard();

    let token = match client_token {
        Some(t) => Some(t),
        None if info.progress => {
            let t = NumberOrString::String(format!("review-lsp/scan/{}", SCAN_GENERATION.load(Ordering::Relaxed) + 1));
            session.client.create_work_done_progress(t.clone()).await.ok().map(|_| t)
        }
        None => None,
    };
    let token_key = token.as_ref().map(token_key);
    if let Some(key) = &token_key {
        session.scans.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), cancel.clone());
    }
    let progress = match token.clone() {
        Some(t) => Some(
            session
                .client
                .progress(t, "Review workspace")
                .with_percentage(0)
                .with_cancel_button()
                .with_message("discovering files")
                .begin()
                .await,
        ),
        None => None,
    };

    let started = Instant::now();
    let files = tokio::task::spawn_blocking(move || {
        let mut files = workspace::discover(&roots);
        // Nested folders are walked by their parent too.
        files.sort();
        files.dedup();
        files
    })
    .await
    .unwrap_or_default();
    let total = files.len();
    let generation = SCAN_GENERATION.fetch_add(1, Ordering::Relaxed) + 1;
    // The folders the files belong to: each file is reviewed under its innermost folder.
    let mut folders: Vec<Arc<Folder>> = Vec::new();
    let mut owned: Vec<(PathBuf, usize)> = Vec::with_capacity(files.len());
    for path in files {
        let folder = session.folders.for_path(&path);
        let index = match folders.iter().position(|f| Arc::ptr_eq(f, &folder)) {
            Some(i) => i,
            None => {
                folders.push(folder);
                folders.len() - 1
            }
        };
        owned.push((path, index));
    }
    let in_flight = files_in_flight(&folders);
    // Bounded, and never full: a file holds a slot of `in_flight` until it has reported.
    let (tx, mut rx) = mpsc::channel(in_flight);
    tokio::spawn(feed(session.clone(), folders.clone(), owned, in_flight, generation, cancel.clone(), tx));
    let (mut done, mut skipped, mut findings) = (0usize, 0usize, 0usize);
    let mut tallies: Vec<FolderTally> = folders.iter().map(|_| FolderTally::default()).collect();
    let mut last_report = Instant::now();
    // LLM jobs are batched per folder: each folder has its own endpoints and cache.
    let mut pending: Vec<Vec<Pending>> = folders.iter().map(|_| Vec::new()).collect();
    // Ends when every job has reported or was dropped (superseded or cancelled).
    while let Some(Reported { folder: i, result }) = rx.recv().await {
        done += 1;
        tallies[i].files += 1;
        match result {
            FileResult::Reviewed { findings: n } => findings += n,
            FileResult::Pending(p) => {
                pending[i].push(*p);
                let waiting: usize = pending.iter().map(Vec::len).sum();
                // A full batch goes; so does the largest when waiting files hold half the slots
                // (several folders filling batches at once would otherwise starve the feeder).
                let full = pending[i].len() >= folders[i].engine().routing().batch_max_files;
                let flush = if full {
                    Some(i)
                } else if waiting * 2 >= in_flight {
                    largest(&pending)
                } else {
                    None
                };
                if let Some(j) = flush {
                    let (n, tokens) = run_batch(&session, &folders[j], std::mem::take(&mut pending[j]), &cancel).await;
                    findings += n;
                    tallies[j].tokens += tokens;
                }
            }
            FileResult::Skipped => {
                skipped += 1;
                tallies[i].skipped += 1;
            }
        }
        if let Some(p) = &progress {
            if last_report.elapsed() >= REPORT_EVERY {
                last_report = Instant::now();
                let pct = (done * 100 / total.max(1)) as u32;
                p.report_with_message(format!("{done}/{total} files"), pct, None).await;
            }
        }
    }
    for (i, files) in pending.into_iter().enumerate().filter(|(_, p)| !p.is_empty()) {
        let (n, tokens) = run_batch(&session, &folders[i], files, &cancel).await;
        findings += n;
        tallies[i].tokens += tokens;
    }
    let cancelled = cancel.is_cancelled();
    // A newer scan's jobs replace this one's queued (and cancel its running) files, which then
    // never report here: say so rather than claim a complete scan of fewer files.
    let superseded = !cancelled && done < total && SCAN_GENERATION.load(Ordering::Relaxed) > generation;
    if let Some(key) = &token_key {
        session.scans.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
    let (outcome, summary) = if cancelled {
        ("cancelled", format!("cancelled after {done}/{total} files"))
    } else if superseded {
        ("superseded", format!("superseded by a newer scan after {done}/{total} files"))
    } else {
        ("ok", format!("{done} files, {findings} findings, {skipped} skipped"))
    };
    if let Some(p) = progress {
        p.finish_with_message(summary.clone()).await;
    }
    for (folder, tally) in folders.iter().zip(&tallies) {
        record_history(folder, tally, outcome, started.elapsed());
    }
    Ok(json!({
        "files": total,
        "files_scanned": done - skipped,
        "files_skipped": skipped,
        "findings": findings,
        "cancelled": cancelled,
        "superseded": superseded,
        "duration_ms": started.elapsed().as_millis() as u64,
        "summary": summary,
    }))
}

/// The folders a scan covers: the one named by `[folderUri]`, else every folder.
fn targets(session: &Session, args: &[Value]) -> Result<Vec<Arc<Folder>>> {
    if let Some(folder) = super::commands::folder_arg(session, args)? {
        return Ok(vec![folder]);
    }
    let all = session.folders.all();
    if all.is_empty() { Err(Error::invalid_params("no workspace folder to scan")) } else { Ok(all) }
}

/// Adds the scan's row to the folder's review history.
fn record_history(folder: &Folder, tally: &FolderTally, outcome: &str, took: Duration) {
    let Some(store) = folder.store() else { return };
    let engine = folder.engine();
    let (source, model) = engine.routing().describe();
    store.record_review(&crate::store::HistoryRow {
        time: crate::store::HistoryRow::now(),
        trigger: "scan".into(),
        files: tally.files - tally.skipped,
        agents: engine.settings().agents.iter().map(|a| a.as_str().to_string()).collect(),
        source,
        model,
        tokens: tally.tokens,
        duration_ms: took.as_millis() as u64,
        outcome: outcome.into(),
    });
}

pub fn cancel(session: &Session, token: &ProgressToken) {
    if let Some(scan) = session.scans.lock().unwrap_or_else(|p| p.into_inner()).get(&token_key(token)) {
        scan.cancel();
    }
}

fn token_key(t: &ProgressToken) -> String {
    match t {
        NumberOrString::Number(n) => n.to_string(),
        NumberOrString::String(s) => s.clone(),
    }
}

/// The index of the folder with the most files waiting for their model batch.
fn largest(pending: &[Vec<Pending>]) -> Option<usize> {
    pending.iter().enumerate().filter(|(_, p)| !p.is_empty()).max_by_key(|(_, p)| p.len()).map(|(i, _)| i)
}

/// Queues the scan's files in the workspace lane, at most `in_flight` at a time: a file is
/// queued only when an earlier one has been published (or dropped), so a scan of any size holds
/// a bounded number of texts.
async fn feed(
    session: Arc<Session>,
    folders: Vec<Arc<Folder>>,
    files: Vec<(PathBuf, usize)>,
    in_flight: usize,
    generation: i64,
    cancel: CancellationToken,
    tx: mpsc::Sender<Reported>,
) {
    let slots = Arc::new(Semaphore::new(in_flight));
    for (path, index) in files {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
            _ = cancel.cancelled() => return,
        };
        // A newer scan replaced this one: its files are its to queue.
        if SCAN_GENERATION.load(Ordering::Relaxed) > generation {
            return;
        }
        let (s, tx, folder) = (session.clone(), tx.clone(), folders[index].clone());
        session.scheduler.schedule(Job {
            key: format!("scan:{}", path.display()),
            version: generation,
            lane: Lane::Workspace,
            delay: Duration::ZERO,
            parent: Some(cancel.clone()),
            // Dropping the task (superseded, cancelled) frees the slot with it.
            task: Box::new(move |token| Box::pin(scan_file(s, folder, index, path, token, tx, slot))),
        });
    }
}

/// Reviews one file: the editor's buffer if it is open (what the user sees), else the disk.
async fn scan_file(
    session: Arc<Session>,
    folder: Arc<Folder>,
    index: usize,
    path: PathBuf,
    token: CancellationToken,
    tx: mpsc::Sender<Reported>,
    slot: OwnedSemaphorePermit,
) {
    if token.is_cancelled() {
        return;
    }
    let Some(uri) = Uri::from_file_path(&path) else { return };
    let Some(language) = Language::from_path(&path) else { return };
    let send = |result| async {
        let _ = tx.send(Reported { folder: index, result }).await;
    };
    let engine = folder.engine();
    let (snapshot, open) = match session.snapshot(&uri) {
        // An open buffer over review.max_file_size is skipped like the file on disk would be
        // (and as an edit of it is). Without this check a scan reviewed a 50 MB open buffer
        // in full (tests/stress_bad_input.rs).
        Some(s) if s.text.len() as u64 > engine.settings().max_file_size => {
            let bytes = s.text.len();
            tracing::info!(path = %path.display(), bytes, "open document over review.max_file_size; skipped");
            send(FileResult::Skipped).await;
            return;
        }
        Some(s) => (s, true),
        None => {
            let max = engine.settings().max_file_size;
            let p = path.clone();
            match tokio::task::spawn_blocking(move || workspace::load(&p, max)).await {
                Ok(Ok(text)) => (Snapshot { text: Arc::from(text), version: 0, language }, false),
                Ok(Err(skip)) => {
                    tracing::info!(path = %path.display(), "{skip}");
                    send(FileResult::Skipped).await;
                    return;
                }
                Err(_) => return,
            }
        }
    };
    let (version, text) = (snapshot.version, snapshot.text);
    let started = Instant::now();
    let file = phases::File { language, text: text.clone(), path: folder.shown_path(&path), ignore_check: None };
    let Ok(reviewed) = phases::offline(engine, file, Request::default(), token.clone()).await else { return };
    session.totals().record(&reviewed.offline);
    let version = open.then_some(version);
    publish_scanned(&session, &uri, version, &text, &reviewed.offline).await;
    let Some(model) = reviewed.model else {
        crate::metrics::review("scan", "ok", started.elapsed().as_secs_f64());
        send(FileResult::Reviewed { findings: reviewed.offline.findings.len() }).await;
        return;
    };
    let pending = Pending { uri, version, language, text, model, started, _slot: slot };
    send(FileResult::Pending(Box::new(pending))).await;
}

/// Publishes a scanned file's findings only over the text they were computed for: an open
/// document still at the reviewed version, or a file read from disk that is still not open
/// (once the editor has it, its own reviews publish, versioned). Anything else is dropped.
/// The diagnostics are built outside the documents lock (the rope is cloned under it, O(1)).
async fn publish_scanned(
    session: &Session,
    uri: &Uri,
    version: Option<i32>,
    text: &str,
    outcome: &crate::review::Outcome,
) {
    if let Some(version) = version {
        return publish_if_current(session, uri.clone(), version, outcome, None).await;
    }
    if session.with_documents(|docs| docs.contains_key(uri)) {
        session.totals().stale_results_dropped += 1;
        return;
    }
    let enc = session.info().encoding;
    let max = session.folder_of(uri).engine().settings().max_findings_per_file;
    let diagnostics = diagnostic_build::build(&Locator::new(text), None, &outcome.findings, enc, max);
    session.totals().published += 1;
    session.client.publish_diagnostics(uri.clone(), diagnostics, None).await;
}

/// Sends the LLM jobs of several scanned files in shared calls (per agent), then publishes
/// each file's combined findings. Returns how many findings those files have now.
async fn run_batch(
    session: &Arc<Session>,
    folder: &Folder,
    files: Vec<Pending>,
    cancel: &CancellationToken,
) -> (usize, u64) {
    let engine = folder.engine();
    let (models, files): (Vec<_>, Vec<_>) = files
        .into_iter()
        .map(|p| {
            let Pending { uri, version, language, text, model, started, _slot } = p;
            (model, (uri, version, language, text, started, _slot))
        })
        .unzip();
    let report = phases::models(&engine, models, Priority::Workspace, cancel).await;
    super::llm_notice::record_calls(session, &engine, &report.calls).await;
    let mut total = 0;
    for ((uri, version, _language, text, started, _slot), outcome) in files.into_iter().zip(&report.outcomes) {
        let status = if outcome.llm_unavailable.is_empty() { "ok" } else { "error" };
        crate::metrics::review("scan", status, started.elapsed().as_secs_f64());
        if let Some(why) = outcome.llm_unavailable.first() {
            session.warn_llm_once(why).await;
        }
        if !cancel.is_cancelled() {
            publish_scanned(session, &uri, version, &text, outcome).await;
        }
        total += outcome.findings.len();
    }
    (total, report.tokens())
}
