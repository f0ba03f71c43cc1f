//! The limits Gate (`review_lsp::llm::limits`) in front of the real HTTP client, against an
//! OpenAI mock on loopback. Real time (reqwest does not run on tokio's paused clock), so the
//! waits are small and every test is bounded by a timeout.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use review_lsp::llm::limits::{
    BreakerState, Budget, BudgetSettings, Gate, GateError, LimitSettings, MemoryBudgetStore, Priority,
};
use review_lsp::llm::{Completion, CompletionRequest, Endpoint, LlmClient, LlmError, ProviderKind};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::method};

const BOUND: Duration = Duration::from_secs(30);

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "choices": [{"message": {"role": "assistant", "content": "{\"findings\":[]}"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 30}
    }))
}

fn error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"error": {"message": format!("mock {code}"), "type": code, "code": code}}))
}

/// Answers with `reply(n)` for the n-th request (from 0), logging when each arrived.
struct Scripted<F> {
    count: AtomicUsize,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    reply: F,
}

impl<F: Fn(usize) -> ResponseTemplate + Send + Sync> Respond for Scripted<F> {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.arrivals.lock().unwrap().push(Instant::now());
        (self.reply)(self.count.fetch_add(1, Ordering::SeqCst))
    }
}

/// A mock whose `reply` decides each answer; returns it with the arrival log.
async fn mock<F>(reply: F) -> (MockServer, Arc<Mutex<Vec<Instant>>>)
where
    F: Fn(usize) -> ResponseTemplate + Send + Sync + 'static,
{
    let server = MockServer::start().await;
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let responder = Scripted { count: AtomicUsize::new(0), arrivals: arrivals.clone(), reply };
    Mock::given(method("POST")).respond_with(responder).mount(&server).await;
    (server, arrivals)
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.expect("recording is on").len()
}

/// Fast settings: no rate limit to speak of, short backoff.
fn fast() -> LimitSettings {
    LimitSettings {
        requests_per_minute: 6000,
        tokens_per_minute: 0,
        per_user_requests_per_minute: 0,
        retry_base_delay_ms: 10,
        retry_max_delay_ms: 50,
        ..LimitSettings::default()
    }
}

/// One logical review call through `gate` with the real client. Keyless: a non-default
/// base URL of an OpenAI-compatible server needs no key.
async fn call(gate: &Gate, server: &str, priority: Priority) -> Result<Completion, GateError> {
    let endpoint = Endpoint {
        base_url: format!("{server}/v1"),
        api_key_env: String::new(),
        timeout: Duration::from_secs(5),
        ..Endpoint::new(ProviderKind::OpenAi, "gpt-4.1-mini")
    };
    let request = CompletionRequest {
        system: "review".into(),
        user: "code".into(),
        max_output_tokens: 64,
        json_schema: serde_json::Value::Null,
    };
    let client = LlmClient::new().unwrap();
    let cancel = CancellationToken::new();
    let run = gate.run(&endpoint, priority, 130, &cancel, || client.complete(&endpoint, &request));
    tokio::time::timeout(BOUND, run).await.expect("bounded")
}

#[tokio::test]
async fn a_429_storm_is_ridden_out_honouring_retry_after() {
    // The first six requests are told to come back in 1 s.
    let (server, arrivals) =
        mock(|n| if n < 6 { error(429, "rate_limit_exceeded").insert_header("retry-after", "1") } else { ok() }).await;
    let gate = Gate::new(fast(), None);
    let uri = server.uri();
    let results = join_all((0..6).map(|_| call(&gate, &uri, Priority::Workspace))).await;
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(requests(&server).await, 12, "each call: one 429, one success");
    // Four went at once (max_concurrency); nothing more went out until the retry-after passed.
    let arrivals = arrivals.lock().unwrap();
    for later in &arrivals[4..] {
        assert!(*later - arrivals[0] >= Duration::from_millis(950), "{:?}", *later - arrivals[0]);
    }
    let limiter = &gate.snapshot().endpoints[0].limiter;
    assert!(limiter.rate_percent < 100, "throttled: {limiter:?}");
}

#[tokio::test]
async fn thirty_percent_random_503s_never_reach_the_user() {
    let rng = Mutex::new(0x5EED_u64);
    let failures = Arc::new(AtomicU64::new(0));
    let failed = failures.clone();
    let (server, _) = mock(move |_| {
        let mut state = rng.lock().unwrap();
        *state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        if (*state >> 33) % 100 < 30 {
            failed.fetch_add(1, Ordering::SeqCst);
            error(503, "overloaded")
        } else {
            ok()
        }
    })
    .await;
    let settings = LimitSettings { retry_attempts: 5, ..fast() };
    let gate = Gate::new(settings, None);
    let uri = server.uri();
    for i in 0..30 {
        let r = call(&gate, &uri, Priority::Workspace).await;
        assert!(r.is_ok(), "call {i}: {r:?}");
    }
    let failures = failures.load(Ordering::SeqCst) as usize;
    assert!((5..=20).contains(&failures), "about 30 % of the requests failed: {failures}");
    assert_eq!(requests(&server).await, 30 + failures, "every 503 was retried, nothing else");
    assert_eq!(gate.snapshot().endpoints[0].breaker.opened_count, 0);
}

