//! Owns admission by rate: a token bucket for one key (a provider endpoint, a user, a tenant)
//! that meters **requests per minute** and **tokens per minute** with a burst, caps the calls in
//! flight, and queues waiters by [`Priority`] so that under scarcity the active file goes first.
//!
//! Written by hand rather than with `governor`: governor cannot change a quota at run time (a
//! new limiter would forget what was already spent), and adaptive throttling changes the rate on
//! every 429. It also has no priority queue, no cap on calls in flight, and no way to correct a
//! token estimate after the call, all of which this needs.
//!
//! Semantics:
//! - Each dimension refills continuously at `rate × scale` and holds at most its burst. A
//!   call needs one request and its estimated tokens; a call estimated above the token burst
//!   is admitted once the bucket is full and drives it negative, rather than never.
//! - Waiters are served strictly by `(priority, arrival)`: only the head of the queue may take,
//!   so a workspace call never takes tokens while an active one waits, and an active call that
//!   arrives during a scan waits at most for what was already admitted (one refill interval,
//!   or one call in flight to finish).
//! - `0` for a rate or a cap means "no limit" in that dimension (local servers).
//! - Levels may go negative after [`Bucket::correct`] when a call used more than estimated;
//!   later calls then wait longer, which is what the vendor's own meter will do too.

use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

use state::{State, Wait};

mod state;

/// Who is waiting, most urgent first (the derived order is the service order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// The file the user is looking at.
    Active,
    /// Other files open in the editor.
    Open,
    /// The workspace scan.
    Workspace,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::Active, Priority::Open, Priority::Workspace];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Active => "active",
            Priority::Open => "open",
            Priority::Workspace => "workspace",
        }
    }
}

/// The limits of one bucket; `0` disables a dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub requests_per_minute: u32,
    /// Requests that may go at once after a quiet period. The token burst covers the same span
    /// of time (`tokens_per_minute × burst / requests_per_minute`), so the two stay in step.
    pub burst: u32,
    pub tokens_per_minute: u64,
    pub max_in_flight: u32,
}

/// A bucket; clones share it.
#[derive(Clone)]
pub struct Bucket {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Woken whenever the head of the queue may have changed or gained room.
    notify: Notify,
}

/// How the limiter stands, for stats. A dimension without a limit shows an infinite level
/// (`null` in JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketSnapshot {
    pub rate_percent: u32,
    pub requests_per_minute: u32,
    pub tokens_per_minute: u64,
    pub available_requests: f64,
    pub available_tokens: f64,
    pub in_flight: u32,
    pub waiting_active: usize,
    pub waiting_open: usize,
    pub waiting_workspace: usize,
    pub admitted: u64,
    pub total_wait_ms: u64,
    pub paused_for_ms: u64,
}

/// A taken slot: the call is in flight until this is dropped.
#[must_use = "dropping the admission ends the call's in-flight slot"]
pub struct Admission {
    inner: Arc<Inner>,
    waited: Duration,
}

impl Admission {
    /// How long the caller queued before being admitted.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        st.in_flight = st.in_flight.saturating_sub(1);
        let limited = st.rates.max_in_flight > 0;
        drop(st);
        if limited {
            self.inner.notify.notify_waiters();
        }
    }
}

