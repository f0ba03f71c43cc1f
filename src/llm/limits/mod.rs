//! Owns behaving well under a vendor's limits: the [`Gate`] every LLM call goes through, and the
//! state machines behind it, each in its own module and deterministic under tokio's paused clock:
//!
//! - [`bucket`]: requests/min and tokens/min per key, calls in flight, priority queue;
//! - [`throttle`]: stepping the rate down on 429s and back up, pausing on the vendor's word;
//! - [`breaker`]: failing fast while a vendor is down, probing once to see it back;
//! - [`retry`]: backoff with full jitter for retryable errors, the quota latch;
//! - [`budget`]: the daily spend cap per workspace (`[budget]` settings: [`BudgetSettings`]);
//! - `settings`: `[limits]` ([`LimitSettings`]) with the design's defaults.
//!
//! One call through [`Gate::run`]: budget check → quota latch → breaker → limiters (user,
//! tenant, endpoint; by priority) → the HTTP attempt → its outcome into the breaker, throttle,
//! token correction and budget → retry per policy. The Gate knows nothing of LSP or reviews:
//! the caller maps [`GateError`] to "skip the LLM agents", and tells the user when an error's
//! `tell_user` is set.

// `GateError::Llm` carries an `LlmError`, which is large (see `llm/mod.rs`).
#![allow(clippy::result_large_err)]

pub mod breaker;
pub mod bucket;
pub mod budget;
pub mod retry;
mod settings;
pub mod throttle;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use breaker::{Breaker, BreakerOpen, BreakerSettings, BreakerSnapshot, BreakerState, Outcome};
pub use bucket::{Admission, Bucket, BucketSnapshot, Priority, Rates};
pub use budget::{
    Budget, BudgetSettings, BudgetSnapshot, BudgetStore, Clock, Day, MemoryBudgetStore, OverBudget, Price, Remaining,
    Spent,
};
pub use retry::{Classify, QuotaLatch, RetryError, RetryPolicy, Verdict};
pub use settings::LimitSettings;
pub use throttle::{Throttle, ThrottleSettings};

use super::{Completion, Endpoint, LlmError};

/// Why [`Gate::run`] returned no completion.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GateError {
    /// The vendor is failing; skip the LLM agents (offline findings still publish).
    #[error("LLM calls to {endpoint} are paused for {} s: the provider is failing", retry_in.as_secs_f64().ceil())]
    BreakerOpen { endpoint: String, retry_in: Duration },
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
    /// The account is out of money; calls to it stop until tomorrow (UTC) or a settings change.
    #[error(
        "LLM calls to {endpoint} are stopped until tomorrow (UTC) or a settings change: the account's quota or credit is exhausted: {message}"
    )]
    QuotaStopped { endpoint: String, message: String, tell_user: bool },
    /// The call failed for good (not retryable, or out of attempts).
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error("the LLM call was cancelled")]
    Cancelled,
}

impl GateError {
    /// The `error_type` label of `llm_api_errors_total` for a refusal or failure.
    pub fn kind(&self) -> &'static str {
        match self {
            GateError::BreakerOpen { .. } => "breaker_open",
            GateError::OverBudget(_) => "over_budget",
            GateError::QuotaStopped { .. } => "quota",
            GateError::Llm(e) => e.kind(),
            GateError::Cancelled => "cancelled",
        }
    }

    /// Whether this is news the user should see now (once per day / stop), rather than a
    /// repeat of something already said.
    pub fn tell_user(&self) -> bool {
        match self {
            GateError::OverBudget(o) => o.tell_user,
            GateError::QuotaStopped { tell_user, .. } => *tell_user,
            _ => false,
        }
    }
}

impl Classify for GateError {
    fn verdict(&self) -> Verdict {
        match self {
            GateError::Llm(e) => e.verdict(),
            _ => Verdict::Fail,
        }
    }
}

/// Calls queued behind one limit: `limit` is `user`, `tenant` or an endpoint key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub limit: String,
    pub calls: usize,
    /// Until the first of them may go, like a Retry-After.
    pub wait: Duration,
}

