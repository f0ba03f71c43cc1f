//! The arithmetic of a [`Bucket`](super::Bucket): levels, refill, what a call waits for. Kept
//! apart from the queue and its wake-ups so each reads on its own; all of it runs under the
//! bucket's lock.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{Priority, Rates};

/// With no request rate, the token burst is this many seconds of token refill.
const TOKEN_WINDOW_WITHOUT_RPM: f64 = 5.0;
/// Float slack when comparing a refilled level with what a call needs.
const EPSILON: f64 = 1e-6;

/// One bucket's levels and queue.
pub(super) struct State {
    pub(super) rates: Rates,
    /// The throttle's share of `rates`, in (0, 1].
    pub(super) scale: f64,
    pub(super) paused_until: Option<Instant>,
    pub(super) requests: f64,
    pub(super) tokens: f64,
    pub(super) refilled_at: Instant,
    pub(super) in_flight: u32,
    /// `(priority, arrival)` → estimated tokens; the first entry is the head.
    pub(super) waiters: BTreeMap<(Priority, u64), u64>,
    pub(super) next_seq: u64,
    pub(super) admitted: u64,
    pub(super) total_wait: Duration,
}

/// What stops the head of the queue right now.
pub(super) enum Wait {
    Ready,
    For(Duration),
    /// All in-flight slots are taken: wait until one is released.
    Slot,
}

impl State {
    /// Full buckets.
    pub(super) fn new(rates: Rates, now: Instant) -> State {
        let mut state = State {
            rates,
            scale: 1.0,
            paused_until: None,
            requests: 0.0,
            tokens: 0.0,
            refilled_at: now,
            in_flight: 0,
            waiters: BTreeMap::new(),
            next_seq: 0,
            admitted: 0,
            total_wait: Duration::ZERO,
        };
        state.requests = state.request_cap();
        state.tokens = if state.token_rate().is_some() { state.token_cap() } else { 0.0 };
        state
    }

    fn per_sec(per_minute: f64, scale: f64) -> Option<f64> {
        (per_minute > 0.0).then(|| per_minute * scale / 60.0)
    }

    pub(super) fn request_rate(&self) -> Option<f64> {
        State::per_sec(f64::from(self.rates.requests_per_minute), self.scale)
    }

    pub(super) fn token_rate(&self) -> Option<f64> {
        State::per_sec(self.rates.tokens_per_minute as f64, self.scale)
    }

    pub(super) fn request_cap(&self) -> f64 {
        (f64::from(self.rates.burst.max(1)) * self.scale).max(1.0)
    }

    pub(super) fn token_cap(&self) -> f64 {
        let Some(rate) = self.token_rate() else { return f64::INFINITY };
        let window = match self.request_rate() {
            Some(r) => self.request_cap() / r,
            None => TOKEN_WINDOW_WITHOUT_RPM,
        };
        (rate * window).max(1.0)
    }

    pub(super) fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.refilled_at).as_secs_f64();
        self.refilled_at = now;
        if let Some(rate) = self.request_rate() {
            self.requests = (self.requests + rate * dt).min(self.request_cap());
        }
        if let Some(rate) = self.token_rate() {
            self.tokens = (self.tokens + rate * dt).min(self.token_cap());
        }
    }

    pub(super) fn token_need(&self, tokens: u64) -> f64 {
        (tokens as f64).min(self.token_cap())
    }

    /// What keeps a call of `tokens` from being admitted now (queue order aside).
    pub(super) fn wait(&self, tokens: u64, now: Instant) -> Wait {
        if self.rates.max_in_flight > 0 && self.in_flight >= self.rates.max_in_flight {
            return Wait::Slot;
        }
        let mut wait = self.paused_until.map_or(Duration::ZERO, |p| p.saturating_duration_since(now));
        if let Some(rate) = self.request_rate() {
            wait = wait.max(secs(1.0 - self.requests, rate));
        }
        if let Some(rate) = self.token_rate() {
            wait = wait.max(secs(self.token_need(tokens) - self.tokens, rate));
        }
        if wait.is_zero() { Wait::Ready } else { Wait::For(wait) }
    }

    pub(super) fn take(&mut self, tokens: u64, waited: Duration) {
        if self.request_rate().is_some() {
            self.requests -= 1.0;
        }
        if self.token_rate().is_some() {
            self.tokens -= tokens as f64;
        }
        self.in_flight += 1;
        self.admitted += 1;
        self.total_wait += waited;
    }

    /// Whether a caller of `priority` would have to queue behind someone.
    pub(super) fn anyone_ahead(&self, priority: Priority) -> bool {
        self.waiters.keys().next().is_some_and(|(p, _)| *p <= priority)
    }

    pub(super) fn clamp(&mut self) {
        self.requests = self.requests.min(self.request_cap());
        self.tokens = self.tokens.min(self.token_cap());
    }

    /// The wait of a newcomer: everyone ahead of it (same or higher priority) is served first,
    /// then it; the slowest dimension decides.
    pub(super) fn estimate(&self, priority: Priority, tokens: u64, now: Instant) -> Duration {
        let ahead: Vec<u64> = self.waiters.iter().filter(|((p, _), _)| *p <= priority).map(|(_, t)| *t).collect();
        let mut wait = self.paused_until.map_or(Duration::ZERO, |p| p.saturating_duration_since(now));
        if let Some(rate) = self.request_rate() {
            wait = wait.max(secs(ahead.len() as f64 + 1.0 - self.requests, rate));
        }
        if let Some(rate) = self.token_rate() {
            let need: f64 = ahead.iter().map(|t| *t as f64).sum::<f64>() + self.token_need(tokens);
            wait = wait.max(secs(need - self.tokens, rate));
        }
        wait
    }
}

/// Seconds to refill `deficit` at `rate` per second, rounded up to the microsecond.
fn secs(deficit: f64, rate: f64) -> Duration {
    if deficit <= EPSILON { Duration::ZERO } else { Duration::from_micros((deficit / rate * 1e6).ceil() as u64) }
}
