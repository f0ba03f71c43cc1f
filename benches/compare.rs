//! The benchmark runner: one table, each row measured in this run and shown as a ratio beside
//! what it is compared with (issue 8, section 6).
//!
//! - P1 start → first diagnostics through the stdio protocol, review-lsp against `typos-lsp`,
//!   both driven by the same harness (tests/common): spawn, initialize, didOpen of a file with
//!   a typo and a review-lsp finding, first publishDiagnostics. Median of N fresh processes.
//! - P2 debounce: reviews per burst of 20 edits (showStats `reviews` before and after).
//! - P3, P4 LLM calls and prompt tokens against the naive baseline (support/llm_cost.rs).
//! - P5 scan wall time against the rate-limit bound at rpm 600, tpm 1,000,000
//!   (support/rate_limit.rs), with the per-user cap (default 100 rpm) raised to 600 so the
//!   endpoint's limit is the one that binds.
//! - P6 warm rescan of 10,000 synthetic files.
//! - P7 cold offline scan against `semgrep` on the same standard-library files (up to 2,000;
//!   Python 3.11's has 1,785), with a local rules file of as many rules as review-lsp has for
//!   Python (support/semgrep_python.yml); also semgrep without its costliest rule.
//! - P8 RSS idle and with 1,000 open documents.
//! - P9 prompt tokens for a one-function edit.
//!
//! Run: `cargo bench --bench compare`. External tools are looked up in `TYPOS_LSP=` /
//! `SEMGREP=`, then in .tools/ (where scripts/install-typos-lsp.sh and install-semgrep.sh put
//! them), PATH, ~/.cargo/bin, ~/.local/bin and ~/.venvs/semgrep/bin; a row whose tool is
//! missing says "not installed", unless `COMPARE_REQUIRE_TOOLS=1`
//! makes that an error. Without `--bench` (as `cargo test --all-targets` runs it) every size
//! shrinks to a smoke run.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/llm_cost.rs"]
mod cost;
#[path = "support/rate_limit.rs"]
mod limited;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{LspClient, Options, file_uri};
use serde_json::{Value, json};

struct Row {
    id: &'static str,
    what: String,
    ours: String,
    against: String,
    ratio: String,
    goal: &'static str,
    met: &'static str,
}

fn met(ok: bool) -> &'static str {
    if ok { "yes" } else { "no" }
}

