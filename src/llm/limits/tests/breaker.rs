use super::*;
use std::sync::{Arc, Mutex as StdMutex};

const FAIL: Outcome = Outcome::Failure { retry_after: None };

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A breaker that logs its transitions.
fn breaker(settings: BreakerSettings) -> (Arc<Breaker>, Arc<StdMutex<Vec<BreakerState>>>) {
    let log = Arc::new(StdMutex::new(Vec::new()));
    let sink = log.clone();
    (Arc::new(Breaker::new(settings).on_change(move |s| sink.lock().unwrap().push(s))), log)
}

fn call(b: &Breaker, outcome: Outcome) {
    b.try_acquire(Instant::now()).expect("closed").record(outcome, Instant::now());
}

/// Opens `b` with five failures (the default threshold).
fn trip(b: &Breaker) {
    for _ in 0..5 {
        call(b, FAIL);
    }
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn opens_after_n_consecutive_failures() {
    let (b, log) = breaker(BreakerSettings::default());
    for _ in 0..4 {
        call(&b, FAIL);
    }
    call(&b, Outcome::Success); // resets the run
    for _ in 0..4 {
        call(&b, FAIL);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    call(&b, FAIL);
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.opened_count(), 1);
    assert_eq!(b.open_until(), Some(Instant::now() + secs(30)));
    let refused = b.try_acquire(Instant::now()).unwrap_err();
    assert_eq!(refused.retry_in, secs(30));
    assert_eq!(*log.lock().unwrap(), [BreakerState::Open]);
    let snap = b.snapshot(Instant::now());
    assert_eq!((snap.state, snap.opened_count, snap.open_for_ms), (BreakerState::Open, 1, Some(30_000)));
}

#[tokio::test(start_paused = true)]
async fn opens_on_the_failure_rate_over_the_window() {
    let settings = BreakerSettings { failures: 100, ..BreakerSettings::default() };
    let (b, _) = breaker(settings);
    // 4 of 8: half, but under the 10 calls the rate needs.
    for _ in 0..4 {
        call(&b, Outcome::Success);
        call(&b, FAIL);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    call(&b, Outcome::Success);
    call(&b, FAIL); // 5 of 10
    assert_eq!(b.state(), BreakerState::Open);

    // Old calls leave the window: 4 failures a minute ago do not count now.
    let (b, _) = breaker(settings);
    for _ in 0..4 {
        call(&b, FAIL);
    }
    tokio::time::sleep(secs(61)).await;
    for _ in 0..5 {
        call(&b, Outcome::Success);
    }
    for _ in 0..4 {
        call(&b, FAIL);
    }
    assert_eq!(b.state(), BreakerState::Closed, "4 of 9 in the window");
    call(&b, FAIL);
    assert_eq!(b.state(), BreakerState::Open, "5 of 10");
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_one_probe_among_ten_callers() {
    let (b, log) = breaker(BreakerSettings::default());
    trip(&b);
    tokio::time::sleep(secs(30)).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            match b.try_acquire(Instant::now()) {
                Ok(permit) => {
                    tokio::time::sleep(secs(2)).await;
                    permit.record(Outcome::Success, Instant::now());
                    true
                }
                Err(refused) => {
                    assert_eq!(refused.retry_in, Duration::ZERO, "a probe is out");
                    false
                }
            }
        }));
    }
    let mut probes = 0;
    for t in tasks {
        probes += usize::from(t.await.unwrap());
    }
    assert_eq!(probes, 1);
    assert_eq!(b.state(), BreakerState::Closed, "the probe succeeded");
    assert_eq!(*log.lock().unwrap(), [BreakerState::Open, BreakerState::HalfOpen, BreakerState::Closed]);
    call(&b, FAIL);
    assert_eq!(b.state(), BreakerState::Closed, "the failure count starts over");
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_for_longer_up_to_the_cap() {
    let (b, _) = breaker(BreakerSettings::default());
    trip(&b);
    let mut open_for = Vec::new();
    for _ in 0..5 {
        let until = b.open_until().unwrap();
        open_for.push((until - Instant::now()).as_secs());
        tokio::time::sleep_until(until).await;
        let probe = b.try_acquire(Instant::now()).expect("probe");
        assert!(probe.is_probe());
        probe.record(FAIL, Instant::now());
    }
    assert_eq!(open_for, [30, 60, 120, 240, 300]);
    assert_eq!(b.opened_count(), 6);
    // A success closes it, and the next opening starts at 30 s again.
    tokio::time::sleep_until(b.open_until().unwrap()).await;
    b.try_acquire(Instant::now()).unwrap().record(Outcome::Success, Instant::now());
    trip(&b);
    assert_eq!(b.open_until(), Some(Instant::now() + secs(30)));
}

