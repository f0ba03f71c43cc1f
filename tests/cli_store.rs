//! The store commands on the real binary: `scan` keeps a report and a history row, and
//! `cache`, `report` and `history` read and prune them.

mod common;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

fn run(dir: &Path, args: &[&str]) -> Output {
    common::command().args(args).current_dir(dir).env("XDG_CACHE_HOME", dir.join(".cache")).output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn json(dir: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(dir, args)).unwrap()
}

fn project(dir: &Path) {
    std::fs::create_dir_all(dir.join("src/app")).unwrap();
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(dir.join("src/app/main.py"), "def run(x):\n    if x == None:\n        return eval(x)\n").unwrap();
    std::fs::write(dir.join("tests/test_main.py"), "def test_run():\n    assert eval('1') == 1\n").unwrap();
    std::fs::write(dir.join("src/app/ui.js"), "function show(x) { if (x == 1) { debugger; } }\n").unwrap();
}

#[test]
fn scan_keeps_reports_and_history_that_the_commands_show() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    project(dir);
    let scanned = json(dir, &["scan", ".", "--format", "json", "--fail-on", "none"]);
    json(dir, &["scan", ".", "--format", "json", "--fail-on", "none"]);

    let reports = json(dir, &["report", "list", "--format", "json"]);
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert!(reports[0]["id"].as_u64() > reports[1]["id"].as_u64(), "newest first");
    assert_eq!(reports[0]["files"], 3);
    let id = reports[0]["id"].as_u64().unwrap().to_string();

    let stored: Value = serde_json::from_str(&ok(dir, &["report", "show", &id, "--format", "json"])).unwrap();
    assert_eq!(stored["findings"], scanned["findings"], "the stored JSON is the report");
    let sarif: Value = serde_json::from_str(&ok(dir, &["report", "show", &id, "--format", "sarif"])).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let md = ok(dir, &["report", "show", &id]);
    assert!(md.starts_with("# review-lsp scan") && md.contains("`python/security/eval`"), "{md}");
    let missing = run(dir, &["report", "show", "42"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no report 42"));

    let history = json(dir, &["history", "--since", "1h", "--format", "json"]);
    let rows = history.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0]["trigger"].as_str(), rows[0]["files"].as_u64(), rows[0]["source"].as_str()),
        (Some("cli"), Some(3), Some("offline"))
    );
    assert!(json(dir, &["history", "--since", "2099-01-01", "--format", "json"]).as_array().unwrap().is_empty());
    assert!(ok(dir, &["history"]).lines().count() == 3, "a header and two rows");
}

#[test]
fn cache_commands_count_invalidate_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    project(dir);
    ok(dir, &["scan", ".", "--fail-on", "none"]);
    let entries = |d: &Path| json(d, &["cache", "stats", "--format", "json"])["entries"].as_u64().unwrap();
    let all = entries(dir);
    assert!(all > 3, "file and chunk entries: {all}");
    assert!(json(dir, &["cache", "stats", "--format", "json"])["bytes"].as_u64().unwrap() > 0);

    // By path: only the tests/ entries go, and the next scan reviews only that file again.
    let out = ok(dir, &["cache", "invalidate", "--path", "tests/**"]);
    let n: u64 = out.trim().trim_start_matches("invalidated ").trim_end_matches(" entries").parse().unwrap();
    assert!(n >= 2 && n < all, "{out}");
    assert_eq!(entries(dir), all - n);
    let rescan = json(dir, &["scan", ".", "--format", "json", "--fail-on", "none"]);
    assert_eq!((rescan["stats"]["cache_hits"].as_u64(), rescan["stats"]["cache_misses"].as_u64()), (Some(2), Some(1)));

    // By agent and model.
    let out = ok(dir, &["cache", "invalidate", "--agent", "maintainability", "--model", "offline"]);
    assert!(!out.starts_with("invalidated 0 "), "{out}");
    assert!(ok(dir, &["cache", "invalidate", "--model", "gpt-4.1"]).starts_with("invalidated 0 "));

    let bad = run(dir, &["cache", "invalidate"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("at least one of --path"));
    let bad = run(dir, &["cache", "invalidate", "--path", "src/[x"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bad --path glob"));

    assert!(ok(dir, &["cache", "gc"]).starts_with("expired 0, evicted 0;"));
    ok(dir, &["cache", "clear"]);
    assert_eq!(entries(dir), 0);
    // Reports survive a cache clear.
    assert_eq!(json(dir, &["report", "list", "--format", "json"]).as_array().unwrap().len(), 2);
}
