//! Proof under stress, chaos: the real binary against a model that misbehaves, and a server
//! killed again and again. Each test is bounded (well under a minute on two cores in debug).
//!
//! - 500 files scanned (by `scan` and by the server's workspace scan) against a mock that
//!   answers a seeded random mix: 30 % 503/529, 429 storms with `retry-after`, garbage,
//!   truncated and fenced replies, plus one scripted outage. Nothing panics, every file ends
//!   either reviewed by the model or marked unavailable, the breaker opens and recovers, and
//!   the requests stay within what the limiter allows. (While the breaker is open, calls are
//!   refused at once, so the files whose calls come after the outage are all unavailable:
//!   failing fast is the breaker's job; the offline findings of every file still appear.)
//! - The server killed with SIGKILL mid-scan 20 times on one workspace: the store opens every
//!   time, is never moved aside as corrupt, and loses nothing committed before.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::mock_llm::{Reviewer, fenced, plain};
use common::{LspClient, Options, file_uri};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const FILES: usize = 500;
/// The limiter's allowance for one endpoint: requests per second and burst.
const RATE_PER_SEC: f64 = 20.0;
const BURST: usize = 10;

/// Fast limits: a rate the test can check, short backoff, a quick breaker. The breaker opens
/// on 8 failures in a row (the scripted outage; 30 % random failures give such a streak
/// about once in 15,000 calls), not on the failure rate, so the mix plays out before it opens.
const LIMITS_TOML: &str = "[review]\nagents = [\"security\"]\n\n[llm]\nbatch_max_files = 2\n\n[limits]\n\
requests_per_minute = 1200\nburst = 10\ntokens_per_minute = 0\nper_user_requests_per_minute = 0\n\
max_concurrency = 4\nretry_attempts = 3\nretry_base_delay_ms = 20\nretry_max_delay_ms = 200\n\
breaker_failures = 8\nbreaker_min_calls = 100000\nbreaker_open_secs = 1\nbreaker_max_open_secs = 2\n\
throttle_quiet_secs = 1\nthrottle_recover_successes = 3\n";
/// Where the scripted outage falls, in request order: after most of the mix.
const OUTAGE: std::ops::Range<usize> = 80..96;

fn project(dir: &Path) {
    std::fs::write(dir.join("review-lsp.toml"), LIMITS_TOML).unwrap();
    for i in 0..FILES {
        std::fs::write(dir.join(format!("m{i:03}.py")), format!("def f{i}(x):\n    return eval(x)\n")).unwrap();
    }
}

fn all_files() -> BTreeSet<String> {
    (0..FILES).map(|i| format!("m{i:03}.py")).collect()
}

/// The misbehaving model. Request `n` is answered by a seeded random draw, except during
/// `outage` (consecutive 503s, which open the breaker) and once `healthy` is set.
struct Chaos {
    count: AtomicUsize,
    rng: Mutex<u64>,
    storm_left: AtomicUsize,
    outage: std::ops::Range<usize>,
    healthy: Arc<AtomicBool>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

fn error(status: u16, kind: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"error": {"message": format!("mock {kind}"), "type": kind, "code": kind}}))
}

fn reply(text: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "choices": [{"message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 7}
    }))
}

impl Respond for Chaos {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.arrivals.lock().unwrap().push(Instant::now());
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        if self.healthy.load(Ordering::SeqCst) {
            return Reviewer { reply: plain }.respond(req);
        }
        if self.outage.contains(&n) {
            return error(503, "overloaded");
        }
        // A storm: several 429s in a row, each saying when to come back.
        if self.storm_left.load(Ordering::SeqCst) > 0 {
            self.storm_left.fetch_sub(1, Ordering::SeqCst);
            return error(429, "rate_limit_exceeded")
                .insert_header("retry-after", "1")
                .insert_header("retry-after-ms", "150");
        }
        let draw = {
            let mut state = self.rng.lock().unwrap();
            *state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (*state >> 33) % 100
        };
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let user = body["messages"][1]["content"].as_str().unwrap_or_default().to_string();
        match draw {
            0..15 => error(503, "overloaded"),
            15..30 => error(529, "overloaded_error"),
            30..34 => {
                self.storm_left.store(2, Ordering::SeqCst);
                error(429, "rate_limit_exceeded")
                    .insert_header("retry-after", "1")
                    .insert_header("retry-after-ms", "150")
            }
            34..46 => reply("I cannot help with that <html><body>502 Bad Gateway</body>".into()),
            46..56 => {
                // Cut off by the token limit, somewhere in the middle.
                let full = plain(&user);
                reply(full[..full.len() * 2 / 3].to_string())
            }
            56..66 => reply(fenced(&user)),
            _ => reply(plain(&user)),
        }
    }
}

