//! Owns the LSP protocol: the only module that knows LSP types. Handlers are thin: they
//! translate, touch the session briefly, and hand real work to the scheduler.

mod code_action;
mod commands;
mod diagnostic_build;
mod diagnostics;
mod document;
pub mod encoding;
mod ending;
mod folders;
mod guard;
mod lifecycle;
mod llm_notice;
mod messages;
pub mod metrics_http;
mod model_tasks;
mod scan;
mod session;
mod settings;
mod status;
mod sync;
mod transport;
mod trust;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{
    CodeActionParams, CodeActionResponse, DidChangeConfigurationParams, DidChangeTextDocumentParams,
    DidChangeWorkspaceFoldersParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams, DidSaveTextDocumentParams,
    ExecuteCommandParams, InitializeParams, InitializeResult, InitializedParams, MessageType,
    WorkDoneProgressCancelParams,
};
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

pub use commands::COMMANDS;
use ending::Ending;
use guard::guarded;
use session::Session;

use crate::scheduler::{PanicHook, Scheduler};
use crate::syntax::Language;

/// How many requests tower-lsp may run at once. A workspace scan holds one slot for its
/// whole run, so leave room for the quick ones beside it.
const CONCURRENCY: usize = 16;

pub struct Backend {
    session: Arc<Session>,
    ending: Arc<Ending>,
}

impl Backend {
    fn new(client: Client, options: ServeOptions, ending: Arc<Ending>) -> Backend {
        let workers = crate::config::ReviewSettings::default().worker_count();
        let c = client.clone();
        let on_panic: PanicHook = Arc::new(move |message| {
            let c = c.clone();
            tokio::spawn(async move { messages::show(&c, MessageType::ERROR, format!("review-lsp: {message}")).await });
        });
        let scheduler = Scheduler::start(workers, on_panic);
        warm_up_rules();
        let mut session = Session::new(client, scheduler);
        session.options = options;
        Backend { session: Arc::new(session), ending }
    }

    async fn progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        scan::cancel(&self.session, &params.token);
    }

    async fn malformed(&self, params: Value) {
        let reason = params.get("reason").and_then(Value::as_str).unwrap_or("unknown");
        tracing::warn!("ignored a malformed message: {reason}");
        let text = format!("review-lsp ignored a malformed message: {reason}");
        messages::log(&self.session.client, MessageType::WARNING, text).await;
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        self.ending.watch_parent(params.process_id);
        guarded("initialize", &self.session, lifecycle::initialize(&self.session, params)).await
    }

    async fn initialized(&self, _: InitializedParams) {
        let _ = guarded("initialized", &self.session, lifecycle::initialized(&self.session)).await;
    }

    async fn shutdown(&self) -> Result<()> {
        self.ending.shutdown_requested();
        let stores = self.session.stores();
        let _ = tokio::task::spawn_blocking(move || stores.iter().for_each(|s| s.flush())).await;
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let _ = guarded("didOpen", &self.session, async { sync::did_open(&self.session, params) }).await;
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let _ = guarded("didChange", &self.session, async { sync::did_change(&self.session, params) }).await;
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        let _ = guarded("didSave", &self.session, async { sync::did_save(&self.session, params) }).await;
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let _ = guarded("didClose", &self.session, sync::did_close(&self.session, params)).await;
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        let _ = guarded(
            "didChangeConfiguration",
            &self.session,
            lifecycle::did_change_configuration(&self.session, params),
        )
        .await;
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        let _ = guarded("didChangeWorkspaceFolders", &self.session, async {
            settings::did_change_workspace_folders(&self.session, params)
        })
        .await;
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        guarded("codeAction", &self.session, async { Some(code_action::code_actions(&self.session, params)) }).await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        guarded("executeCommand", &self.session, commands::execute(&self.session, params)).await?
    }
}

/// Builds the offline rules' lookup tables before the first review (microseconds; the
/// rules match in a cursor walk, with no queries to compile).
fn warm_up_rules() {
    for lang in Language::ALL {
        crate::review::offline::warm_up(lang);
    }
}

