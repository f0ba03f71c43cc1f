//! Start → diagnostics latency through the real stdio protocol, and the idle server's RSS.
//!
//! Each run starts a fresh server process, completes the handshake, opens a ~200-line
//! Python file and waits for its publishDiagnostics. Cold runs use an empty cache dir;
//! warm runs reuse one. Run: `cargo bench --bench lsp_latency` (BENCH_RUNS=N to change 60).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{LspClient, Options, file_uri};

fn sample_file() -> String {
    let mut s = String::from("\"\"\"Inventory helpers.\"\"\"\nimport json\nimport subprocess\n\n\n");
    for i in 0..18 {
        s.push_str(&format!(
            "def handler_{i}(items, limit=10):\n    \"\"\"Sum the prices of the first items.\"\"\"\n    total = 0\n    for item in items[:limit]:\n        if item.get(\"price\") is not None:\n            total += item[\"price\"]\n    if total == None:\n        return 0\n    return json.dumps({{\"total\": total, \"n\": {i}}})\n\n\n"
        ));
    }
    s.push_str("def run(cmd):\n    return subprocess.run(cmd, shell=True)\n");
    s
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

fn one_run(root: &std::path::Path, text: &str) -> (f64, LspClient) {
    let uri = file_uri(&root.join("inventory.py"));
    let started = Instant::now();
    let mut c = LspClient::start(root, Options { progress: false, log_level: "info", ..Options::default() });
    c.open(&uri, "python", 1, text);
    let d = c.diagnostics(&uri, Some(1));
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    assert!(!d["diagnostics"].as_array().unwrap().is_empty(), "the sample has findings");
    (ms, c)
}

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: a smoke run then proves
    // the bench works without spending CI time on the measurement.
    let measuring = std::env::args().any(|a| a == "--bench");
    let default_runs = if measuring { 60 } else { 2 };
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(default_runs);
    let text = sample_file();
    println!("file: {} lines; runs: {runs}; binary: {}", text.lines().count(), common::bin());
    for (label, fresh_cache) in [("cold cache", true), ("warm cache", false)] {
        let warm_root = tempfile::tempdir().unwrap();
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let fresh = tempfile::tempdir().unwrap();
            let root = if fresh_cache { fresh.path() } else { warm_root.path() };
            let (ms, c) = one_run(root, &text);
            times.push(ms);
            drop(c);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "start→diagnostics ({label}): median {:.1} ms, p95 {:.1} ms, min {:.1} ms, max {:.1} ms",
            percentile(&times, 50.0),
            percentile(&times, 95.0),
            times[0],
            times[times.len() - 1]
        );
    }
    let root = tempfile::tempdir().unwrap();
    let (_, c) = one_run(root.path(), &text);
    std::thread::sleep(Duration::from_secs(1));
    let pid = c.pid();
    println!("idle RSS after one review: {:.1} MiB", common::proc_status_kib(pid, "VmRSS") as f64 / 1024.0);
}
