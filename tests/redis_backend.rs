//! The Redis team tier against a real `redis-server` (no mocks): the shared result cache, the
//! distributed token bucket, and what happens when Redis is missing, dies and comes back.
//! Each test starts its own server on a free port, so they run in parallel.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redis::{RedisServer, free_port};
use review_lsp::store::redis_backend::{BackendState, RedisBackend, RemoteRates};

/// Generous, because CI shares two cores with a full build; the tests that are about timeouts
/// choose their own.
const OP: Duration = Duration::from_millis(500);

fn key(n: u8) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[0] = n;
    key[31] = 0x5a;
    key
}

fn hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn connect_up(server: &RedisServer, namespace: &str, op_timeout: Duration) -> RedisBackend {
    let backend = RedisBackend::connect(&server.url(), namespace, op_timeout);
    wait_for("the backend to come up", Duration::from_secs(5), || backend.state() == BackendState::Up);
    backend
}

/// `put` is fire-and-forget, so a test waits until the value is visible.
fn put_visible(backend: &RedisBackend, key: &[u8; 32], value: &[u8], ttl: Duration) {
    backend.put(key, value, ttl);
    wait_for("the put to land", Duration::from_secs(5), || backend.get(key).as_deref() == Some(value));
}

fn raw(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url()).expect("url").get_connection().expect("raw connection")
}

fn is_down(backend: &RedisBackend) -> bool {
    matches!(backend.state(), BackendState::Down { .. })
}

fn block_on<F: Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

fn between(value: Duration, low_ms: u64, high_ms: u64) -> bool {
    value >= Duration::from_millis(low_ms) && value <= Duration::from_millis(high_ms)
}

#[test]
fn put_get_roundtrip_with_ttl() {
    let server = RedisServer::start();
    let backend = connect_up(&server, "t", OP);
    assert_eq!(backend.get(&key(1)), None);

    put_visible(&backend, &key(1), b"findings json", Duration::from_secs(60));
    let mut raw = raw(&server);
    let name = format!("t:c:{}", hex(&key(1)));
    let ttl: i64 = redis::cmd("TTL").arg(&name).query(&mut raw).expect("TTL");
    assert!((55..=60).contains(&ttl), "TTL of {name} is {ttl}");

    // Sub-second TTLs round up to Redis' minimum of one second.
    put_visible(&backend, &key(2), b"short-lived", Duration::from_millis(200));
    let ttl: i64 = redis::cmd("TTL").arg(format!("t:c:{}", hex(&key(2)))).query(&mut raw).expect("TTL");
    assert_eq!(ttl, 1);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(backend.get(&key(2)), None, "a 1 s entry is gone after 2.1 s");
    assert_eq!(backend.get(&key(1)).as_deref(), Some(&b"findings json"[..]));

    let stats = backend.stats();
    assert_eq!(stats.state, BackendState::Up);
    assert!(stats.hits >= 3 && stats.misses >= 2, "{stats:?}");
    assert_eq!(stats.errors, 0, "{stats:?}");
}

#[test]
fn get_many_answers_in_order() {
    let server = RedisServer::start();
    let backend = connect_up(&server, "many", OP);
    put_visible(&backend, &key(1), b"one", Duration::from_secs(60));
    put_visible(&backend, &key(3), b"three", Duration::from_secs(60));
    let before = backend.stats();

    let values = backend.get_many(&[key(1), key(2), key(3)]);
    assert_eq!(values, vec![Some(b"one".to_vec()), None, Some(b"three".to_vec())]);
    assert!(backend.get_many(&[]).is_empty());

    let after = backend.stats();
    assert_eq!((after.hits - before.hits, after.misses - before.misses), (2, 1));

    backend.delete(&[key(1)]);
    wait_for("the delete to land", Duration::from_secs(5), || backend.get(&key(1)).is_none());
    assert_eq!(backend.get_many(&[key(1), key(3)]), vec![None, Some(b"three".to_vec())]);
}

