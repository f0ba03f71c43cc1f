//! Owns the LLM agents' side of a review: the chunks they still have to see (cache misses
//! planned by the engine), grouping those into as few calls as the limits allow, making the
//! calls, and turning replies into validated, cached findings. Offline rules always run
//! as well, so an unreachable model costs the model's findings, never the offline ones.

mod batch;
mod call;
pub mod routing;

use std::ops::Range;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use routing::Routing;

use crate::llm::LlmClient;
use crate::llm::limits::{
    Budget, BudgetSettings, BudgetStore, Day, Gate, LimitSettings, MemoryBudgetStore, Priority, Rates, SharedQuota,
    Spent,
};
use crate::review::finding::{Category, Finding};
use crate::review::prompt::Line;
use crate::store::redis_backend::{RedisBackend, RemoteRates};
use crate::store::{CacheKey, Store};
use crate::syntax::Language;

/// Calls one review prepares at once. The gate admits at most `[limits] max_concurrency` per
/// endpoint in flight; this only bounds the prompts built ahead of their turn.
const CONCURRENT_CALLS: usize = 4;

/// One chunk one LLM agent still has to review: it missed the chunk cache.
#[derive(Clone, Debug)]
pub struct Job {
    pub agent: Category,
    /// The chunk's byte ranges and lines in the document, where its findings may land.
    pub ranges: Vec<Range<usize>>,
    pub lines: Vec<Range<u32>>,
    pub start_line: u32,
    /// What is sent: stripped of comments (except for documentation) and redacted.
    pub prompt_lines: Vec<Line>,
    /// Estimated prompt tokens of `prompt_lines`, for batching under the token budget.
    pub tokens: usize,
    pub key: CacheKey,
}

/// A file's jobs, with what rendering and validation need.
pub struct FileWork {
    /// As shown to the model and used to route batched findings: relative to the root.
    pub path: String,
    pub text: Arc<str>,
    pub language: Language,
    pub jobs: Vec<Job>,
}

/// What the LLM agents found in one file.
#[derive(Clone, Debug, Default)]
pub struct FileResult {
    pub findings: Vec<Finding>,
    /// Agents whose call failed or whose reply was unusable: `(agent, why)`. Such chunks are
    /// not cached and are reviewed again next time.
    pub unavailable: Vec<(Category, String)>,
}

/// One model call, for stats and for the benchmarks.
#[derive(Clone, Debug, Serialize)]
pub struct CallRecord {
    pub agent: Category,
    pub model: String,
    pub files: usize,
    pub chunks: usize,
    pub estimated_tokens: usize,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub latency_ms: u64,
    /// `ok`, `truncated`, `unparseable`, or the error.
    pub outcome: String,
}

pub struct Report {
    /// One per input file, in input order.
    pub files: Vec<FileResult>,
    pub calls: Vec<CallRecord>,
}

/// The one gate every LLM call goes through: rate limits, breaker, retry and spend cap are
/// per process (per endpoint inside), so they outlive engines rebuilt on settings changes.
pub fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| {
        let budget = Budget::new(BudgetSettings::default(), Arc::new(MemoryBudgetStore::default()));
        Gate::new(LimitSettings::default(), Some(Arc::new(budget)))
    })
}

/// Applies `[limits]` and `[budget]` to the gate; calls already waiting see the new rates.
pub fn configure(limits: &LimitSettings, budget: &BudgetSettings) {
    let gate = gate();
    gate.set_settings(limits.clone());
    if let Some(b) = gate.budget() {
        b.set_settings(budget.clone());
    }
}

/// Persists the daily spend in the workspace's store from now on, so the cap survives restarts;
/// what earlier runs spent today is loaded at once.
pub fn persist_budget_in(store: Arc<Store>) {
    if let Some(budget) = gate().budget() {
        budget.set_store(Arc::new(StoredBudget(store)));
    }
}

/// Shares the rate quota through the store's team tier (Redis), when it has one: every server
/// and CI run of the team then draws on one quota.
pub fn share_limits_through(store: &Store) {
    let quota = store.team().map(|team| Arc::new(TeamQuota(Arc::clone(team))) as Arc<dyn SharedQuota>);
    gate().set_shared_quota(quota);
}

struct TeamQuota(Arc<RedisBackend>);