/// What the command line asks of the server, beyond the editor's settings.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// `--metrics-addr`; wins over `[metrics] addr`.
    pub metrics_addr: Option<String>,
}

/// After `exit` (or the end of input, or the editor's death), queued cache writes get this
/// long to reach the disk. What does not make it is given up: the exit must take well under
/// 100 ms (editors kill slow servers; eglot does), and a lost entry only costs one review done
/// again next session. After `shutdown` the writes were already flushed, so this is a no-op.
const FLUSH_ON_EXIT: Duration = Duration::from_millis(50);

/// How a session ended.
pub struct Ended {
    /// 0 when `shutdown` came before the end, 1 otherwise (the LSP specification).
    pub exit_code: i32,
    /// Kept alive so that dropping the session (its store's writer joins, reviews finish) is
    /// the caller's choice: `serve_stdio` exits without waiting for it, the fuzzer drops it.
    _session: Option<Arc<Session>>,
}

/// Runs the server on stdin/stdout until the client exits, then ends the process at once with
/// the session's exit code. Logs go to a file and stderr, never stdout: stdout is the protocol.
pub fn serve_stdio(options: ServeOptions) -> anyhow::Result<std::convert::Infallible> {
    let log_guard = crate::logging::init_server(None);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let ended = runtime.block_on(serve_io(tokio::io::stdin(), tokio::io::stdout(), options));
    // No runtime shutdown and no destructors: tokio's stdin thread is blocked in a read that
    // only the editor can end, reviews may be mid-call, and both would hold the exit hostage
    // (a 2 s `shutdown_timeout` used to). Model calls in flight die with the process; queued
    // cache writes were flushed, within `FLUSH_ON_EXIT`, by `serve_io`.
    drop(log_guard);
    std::process::exit(ended.exit_code)
}

/// Serves one session over any byte streams until the client sends `exit` or closes
/// `input` (or the editor's process, `processId`, dies): what `serve_stdio` runs on
/// stdin/stdout, and what `fuzz/` runs in process on an in-memory duplex. Needs a tokio runtime
/// (either flavour); sets up no logging. `input` is reframed by `transport::sanitized`, which
/// reads it on its own task, hence `Send + 'static`.
pub async fn serve_io<I, O>(input: I, output: O, options: ServeOptions) -> Ended
where
    I: tokio::io::AsyncRead + Unpin + Send + 'static,
    O: tokio::io::AsyncWrite,
{
    let ending = Ending::new();
    let built: Arc<OnceLock<Arc<Session>>> = Arc::default();
    let (service, socket) = LspService::build({
        let (ending, built) = (Arc::clone(&ending), Arc::clone(&built));
        move |client| {
            let backend = Backend::new(client, options.clone(), Arc::clone(&ending));
            let _ = built.set(Arc::clone(&backend.session));
            backend
        }
    })
    .custom_method("window/workDoneProgress/cancel", Backend::progress_cancel)
    .custom_method(transport::MALFORMED, Backend::malformed)
    .finish();
    let input = transport::sanitized(input, ending.stop_token());
    Server::new(input, output, socket).concurrency_level(CONCURRENCY).serve(service).await;
    let session = built.get().cloned();
    if let Some(session) = &session {
        wind_down(session).await;
    }
    Ended { exit_code: ending.exit_code(), _session: session }
}

/// Stops what the session started: workspace scans (and the model calls they wait on) are
/// cancelled, and queued cache writes get [`FLUSH_ON_EXIT`] to reach the disk.
async fn wind_down(session: &Arc<Session>) {
    for token in session.scans.lock().unwrap_or_else(|p| p.into_inner()).values() {
        token.cancel();
    }
    let stores = session.stores();
    if !stores.is_empty() {
        let flush = tokio::task::spawn_blocking(move || stores.iter().for_each(|s| s.flush()));
        if tokio::time::timeout(FLUSH_ON_EXIT, flush).await.is_err() {
            tracing::debug!("cache writes still queued at exit were given up");
        }
    }
}
