//! Load on the real server over stdio JSON-RPC (loopback only, bounded in time): 100
//! concurrent `review-lsp.reviewFile` requests, 500 open documents edited in rounds, and a 10×
//! spike of `review-lsp.scanWorkspace` requests. For each: how many requests were answered and
//! how many were lost, the scheduler's deepest queue (all lanes, polled with
//! `review-lsp.showStats` during the burst) and the server's peak RSS (`VmHWM`).
//!
//! Every scenario runs in a fresh server process, so the peak RSS is that scenario's.
//! "Lost" means a request that never got an answer, or an open document whose final version
//! never got its diagnostics, before the scenario's deadline.
//!
//! Run: `cargo bench --bench load`. Without `--bench` (as `cargo test --all-targets` runs it)
//! the sizes shrink to a smoke run of a few seconds.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{LspClient, Options, file_uri};
use serde_json::{Value, json};

const REVIEW_FILE: &str = "review-lsp.reviewFile";
const SHOW_STATS: &str = "review-lsp.showStats";
const SCAN: &str = "review-lsp.scanWorkspace";

/// A ~60-line module with a few findings; `i` keeps every file's text (and cache key) apart.
fn module(i: usize) -> String {
    let mut s = format!("\"\"\"Module {i}.\"\"\"\nimport json\nimport subprocess\n\n\n");
    for f in 0..5 {
        s.push_str(&format!(
            "def handler_{i}_{f}(items, limit=10):\n    \"\"\"Total the first items.\"\"\"\n    total = 0\n    for item in items[:limit]:\n        if item.get(\"price\") == None:\n            continue\n        total += item[\"price\"]\n    return json.dumps({{\"total\": total, \"n\": {i}}})\n\n\n"
        ));
    }
    s.push_str(&format!("def run_{i}(cmd):\n    return subprocess.run(cmd, shell=True)\n"));
    s
}

/// Reads everything the server sends and sorts it: responses by id, the newest published
/// version per document, and every URI that got diagnostics.
struct Tracker {
    c: LspClient,
    responses: HashMap<i64, Value>,
    versions: HashMap<String, i64>,
    published: HashSet<String>,
    max_depth: usize,
}

impl Tracker {
    fn new(c: LspClient) -> Tracker {
        Tracker { c, responses: HashMap::new(), versions: HashMap::new(), published: HashSet::new(), max_depth: 0 }
    }

    fn pump(&mut self, window: Duration) {
        for m in self.c.drain(window) {
            if m["method"] == "textDocument/publishDiagnostics" {
                let uri = m["params"]["uri"].as_str().unwrap_or_default().to_string();
                if let Some(v) = m["params"]["version"].as_i64() {
                    let e = self.versions.entry(uri.clone()).or_insert(v);
                    *e = (*e).max(v);
                }
                self.published.insert(uri);
            } else if m.get("id").is_some() && m.get("method").is_none() {
                if let Some(id) = m["id"].as_i64() {
                    self.responses.insert(id, m);
                }
            }
        }
    }

    /// Waits (pumping) until `done` holds or `deadline` passes; true if it held.
    fn until(&mut self, deadline: Instant, mut done: impl FnMut(&Tracker) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            self.pump(Duration::from_millis(5));
        }
    }

    fn send(&mut self, command: &str, args: Value) -> i64 {
        self.c.send_request("workspace/executeCommand", json!({"command": command, "arguments": args}))
    }

    /// Asks for the scheduler's queue depth without waiting for the answer; see [`Tracker::depths`].
    fn poll_stats(&mut self) -> i64 {
        self.send(SHOW_STATS, json!([]))
    }

    /// Folds the queue depth of every answered stats poll into `max_depth`.
    fn depths(&mut self, polls: &[i64]) {
        for id in polls {
            if let Some(r) = self.responses.get(id) {
                let lanes = &r["result"]["lanes"];
                let depth: u64 =
                    ["active", "open", "workspace"].iter().filter_map(|l| lanes[l]["depth"].as_u64()).sum();
                self.max_depth = self.max_depth.max(depth as usize);
            }
        }
    }

    fn stats(&mut self, deadline: Instant) -> Value {
        let id = self.poll_stats();
        self.until(deadline, |t| t.responses.contains_key(&id));
        self.depths(&[id]);
        self.responses.get(&id).map(|r| r["result"].clone()).unwrap_or_default()
    }
}

struct Row {
    scenario: String,
    requests: usize,
    completed: usize,
    lost: usize,
    max_depth: usize,
    peak_rss_kib: u64,
    wall: Duration,
    note: String,
}

/// A server with a 50 ms debounce; without `cache`, every review parses and runs the rules.
fn start(root: &Path, cache: bool) -> LspClient {
    LspClient::start(
        root,
        Options {
            log_level: "info",
            init_options: json!({"review": {"debounce_ms": 50}, "cache": {"enabled": cache}}),
            ..Options::default()
        },
    )
}