/// A rate quota shared with other processes: every editor of a team and CI draw on one
/// vendor quota, so each process's local buckets alone would overspend it N times. The lead
/// backs this with Redis (`store::redis_backend`); `llm` stays free of storage.
pub trait SharedQuota: Send + Sync {
    /// Takes one request and `tokens` from `bucket` if they are there (`Ok(ZERO)`), else
    /// says how long until they would be. `Err`: unreachable; the gate goes on with its local
    /// buckets alone.
    fn acquire<'a>(&'a self, bucket: &'a str, rates: Rates, tokens: u64) -> BoxFuture<'a, Result<Duration, ()>>;
    /// After the call: `actual - estimated` tokens.
    fn correct(&self, bucket: &str, rates: Rates, delta: i64);
}

/// Longest single sleep for the shared quota, so settings changes and cancellation are seen.
const SHARED_WAIT_STEP: Duration = Duration::from_secs(5);
/// Longest a call waits on one shared bucket in all. The wait comes from Redis, which is outside
/// input: a hostile or broken one could say "wait" forever. An honest bucket admits one request
/// within a minute and a call's tokens within a minute per `tokens_per_minute` they need, so
/// past this bound (twice that, plus a minute for the team's contention) the sharing is given
/// up for this call and the local buckets alone decide.
fn shared_wait_bound(rates: Rates, tokens: u64) -> Duration {
    let token_minutes = if rates.tokens_per_minute > 0 { tokens.div_ceil(rates.tokens_per_minute) } else { 0 };
    Duration::from_secs(60 * (3 + 2 * token_minutes.min(60)))
}

/// State changes the editor may want to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateEvent {
    Breaker { endpoint: String, state: BreakerState },
}

/// For `review-lsp.showStats`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateSnapshot {
    pub user: String,
    pub user_limiter: BucketSnapshot,
    pub tenant: Option<String>,
    pub endpoints: Vec<EndpointSnapshot>,
    pub budget: Option<BudgetSnapshot>,
    pub quota_stopped: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointSnapshot {
    pub endpoint: String,
    pub limiter: BucketSnapshot,
    pub breaker: BreakerSnapshot,
}

struct EndpointLimits {
    key: String,
    bucket: Bucket,
    throttle: Mutex<Throttle>,
    breaker: Breaker,
}

/// Every LLM call goes through one Gate (per workspace: the budget is per workspace).
pub struct Gate {
    settings: Mutex<LimitSettings>,
    user: String,
    user_bucket: Bucket,
    tenant_bucket: Bucket,
    endpoints: Mutex<HashMap<String, Arc<EndpointLimits>>>,
    budget: Option<Arc<Budget>>,
    quota: QuotaLatch,
    retry: Mutex<Arc<RetryPolicy>>,
    seed: Option<u64>,
    clock: Clock,
    events: broadcast::Sender<GateEvent>,
    shared: Mutex<Option<Arc<dyn SharedQuota>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Rate limits and breakers are per model at the vendor: `openai:gpt-4.1-mini@https://…/v1`.
pub fn endpoint_key(endpoint: &Endpoint) -> String {
    format!("{}:{}@{}", endpoint.kind, endpoint.model, endpoint.base_url.trim_end_matches('/'))
}

/// Money is per account: a quota error stops every model of `openai@https://…/v1`.
pub fn account_key(endpoint: &Endpoint) -> String {
    format!("{}@{}", endpoint.kind, endpoint.base_url.trim_end_matches('/'))
}

impl Gate {
    pub fn new(settings: LimitSettings, budget: Option<Arc<Budget>>) -> Gate {
        Gate::build(settings, budget, None, budget::system_clock())
    }

    /// Reproducible jitter and a movable day (tests).
    pub fn for_tests(settings: LimitSettings, budget: Option<Arc<Budget>>, seed: u64, clock: Clock) -> Gate {
        Gate::build(settings, budget, Some(seed), clock)
    }