async fn chaos_mock(
    outage: std::ops::Range<usize>,
    seed: u64,
) -> (MockServer, Arc<AtomicBool>, Arc<Mutex<Vec<Instant>>>) {
    let server = MockServer::start().await;
    let healthy = Arc::new(AtomicBool::new(false));
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let chaos = Chaos {
        count: AtomicUsize::new(0),
        rng: Mutex::new(seed),
        storm_left: AtomicUsize::new(0),
        outage,
        healthy: healthy.clone(),
        arrivals: arrivals.clone(),
    };
    Mock::given(method("POST")).and(path("/v1/chat/completions")).respond_with(chaos).mount(&server).await;
    (server, healthy, arrivals)
}

/// Over every interval between two arrivals, no more requests than the token bucket allows
/// (rate × time + burst), with a little slack for the time between admission and arrival.
fn assert_within_allowance(arrivals: &[Instant], what: &str) {
    assert!(!arrivals.is_empty(), "{what}: no requests");
    for i in 0..arrivals.len() {
        for j in i..arrivals.len() {
            let count = j - i + 1;
            let secs = (arrivals[j] - arrivals[i]).as_secs_f64() + 0.1;
            let allowed = BURST as f64 + RATE_PER_SEC * secs + 1.0;
            assert!(
                count as f64 <= allowed,
                "{what}: {count} requests in {secs:.2} s, more than the limiter allows ({allowed:.1})"
            );
        }
    }
    let span = (*arrivals.last().unwrap() - arrivals[0]).as_secs_f64();
    eprintln!(
        "{what}: {} requests in {span:.1} s (allowance {:.0})",
        arrivals.len(),
        BURST as f64 + RATE_PER_SEC * span
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_500_file_scan_rides_out_a_misbehaving_model() {
    let started = Instant::now();
    let (server, _, arrivals) = chaos_mock(OUTAGE, 0x5EED).await;
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let base = format!("{}/v1", server.uri());
    let root = dir.path().to_path_buf();
    // The test's own limits loosen the defaults: only a trusted file may.
    let trust = ["--trust-workspace-config"];
    let out = tokio::task::spawn_blocking(move || common::scan_with_model(&root, &base, &trust)).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stats"]["files_scanned"], FILES, "{}", report["stats"]);

    // Every file: the model's finding, or a warning naming it.
    let reviewed: BTreeSet<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "python/security/llm")
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    let unavailable: BTreeSet<String> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("warning: LLM review unavailable for "))
        .map(|l| l.split(": ").next().unwrap().to_string())
        .collect();
    let offline: BTreeSet<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "python/security/eval")
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(offline, all_files(), "offline findings never depend on the model");
    let accounted: BTreeSet<String> = reviewed.union(&unavailable).cloned().collect();
    let missing: Vec<String> = all_files().difference(&accounted).cloned().collect();
    assert!(missing.is_empty(), "{} files neither reviewed nor marked unavailable: {missing:?}", missing.len());
    assert!(!reviewed.is_empty() && !unavailable.is_empty(), "the chaos had both outcomes");
    assert!(stderr.contains("the provider is failing"), "the breaker opened during the outage:\n{stderr}");
    for why in ["overloaded", "unparseable reply", "cut off"] {
        assert!(stderr.contains(why), "no file was unavailable for `{why}`; the mix is not what it claims");
    }
    assert_within_allowance(&arrivals.lock().unwrap(), "scan");
    let calls = report["stats"]["llm_calls"].as_u64().unwrap();
    eprintln!(
        "scan: {} reviewed by the model, {} unavailable, {calls} calls, in {:?}",
        reviewed.len(),
        unavailable.len(),
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_scans_500_files_through_chaos_and_its_breaker_recovers() {
    let started = Instant::now();
    let (server, healthy, arrivals) = chaos_mock(OUTAGE, 0xC4A05).await;
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let base = format!("{}/v1", server.uri());
    let root = dir.path().to_path_buf();
    let heal = healthy.clone();
    let (result, before, after, states, published) = tokio::task::spawn_blocking(move || {
        let opts = Options {
            init_options: json!({"review": {"debounce_ms": 20},
                                 "llm": {"provider": "openai", "base_url": base, "model": "mock-model"}}),
            log_level: "info",
            // The test's own limits loosen the defaults: only a trusted workspace may.
            env: vec![("REVIEW_LSP_TRUST_WORKSPACE".into(), "1".into())],
            ..Options::default()
        };
        let mut c = LspClient::start(&root, opts);
        let id = c.send_request("workspace/executeCommand", json!({"command": "review-lsp.scanWorkspace"}));
        let result = c.response(id, Duration::from_secs(50)).unwrap_or_else(|e| panic!("scan failed: {e}"));
        let before = c.request("workspace/executeCommand", json!({"command": "review-lsp.showStats"}));
        let messages = c.drain(Duration::from_millis(100));

        // The model is back: after the breaker's open time an edit probes it and closes it.
        heal.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(2100));
        let uri = file_uri(&root.join("after.py"));
        c.open(&uri, "python", 1, "def after(x):\n    return eval(x)\n");
        let deadline = Instant::now() + common::TIMEOUT;
        loop {
            let d = c.diagnostics(&uri, Some(1));
            if common::codes(&d).contains(&"python/security/llm".to_string()) {
                break;
            }
            assert!(Instant::now() < deadline, "no model finding after recovery");
        }
        let after = c.request("workspace/executeCommand", json!({"command": "review-lsp.showStats"}));
        // Status notifications are polled every 250 ms: collect the ones sent since.
        let mut messages = messages;
        messages.extend(c.drain(Duration::from_millis(300)));
        let stderr = c.stderr();
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(c.shutdown().success());
        let states: BTreeSet<String> = messages
            .iter()
            .filter(|m| m["method"] == "review-lsp/status")
            .map(|m| m["params"]["state"].as_str().unwrap().to_string())
            .collect();
        let published: BTreeSet<String> = messages
            .iter()
            .filter(|m| m["method"] == "textDocument/publishDiagnostics")
            .filter(|m| common::codes(&m["params"]).contains(&"python/security/eval".to_string()))
            .map(|m| m["params"]["uri"].as_str().unwrap().rsplit('/').next().unwrap().to_string())
            .collect();
        (result, before, after, states, published)
    })
    .await
    .unwrap();
    assert_eq!(result["files_scanned"], FILES, "{result}");
    assert_eq!(result["cancelled"], false, "{result}");
    assert_eq!(published, all_files(), "every file's diagnostics were published");
    let agents = before["llm"]["agents"].as_object().unwrap();
    assert_eq!(agents.keys().collect::<Vec<_>>(), ["security"], "the workspace settings apply: {before}");

    let breaker = |stats: &Value| stats["llm"]["limits"]["endpoints"][0]["breaker"].clone();
    assert!(breaker(&before)["opened_count"].as_u64().unwrap() >= 1, "the breaker opened: {}", breaker(&before));
    assert!(states.contains("breaker_open"), "the editor was told: {states:?}");
    assert_eq!(breaker(&after)["state"], "closed", "and it recovered: {}", breaker(&after));
    assert!(before["llm"]["calls"].as_u64().unwrap() >= (FILES / 2) as u64, "{}", before["llm"]);
    assert_within_allowance(&arrivals.lock().unwrap(), "server");
    eprintln!(
        "server: breaker {} after the scan, {} at the end, in {:?}",
        breaker(&before),
        breaker(&after),
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------
// kill -9

const ROUNDS: usize = 20;

fn cache_stats(root: &Path, cache: &Path) -> Value {
    let out = common::command()
        .args(["cache", "stats", "--format", "json", "--root"])
        .arg(root)
        .env("XDG_CACHE_HOME", cache)
        .env_remove("REVIEW_LSP_LOG")
        .output()
        .unwrap();
    assert!(out.status.success(), "cache stats failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_store_survives_20_kills_mid_scan() {
    let started = Instant::now();
    // A slow model keeps every scan busy, so each kill lands mid-scan, with calls in flight;
    // the offline results planned meanwhile are committed by the store's writer.
    let (mock, _) = common::mock_llm::recording_openai(Duration::from_millis(400)).await;
    let base = format!("{}/v1", mock.uri());
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().to_path_buf();
    tokio::task::spawn_blocking(move || kill_rounds(&root, &base)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
}

fn kill_rounds(root: &Path, base: &str) {
    let cache = root.join(".test-cache");
    for i in 0..200 {
        std::fs::write(
            root.join(format!("base{i:03}.py")),
            format!("def b{i}(x):\n    if x == None:\n        return eval(x)\n"),
        )
        .unwrap();
    }
    let opts = || Options {
        init_options: json!({"review": {"debounce_ms": 50},
                             "llm": {"provider": "openai", "base_url": base, "model": "mock-model"}}),
        log_level: "info",
        ..Options::default()
    };
    let mut last_entries = 0;
    let mut kills_mid_scan = 0;
    for round in 0..ROUNDS {
        // New work every round, so each scan has something to commit when it is killed.
        for i in 0..15 {
            std::fs::write(
                root.join(format!("r{round:02}_{i:02}.py")),
                format!("def r{round}_{i}(x):\n    if x == None:\n        return eval(x) + {round}\n"),
            )
            .unwrap();
        }
        let mut c = LspClient::start(root, opts());
        let id = c.send_request("workspace/executeCommand", json!({"command": "review-lsp.scanWorkspace"}));
        // Kill at a moment that moves every round, from 150 ms to 850 ms into the scan.
        let kill_at = Instant::now() + Duration::from_millis(150 + (round as u64 * 89) % 700);
        let mut finished = false;
        while Instant::now() < kill_at && !finished {
            let batch = c.drain(Duration::from_millis(10));
            finished = batch.iter().any(|m| m.get("method").is_none() && m["id"] == id);
        }
        if !finished {
            kills_mid_scan += 1;
        }
        // SAFETY: a plain kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(c.pid() as i32, libc::SIGKILL) }, 0);
        drop(c); // reaps the child

        let stats = cache_stats(root, &cache);
        assert_eq!(stats["persistent"], true, "round {round}: the store did not open: {stats}");
        let entries = stats["entries"].as_u64().unwrap();
        assert!(entries >= last_entries, "round {round}: entries went from {last_entries} to {entries}");
        last_entries = entries;
        let corrupt: Vec<String> = std::fs::read_dir(cache.join("review-lsp"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".corrupt-"))
            .collect();
        assert!(corrupt.is_empty(), "round {round}: the store was moved aside as corrupt: {corrupt:?}");
    }
    assert!(kills_mid_scan >= ROUNDS - 2, "only {kills_mid_scan} of {ROUNDS} kills came mid-scan");
    assert!(last_entries > 0, "nothing was ever committed");

    // A last, complete run (offline, to be quick) on the same store: it opens and works.
    let mut c = LspClient::start(root, Options::default());
    let id = c.send_request("workspace/executeCommand", json!({"command": "review-lsp.scanWorkspace"}));
    let result = c.response(id, Duration::from_secs(40)).unwrap();
    assert_eq!(result["files_scanned"], 200 + 15 * ROUNDS, "{result}");
    let stats = c.request("workspace/executeCommand", json!({"command": "review-lsp.showStats"}));
    assert_eq!(stats["cache"]["store"]["persistent"], true, "{stats}");
    assert!(c.shutdown().success());
    let final_entries = cache_stats(root, &cache)["entries"].as_u64().unwrap();
    assert!(final_entries >= last_entries);
    eprintln!(
        "{ROUNDS} kills ({kills_mid_scan} mid-scan); entries {last_entries} after the kills, {final_entries} after a full run"
    );
}
