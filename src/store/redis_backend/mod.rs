//! Owns the Redis "team tier": a second-level result cache and a distributed token bucket that
//! several review-lsp processes (a team's editors, CI scans) share through one Redis.
//!
//! It is an accelerator, never a dependency: every operation is bounded by a small timeout, a
//! Down backend answers at once without touching the network, and callers fall back to the
//! local store and the local limiter. One background task per backend owns the connection and
//! reconnects with backoff ([`link`]), so a missing Redis costs one dial per backoff step rather
//! than one timeout per lookup.
//!
//! The backend runs its own single-threaded tokio runtime on a background thread. That is what
//! lets the sync API ([`RedisBackend::get`] and friends) work from plain threads, from
//! `spawn_blocking` workers and from CLI code that has no runtime at all, without ever
//! `block_on`-ing inside someone else's runtime.
//!
//! # Recommended Redis configuration
//!
//! ```text
//! maxmemory 512mb                 # whatever the team can spare
//! maxmemory-policy allkeys-lru
//! save ""                         # nothing here is worth persisting
//! appendonly no
//! ```
//!
//! `allkeys-lru` because this is a cache: when memory fills up, Redis should evict the results
//! nobody asked for lately. Under the default `noeviction` a full Redis refuses every `SET` with
//! an OOM error, so the team cache silently stops learning; the `volatile-*` policies would work
//! for our keys (all carry a TTL) but not for anything else sharing the instance. Evicting a
//! rate-limit bucket is harmless (it comes back full, at worst admitting one extra burst), and
//! hot buckets are the last thing LRU picks. Because `allkeys-lru` may evict *any* key, give the
//! team tier its own Redis (or at least not one holding data that must stay).

mod bucket;
mod keys;
mod link;
mod seal;

use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::Duration;

use redis::RedisResult;
use redis::aio::MultiplexedConnection;
use serde::Serialize;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use bucket::RemoteRates;

use bucket::Mode;
use link::{Counters, Shared};
use seal::Seal;

/// Background writes (put, delete, correct) get at least this long: nobody waits for them, and
/// a large value on a slow link should not count as a dead server.
const BACKGROUND_MIN: Duration = Duration::from_secs(1);
/// Background writes in flight at once; past this, writes are dropped rather than queued, so a
/// slow Redis cannot make the process grow without bound.
const MAX_BACKGROUND: usize = 512;
/// Per round of `clear` (one SCAN or one UNLINK), which users wait for explicitly.
const CLEAR_STEP_MIN: Duration = Duration::from_secs(2);
const CLEAR_MAX: Duration = Duration::from_secs(600);
const CLEAR_BATCH: usize = 1000;
/// The largest value read from or written to the team tier. Reads ask Redis for at most this
/// many bytes (plus one, to tell a longer value apart), so a planted 500 MB value costs 4 MiB
/// of memory, not 500 MB; a longer value is rejected. Real entries are far smaller.
const MAX_VALUE: usize = 4 << 20;
/// Reads each key's first `ARGV[1] + 1` bytes. `pcall`, so a key of another type (a planted
/// list) reads as missing instead of failing the whole lookup.
const BOUNDED_GET: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  local value = redis.pcall('GETRANGE', key, 0, tonumber(ARGV[1]))
  if type(value) == 'string' and #value > 0 then out[i] = value else out[i] = false end
end
return out
";

/// Where the connection stands. `Down.since_secs` is how long ago it went down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BackendState {
    Connecting,
    Up,
    Down { since_secs: u64, error: String },
}

/// `hits` and `misses` count lookups Redis answered (per key for `get_many`); lookups skipped
/// while not Up count in neither. `errors` counts failed or timed-out operations, `reconnects`
/// the times the connection came back after being lost, `rejected` the values Redis returned
/// that were too large or failed their MAC (each also counted as a miss).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RedisStats {
    pub state: BackendState,
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
    pub reconnects: u64,
    pub rejected: u64,
}

pub struct RedisBackend {
    shared: Arc<Shared>,
    /// `None` when the backend is permanently Down (bad URL, no thread).
    runtime: Option<Handle>,
    stop: CancellationToken,
    namespace: String,
    script: Arc<redis::Script>,
    read_script: Arc<redis::Script>,
    background: Arc<Semaphore>,
    /// Set by [`RedisBackend::sealed`]: values are authenticated with the team's secret.
    seal: Option<Arc<Seal>>,
}

