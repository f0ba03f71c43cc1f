//! The team tier with real processes and a real redis-server: results shared between
//! machines' caches, Redis killed mid-scan and brought back, and one rate quota held across
//! processes (asserted on the request times the mock model sees).

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::mock_llm::Arrivals;
use common::redis::RedisServer;
use serde_json::Value;

fn project(dir: &Path, files: usize, redis: &str, extra: &str) {
    for i in 0..files {
        std::fs::write(
            dir.join(format!("m{i:03}.py")),
            format!("def f{i}(x):\n    if x == None:\n        return eval(x)\n"),
        )
        .unwrap();
    }
    std::fs::write(dir.join("review-lsp.toml"), format!("[cache]\nredis_url = \"{redis}\"\n{extra}")).unwrap();
}

/// `scan` with its own local cache dir (`cache`): a different machine, as far as redb goes.
fn scan(dir: &Path, cache: &str, args: &[&str]) -> Output {
    common::command()
        .args(["scan", ".", "--format", "json", "--fail-on", "none", "--trust-workspace-config"])
        .args(args)
        .current_dir(dir)
        .env("XDG_CACHE_HOME", dir.join(cache))
        .output()
        .unwrap()
}

fn stats(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.to_lowercase().contains("error"), "the user sees no error: {stderr}");
    serde_json::from_slice::<Value>(&out.stdout).unwrap()["stats"].clone()
}

#[test]
fn results_are_shared_and_a_redis_outage_only_costs_speed() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    project(dir, 300, &redis.url(), "");

    let first = stats(&scan(dir, "machine-a", &[]));
    assert_eq!((first["files_scanned"].as_u64(), first["cache_hits"].as_u64()), (Some(300), Some(0)));
    // Another machine: nothing in its redb, everything in the team's Redis.
    let second = stats(&scan(dir, "machine-b", &[]));
    assert_eq!(second["cache_hits"], 300, "{second}");
    // Written back to machine B's redb: with Redis gone it still hits locally.
    redis.kill();
    let local = stats(&scan(dir, "machine-b", &[]));
    assert_eq!(local["cache_hits"], 300, "{local}");

    // Redis killed in the middle of a scan on a third machine: the scan completes.
    redis.restart();
    let child = common::command()
        .args(["scan", ".", "--format", "json", "--fail-on", "none", "--no-cache", "--trust-workspace-config"])
        .current_dir(dir)
        .env("XDG_CACHE_HOME", dir.join("machine-c"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(60));
    redis.kill();
    let during = stats(&child.wait_with_output().unwrap());
    assert_eq!(during["files_scanned"], 300, "{during}");
    let down = stats(&scan(dir, "machine-d", &[]));
    assert_eq!((down["files_scanned"].as_u64(), down["cache_hits"].as_u64()), (Some(300), Some(0)));

    // Back again (empty: no persistence): sharing resumes.
    redis.restart();
    let refill = stats(&scan(dir, "machine-e", &[]));
    assert_eq!(refill["cache_hits"], 0);
    let shared = stats(&scan(dir, "machine-f", &[]));
    assert_eq!(shared["cache_hits"], 300, "sharing resumed: {shared}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_quota_holds_across_processes() {
    let (server, arrivals): (_, Arrivals) = common::mock_llm::recording_openai(Duration::from_millis(20)).await;
    let redis = RedisServer::start();
    // Two workspaces (two developers) on one team quota: one request every 250 ms, no burst.
    let limits = "[limits]\nrequests_per_minute = 240\nburst = 1\n[llm]\nbatch_max_files = 1\n";
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    for d in &dirs {
        project(d.path(), 4, &redis.url(), limits);
    }
    let base = format!("{}/v1", server.uri());
    let started = Instant::now();
    let runs: Vec<_> = dirs
        .iter()
        .map(|d| {
            let (dir, base) = (d.path().to_path_buf(), base.clone());
            std::thread::spawn(move || {
                scan(&dir, "cache", &["--provider", "openai", "--model", "mock-model", "--base-url", &base])
            })
        })
        .collect();
    for run in runs {
        let out = run.join().unwrap();
        assert_eq!(stats(&out)["files_scanned"], 4);
    }
    let times: Vec<Instant> = arrivals.lock().unwrap().iter().map(|(t, _)| *t).collect();
    let n = times.len();
    assert!(n >= 8, "both scans called the model: {n} calls");
    let span = times[n - 1].duration_since(times[0]);
    // One shared quota: n calls need (n - 1) intervals of 250 ms. Two separate quotas would
    // take about half that, the two processes running side by side.
    let floor = Duration::from_millis(250 * (n as u64 - 1) * 85 / 100);
    assert!(span >= floor, "{n} calls in {span:?}; a shared quota needs at least {floor:?}");
    eprintln!("{n} calls from two processes over {span:?} (total {:?})", started.elapsed());
}

/// Two servers (two developers: different workspaces, different redb files) share one Redis:
/// what the first paid the model for, the second gets without a single call.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_gets_the_first_ones_llm_results_from_redis() {
    let server = common::mock_llm::openai(common::mock_llm::plain).await;
    let redis = RedisServer::start();
    let base = format!("{}/v1", server.uri());
    let url = redis.url();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let roots: Vec<std::path::PathBuf> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
    for root in &roots {
        for i in 0..3 {
            std::fs::write(root.join(format!("m{i}.py")), format!("def f{i}(x):\n    return eval(x)\n")).unwrap();
        }
    }
    let calls_after = |n: usize| {
        let (roots, base, url) = (roots.clone(), base.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            let opts = common::Options {
                init_options: serde_json::json!({
                    "llm": {"provider": "openai", "base_url": base, "model": "mock-model"},
                    "cache": {"redis_url": url},
                }),
                ..common::Options::default()
            };
            let mut c = common::LspClient::start(&roots[n], opts);
            let result = c.request(
                "workspace/executeCommand",
                serde_json::json!({"command": "review-lsp.scanWorkspace", "arguments": []}),
            );
            assert_eq!(result["files_scanned"], 3, "{result}");
            let stats = c.request("workspace/executeCommand", serde_json::json!({"command": "review-lsp.showStats"}));
            assert!(c.shutdown().success());
            stats
        })
    };
    let first = calls_after(0).await.unwrap();
    let sent = server.received_requests().await.unwrap().len();
    assert!(sent > 0, "the first server called the model");
    let second = calls_after(1).await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), sent, "the second server made no LLM call");
    assert_eq!(first["cache"]["store"]["team"]["state"]["status"], "up", "{first}");
    assert!(second["cache"]["store"]["team_hits"].as_u64().unwrap() >= 3, "{second}");
}
