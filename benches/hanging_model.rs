//! Edit → offline diagnostics while model calls hang (issue 14 point 3): the offline phase
//! must not wait for workers held by model calls.
//!
//! A wiremock model on loopback answers after 30 s. Eight open files' model calls go out and
//! hang; then a ninth file is edited again and again (a full-text change each time) and the
//! time from didChange to the publishDiagnostics of that version is measured.
//! Run: `cargo bench --bench hanging_model` (BENCH_RUNS=N to change 100).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use serde_json::json;

const HANGING: usize = 8;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: a smoke run only.
    let measuring = std::env::args().any(|a| a == "--bench");
    let runs: usize =
        std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(if measuring { 100 } else { 3 });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (server, arrivals) = runtime.block_on(common::mock_llm::recording_openai(Duration::from_secs(30)));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let opts = common::Options {
        progress: false,
        log_level: "info",
        init_options: json!({
            "review": {"debounce_ms": 0},
            "llm": {"provider": "openai", "base_url": format!("{}/v1", server.uri()), "model": "mock-model", "batch_max_files": 1},
            "limits": {"requests_per_minute": 60000, "tokens_per_minute": 100000000u64, "burst": 1000,
                       "max_concurrency": 64, "per_user_requests_per_minute": 60000, "per_user_burst": 1000},
        }),
        ..common::Options::default()
    };
    let mut c = common::LspClient::start(root, opts);
    for i in 0..HANGING {
        let uri = common::file_uri(&root.join(format!("open{i}.py")));
        c.open(&uri, "python", 1, &format!("def run{i}(x):\n    return eval(x)\n"));
    }
    let deadline = Instant::now() + common::TIMEOUT;
    while arrivals.lock().unwrap().len() < HANGING {
        assert!(Instant::now() < deadline, "the model calls never went out");
        std::thread::sleep(Duration::from_millis(10));
    }
    let uri = common::file_uri(&root.join("active.py"));
    c.open(&uri, "python", 1, "def f(x):\n    return eval(x)\n");
    c.diagnostics(&uri, Some(1));
    let mut times = Vec::with_capacity(runs);
    for run in 0..runs {
        let version = run as i32 + 2;
        let text = format!("def f{run}(x):\n    return eval(x)\n");
        let started = Instant::now();
        c.change(&uri, version, json!([{"text": text}]));
        c.diagnostics(&uri, Some(version));
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "edit → offline diagnostics with {HANGING} model calls hanging ({runs} edits): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        percentile(&times, 50.0),
        percentile(&times, 95.0),
        times[times.len() - 1]
    );
    drop(c);
    drop(server);
}