#[tokio::test]
async fn a_quota_error_is_sent_once_and_stops_the_provider() {
    let (server, _) = mock(|_| error(429, "insufficient_quota")).await;
    let gate = Gate::new(fast(), None);
    let uri = server.uri();
    let first = call(&gate, &uri, Priority::Active).await.unwrap_err();
    assert!(matches!(&first, GateError::QuotaStopped { tell_user: true, .. }), "{first}");
    assert!(first.to_string().contains("mock insufficient_quota"), "{first}");
    assert_eq!(requests(&server).await, 1, "no retry");
    let second = call(&gate, &uri, Priority::Active).await.unwrap_err();
    assert!(matches!(&second, GateError::QuotaStopped { tell_user: false, .. }), "{second}");
    assert_eq!(requests(&server).await, 1, "stopped: no call at all");
}

#[tokio::test]
async fn an_outage_opens_the_breaker_one_probe_at_a_time_until_recovery() {
    let down = Arc::new(AtomicBool::new(true));
    let is_down = down.clone();
    let (server, _) = mock(move |_| if is_down.load(Ordering::SeqCst) { error(503, "overloaded") } else { ok() }).await;
    let settings = LimitSettings { breaker_failures: 3, breaker_open_secs: 1, retry_attempts: 2, ..fast() };
    let gate = Gate::new(settings, None);
    let uri = server.uri();
    let mut events = gate.subscribe();

    // Call 1: two failed attempts. Call 2: the third failure opens the breaker, so its retry is
    // refused without a request.
    assert!(matches!(call(&gate, &uri, Priority::Active).await, Err(GateError::Llm(LlmError::Overloaded { .. }))));
    assert!(matches!(call(&gate, &uri, Priority::Active).await, Err(GateError::BreakerOpen { .. })));
    assert_eq!(requests(&server).await, 3);
    let started = Instant::now();
    assert!(matches!(call(&gate, &uri, Priority::Active).await, Err(GateError::BreakerOpen { .. })));
    assert!(started.elapsed() < Duration::from_millis(100), "fails fast");
    assert_eq!(requests(&server).await, 3);

    // Still down after 1 s: ten callers send one probe, which fails and reopens the breaker for
    // 2 s (so the probing call's own retry is refused too).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let probes = join_all((0..10).map(|_| call(&gate, &uri, Priority::Active))).await;
    assert!(probes.iter().all(|r| matches!(r, Err(GateError::BreakerOpen { .. }))), "{probes:?}");
    assert_eq!(requests(&server).await, 4, "exactly one probe");
    let breaker = &gate.snapshot().endpoints[0].breaker;
    assert_eq!((breaker.state, breaker.opened_count), (BreakerState::Open, 2));
    assert!(breaker.open_for_ms.unwrap() > 1500, "{breaker:?}");

    // Back up: after the 2 s, ten callers at once send exactly one probe, which closes it.
    down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let probes = join_all((0..10).map(|_| call(&gate, &uri, Priority::Active))).await;
    assert_eq!(probes.iter().filter(|r| r.is_ok()).count(), 1, "{probes:?}");
    assert!(probes.iter().all(|r| r.is_ok() || matches!(r, Err(GateError::BreakerOpen { .. }))));
    assert_eq!(requests(&server).await, 5);
    assert_eq!(gate.snapshot().endpoints[0].breaker.state, BreakerState::Closed);
    assert!(call(&gate, &uri, Priority::Active).await.is_ok());
    assert_eq!(requests(&server).await, 6);

    let mut states = Vec::new();
    while let Ok(event) = events.try_recv() {
        let review_lsp::llm::limits::GateEvent::Breaker { state, .. } = event;
        states.push(state);
    }
    use BreakerState::*;
    assert_eq!(states, [Open, HalfOpen, Open, HalfOpen, Closed]);
}

#[tokio::test]
async fn the_spend_cap_is_reached_mid_scan() {
    let (server, _) = mock(|_| ok()).await;
    let budget = BudgetSettings { daily_token_budget: Some(500), ..BudgetSettings::default() };
    let budget = Arc::new(Budget::new(budget, Arc::new(MemoryBudgetStore::default())));
    let gate = Gate::new(fast(), Some(budget.clone()));
    let uri = server.uri();
    let mut results = Vec::new();
    for _ in 0..6 {
        results.push(call(&gate, &uri, Priority::Workspace).await);
    }
    assert_eq!(requests(&server).await, 4, "130 tokens a call: the 4th crosses 500");
    assert!(results[..4].iter().all(Result::is_ok));
    assert!(results[4].as_ref().is_err_and(GateError::tell_user), "{:?}", results[4]);
    assert!(matches!(&results[5], Err(e @ GateError::OverBudget(_)) if !e.tell_user()));
    assert_eq!(budget.spent().tokens(), 520);
}

#[tokio::test]
async fn an_active_file_call_overtakes_a_running_scan() {
    let (server, _) = mock(|_| ok()).await;
    // One call every 200 ms, no burst.
    let settings = LimitSettings { requests_per_minute: 300, burst: 1, ..fast() };
    let gate = Arc::new(Gate::new(settings, None));
    let done = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    let spawn = |priority: Priority, name: &'static str| {
        let (gate, done, uri) = (gate.clone(), done.clone(), server.uri());
        tokio::spawn(async move {
            call(&gate, &uri, priority).await.unwrap();
            done.lock().unwrap().push(name);
        })
    };
    for _ in 0..10 {
        tasks.push(spawn(Priority::Workspace, "scan"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    tasks.push(spawn(Priority::Active, "active"));
    for t in tasks {
        tokio::time::timeout(BOUND, t).await.expect("bounded").unwrap();
    }
    let done = done.lock().unwrap();
    let at = done.iter().position(|n| *n == "active").unwrap();
    assert!(at <= 4, "the active call finished {at}th of 11: {done:?}");
}