    fn build(settings: LimitSettings, budget: Option<Arc<Budget>>, seed: Option<u64>, clock: Clock) -> Gate {
        Gate {
            user: settings.resolved_user(),
            user_bucket: Bucket::new(settings.user_rates()),
            tenant_bucket: Bucket::new(settings.tenant_rates()),
            endpoints: Mutex::new(HashMap::new()),
            budget,
            quota: QuotaLatch::new(),
            retry: Mutex::new(Arc::new(settings.retry_policy(seed))),
            seed,
            clock,
            events: broadcast::channel(64).0,
            shared: Mutex::new(None),
            settings: Mutex::new(settings),
        }
    }

    /// Breaker state changes, for the editor.
    pub fn subscribe(&self) -> broadcast::Receiver<GateEvent> {
        self.events.subscribe()
    }

    /// Draws on a quota shared with other processes as well as the local buckets.
    pub fn set_shared_quota(&self, quota: Option<Arc<dyn SharedQuota>>) {
        *lock(&self.shared) = quota;
    }

    /// The shared buckets a call to `ep` draws on: the user's, the tenant's, the endpoint's.
    fn shared_buckets(&self, ep: &EndpointLimits) -> Vec<(String, Rates)> {
        let settings = lock(&self.settings);
        let mut buckets = vec![(format!("user:{}", self.user), settings.user_rates())];
        if let Some(tenant) = &settings.tenant {
            buckets.push((format!("tenant:{tenant}"), settings.tenant_rates()));
        }
        buckets.push((format!("endpoint:{}", ep.key), settings.endpoint_rates()));
        buckets.retain(|(_, r)| r.requests_per_minute > 0 || r.tokens_per_minute > 0);
        buckets
    }

    /// Waits until every shared bucket admits the call; gives up on the sharing (not the call)
    /// when the shared store is unreachable.
    async fn take_shared(&self, ep: &EndpointLimits, tokens: u64) {
        let Some(quota) = lock(&self.shared).clone() else { return };
        for (bucket, rates) in self.shared_buckets(ep) {
            // Only the endpoint meters tokens; the others count requests.
            let tokens = if bucket.starts_with("endpoint:") { tokens } else { 0 };
            let bound = shared_wait_bound(rates, tokens);
            let mut waited = Duration::ZERO;
            loop {
                match quota.acquire(&bucket, rates, tokens).await {
                    Ok(wait) if wait.is_zero() => break,
                    Ok(_) if waited >= bound => {
                        tracing::warn!(bucket = %crate::escape::line(&bucket), ?waited, "the shared quota kept the call waiting past any honest bound; going on with the local limits");
                        return;
                    }
                    Ok(wait) => {
                        let step = wait.min(SHARED_WAIT_STEP);
                        tokio::time::sleep(step).await;
                        waited += step;
                    }
                    Err(()) => return,
                }
            }
        }
    }

    fn correct_shared(&self, ep: &EndpointLimits, delta: i64) {
        let Some(quota) = lock(&self.shared).clone() else { return };
        let rates = lock(&self.settings).endpoint_rates();
        quota.correct(&format!("endpoint:{}", ep.key), rates, delta);
    }

    pub fn budget(&self) -> Option<&Arc<Budget>> {
        self.budget.as_ref()
    }

    fn today(&self) -> Day {
        Day::of((self.clock)())
    }

    /// New settings at run time: rates change in place (nothing spent is forgotten), and a
    /// provider stopped for quota is tried again (the user may have fixed the account).
    pub fn set_settings(&self, settings: LimitSettings) {
        self.user_bucket.set_rates(settings.user_rates());
        self.tenant_bucket.set_rates(settings.tenant_rates());
        for ep in lock(&self.endpoints).values() {
            ep.bucket.set_rates(settings.endpoint_rates());
            ep.breaker.set_settings(settings.breaker());
            lock(&ep.throttle).set_settings(settings.throttle());
        }
        *lock(&self.retry) = Arc::new(settings.retry_policy(self.seed));
        *lock(&self.settings) = settings;
        self.quota.clear();
    }

