//! Owns when reviews run: per-document debounce, three strict-priority lanes, a bounded
//! worker pool, supersede-and-cancel of stale work, and panic capture per job.
//!
//! It is generic over the work: a job is a key (a document), a version and a task. The
//! server decides what a task does; the scheduler only decides when, and whether, it runs.

mod queue;
pub mod stats;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::panics::panic_message;

pub use stats::{LaneStats, SchedulerStats};

use queue::Queue;

/// Served strictly in this order: a worker that frees up always takes active work first,
/// so a workspace scan yields to the file being edited within one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    /// The document the user changed or opened most recently.
    Active = 0,
    /// Other open documents.
    Open = 1,
    /// Workspace scan.
    Workspace = 2,
}

impl Lane {
    pub const ALL: [Lane; 3] = [Lane::Active, Lane::Open, Lane::Workspace];

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Active => "active",
            Lane::Open => "open",
            Lane::Workspace => "workspace",
        }
    }
}

pub type TaskFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
/// Builds the job's future when a worker takes it, so it reads the newest state then.
pub type Task = Box<dyn FnOnce(CancellationToken) -> TaskFuture + Send>;

pub struct Job {
    /// Identity for superseding: one pending and one running job per key.
    pub key: String,
    /// Newer versions supersede older ones of the same key.
    pub version: i64,
    pub lane: Lane,
    /// Debounce: the job may not start before this much time has passed. A newer job for
    /// the same key restarts the wait.
    pub delay: Duration,
    /// Cancelled together with the job; lets a caller cancel a whole group (a scan).
    pub parent: Option<CancellationToken>,
    pub task: Task,
}

enum Command {
    Schedule(Job),
    Resize(usize),
    Done { key: String, seq: u64, lane: Lane, started: Instant },
}

/// Handle to the dispatcher task. Cloning is cheap; every clone feeds the same queue.
#[derive(Clone)]
pub struct Scheduler {
    tx: mpsc::UnboundedSender<Command>,
    stats: Arc<Mutex<SchedulerStats>>,
}

/// Called with a description when a job panics, so the server can tell the user.
pub type PanicHook = Arc<dyn Fn(String) + Send + Sync>;

impl Scheduler {
    /// Starts the dispatcher on the current tokio runtime with `workers` concurrent jobs.
    pub fn start(workers: usize, on_panic: PanicHook) -> Scheduler {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Mutex::new(SchedulerStats::default()));
        let dispatcher = Dispatcher {
            queue: Queue::default(),
            workers: workers.max(1),
            busy: 0,
            tx: tx.clone(),
            stats: stats.clone(),
            on_panic,
        };
        tokio::spawn(dispatcher.run(rx));
        Scheduler { tx, stats }
    }

    /// Queues a job, superseding any queued job for the same key and cancelling a running
    /// one with an older version. Never blocks.
    pub fn schedule(&self, job: Job) {
        if self.tx.send(Command::Schedule(job)).is_err() {
            tracing::error!("scheduler is gone; job dropped");
        }
    }

    /// Sets how many jobs run at once (`[review] workers`). Growing starts queued jobs at once;
    /// shrinking lets running jobs finish and starts no more until fewer than `workers` run.
    pub fn set_workers(&self, workers: usize) {
        if self.tx.send(Command::Resize(workers.max(1))).is_err() {
            tracing::error!("scheduler is gone; resize dropped");
        }
    }

    pub fn stats(&self) -> SchedulerStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

struct Dispatcher {
    queue: Queue,
    workers: usize,
    busy: usize,
    tx: mpsc::UnboundedSender<Command>,
    stats: Arc<Mutex<SchedulerStats>>,
    on_panic: PanicHook,
}

impl Dispatcher {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        loop {
            let wake = self.queue.next_deadline();
            let command = tokio::select! {
                biased;
                c = rx.recv() => match c {
                    Some(c) => Some(c),
                    None => return,
                },
                _ = sleep_until(wake) => None,
            };
            match command {
                Some(Command::Schedule(job)) => self.queue.push(job, Instant::now()),
                Some(Command::Resize(workers)) => self.workers = workers,
                Some(Command::Done { key, seq, lane, started }) => {
                    self.busy -= 1;
                    self.queue.finished(&key, seq);
                    self.with_stats(|s| s.lane_mut(lane).record_run(started.elapsed()));
                }
                None => {}
            }
            self.dispatch();
            let depths = self.queue.depths();
            let superseded = self.queue.superseded;
            let (workers, running) = (self.workers, self.busy);
            self.with_stats(|s| {
                (s.workers, s.running) = (workers, running);
                for lane in Lane::ALL {
                    s.lane_mut(lane).depth = depths[lane as usize];
                }
                s.superseded = superseded;
            });
        }
    }

    fn dispatch(&mut self) {
        let now = Instant::now();
        while self.busy < self.workers {
            let Some(ready) = self.queue.pop_ready(now) else { break };
            self.busy += 1;
            let waited = now.saturating_duration_since(ready.enqueued);
            self.with_stats(|s| s.lane_mut(ready.lane).record_wait(waited));
            crate::metrics::queue_wait(ready.lane.as_str(), waited.as_secs_f64());
            let (key, seq, lane) = (ready.key.clone(), ready.seq, ready.lane);
            let tx = self.tx.clone();
            let on_panic = self.on_panic.clone();
            let fut = (ready.task)(ready.token);
            tokio::spawn(async move {
                let started = Instant::now();
                if let Err(panic) = AssertUnwindSafe(fut).catch_unwind().await {
                    let what = panic_message(&*panic);
                    tracing::error!(job = %key, "review task panicked: {what}");
                    on_panic(format!("review of {key} failed: {what}"));
                }
                let _ = tx.send(Command::Done { key, seq, lane, started });
            });
        }
    }

    fn with_stats(&self, f: impl FnOnce(&mut SchedulerStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
