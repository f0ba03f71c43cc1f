//! Owns the connection's life: the Up/Down state that every operation consults before touching
//! the network, the counters behind `stats()`, and the background task that connects, watches a
//! live connection with a heartbeat, and reconnects with exponential backoff and jitter.
//!
//! Operations never wait for a connection: they borrow the current one if the link is Up and
//! give up at once otherwise. Only this task ever dials Redis, so a dead server costs one
//! connection attempt per backoff step, not one per cache lookup.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::BackendState;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// backon's jitter adds up to one more delay, so a 5 s step lands between 5 and 10 s.
const BACKOFF_STEP_MAX: Duration = Duration::from_secs(5);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// A server that dies while nobody is asking would otherwise stay "Up" in stats until the next
/// lookup; one PING a second per process is noise for Redis.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Dialing (TCP, maybe TLS, HELLO/AUTH) legitimately takes longer than one lookup; it runs in
/// the background, so a generous bound costs callers nothing.
const CONNECT_MIN: Duration = Duration::from_secs(2);
/// A PING that misses a 50 ms lookup budget on a busy machine is not yet a dead server.
const HEARTBEAT_TIMEOUT_MIN: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Up,
    Down,
}

struct Link {
    phase: Phase,
    since: Instant,
    error: String,
    conn: Option<MultiplexedConnection>,
    /// Bumped for every new connection, so a failure seen on an old connection cannot take down
    /// the one that replaced it.
    generation: u64,
    ever_up: bool,
}

#[derive(Default)]
pub(super) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub errors: AtomicU64,
    pub reconnects: AtomicU64,
    pub rejected: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A connection borrowed for one operation, with the generation to blame if it fails.
pub(super) struct Lease {
    pub conn: MultiplexedConnection,
    pub generation: u64,
}

pub(super) struct Shared {
    link: Mutex<Link>,
    /// Wakes the supervisor when an operation saw the connection fail, so reconnecting starts
    /// now instead of at the next heartbeat.
    wake: Notify,
    pub counters: Counters,
    pub op_timeout: Duration,
    /// `host:port` only, for logs: the URL may carry a password.
    addr: String,
}

impl Shared {
    pub fn connecting(op_timeout: Duration, addr: String) -> Shared {
        Shared::with_phase(op_timeout, addr, Phase::Connecting, String::new())
    }

    /// For a backend that can never connect (bad URL, no thread): Down from birth, and no
    /// supervisor will ever change that.
    pub fn failed(op_timeout: Duration, error: String) -> Shared {
        tracing::warn!("redis team tier disabled: {error}");
        Shared::with_phase(op_timeout, String::new(), Phase::Down, error)
    }

