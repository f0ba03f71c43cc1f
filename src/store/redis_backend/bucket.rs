//! Owns the distributed token bucket: the one Lua script that every process runs against the
//! same hash, and the Rust side of its arguments. All arithmetic happens inside Redis so that a
//! check-and-take is atomic across processes and uses one clock (Redis' `TIME`), whatever the
//! clocks of the machines calling it say.

use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Script};

/// Limits shared by every process using the same namespace and bucket name. `0` means unlimited
/// in that dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteRates {
    pub requests_per_minute: u32,
    /// Requests that may go at once from a full bucket (0 counts as 1); also sets the token
    /// capacity, so both dimensions hold the same time "window" (`burst / requests_per_minute`
    /// minutes, or one minute of tokens when requests are unlimited).
    pub burst: u32,
    pub tokens_per_minute: u64,
}

impl RemoteRates {
    pub fn is_unlimited(&self) -> bool {
        self.requests_per_minute == 0 && self.tokens_per_minute == 0
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Mode {
    /// Take one request and `amount` tokens if both are there, else report the wait.
    Acquire,
    /// Take `amount` tokens unconditionally (negative gives back), after a call's real token
    /// count is known.
    Correct,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Acquire => "acquire",
            Mode::Correct => "correct",
        }
    }
}

/// One script for both modes, so the refill arithmetic exists once.
///
/// State per bucket is a hash `{r, t, ts}`: requests and tokens available (floats, may go
/// negative on the token side) and the refill time in Redis microseconds. A missing key means a
/// full bucket, which is why PEXPIRE is set to "time until full": an idle bucket vanishes at the
/// moment it would be indistinguishable from a new one, and any debt is remembered until repaid.
/// Numbers are stored with `%.17g`: Redis turns Lua numbers into strings with 14 digits, which
/// would round a microsecond timestamp.
const LUA: &str = r#"
if redis.replicate_commands then pcall(redis.replicate_commands) end
local mode = ARGV[1]
local rpm = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tpm = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
if burst < 1 then burst = 1 end

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

local req_cap, req_rate = 0, 0
if rpm > 0 then
  req_cap = burst
  req_rate = rpm / 60000000
end
local tok_cap, tok_rate = 0, 0
if tpm > 0 then
  if rpm > 0 then tok_cap = tpm * burst / rpm else tok_cap = tpm end
  tok_rate = tpm / 60000000
end

local state = redis.call('HMGET', KEYS[1], 'r', 't', 'ts')
local r = tonumber(state[1]) or req_cap
local t = tonumber(state[2]) or tok_cap
local ts = tonumber(state[3]) or now
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
if rpm > 0 then r = math.min(req_cap, r + elapsed * req_rate) end
if tpm > 0 then t = math.min(tok_cap, t + elapsed * tok_rate) end

local wait = 0
if mode == 'acquire' then
  local wait_r, wait_t = 0, 0
  if rpm > 0 and r < 1 then wait_r = (1 - r) / req_rate end
  if tpm > 0 then
    local need = math.min(n, tok_cap)
    if t < need then wait_t = (need - t) / tok_rate end
  end
  wait = math.max(wait_r, wait_t)
  if wait == 0 then
    if rpm > 0 then r = r - 1 end
    if tpm > 0 then t = t - n end
  end
elseif tpm > 0 then
  t = math.min(tok_cap, t - n)
end

local full = 0
if rpm > 0 then full = math.max(full, (req_cap - r) / req_rate) end
if tpm > 0 then full = math.max(full, (tok_cap - t) / tok_rate) end
redis.call('HSET', KEYS[1], 'r', string.format('%.17g', r), 't', string.format('%.17g', t),
  'ts', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(full / 1000) + 1000)
return math.ceil(wait / 1000)
"#;

pub(super) fn script() -> Script {
    Script::new(LUA)
}

/// Runs the script (EVALSHA, loading it first if this Redis has not seen it, e.g. after a
/// restart). Returns the wait in milliseconds, 0 when admitted or for `Correct`.
pub(super) async fn run(
    script: &Script,
    conn: &mut MultiplexedConnection,
    key: &str,
    mode: Mode,
    rates: RemoteRates,
    amount: i64,
) -> RedisResult<u64> {
    let mut invocation = script.prepare_invoke();
    invocation
        .key(key)
        .arg(mode.as_str())
        .arg(rates.requests_per_minute)
        .arg(rates.burst)
        .arg(rates.tokens_per_minute)
        .arg(amount);
    let wait_ms: i64 = invocation.invoke_async(conn).await?;
    Ok(wait_ms.max(0) as u64)
}

/// Token counts come as u64 but travel as Lua doubles; anything past i64 is already far beyond
/// any real bucket, so saturating is harmless.
pub(super) fn amount(tokens: u64) -> i64 {
    i64::try_from(tokens).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_only_when_both_dimensions_are_zero() {
        let rates =
            |requests_per_minute, tokens_per_minute| RemoteRates { requests_per_minute, burst: 1, tokens_per_minute };
        assert!(rates(0, 0).is_unlimited());
        assert!(!rates(60, 0).is_unlimited());
        assert!(!rates(0, 1000).is_unlimited());
    }

    #[test]
    fn huge_token_counts_saturate() {
        assert_eq!(amount(5), 5);
        assert_eq!(amount(u64::MAX), i64::MAX);
    }

    #[test]
    fn script_hash_is_stable() {
        // EVALSHA relies on every process computing the same SHA1 for the same text.
        assert_eq!(script().get_hash(), script().get_hash());
        assert_eq!(script().get_hash().len(), 40);
    }
}
