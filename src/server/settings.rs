//! Owns (re)loading settings into the workspace folders: at initialize, on
//! didChangeConfiguration, on saving a `review-lsp.toml`, and when folders come and go
//! (`workspace/didChangeWorkspaceFolders`). Each folder resolves its own workspace file with
//! the editor's settings; the outside scope gets no workspace file. A bad setting is reported
//! and skipped; the server never exits over config.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tower_lsp_server::ls_types::{DidChangeWorkspaceFoldersParams, MessageType};

use super::diagnostics::schedule_review;
use super::folders::{self, Folder, TrustState};
use super::session::Session;
use crate::config::{self, Config, Problem};
use crate::review::Request;
use crate::review::llm_agents::Routing;
use crate::scheduler::Lane;
use crate::store::Store;

/// Loads every scope's settings; problems are prefixed with the folder they belong to.
/// Folders load one after another on the blocking pool, never on the LSP loop.
pub async fn load_all(session: &Arc<Session>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for folder in session.folders.scopes() {
        problems.extend(load(session, &folder).await);
    }
    problems
}

/// Re-reads every settings source, reports problems, asks about trust and re-reviews open
/// documents. Runs in its own task so the handler that triggered it returns at once.
pub fn reload_all(session: Arc<Session>) {
    tokio::spawn(async move {
        let problems = load_all(&session).await;
        report_problems(&session, &problems).await;
        super::trust::ask_where_withheld(&session, session.folders.scopes());
        review_open_documents(&session);
    });
}

/// Reloads one folder (after its workspace file was saved or trusted) and re-reviews open
/// documents.
pub fn reload_folder(session: Arc<Session>, folder: Arc<Folder>) {
    tokio::spawn(async move {
        // Removed meanwhile (a trust answer can come long after the question): nothing to load.
        if !session.folders.all().iter().any(|f| Arc::ptr_eq(f, &folder)) {
            // Possibly the last handle to its store, whose drop waits for a final commit.
            tokio::task::spawn_blocking(move || drop(folder));
            return;
        }
        let problems = load(&session, &folder).await;
        report_problems(&session, &problems).await;
        super::trust::ask_where_withheld(&session, vec![folder]);
        review_open_documents(&session);
    });
}

/// Saving a `review-lsp.toml` reloads the folder whose root holds it, or every scope when it
/// is some other file of that name.
pub fn workspace_file_saved(session: &Arc<Session>, path: Option<&Path>) {
    let owner = path.and_then(|p| {
        let dir = p.parent()?;
        session.folders.all().into_iter().find(|f| f.root.as_deref() == Some(dir))
    });
    match owner {
        Some(folder) => reload_folder(session.clone(), folder),
        None => reload_all(session.clone()),
    }
}

/// Adds and removes folders. A new folder's settings load in a task, so the handler returns
/// at once; a removed folder's engine and store are dropped on the blocking pool. Open
/// documents are reviewed again under whichever folder now holds them.
pub fn did_change_workspace_folders(session: &Arc<Session>, params: DidChangeWorkspaceFoldersParams) {
    let primary_before = session.folders.primary();
    let mut removed = Vec::new();
    for gone in params.event.removed {
        match session.folders.remove(&gone.uri) {
            Some(folder) => removed.push(folder),
            None => tracing::warn!(uri = %crate::escape::line(gone.uri.as_str()), "removed a folder that was not open"),
        }
    }
    let mut added = Vec::new();
    for new in params.event.added {
        let Some(folder) = folders::from_client(new.uri.clone(), new.name) else {
            tracing::warn!(uri = %crate::escape::line(new.uri.as_str()), "not a file folder; ignored");
            continue;
        };
        let folder = Arc::new(folder);
        if session.folders.add(folder.clone()) {
            added.push(folder);
        }
    }
    tracing::info!(added = added.len(), removed = removed.len(), "workspace folders changed");
    tokio::task::spawn_blocking(move || drop(removed));
    // A new first folder takes over the process-wide settings (LLM limits, log file).
    let primary = session.folders.primary();
    let mut to_load = added.clone();
    if !Arc::ptr_eq(&primary, &primary_before) && !added.iter().any(|f| Arc::ptr_eq(f, &primary)) {
        to_load.insert(0, primary);
    }
    let session = session.clone();
    tokio::spawn(async move {
        let mut problems = Vec::new();
        for folder in &to_load {
            problems.extend(load(&session, folder).await);
        }
        report_problems(&session, &problems).await;
        super::trust::ask_where_withheld(&session, added);
        review_open_documents(&session);
    });
}

fn review_open_documents(session: &Arc<Session>) {
    for uri in session.open_uris() {
        schedule_review(session, uri, Lane::Open, Duration::ZERO, Request::default());
    }
}

pub async fn report_problems(session: &Session, problems: &[Problem]) {
    if problems.is_empty() {
        return;
    }
    // One line per problem: a key or value cannot pose as a second problem.
    let text = problems.iter().map(|p| crate::escape::line(&p.to_string()).into_owned()).collect::<Vec<_>>().join("\n");
    tracing::warn!("settings problems:\n{text}");
    super::messages::show(&session.client, MessageType::WARNING, format!("review-lsp settings: {text}")).await;
}