fn ms(d: f64) -> String {
    format!("{d:.1} ms")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Thousands separators, as BENCHMARKS.md writes counts.
fn n(v: impl Into<u64>) -> String {
    let s = v.into().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `name` from the environment variable `var`, the project's .tools/, PATH, or the usual
/// per-user install places.
fn find_tool(name: &str, var: &str) -> Option<PathBuf> {
    let found = lookup_tool(name, var);
    if found.is_none() && std::env::var_os("COMPARE_REQUIRE_TOOLS").is_some() {
        panic!("{name} is not installed and COMPARE_REQUIRE_TOOLS is set: run scripts/install-{name}.sh");
    }
    found
}

fn lookup_tool(name: &str, var: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools").join(name).join("bin");
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let extra = [home.join(".cargo/bin"), home.join(".local/bin"), home.join(".venvs/semgrep/bin")];
    std::iter::once(tools)
        .chain(std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default())
        .chain(extra)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn show_stats(c: &mut LspClient) -> Value {
    c.request("workspace/executeCommand", json!({"command": "review-lsp.showStats"}))
}

/// A small module with a review-lsp finding (`== None`) and a typo typos-lsp knows ("recieve").
const P1_FILE: &str = "\"\"\"Payload helpers.\"\"\"\nimport json\n\n\ndef parse(payload):\n    \"\"\"Recieve a payload and decode it.\"\"\"\n    data = json.loads(payload)\n    if data == None:\n        return {}\n    return data\n";

/// One fresh process of `program args`: spawn → first publishDiagnostics, in ms.
fn start_to_diagnostics(program: &Path, args: &[&str]) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payload.py");
    std::fs::write(&path, P1_FILE).unwrap();
    let uri = file_uri(&path);
    let opts = Options { progress: false, log_level: "info", init_options: json!({}), ..Options::default() };
    let started = Instant::now();
    let mut c = LspClient::start_program(program, args, dir.path(), opts);
    c.open(&uri, "python", 1, P1_FILE);
    let d = c.diagnostics(&uri, None);
    let took = started.elapsed().as_secs_f64() * 1000.0;
    assert!(!d["diagnostics"].as_array().is_none_or(Vec::is_empty), "{} found nothing: {d}", program.display());
    took
}

fn p1(runs: usize) -> Row {
    let ours_bin = PathBuf::from(common::bin());
    let typos = find_tool("typos-lsp", "TYPOS_LSP");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ours.push(start_to_diagnostics(&ours_bin, &["serve"]));
        if let Some(t) = &typos {
            theirs.push(start_to_diagnostics(t, &[]));
        }
    }
    let o = median(ours);
    let what = format!("start → first diagnostics over stdio, median of {runs} fresh processes");
    match typos {
        Some(t) => {
            let version = Command::new(&t)
                .arg("--version")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            let th = median(theirs);
            Row {
                id: "P1",
                what,
                ours: ms(o),
                against: format!("{}: {}", if version.is_empty() { "typos-lsp".into() } else { version }, ms(th)),
                ratio: format!("{:.2}×", o / th),
                goal: "≤ 0.3×",
                met: met(o / th <= 0.3),
            }
        }
        None => Row {
            id: "P1",
            what,
            ours: ms(o),
            against: "typos-lsp: not installed".into(),
            ratio: "—".into(),
            goal: "≤ 0.3×",
            met: "—",
        },
    }
}

/// 20 didChange, one every `gap`, with the server's default debounce (300 ms).
fn p2(gap: Duration) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let uri = file_uri(&dir.path().join("typing.py"));
    let opts = Options { progress: false, log_level: "info", init_options: json!({}), ..Options::default() };
    let mut c = LspClient::start(dir.path(), opts);
    c.open(&uri, "python", 1, P1_FILE);
    c.diagnostics(&uri, Some(1));
    let before = show_stats(&mut c)["reviews"].as_u64().unwrap();
    for v in 2..=21 {
        // Typing at the end of the file: the text stays valid Python.
        let pos = json!({"line": 10, "character": 0});
        c.change(&uri, v, json!([{"range": {"start": pos, "end": pos}, "text": "x"}]));
        std::thread::sleep(gap);
    }
    c.diagnostics(&uri, Some(21));
    // Anything still to come would run within one more debounce.
    std::thread::sleep(Duration::from_millis(500));
    let reviews = show_stats(&mut c)["reviews"].as_u64().unwrap() - before;
    c.shutdown();
    Row {
        id: "P2",
        what: format!("reviews per burst of 20 edits (one every {} ms, debounce 300 ms)", gap.as_millis()),
        ours: reviews.to_string(),
        against: "20 (a review per edit)".into(),
        ratio: format!("{:.2}×", reviews as f64 / 20.0),
        goal: "1 review",
        met: met(reviews == 1),
    }
}

fn p3_p4_p9(measuring: bool, rt: &tokio::runtime::Runtime) -> Vec<Row> {
    let roots = cost::corpus(measuring);
    let big = cost::big_file(measuring);
    let (c, e) = rt.block_on(async {
        let server = cost::mock_model().await;
        let cache = tempfile::tempdir().unwrap();
        let c = cost::corpus_cost(&server, &roots, cache.path()).await;
        let e = cost::edit_cost(&server, &big, cache.path()).await;
        (c, e)
    });
    let calls = c.ours_calls as f64 / c.naive_calls.max(1) as f64;
    let tokens = c.ours_tokens as f64 / c.naive_tokens.max(1) as f64;
    let edit = e.edit_tokens as f64 / e.naive_file.max(1) as f64;
    vec![
        Row {
            id: "P3",
            what: format!("LLM calls, {} files (mock model)", c.files),
            ours: n(c.ours_calls as u64),
            against: format!("naive: {}", n(c.naive_calls as u64)),
            ratio: format!("{:.1} %", calls * 100.0),
            goal: "≤ 10 %",
            met: met(calls <= 0.10),
        },
        Row {
            id: "P4",
            what: format!("prompt tokens (o200k), same {} files", c.files),
            ours: n(c.ours_tokens as u64),
            against: format!("naive: {}", n(c.naive_tokens as u64)),
            ratio: format!("{:.1} %", tokens * 100.0),
            goal: "≤ 50 %",
            met: met(tokens <= 0.50),
        },
        Row {
            id: "P9",
            what: format!(
                "prompt tokens after a one-function edit of {} ({} lines); our first review sent {}",
                big.file_name().unwrap().to_string_lossy(),
                n(e.lines as u64),
                n(e.whole_file as u64)
            ),
            ours: n(e.edit_tokens as u64),
            against: format!("naive: {}", n(e.naive_file as u64)),
            ratio: format!("{:.1} %", edit * 100.0),
            goal: "≤ 10 %",
            met: met(edit <= 0.10),
        },
    ]
}