impl RedisBackend {
    /// Never fails and never blocks on the network: a bad URL gives a backend that is Down for
    /// good with the reason in its state; otherwise the first connection is made in the
    /// background and the backend is `Connecting` until then.
    pub fn connect(url: &str, namespace: &str, op_timeout: Duration) -> RedisBackend {
        let disabled = |error: String| {
            let shared = Arc::new(Shared::failed(op_timeout, error));
            RedisBackend::assemble(shared, None, CancellationToken::new(), namespace)
        };
        let client = match redis::Client::open(url) {
            Ok(client) => client,
            Err(error) => return disabled(format!("invalid Redis URL: {error}")),
        };
        // A zero budget would time out every operation and flap the link.
        let op_timeout = op_timeout.max(Duration::from_millis(1));
        let shared = Arc::new(Shared::connecting(op_timeout, client.get_connection_info().addr().to_string()));
        let stop = CancellationToken::new();
        match start_runtime(Arc::clone(&shared), client, stop.clone()) {
            Ok(handle) => RedisBackend::assemble(shared, Some(handle), stop, namespace),
            Err(error) => disabled(format!("cannot start the Redis thread: {error}")),
        }
    }

    fn assemble(
        shared: Arc<Shared>,
        runtime: Option<Handle>,
        stop: CancellationToken,
        namespace: &str,
    ) -> RedisBackend {
        RedisBackend {
            shared,
            runtime,
            stop,
            namespace: namespace.to_string(),
            script: Arc::new(bucket::script()),
            read_script: Arc::new(redis::Script::new(BOUNDED_GET)),
            background: Arc::new(Semaphore::new(MAX_BACKGROUND)),
            seal: None,
        }
    }

    /// The team tier `settings` describe; `None` (with a warning naming the variable, never its
    /// value) when they ask for a secret that is not there.
    pub fn open_team(settings: &super::RedisSettings, op_timeout: Duration) -> Option<RedisBackend> {
        let secret = match &settings.key_env {
            None => None,
            Some(name) => match std::env::var(name.trim()) {
                Ok(secret) if !secret.trim().is_empty() => Some(secret),
                _ => {
                    tracing::warn!(
                        "[cache] team_key_env names {}, which is not set: the team cache is off",
                        crate::escape::line(name)
                    );
                    return None;
                }
            },
        };
        let backend = RedisBackend::connect(&settings.url, &settings.namespace, op_timeout);
        Some(match secret {
            Some(secret) => backend.sealed(secret.trim().as_bytes()),
            None => backend,
        })
    }

    /// Authenticates every value with `secret` (`[cache] team_key_env`): written values carry
    /// a MAC, read values without a valid one are ignored. See [`seal`].
    pub fn sealed(mut self, secret: &[u8]) -> RedisBackend {
        self.seal = Some(Arc::new(Seal::from_secret(secret)));
        self
    }

    /// A value as Redis returned it, checked: `None` (counted in `rejected`) when it is longer
    /// than [`MAX_VALUE`] or, with a secret, its MAC is missing or wrong.
    fn accept(&self, name: &str, value: Vec<u8>, key: &[u8; 32]) -> Option<Vec<u8>> {
        let opened = if value.len() > MAX_VALUE {
            None
        } else {
            match &self.seal {
                Some(seal) => seal.open(name, value),
                None => Some(value),
            }
        };
        if opened.is_none() {
            Counters::add(&self.shared.counters.rejected, 1);
            tracing::debug!(key = %keys::short(key), "ignored a team value that is too large or not authenticated");
        }
        opened
    }

    /// Up to [`MAX_VALUE`] + 1 bytes of each key, in order; `None` when Redis did not answer.
    fn bounded_get(&self, names: Vec<String>) -> Option<Vec<Option<Vec<u8>>>> {
        let script = Arc::clone(&self.read_script);
        self.call(move |mut conn| async move {
            let mut invocation = script.prepare_invoke();
            for name in &names {
                invocation.key(name);
            }
            invocation.arg(MAX_VALUE);
            invocation.invoke_async::<Vec<Option<Vec<u8>>>>(&mut conn).await
        })
    }

    pub fn state(&self) -> BackendState {
        self.shared.state()
    }

    /// Waits up to `max` for the first connection attempt to finish, so a short-lived process
    /// (a CLI scan of a few files) uses the team tier from its first lookup. Returns whether
    /// the backend is up.
    pub fn wait_connected(&self, max: Duration) -> bool {
        let deadline = std::time::Instant::now() + max;
        while self.state() == BackendState::Connecting && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.state() == BackendState::Up
    }