impl Bucket {
    /// A bucket that starts full.
    pub fn new(rates: Rates) -> Bucket {
        let state = State::new(rates, Instant::now());
        Bucket { inner: Arc::new(Inner { state: Mutex::new(state), notify: Notify::new() }) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent numbers; keep going.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a turn and takes one request and `tokens` estimated tokens. Cancel-safe: a
    /// dropped future leaves the queue.
    pub async fn acquire(&self, priority: Priority, tokens: u64) -> Admission {
        let started = Instant::now();
        let key = {
            let mut st = self.lock();
            st.next_seq += 1;
            let key = (priority, st.next_seq);
            st.waiters.insert(key, tokens);
            let head = st.waiters.keys().next() == Some(&key);
            drop(st);
            if head {
                // The old head may be sleeping for a refill it no longer gets first.
                self.inner.notify.notify_waiters();
            }
            key
        };
        let mut queued = Queued { bucket: self, key: Some(key) };
        loop {
            let mut notified = pin!(self.inner.notify.notified());
            notified.as_mut().enable();
            let sleep_for = {
                let mut st = self.lock();
                let now = Instant::now();
                st.refill(now);
                if st.waiters.keys().next() != Some(&key) {
                    None
                } else {
                    match st.wait(tokens, now) {
                        Wait::Ready => {
                            let waited = now - started;
                            st.waiters.remove(&key);
                            st.take(tokens, waited);
                            queued.key = None;
                            drop(st);
                            // The next waiter is now the head.
                            self.inner.notify.notify_waiters();
                            return Admission { inner: self.inner.clone(), waited };
                        }
                        Wait::For(d) => Some(d),
                        Wait::Slot => None,
                    }
                }
            };
            match sleep_for {
                Some(d) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep(d) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Takes a turn now if nobody of the same or higher priority is waiting and there is room;
    /// otherwise says how long [`Bucket::acquire`] would likely wait, without queueing.
    pub fn try_acquire(&self, priority: Priority, tokens: u64) -> Result<Admission, Duration> {
        let mut st = self.lock();
        let now = Instant::now();
        st.refill(now);
        if !st.anyone_ahead(priority) && matches!(st.wait(tokens, now), Wait::Ready) {
            st.take(tokens, Duration::ZERO);
            return Ok(Admission { inner: self.inner.clone(), waited: Duration::ZERO });
        }
        Err(st.estimate(priority, tokens, now))
    }

    /// How long a caller of `priority` needing `tokens` would wait if it queued now: the same
    /// figure as a Retry-After, for progress lines ("waiting 12 s for the rate limit"). An
    /// estimate: calls in flight are assumed to finish in time.
    pub fn estimate_wait(&self, priority: Priority, tokens: u64) -> Duration {
        let mut st = self.lock();
        let now = Instant::now();
        st.refill(now);
        st.estimate(priority, tokens, now)
    }

    /// After the call: `actual - estimated` tokens (negative gives tokens back).
    pub fn correct(&self, delta: i64) {
        let mut st = self.lock();
        if st.token_rate().is_none() || delta == 0 {
            return;
        }
        st.refill(Instant::now());
        st.tokens -= delta as f64;
        st.clamp();
        drop(st);
        if delta < 0 {
            self.inner.notify.notify_waiters();
        }
    }

    /// Gives back the request and tokens of an admission that never made its call.
    pub fn refund(&self, admission: Admission, tokens: u64) {
        drop(admission);
        let mut st = self.lock();
        st.refill(Instant::now());
        st.admitted = st.admitted.saturating_sub(1);
        if st.request_rate().is_some() {
            st.requests += 1.0;
        }
        if st.token_rate().is_some() {
            st.tokens += tokens as f64;
        }
        st.clamp();
        drop(st);
        self.inner.notify.notify_waiters();
    }

    /// Changes the limits at run time; what was already spent stays spent.
    pub fn set_rates(&self, rates: Rates) {
        let mut st = self.lock();
        st.refill(Instant::now());
        let had_tokens = st.token_rate().is_some();
        st.rates = rates;
        if !had_tokens && st.token_rate().is_some() {
            st.tokens = st.token_cap();
        }
        st.clamp();
        drop(st);
        self.inner.notify.notify_waiters();
    }

    /// The throttle's share of the configured rates, in (0, 1].
    pub fn set_scale(&self, scale: f64) {
        let scale = scale.clamp(0.01, 1.0);
        let mut st = self.lock();
        if (st.scale - scale).abs() < f64::EPSILON {
            return;
        }
        st.refill(Instant::now());
        st.scale = scale;
        st.clamp();
        drop(st);
        self.inner.notify.notify_waiters();
    }

    /// Admits nobody before `until` (a vendor's Retry-After or limit reset). Only extends.
    pub fn pause_until(&self, until: Instant) {
        let mut st = self.lock();
        if st.paused_until.is_some_and(|p| p >= until) {
            return;
        }
        st.paused_until = Some(until);
        drop(st);
        self.inner.notify.notify_waiters();
    }

    /// The callers queued here and how long until the first of them may go (`None` when
    /// nobody waits). A wait for a free in-flight slot shows as zero: it ends when a call does.
    pub fn queue(&self) -> Option<(usize, Duration)> {
        let mut st = self.lock();
        let now = Instant::now();
        st.refill(now);
        let head_tokens = *st.waiters.values().next()?;
        let wait = match st.wait(head_tokens, now) {
            Wait::For(wait) => wait,
            Wait::Ready | Wait::Slot => Duration::ZERO,
        };
        Some((st.waiters.len(), wait))
    }

    pub fn snapshot(&self) -> BucketSnapshot {
        let mut st = self.lock();
        let now = Instant::now();
        st.refill(now);
        let waiting = |p: Priority| st.waiters.keys().filter(|(q, _)| *q == p).count();
        BucketSnapshot {
            rate_percent: (st.scale * 100.0).round() as u32,
            requests_per_minute: st.rates.requests_per_minute,
            tokens_per_minute: st.rates.tokens_per_minute,
            available_requests: if st.request_rate().is_some() { st.requests } else { f64::INFINITY },
            available_tokens: if st.token_rate().is_some() { st.tokens } else { f64::INFINITY },
            in_flight: st.in_flight,
            waiting_active: waiting(Priority::Active),
            waiting_open: waiting(Priority::Open),
            waiting_workspace: waiting(Priority::Workspace),
            admitted: st.admitted,
            total_wait_ms: st.total_wait.as_millis() as u64,
            paused_for_ms: st.paused_until.map_or(0, |p| p.saturating_duration_since(now).as_millis() as u64),
        }
    }
}

/// Leaves the queue when an `acquire` is dropped before its turn.
struct Queued<'a> {
    bucket: &'a Bucket,
    key: Option<(Priority, u64)>,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.bucket.lock().waiters.remove(&key);
            self.bucket.inner.notify.notify_waiters();
        }
    }
}

#[cfg(test)]
#[path = "tests/bucket.rs"]
mod tests;