#[tokio::test(start_paused = true)]
async fn retry_after_extends_the_open_time() {
    let (b, _) = breaker(BreakerSettings::default());
    for _ in 0..4 {
        call(&b, FAIL);
    }
    call(&b, Outcome::Failure { retry_after: Some(secs(90)) });
    assert_eq!(b.open_until(), Some(Instant::now() + secs(90)));
    // A shorter one does not shorten the 30 s.
    let (b, _) = breaker(BreakerSettings::default());
    for _ in 0..4 {
        call(&b, FAIL);
    }
    call(&b, Outcome::Failure { retry_after: Some(secs(5)) });
    assert_eq!(b.open_until(), Some(Instant::now() + secs(30)));
}

#[tokio::test(start_paused = true)]
async fn late_results_and_cancelled_probes() {
    let (b, _) = breaker(BreakerSettings::default());
    let slow = b.try_acquire(Instant::now()).unwrap();
    trip(&b);
    // A call admitted while closed fails after the breaker opened: already known.
    slow.record(FAIL, Instant::now());
    assert_eq!(b.opened_count(), 1);
    tokio::time::sleep(secs(30)).await;
    let probe = b.try_acquire(Instant::now()).unwrap();
    assert!(probe.is_probe() && probe.is_current());
    assert!(b.try_acquire(Instant::now()).is_err());
    drop(probe); // cancelled: the slot is free again, nothing was learned
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let probe = b.try_acquire(Instant::now()).expect("a new probe");
    probe.record(Outcome::Ignored, Instant::now());
    assert!(b.try_acquire(Instant::now()).is_ok(), "an ignored probe frees the slot too");
}

#[test]
fn only_vendor_failures_count() {
    let failure = |e: LlmError| Outcome::of::<()>(&Err(e));
    assert_eq!(failure(LlmError::Server { status: 500, message: String::new() }), FAIL);
    assert_eq!(
        failure(LlmError::Overloaded { status: 529, retry_after: Some(secs(4)) }),
        Outcome::Failure { retry_after: Some(secs(4)) }
    );
    assert_eq!(failure(LlmError::Timeout), FAIL);
    assert_eq!(failure(LlmError::Connect("refused".into())), FAIL);
    for answered in [
        LlmError::BadRequest { status: 400, message: String::new() },
        LlmError::Auth { status: 401, message: String::new() },
        LlmError::RateLimited { retry_after: None, rate: Default::default() },
        LlmError::QuotaExhausted { message: String::new() },
        LlmError::InvalidResponse(String::new()),
    ] {
        assert_eq!(failure(answered), Outcome::Success);
    }
    assert_eq!(failure(LlmError::MissingKey { env: "K".into() }), Outcome::Ignored);
    assert_eq!(failure(LlmError::InsecureEndpoint { host: "h".into() }), Outcome::Ignored);
    assert_eq!(failure(LlmError::KeyNotForHost { env: "K".into(), host: "h".into() }), Outcome::Ignored);
    assert_eq!(Outcome::of(&Ok(())), Outcome::Success);
}