    fn endpoint(&self, endpoint: &Endpoint) -> Arc<EndpointLimits> {
        let key = endpoint_key(endpoint);
        let mut map = lock(&self.endpoints);
        if let Some(ep) = map.get(&key) {
            return ep.clone();
        }
        let settings = lock(&self.settings).clone();
        let events = self.events.clone();
        let label = key.clone();
        let breaker = Breaker::new(settings.breaker()).on_change(move |state| {
            tracing::info!(endpoint = label.as_str(), ?state, "circuit breaker");
            let _ = events.send(GateEvent::Breaker { endpoint: label.clone(), state });
        });
        let ep = Arc::new(EndpointLimits {
            key: key.clone(),
            bucket: Bucket::new(settings.endpoint_rates()),
            throttle: Mutex::new(Throttle::new(settings.throttle())),
            breaker,
        });
        map.insert(key, ep.clone());
        ep
    }

    /// How long a call would wait for the limiters if it started now, like a Retry-After (for
    /// "waiting 12 s for the rate limit"); zero when it would go at once.
    pub fn wait_estimate(&self, endpoint: &Endpoint, priority: Priority, est_tokens: u64) -> Duration {
        let ep = self.endpoint(endpoint);
        [&self.user_bucket, &self.tenant_bucket, &ep.bucket]
            .iter()
            .map(|b| b.estimate_wait(priority, est_tokens))
            .max()
            .unwrap_or_default()
    }

    /// Makes one logical call: `call` sends one HTTP attempt and may be called again for a
    /// retry. `est_tokens` is what the vendor will meter (prompt plus expected output); it is
    /// corrected from `usage` afterwards.
    pub async fn run<F, Fut>(
        &self,
        endpoint: &Endpoint,
        priority: Priority,
        est_tokens: u64,
        cancel: &CancellationToken,
        call: F,
    ) -> Result<Completion, GateError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Completion, LlmError>>,
    {
        let work = async {
            let account = account_key(endpoint);
            self.check_paused(&account)?;
            let ep = self.endpoint(endpoint);
            let policy = lock(&self.retry).clone();
            let model = endpoint.model.as_str();
            // `call` runs only once an attempt is admitted; the Mutex lends it to each attempt.
            let call = Mutex::new(call);
            let result = policy.retry(|| self.attempt(&ep, &account, model, priority, est_tokens, &call)).await;
            match result {
                Ok(completion) => Ok(completion),
                Err(RetryError::Stop(GateError::Llm(LlmError::QuotaExhausted { message }))) => {
                    let tell_user = self.quota.stop(&account, self.today(), &message);
                    Err(GateError::QuotaStopped { endpoint: account, message, tell_user })
                }
                Err(e) => Err(e.into_inner()),
            }
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(GateError::Cancelled),
            result = work => result,
        }
    }

    /// Refuses when today's budget is spent or the provider's account is out of quota.
    fn check_paused(&self, account: &str) -> Result<(), GateError> {
        if let Some(budget) = &self.budget {
            budget.check()?;
        }
        match self.quota.stopped(account, self.today()) {
            Some(message) => {
                crate::metrics::api_error("quota");
                Err(GateError::QuotaStopped { endpoint: account.to_owned(), message, tell_user: false })
            }
            None => Ok(()),
        }
    }

