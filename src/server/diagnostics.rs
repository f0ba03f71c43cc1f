//! Owns turning findings into LSP diagnostics (with the fix carried in `Diagnostic.data`)
//! and the review task that publishes them for exactly the version it reviewed.

use std::sync::Arc;
use std::time::Duration;

use ropey::Rope;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tower_lsp_server::ls_types::{Diagnostic, DiagnosticSeverity, NumberOrString, Position, Range, Uri};

use super::document::TextDocument;
use super::encoding::{PositionEncoding, byte_column_to_position, end_of_line};
use super::folders::Folder;
use super::session::Session;
use crate::llm::limits::Priority;
use crate::review::finding::{Finding, Severity};
use crate::review::llm_agents::{self, FileWork};
use crate::review::{Engine, Outcome, Request, Source};
use crate::scheduler::{Job, Lane};
use crate::syntax::Language;
use crate::workspace;

pub const SOURCE: &str = "review-lsp";

/// What rides in `Diagnostic.data`: everything a code action needs, so a quick fix is a
/// pure decode with no lookup and no re-review.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DiagnosticData {
    pub rule: String,
    pub origin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<FixEdit>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FixEdit {
    pub range: Range,
    #[serde(rename = "newText")]
    pub new_text: String,
}

pub fn to_diagnostic(doc: &TextDocument, finding: &Finding, enc: PositionEncoding) -> Diagnostic {
    let rope = &doc.rope;
    let s = &finding.span;
    let range = Range::new(
        byte_column_to_position(rope, s.start_line, s.start_col, enc),
        byte_column_to_position(rope, s.end_line, s.end_col, enc),
    );
    let fix = finding
        .fix
        .as_ref()
        .map(|f| FixEdit { range: whole_lines(rope, f.start_line, f.end_line, enc), new_text: f.replacement.clone() });
    let data = DiagnosticData { rule: finding.rule.clone(), origin: finding.source.clone(), fix };
    Diagnostic {
        range,
        severity: Some(severity(finding.severity)),
        // Rule ids and messages can come from a model or the team's Redis: shown escaped, since
        // a terminal editor (Neovim, Helix) would otherwise act on their control characters.
        code: Some(NumberOrString::String(crate::escape::line(&finding.rule).into_owned())),
        source: Some(SOURCE.to_string()),
        message: crate::escape::lines(&finding.message).into_owned(),
        data: serde_json::to_value(data).ok(),
        ..Default::default()
    }
}

/// Lines `first..=last` with their terminators: up to the start of the next line, or the
/// end of the text when `last` is the final line.
fn whole_lines(rope: &Rope, first: u32, last: u32, enc: PositionEncoding) -> Range {
    let start = Position::new(first, 0);
    // ropey counts one more line than there are line breaks, so a next line exists exactly
    // when `last` ends with a terminator.
    let end =
        if (last as usize) + 1 < rope.len_lines() { Position::new(last + 1, 0) } else { end_of_line(rope, last, enc) };
    Range::new(start, end)
}

fn severity(s: Severity) -> DiagnosticSeverity {
    match s {
        Severity::Error => DiagnosticSeverity::ERROR,
        Severity::Warning => DiagnosticSeverity::WARNING,
        Severity::Info => DiagnosticSeverity::INFORMATION,
        Severity::Hint => DiagnosticSeverity::HINT,
    }
}

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
    let enc = session.info().encoding;
    let diagnostics = session.with_documents(|docs| {
        let doc = docs.get(&uri).filter(|d| d.version == version)?;
        Some(outcome.findings.iter().map(|f| to_diagnostic(doc, f, enc)).collect::<Vec<_>>())
    });
    match diagnostics {
        Some(diagnostics) => {
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
