//! Owns the circuit breaker of one provider endpoint: when the vendor is down, stop calling it
//! at once (the engine skips the LLM agents and still publishes offline findings) and find out
//! with a single probe when it is back.
//!
//! - CLOSED → OPEN after `failures` consecutive failures, or when at least `min_calls` calls in
//!   the last `window` failed at `failure_percent` or more. Failures are 5xx, 529/overloaded,
//!   timeouts and connection errors; a 4xx, a rate limit or a quota error means the vendor
//!   answered, so it counts as a working call.
//! - OPEN lasts `open` (30 s), or the vendor's `retry-after` if longer, doubled on each
//!   opening in a row up to `max_open` (5 min).
//! - HALF_OPEN admits **exactly one** probe; everyone else fails fast until it reports. Success
//!   closes, failure reopens for longer. Hand-written because `failsafe` lets every call
//!   through while half-open, which is the thundering herd this exists to prevent.
//!
//! Results are tied to the state they were admitted in ([`Permit`] carries a generation): a call
//! admitted while closed that fails after the breaker opened does not reopen it again, and a
//! probe dropped without a result (cancelled) frees the probe slot.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::llm::LlmError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    pub failures: u32,
    pub window: Duration,
    pub min_calls: u32,
    pub failure_percent: u32,
    pub open: Duration,
    pub max_open: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failures: 5,
            window: Duration::from_secs(60),
            min_calls: 10,
            failure_percent: 50,
            open: Duration::from_secs(30),
            max_open: Duration::from_secs(300),
        }
    }
}

/// What a call's result means to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The vendor answered (a 4xx, a 429 or a quota error included).
    Success,
    /// The vendor failed; `retry_after` is its own estimate of when it will be back.
    Failure { retry_after: Option<Duration> },
    /// Nothing was learned (no request was sent, e.g. a missing key).
    Ignored,
}

impl Outcome {
    pub fn of<T>(result: &Result<T, LlmError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(LlmError::Server { .. } | LlmError::Timeout | LlmError::Connect(_)) => {
                Outcome::Failure { retry_after: None }
            }
            Err(LlmError::Overloaded { retry_after, .. }) => Outcome::Failure { retry_after: *retry_after },
            Err(LlmError::MissingKey { .. } | LlmError::InsecureEndpoint { .. } | LlmError::KeyNotForHost { .. }) => {
                Outcome::Ignored
            }
            Err(_) => Outcome::Success,
        }
    }
}

/// Refused because the breaker is open (or half-open with its probe out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the provider is failing; calls resume in {:.0} s", retry_in.as_secs_f64().ceil())]
pub struct BreakerOpen {
    /// Until the next probe may go (zero while a probe is out).
    pub retry_in: Duration,
}

/// For stats: the breaker of one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerSnapshot {
    pub state: BreakerState,
    pub opened_count: u64,
    pub consecutive_failures: u32,
    /// Until the next probe may go, when open.
    pub open_for_ms: Option<u64>,
}

type OnChange = Box<dyn Fn(BreakerState) + Send + Sync>;

pub struct Breaker {
    inner: Mutex<Inner>,
    on_change: Option<OnChange>,
}

struct Inner {
    settings: BreakerSettings,
    state: BreakerState,
    consecutive: u32,
    /// `(when, failed)` of calls in the last `window`, while closed.
    recent: VecDeque<(Instant, bool)>,
    open_until: Option<Instant>,
    opened_count: u64,
    /// Openings since the breaker was last closed by a successful probe.
    streak: u32,
    generation: u64,
    probe_out: bool,
}

