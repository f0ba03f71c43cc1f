//! Owns the review task that publishes an open document's diagnostics for exactly the
//! version it reviewed (they are built in `diagnostic_build`).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tower_lsp_server::ls_types::Uri;

use super::diagnostic_build;
use super::folders::Folder;
use super::session::Session;
use crate::lines::Locator;
use crate::llm::limits::Priority;
use crate::review::llm_agents::{self, FileWork};
use crate::review::{Engine, Outcome, Request, Source};
use crate::scheduler::{Job, Lane};
use crate::syntax::Language;
use crate::workspace;

/// Queues a review of an open document. `delay` is the debounce (zero on open and save).
pub fn schedule_review(session: &Arc<Session>, uri: Uri, lane: Lane, delay: Duration, mut request: Request) {
    request.priority = match lane {
        Lane::Active => Priority::Active,
        Lane::Open => Priority::Open,
        Lane::Workspace => Priority::Workspace,
    };
    let Some(version) = session.with_documents(|d| d.get(&uri).filter(|d| d.language.is_some()).map(|d| d.version))
    else {
        return;
    };
    let s = session.clone();
    let key = uri.to_string();
    session.scheduler.schedule(Job {
        key,
        version: version as i64,
        lane,
        delay,
        parent: None,
        task: Box::new(move |token| {
            Box::pin(async move {
                let started = std::time::Instant::now();
                let reviewed = review_open_document(s, uri, request, token.clone()).await;
                let status = match &reviewed {
                    Some(outcome) if outcome.llm_unavailable.is_empty() => "ok",
                    Some(_) => "error",
                    None if token.is_cancelled() => "cancelled",
                    // Closed, or not reviewable (too large): not a review.
                    None => return,
                };
                crate::metrics::review("edit", status, started.elapsed().as_secs_f64());
            })
        }),
    });
}

/// Reviews the document as it is now and publishes the result if, and only if, the
/// document is still at the reviewed version. Returns the outcome for commands.
pub async fn review_open_document(
    session: Arc<Session>,
    uri: Uri,
    request: Request,
    token: CancellationToken,
) -> Option<Outcome> {
    let snapshot = session.snapshot(&uri)?;
    let folder = session.folder_of(&uri);
    let engine = folder.engine();
    let max = engine.settings().max_file_size;
    if snapshot.text.len() as u64 > max {
        tracing::info!(uri = %uri.as_str(), bytes = snapshot.text.len(), "document over review.max_file_size; not reviewed");
        session.client.publish_diagnostics(uri, Vec::new(), Some(snapshot.version)).await;
        return None;
    }
    let version = snapshot.version;
    let (language, text) = (snapshot.language, snapshot.text);
    let priority = request.priority;
    let path = shown_path(&folder, &uri);
    let started = std::time::Instant::now();
    let mut outcome = run_blocking(engine.clone(), language, path, text.clone(), request, token.clone()).await?;
    session.totals().record(&outcome);
    let mut tokens = 0;
    if !outcome.jobs.is_empty() {
        // Offline findings now; the model's follow when its calls return.
        publish_if_current(&session, uri.clone(), version, &outcome).await;
        tokens = run_llm(&session, &folder, &uri, (language, &text), &mut outcome, priority, &token).await?;
    }
    publish_if_current(&session, uri, version, &outcome).await;
    if let Some(store) = folder.store() {
        let (source, model) = engine.routing().describe();
        let outcome_text = match outcome.llm_unavailable.first() {
            Some(why) => format!("offline only: {why}"),
            None => "ok".into(),
        };
        store.record_review(&crate::store::HistoryRow {
            time: crate::store::HistoryRow::now(),
            trigger: "edit".into(),
            files: 1,
            agents: engine.settings().agents.iter().map(|a| a.as_str().to_string()).collect(),
            source,
            model,
            tokens,
            duration_ms: started.elapsed().as_millis() as u64,
            outcome: outcome_text,
        });
    }
    Some(outcome)
}

/// Runs the LLM agents on the chunks the engine planned and folds their findings into
/// `outcome`. Files that `.gitignore`/`.reviewignore` exclude are never sent. Returns `None`
/// when the review was cancelled meanwhile.
async fn run_llm(
    session: &Session,
    folder: &Folder,
    uri: &Uri,
    (language, text): (Language, &Arc<str>),
    outcome: &mut Outcome,
    priority: Priority,
    token: &CancellationToken,
) -> Option<u64> {
    let engine = folder.engine();
    let root = folder.root.clone();
    let path = uri.to_file_path().map(|p| p.into_owned());
    let check = (root.clone(), path.clone());
    let ignored = tokio::task::spawn_blocking(move || {
        check.1.as_deref().is_some_and(|p| workspace::is_ignored(check.0.as_deref(), p))
    })
    .await
    .unwrap_or(true);
    if ignored {
        tracing::debug!(uri = %uri.as_str(), "ignored file: not sent to LLM agents");
        outcome.jobs.clear();
        return Some(0);
    }
    let shown = shown_path(folder, uri);
    let work = vec![FileWork { path: shown, text: text.clone(), language, jobs: std::mem::take(&mut outcome.jobs) }];
    let report = llm_agents::run(engine.routing(), engine.cache().map(|c| &**c), &work, priority, token).await;
    super::llm_notice::record_calls(session, &engine, &report.calls).await;
    if token.is_cancelled() {
        return None;
    }
    let result = report.files.into_iter().next().unwrap_or_default();
    engine.complete(&Source { language, text, path: &work[0].path }, outcome, result);
    if let Some(why) = outcome.llm_unavailable.first() {
        session.warn_llm_once(why).await;
    }
    Some(report.calls.iter().map(|c| c.prompt_tokens + c.completion_tokens).sum())
}

/// How a document is named to models and in stored results: relative to its folder's root
/// when inside it.
fn shown_path(folder: &Folder, uri: &Uri) -> String {
    match uri.to_file_path() {
        Some(p) => folder.shown_path(&p),
        None => uri.as_str().rsplit('/').next().unwrap_or("untitled").to_string(),
    }
}

/// Runs the CPU-bound review off the async threads. A panic inside is re-raised here so
/// the scheduler's per-job guard reports it.
pub async fn run_blocking(
    engine: Arc<Engine>,
    language: Language,
    path: String,
    text: Arc<str>,
    request: Request,
    token: CancellationToken,
) -> Option<Outcome> {
    let joined = tokio::task::spawn_blocking(move || {
        let source = Source { language, text: &text, path: &path };
        engine.review(&source, &request, &token)
    })
    .await;
    match joined {
        Ok(Ok(outcome)) => Some(outcome),
        Ok(Err(_cancelled)) => None,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}

pub async fn publish_if_current(session: &Session, uri: Uri, version: i32, outcome: &Outcome) {
    // The rope is cloned (O(1), shared) under the lock; the diagnostics are built outside it.
    let rope = session.with_documents(|docs| docs.get(&uri).filter(|d| d.version == version).map(|d| d.rope.clone()));
    match rope {
        Some(rope) => {
            let enc = session.info().encoding;
            let max = session.folder_of(&uri).engine().settings().max_findings_per_file;
            let diagnostics =
                diagnostic_build::build(&Locator::from_rope(rope), Some(version), &outcome.findings, enc, max);
            session.totals().published += 1;
            session.client.publish_diagnostics(uri, diagnostics, Some(version)).await;
        }
        None => {
            // A newer edit arrived while we reviewed; its own review will publish. Keeping
            // the last good set until then avoids flicker.
            session.totals().stale_results_dropped += 1;
        }
    }
}
