//! Owns the LSP protocol: the only module that knows LSP types. Handlers are thin: they
//! translate, touch the session briefly, and hand real work to the scheduler.

mod code_action;
mod commands;
mod diagnostics;
mod document;
pub mod encoding;
mod guard;
mod lifecycle;
mod messages;
pub mod metrics_http;
mod scan;
mod session;
mod status;
mod sync;
mod transport;

use std::sync::Arc;

use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{
    CodeActionParams, CodeActionResponse, DidChangeConfigurationParams, DidChangeTextDocumentParams,
    DidCloseTextDocumentParams, DidOpenTextDocumentParams, DidSaveTextDocumentParams, ExecuteCommandParams,
    InitializeParams, InitializeResult, InitializedParams, MessageType, WorkDoneProgressCancelParams,
};
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

pub use commands::COMMANDS;
use guard::guarded;
use session::Session;

use crate::scheduler::{PanicHook, Scheduler};
use crate::syntax::Language;

/// How many requests tower-lsp may run at once. A workspace scan holds one slot for its
/// whole run, so leave room for the quick ones beside it.
const CONCURRENCY: usize = 16;

pub struct Backend {
    session: Arc<Session>,
}

impl Backend {
    fn new(client: Client, options: ServeOptions) -> Backend {
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
        Backend { session: Arc::new(session) }
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
        guarded("initialize", &self.session, lifecycle::initialize(&self.session, params)).await
    }

    async fn initialized(&self, _: InitializedParams) {
        let _ = guarded("initialized", &self.session, lifecycle::initialized(&self.session)).await;
    }

    async fn shutdown(&self) -> Result<()> {
        if let Some(cache) = self.session.store() {
            let _ = tokio::task::spawn_blocking(move || cache.flush()).await;
        }
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

/// Runs the server on stdin/stdout until the client exits. Logs go to a file and stderr,
/// never stdout: stdout is the protocol.
/// What the command line asks of the server, beyond the editor's settings.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// `--metrics-addr`; wins over `[metrics] addr`.
    pub metrics_addr: Option<String>,
}

pub fn serve_stdio(options: ServeOptions) -> anyhow::Result<()> {
    let _log_guard = crate::logging::init_server(None);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve_io(tokio::io::stdin(), tokio::io::stdout(), options));
    // Let blocking reviews that are still running finish their cache writes, but not hold
    // the exit hostage.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    Ok(())
}

/// Serves one session over any byte streams until the client sends `exit` or closes
/// `input`: what `serve_stdio` runs on stdin/stdout, and what `fuzz/` runs in process on an
/// in-memory duplex. Needs a tokio runtime (either flavour); sets up no logging. `input` is
/// reframed by `transport::sanitized`, which reads it on its own task, hence `Send + 'static`.
pub async fn serve_io<I, O>(input: I, output: O, options: ServeOptions)
where
    I: tokio::io::AsyncRead + Unpin + Send + 'static,
    O: tokio::io::AsyncWrite,
{
    let (service, socket) = LspService::build(move |client| Backend::new(client, options.clone()))
        .custom_method("window/workDoneProgress/cancel", Backend::progress_cancel)
        .custom_method(transport::MALFORMED, Backend::malformed)
        .finish();
    Server::new(transport::sanitized(input), output, socket).concurrency_level(CONCURRENCY).serve(service).await;
}