/// Opens `n` documents and waits until each has its first diagnostics.
fn open_all(t: &mut Tracker, root: &Path, n: usize, deadline: Instant) -> Vec<(String, String)> {
    let docs: Vec<(String, String)> =
        (0..n).map(|i| (file_uri(&root.join(format!("doc_{i:04}.py"))), module(i))).collect();
    for (uri, text) in &docs {
        t.c.open(uri, "python", 1, text);
    }
    let uris: Vec<String> = docs.iter().map(|d| d.0.clone()).collect();
    t.until(deadline, |t| uris.iter().all(|u| t.versions.get(u).is_some_and(|&v| v >= 1)));
    docs
}

/// Scenario 1: `requests` reviewFile requests on as many open documents, all sent before any
/// answer is read. The cache is off, so each is a full review rather than a cache hit.
fn concurrent_reviews(requests: usize, budget: Duration) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let deadline = Instant::now() + budget;
    let mut t = Tracker::new(start(dir.path(), false));
    let docs = open_all(&mut t, dir.path(), requests, deadline);
    let started = Instant::now();
    let mut ids = Vec::new();
    let mut polls = Vec::new();
    for (i, (uri, _)) in docs.iter().enumerate() {
        ids.push(t.send(REVIEW_FILE, json!([uri])));
        if i % 10 == 9 {
            polls.push(t.poll_stats());
        }
    }
    let all = t.until(deadline, |t| ids.iter().all(|id| t.responses.contains_key(id)));
    let wall = started.elapsed();
    t.until(deadline, |t| polls.iter().all(|id| t.responses.contains_key(id)));
    t.depths(&polls);
    let answered: Vec<&Value> = ids.iter().filter_map(|id| t.responses.get(id)).collect();
    let completed = answered.iter().filter(|r| r["result"]["findings"].is_u64()).count();
    let superseded = answered.iter().filter(|r| r["result"]["superseded"] == true).count();
    let errors = answered.iter().filter(|r| r.get("error").is_some()).count();
    let rss = common::proc_status_kib(t.c.pid(), "VmHWM");
    assert!(all, "{} of {requests} reviewFile requests unanswered", requests - answered.len());
    t.c.shutdown();
    Row {
        scenario: format!("{requests} concurrent reviewFile (no cache)"),
        requests,
        completed,
        lost: requests - answered.len(),
        max_depth: t.max_depth,
        peak_rss_kib: rss,
        wall,
        note: format!("{superseded} superseded, {errors} errors"),
    }
}