#[test]
fn namespaces_are_isolated_and_clear_only_its_own() {
    let server = RedisServer::start();
    let team_a = connect_up(&server, "team-a", OP);
    let team_b = connect_up(&server, "team-b", OP);
    // A namespace with glob characters must not match the others in clear's SCAN pattern.
    let glob = connect_up(&server, "team*", OP);
    // Another process of team A: same namespace, its own connection.
    let team_a2 = connect_up(&server, "team-a", OP);

    put_visible(&team_a, &key(1), b"a1", Duration::from_secs(60));
    put_visible(&team_a, &key(2), b"a2", Duration::from_secs(60));
    assert_eq!(team_b.get(&key(1)), None);
    assert_eq!(team_a2.get(&key(1)).as_deref(), Some(&b"a1"[..]), "same namespace shares entries");
    put_visible(&team_b, &key(1), b"b1", Duration::from_secs(60));
    assert_eq!(team_a.get(&key(1)).as_deref(), Some(&b"a1"[..]));

    assert_eq!(glob.clear(), Ok(0));
    assert_eq!(team_a.get(&key(1)).as_deref(), Some(&b"a1"[..]));

    assert_eq!(team_a.clear(), Ok(2));
    assert_eq!(team_a.get(&key(1)), None);
    assert_eq!(team_a.get(&key(2)), None);
    assert_eq!(team_b.get(&key(1)).as_deref(), Some(&b"b1"[..]), "clear left the other namespace alone");
    assert_eq!(team_a.clear(), Ok(0));
}

#[test]
fn clear_removes_many_entries_in_batches() {
    let server = RedisServer::start();
    let backend = connect_up(&server, "bulk", OP);
    let mut raw = raw(&server);
    let mut pipe = redis::pipe();
    for i in 0..2500u32 {
        pipe.cmd("SET").arg(format!("bulk:c:{i:064x}")).arg("v").ignore();
    }
    pipe.cmd("SET").arg("bulk:rl:api").arg("bucket").ignore();
    pipe.query::<()>(&mut raw).expect("seed");
    assert_eq!(backend.clear(), Ok(2500));
    let left: bool = redis::cmd("EXISTS").arg("bulk:rl:api").query(&mut raw).expect("EXISTS");
    assert!(left, "clear drops cache entries only, not rate-limit buckets");
}

#[test]
fn unreachable_redis_is_down_and_answers_at_once() {
    let port = free_port();
    let started = Instant::now();
    let backend = RedisBackend::connect(&format!("redis://127.0.0.1:{port}/"), "down", Duration::from_millis(50));
    assert!(started.elapsed() < Duration::from_millis(100), "connect must not wait for the network");
    wait_for("the backend to be Down", Duration::from_secs(3), || is_down(&backend));

    let rates = RemoteRates { requests_per_minute: 60, burst: 1, tokens_per_minute: 1000 };
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(backend.get(&key(1)), None);
        assert_eq!(backend.get_many(&[key(1), key(2)]), vec![None, None]);
        backend.put(&key(1), b"v", Duration::from_secs(60));
        backend.delete(&[key(1)]);
        backend.correct("api", rates, 10);
        assert_eq!(block_on(backend.acquire("api", rates, 10)), Err(()));
        assert!(started.elapsed() < Duration::from_millis(100), "a Down backend took {:?}", started.elapsed());
    }
    let error = backend.clear().expect_err("clear while Down");
    assert!(error.contains("down"), "{error}");
    let stats = backend.stats();
    assert!(matches!(stats.state, BackendState::Down { .. }));
    assert_eq!((stats.hits, stats.misses), (0, 0), "{stats:?}");
}

