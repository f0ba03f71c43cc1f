//! Owns initialize/initialized/shutdown and settings: capabilities, position-encoding
//! negotiation, and (re)loading the one settings schema from `review-lsp.toml` and the
//! editor. A bad setting is reported and skipped; the server never exits over config.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tower_lsp_server::ls_types::{
    CodeActionKind, CodeActionOptions, CodeActionProviderCapability, DidChangeConfigurationParams,
    ExecuteCommandOptions, InitializeParams, InitializeResult, MessageType, SaveOptions, ServerCapabilities,
    ServerInfo, TextDocumentSyncCapability, TextDocumentSyncKind, TextDocumentSyncOptions, TextDocumentSyncSaveOptions,
    WorkDoneProgressOptions,
};

use super::commands::COMMANDS;
use super::diagnostics::schedule_review;
use super::encoding::PositionEncoding;
use super::messages;
use super::session::{ClientInfo, Session};
use crate::config::{self, Config, Layer, Problem};
use crate::review::Request;
use crate::review::llm_agents::Routing;
use crate::scheduler::Lane;
use crate::store::Store;

pub async fn initialize(session: &Arc<Session>, params: InitializeParams) -> InitializeResult {
    let encoding = PositionEncoding::negotiate(&params.capabilities);
    let progress = params.capabilities.window.as_ref().and_then(|w| w.work_done_progress).unwrap_or(false);
    let root = workspace_root(&params);
    tracing::info!(?encoding, root = ?root, "initialize");
    session.set_info(ClientInfo { encoding, root, progress });
    if let Some(options) = params.initialization_options {
        *session.client_layer.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Layer::from_client(options, "initializationOptions"));
    }
    let problems = apply_settings(session).await;
    *session.problems.lock().unwrap_or_else(|p| p.into_inner()) = problems;

    InitializeResult {
        capabilities: ServerCapabilities {
            position_encoding: Some(encoding.kind()),
            text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::INCREMENTAL),
                save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions { include_text: Some(false) })),
                ..Default::default()
            })),
            code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
                code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
                ..Default::default()
            })),
            execute_command_provider: Some(ExecuteCommandOptions {
                commands: COMMANDS.iter().map(|c| c.to_string()).collect(),
                work_done_progress_options: WorkDoneProgressOptions { work_done_progress: Some(true) },
            }),
            ..Default::default()
        },
        server_info: Some(ServerInfo { name: "review-lsp".into(), version: Some(env!("CARGO_PKG_VERSION").into()) }),
        ..Default::default()
    }
}

/// After the handshake the client can show messages: report settings problems now.
pub async fn initialized(session: &Arc<Session>) {
    let problems = std::mem::take(&mut *session.problems.lock().unwrap_or_else(|p| p.into_inner()));
    report_problems(session, &problems).await;
    start_metrics(session).await;
    super::status::watch(session.clone());
}

/// Serves `/metrics` if the command line or the settings ask for it. A bad or busy address is
/// a message, not a failure: the server works without metrics.
async fn start_metrics(session: &Arc<Session>) {
    let Some(addr) = session.options.metrics_addr.clone().or_else(|| session.config().metrics.addr.clone()) else {
        return;
    };
    let bound = match super::metrics_http::parse_addr(&addr) {
        Ok(addr) => {
            super::metrics_http::serve(session.clone(), addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))
        }
        Err(e) => Err(e),
    };
    match bound {
        Ok(bound) => *session.metrics_bound.lock().unwrap_or_else(|p| p.into_inner()) = Some(bound),
        Err(e) => {
            tracing::warn!("metrics: {e}");
            messages::show(&session.client, MessageType::WARNING, format!("review-lsp: metrics are off: {e}")).await;
        }
    }
}

pub async fn did_change_configuration(session: &Arc<Session>, params: DidChangeConfigurationParams) {
    *session.client_layer.lock().unwrap_or_else(|p| p.into_inner()) =
        Some(Layer::from_client(params.settings, "workspace/didChangeConfiguration"));
    reload_settings(session.clone());
}

