use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::*;

fn recorder() -> (Arc<Mutex<Vec<String>>>, impl Fn(&str) -> Task) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let make = move |name: &str| -> Task {
        let l = l.clone();
        let name = name.to_string();
        Box::new(move |_token| {
            Box::pin(async move {
                l.lock().unwrap().push(name);
            })
        })
    };
    (log, make)
}

fn job(key: &str, version: i64, lane: Lane, delay_ms: u64, task: Task) -> Job {
    Job { key: key.into(), version, lane, delay: Duration::from_millis(delay_ms), parent: None, task }
}

fn no_panic() -> PanicHook {
    Arc::new(|_| {})
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test(start_paused = true)]
async fn debounce_runs_only_the_last_version() {
    let (log, make) = recorder();
    let s = Scheduler::start(1, no_panic());
    for v in 1..=20 {
        s.schedule(job("a", v, Lane::Active, 300, make(&format!("a{v}"))));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(*log.lock().unwrap(), vec!["a20".to_string()]);
    assert_eq!(s.stats().superseded, 19);
}

#[tokio::test(start_paused = true)]
async fn lanes_are_served_in_priority_order() {
    let (log, make) = recorder();
    let gate = Arc::new(tokio::sync::Notify::new());
    let s = Scheduler::start(1, no_panic());
    // Occupy the only worker so the rest queue up.
    let g = gate.clone();
    s.schedule(job("blocker", 1, Lane::Workspace, 0, Box::new(move |_| Box::pin(async move { g.notified().await }))));
    settle().await;
    s.schedule(job("w", 1, Lane::Workspace, 0, make("w")));
    s.schedule(job("o", 1, Lane::Open, 0, make("o")));
    s.schedule(job("a", 1, Lane::Active, 0, make("a")));
    settle().await;
    gate.notify_one();
    settle().await;
    assert_eq!(*log.lock().unwrap(), vec!["a", "o", "w"]);
}

#[tokio::test(start_paused = true)]
async fn newer_version_cancels_the_running_one() {
    let cancelled = Arc::new(AtomicUsize::new(0));
    let s = Scheduler::start(2, no_panic());
    let c = cancelled.clone();
    s.schedule(job(
        "doc",
        1,
        Lane::Active,
        0,
        Box::new(move |token| {
            Box::pin(async move {
                token.cancelled().await;
                c.fetch_add(1, Ordering::SeqCst);
            })
        }),
    ));
    settle().await;
    let (log, make) = recorder();
    s.schedule(job("doc", 2, Lane::Active, 0, make("v2")));
    settle().await;
    assert_eq!(cancelled.load(Ordering::SeqCst), 1);
    assert_eq!(*log.lock().unwrap(), vec!["v2"]);
}

#[tokio::test(start_paused = true)]
async fn a_new_active_document_demotes_the_previous_one() {
    let (log, make) = recorder();
    let gate = Arc::new(tokio::sync::Notify::new());
    let s = Scheduler::start(1, no_panic());
    let g = gate.clone();
    s.schedule(job("blocker", 1, Lane::Workspace, 0, Box::new(move |_| Box::pin(async move { g.notified().await }))));
    settle().await;
    s.schedule(job("first", 1, Lane::Active, 0, make("first")));
    s.schedule(job("other-open", 1, Lane::Open, 0, make("other-open")));
    s.schedule(job("second", 1, Lane::Active, 0, make("second")));
    settle().await;
    let stats = s.stats();
    assert_eq!((stats.active.depth, stats.open.depth), (1, 2));
    gate.notify_one();
    settle().await;
    assert_eq!(*log.lock().unwrap(), vec!["second", "other-open", "first"]);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_job_is_reported_and_the_pool_goes_on() {
    let (ptx, mut prx): (_, UnboundedReceiver<String>) = unbounded_channel();
    let hook: PanicHook = Arc::new(move |m| {
        let _ = ptx.send(m);
    });
    let (log, make) = recorder();
    let s = Scheduler::start(1, hook);
    s.schedule(job("bad", 1, Lane::Active, 0, Box::new(|_| Box::pin(async { panic!("boom") }))));
    s.schedule(job("good", 1, Lane::Open, 0, make("good")));
    settle().await;
    assert!(prx.recv().await.unwrap().contains("boom"));
    assert_eq!(*log.lock().unwrap(), vec!["good"]);
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_parent_cancels_its_jobs() {
    let parent = CancellationToken::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = Scheduler::start(1, no_panic());
    for i in 0..3 {
        let seen = seen.clone();
        let mut j = job(
            &format!("f{i}"),
            1,
            Lane::Workspace,
            0,
            Box::new(move |t| {
                Box::pin(async move {
                    if t.is_cancelled() {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                })
            }),
        );
        j.parent = Some(parent.clone());
        s.schedule(j);
    }
    parent.cancel();
    settle().await;
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn resizing_the_pool_changes_how_many_jobs_run_at_once() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Notify::new());
    let s = Scheduler::start(1, no_panic());
    let hold = |name: &str| -> Task {
        let (running, peak, gate) = (running.clone(), peak.clone(), gate.clone());
        let _ = name;
        Box::new(move |_| {
            Box::pin(async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                gate.notified().await;
                running.fetch_sub(1, Ordering::SeqCst);
            })
        })
    };
    for i in 0..4 {
        s.schedule(job(&format!("k{i}"), 1, Lane::Open, 0, hold("k")));
    }
    settle().await;
    assert_eq!(running.load(Ordering::SeqCst), 1, "one worker");
    s.set_workers(3);
    settle().await;
    assert_eq!(running.load(Ordering::SeqCst), 3, "grown at run time: queued jobs start at once");
    s.set_workers(1);
    gate.notify_waiters();
    settle().await;
    assert_eq!(running.load(Ordering::SeqCst), 1, "shrunk: only one of the rest starts");
    assert_eq!(peak.load(Ordering::SeqCst), 3);
}