    async fn attempt<F, Fut>(
        &self,
        ep: &EndpointLimits,
        account: &str,
        model: &str,
        priority: Priority,
        est_tokens: u64,
        call: &Mutex<F>,
    ) -> Result<Completion, GateError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Completion, LlmError>>,
    {
        let open = |retry_in| GateError::BreakerOpen { endpoint: ep.key.clone(), retry_in };
        let permit = ep.breaker.try_acquire(Instant::now()).map_err(|o| open(o.retry_in))?;
        // User and tenant first: the endpoint admission holds an in-flight slot while we wait.
        let _user = self.user_bucket.acquire(priority, est_tokens).await;
        let _tenant = self.tenant_bucket.acquire(priority, est_tokens).await;
        let admission = ep.bucket.acquire(priority, est_tokens).await;
        crate::metrics::limiter_wait(priority.as_str(), admission.waited().as_secs_f64());
        if !permit.is_current() {
            // The breaker opened while we queued: do not send, and give the turn back.
            ep.bucket.refund(admission, est_tokens);
            drop(permit);
            let retry_in =
                ep.breaker.open_until().map_or(Duration::ZERO, |u| u.saturating_duration_since(Instant::now()));
            return Err(open(retry_in));
        }
        // Checked again after queueing: calls queued behind the one that spent the budget or hit
        // the quota must not go out.
        if let Err(paused) = self.check_paused(account) {
            ep.bucket.refund(admission, est_tokens);
            return Err(paused);
        }
        self.take_shared(ep, est_tokens).await;
        let admitted_at = Instant::now();
        let attempt = (lock(call))();
        let result = attempt.await;
        // Recorded before the slot is released, so the next call admitted sees the new rate.
        let now = Instant::now();
        permit.record(Outcome::of(&result), now);
        let mut throttle = lock(&ep.throttle);
        match &result {
            Ok(c) => {
                let used = c.usage.prompt_tokens + c.usage.completion_tokens;
                // Zero means the server did not say (some local servers): keep the estimate.
                if used > 0 {
                    ep.bucket.correct(used as i64 - est_tokens as i64);
                    self.correct_shared(ep, used as i64 - est_tokens as i64);
                }
                throttle.on_success(&c.rate, now);
                if let Some(budget) = &self.budget {
                    budget.charge(c.usage, model);
                }
            }
            Err(e @ LlmError::RateLimited { .. }) => {
                crate::metrics::api_error(e.kind());
                throttle.on_rate_limited(admitted_at, throttle::pause_hint(e), now);
            }
            Err(e) => crate::metrics::api_error(e.kind()),
        }
        ep.bucket.set_scale(throttle.factor());
        if let Some(until) = throttle.paused_until() {
            ep.bucket.pause_until(until);
        }
        drop(throttle);
        drop(admission);
        result.map_err(GateError::Llm)
    }

    /// Where calls are queued for a rate limit right now, longest wait first: what `scan`
    /// shows on its progress line.
    pub fn waiting(&self) -> Vec<Waiting> {
        let endpoints: Vec<Arc<EndpointLimits>> = lock(&self.endpoints).values().cloned().collect();
        let mut found: Vec<Waiting> = [("user", &self.user_bucket), ("tenant", &self.tenant_bucket)]
            .into_iter()
            .filter_map(|(what, b)| b.queue().map(|q| (what.to_owned(), q)))
            .chain(endpoints.iter().filter_map(|ep| ep.bucket.queue().map(|q| (ep.key.clone(), q))))
            .map(|(limit, (calls, wait))| Waiting { limit, calls, wait })
            .collect();
        found.sort_by(|a, b| b.wait.cmp(&a.wait).then_with(|| a.limit.cmp(&b.limit)));
        found
    }

    pub fn snapshot(&self) -> GateSnapshot {
        let now = Instant::now();
        let mut endpoints: Vec<EndpointSnapshot> = lock(&self.endpoints)
            .values()
            .map(|ep| EndpointSnapshot {
                endpoint: ep.key.clone(),
                limiter: ep.bucket.snapshot(),
                breaker: ep.breaker.snapshot(now),
            })
            .collect();
        endpoints.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        GateSnapshot {
            user: self.user.clone(),
            user_limiter: self.user_bucket.snapshot(),
            tenant: lock(&self.settings).tenant.clone(),
            endpoints,
            budget: self.budget.as_ref().map(|b| b.snapshot()),
            quota_stopped: self.quota.stopped_keys(self.today()),
        }
    }
}

#[cfg(test)]
#[path = "tests/gate.rs"]
mod tests;
