//! Owns the server's mutable state: open documents, settings, the engine and counters.
//! Locks are std mutexes held only for short synchronous sections, never across an await,
//! so handlers stay thin and edits apply in arrival order.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::Uri;

use super::document::TextDocument;
use super::encoding::PositionEncoding;
use crate::config::{Config, Layer, Problem};
use crate::review::llm_agents::{CallRecord, Routing};
use crate::review::{Engine, Outcome};
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
    pub root: Option<PathBuf>,
    pub progress: bool,
}

pub struct Session {
    pub client: Client,
    pub scheduler: Scheduler,
    documents: Mutex<HashMap<Uri, TextDocument>>,
    info: RwLock<ClientInfo>,
    config: RwLock<Arc<Config>>,
    engine: RwLock<Arc<Engine>>,
    /// The workspace's store; the engine shares it as its cache when caching is on.
    store: RwLock<Option<Arc<Store>>>,
    /// Settings from the editor (initializationOptions, then didChangeConfiguration).
    pub client_layer: Mutex<Option<Layer>>,
    pub problems: Mutex<Vec<Problem>>,
    pub totals: Mutex<Totals>,
    /// Running workspace scans by progress token, so a cancel can find them.
    pub scans: Mutex<HashMap<String, CancellationToken>>,
    llm_warned: std::sync::atomic::AtomicBool,
    pub options: super::ServeOptions,
    /// Where `/metrics` is served, once it is.
    pub metrics_bound: Mutex<Option<std::net::SocketAddr>>,
}

impl Session {
    pub fn new(client: Client, scheduler: Scheduler) -> Session {
        let config = Config::default();
        Session {
            client,
            scheduler,
            documents: Mutex::new(HashMap::new()),
            info: RwLock::new(ClientInfo { encoding: PositionEncoding::Utf16, root: None, progress: false }),
            engine: RwLock::new(Arc::new(Engine::new(config.review.clone(), None))),
            config: RwLock::new(Arc::new(config)),
            store: RwLock::new(None),
            client_layer: Mutex::new(None),
            problems: Mutex::new(Vec::new()),
            totals: Mutex::new(Totals::default()),
            scans: Mutex::new(HashMap::new()),
            llm_warned: std::sync::atomic::AtomicBool::new(false),
            options: super::ServeOptions::default(),
            metrics_bound: Mutex::new(None),
        }
    }

    pub fn info(&self) -> ClientInfo {
        read(&self.info).clone()
    }

    pub fn set_info(&self, info: ClientInfo) {
        *write(&self.info) = info;
    }

    pub fn config(&self) -> Arc<Config> {
        read(&self.config).clone()
    }

    pub fn engine(&self) -> Arc<Engine> {
        read(&self.engine).clone()
    }

    pub fn cache(&self) -> Option<Arc<Store>> {
        self.engine().cache().cloned()
    }

    pub fn store(&self) -> Option<Arc<Store>> {
        read(&self.store).clone()
    }

    /// Swaps in a new engine and store. The old ones may hold the last handle to a store, whose
    /// drop waits for a final commit, so they are dropped on the blocking pool.
    pub fn install(&self, config: Config, routing: Routing, store: Arc<Store>) {
        let cache = config.cache.enabled.then(|| Arc::clone(&store));
        crate::review::llm_agents::persist_budget_in(Arc::clone(&store));
        crate::review::llm_agents::share_limits_through(&store);
        let engine = Engine::new(config.review.clone(), cache).with_llm(routing);
        let old = std::mem::replace(&mut *write(&self.engine), Arc::new(engine));
        let old_store = write(&self.store).replace(store);
        *write(&self.config) = Arc::new(config);
        tokio::task::spawn_blocking(move || drop((old, old_store)));
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
fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
