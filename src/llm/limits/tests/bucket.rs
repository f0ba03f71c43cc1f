//! The bucket under tokio's paused clock: every wait is exact, so the tests assert times.

use super::*;
use std::sync::Mutex as StdMutex;
use tokio::time::sleep;

const MS: Duration = Duration::from_millis(1);

fn rates(rpm: u32, burst: u32, tpm: u64, in_flight: u32) -> Rates {
    Rates { requests_per_minute: rpm, burst, tokens_per_minute: tpm, max_in_flight: in_flight }
}

/// Within a few ms of `expected` (the timer wheel rounds up to the millisecond).
#[track_caller]
fn near(actual: Duration, expected: Duration) {
    assert!(actual >= expected.saturating_sub(2 * MS) && actual <= expected + 2 * MS, "{actual:?} vs {expected:?}");
}

async fn take(b: &Bucket, p: Priority, tokens: u64) -> Duration {
    let started = Instant::now();
    drop(b.acquire(p, tokens).await);
    started.elapsed()
}

#[tokio::test(start_paused = true)]
async fn burst_then_the_rate() {
    let b = Bucket::new(rates(60, 3, 0, 0));
    for _ in 0..3 {
        near(take(&b, Priority::Workspace, 0).await, Duration::ZERO);
    }
    near(take(&b, Priority::Workspace, 0).await, Duration::from_secs(1));
    near(take(&b, Priority::Workspace, 0).await, Duration::from_secs(1));
    // A long quiet spell refills only up to the burst.
    sleep(Duration::from_secs(60)).await;
    for _ in 0..3 {
        near(take(&b, Priority::Workspace, 0).await, Duration::ZERO);
    }
    near(take(&b, Priority::Workspace, 0).await, Duration::from_secs(1));
    let s = b.snapshot();
    assert_eq!((s.admitted, s.rate_percent, s.in_flight), (9, 100, 0));
    near(Duration::from_millis(s.total_wait_ms), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn tokens_per_minute_with_correction() {
    // 100 tokens/s; no request rate, so the token burst is 5 s of refill.
    let b = Bucket::new(rates(0, 1, 6000, 0));
    near(take(&b, Priority::Active, 500).await, Duration::ZERO);
    near(take(&b, Priority::Active, 100).await, Duration::from_secs(1));
    // The call used 40 tokens where 100 were estimated: 60 come back.
    b.correct(40 - 100);
    near(take(&b, Priority::Active, 60).await, Duration::ZERO);
    // It used 300 more than estimated: the bucket owes them.
    b.correct(300);
    near(take(&b, Priority::Active, 100).await, Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn a_call_above_the_burst_waits_for_a_full_bucket_not_forever() {
    let b = Bucket::new(rates(0, 1, 6000, 0));
    near(take(&b, Priority::Active, 200).await, Duration::ZERO);
    // 2000 > the 500 burst: admitted when full (300 left + 2 s), leaving the bucket at -1500.
    near(take(&b, Priority::Active, 2000).await, Duration::from_secs(2));
    near(take(&b, Priority::Active, 100).await, Duration::from_secs(16));
}

/// Spawns waiters in the given order (each queued before the next is spawned) and returns the
/// order of admission with times.
async fn race(b: &Bucket, order: &[(Priority, &'static str)]) -> Arc<StdMutex<Vec<(&'static str, Duration)>>> {
    let log = Arc::new(StdMutex::new(Vec::new()));
    let t0 = Instant::now();
    for &(p, name) in order {
        let (b, log) = (b.clone(), log.clone());
        tokio::spawn(async move {
            let a = b.acquire(p, 0).await;
            log.lock().unwrap().push((name, t0.elapsed()));
            drop(a);
        });
        tokio::task::yield_now().await;
    }
    log
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_active_then_open_then_workspace() {
    let b = Bucket::new(rates(60, 1, 0, 0));
    drop(b.acquire(Priority::Workspace, 0).await);
    use Priority::*;
    let log =
        race(&b, &[(Workspace, "w1"), (Open, "o1"), (Active, "a1"), (Workspace, "w2"), (Active, "a2"), (Open, "o2")])
            .await;
    let s = b.snapshot();
    assert_eq!((s.waiting_active, s.waiting_open, s.waiting_workspace), (2, 2, 2));
    sleep(Duration::from_secs(10)).await;
    let log = log.lock().unwrap();
    let names: Vec<&str> = log.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["a1", "a2", "o1", "o2", "w1", "w2"]);
    for (i, (_, at)) in log.iter().enumerate() {
        near(*at, Duration::from_secs(i as u64 + 1));
    }
}

#[tokio::test(start_paused = true)]
async fn a_scan_delays_an_active_call_by_at_most_one_call() {
    let b = Bucket::new(rates(60, 1, 0, 0));
    let scan: Vec<(Priority, &str)> = vec![(Priority::Workspace, "scan"); 20];
    let log = race(&b, &scan).await;
    sleep(Duration::from_millis(2500)).await;
    let arrived = Duration::from_millis(2500);
    let active = race(&b, &[(Priority::Active, "active")]).await;
    sleep(Duration::from_secs(30)).await;
    let (_, active_at) = active.lock().unwrap()[0];
    assert!(active_at <= Duration::from_secs(1), "the active call waited {active_at:?}");
    // No scan call got in between the active call's arrival and its admission.
    let log = log.lock().unwrap();
    assert!(log.iter().all(|(_, at)| *at <= arrived || *at > arrived + active_at), "{log:?}");
    assert_eq!(log.iter().filter(|(_, at)| *at <= arrived).count(), 3, "scan calls at 0, 1 and 2 s");
}

#[tokio::test(start_paused = true)]
async fn with_all_slots_busy_an_active_call_waits_for_one_call_to_finish() {
    // No rate limit, two calls in flight at most; each scan call takes 5 s.
    let b = Bucket::new(rates(0, 1, 0, 2));
    let log = Arc::new(StdMutex::new(Vec::new()));
    let t0 = Instant::now();
    let spawn = |p: Priority, name: &'static str| {
        let (b, log) = (b.clone(), log.clone());
        tokio::spawn(async move {
            let a = b.acquire(p, 0).await;
            log.lock().unwrap().push((name, t0.elapsed()));
            sleep(Duration::from_secs(5)).await;
            drop(a);
        })
    };
    for _ in 0..6 {
        spawn(Priority::Workspace, "scan");
        tokio::task::yield_now().await;
    }
    sleep(Duration::from_secs(1)).await;
    assert_eq!(b.snapshot().in_flight, 2);
    spawn(Priority::Active, "active");
    sleep(Duration::from_secs(30)).await;
    let log = log.lock().unwrap();
    let names: Vec<&str> = log.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["scan", "scan", "active", "scan", "scan", "scan", "scan"]);
    near(log[2].1, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn the_rate_changes_at_run_time_even_for_a_sleeping_waiter() {
    let b = Bucket::new(rates(60, 1, 0, 0));
    drop(b.acquire(Priority::Active, 0).await);
    b.set_rates(rates(120, 1, 0, 0));
    near(take(&b, Priority::Active, 0).await, Duration::from_millis(500));
    b.set_rates(rates(30, 1, 0, 0));
    near(take(&b, Priority::Active, 0).await, Duration::from_secs(2));
    // A waiter already sleeping for a 2 s refill is woken by a faster rate: 0.2 s at 30/min
    // refilled 0.1 request, the remaining 0.9 take 0.09 s at 600/min.
    let b2 = b.clone();
    let waiter = tokio::spawn(async move { take(&b2, Priority::Active, 0).await });
    sleep(Duration::from_millis(200)).await;
    b.set_rates(rates(600, 1, 0, 0));
    near(waiter.await.unwrap(), Duration::from_millis(290));
    // The throttle's scale halves whatever rate is set.
    b.set_scale(0.5);
    near(take(&b, Priority::Active, 0).await, Duration::from_millis(200));
    assert_eq!(b.snapshot().rate_percent, 50);
}

#[tokio::test(start_paused = true)]
async fn a_pause_holds_admission_even_when_full() {
    let b = Bucket::new(rates(60, 5, 0, 0));
    b.pause_until(Instant::now() + Duration::from_secs(3));
    // A shorter pause never shortens a longer one.
    b.pause_until(Instant::now() + Duration::from_secs(1));
    assert!(b.snapshot().paused_for_ms >= 2999);
    near(take(&b, Priority::Active, 0).await, Duration::from_secs(3));
    near(take(&b, Priority::Active, 0).await, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn the_wait_can_be_asked_without_waiting() {
    let b = Bucket::new(rates(60, 1, 0, 0));
    let first = b.try_acquire(Priority::Workspace, 0).expect("the bucket starts full");
    drop(first);
    near(b.try_acquire(Priority::Active, 0).err().expect("empty"), Duration::from_secs(1));
    let _log = race(&b, &[(Priority::Workspace, "w1"), (Priority::Workspace, "w2")]).await;
    // Two scan calls queue: an active caller would still go next, a scan caller third.
    near(b.estimate_wait(Priority::Active, 0), Duration::from_secs(1));
    near(b.estimate_wait(Priority::Workspace, 0), Duration::from_secs(3));
    assert!(b.try_acquire(Priority::Active, 0).is_err(), "no room yet");
    sleep(Duration::from_millis(999)).await;
    near(b.estimate_wait(Priority::Workspace, 0), Duration::from_millis(2001));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_leaves_the_queue() {
    let b = Bucket::new(rates(60, 1, 0, 0));
    drop(b.acquire(Priority::Workspace, 0).await);
    let gave_up = tokio::time::timeout(Duration::from_millis(300), b.acquire(Priority::Active, 0)).await;
    assert!(gave_up.is_err());
    assert_eq!(b.snapshot().waiting_active, 0);
    // The workspace caller behind it is not stuck behind a ghost.
    near(take(&b, Priority::Workspace, 0).await, Duration::from_millis(700));
}