/// Leave to make one call. Report its result with [`Permit::record`]; dropping it unreported
/// (cancelled) frees a probe slot and counts for nothing.
#[must_use = "a permit must be recorded or dropped"]
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    generation: u64,
    probe: bool,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker").field("state", &self.state()).finish_non_exhaustive()
    }
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Breaker {
        Breaker {
            inner: Mutex::new(Inner {
                settings,
                state: BreakerState::Closed,
                consecutive: 0,
                recent: VecDeque::new(),
                open_until: None,
                opened_count: 0,
                streak: 0,
                generation: 0,
                probe_out: false,
            }),
            on_change: None,
        }
    }

    /// Calls `f` with the new state on every transition (under the breaker's lock: keep it short,
    /// e.g. a channel send).
    pub fn on_change(mut self, f: impl Fn(BreakerState) + Send + Sync + 'static) -> Breaker {
        self.on_change = Some(Box::new(f));
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_settings(&self, settings: BreakerSettings) {
        self.lock().settings = settings;
    }

    /// Leave to call now, or why not. Never waits.
    pub fn try_acquire(&self, now: Instant) -> Result<Permit<'_>, BreakerOpen> {
        let mut st = self.lock();
        match st.state {
            BreakerState::Closed => Ok(Permit { breaker: self, generation: st.generation, probe: false }),
            BreakerState::Open => {
                let until = st.open_until.unwrap_or(now);
                if now < until {
                    return Err(BreakerOpen { retry_in: until - now });
                }
                self.set(&mut st, BreakerState::HalfOpen);
                st.probe_out = true;
                Ok(Permit { breaker: self, generation: st.generation, probe: true })
            }
            BreakerState::HalfOpen if st.probe_out => Err(BreakerOpen { retry_in: Duration::ZERO }),
            BreakerState::HalfOpen => {
                st.probe_out = true;
                Ok(Permit { breaker: self, generation: st.generation, probe: true })
            }
        }
    }

    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    pub fn opened_count(&self) -> u64 {
        self.lock().opened_count
    }

    /// When the next probe may go, while open.
    pub fn open_until(&self) -> Option<Instant> {
        let st = self.lock();
        (st.state == BreakerState::Open).then_some(st.open_until).flatten()
    }

    pub fn snapshot(&self, now: Instant) -> BreakerSnapshot {
        let st = self.lock();
        BreakerSnapshot {
            state: st.state,
            opened_count: st.opened_count,
            consecutive_failures: st.consecutive,
            open_for_ms: (st.state == BreakerState::Open)
                .then(|| st.open_until.map_or(0, |u| u.saturating_duration_since(now).as_millis() as u64)),
        }
    }

    fn set(&self, st: &mut Inner, state: BreakerState) {
        if st.state == state {
            return;
        }
        st.state = state;
        st.generation += 1;
        if let Some(f) = &self.on_change {
            f(state);
        }
    }

    fn open(&self, st: &mut Inner, retry_after: Option<Duration>, now: Instant) {
        let s = st.settings;
        let grown = s.open.saturating_mul(1u32 << st.streak.min(16)).min(s.max_open);
        let open_for = grown.max(retry_after.unwrap_or_default());
        st.open_until = Some(now + open_for);
        st.opened_count += 1;
        st.streak = st.streak.saturating_add(1);
        st.probe_out = false;
        st.recent.clear();
        self.set(st, BreakerState::Open);
    }

    fn close(&self, st: &mut Inner) {
        st.consecutive = 0;
        st.streak = 0;
        st.recent.clear();
        st.open_until = None;
        st.probe_out = false;
        self.set(st, BreakerState::Closed);
    }

    fn record(&self, permit: &Permit<'_>, outcome: Outcome, now: Instant) {
        let mut st = self.lock();
        if permit.generation != st.generation {
            // Admitted in an earlier state: what it says is already known or out of date.
            return;
        }
        if permit.probe {
            st.probe_out = false;
            match outcome {
                Outcome::Success => self.close(&mut st),
                Outcome::Failure { retry_after } => self.open(&mut st, retry_after, now),
                Outcome::Ignored => {}
            }
            return;
        }
        let failed = match outcome {
            Outcome::Success => false,
            Outcome::Failure { .. } => true,
            Outcome::Ignored => return,
        };
        st.consecutive = if failed { st.consecutive + 1 } else { 0 };
        let window = st.settings.window;
        st.recent.push_back((now, failed));
        while st.recent.front().is_some_and(|(at, _)| now.saturating_duration_since(*at) > window) {
            st.recent.pop_front();
        }
        let calls = st.recent.len() as u64;
        let failures = st.recent.iter().filter(|(_, f)| *f).count() as u64;
        let s = st.settings;
        let by_count = s.failures > 0 && st.consecutive >= s.failures;
        let by_rate = s.min_calls > 0
            && calls >= u64::from(s.min_calls)
            && failures * 100 >= calls * u64::from(s.failure_percent);
        if failed && (by_count || by_rate) {
            let retry_after = match outcome {
                Outcome::Failure { retry_after } => retry_after,
                _ => None,
            };
            self.open(&mut st, retry_after, now);
        }
    }

    fn release(&self, permit: &Permit<'_>) {
        let mut st = self.lock();
        if permit.probe && permit.generation == st.generation {
            st.probe_out = false;
        }
    }
}

impl Permit<'_> {
    /// Reports the call's result.
    pub fn record(self, outcome: Outcome, now: Instant) {
        self.breaker.record(&self, outcome, now);
        std::mem::forget(self);
    }

    /// Whether the breaker is still in the state this permit was given in (a call that waited
    /// in the limiter checks this before going out).
    pub fn is_current(&self) -> bool {
        self.breaker.lock().generation == self.generation
    }

    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.breaker.release(self);
    }
}

#[cfg(test)]
#[path = "tests/breaker.rs"]
mod tests;
