//! The store's tiers: get and put latency (median and p99) for the in-memory LRU, redb and
//! Redis on loopback, and a warm `review-lsp scan` of 10,000 files served from redb and from
//! Redis alone (an empty local cache, as on a teammate's machine or a fresh CI runner).
//!
//! Run: `cargo bench --bench store` (needs `redis-server`; `scripts/install-redis.sh`).
//! Without `--bench` it is a smoke run on 300 files.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use review_lsp::review::finding::{Category, Finding, Severity, Span};
use review_lsp::store::redis_backend::RedisBackend;
use review_lsp::store::{CacheKey, Store, StoreSettings, Tags};

fn findings(n: u32) -> Vec<Finding> {
    (0..n % 4)
        .map(|i| Finding {
            rule: "python/correctness/none-comparison".into(),
            category: Category::Correctness,
            severity: Severity::Warning,
            source: "offline".into(),
            message: format!("comparison to None should use `is` ({n}/{i})"),
            span: Span { start_line: n + i, start_col: 4, end_line: n + i, end_col: 18 },
            fix: None,
        })
        .collect()
}

fn key(n: u32) -> CacheKey {
    CacheKey::derive(&[b"bench", &n.to_le_bytes()])
}

fn tags(n: u32) -> Tags {
    Tags { path: format!("src/f{n}.py"), agents: "correctness".into(), models: "offline".into() }
}

fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let at = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    format!("median {:>7.1} µs   p99 {:>7.1} µs", at(50).as_secs_f64() * 1e6, at(99).as_secs_f64() * 1e6)
}

fn timed(n: u32, mut op: impl FnMut(u32)) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            let t = Instant::now();
            op(i);
            t.elapsed()
        })
        .collect()
}

fn latencies(samples: u32, redis: &RedisServer) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ws")).unwrap();
    // One memory entry: every get after the flush reads redb.
    let disk_only = StoreSettings { memory_entries: 1, ..StoreSettings::default() };
    let store = Store::open(&dir.path().join("cache"), &dir.path().join("ws"), &disk_only);
    let mut put = timed(samples, |i| store.put(key(i), &findings(i), tags(i)));
    let t = Instant::now();
    store.flush();
    let flush = t.elapsed();
    let mut get_disk = timed(samples, |i| assert!(store.get(&key(i)).is_some()));
    drop(store);

    let memory = Store::memory(&StoreSettings::default());
    for i in 0..samples {
        memory.put(key(i), &findings(i), tags(i));
    }
    let mut get_memory = timed(samples, |i| assert!(memory.get(&key(i)).is_some()));

    let team = RedisBackend::connect(&redis.url(), "bench", Duration::from_millis(200));
    assert!(team.wait_connected(Duration::from_secs(5)), "redis is up");
    let values: Vec<Vec<u8>> = (0..samples).map(|i| serde_json::to_vec(&findings(i)).unwrap()).collect();
    let mut put_redis = timed(samples, |i| team.put(&key(i).0, &values[i as usize], Duration::from_secs(600)));
    std::thread::sleep(Duration::from_millis(500));
    let mut get_redis = timed(samples, |i| assert!(team.get(&key(i).0).is_some(), "redis entry {i}"));

    println!("{samples} entries per tier (values of 0–3 findings)");
    println!("  memory LRU get       {}", summary(&mut get_memory));
    println!("  redb get (no LRU)    {}", summary(&mut get_disk));
    println!("  redb put (queue)     {}   flush of all: {:.1} ms", summary(&mut put), flush.as_secs_f64() * 1e3);
    println!("  Redis get (loopback) {}", summary(&mut get_redis));
    println!("  Redis put (enqueue)  {}", summary(&mut put_redis));
}

fn scan(root: &Path, cache: &Path) -> (f64, serde_json::Value) {
    let t = Instant::now();
    let out = common::command()
        // The workspace file names the team's Redis: a sensitive setting, so trust it.
        .args(["scan", ".", "--format", "json", "--fail-on", "none", "--trust-workspace-config"])
        .current_dir(root)
        .env("XDG_CACHE_HOME", cache)
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (secs, serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["stats"].clone())
}

fn rescans(files: u32, redis: &RedisServer) {
    let ws = tempfile::tempdir().unwrap();
    for i in 0..files {
        let body = format!(
            "\"\"\"Module {i}.\"\"\"\nimport json\n\n\ndef load_{i}(text, default=None):\n    \"\"\"Parse text.\"\"\"\n    if text == None:\n        return default\n    return json.loads(text)\n"
        );
        std::fs::write(ws.path().join(format!("mod_{i:05}.py")), body).unwrap();
    }
    std::fs::write(ws.path().join("review-lsp.toml"), format!("[cache]\nredis_url = \"{}\"\n", redis.url())).unwrap();
    let caches = tempfile::tempdir().unwrap();
    let (cold, stats) = scan(ws.path(), &caches.path().join("warm"));
    assert_eq!(stats["cache_hits"], 0);
    println!("{files} files: cold scan {cold:.2} s (fills redb and Redis)");
    let mut from_redb = Vec::new();
    let mut from_redis = Vec::new();
    for run in 0..3 {
        let (secs, stats) = scan(ws.path(), &caches.path().join("warm"));
        assert_eq!(stats["cache_hits"], files, "{stats}");
        from_redb.push(secs);
        let (secs, stats) = scan(ws.path(), &caches.path().join(format!("empty-{run}")));
        assert_eq!(stats["cache_hits"], files, "{stats}");
        from_redis.push(secs);
    }
    from_redb.sort_by(f64::total_cmp);
    from_redis.sort_by(f64::total_cmp);
    println!("  warm rescan from redb:        median {:.2} s (min {:.2})", from_redb[1], from_redb[0]);
    println!("  warm rescan from Redis alone: median {:.2} s (min {:.2})", from_redis[1], from_redis[0]);
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let redis = RedisServer::start();
    latencies(if measuring { 20_000 } else { 500 }, &redis);
    rescans(if measuring { 10_000 } else { 300 }, &redis);
}
