//! Owns the server's mutable state: open documents, the workspace folders (each with its
//! settings, engine and store), the editor's settings and counters.
//! Locks are std mutexes held only for short synchronous sections, never across an await,
//! so handlers stay thin and edits apply in arrival order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::Uri;

use super::document::TextDocument;
use super::encoding::PositionEncoding;
use super::folders::{Folder, Folders};
use crate::config::{Layer, Problem};
use crate::review::Outcome;
use crate::review::llm_agents::CallRecord;
use crate::scheduler::Scheduler;
use crate::store::Store;
use crate::syntax::Language;

/// What a review task needs from a document, copied out under the lock.
pub struct Snapshot {
    pub text: Arc<str>,
    pub version: i32,
    pub language: Language,
}

/// Totals over the server's life, for `review-lsp.showStats`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    pub reviews: u64,
    pub published: u64,
    pub stale_results_dropped: u64,
    pub cancelled: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub findings: u64,
    pub llm_calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub agent_selections: BTreeMap<String, u64>,
    /// The last LLM problem, cleared by the next call that works; shown by showStats.
    pub llm_status: Option<String>,
}

impl Totals {
    pub fn record(&mut self, outcome: &Outcome) {
        self.reviews += 1;
        if outcome.cache_hit {
            self.cache_hits += 1;
        } else {
            self.cache_misses += 1;
        }
        self.findings += outcome.findings.len() as u64;
        self.llm_calls += outcome.llm_calls;
        self.prompt_tokens += outcome.prompt_tokens;
        self.completion_tokens += outcome.completion_tokens;
        for (k, v) in &outcome.selections {
            *self.agent_selections.entry(k.clone()).or_default() += v;
        }
    }

    /// Prompt plus completion tokens so far.
    pub fn tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    pub fn record_calls(&mut self, calls: &[CallRecord]) {
        for call in calls {
            self.llm_calls += 1;
            self.prompt_tokens += call.prompt_tokens;
            self.completion_tokens += call.completion_tokens;
            self.llm_status =
                (call.outcome != "ok").then(|| format!("{} ({}): {}", call.agent.as_str(), call.model, call.outcome));
        }
    }
}

/// Fixed at `initialize`.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub encoding: PositionEncoding,
    pub progress: bool,
    /// The client answers `window/showMessageRequest` with the action chosen.
    pub message_requests: bool,
    /// The client takes `WorkspaceEdit.documentChanges` (edits tied to a document version).
    pub versioned_edits: bool,
}

pub struct Session {
    pub client: Client,
    pub scheduler: Scheduler,
    documents: Mutex<HashMap<Uri, TextDocument>>,
    info: RwLock<ClientInfo>,
    pub folders: Folders,
    /// Settings from the editor (initializationOptions, then didChangeConfiguration).
    pub client_layer: Mutex<Option<Layer>>,
    /// The editor's own workspace trust (VS Code's `isTrusted`), when it sends one.
    pub editor_trust: Mutex<Option<bool>>,
    /// Workspace files (path, blake3) the user was already asked to trust this session: asked
    /// once, and "Not now" is remembered until the file changes.
    pub trust_asked: Mutex<HashSet<(PathBuf, String)>>,
    pub problems: Mutex<Vec<Problem>>,
    pub totals: Mutex<Totals>,
    /// Running workspace scans by progress token, so a cancel can find them.
    pub scans: Mutex<HashMap<String, CancellationToken>>,
    llm_warned: std::sync::atomic::AtomicBool,
    pub options: super::ServeOptions,
    /// Where `/metrics` is served, once it is.
    pub metrics_bound: Mutex<Option<std::net::SocketAddr>>,
    /// The editor's model phases, each on its own task under its own limit.
    pub model_tasks: Arc<super::model_tasks::ModelTasks>,
}

impl Session {
    pub fn new(client: Client, scheduler: Scheduler) -> Session {
        Session {
            client,
            scheduler,
            documents: Mutex::new(HashMap::new()),
            info: RwLock::new(ClientInfo {
                encoding: PositionEncoding::Utf16,
                progress: false,
                message_requests: false,
                versioned_edits: false,
            }),
            folders: Folders::default(),
            client_layer: Mutex::new(None),
            editor_trust: Mutex::new(None),
            trust_asked: Mutex::new(HashSet::new()),
            problems: Mutex::new(Vec::new()),
            totals: Mutex::new(Totals::default()),
            scans: Mutex::new(HashMap::new()),
            llm_warned: std::sync::atomic::AtomicBool::new(false),
            options: super::ServeOptions::default(),
            metrics_bound: Mutex::new(None),
            model_tasks: Arc::default(),
        }
    }

    pub fn info(&self) -> ClientInfo {
        read(&self.info).clone()
    }

    pub fn set_info(&self, info: ClientInfo) {
        *write(&self.info) = info;
    }

    /// Every scope's store (the folders' and the outside scope's), e.g. to flush them all.
    pub fn stores(&self) -> Vec<Arc<Store>> {
        self.folders.scopes().iter().filter_map(|f| f.store()).collect()
    }

    /// The folder (or the outside scope) whose settings apply to a document.
    pub fn folder_of(&self, uri: &Uri) -> Arc<Folder> {
        self.folders.for_uri(uri)
    }

    /// Runs `f` on the documents under the lock. Keep `f` short and synchronous.
    pub fn with_documents<R>(&self, f: impl FnOnce(&mut HashMap<Uri, TextDocument>) -> R) -> R {
        let mut docs = self.documents.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut docs)
    }

    pub fn snapshot(&self, uri: &Uri) -> Option<Snapshot> {
        self.with_documents(|docs| {
            let doc = docs.get(uri)?;
            Some(Snapshot { text: Arc::from(doc.rope.to_string()), version: doc.version, language: doc.language? })
        })
    }

    pub fn open_uris(&self) -> Vec<Uri> {
        self.with_documents(|docs| docs.keys().cloned().collect())
    }

    /// Tells the user, once per session, that the model could not review; the status in
    /// showStats keeps the latest reason.
    pub async fn warn_llm_once(&self, why: &str) {
        if self.llm_warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let message = format!("review-lsp: the LLM agents are unavailable ({why}); offline findings are still shown");
        super::messages::show(&self.client, tower_lsp_server::ls_types::MessageType::WARNING, message).await;
    }

    pub fn totals(&self) -> std::sync::MutexGuard<'_, Totals> {
        self.totals.lock().unwrap_or_else(|p| p.into_inner())
    }
}

// A panic while holding these locks must not wedge the server: take the data anyway.
pub(super) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
