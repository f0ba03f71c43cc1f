//! Owns the process's Prometheus metrics: one registry with the design's names and labels,
//! the small functions the rest of the code records through, and the text encoding served at
//! `/metrics` (`serve --metrics-addr`) or written by `scan --metrics-file`.
//!
//! Counters and histograms are recorded where things happen. Gauges that mirror state held
//! elsewhere (queue depth, breaker state, budget, Redis) are set just before encoding by
//! whoever owns that state (`server::metrics_http`, `review::llm_agents::export_metrics`), so
//! nothing has to remember to keep them in step.
//!
//! A leaf module: it knows no review, LSP or storage types, only label strings.

use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    r#type: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    agent: String,
    model: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    error_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabel {
    tier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PriorityLabel {
    priority: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

/// 5 ms to about 80 s: reviews run from a cache hit to a slow model call.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<TypeLabel, Histogram, fn() -> Histogram>,
    tokens: Family<TokenLabels, Counter>,
    api_errors: Family<ErrorLabel, Counter>,
    cache_hits: Family<TierLabel, Counter>,
    cache_misses: Counter,
    queue_depth: Family<PriorityLabel, Gauge>,
    queue_wait: Family<PriorityLabel, Histogram, fn() -> Histogram>,
    breaker: Family<EndpointLabel, Gauge>,
    limiter_wait: Family<PriorityLabel, Histogram, fn() -> Histogram>,
    budget_ratio: Gauge<f64, AtomicU64>,
    budget_tokens: Gauge,
    budget_usd: Gauge<f64, AtomicU64>,
    redis_up: Gauge,
    redis_configured: std::sync::atomic::AtomicBool,
}

fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let m = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            tokens: Family::default(),
            api_errors: Family::default(),
            cache_hits: Family::default(),
            cache_misses: Counter::default(),
            queue_depth: Family::default(),
            queue_wait: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            breaker: Family::default(),
            limiter_wait: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            budget_ratio: Gauge::default(),
            budget_tokens: Gauge::default(),
            budget_usd: Gauge::default(),
            redis_up: Gauge::default(),
            redis_configured: std::sync::atomic::AtomicBool::new(false),
        };
        let mut m = m;
        let r = &mut m.registry;
        r.register("code_review_requests", "Reviews by type (edit, scan, cli) and status", m.requests.clone());
        r.register("code_review_duration_seconds", "Time to review one file", m.duration.clone());
        r.register("llm_tokens", "Tokens metered by the model vendors", m.tokens.clone());
        r.register("llm_api_errors", "Failed or refused LLM calls, by error type", m.api_errors.clone());
        r.register("cache_hits", "Cache lookups answered, by tier", m.cache_hits.clone());
        r.register("cache_misses", "Cache lookups no tier could answer", m.cache_misses.clone());
        r.register("request_queue_depth", "Reviews waiting, by priority", m.queue_depth.clone());
        r.register("queue_wait_seconds", "Time a review waited in the queue", m.queue_wait.clone());
        r.register(
            "llm_breaker_state",
            "Circuit breaker per endpoint: 0 closed, 1 half-open, 2 open",
            m.breaker.clone(),
        );
        r.register("llm_limiter_wait_seconds", "Time an LLM call waited for the rate limiter", m.limiter_wait.clone());
        r.register(
            "llm_budget_used_ratio",
            "Today's spend over the daily cap (0 without a cap)",
            m.budget_ratio.clone(),
        );
        r.register("llm_budget_spent_tokens", "Tokens spent today (UTC)", m.budget_tokens.clone());
        r.register("llm_budget_spent_usd", "Estimated dollars spent today (UTC)", m.budget_usd.clone());
        m
    })
}

