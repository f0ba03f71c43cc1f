use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn throttle() -> Throttle {
    Throttle::new(ThrottleSettings { recover_after: 3, quiet: secs(10) })
}

fn limited(retry_after: Option<Duration>, rate: RateHeaders) -> LlmError {
    LlmError::RateLimited { retry_after, rate }
}

#[tokio::test(start_paused = true)]
async fn each_fresh_429_steps_down_to_ten_percent() {
    let mut t = throttle();
    let t0 = Instant::now();
    let mut percents = vec![t.percent()];
    for i in 1..=5 {
        let now = t0 + secs(i);
        // Admitted after the previous step: the lower rate was still too high.
        assert_eq!(t.on_rate_limited(now, None, now), i <= 3);
        percents.push(t.percent());
    }
    assert_eq!(percents, [100, 50, 25, 10, 10, 10]);
}

#[tokio::test(start_paused = true)]
async fn calls_already_in_flight_step_down_once() {
    let mut t = throttle();
    let admitted = Instant::now();
    let now = admitted + secs(1);
    for _ in 0..10 {
        t.on_rate_limited(admitted, None, now);
    }
    assert_eq!(t.percent(), 50);
}

#[tokio::test(start_paused = true)]
async fn the_vendors_wait_pauses_admission() {
    let mut t = throttle();
    let now = Instant::now();
    t.on_rate_limited(now, Some(secs(20)), now);
    assert_eq!(t.paused_until(), Some(now + secs(20)));
    // A shorter wait later does not shorten it; an absurd one is capped.
    t.on_rate_limited(now, Some(secs(5)), now + secs(1));
    assert_eq!(t.paused_until(), Some(now + secs(20)));
    t.on_rate_limited(now, Some(secs(86_400)), now + secs(2));
    assert_eq!(t.paused_until(), Some(now + secs(2) + MAX_PAUSE));
}

#[tokio::test(start_paused = true)]
async fn sustained_success_steps_back_up() {
    let mut t = throttle();
    let t0 = Instant::now();
    for i in 0..3 {
        t.on_rate_limited(t0 + secs(i), None, t0 + secs(i));
    }
    assert_eq!(t.percent(), 10);
    let ok = RateHeaders::default();
    // Enough successes, but too soon after the last 429: no step yet.
    for _ in 0..5 {
        assert!(!t.on_success(&ok, t0 + secs(5)));
    }
    // Quiet now, and those successes count: one more steps up.
    assert!(t.on_success(&ok, t0 + secs(12)));
    assert_eq!(t.percent(), 25);
    // Each further step needs 3 new successes...
    assert!(!t.on_success(&ok, t0 + secs(22)));
    assert!(!t.on_success(&ok, t0 + secs(22)));
    assert!(t.on_success(&ok, t0 + secs(22)));
    assert_eq!(t.percent(), 50);
    // ...and 10 s since the last step.
    for _ in 0..3 {
        assert!(!t.on_success(&ok, t0 + secs(27)));
    }
    assert!(t.on_success(&ok, t0 + secs(32)));
    assert_eq!(t.percent(), 100);
    assert!(!t.on_success(&ok, t0 + secs(100)), "already at 100 %");
}

#[tokio::test(start_paused = true)]
async fn a_429_resets_the_success_count() {
    let mut t = throttle();
    let t0 = Instant::now();
    t.on_rate_limited(t0 + secs(1), None, t0 + secs(1));
    let ok = RateHeaders::default();
    t.on_success(&ok, t0 + secs(20));
    t.on_success(&ok, t0 + secs(20));
    t.on_rate_limited(t0, None, t0 + secs(20)); // admitted before the step: no new step
    assert_eq!(t.percent(), 50);
    assert!(!t.on_success(&ok, t0 + secs(40)));
    assert!(!t.on_success(&ok, t0 + secs(40)));
    assert!(t.on_success(&ok, t0 + secs(40)));
    assert_eq!(t.percent(), 100);
}

#[tokio::test(start_paused = true)]
async fn a_success_at_zero_remaining_pauses_until_the_reset() {
    let mut t = throttle();
    let now = Instant::now();
    let rate = RateHeaders {
        remaining_requests: Some(0),
        reset_requests: Some(secs(7)),
        remaining_tokens: Some(500),
        reset_tokens: Some(secs(30)),
        ..RateHeaders::default()
    };
    t.on_success(&rate, now);
    assert_eq!(t.paused_until(), Some(now + secs(7)));
    assert_eq!(t.percent(), 100);
}

#[test]
fn the_pause_hint_prefers_retry_after_then_the_exhausted_reset() {
    let rate = RateHeaders {
        remaining_requests: Some(3),
        reset_requests: Some(secs(2)),
        remaining_tokens: Some(0),
        reset_tokens: Some(secs(40)),
        ..RateHeaders::default()
    };
    assert_eq!(pause_hint(&limited(Some(secs(9)), rate.clone())), Some(secs(9)));
    assert_eq!(pause_hint(&limited(None, rate.clone())), Some(secs(40)), "tokens ran out");
    let unknown = RateHeaders { remaining_tokens: None, ..rate };
    assert_eq!(pause_hint(&limited(None, unknown)), Some(secs(2)), "the sooner reset");
    assert_eq!(pause_hint(&limited(None, RateHeaders::default())), None);
    assert_eq!(pause_hint(&LlmError::Overloaded { status: 529, retry_after: Some(secs(3)) }), Some(secs(3)));
    assert_eq!(pause_hint(&LlmError::Timeout), None);
}
