use super::*;
use std::sync::{Arc, Mutex as StdMutex};
use tokio::time::Instant;

use crate::llm::RateHeaders;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::seeded(attempts, ms(500), Duration::from_secs(30), 7)
}

/// Runs `policy` over a call that answers `replies` in turn (the last one forever) and
/// returns the result and the time of each attempt since the start.
async fn run(
    policy: &RetryPolicy,
    replies: Vec<Result<u32, LlmError>>,
) -> (Result<u32, RetryError<LlmError>>, Vec<Duration>) {
    let t0 = Instant::now();
    let times = Arc::new(StdMutex::new(Vec::new()));
    let replies = Arc::new(replies);
    let result = policy
        .retry(|| {
            let (times, replies) = (times.clone(), replies.clone());
            async move {
                let mut times = times.lock().unwrap();
                times.push(t0.elapsed());
                replies[(times.len() - 1).min(replies.len() - 1)].clone()
            }
        })
        .await;
    let times = times.lock().unwrap().clone();
    (result, times)
}

fn server() -> LlmError {
    LlmError::Server { status: 500, message: "boom".into() }
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_are_retried_until_success() {
    let (result, times) = run(&policy(4), vec![Err(server()), Err(LlmError::Timeout), Ok(7)]).await;
    assert_eq!(result, Ok(7));
    assert_eq!(times.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn attempts_are_bounded_and_the_backoff_is_fully_jittered() {
    let p = RetryPolicy::seeded(5, Duration::from_secs(1), Duration::from_secs(4), 42);
    let (result, times) = run(&p, vec![Err(LlmError::Overloaded { status: 503, retry_after: None })]).await;
    assert!(matches!(result, Err(RetryError::Failed(LlmError::Overloaded { .. }))), "{result:?}");
    assert_eq!(times.len(), 5, "5 attempts in all");
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Full jitter: each gap is anywhere in [0, 1 s, 2 s, 4 s, 4 s (capped)].
    for (gap, cap) in gaps.iter().zip([1, 2, 4, 4]) {
        assert!(*gap <= Duration::from_secs(cap) + ms(1), "{gaps:?}");
    }
    assert!(gaps.windows(2).any(|w| w[0] != w[1]), "jittered: {gaps:?}");
    // Reproducible from the seed.
    let p2 = RetryPolicy::seeded(5, Duration::from_secs(1), Duration::from_secs(4), 42);
    let (_, again) = run(&p2, vec![Err(LlmError::Overloaded { status: 503, retry_after: None })]).await;
    assert_eq!(times, again);
}

#[tokio::test(start_paused = true)]
async fn the_vendors_retry_after_wins_over_a_shorter_backoff() {
    let limited = LlmError::RateLimited { retry_after: Some(Duration::from_secs(7)), rate: RateHeaders::default() };
    let (result, times) = run(&policy(4), vec![Err(limited), Ok(1)]).await;
    assert_eq!(result, Ok(1));
    assert!(times[1] - times[0] >= Duration::from_secs(7), "{times:?}");
    assert!(times[1] - times[0] < Duration::from_secs(8), "{times:?}");
    // Without retry-after, a 429's exhausted limit reset stands in.
    let rate =
        RateHeaders { remaining_tokens: Some(0), reset_tokens: Some(Duration::from_secs(3)), ..Default::default() };
    let (_, times) = run(&policy(4), vec![Err(LlmError::RateLimited { retry_after: None, rate }), Ok(1)]).await;
    assert!(times[1] - times[0] >= Duration::from_secs(3), "{times:?}");
}

#[tokio::test(start_paused = true)]
async fn a_quota_error_stops_after_exactly_one_attempt() {
    let quota = LlmError::QuotaExhausted { message: "insufficient_quota".into() };
    let (result, times) = run(&policy(4), vec![Err(quota.clone()), Ok(1)]).await;
    assert_eq!(result, Err(RetryError::Stop(quota)));
    assert_eq!(times.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn client_errors_are_never_retried() {
    for err in [
        LlmError::BadRequest { status: 400, message: String::new() },
        LlmError::Auth { status: 401, message: String::new() },
        LlmError::BadRequest { status: 404, message: String::new() },
        LlmError::MissingKey { env: "K".into() },
        LlmError::InvalidResponse(String::new()),
    ] {
        let (result, times) = run(&policy(4), vec![Err(err.clone()), Ok(1)]).await;
        assert_eq!(result, Err(RetryError::Failed(err)));
        assert_eq!(times.len(), 1);
    }
    // 408 and 409 are the 4xx that are.
    for status in [408, 409] {
        let (result, times) =
            run(&policy(4), vec![Err(LlmError::BadRequest { status, message: String::new() }), Ok(1)]).await;
        assert_eq!((result, times.len()), (Ok(1), 2));
    }
}

#[tokio::test(start_paused = true)]
async fn one_attempt_means_no_retry() {
    let (result, times) = run(&policy(1), vec![Err(server()), Ok(1)]).await;
    assert_eq!(result, Err(RetryError::Failed(server())));
    assert_eq!(times.len(), 1);
}

#[test]
fn the_quota_latch_tells_once_and_lapses_the_next_day() {
    let latch = QuotaLatch::new();
    let today = Day(20_000);
    assert_eq!(latch.stopped("openai@x", today), None);
    assert!(latch.stop("openai@x", today, "out of credit"), "first time: tell the user");
    assert!(!latch.stop("openai@x", today, "out of credit"), "already told");
    assert_eq!(latch.stopped("openai@x", today).as_deref(), Some("out of credit"));
    assert_eq!(latch.stopped("anthropic@y", today), None, "per provider");
    assert_eq!(latch.stopped_keys(today), ["openai@x"]);
    assert_eq!(latch.stopped("openai@x", Day(20_001)), None, "the next day it is tried again");
    assert!(latch.stop("openai@x", Day(20_001), "still out"), "and a new stop is told again");
    latch.clear();
    assert_eq!(latch.stopped("openai@x", Day(20_001)), None, "a settings change lifts it");
}