fn p5(measuring: bool, rt: &tokio::runtime::Runtime) -> Vec<Row> {
    let (rpm, tpm) = (600, 1_000_000);
    let workloads = [
        limited::Workload {
            name: "request-bound: 1 function per file, 1 file per call",
            files: if measuring { 40 } else { 4 },
            functions: 1,
            batch_max_files: 1,
            batch_max_tokens: 50_000,
            per_user_rpm: Some(rpm),
        },
        limited::Workload {
            name: "token-bound: 24 functions per file, 1 file per call",
            files: if measuring { 20 } else { 3 },
            functions: 24,
            batch_max_files: 1,
            batch_max_tokens: 50_000,
            per_user_rpm: Some(rpm),
        },
    ];
    workloads
        .iter()
        .map(|w| {
            let o = limited::run(w, rpm, tpm, rt);
            let bound = o.bound_secs(rpm, tpm);
            let ratio = o.wall.as_secs_f64() / bound;
            Row {
                id: "P5",
                what: format!(
                    "scan wall time under rpm 600, tpm 1 M (per-user cap raised from its default 100 to 600): {}, {} files ({} calls, {} tokens, {} errors shown)",
                    w.name,
                    w.files,
                    o.calls,
                    n(o.tokens),
                    o.errors_shown
                ),
                ours: format!("{:.1} s", o.wall.as_secs_f64()),
                against: format!("bound: {bound:.1} s"),
                ratio: format!("{ratio:.2}×"),
                goal: "≤ 1.15×",
                met: met(ratio <= 1.15),
            }
        })
        .collect()
}

/// `review-lsp scan DIR` with the given cache home: (wall seconds, report stats).
fn scan(dir: &Path, cache: &Path) -> (f64, Value) {
    let t = Instant::now();
    let out = common::command()
        .args(["scan", ".", "--format", "json", "--fail-on", "none"])
        .current_dir(dir)
        .env("XDG_CACHE_HOME", cache)
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (secs, serde_json::from_slice::<Value>(&out.stdout).expect("one JSON report")["stats"].clone())
}

fn p6(files: u32) -> Row {
    let ws = tempfile::tempdir().unwrap();
    for i in 0..files {
        let body = format!(
            "\"\"\"Module {i}.\"\"\"\nimport json\n\n\ndef load_{i}(text, default=None):\n    \"\"\"Parse text.\"\"\"\n    if text == None:\n        return default\n    return json.loads(text)\n"
        );
        std::fs::write(ws.path().join(format!("mod_{i:05}.py")), body).unwrap();
    }
    let cache = tempfile::tempdir().unwrap();
    let (cold, _) = scan(ws.path(), cache.path());
    let mut warm = Vec::new();
    for _ in 0..3 {
        let (secs, stats) = scan(ws.path(), cache.path());
        assert_eq!(stats["cache_hits"], files, "{stats}");
        warm.push(secs);
    }
    let w = median(warm);
    Row {
        id: "P6",
        what: format!("warm rescan of {} synthetic files, median of 3 (cold: {cold:.2} s)", n(files)),
        ours: format!("{w:.2} s ({} files/s)", n((f64::from(files) / w) as u64)),
        against: "goal: 1.5 s".into(),
        ratio: format!("{:.2}×", w / 1.5),
        goal: "< 1.5 s",
        met: met(w < 1.5),
    }
}

