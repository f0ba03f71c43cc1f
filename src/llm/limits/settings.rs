//! Owns `[limits]`: the settings of the limiter, breaker, retry and throttle, with the defaults
//! from the design, and their conversion into each state machine's own settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{BreakerSettings, Rates, RetryPolicy, ThrottleSettings};

/// `[limits]` settings. `0` for a rate means no limit (e.g. a local server).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitSettings {
    /// Per provider endpoint (vendor, base URL and model).
    pub requests_per_minute: u32,
    pub tokens_per_minute: u64,
    /// Requests an endpoint may send at once after a quiet spell. Kept small: vendors enforce
    /// per-minute limits over shorter slices, so a full minute's burst would earn a 429.
    pub burst: u32,
    /// Calls in flight per endpoint.
    pub max_concurrency: u32,
    /// Who the per-user limit applies to; default the OS user (`$USER`, `$LOGNAME`).
    pub user: Option<String>,
    pub per_user_requests_per_minute: u32,
    pub per_user_burst: u32,
    pub tenant: Option<String>,
    pub per_tenant_requests_per_minute: u32,
    pub per_tenant_burst: u32,
    /// Consecutive failures that open the breaker.
    pub breaker_failures: u32,
    /// ...or this failure rate over the window, once it holds `breaker_min_calls` calls.
    pub breaker_window_secs: u64,
    pub breaker_min_calls: u32,
    pub breaker_failure_percent: u32,
    pub breaker_open_secs: u64,
    /// Repeated openings double the open time up to this.
    pub breaker_max_open_secs: u64,
    /// Attempts per call in all, the first included.
    pub retry_attempts: u32,
    pub retry_base_delay_ms: u64,
    pub retry_max_delay_ms: u64,
    /// The throttle steps back up after this many successes in a row...
    pub throttle_recover_successes: u32,
    /// ...and this long without a 429.
    pub throttle_quiet_secs: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            requests_per_minute: 60,
            tokens_per_minute: 100_000,
            burst: 5,
            max_concurrency: 4,
            user: None,
            per_user_requests_per_minute: 100,
            per_user_burst: 10,
            tenant: None,
            per_tenant_requests_per_minute: 0,
            per_tenant_burst: 10,
            breaker_failures: 5,
            breaker_window_secs: 60,
            breaker_min_calls: 10,
            breaker_failure_percent: 50,
            breaker_open_secs: 30,
            breaker_max_open_secs: 300,
            retry_attempts: 4,
            retry_base_delay_ms: 500,
            retry_max_delay_ms: 30_000,
            throttle_recover_successes: 10,
            throttle_quiet_secs: 10,
        }
    }
}

impl LimitSettings {
    pub fn endpoint_rates(&self) -> Rates {
        Rates {
            requests_per_minute: self.requests_per_minute,
            burst: self.burst,
            tokens_per_minute: self.tokens_per_minute,
            max_in_flight: self.max_concurrency,
        }
    }

    pub(super) fn user_rates(&self) -> Rates {
        Rates {
            requests_per_minute: self.per_user_requests_per_minute,
            burst: self.per_user_burst,
            tokens_per_minute: 0,
            max_in_flight: 0,
        }
    }

    pub(super) fn tenant_rates(&self) -> Rates {
        let rpm = if self.tenant.is_some() { self.per_tenant_requests_per_minute } else { 0 };
        Rates { requests_per_minute: rpm, burst: self.per_tenant_burst, tokens_per_minute: 0, max_in_flight: 0 }
    }

    pub fn breaker(&self) -> BreakerSettings {
        BreakerSettings {
            failures: self.breaker_failures,
            window: Duration::from_secs(self.breaker_window_secs),
            min_calls: self.breaker_min_calls,
            failure_percent: self.breaker_failure_percent,
            open: Duration::from_secs(self.breaker_open_secs),
            max_open: Duration::from_secs(self.breaker_max_open_secs.max(self.breaker_open_secs)),
        }
    }

    pub fn throttle(&self) -> ThrottleSettings {
        ThrottleSettings {
            recover_after: self.throttle_recover_successes,
            quiet: Duration::from_secs(self.throttle_quiet_secs),
        }
    }

    pub(super) fn retry_policy(&self, seed: Option<u64>) -> RetryPolicy {
        let (base, max) =
            (Duration::from_millis(self.retry_base_delay_ms), Duration::from_millis(self.retry_max_delay_ms));
        match seed {
            Some(seed) => RetryPolicy::seeded(self.retry_attempts, base, max, seed),
            None => RetryPolicy::new(self.retry_attempts, base, max),
        }
    }

    /// The `user` setting, else the OS user.
    pub fn resolved_user(&self) -> String {
        self.user
            .clone()
            .or_else(|| ["USER", "LOGNAME", "USERNAME"].iter().find_map(|v| std::env::var(v).ok()))
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    }
}
