//! Owns the one way to review a file, which the editor, the workspace scan and the CLI all
//! use: [`offline`] (or [`offline_blocking`] from a thread that may block) runs the offline
//! phase and returns its [`Outcome`] at once, with a [`ModelPhase`] when LLM agents still have
//! chunks to see; [`models`] then runs the model calls of one or more such files and folds the
//! findings in (`Engine::complete`).
//!
//! Why two values rather than one future or a callback: each caller does something different
//! between the phases (the editor publishes and hands the model phase to its own task and
//! concurrency limit, the scan batches several files into shared calls, the CLI batches the
//! whole tree), and a plain value that owns the text lets each choose where the model phase
//! runs without the engine knowing about workers, publishing or LSP.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::llm_agents::{self, CallRecord, FileWork};
use super::{Cancelled, Engine, Outcome, Request, Source};
use crate::llm::limits::Priority;
use crate::syntax::Language;
use crate::workspace;

/// A file to review, owning its text so the model phase can outlive the caller's borrow.
#[derive(Clone)]
pub struct File {
    pub language: Language,
    pub text: Arc<str>,
    /// As shown to models and tagged on stored results: relative to the root where possible.
    pub path: String,
    /// Where the file is on disk and the root its ignore files are read from, when it must
    /// be checked against `.gitignore`/`.reviewignore` before anything is sent to a model
    /// (an editor buffer; a scan's files were filtered when they were found).
    pub ignore_check: Option<(Option<PathBuf>, PathBuf)>,
}

/// The offline result, and the model work still to do.
pub struct Reviewed {
    pub offline: Outcome,
    pub model: Option<ModelPhase>,
}

/// What the LLM agents still have to review in one file.
pub struct ModelPhase {
    file: File,
    outcome: Outcome,
}

impl ModelPhase {
    /// The offline outcome the model's findings will be added to.
    pub fn offline(&self) -> &Outcome {
        &self.outcome
    }

    pub fn file(&self) -> &File {
        &self.file
    }
}

/// The model phase of several files: each file's combined outcome (in input order) and the
/// calls made.
pub struct ModelReport {
    pub outcomes: Vec<Outcome>,
    pub calls: Vec<CallRecord>,
}

impl ModelReport {
    pub fn tokens(&self) -> u64 {
        self.calls.iter().map(|c| c.prompt_tokens + c.completion_tokens).sum()
    }
}

/// The offline phase on the blocking pool (parsing and rules are CPU-bound). A panic inside
/// is re-raised here, so the caller's guard (the scheduler's per-job capture) reports it.
pub async fn offline(
    engine: Arc<Engine>,
    file: File,
    request: Request,
    cancel: CancellationToken,
) -> Result<Reviewed, Cancelled> {
    match tokio::task::spawn_blocking(move || offline_blocking(&engine, file, &request, &cancel)).await {
        Ok(reviewed) => reviewed,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Cancelled),
    }
}

/// The offline phase on the calling thread: for callers that run their own worker threads.
pub fn offline_blocking(
    engine: &Engine,
    file: File,
    request: &Request,
    cancel: &CancellationToken,
) -> Result<Reviewed, Cancelled> {
    let source = Source { language: file.language, text: &file.text, path: &file.path };
    let mut outcome = engine.review(&source, request, cancel)?;
    if outcome.jobs.is_empty() {
        return Ok(Reviewed { offline: outcome, model: None });
    }
    let ignored = file.ignore_check.as_ref().is_some_and(|(root, path)| workspace::is_ignored(root.as_deref(), path));
    if ignored {
        tracing::debug!(path = %crate::escape::line(&file.path), "ignored file: not sent to LLM agents");
        outcome.jobs.clear();
        return Ok(Reviewed { offline: outcome, model: None });
    }
    let jobs = std::mem::take(&mut outcome.jobs);
    let offline = outcome.clone();
    outcome.jobs = jobs;
    Ok(Reviewed { offline, model: Some(ModelPhase { file, outcome }) })
}

/// Runs the model phase of `files` (all reviewed by `engine`) in shared calls per agent and
/// folds each file's findings into its outcome. A cancelled run returns what came back before
/// the cancel; callers check their token before using it.
pub async fn models(
    engine: &Engine,
    files: Vec<ModelPhase>,
    priority: Priority,
    cancel: &CancellationToken,
) -> ModelReport {
    let (mut work, mut outcomes): (Vec<FileWork>, Vec<Outcome>) = files
        .into_iter()
        .map(|mut m| {
            let jobs = std::mem::take(&mut m.outcome.jobs);
            let work = FileWork { path: m.file.path, text: m.file.text, language: m.file.language, jobs };
            (work, m.outcome)
        })
        .unzip();
    let report = llm_agents::run(engine.routing(), engine.cache().map(|c| &**c), &work, priority, cancel).await;
    for ((file, outcome), found) in work.iter_mut().zip(outcomes.iter_mut()).zip(report.files) {
        let source = Source { language: file.language, text: &file.text, path: &file.path };
        engine.complete(&source, outcome, found);
    }
    ModelReport { outcomes, calls: report.calls }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ReviewSettings;

    #[tokio::test]
    async fn without_llm_agents_there_is_no_model_phase() {
        let engine = Arc::new(Engine::new(ReviewSettings::default(), None));
        let file = File {
            language: Language::Python,
            text: Arc::from("def f(x):\n    return eval(x)\n"),
            path: "f.py".into(),
            ignore_check: None,
        };
        let reviewed = offline(engine, file, Request::default(), CancellationToken::new()).await.unwrap();
        assert!(reviewed.model.is_none());
        assert!(reviewed.offline.findings.iter().any(|f| f.rule.ends_with("eval")), "{:?}", reviewed.offline.findings);
    }
}
