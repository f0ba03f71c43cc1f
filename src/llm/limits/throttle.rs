//! Owns adaptive throttling for one endpoint: how much of the configured rate we dare use after
//! the vendor said 429, and until when admission pauses because the vendor told us to wait.
//!
//! A pure state machine (time is passed in); the [`Gate`](super::Gate) copies its
//! [`factor`](Throttle::factor) and [`paused_until`](Throttle::paused_until) into the endpoint's
//! [`Bucket`](super::Bucket).
//!
//! - Down: each 429 rate limit steps the rate 100 % → 50 % → 25 % → 10 %. A 429 for a call
//!   admitted before the last step does not step again: a burst of calls that were already in
//!   flight says once, not ten times, that the old rate was too high.
//! - Pause: `retry-after-ms` / `retry-after` (already parsed into the error), else the reset of
//!   the exhausted limit (`x-ratelimit-reset-*`, `anthropic-ratelimit-*-reset`), pauses admission
//!   until then. A success whose headers say a limit is at zero pauses until its reset too,
//!   which avoids the 429 altogether.
//! - Up: after `recover_after` consecutive successes **and** `quiet` time since the last 429 or
//!   step, one step back up (10 → 25 → 50 → 100 %). Counting successes proves the lower rate
//!   works; the quiet time keeps a fast burst of successes from undoing a step at once.

use std::time::Duration;

use tokio::time::Instant;

use crate::llm::{LlmError, RateHeaders};

/// The share of the configured rate at each step.
pub const STEPS: [f64; 4] = [1.0, 0.5, 0.25, 0.1];

/// A vendor wait longer than this is a daily limit or a bogus header: pausing everything for
/// hours would look like a hang, so we pause this long and let the next 429 renew it.
pub const MAX_PAUSE: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    pub recover_after: u32,
    pub quiet: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings { recover_after: 10, quiet: Duration::from_secs(10) }
    }
}

#[derive(Debug, Clone)]
pub struct Throttle {
    settings: ThrottleSettings,
    step: usize,
    successes: u32,
    last_change: Option<Instant>,
    last_limited: Option<Instant>,
    paused_until: Option<Instant>,
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Throttle {
        Throttle { settings, step: 0, successes: 0, last_change: None, last_limited: None, paused_until: None }
    }

    pub fn set_settings(&mut self, settings: ThrottleSettings) {
        self.settings = settings;
    }

    /// The share of the configured rate to allow now.
    pub fn factor(&self) -> f64 {
        STEPS[self.step]
    }

    pub fn percent(&self) -> u32 {
        (self.factor() * 100.0).round() as u32
    }

    /// Admission waits until then, when the vendor asked for a pause.
    pub fn paused_until(&self) -> Option<Instant> {
        self.paused_until
    }

    /// A 429 rate limit for a call admitted at `admitted_at`; `pause` is the vendor's wait (see
    /// [`pause_hint`]). Returns whether the rate stepped down.
    pub fn on_rate_limited(&mut self, admitted_at: Instant, pause: Option<Duration>, now: Instant) -> bool {
        self.successes = 0;
        self.last_limited = Some(now);
        if let Some(pause) = pause {
            self.pause(now + pause.min(MAX_PAUSE));
        }
        let stale = self.last_change.is_some_and(|changed| admitted_at < changed);
        if stale || self.step + 1 >= STEPS.len() {
            return false;
        }
        self.step += 1;
        self.last_change = Some(now);
        true
    }

    /// A successful call and its rate headers. Returns whether the rate stepped up.
    pub fn on_success(&mut self, rate: &RateHeaders, now: Instant) -> bool {
        if let Some(reset) = exhausted_reset(rate) {
            self.pause(now + reset.min(MAX_PAUSE));
        }
        self.successes = self.successes.saturating_add(1);
        if self.step == 0 || self.successes < self.settings.recover_after {
            return false;
        }
        let quiet_since =
            |at: Option<Instant>| at.is_none_or(|at| now.saturating_duration_since(at) >= self.settings.quiet);
        if !quiet_since(self.last_limited) || !quiet_since(self.last_change) {
            return false;
        }
        self.step -= 1;
        self.successes = 0;
        self.last_change = Some(now);
        true
    }

    fn pause(&mut self, until: Instant) {
        if self.paused_until.is_none_or(|p| p < until) {
            self.paused_until = Some(until);
        }
    }
}

/// How long the vendor asked us to wait before the next call: `retry-after(-ms)` when sent,
/// else for a rate limit the reset of the limit that ran out.
pub fn pause_hint(err: &LlmError) -> Option<Duration> {
    if let Some(after) = err.retry_after() {
        return Some(after);
    }
    match err {
        LlmError::RateLimited { rate, .. } => exhausted_reset(rate).or_else(|| {
            // A 429 without `remaining: 0` still means some limit ran out; the sooner reset is
            // the least we must wait.
            [rate.reset_requests, rate.reset_tokens].into_iter().flatten().min()
        }),
        _ => None,
    }
}

/// The reset of each limit whose `remaining` is zero (the later one when both are).
pub fn exhausted_reset(rate: &RateHeaders) -> Option<Duration> {
    let requests = (rate.remaining_requests == Some(0)).then_some(rate.reset_requests).flatten();
    let tokens = (rate.remaining_tokens == Some(0)).then_some(rate.reset_tokens).flatten();
    requests.max(tokens)
}

#[cfg(test)]
#[path = "tests/throttle.rs"]
mod tests;