    pub fn stats(&self) -> RedisStats {
        let counters = &self.shared.counters;
        RedisStats {
            state: self.state(),
            hits: Counters::get(&counters.hits),
            misses: Counters::get(&counters.misses),
            errors: Counters::get(&counters.errors),
            reconnects: Counters::get(&counters.reconnects),
            rejected: Counters::get(&counters.rejected),
        }
    }

    /// `None` on a miss, on a timeout (bounded by `op_timeout`) and at once when not Up.
    pub fn get(&self, key: &[u8; 32]) -> Option<Vec<u8>> {
        let name = keys::cache(&self.namespace, key);
        let answer = self.bounded_get(vec![name.clone()])?;
        let value = answer.into_iter().next().flatten().and_then(|value| self.accept(&name, value, key));
        let counter = if value.is_some() { &self.shared.counters.hits } else { &self.shared.counters.misses };
        Counters::add(counter, 1);
        if value.is_none() {
            tracing::debug!(key = %keys::short(key), "redis miss");
        }
        value
    }

    /// One MGET for all keys; answers in the order asked, all `None` when Redis did not answer.
    pub fn get_many(&self, keys: &[[u8; 32]]) -> Vec<Option<Vec<u8>>> {
        if keys.is_empty() {
            return Vec::new();
        }
        let names: Vec<String> = keys.iter().map(|key| keys::cache(&self.namespace, key)).collect();
        let Some(mut values) = self.bounded_get(names.clone()) else {
            return vec![None; keys.len()];
        };
        values.resize(keys.len(), None);
        let values: Vec<Option<Vec<u8>>> = values
            .into_iter()
            .zip(names.iter().zip(keys))
            .map(|(value, (name, key))| value.and_then(|value| self.accept(name, value, key)))
            .collect();
        let hits = values.iter().filter(|value| value.is_some()).count() as u64;
        Counters::add(&self.shared.counters.hits, hits);
        Counters::add(&self.shared.counters.misses, keys.len() as u64 - hits);
        values
    }

    /// Returns at once; the SET (with `EX`, at least 1 s) happens in the background and is
    /// dropped when not Up.
    pub fn put(&self, key: &[u8; 32], value: &[u8], ttl: Duration) {
        let name = keys::cache(&self.namespace, key);
        let value = match &self.seal {
            Some(seal) => seal.seal(&name, value.to_vec()),
            None => value.to_vec(),
        };
        if value.len() > MAX_VALUE {
            // Every reader would reject it; not worth the bandwidth.
            tracing::debug!(key = %keys::short(key), bytes = value.len(), "team value too large; not shared");
            return;
        }
        let secs = keys::ttl_secs(ttl);
        let short = keys::short(key);
        self.background(
            move |mut conn| async move {
                redis::cmd("SET").arg(name).arg(value).arg("EX").arg(secs).query_async::<()>(&mut conn).await
            },
            move |error| tracing::debug!(key = %short, "redis put dropped: {error}"),
        );
    }

    /// Fire-and-forget UNLINK of the given cache keys.
    pub fn delete(&self, keys: &[[u8; 32]]) {
        if keys.is_empty() {
            return;
        }
        let names: Vec<String> = keys.iter().map(|key| keys::cache(&self.namespace, key)).collect();
        self.background(
            move |mut conn| async move { redis::cmd("UNLINK").arg(names).query_async::<()>(&mut conn).await },
            |error| tracing::debug!("redis delete dropped: {error}"),
        );
    }

    /// Deletes every cache entry of this namespace (rate-limit buckets stay), in SCAN/UNLINK
    /// rounds so a big namespace never blocks Redis. Waits for the result, unlike the other
    /// writes, because the user asked for it and wants the count.
    pub fn clear(&self) -> Result<u64, String> {
        let pattern = keys::cache_pattern(&self.namespace);
        let step = self.shared.op_timeout.max(CLEAR_STEP_MIN);
        let (tx, rx) = sync_channel(1);
        self.spawn_op(
            CLEAR_MAX,
            move |mut conn| async move { clear_matching(&mut conn, &pattern, step).await },
            move |out| {
                let _ = tx.send(out);
            },
        )?;
        rx.recv().map_err(|_| "the Redis thread stopped".to_string())?
    }