#[test]
fn redis_killed_mid_use_goes_down_then_recovers_by_itself() {
    let op_timeout = Duration::from_millis(200);
    let mut server = RedisServer::start();
    let backend = Arc::new(connect_up(&server, "flaky", op_timeout));
    put_visible(&backend, &key(1), b"before", Duration::from_secs(60));

    server.kill();
    let started = Instant::now();
    assert_eq!(backend.get(&key(1)), None);
    assert!(started.elapsed() < op_timeout + Duration::from_millis(100), "took {:?}", started.elapsed());
    wait_for("the backend to notice", Duration::from_secs(3), || is_down(&backend));
    let started = Instant::now();
    for _ in 0..10 {
        assert_eq!(backend.get(&key(1)), None);
    }
    assert!(started.elapsed() < Duration::from_millis(50), "Down lookups took {:?}", started.elapsed());
    let BackendState::Down { error, .. } = backend.state() else { unreachable!() };
    assert!(!error.is_empty());

    server.restart();
    wait_for("the backend to reconnect", Duration::from_secs(15), || backend.state() == BackendState::Up);
    // The restarted server is empty; sharing resumes with new entries.
    assert_eq!(backend.get(&key(1)), None);
    put_visible(&backend, &key(1), b"after", Duration::from_secs(60));
    let rates = RemoteRates { requests_per_minute: 60, burst: 1, tokens_per_minute: 0 };
    assert_eq!(block_on(backend.acquire("api", rates, 0)), Ok(Duration::ZERO));
    let stats = backend.stats();
    assert!(stats.reconnects >= 1, "{stats:?}");
}

#[test]
fn hung_redis_costs_one_timeout_then_nothing() {
    let op_timeout = Duration::from_millis(100);
    let server = RedisServer::start();
    let backend = connect_up(&server, "hung", op_timeout);
    put_visible(&backend, &key(1), b"v", Duration::from_secs(60));

    server.pause();
    let started = Instant::now();
    assert_eq!(backend.get(&key(1)), None);
    assert!(started.elapsed() < op_timeout + Duration::from_millis(100), "took {:?}", started.elapsed());
    wait_for("the timeout to take the backend Down", Duration::from_secs(2), || is_down(&backend));
    let started = Instant::now();
    for _ in 0..10 {
        assert_eq!(backend.get(&key(1)), None);
    }
    assert!(started.elapsed() < Duration::from_millis(50), "Down lookups took {:?}", started.elapsed());

    server.resume();
    wait_for("the backend to reconnect", Duration::from_secs(15), || backend.state() == BackendState::Up);
    assert_eq!(backend.get(&key(1)).as_deref(), Some(&b"v"[..]), "same server, same data");
}

#[test]
fn sync_api_works_from_plain_threads_and_inside_runtimes() {
    let server = RedisServer::start();
    let backend = Arc::new(connect_up(&server, "threads", OP));
    put_visible(&backend, &key(7), b"seven", Duration::from_secs(60));

    let plain = Arc::clone(&backend);
    let from_thread = std::thread::spawn(move || plain.get(&key(7))).join().expect("thread");
    assert_eq!(from_thread.as_deref(), Some(&b"seven"[..]));

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let pooled = Arc::clone(&backend);
    let from_pool = runtime.block_on(async move {
        tokio::task::spawn_blocking(move || pooled.get(&key(7))).await.expect("blocking task")
    });
    assert_eq!(from_pool.as_deref(), Some(&b"seven"[..]));

    // Even straight from an async task (which should not block, but must not panic either).
    let inline = Arc::clone(&backend);
    let from_task = runtime.block_on(async move { inline.get(&key(7)) });
    assert_eq!(from_task.as_deref(), Some(&b"seven"[..]));

    // And the backend can be dropped inside a runtime.
    runtime.block_on(async move { drop(RedisBackend::connect(&server.url(), "dropped", OP)) });
}

#[tokio::test]
async fn bucket_admits_the_burst_then_says_how_long_to_wait() {
    let server = RedisServer::start();
    let backend = connect_up(&server, "rl", OP);
    let rates = RemoteRates { requests_per_minute: 60, burst: 2, tokens_per_minute: 0 };

    assert_eq!(backend.acquire("api", rates, 0).await, Ok(Duration::ZERO));
    assert_eq!(backend.acquire("api", rates, 0).await, Ok(Duration::ZERO));
    let wait = backend.acquire("api", rates, 0).await.expect("answer");
    assert!(between(wait, 500, 1000), "third request should wait about 1 s, got {wait:?}");
    // The refused request took nothing: after the wait, exactly one more goes through.
    tokio::time::sleep(wait + Duration::from_millis(30)).await;
    assert_eq!(backend.acquire("api", rates, 0).await, Ok(Duration::ZERO));
    assert!(backend.acquire("api", rates, 0).await.expect("answer") > Duration::ZERO);

    // Idle buckets expire by themselves.
    let mut raw = raw(&server);
    let pttl: i64 = redis::cmd("PTTL").arg("rl:rl:api").query(&mut raw).expect("PTTL");
    assert!(pttl > 0 && pttl <= 4000, "PTTL {pttl}");
}