    fn with_phase(op_timeout: Duration, addr: String, phase: Phase, error: String) -> Shared {
        Shared {
            link: Mutex::new(Link { phase, since: Instant::now(), error, conn: None, generation: 0, ever_up: false }),
            wake: Notify::new(),
            counters: Counters::default(),
            op_timeout,
            addr,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Link> {
        // A panic while holding this lock cannot leave the link half-updated in a way that
        // matters more than losing the whole tier, so poisoning is ignored.
        self.link.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn lease(&self) -> Option<Lease> {
        let link = self.lock();
        match (&link.phase, &link.conn) {
            (Phase::Up, Some(conn)) => Some(Lease { conn: conn.clone(), generation: link.generation }),
            _ => None,
        }
    }

    pub fn state(&self) -> BackendState {
        let link = self.lock();
        match link.phase {
            Phase::Connecting => BackendState::Connecting,
            Phase::Up => BackendState::Up,
            Phase::Down => BackendState::Down { since_secs: link.since.elapsed().as_secs(), error: link.error.clone() },
        }
    }

    /// An operation on connection `generation` failed. Server-side errors (wrong type, OOM,
    /// script errors) say nothing about reachability and only count; anything that broke the
    /// connection takes the link Down.
    pub fn op_failed(&self, generation: u64, error: &RedisError) {
        Counters::add(&self.counters.errors, 1);
        if breaks_connection(error) {
            self.go_down(Some(generation), error.to_string());
        } else {
            tracing::debug!(error = %error, "redis operation failed");
        }
    }

    /// A server that does not answer within the budget is treated as gone: the alternative is
    /// every caller paying the full timeout until it answers again.
    pub fn op_timed_out(&self, generation: u64, limit: Duration) {
        Counters::add(&self.counters.errors, 1);
        self.go_down(Some(generation), format!("no answer within {} ms", limit.as_millis()));
    }

    /// `generation` is `Some` when a live connection failed (ignored if that connection is no
    /// longer current) and `None` when a connection attempt failed.
    fn go_down(&self, generation: Option<u64>, error: String) {
        let mut link = self.lock();
        let stale = generation.is_some_and(|generation| link.generation != generation || link.phase != Phase::Up);
        if stale {
            return;
        }
        match link.phase {
            Phase::Down => {
                tracing::debug!(addr = %self.addr, %error, "redis still unreachable");
                link.error = error;
                return;
            }
            Phase::Up => {
                tracing::info!(addr = %self.addr, "redis team tier down, using local cache and limits: {error}")
            }
            Phase::Connecting => {
                tracing::info!(addr = %self.addr, "redis team tier unreachable, using local cache and limits: {error}")
            }
        }
        link.phase = Phase::Down;
        link.since = Instant::now();
        link.error = error;
        link.conn = None;
        drop(link);
        self.wake.notify_one();
    }

    fn go_up(&self, conn: MultiplexedConnection) -> u64 {
        let mut link = self.lock();
        link.generation += 1;
        link.phase = Phase::Up;
        link.since = Instant::now();
        link.error.clear();
        link.conn = Some(conn);
        if link.ever_up {
            Counters::add(&self.counters.reconnects, 1);
            tracing::info!(addr = %self.addr, "redis team tier back up");
        } else {
            tracing::info!(addr = %self.addr, "redis team tier up");
        }
        link.ever_up = true;
        link.generation
    }

    fn is_current(&self, generation: u64) -> bool {
        let link = self.lock();
        link.phase == Phase::Up && link.generation == generation
    }
}

fn breaks_connection(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
}

/// The supervisor: runs on the backend's own runtime until `stop` is cancelled.
pub(super) async fn supervise(shared: Arc<Shared>, client: Client, stop: CancellationToken) {
    let builder = ExponentialBuilder::default()
        .with_min_delay(BACKOFF_MIN)
        .with_max_delay(BACKOFF_STEP_MAX)
        .with_jitter()
        .without_max_times();
    let mut backoff = builder.build();
    let connect_timeout = shared.op_timeout.max(CONNECT_MIN);
    loop {
        let attempt = tokio::select! {
            _ = stop.cancelled() => return,
            attempt = connect(&client, connect_timeout) => attempt,
        };
        match attempt {
            Ok(conn) => {
                backoff = builder.build();
                let generation = shared.go_up(conn.clone());
                if watch(&shared, conn, generation, &stop).await == Watch::Stopped {
                    return;
                }
            }
            Err(error) => shared.go_down(None, error),
        }
        let delay = backoff.next().unwrap_or(BACKOFF_CAP).min(BACKOFF_CAP);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

async fn connect(client: &Client, limit: Duration) -> Result<MultiplexedConnection, String> {
    // No response timeout on the connection itself: each operation carries its own bound, and
    // some (clear) need a longer one than lookups.
    let config = AsyncConnectionConfig::new().set_connection_timeout(Some(limit)).set_response_timeout(None);
    let attempt = async {
        let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
        // Proves the server answers commands (not just accepts TCP) and that AUTH/SELECT held.
        redis::cmd("PING").query_async::<redis::Value>(&mut conn).await?;
        Ok::<_, RedisError>(conn)
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no connection within {} ms", limit.as_millis())),
    }
}

#[derive(PartialEq, Eq)]
enum Watch {
    Lost,
    Stopped,
}

/// Waits while the connection is good: returns when an operation or the heartbeat found it
/// broken (the link is Down by then) or when the backend is dropped.
async fn watch(shared: &Shared, mut conn: MultiplexedConnection, generation: u64, stop: &CancellationToken) -> Watch {
    let heartbeat_timeout = shared.op_timeout.max(HEARTBEAT_TIMEOUT_MIN);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Watch::Stopped,
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(HEARTBEAT) => {
                let ping_cmd = redis::cmd("PING");
                let ping = ping_cmd.query_async::<redis::Value>(&mut conn);
                match tokio::time::timeout(heartbeat_timeout, ping).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) if breaks_connection(&error) => shared.go_down(Some(generation), error.to_string()),
                    Ok(Err(error)) => tracing::debug!(%error, "redis heartbeat answered with an error"),
                    Err(_) => shared.go_down(
                        Some(generation),
                        format!("heartbeat unanswered for {} ms", heartbeat_timeout.as_millis()),
                    ),
                }
            }
        }
        if !shared.is_current(generation) {
            return Watch::Lost;
        }
    }
}