    /// Takes one request and `tokens` tokens from the shared bucket if both are there
    /// (`Ok(ZERO)`), else takes nothing and says how long until they would be (`Ok(wait)`).
    /// `Err(())` when Redis is not Up or did not answer within `op_timeout`: the caller then
    /// relies on its local limiter. Unlimited rates admit without asking Redis.
    pub async fn acquire(&self, bucket: &str, rates: RemoteRates, tokens: u64) -> Result<Duration, ()> {
        if rates.is_unlimited() {
            return Ok(Duration::ZERO);
        }
        let key = keys::bucket(&self.namespace, bucket);
        let script = Arc::clone(&self.script);
        let amount = bucket::amount(tokens);
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.spawn_op(
            self.shared.op_timeout,
            move |mut conn| async move { bucket::run(&script, &mut conn, &key, Mode::Acquire, rates, amount).await },
            move |out| {
                let _ = tx.send(out);
            },
        )
        .map_err(|_| ())?;
        // A oneshot rather than a JoinHandle or timer, so the caller's executor needs nothing
        // from tokio: the bound is enforced on the backend's runtime.
        match rx.await {
            Ok(Ok(wait_ms)) => Ok(Duration::from_millis(wait_ms)),
            _ => Err(()),
        }
    }

    /// After a call, charges the bucket `delta` = actual - estimated tokens (negative gives
    /// back, never above capacity). Fire-and-forget; a no-op without a token limit.
    pub fn correct(&self, bucket: &str, rates: RemoteRates, delta: i64) {
        if delta == 0 || rates.tokens_per_minute == 0 {
            return;
        }
        let key = keys::bucket(&self.namespace, bucket);
        let script = Arc::clone(&self.script);
        self.background(
            move |mut conn| async move { bucket::run(&script, &mut conn, &key, Mode::Correct, rates, delta).await },
            |error| tracing::debug!("redis token correction dropped: {error}"),
        );
    }

    /// Runs `op` on the backend's runtime and waits for it, at most `op_timeout`.
    fn call<T, F, Fut>(&self, op: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(MultiplexedConnection) -> Fut + Send + 'static,
        Fut: Future<Output = RedisResult<T>> + Send + 'static,
    {
        let (tx, rx) = sync_channel(1);
        self.spawn_op(self.shared.op_timeout, op, move |out| {
            let _ = tx.send(out);
        })
        .ok()?;
        // A std channel works whether or not this thread is inside some tokio runtime; the
        // caller's own deadline also covers a stalled backend thread.
        rx.recv_timeout(self.shared.op_timeout).ok()?.ok()
    }

    /// Runs `op` in the background, bounded, without anyone waiting; `on_error` sees why it was
    /// dropped.
    fn background<T, F, Fut>(&self, op: F, on_error: impl FnOnce(String) + Send + 'static)
    where
        T: Send + 'static,
        F: FnOnce(MultiplexedConnection) -> Fut + Send + 'static,
        Fut: Future<Output = RedisResult<T>> + Send + 'static,
    {
        let Ok(permit) = Arc::clone(&self.background).try_acquire_owned() else {
            Counters::add(&self.shared.counters.errors, 1);
            on_error(format!("{MAX_BACKGROUND} writes already in flight"));
            return;
        };
        let limit = self.shared.op_timeout.max(BACKGROUND_MIN);
        let started = self.spawn_op(limit, op, move |out| {
            let _permit = permit;
            if let Err(error) = out {
                on_error(error);
            }
        });
        if let Err(error) = started {
            tracing::trace!("redis background write skipped: {error}");
        }
    }

    /// Spawns `op` on the backend's runtime with the current connection, bounded by `limit`,
    /// and hands the outcome to `done`. Fails at once, without spawning, when not Up.
    fn spawn_op<T, F, Fut>(
        &self,
        limit: Duration,
        op: F,
        done: impl FnOnce(Result<T, String>) + Send + 'static,
    ) -> Result<(), String>
    where
        T: Send + 'static,
        F: FnOnce(MultiplexedConnection) -> Fut + Send + 'static,
        Fut: Future<Output = RedisResult<T>> + Send + 'static,
    {
        let (Some(runtime), Some(lease)) = (&self.runtime, self.shared.lease()) else {
            return Err(self.unavailable());
        };
        let shared = Arc::clone(&self.shared);
        runtime.spawn(async move {
            let out = match tokio::time::timeout(limit, op(lease.conn)).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => {
                    shared.op_failed(lease.generation, &error);
                    Err(error.to_string())
                }
                Err(_) => {
                    shared.op_timed_out(lease.generation, limit);
                    Err(format!("no answer within {} ms", limit.as_millis()))
                }
            };
            done(out);
        });
        Ok(())
    }

    fn unavailable(&self) -> String {
        match self.state() {
            BackendState::Connecting => "Redis is still connecting".to_string(),
            BackendState::Up => "Redis connection was just lost".to_string(),
            BackendState::Down { error, .. } => format!("Redis is down: {error}"),
        }
    }
}

impl Drop for RedisBackend {
    fn drop(&mut self) {
        // Ends the supervisor, which ends the runtime and its thread; in-flight background
        // writes are abandoned, as they would be on any Down.
        self.stop.cancel();
    }
}

/// Starts the backend's thread and runtime. The runtime is built on that thread (not here) so
/// that no failure path ever drops a runtime inside a caller's async context, which panics.
fn start_runtime(shared: Arc<Shared>, client: redis::Client, stop: CancellationToken) -> Result<Handle, String> {
    let (tx, rx) = sync_channel(1);
    std::thread::Builder::new()
        .name("redis-team-tier".to_string())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = tx.send(Err(error.to_string()));
                    return;
                }
            };
            let _ = tx.send(Ok(runtime.handle().clone()));
            runtime.block_on(link::supervise(shared, client, stop));
        })
        .map_err(|error| error.to_string())?;
    rx.recv().map_err(|_| "the Redis thread ended before starting".to_string())?
}