/// Scenario 2: `n` open documents, then `rounds` rounds of a didChange on every one of them, as
/// fast as they can be written; every document's final version must get its diagnostics.
fn edited_documents(n: usize, rounds: i32, budget: Duration) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let deadline = Instant::now() + budget;
    let mut t = Tracker::new(start(dir.path(), true));
    let started = Instant::now();
    let docs = open_all(&mut t, dir.path(), n, deadline);
    let mut polls = Vec::new();
    for round in 0..rounds {
        for (i, (uri, _)) in docs.iter().enumerate() {
            let edit = format!("EDITED_{round} = {i}\n");
            t.c.change(
                uri,
                round + 2,
                json!([{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": edit}]),
            );
            if i % 50 == 49 {
                polls.push(t.poll_stats());
            }
        }
        // Read what has come so far, so the pipe never fills.
        t.pump(Duration::from_millis(1));
    }
    let last = i64::from(rounds + 1);
    let uris: Vec<String> = docs.iter().map(|d| d.0.clone()).collect();
    // Keep polling the queue while the reviews drain.
    while !t.until(Instant::now() + Duration::from_millis(100), |t| {
        uris.iter().all(|u| t.versions.get(u).is_some_and(|&v| v >= last))
    }) && Instant::now() < deadline
    {
        polls.push(t.poll_stats());
    }
    let wall = started.elapsed();
    t.until(deadline, |t| polls.iter().all(|id| t.responses.contains_key(id)));
    t.depths(&polls);
    let current = uris.iter().filter(|u| t.versions.get(*u).is_some_and(|&v| v == last)).count();
    let stats = t.stats(deadline);
    let rss = common::proc_status_kib(t.c.pid(), "VmHWM");
    t.c.shutdown();
    let edits = n * rounds as usize;
    Row {
        scenario: format!("{n} open documents × {rounds} rounds of didChange"),
        requests: n + edits,
        completed: current,
        lost: n - current,
        max_depth: t.max_depth,
        peak_rss_kib: rss,
        wall,
        note: format!(
            "completed = documents whose final version v{last} got diagnostics; {} reviews ran for {} opens + {} edits, {} queued jobs superseded",
            stats["reviews"], n, edits, stats["superseded"]
        ),
    }
}

/// Scenario 3: `scans` workspace scans requested at once on `files` files on disk, with a
/// reviewFile timed in the middle of them. `scans = 1` is the baseline.
fn scan_spike(files: usize, scans: usize, budget: Duration) -> (Row, Duration) {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..files {
        std::fs::write(dir.path().join(format!("mod_{i:04}.py")), module(10_000 + i)).unwrap();
    }
    let deadline = Instant::now() + budget;
    let mut t = Tracker::new(start(dir.path(), true));
    let active = file_uri(&dir.path().join("active.py"));
    t.c.open(&active, "python", 1, &module(99_999));
    t.until(deadline, |t| t.versions.contains_key(&active));
    let started = Instant::now();
    let ids: Vec<i64> = (0..scans).map(|_| t.send(SCAN, json!([]))).collect();
    let mut polls = Vec::new();
    // Let the scans discover their files and fill the queue, then ask for a review now.
    for _ in 0..5 {
        t.pump(Duration::from_millis(20));
        polls.push(t.poll_stats());
    }
    let asked = Instant::now();
    let review = t.send(REVIEW_FILE, json!([active]));
    t.until(deadline, |t| t.responses.contains_key(&review));
    let review_latency = asked.elapsed();
    assert!(
        t.responses[&review]["result"]["findings"].is_u64(),
        "reviewFile during the spike: {}",
        t.responses[&review]
    );
    while !t.until(Instant::now() + Duration::from_millis(100), |t| ids.iter().all(|id| t.responses.contains_key(id)))
        && Instant::now() < deadline
    {
        polls.push(t.poll_stats());
    }
    let wall = started.elapsed();
    t.until(deadline, |t| polls.iter().all(|id| t.responses.contains_key(id)));
    t.depths(&polls);
    let results: Vec<&Value> = ids.iter().filter_map(|id| t.responses.get(id)).map(|r| &r["result"]).collect();
    let whole = |r: &&Value| r["files_scanned"].as_u64().unwrap_or(0) + r["files_skipped"].as_u64().unwrap_or(0);
    // The open document exists only in the editor, so a scan does not find it on disk.
    let total = files as u64;
    let completed = results.iter().filter(|r| r["cancelled"] == false && whole(r) == total).count();
    let superseded = results.iter().filter(|r| r["superseded"] == true).count();
    let cancelled = results.iter().filter(|r| r["cancelled"] == true).count();
    // A scan that stopped short must say why.
    let unexplained =
        results.iter().filter(|r| whole(r) < total && r["superseded"] != true && r["cancelled"] != true).count();
    let disk: Vec<String> = (0..files).map(|i| file_uri(&dir.path().join(format!("mod_{i:04}.py")))).collect();
    let unpublished = disk.iter().filter(|u| !t.published.contains(*u)).count();
    let rss = common::proc_status_kib(t.c.pid(), "VmHWM");
    t.c.shutdown();
    let summaries: Vec<String> = results.iter().map(|r| r.to_string()).collect();
    if std::env::var_os("LOAD_VERBOSE").is_some() {
        eprintln!("scan results:\n{}", summaries.join("\n"));
    }
    let last = results.last().map(|r| r["summary"].as_str().unwrap_or_default().to_string()).unwrap_or_default();
    let row = Row {
        scenario: if scans == 1 {
            format!("1 scanWorkspace ({files} files), baseline")
        } else {
            format!("{scans} scanWorkspace at once ({files} files)")
        },
        requests: scans,
        completed,
        lost: scans - results.len(),
        max_depth: t.max_depth,
        peak_rss_kib: rss,
        wall,
        note: format!(
            "{superseded} superseded by a newer scan, {cancelled} cancelled, {unexplained} stopped short without saying why; files never published: {unpublished}; reviewFile during it: {:.0} ms; last answer: \"{last}\"",
            review_latency.as_secs_f64() * 1000.0
        ),
    };
    assert_eq!(unexplained, 0, "every scan that stopped short says why:\n{}", summaries.join("\n"));
    assert_eq!(unpublished, 0, "every file on disk got its diagnostics");
    (row, review_latency)
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let (reviews, docs, rounds, files, spike) = if measuring { (100, 500, 5, 300, 10) } else { (20, 40, 2, 30, 3) };
    let budget = Duration::from_secs(if measuring { 180 } else { 40 });
    println!("binary: {}; sizes: {}", common::bin(), if measuring { "full" } else { "smoke" });
    let mut rows = vec![concurrent_reviews(reviews, budget), edited_documents(docs, rounds, budget)];
    rows.push(scan_spike(files, 1, budget).0);
    rows.push(scan_spike(files, spike, budget).0);
    println!();
    println!(
        "| {:<44} | {:>8} | {:>9} | {:>4} | {:>15} | {:>9} | {:>9} |",
        "scenario", "requests", "completed", "lost", "max queue depth", "peak RSS", "wall"
    );
    println!("|{:-<46}|{:->10}|{:->11}|{:->6}|{:->17}|{:->11}|{:->11}|", "", "", "", "", "", "", "");
    for r in &rows {
        println!(
            "| {:<44} | {:>8} | {:>9} | {:>4} | {:>15} | {:>5.1} MiB | {:>7.2} s |",
            r.scenario,
            r.requests,
            r.completed,
            r.lost,
            r.max_depth,
            r.peak_rss_kib as f64 / 1024.0,
            r.wall.as_secs_f64()
        );
    }
    println!();
    for r in &rows {
        println!("- {}: {}", r.scenario, r.note);
    }
    let lost: usize = rows.iter().map(|r| r.lost).sum();
    assert_eq!(lost, 0, "requests or document versions were lost");
}