/// The first `count` .py files of the standard library under 500 KB, in sorted path order
/// (no site-packages, no caches), copied flat into one directory so neither tool's ignore rules
/// (semgrep skips `test/` and `tests/` by default) leaves any out.
fn stdlib_slice(count: usize, into: &Path) -> (usize, u64) {
    fn walk(dir: &Path, count: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            if out.len() >= count {
                return;
            }
            let (p, name) = (e.path(), e.file_name());
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if name != "site-packages" && name != "__pycache__" {
                    walk(&p, count, out);
                }
            } else if ft.is_file()
                && p.extension().is_some_and(|x| x == "py")
                && e.metadata().is_ok_and(|m| m.len() < 500_000)
                && std::fs::read_to_string(&p).is_ok()
            {
                out.push(p);
            }
        }
    }
    let lib = cost::stdlib();
    let mut files = Vec::new();
    walk(&lib, count, &mut files);
    let mut bytes = 0;
    for p in &files {
        let rel = p.strip_prefix(&lib).unwrap().to_string_lossy().replace('/', "__");
        bytes += std::fs::copy(p, into.join(rel)).unwrap();
    }
    (files.len(), bytes)
}

/// One `semgrep scan` of `corpus` with `rules`: (wall seconds, files scanned, findings, errors).
fn semgrep(semgrep: &Path, rules: &Path, corpus: &Path) -> (f64, usize, usize, usize) {
    let t = Instant::now();
    let out = Command::new(semgrep)
        .args(["scan", "--metrics", "off", "--disable-version-check", "--json", "--config"])
        .arg(rules)
        .arg(corpus)
        .env("SEMGREP_SEND_METRICS", "off")
        .env("SEMGREP_ENABLE_VERSION_CHECK", "0")
        .stderr(Stdio::null())
        .output()
        .expect("run semgrep");
    let secs = t.elapsed().as_secs_f64();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let len = |v: &Value| v.as_array().map_or(0, Vec::len);
    (secs, len(&report["paths"]["scanned"]), len(&report["results"]), len(&report["errors"]))
}

fn p7(files: usize, measuring: bool) -> Vec<Row> {
    let corpus = tempfile::tempdir().unwrap();
    let (count, bytes) = stdlib_slice(files, corpus.path());
    let cache = tempfile::tempdir().unwrap();
    let (ours, stats) = scan(corpus.path(), cache.path());
    let what = format!(
        "cold offline scan of {} standard-library .py files ({:.1} MB), 17 Python rules each; review-lsp: {} files, {} findings",
        n(count as u64),
        bytes as f64 / 1e6,
        stats["files_scanned"],
        stats["findings"]
    );
    let Some(semgrep_bin) = find_tool("semgrep", "SEMGREP") else {
        return vec![Row {
            id: "P7",
            what,
            ours: format!("{ours:.2} s"),
            against: "semgrep: not installed".into(),
            ratio: "—".into(),
            goal: "",
            met: "—",
        }];
    };
    let rules_dir = tempfile::tempdir().unwrap();
    let all = include_str!("support/semgrep_python.yml");
    let rules = rules_dir.path().join("rules.yml");
    std::fs::write(&rules, all).unwrap();
    // Without `--disable-version-check` even `--version` waits ~90 s on the network.
    let version = Command::new(&semgrep_bin)
        .args(["--version", "--disable-version-check"])
        .env("SEMGREP_SEND_METRICS", "off")
        .env("SEMGREP_ENABLE_VERSION_CHECK", "0")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let (theirs, scanned, found, errors) = semgrep(&semgrep_bin, &rules, corpus.path());
    let mut rows = vec![Row {
        id: "P7",
        what: format!("{what}; semgrep: {scanned} files, {found} findings, {errors} errors"),
        ours: format!("{ours:.2} s"),
        against: format!("semgrep {version}: {theirs:.2} s"),
        ratio: format!("{:.3}×", ours / theirs),
        goal: "",
        met: "—",
    }];
    if measuring {
        // The docstring rule is most of semgrep's matching time; without it, the other 16.
        let sixteen = rules_dir.path().join("sixteen.yml");
        std::fs::write(&sixteen, &all[..all.find("  - id: missing-docstring").unwrap()]).unwrap();
        let (secs, scanned, found, errors) = semgrep(&semgrep_bin, &sixteen, corpus.path());
        rows.push(Row {
            id: "P7",
            what: format!(
                "same, semgrep without its missing-docstring rule (16 rules): {scanned} files, {found} findings, {errors} errors"
            ),
            ours: format!("{ours:.2} s (17 rules)"),
            against: format!("semgrep {version}: {secs:.2} s"),
            ratio: format!("{:.3}×", ours / secs),
            goal: "",
            met: "—",
        });
    }
    rows
}