async fn clear_matching(conn: &mut MultiplexedConnection, pattern: &str, step: Duration) -> RedisResult<u64> {
    let mut cursor: u64 = 0;
    let mut removed = 0;
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(CLEAR_BATCH);
        let (next, found) = bounded(step, scan.query_async::<(u64, Vec<Vec<u8>>)>(conn)).await?;
        if !found.is_empty() {
            removed += bounded(step, redis::cmd("UNLINK").arg(found).query_async::<u64>(conn)).await?;
        }
        if next == 0 {
            return Ok(removed);
        }
        cursor = next;
    }
}

/// A step that hangs is reported as an I/O timeout, which the link treats as a lost connection.
async fn bounded<T>(limit: Duration, op: impl Future<Output = RedisResult<T>>) -> RedisResult<T> {
    match tokio::time::timeout(limit, op).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "Redis did not answer").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn backend_is_send_and_sync() {
        assert_send_sync::<RedisBackend>();
        assert_send_sync::<Arc<RedisBackend>>();
    }

    #[test]
    fn acquire_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let backend = RedisBackend::connect("not a url", "ns", Duration::from_millis(50));
        let rates = RemoteRates { requests_per_minute: 60, burst: 1, tokens_per_minute: 0 };
        assert_send(&backend.acquire("b", rates, 1));
    }

    #[test]
    fn bad_url_is_down_for_good_and_answers_at_once() {
        let backend = RedisBackend::connect("not a url", "ns", Duration::from_millis(50));
        let BackendState::Down { error, .. } = backend.state() else {
            panic!("expected Down, got {:?}", backend.state());
        };
        assert!(error.contains("invalid Redis URL"), "{error}");
        assert_eq!(backend.get(&[0; 32]), None);
        assert_eq!(backend.get_many(&[[0; 32], [1; 32]]), vec![None, None]);
        backend.put(&[0; 32], b"v", Duration::from_secs(1));
        backend.delete(&[[0; 32]]);
        assert!(backend.clear().unwrap_err().contains("invalid Redis URL"));
        let rates = RemoteRates { requests_per_minute: 60, burst: 1, tokens_per_minute: 0 };
        assert_eq!(futures::executor::block_on(backend.acquire("b", rates, 1)), Err(()));
        backend.correct("b", RemoteRates { tokens_per_minute: 10, ..rates }, 5);
        let stats = backend.stats();
        assert_eq!((stats.hits, stats.misses, stats.errors, stats.reconnects), (0, 0, 0, 0));
    }

    #[test]
    fn password_does_not_leak_into_the_bad_url_error() {
        let backend = RedisBackend::connect("redis://:hunter2@host:notaport", "ns", Duration::from_millis(50));
        let BackendState::Down { error, .. } = backend.state() else {
            panic!("expected Down, got {:?}", backend.state());
        };
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn unlimited_rates_admit_even_when_down() {
        let backend = RedisBackend::connect("not a url", "ns", Duration::from_millis(50));
        let rates = RemoteRates { requests_per_minute: 0, burst: 0, tokens_per_minute: 0 };
        assert_eq!(futures::executor::block_on(backend.acquire("b", rates, 1000)), Ok(Duration::ZERO));
    }

    #[test]
    fn state_serializes_with_a_status_tag() {
        let down = BackendState::Down { since_secs: 3, error: "refused".to_string() };
        assert_eq!(
            serde_json::to_value(&down).unwrap(),
            serde_json::json!({"status": "down", "since_secs": 3, "error": "refused"})
        );
        assert_eq!(serde_json::to_value(BackendState::Up).unwrap(), serde_json::json!({"status": "up"}));
    }
}