/// Re-reads every settings source, reports problems and re-reviews open documents. Runs
/// in its own task so the handler that triggered it returns at once.
pub fn reload_settings(session: Arc<Session>) {
    tokio::spawn(async move {
        let problems = apply_settings(&session).await;
        report_problems(&session, &problems).await;
        for uri in session.open_uris() {
            schedule_review(&session, uri, Lane::Open, Duration::ZERO, Request::default());
        }
    });
}

async fn report_problems(session: &Session, problems: &[Problem]) {
    if problems.is_empty() {
        return;
    }
    // One line per problem: a key or value cannot pose as a second problem.
    let text = problems.iter().map(|p| crate::escape::line(&p.to_string()).into_owned()).collect::<Vec<_>>().join("\n");
    tracing::warn!("settings problems:\n{text}");
    messages::show(&session.client, MessageType::WARNING, format!("review-lsp settings: {text}")).await;
}

/// Resolves settings from the workspace file and the editor, and installs a new engine.
/// File and cache I/O run on the blocking pool, never on the LSP loop.
async fn apply_settings(session: &Arc<Session>) -> Vec<Problem> {
    let root = session.info().root;
    let client_layer = session.client_layer.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let previous = session.config();
    let old_store = session.store();
    let workspace = root.clone().unwrap_or_else(|| std::env::current_dir().unwrap_or_default());

    let loaded = tokio::task::spawn_blocking(move || {
        let mut problems = Vec::new();
        let mut layers = Vec::new();
        if let Some(root) = &root {
            match config::workspace_layer(root) {
                Some(Ok(layer)) => layers.push(layer),
                Some(Err(problem)) => problems.push(problem),
                None => {}
            }
        }
        layers.extend(client_layer);
        let (config, more) = config::resolve(&layers);
        problems.extend(more);
        let (routing, more) = Routing::from_config(&config);
        problems.extend(more);
        crate::review::llm_agents::configure(&config.limits, &config.budget);
        let store = open_store(&config, &previous, old_store, &workspace);
        if let Some(file) = config.log.file.as_ref().filter(|f| previous.log.file.as_ref() != Some(*f)) {
            if let Err(e) = crate::logging::redirect_log_file(file) {
                problems.push(Problem {
                    origin: "log.file".into(),
                    message: format!("cannot open {}: {e}; keeping the current log file", file.display()),
                });
            }
        }
        (config, routing, store, problems)
    })
    .await;

    match loaded {
        Ok((config, routing, store, problems)) => {
            session.install(config, routing, store);
            problems
        }
        Err(e) => {
            tracing::error!("loading settings failed: {e}");
            vec![Problem {
                origin: "review-lsp".into(),
                message: format!("loading settings failed: {e}; keeping the previous settings"),
            }]
        }
    }
}

/// The workspace's store (results cache, spend counters), opened even when result caching is
/// off so the spend cap still persists. Kept while its directory is unchanged: reopening would
/// drop the in-memory tier and, with several windows, contend for the file lock again.
fn open_store(config: &Config, previous: &Config, old: Option<Arc<Store>>, workspace: &std::path::Path) -> Arc<Store> {
    let settings = config.cache.store_settings();
    match old {
        Some(old)
            if (&config.cache.dir, &config.cache.redis_url, &config.cache.namespace)
                == (&previous.cache.dir, &previous.cache.redis_url, &previous.cache.namespace) =>
        {
            old.set_settings(&settings);
            old
        }
        _ => Arc::new(Store::open(&config.cache.resolved_dir(), workspace, &settings)),
    }
}

fn workspace_root(params: &InitializeParams) -> Option<PathBuf> {
    #[allow(deprecated)]
    let uri = params
        .workspace_folders
        .as_ref()
        .and_then(|f| f.first())
        .map(|f| f.uri.clone())
        .or_else(|| params.root_uri.clone());
    uri.and_then(|u| u.to_file_path().map(|p| p.into_owned()))
}