fn remote(rates: Rates) -> RemoteRates {
    RemoteRates {
        requests_per_minute: rates.requests_per_minute,
        burst: rates.burst,
        tokens_per_minute: rates.tokens_per_minute,
    }
}

impl SharedQuota for TeamQuota {
    fn acquire<'a>(&'a self, bucket: &'a str, rates: Rates, tokens: u64) -> BoxFuture<'a, Result<Duration, ()>> {
        Box::pin(self.0.acquire(bucket, remote(rates), tokens))
    }

    fn correct(&self, bucket: &str, rates: Rates, delta: i64) {
        self.0.correct(bucket, remote(rates), delta);
    }
}

/// The spend counters as records of the store: `budget/<YYYY-MM-DD>` → JSON of [`Spent`].
struct StoredBudget(Arc<Store>);

impl BudgetStore for StoredBudget {
    fn load(&self, day: Day) -> Option<Spent> {
        let bytes = self.0.get_record(&format!("budget/{day}"))?;
        serde_json::from_slice(&bytes)
            .inspect_err(|e| tracing::warn!("the stored budget for {day} is unreadable ({e}); counting from zero"))
            .ok()
    }

    fn save(&self, day: Day, spent: &Spent) {
        match serde_json::to_vec(spent) {
            Ok(bytes) => self.0.put_record(&format!("budget/{day}"), &bytes),
            Err(e) => tracing::warn!("cannot encode the budget: {e}"),
        }
    }
}

/// One HTTP client for the whole process: it holds the connection pool and the loaded root
/// certificates, which are too costly to rebuild per review.
pub fn client() -> Option<&'static LlmClient> {
    static CLIENT: OnceLock<Option<LlmClient>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            LlmClient::new()
                .inspect_err(|e| tracing::error!("cannot build the HTTP client: {e}; LLM agents are off"))
                .ok()
        })
        .as_ref()
}

/// Reviews every job of `work`: batched per agent, at most `CONCURRENT_CALLS` at a time.
/// `priority` orders calls when the rate limit is short: the active file's first.
pub async fn run(
    routing: &Routing,
    cache: Option<&Store>,
    work: &[FileWork],
    priority: Priority,
    cancel: &CancellationToken,
) -> Report {
    let mut files: Vec<FileResult> = work.iter().map(|_| FileResult::default()).collect();
    let mut calls = Vec::new();
    let Some(client) = client() else {
        for (i, w) in work.iter().enumerate() {
            for job in &w.jobs {
                files[i].unavailable.push((job.agent, "no HTTP client".into()));
            }
        }
        return Report { files, calls };
    };
    let planned = batch::plan(work, routing);
    let results: Vec<call::Outcome> = futures::stream::iter(planned)
        .map(|planned| async move {
            if cancel.is_cancelled() {
                return call::Outcome::cancelled(planned, work);
            }
            call::execute(client, routing, cache, work, planned, priority, cancel).await
        })
        .buffer_unordered(CONCURRENT_CALLS)
        .collect()
        .await;
    for outcome in results {
        for (file, finding) in outcome.findings {
            files[file].findings.push(finding);
        }
        for (file, agent, why) in outcome.unavailable {
            files[file].unavailable.push((agent, why));
        }
        calls.extend(outcome.record);
    }
    for call in &calls {
        crate::metrics::tokens(call.agent.as_str(), &call.model, call.prompt_tokens, call.completion_tokens);
    }
    Report { files, calls }
}

/// Sets the gauges that mirror the gate: breaker state per endpoint and today's budget.
pub fn export_metrics() {
    let snapshot = gate().snapshot();
    for ep in &snapshot.endpoints {
        let state = match ep.breaker.state {
            crate::llm::limits::BreakerState::Closed => 0,
            crate::llm::limits::BreakerState::HalfOpen => 1,
            crate::llm::limits::BreakerState::Open => 2,
        };
        crate::metrics::set_breaker(&ep.endpoint, state);
    }
    if let (Some(b), Some(budget)) = (&snapshot.budget, gate().budget()) {
        let caps = budget.settings_caps();
        let ratio = [
            caps.0.map(|cap| b.spent.tokens() as f64 / cap.max(1) as f64),
            caps.1.map(|cap| if cap > 0.0 { b.spent.cost_usd / cap } else { 1.0 }),
        ]
        .into_iter()
        .flatten()
        .fold(0.0, f64::max);
        crate::metrics::set_budget(ratio, b.spent.tokens(), b.spent.cost_usd);
    }
}