fn p8(docs: usize) -> Vec<Row> {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options { progress: false, log_level: "info", ..Options::default() };
    let mut c = LspClient::start(dir.path(), opts);
    let first = file_uri(&dir.path().join("first.py"));
    c.open(&first, "python", 1, P1_FILE);
    c.diagnostics(&first, Some(1));
    std::thread::sleep(Duration::from_secs(1));
    let idle = common::proc_status_kib(c.pid(), "VmRSS") as f64 / 1024.0;
    let mut bytes = 0;
    for i in 0..docs {
        let mut text = format!("\"\"\"Document {i}.\"\"\"\nimport json\n\n\n");
        for f in 0..8 {
            text.push_str(&format!(
                "def handler_{i}_{f}(items, limit=10):\n    \"\"\"Total the first items.\"\"\"\n    total = 0\n    for item in items[:limit]:\n        if item.get(\"price\") == None:\n            continue\n        total += item[\"price\"]\n    return json.dumps({{\"total\": total}})\n\n\n"
            ));
        }
        bytes += text.len();
        c.open(&file_uri(&dir.path().join(format!("doc_{i:04}.py"))), "python", 1, &text);
    }
    for i in 0..docs {
        c.diagnostics(&file_uri(&dir.path().join(format!("doc_{i:04}.py"))), Some(1));
    }
    std::thread::sleep(Duration::from_secs(1));
    let loaded = common::proc_status_kib(c.pid(), "VmRSS") as f64 / 1024.0;
    let open = show_stats(&mut c)["open_documents"].as_u64().unwrap_or(0);
    c.shutdown();
    vec![
        Row {
            id: "P8",
            what: "RSS idle, after one review".into(),
            ours: format!("{idle:.1} MiB"),
            against: "goal: 40 MB (38.1 MiB)".into(),
            ratio: format!("{:.2}×", idle / (40e6 / 1048576.0)),
            goal: "< 40 MB",
            met: met(idle * 1048576.0 < 40e6),
        },
        Row {
            id: "P8",
            what: format!("RSS with {} open documents ({:.1} MB of text), each reviewed", n(open), bytes as f64 / 1e6),
            ours: format!("{loaded:.1} MiB"),
            against: format!("idle: {idle:.1} MiB"),
            ratio: format!("{:.2}×", loaded / idle),
            goal: "bounded",
            met: "—",
        },
    ]
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    // `COMPARE_ONLY=P1,P7` reruns some rows; P3, P4 and P9 come from one measurement.
    let only: Option<Vec<String>> =
        std::env::var("COMPARE_ONLY").ok().map(|v| v.split(',').map(|s| s.trim().to_uppercase()).collect());
    let want = |ids: &[&str]| only.as_ref().is_none_or(|o| ids.iter().any(|id| o.iter().any(|x| x == id)));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    println!("binary: {}; sizes: {}", common::bin(), if measuring { "full" } else { "smoke" });
    let mut rows = Vec::new();
    let mut step = |ids: &[&str], name: &str, run: &mut dyn FnMut() -> Vec<Row>| {
        if !want(ids) {
            return;
        }
        eprintln!("[compare] {name}…");
        let t = Instant::now();
        rows.extend(run());
        eprintln!("  {:.1} s", t.elapsed().as_secs_f64());
    };
    step(&["P1"], "P1 start → diagnostics", &mut || vec![p1(if measuring { 30 } else { 3 })]);
    step(&["P2"], "P2 debounce", &mut || vec![p2(Duration::from_millis(30))]);
    step(&["P3", "P4", "P9"], "P3, P4, P9 LLM cost", &mut || p3_p4_p9(measuring, &rt));
    step(&["P5"], "P5 rate limit", &mut || p5(measuring, &rt));
    step(&["P6"], "P6 warm rescan", &mut || vec![p6(if measuring { 10_000 } else { 300 })]);
    step(&["P7"], "P7 cold scan against semgrep", &mut || p7(if measuring { 2_000 } else { 20 }, measuring));
    step(&["P8"], "P8 RSS", &mut || p8(if measuring { 1_000 } else { 30 }));
    // In issue order: P9 last.
    rows.sort_by_key(|r| r.id);

    println!();
    println!("| | measure | review-lsp | against | ratio | goal | met |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("| {} | {} | {} | {} | {} | {} | {} |", r.id, r.what, r.ours, r.against, r.ratio, r.goal, r.met);
    }
}
