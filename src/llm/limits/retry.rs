//! Owns retrying one logical call: which errors are worth another attempt, how long to wait
//! before it, and the [`QuotaLatch`] that stops a provider whose account ran out of money.
//!
//! - Retried: what [`LlmError::is_retryable`] says (408, 409, 429 rate limits, 5xx, 529,
//!   timeouts, connection errors). Never: quota/credit/billing errors, auth, other 4xx.
//! - Backoff: `backon`'s exponential backoff, bounded by `attempts` in all (the first
//!   included) and capped at `max_delay`, with **full** jitter (a uniform draw in
//!   `[0, delay]`, applied in `.adjust()`: backon's own jitter only adds on top, in
//!   `[delay, 2 × delay)`, which keeps synchronised clients synchronised).
//! - The vendor's wait wins when longer: max(jittered backoff, retry-after or limit reset).
//! - A quota error ends the call at once with [`RetryError::Stop`] (exactly one attempt), so
//!   the caller can latch the provider off.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use super::budget::Day;
use super::throttle::{MAX_PAUSE, pause_hint};
use crate::llm::LlmError;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Try again, not before `after` if the vendor said so.
    Retry { after: Option<Duration> },
    /// Give up: trying again cannot help.
    Fail,
    /// Give up and stop calling this provider (its account is out of money).
    Stop,
}

/// Errors that know whether they are worth retrying.
pub trait Classify {
    fn verdict(&self) -> Verdict;
}

impl Classify for LlmError {
    fn verdict(&self) -> Verdict {
        match self {
            LlmError::QuotaExhausted { .. } => Verdict::Stop,
            e if e.is_retryable() => Verdict::Retry { after: pause_hint(e) },
            _ => Verdict::Fail,
        }
    }
}

/// How a retried call ended without a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryError<E> {
    /// Not retryable, or the attempts ran out; the last error.
    Failed(E),
    /// The provider must not be called again for now (quota).
    Stop(E),
}

impl<E> RetryError<E> {
    pub fn into_inner(self) -> E {
        match self {
            RetryError::Failed(e) | RetryError::Stop(e) => e,
        }
    }
}

#[derive(Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 means no retry.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    seed: u64,
    calls: AtomicU64,
}

impl RetryPolicy {
    /// A policy with jitter seeded from the clock.
    pub fn new(attempts: u32, base_delay: Duration, max_delay: Duration) -> RetryPolicy {
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        RetryPolicy::seeded(attempts, base_delay, max_delay, seed)
    }

    /// A policy whose jitter is reproducible (tests).
    pub fn seeded(attempts: u32, base_delay: Duration, max_delay: Duration, seed: u64) -> RetryPolicy {
        RetryPolicy { attempts: attempts.max(1), base_delay, max_delay, seed, calls: AtomicU64::new(0) }
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay.max(self.base_delay))
            .with_factor(2.0)
            .with_max_times(self.attempts.saturating_sub(1) as usize)
    }

    /// Runs `call` until it succeeds, fails for good, or the attempts run out.
    pub async fn retry<T, E, F, Fut>(&self, call: F) -> Result<T, RetryError<E>>
    where
        E: Classify,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // One generator per logical call, so concurrent calls draw different delays.
        let mut rng = SplitMix(self.seed ^ self.calls.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9));
        let result = call
            .retry(self.backoff())
            .sleep(tokio::time::sleep)
            .when(|e: &E| matches!(e.verdict(), Verdict::Retry { .. }))
            .adjust(|e: &E, backoff| {
                let backoff = backoff?;
                let jittered = backoff.mul_f64(rng.unit());
                let vendor = match e.verdict() {
                    Verdict::Retry { after } => after.unwrap_or_default().min(MAX_PAUSE),
                    _ => Duration::ZERO,
                };
                Some(jittered.max(vendor))
            })
            .await;
        result.map_err(|e| if e.verdict() == Verdict::Stop { RetryError::Stop(e) } else { RetryError::Failed(e) })
    }
}

/// splitmix64: a few lines of well-known PRNG, enough for jitter, reproducible from a seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1].
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / ((1u64 << 53) - 1) as f64
    }
}

/// Providers stopped by a quota error, until the next day or a settings change
/// ([`QuotaLatch::clear`]). Keyed by provider account (kind and base URL), not by model: the
/// money is per account.
#[derive(Debug, Default)]
pub struct QuotaLatch {
    stops: Mutex<HashMap<String, Stopped>>,
}

#[derive(Debug, Clone)]
struct Stopped {
    day: Day,
    message: String,
}

impl QuotaLatch {
    pub fn new() -> QuotaLatch {
        QuotaLatch::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Stopped>> {
        self.stops.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops `key` for `day`. True the first time (tell the user); false if already stopped.
    pub fn stop(&self, key: &str, day: Day, message: &str) -> bool {
        let mut stops = self.lock();
        if stops.get(key).is_some_and(|s| s.day == day) {
            return false;
        }
        stops.insert(key.to_owned(), Stopped { day, message: message.to_owned() });
        true
    }

    /// The vendor's message if `key` is stopped today. A stop from an earlier day has lapsed.
    pub fn stopped(&self, key: &str, today: Day) -> Option<String> {
        let mut stops = self.lock();
        match stops.get(key) {
            Some(s) if s.day == today => Some(s.message.clone()),
            Some(_) => {
                stops.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keys stopped today, for stats.
    pub fn stopped_keys(&self, today: Day) -> Vec<String> {
        let mut keys: Vec<String> =
            self.lock().iter().filter(|(_, s)| s.day == today).map(|(k, _)| k.clone()).collect();
        keys.sort();
        keys
    }

    /// Settings changed (a new key, a topped-up account): try again.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
#[path = "tests/retry.rs"]
mod tests;
