//! Owns the editor's review flow: the offline phase on a worker, published for exactly the
//! version it reviewed, then the model phase on its own task (`model_tasks.rs`). The
//! diagnostics themselves are built in `diagnostic_build`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tower_lsp_server::ls_types::Uri;

use super::diagnostic_build;
use super::folders::Folder;
use super::session::Session;
use crate::lines::Locator;
use crate::llm::limits::Priority;
use crate::review::finding::{Category, Finding};
use crate::review::{Outcome, Request, phases};
use crate::scheduler::{Job, Lane};

/// Queues a review of an open document. `delay` is the debounce (zero on open and save).
/// The offline phase runs on a worker and publishes; the model phase then runs as its own
/// task (`model_tasks`), so the worker is free for the next document at once.
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
    session.model_tasks.cancel_older(&uri, version);
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
                let _ = review_open_document(s, uri, request, token).await;
            })
        }),
    });
}

/// A review under way: the offline result is published; the model's, if any, will follow.
pub enum Reviewing {
    Done(Box<Outcome>),
    /// The model phase runs on its own task; this gets its outcome (`None` if cancelled).
    Model(oneshot::Receiver<Option<Outcome>>),
}

/// Reviews the document as it is now and publishes the offline result if, and only if, the
/// document is still at the reviewed version; then starts the model phase, which publishes the
/// combined result under the same rule. `None` when nothing was reviewed (closed, too large,
/// cancelled).
pub async fn review_open_document(
    session: Arc<Session>,
    uri: Uri,
    request: Request,
    token: CancellationToken,
) -> Option<Reviewing> {
    let snapshot = session.snapshot(&uri)?;
    let folder = session.folder_of(&uri);
    let engine = folder.engine();
    let max = engine.settings().max_file_size;
    if snapshot.text.len() as u64 > max {
        tracing::info!(uri = %uri.as_str(), bytes = snapshot.text.len(), "document over review.max_file_size; not reviewed");
        session.client.publish_diagnostics(uri, Vec::new(), Some(snapshot.version)).await;
        return None;
    }
    let edit = EditReview {
        uri: uri.clone(),
        version: snapshot.version,
        priority: request.priority,
        only: request.agents.clone(),
        folder: folder.clone(),
        started: std::time::Instant::now(),
    };
    let file = phases::File {
        language: snapshot.language,
        text: snapshot.text,
        path: shown_path(&folder, &uri),
        ignore_check: uri.to_file_path().map(|p| (folder.root.clone(), p.into_owned())),
    };
    let reviewed = match phases::offline(engine, file, request, token.clone()).await {
        Ok(reviewed) => reviewed,
        Err(_cancelled) => {
            crate::metrics::review("edit", "cancelled", edit.started.elapsed().as_secs_f64());
            return None;
        }
    };
    session.totals().record(&reviewed.offline);
    publish_if_current(&session, uri.clone(), edit.version, &reviewed.offline, edit.only.as_ref()).await;
    let Some(model) = reviewed.model else {
        edit.finish(&reviewed.offline, 0);
        return Some(Reviewing::Done(Box::new(reviewed.offline)));
    };
    let s = session.clone();
    let active = edit.priority == Priority::Active;
    let (version, tasks) = (edit.version, session.model_tasks.clone());
    Some(Reviewing::Model(tasks.start(uri, version, active, move |cancel| model_phase(s, edit, model, cancel))))
}

/// One editor review between its phases: what the model phase needs to publish and record.
struct EditReview {
    uri: Uri,
    version: i32,
    priority: Priority,
    /// The agents this review was limited to (`reviewFile {agent}`), if any.
    only: Option<BTreeSet<Category>>,
    folder: Arc<Folder>,
    started: std::time::Instant,
}

impl EditReview {
    /// Records the finished review: its metric and the folder's history row.
    fn finish(&self, outcome: &Outcome, tokens: u64) {
        let status = if outcome.llm_unavailable.is_empty() { "ok" } else { "error" };
        crate::metrics::review("edit", status, self.started.elapsed().as_secs_f64());
        let Some(store) = self.folder.store() else { return };
        let engine = self.folder.engine();
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
            duration_ms: self.started.elapsed().as_millis() as u64,
            outcome: outcome_text,
        });
    }
}

/// The model phase of one editor review: the calls, then the combined result published if the
/// document is still at the reviewed version.
async fn model_phase(
    session: Arc<Session>,
    edit: EditReview,
    model: phases::ModelPhase,
    cancel: CancellationToken,
) -> Option<Outcome> {
    let engine = edit.folder.engine();
    let report = phases::models(&engine, vec![model], edit.priority, &cancel).await;
    super::llm_notice::record_calls(&session, &engine, &report.calls).await;
    if cancel.is_cancelled() {
        crate::metrics::review("edit", "cancelled", edit.started.elapsed().as_secs_f64());
        return None;
    }
    let tokens = report.tokens();
    let outcome = report.outcomes.into_iter().next()?;
    if let Some(why) = outcome.llm_unavailable.first() {
        session.warn_llm_once(why).await;
    }
    publish_if_current(&session, edit.uri.clone(), edit.version, &outcome, edit.only.as_ref()).await;
    edit.finish(&outcome, tokens);
    Some(outcome)
}

/// How a document is named to models and in stored results: relative to its folder's root
/// when inside it.
fn shown_path(folder: &Folder, uri: &Uri) -> String {
    match uri.to_file_path() {
        Some(p) => folder.shown_path(&p),
        None => uri.as_str().rsplit('/').next().unwrap_or("untitled").to_string(),
    }
}

/// Publishes `outcome` if the document is still at `version`. A review limited to some agents
/// (`only`) replaces just their findings in what was last published for that version, so the
/// rest of the file's diagnostics stay.
pub async fn publish_if_current(
    session: &Session,
    uri: Uri,
    version: i32,
    outcome: &Outcome,
    only: Option<&BTreeSet<Category>>,
) {
    // The rope is cloned (O(1), shared) under the lock; the diagnostics are built outside it.
    let current = session.with_documents(|docs| {
        docs.get(&uri).filter(|d| d.version == version).map(|d| (d.rope.clone(), d.published.clone()))
    });
    let Some((rope, previous)) = current else {
        // A newer edit arrived while we reviewed; its own review will publish. Keeping the
        // last good set until then avoids flicker.
        session.totals().stale_results_dropped += 1;
        return;
    };
    let findings: Arc<Vec<Finding>> = match (only, previous) {
        (Some(agents), Some((published, before))) if published == version => Arc::new(
            before.iter().filter(|f| !agents.contains(&f.category)).chain(&outcome.findings).cloned().collect(),
        ),
        _ => Arc::new(outcome.findings.clone()),
    };
    let enc = session.info().encoding;
    let max = session.folder_of(&uri).engine().settings().max_findings_per_file;
    let diagnostics = diagnostic_build::build(&Locator::from_rope(rope), Some(version), &findings, enc, max);
    session.with_documents(|docs| {
        if let Some(doc) = docs.get_mut(&uri).filter(|d| d.version == version) {
            doc.published = Some((version, findings));
        }
    });
    session.totals().published += 1;
    session.client.publish_diagnostics(uri, diagnostics, Some(version)).await;
}
