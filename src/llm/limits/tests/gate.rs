//! The Gate with a fake call (no HTTP) under the paused clock; `tests/limits.rs` runs it
//! against a real HTTP mock.

use super::*;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use crate::llm::{ProviderKind, RateHeaders, Usage};

fn endpoint() -> Endpoint {
    Endpoint::new(ProviderKind::OpenAi, "gpt-4.1-mini")
}

fn done(prompt: u64, completion: u64) -> Completion {
    Completion {
        text: "{}".into(),
        usage: Usage { prompt_tokens: prompt, completion_tokens: completion },
        latency: Duration::ZERO,
        rate: RateHeaders::default(),
    }
}

fn fixed_clock() -> (Clock, Arc<AtomicU64>) {
    let secs = Arc::new(AtomicU64::new(1_741_608_000));
    let read = secs.clone();
    (Arc::new(move || UNIX_EPOCH + Duration::from_secs(read.load(Ordering::SeqCst))), secs)
}

fn gate(settings: LimitSettings, budget: Option<Arc<Budget>>) -> (Arc<Gate>, Arc<AtomicU64>) {
    let (clock, secs) = fixed_clock();
    (Arc::new(Gate::for_tests(settings, budget, 1, clock)), secs)
}

/// Runs one call through `gate` whose attempts answer `reply(n)` (n counts from 1), counting
/// the attempts in `calls`.
async fn run(
    gate: &Gate,
    priority: Priority,
    calls: &Arc<AtomicU32>,
    reply: impl Fn(u32) -> Result<Completion, LlmError>,
) -> Result<Completion, GateError> {
    let cancel = CancellationToken::new();
    gate.run(&endpoint(), priority, 100, &cancel, || {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = reply(n);
        async move { answer }
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn the_spend_cap_stops_a_scan_midway_and_tells_once() {
    let settings = BudgetSettings { daily_token_budget: Some(500), ..BudgetSettings::default() };
    let (clock, _) = fixed_clock();
    let budget = Arc::new(Budget::with_clock(settings, Arc::new(MemoryBudgetStore::default()), clock));
    let (gate, _) = gate(LimitSettings::default(), Some(budget.clone()));
    let calls = Arc::new(AtomicU32::new(0));
    let mut results = Vec::new();
    for _ in 0..6 {
        results.push(run(&gate, Priority::Workspace, &calls, |_| Ok(done(120, 30))).await);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4, "150 tokens a call: the 4th crosses 500");
    assert!(results[..4].iter().all(Result::is_ok));
    assert!(matches!(&results[4], Err(GateError::OverBudget(o)) if o.tell_user), "{:?}", results[4]);
    assert!(matches!(&results[5], Err(e @ GateError::OverBudget(_)) if !e.tell_user()));
    let snap = gate.snapshot();
    let b = snap.budget.unwrap();
    assert_eq!((b.spent.tokens(), b.exceeded), (600, true));
}

#[tokio::test(start_paused = true)]
async fn calls_queued_when_the_cap_is_reached_do_not_go_out() {
    let settings = BudgetSettings { daily_token_budget: Some(250), ..BudgetSettings::default() };
    let (clock, _) = fixed_clock();
    let budget = Arc::new(Budget::with_clock(settings, Arc::new(MemoryBudgetStore::default()), clock));
    let limits = LimitSettings { requests_per_minute: 60, burst: 1, ..LimitSettings::default() };
    let (gate, _) = gate(limits, Some(budget));
    let calls = Arc::new(AtomicU32::new(0));
    // Five scan calls pass the budget check at once, then queue for the rate (one a second).
    let results =
        futures::future::join_all((0..5).map(|_| run(&gate, Priority::Workspace, &calls, |_| Ok(done(120, 30))))).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "150 + 150 crosses 250; the rest stay home");
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
    let told = results.iter().filter(|r| matches!(r, Err(e) if e.tell_user())).count();
    assert_eq!(told, 1, "{results:?}");
    assert_eq!(gate.snapshot().endpoints[0].limiter.admitted, 2, "the refused ones gave their turn back");
}

#[tokio::test(start_paused = true)]
async fn an_active_call_goes_before_a_queued_scan() {
    let settings = LimitSettings { requests_per_minute: 60, burst: 1, ..LimitSettings::default() };
    let (gate, _) = gate(settings, None);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    let spawn = |priority: Priority, name: &'static str| {
        let (gate, order) = (gate.clone(), order.clone());
        tokio::spawn(async move {
            let calls = Arc::new(AtomicU32::new(0));
            run(&gate, priority, &calls, |_| Ok(done(80, 20))).await.unwrap();
            order.lock().unwrap().push((name, Instant::now()));
        })
    };
    let t0 = Instant::now();
    for _ in 0..8 {
        tasks.push(spawn(Priority::Workspace, "scan"));
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let waiting = gate.snapshot().endpoints[0].limiter.waiting_workspace;
    assert_eq!(waiting, 6, "two scan calls went (at 0 and 1 s), six wait");
    assert!(gate.wait_estimate(&endpoint(), Priority::Workspace, 100) > Duration::from_secs(6));
    assert!(gate.wait_estimate(&endpoint(), Priority::Active, 100) <= Duration::from_millis(500));
    tasks.push(spawn(Priority::Active, "active"));
    for t in tasks {
        t.await.unwrap();
    }
    let order = order.lock().unwrap();
    let names: Vec<&str> = order.iter().map(|(n, _)| *n).collect();
    assert_eq!(names[2], "active", "{names:?}");
    assert_eq!(order[2].1 - t0, Duration::from_secs(2), "it waited only for the next refill");
}

#[tokio::test(start_paused = true)]
async fn a_429_throttles_the_endpoint_and_the_retry_honours_retry_after() {
    let (gate, _) = gate(LimitSettings::default(), None);
    let calls = Arc::new(AtomicU32::new(0));
    let t0 = Instant::now();
    let limited = LlmError::RateLimited { retry_after: Some(Duration::from_secs(2)), rate: RateHeaders::default() };
    let result =
        run(&gate, Priority::Active, &calls, |n| if n == 1 { Err(limited.clone()) } else { Ok(done(50, 5)) }).await;
    assert!(result.is_ok());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(t0.elapsed() >= Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(gate.snapshot().endpoints[0].limiter.rate_percent, 50);
}

#[tokio::test(start_paused = true)]
async fn breaker_open_fails_fast_without_calling() {
    let settings = LimitSettings { breaker_failures: 2, retry_attempts: 1, ..LimitSettings::default() };
    let (gate, _) = gate(settings, None);
    let mut events = gate.subscribe();
    let calls = Arc::new(AtomicU32::new(0));
    let down = |_| Err(LlmError::Overloaded { status: 529, retry_after: None });
    for _ in 0..2 {
        assert!(matches!(run(&gate, Priority::Active, &calls, down).await, Err(GateError::Llm(_))));
    }
    let t0 = Instant::now();
    let err = run(&gate, Priority::Active, &calls, down).await.unwrap_err();
    assert!(matches!(&err, GateError::BreakerOpen { retry_in, .. } if *retry_in == Duration::from_secs(30)), "{err}");
    assert_eq!(t0.elapsed(), Duration::ZERO);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let event = events.try_recv().unwrap();
    assert_eq!(event, GateEvent::Breaker { endpoint: endpoint_key(&endpoint()), state: BreakerState::Open });
    let snap = gate.snapshot();
    assert_eq!((snap.endpoints[0].breaker.state, snap.endpoints[0].breaker.opened_count), (BreakerState::Open, 1));
}

#[tokio::test(start_paused = true)]
async fn a_quota_error_stops_the_provider_until_tomorrow_or_new_settings() {
    let (gate, secs) = gate(LimitSettings::default(), None);
    let calls = Arc::new(AtomicU32::new(0));
    let broke = |_| Err(LlmError::QuotaExhausted { message: "insufficient_quota".into() });
    let first = run(&gate, Priority::Active, &calls, broke).await.unwrap_err();
    assert!(matches!(&first, GateError::QuotaStopped { tell_user: true, .. }), "{first}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no retry");
    let second = run(&gate, Priority::Active, &calls, broke).await.unwrap_err();
    assert!(matches!(&second, GateError::QuotaStopped { tell_user: false, .. }));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no call while stopped");
    assert_eq!(gate.snapshot().quota_stopped, [account_key(&endpoint())]);
    // Another model on the same account is stopped too.
    let other = Endpoint::new(ProviderKind::OpenAi, "gpt-4.1");
    let cancel = CancellationToken::new();
    let r = gate.run(&other, Priority::Active, 10, &cancel, || async { Ok(done(1, 1)) }).await;
    assert!(matches!(r, Err(GateError::QuotaStopped { .. })));
    // New settings: tried again.
    gate.set_settings(LimitSettings::default());
    run(&gate, Priority::Active, &calls, broke).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The next UTC day: tried again.
    secs.fetch_add(86_400, Ordering::SeqCst);
    assert!(run(&gate, Priority::Active, &calls, |_| Ok(done(1, 1))).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn cancel_while_queued_leaves_the_queue() {
    let settings = LimitSettings { requests_per_minute: 1, burst: 1, ..LimitSettings::default() };
    let (gate, _) = gate(settings, None);
    let calls = Arc::new(AtomicU32::new(0));
    run(&gate, Priority::Workspace, &calls, |_| Ok(done(1, 1))).await.unwrap();
    let cancel = CancellationToken::new();
    let g = gate.clone();
    let c = cancel.clone();
    let queued =
        tokio::spawn(async move { g.run(&endpoint(), Priority::Workspace, 10, &c, || async { Ok(done(1, 1)) }).await });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(gate.snapshot().endpoints[0].limiter.waiting_workspace, 1);
    cancel.cancel();
    assert_eq!(queued.await.unwrap(), Err(GateError::Cancelled));
    assert_eq!(gate.snapshot().endpoints[0].limiter.waiting_workspace, 0);
}

#[tokio::test(start_paused = true)]
async fn usage_corrects_the_token_estimate() {
    let settings = LimitSettings { requests_per_minute: 0, tokens_per_minute: 6000, ..LimitSettings::default() };
    let (gate, _) = gate(settings, None);
    let calls = Arc::new(AtomicU32::new(0));
    // Estimated 100, used 400: the bucket is charged the 300 more.
    run(&gate, Priority::Active, &calls, |_| Ok(done(350, 50))).await.unwrap();
    let available = gate.snapshot().endpoints[0].limiter.available_tokens;
    assert!((available - 100.0).abs() < 1.0, "500 burst - 400 used: {available}");
}

#[test]
fn settings_defaults_and_toml() {
    let s: LimitSettings = toml::from_str("requests_per_minute = 30\nretry_attempts = 2\n").unwrap();
    assert_eq!((s.requests_per_minute, s.retry_attempts, s.tokens_per_minute), (30, 2, 100_000));
    let d = LimitSettings::default();
    assert_eq!((d.max_concurrency, d.per_user_requests_per_minute, d.per_user_burst), (4, 100, 10));
    assert_eq!(
        (d.breaker_failures, d.breaker_window_secs, d.breaker_min_calls, d.breaker_failure_percent),
        (5, 60, 10, 50)
    );
    assert_eq!(
        (d.breaker_open_secs, d.retry_attempts, d.retry_base_delay_ms, d.retry_max_delay_ms),
        (30, 4, 500, 30_000)
    );
    let back: LimitSettings = toml::from_str(&toml::to_string(&d).unwrap()).unwrap();
    assert_eq!(back, d);
    let named = LimitSettings { user: Some("ana".into()), ..LimitSettings::default() };
    assert_eq!(named.resolved_user(), "ana");
    assert!(!LimitSettings::default().resolved_user().is_empty());
}

/// A shared quota that always says "wait": what a hostile or broken team Redis can answer.
struct ForeverWait(AtomicU32);

impl SharedQuota for ForeverWait {
    fn acquire<'a>(&'a self, _: &'a str, _: Rates, _: u64) -> futures::future::BoxFuture<'a, Result<Duration, ()>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(Duration::from_secs(3600)) })
    }
    fn correct(&self, _: &str, _: Rates, _: i64) {}
}

#[tokio::test(start_paused = true)]
async fn a_shared_quota_that_never_admits_cannot_hold_a_call_forever() {
    let (gate, _) = gate(LimitSettings::default(), None);
    let quota = Arc::new(ForeverWait(AtomicU32::new(0)));
    gate.set_shared_quota(Some(quota.clone()));
    let calls = Arc::new(AtomicU32::new(0));
    let started = tokio::time::Instant::now();
    let result = run(&gate, Priority::Active, &calls, |_| Ok(done(10, 5))).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the call still went, under the local limits");
    // Three shared buckets (user, endpoint; no tenant by default) at three minutes each at most.
    assert!(started.elapsed() <= Duration::from_secs(3 * 180 + 5), "{:?}", started.elapsed());
    assert!(quota.0.load(Ordering::SeqCst) > 2, "the quota was asked, and asked again");
}
