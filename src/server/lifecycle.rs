//! Owns initialize/initialized and the editor's settings: capabilities, position-encoding
//! negotiation, the workspace folders the client starts with, and taking in
//! initializationOptions and didChangeConfiguration (loading them is `settings.rs`).

use std::sync::Arc;

use serde_json::Value;
use tower_lsp_server::ls_types::{
    CodeActionKind, CodeActionOptions, CodeActionProviderCapability, DidChangeConfigurationParams,
    ExecuteCommandOptions, InitializeParams, InitializeResult, MessageType, OneOf, SaveOptions, ServerCapabilities,
    ServerInfo, TextDocumentSyncCapability, TextDocumentSyncKind, TextDocumentSyncOptions, TextDocumentSyncSaveOptions,
    WorkDoneProgressOptions, WorkspaceFoldersServerCapabilities, WorkspaceServerCapabilities,
};

use super::commands::COMMANDS;
use super::encoding::PositionEncoding;
use super::messages;
use super::session::{ClientInfo, Session};
use super::settings;
use crate::config::Layer;

pub async fn initialize(session: &Arc<Session>, params: InitializeParams) -> InitializeResult {
    let encoding = PositionEncoding::negotiate(&params.capabilities);
    let window = params.capabilities.window.as_ref();
    let progress = window.and_then(|w| w.work_done_progress).unwrap_or(false);
    let message_requests = window.is_some_and(|w| w.show_message.is_some());
    let workspace_edit = params.capabilities.workspace.as_ref().and_then(|w| w.workspace_edit.as_ref());
    let versioned_edits = workspace_edit.and_then(|w| w.document_changes).unwrap_or(false);
    session.set_info(ClientInfo { encoding, progress, message_requests, versioned_edits });
    #[allow(deprecated)]
    let folders = settings::initial_folders(params.workspace_folders, params.root_uri);
    tracing::info!(?encoding, folders = folders.len(), "initialize");
    for folder in folders {
        session.folders.add(Arc::new(folder));
    }
    if let Some(options) = params.initialization_options {
        take_editor_settings(session, options, "initializationOptions");
    }
    let problems = settings::load_all(session).await;
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
            workspace: Some(WorkspaceServerCapabilities {
                workspace_folders: Some(WorkspaceFoldersServerCapabilities {
                    supported: Some(true),
                    change_notifications: Some(OneOf::Left(true)),
                }),
                file_operations: None,
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
    settings::report_problems(session, &problems).await;
    super::trust::ask_where_withheld(session, session.folders.scopes());
    start_metrics(session).await;
    super::status::watch(session.clone());
}

/// Serves `/metrics` if the command line or the settings ask for it. A bad or busy address is
/// a message, not a failure: the server works without metrics.
async fn start_metrics(session: &Arc<Session>) {
    let Some(addr) =
        session.options.metrics_addr.clone().or_else(|| session.folders.primary().config().metrics.addr.clone())
    else {
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
    take_editor_settings(session, params.settings, "workspace/didChangeConfiguration");
    settings::reload_all(session.clone());
}

/// Keeps the editor's settings layer, and its own workspace trust if it sends one.
fn take_editor_settings(session: &Session, options: Value, origin: &str) {
    let mut layer = Layer::from_client(options, origin);
    if let Some(trusted) = super::trust::take_editor_trust(&mut layer.value) {
        *session.editor_trust.lock().unwrap_or_else(|p| p.into_inner()) = Some(trusted);
    }
    *session.client_layer.lock().unwrap_or_else(|p| p.into_inner()) = Some(layer);
}