/// Resolves one folder's settings (user file, its workspace file, the editor) and installs a
/// new engine. The first folder (or the outside scope when there is none) also decides the
/// process-wide settings: LLM limits and budget, the log file.
async fn load(session: &Arc<Session>, folder: &Arc<Folder>) -> Vec<Problem> {
    let editor = session.client_layer.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let primary = Arc::ptr_eq(&session.folders.primary(), folder);
    // With folders open, the outside scope keeps its cache in memory: a disk store of its own
    // would contend with the folders' for the same file.
    let store_workspace = match &folder.root {
        Some(root) => Some(root.clone()),
        None if session.folders.all().is_empty() => Some(std::env::current_dir().unwrap_or_default()),
        None => None,
    };
    let root = folder.root.clone();
    let previous = folder.config();
    let old_store = folder.store();
    // Only the editor's own flag (VS Code's workspace trust) can trust every folder at once; a
    // workspace file can never set it.
    let editor_trusts = *session.editor_trust.lock().unwrap_or_else(|p| p.into_inner()) == Some(true);
    let loaded = tokio::task::spawn_blocking(move || {
        let mut sources = config::Sources::new(root.as_deref());
        sources.editor = editor;
        sources.trust_workspace = editor_trusts || config::trust_from_env();
        let mut resolved = config::load(sources);
        let (routing, more) = Routing::from_resolved(&resolved);
        resolved.problems.extend(more);
        let trust = trust_state(&resolved);
        let store = open_store(&resolved.config, &previous, old_store, store_workspace.as_deref());
        if primary {
            resolved.problems.extend(apply_process_wide(&resolved.config, &previous, &store));
        }
        (resolved, routing, store, trust)
    })
    .await;
    let name = folder.display();
    match loaded {
        Ok((resolved, routing, store, trust)) => {
            let problems = resolved.problems.iter().map(|p| in_folder(p.clone(), folder)).collect();
            if primary {
                // Process-wide, like the gate: the first folder's settings size the pools.
                session.scheduler.set_workers(resolved.config.review.worker_count());
                session.model_tasks.resize(resolved.config.limits.max_concurrency);
            }
            folder.install(resolved, routing, store, trust);
            problems
        }
        Err(e) => {
            tracing::error!("loading settings for {name} failed: {e}");
            vec![Problem {
                origin: name,
                message: format!("loading settings failed: {e}; keeping the previous settings"),
            }]
        }
    }
}

/// Names the folder in a problem when the problem does not already name a file.
fn in_folder(problem: Problem, folder: &Folder) -> Problem {
    match &folder.root {
        Some(root) if !problem.origin.starts_with(&*root.to_string_lossy()) => {
            Problem { origin: format!("{} ({})", problem.origin, folder.display()), ..problem }
        }
        _ => problem,
    }
}

/// Blocking: what the load decided about the workspace file, with the hash of the file so
/// the user is asked once per version of it.
fn trust_state(resolved: &config::Resolved) -> TrustState {
    let file = resolved.workspace_file.as_ref().and_then(|path| match config::read_config_file(path) {
        Ok(config::ReadFile::Text(text)) => Some((path.clone(), blake3::hash(text.as_bytes()).to_hex().to_string())),
        _ => None,
    });
    TrustState { withheld: resolved.withheld.clone(), trusted: resolved.workspace_trusted, file }
}

/// Blocking: the settings one process has only one of (the LLM gate, the log file).
fn apply_process_wide(config: &Config, previous: &Config, store: &Arc<Store>) -> Option<Problem> {
    crate::review::llm_agents::configure(&config.limits, &config.budget);
    crate::review::llm_agents::persist_budget_in(Arc::clone(store));
    crate::review::llm_agents::share_limits_through(store);
    let file = config.log.file.as_ref().filter(|f| previous.log.file.as_ref() != Some(*f))?;
    let e = crate::logging::redirect_log_file(file).err()?;
    Some(Problem {
        origin: "log.file".into(),
        message: format!("cannot open {}: {e}; keeping the current log file", crate::escape::path(file)),
    })
}

/// A folder's store (results cache, spend counters), opened even when result caching is off
/// so the spend cap still persists; in memory when there is no workspace to key it by. Kept
/// while its directory is unchanged: reopening would drop the in-memory tier and, with several
/// windows, contend for the file lock again.
fn open_store(config: &Config, previous: &Config, old: Option<Arc<Store>>, workspace: Option<&Path>) -> Arc<Store> {
    let settings = config.cache.store_settings();
    match (old, workspace) {
        (Some(old), _)
            if (&config.cache.dir, &config.cache.redis_url, &config.cache.namespace)
                == (&previous.cache.dir, &previous.cache.redis_url, &previous.cache.namespace) =>
        {
            old.set_settings(&settings);
            old
        }
        (_, Some(workspace)) => Arc::new(Store::open(&config.cache.resolved_dir(), workspace, &settings)),
        (_, None) => Arc::new(Store::memory(&settings)),
    }
}

/// The folders a client names at initialize: `workspaceFolders`, else the deprecated root.
pub fn initial_folders(
    workspace_folders: Option<Vec<tower_lsp_server::ls_types::WorkspaceFolder>>,
    root_uri: Option<tower_lsp_server::ls_types::Uri>,
) -> Vec<Folder> {
    let named = match workspace_folders {
        Some(list) if !list.is_empty() => list.into_iter().map(|f| (f.uri, f.name)).collect(),
        _ => root_uri.into_iter().map(|u| (u.clone(), folder_name(&u))).collect::<Vec<_>>(),
    };
    named.into_iter().filter_map(|(uri, name)| folders::from_client(uri, name)).collect()
}

fn folder_name(uri: &tower_lsp_server::ls_types::Uri) -> String {
    let path: Option<PathBuf> = uri.to_file_path().map(|p| p.into_owned());
    path.and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_default()
}