#[tokio::test]
async fn two_processes_share_one_bucket() {
    let server = RedisServer::start();
    let first = connect_up(&server, "shared", OP);
    let second = connect_up(&server, "shared", OP);
    let other_team = connect_up(&server, "other", OP);
    let rates = RemoteRates { requests_per_minute: 60, burst: 2, tokens_per_minute: 0 };

    assert_eq!(first.acquire("api", rates, 0).await, Ok(Duration::ZERO));
    assert_eq!(first.acquire("api", rates, 0).await, Ok(Duration::ZERO));
    let wait = second.acquire("api", rates, 0).await.expect("answer");
    assert!(between(wait, 500, 1000), "the second process sees the first one's requests, got {wait:?}");
    assert_eq!(second.acquire("other-endpoint", rates, 0).await, Ok(Duration::ZERO));
    assert_eq!(other_team.acquire("api", rates, 0).await, Ok(Duration::ZERO));
}

#[tokio::test]
async fn token_dimension_limits_too() {
    let server = RedisServer::start();
    let backend = connect_up(&server, "tok", OP);
    // 10 tokens/s; capacity 600 * 10 / 60 = 100 tokens, the same 10 s window as the requests.
    let rates = RemoteRates { requests_per_minute: 60, burst: 10, tokens_per_minute: 600 };

    assert_eq!(backend.acquire("api", rates, 80).await, Ok(Duration::ZERO));
    let wait = backend.acquire("api", rates, 30).await.expect("answer");
    assert!(between(wait, 700, 1000), "10 missing tokens at 10/s, got {wait:?}");
    assert_eq!(backend.acquire("api", rates, 20).await, Ok(Duration::ZERO), "the refused call took nothing");

    // More than the capacity: admitted from a full bucket, which goes into debt.
    assert_eq!(backend.acquire("big", rates, 500).await, Ok(Duration::ZERO));
    let wait = backend.acquire("big", rates, 1).await.expect("answer");
    assert!(between(wait, 39_000, 41_000), "400 tokens of debt + 1 at 10/s, got {wait:?}");

    // No request limit: 60 s of tokens.
    let tokens_only = RemoteRates { requests_per_minute: 0, burst: 0, tokens_per_minute: 600 };
    assert_eq!(backend.acquire("tokens", tokens_only, 600).await, Ok(Duration::ZERO));
    let wait = backend.acquire("tokens", tokens_only, 60).await.expect("answer");
    assert!(between(wait, 5_500, 6_000), "60 tokens at 10/s, got {wait:?}");
}

#[tokio::test]
async fn correct_charges_or_refunds_the_bucket() {
    let server = RedisServer::start();
    let backend = connect_up(&server, "fix", OP);
    let rates = RemoteRates { requests_per_minute: 60, burst: 10, tokens_per_minute: 600 };

    assert_eq!(backend.acquire("api", rates, 100).await, Ok(Duration::ZERO));
    let before = backend.acquire("api", rates, 10).await.expect("answer");
    assert!(between(before, 700, 1000), "{before:?}");

    // The call used 50 more tokens than estimated: 5 s more at 10/s.
    backend.correct("api", rates, 50);
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        let wait = backend.acquire("api", rates, 10).await.expect("answer");
        if wait > before + Duration::from_secs(3) || Instant::now() > deadline {
            break wait;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(between(after, 5_000, 6_000), "after charging 50 tokens: {after:?} (before {before:?})");

    // Overestimated by far: the refund fills the bucket (but not beyond capacity).
    backend.correct("api", rates, -1000);
    let deadline = Instant::now() + Duration::from_secs(5);
    while backend.acquire("api", rates, 100).await.expect("answer") > Duration::ZERO {
        assert!(Instant::now() < deadline, "the refund never landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wait = backend.acquire("api", rates, 10).await.expect("answer");
    assert!(between(wait, 700, 1000), "capacity stays 100 tokens: {wait:?}");
}