/// One finished review of one file. `kind`: edit, scan or cli; `status`: ok, cancelled, error.
pub fn review(kind: &'static str, status: &'static str, seconds: f64) {
    let m = metrics();
    m.requests.get_or_create(&RequestLabels { r#type: kind, status }).inc();
    m.duration.get_or_create(&TypeLabel { r#type: kind }).observe(seconds);
}

pub fn tokens(agent: &str, model: &str, prompt: u64, completion: u64) {
    let m = metrics();
    for (kind, n) in [("prompt", prompt), ("completion", completion)] {
        m.tokens.get_or_create(&TokenLabels { agent: agent.to_owned(), model: model.to_owned(), kind }).inc_by(n);
    }
}

pub fn api_error(error_type: &'static str) {
    metrics().api_errors.get_or_create(&ErrorLabel { error_type }).inc();
}

/// `tier`: memory, disk or team.
pub fn cache_hit(tier: &'static str) {
    metrics().cache_hits.get_or_create(&TierLabel { tier }).inc();
}

pub fn cache_miss() {
    metrics().cache_misses.inc();
}

pub fn queue_wait(priority: &'static str, seconds: f64) {
    metrics().queue_wait.get_or_create(&PriorityLabel { priority }).observe(seconds);
}

pub fn set_queue_depth(priority: &'static str, depth: usize) {
    metrics().queue_depth.get_or_create(&PriorityLabel { priority }).set(depth as i64);
}

pub fn limiter_wait(priority: &'static str, seconds: f64) {
    metrics().limiter_wait.get_or_create(&PriorityLabel { priority }).observe(seconds);
}

/// 0 closed, 1 half-open, 2 open.
pub fn set_breaker(endpoint: &str, state: i64) {
    metrics().breaker.get_or_create(&EndpointLabel { endpoint: endpoint.to_owned() }).set(state);
}

pub fn set_budget(used_ratio: f64, tokens: u64, usd: f64) {
    let m = metrics();
    m.budget_ratio.set(used_ratio);
    m.budget_tokens.set(tokens as i64);
    m.budget_usd.set(usd);
}

/// `None` when no Redis is configured: the series is then left out.
pub fn set_redis_up(up: Option<bool>) {
    let m = metrics();
    if let Some(up) = up {
        m.redis_up.set(i64::from(up));
        m.redis_configured.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The Prometheus text exposition of every metric.
pub fn encode() -> String {
    let m = metrics();
    let mut out = String::new();
    if prometheus_client::encoding::text::encode_registry(&mut out, &m.registry).is_err() {
        return String::new();
    }
    // Registered late so the series exists only where a team tier is configured.
    if m.redis_configured.load(std::sync::atomic::Ordering::Relaxed) {
        let mut extra = Registry::default();
        extra.register("redis_backend_up", "Whether the team's Redis answers (1) or not (0)", m.redis_up.clone());
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &extra);
    }
    let _ = prometheus_client::encoding::text::encode_eof(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_design_names_are_exported() {
        review("edit", "ok", 0.02);
        tokens("security", "gpt-4.1-mini", 100, 7);
        api_error("rate_limited");
        cache_hit("disk");
        cache_miss();
        set_queue_depth("active", 2);
        queue_wait("active", 0.001);
        limiter_wait("workspace", 1.5);
        set_breaker("openai:m@http://x/v1", 2);
        set_budget(0.5, 1000, 0.25);
        let text = encode();
        for line in [
            r#"code_review_requests_total{type="edit",status="ok"}"#,
            r#"code_review_duration_seconds_bucket{le="0.04",type="edit"}"#,
            r#"llm_tokens_total{agent="security",model="gpt-4.1-mini",kind="prompt"}"#,
            r#"llm_api_errors_total{error_type="rate_limited"}"#,
            r#"cache_hits_total{tier="disk"}"#,
            "cache_misses_total",
            r#"request_queue_depth{priority="active"} 2"#,
            r#"queue_wait_seconds_count{priority="active"}"#,
            r#"llm_limiter_wait_seconds_sum{priority="workspace"}"#,
            r#"llm_breaker_state{endpoint="openai:m@http://x/v1"} 2"#,
            "llm_budget_used_ratio 0.5",
            "llm_budget_spent_tokens 1000",
            "llm_budget_spent_usd 0.25",
        ] {
            assert!(text.contains(line), "missing {line} in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
