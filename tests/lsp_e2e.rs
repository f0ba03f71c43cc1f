//! End-to-end: the real binary over stdio, driven as an editor would drive it.

mod common;

use std::time::Duration;

use common::{LspClient, Options, apply_edits, codes, file_uri};
use serde_json::{Value, json};

const PY: &str =
    "import os\n\n\ndef check(x, data):\n    if x == None:\n        return eval(data)\n    return os.getcwd()\n";

fn workspace() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn full_change(text: &str) -> Value {
    json!([{"text": text}])
}

#[test]
fn open_publishes_findings_for_the_opened_version() {
    let ws = workspace();
    let mut c = LspClient::start(ws.path(), Options::default());
    let uri = file_uri(&ws.path().join("a.py"));
    c.open(&uri, "python", 7, PY);
    let d = c.diagnostics(&uri, None);
    assert_eq!(d["version"], 7);
    let got = codes(&d);
    assert!(got.contains(&"python/correctness/none-comparison".into()), "{got:?}");
    assert!(got.contains(&"python/security/eval".into()), "{got:?}");
    let eval = d["diagnostics"].as_array().unwrap().iter().find(|d| d["code"] == "python/security/eval").unwrap();
    assert_eq!(eval["range"]["start"], json!({"line": 5, "character": 15}));
    assert_eq!(eval["source"], "review-lsp");
    assert!(c.shutdown().success());
}

#[test]
fn incremental_edits_keep_positions_right_in_utf16_and_utf8() {
    for utf8 in [false, true] {
        let ws = workspace();
        let mut c = LspClient::start(ws.path(), Options { utf8, ..Options::default() });
        let uri = file_uri(&ws.path().join("e.py"));
        c.open(&uri, "python", 1, "def f(a):\n    return a\n");
        c.diagnostics(&uri, Some(1));
        // Line 1 becomes `    s = "😀é"; return eval(a)` through two incremental edits.
        c.change(&uri, 2, json!([{"range": {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 4}}, "text": "s = \"😀e\u{301}\"; "}]));
        // The return now starts after the inserted text; wrap `a` in eval(...).
        let ret_col =
            if utf8 { 4 + "s = \"😀e\u{301}\"; ".len() } else { 4 + "s = \"😀e\u{301}\"; ".encode_utf16().count() };
        let a_col = ret_col + "return ".len();
        c.change(&uri, 3, json!([{"range": {"start": {"line": 1, "character": a_col}, "end": {"line": 1, "character": a_col + 1}}, "text": "eval(a)"}]));
        let d = c.diagnostics(&uri, Some(3));
        let eval = d["diagnostics"].as_array().unwrap().iter().find(|d| d["code"] == "python/security/eval").cloned();
        let eval = eval.unwrap_or_else(|| panic!("no eval finding in {d}"));
        assert_eq!(eval["range"]["start"], json!({"line": 1, "character": a_col}), "utf8={utf8}");
        assert_eq!(eval["range"]["end"], json!({"line": 1, "character": a_col + "eval(a)".len()}), "utf8={utf8}");
    }
}

#[test]
fn crlf_documents_get_fixes_that_keep_crlf() {
    let ws = workspace();
    let mut c = LspClient::start(ws.path(), Options::default());
    let uri = file_uri(&ws.path().join("c.py"));
    let text = "def g(x):\r\n    if x == None:\r\n        return 1\r\n";
    c.open(&uri, "python", 1, text);
    let d = c.diagnostics(&uri, Some(1));
    let diag = d["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "python/correctness/none-comparison")
        .unwrap()
        .clone();
    assert_eq!(diag["range"]["start"]["line"], 1);
    let fix = &diag["data"]["fix"];
    assert_eq!(apply_edits(text, &[fix.clone()]), "def g(x):\r\n    if x is None:\r\n        return 1\r\n");
}

#[test]
fn quick_fix_rides_in_data_and_applies() {
    let ws = workspace();
    let mut c = LspClient::start(ws.path(), Options::default());
    let uri = file_uri(&ws.path().join("q.py"));
    c.open(&uri, "python", 1, PY);
    let d = c.diagnostics(&uri, Some(1));
    let diag = d["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "python/correctness/none-comparison")
        .unwrap()
        .clone();
    let actions = c.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": diag["range"], "context": {"diagnostics": [diag]}}),
    );
    let fix = actions.as_array().unwrap().iter().find(|a| a["isPreferred"] == true).expect("a preferred quick fix");
    assert_eq!(fix["kind"], "quickfix");
    let edits = fix["edit"]["changes"][&uri].as_array().unwrap();
    let fixed = apply_edits(PY, edits);
    assert!(fixed.contains("    if x is None:\n"), "{fixed}");
    assert_eq!(fixed.lines().count(), PY.lines().count());
    // The fixed text no longer has the finding.
    c.change(&uri, 2, full_change(&fixed));
    let after = c.diagnostics(&uri, Some(2));
    assert!(!codes(&after).contains(&"python/correctness/none-comparison".into()), "{after}");
}

#[test]
fn ignore_action_inserts_a_suppression_the_reviewer_honours() {
    let ws = workspace();
    let mut c = LspClient::start(ws.path(), Options::default());
    let uri = file_uri(&ws.path().join("i.py"));
    c.open(&uri, "python", 1, PY);
    let d = c.diagnostics(&uri, Some(1));
    let diag =
        d["diagnostics"].as_array().unwrap().iter().find(|d| d["code"] == "python/security/eval").unwrap().clone();
    let actions = c.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": diag["range"], "context": {"diagnostics": [diag]}}),
    );
    let ignore =
        actions.as_array().unwrap().iter().find(|a| a["title"].as_str().unwrap().starts_with("Ignore")).unwrap();
    let edited = apply_edits(PY, ignore["edit"]["changes"][&uri].as_array().unwrap());
    assert!(
        edited.contains("        # review-lsp: ignore[python/security/eval]\n        return eval(data)\n"),
        "{edited}"
    );
    c.change(&uri, 2, full_change(&edited));
    let after = codes(&c.diagnostics(&uri, Some(2)));
    assert!(!after.contains(&"python/security/eval".into()), "{after:?}");
    assert!(after.contains(&"python/correctness/none-comparison".into()), "other findings stay: {after:?}");
}

#[test]
fn twenty_rapid_edits_give_one_review_of_the_final_version() {
    let ws = workspace();
    let mut c = LspClient::start(
        ws.path(),
        Options { init_options: json!({"review": {"debounce_ms": 300}}), ..Options::default() },
    );
    let uri = file_uri(&ws.path().join("r.py"));
    c.open(&uri, "python", 1, PY);
    c.diagnostics(&uri, Some(1));
    let mut text = PY.to_string();
    for v in 2..=21 {
        text.push_str(&format!("x{v} = {v}\n"));
        c.change(&uri, v, full_change(&text));
        std::thread::sleep(Duration::from_millis(5));
    }
    let last = c.diagnostics(&uri, Some(21));
    assert!(codes(&last).contains(&"python/security/eval".into()));
    // Nothing else arrives for this document afterwards.
    let later: Vec<Value> = c
        .drain(Duration::from_millis(600))
        .into_iter()
        .filter(|m| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri.as_str())
        .collect();
    assert!(later.is_empty(), "unexpected extra publishes: {later:?}");
    let stats = c.request("workspace/executeCommand", json!({"command": "review-lsp.showStats", "arguments": []}));
    assert_eq!(stats["reviews"], 2, "one review on open, one for v21: {stats}");
    assert_eq!(stats["published"], 2, "{stats}");
    assert!(stats["superseded"].as_u64().unwrap() >= 18, "{stats}");
}

#[test]
fn scan_command_reports_progress_and_publishes_every_file() {
    let ws = workspace();
    std::fs::create_dir_all(ws.path().join("pkg")).unwrap();
    std::fs::write(ws.path().join("pkg/a.py"), PY).unwrap();
    std::fs::write(ws.path().join("pkg/b.js"), "function f(a) { if (a == 1) { return 2; } }\n").unwrap();
    std::fs::write(ws.path().join("pkg/ignored.py"), PY).unwrap();
    std::fs::write(ws.path().join(".reviewignore"), "pkg/ignored.py\n").unwrap();
    std::fs::write(ws.path().join("notes.txt"), "not code").unwrap();
    let mut c = LspClient::start(ws.path(), Options::default());
    let result = c.request("workspace/executeCommand", json!({"command": "review-lsp.scanWorkspace", "arguments": []}));
    assert_eq!(result["files"], 2, "{result}");
    assert_eq!(result["cancelled"], false);
    let create = c.wait_for(|m| m["method"] == "window/workDoneProgress/create", common::TIMEOUT, "progress create");
    let token = create["params"]["token"].clone();
    let begin = c.wait_for(
        |m| m["method"] == "$/progress" && m["params"]["value"]["kind"] == "begin",
        common::TIMEOUT,
        "begin",
    );
    assert_eq!(begin["params"]["token"], token);
    assert_eq!(begin["params"]["value"]["cancellable"], true);
    let end =
        c.wait_for(|m| m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end", common::TIMEOUT, "end");
    assert!(end["params"]["value"]["message"].as_str().unwrap().contains("2 files"), "{end}");
    let a = c.diagnostics(&file_uri(&ws.path().join("pkg/a.py")), None);
    assert!(codes(&a).contains(&"python/security/eval".into()));
    let b = c.diagnostics(&file_uri(&ws.path().join("pkg/b.js")), None);
    assert!(codes(&b).iter().any(|r| r.ends_with("loose-equality")), "{b}");
    c.open(&file_uri(&ws.path().join("pkg/a.py")), "python", 1, PY);
    c.diagnostics(&file_uri(&ws.path().join("pkg/a.py")), Some(1));
    assert!(c.shutdown().success());

    // The scan and the edit are in the workspace's history, which the CLI reads.
    let out = common::command()
        .args(["history", "--format", "json"])
        .current_dir(ws.path())
        .env("XDG_CACHE_HOME", ws.path().join(".test-cache"))
        .output()
        .unwrap();
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    let triggers: Vec<(&str, u64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["trigger"].as_str().unwrap(), r["files"].as_u64().unwrap()))
        .collect();
    assert_eq!(triggers, [("scan", 2), ("edit", 1)], "{rows}");
}

#[test]
fn bad_config_gets_a_message_and_the_rest_applies() {
    let ws = workspace();
    std::fs::write(
        ws.path().join("review-lsp.toml"),
        "[review]\ndebounce_ms = \"soon\"\nnot_a_setting = 1\ndisabled_rules = [\"python/security/eval\"]\n",
    )
    .unwrap();
    let mut c = LspClient::start(ws.path(), Options { init_options: Value::Null, ..Options::default() });
    let msg = c.wait_for(|m| m["method"] == "window/showMessage", common::TIMEOUT, "showMessage");
    let text = msg["params"]["message"].as_str().unwrap();
    assert!(text.contains("review.debounce_ms") && text.contains("review.not_a_setting"), "{text}");
    let uri = file_uri(&ws.path().join("a.py"));
    c.open(&uri, "python", 1, PY);
    let got = codes(&c.diagnostics(&uri, Some(1)));
    assert!(!got.contains(&"python/security/eval".into()), "disabled_rules applied: {got:?}");
    assert!(got.contains(&"python/correctness/none-comparison".into()), "{got:?}");
    // A bad didChangeConfiguration is reported too, and the server keeps going.
    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"review-lsp": {"review": {"agents": ["vibes"]}}}}),
    );
    let msg = c.wait_for(|m| m["method"] == "window/showMessage", common::TIMEOUT, "second showMessage");
    assert!(msg["params"]["message"].as_str().unwrap().contains("review.agents"), "{msg}");
    assert!(c.shutdown().success());
}

#[test]
fn close_clears_and_bad_traffic_does_not_hurt() {
    let ws = workspace();
    let mut c = LspClient::start(ws.path(), Options::default());
    let uri = file_uri(&ws.path().join("z.py"));
    // A change for a document never opened, garbage JSON, an unknown method.
    c.change(&file_uri(&ws.path().join("never.py")), 2, full_change("x = 1\n"));
    c.send_raw(b"Content-Length: 9\r\n\r\n{garbage}");
    let said = c.wait_for(|m| m["method"] == "window/logMessage", common::TIMEOUT, "a message about the bad frame");
    assert!(said["params"]["message"].as_str().unwrap().contains("malformed message: invalid JSON"), "{said}");
    let unknown = c.try_request("review/unknownMethod", json!({}));
    assert!(unknown.is_err());
    c.open(&uri, "python", 1, PY);
    c.diagnostics(&uri, Some(1));
    // An out-of-order (older) version is ignored.
    c.change(&uri, 1, full_change("garbage = (\n"));
    c.notify("textDocument/didClose", json!({"textDocument": {"uri": uri}}));
    let cleared = c.diagnostics(&uri, None);
    assert_eq!(cleared["diagnostics"], json!([]));
    assert!(c.shutdown().success());
}

#[test]
fn log_file_setting_moves_the_server_log() {
    let ws = workspace();
    // A named log file's folder must exist: only the cache and state folders get created.
    std::fs::create_dir(ws.path().join("logs")).unwrap();
    let log = ws.path().join("logs/custom.log");
    let mut c =
        LspClient::start(ws.path(), Options { init_options: json!({"log": {"file": log}}), ..Options::default() });
    let uri = file_uri(&ws.path().join("a.py"));
    c.open(&uri, "python", 1, PY);
    c.diagnostics(&uri, Some(1));
    c.change(&file_uri(&ws.path().join("never-opened.py")), 3, full_change("x = 1\n"));
    assert!(c.shutdown().success());
    let text = std::fs::read_to_string(&log).expect("the configured log file exists");
    assert!(text.contains("not open"), "later log lines go to the configured file: {text}");
    assert!(!text.contains("eval(data)"), "no code in the log at debug level: {text}");
}

/// Two editor windows on one workspace: two server processes, one store file. Both work,
/// neither shows an error, and the second is served from what the first stored.
#[test]
fn two_servers_on_one_workspace_share_the_cache() {
    let ws = workspace();
    let uri = file_uri(&ws.path().join("a.py"));
    let mut first = LspClient::start(ws.path(), Options::default());
    first.open(&uri, "python", 1, PY);
    let d1 = first.diagnostics(&uri, Some(1));
    // Past the writer's commit linger, so the entry is in the file.
    std::thread::sleep(Duration::from_millis(400));

    let mut second = LspClient::start(ws.path(), Options::default());
    second.open(&uri, "python", 1, PY);
    let d2 = second.diagnostics(&uri, Some(1));
    assert_eq!(codes(&d1), codes(&d2));
    let stats = second.request("workspace/executeCommand", json!({"command": "review-lsp.showStats"}));
    assert_eq!(stats["cache"]["hits"], 1, "the second server hit the first one's entry: {stats}");
    assert_eq!(stats["cache"]["store"]["persistent"], true, "{stats}");

    // The first keeps working (and gets the file back when it asks).
    first.change(&uri, 2, full_change(&format!("{PY}\ndef more(y):\n    return eval(y)\n")));
    let again = first.diagnostics(&uri, Some(2));
    assert!(codes(&again).contains(&"python/security/eval".into()));
    let stats = first.request("workspace/executeCommand", json!({"command": "review-lsp.showStats"}));
    assert_eq!(stats["cache"]["store"]["persistent"], true, "{stats}");

    for c in [&mut first, &mut second] {
        let shown: Vec<Value> = c
            .drain(Duration::from_millis(100))
            .into_iter()
            .filter(|m| m["method"] == "window/showMessage" && m["params"]["type"].as_u64().is_some_and(|t| t <= 2))
            .collect();
        assert!(shown.is_empty(), "no errors or warnings shown: {shown:?}");
    }
    assert!(first.shutdown().success());
    assert!(second.shutdown().success());
}

/// `reviewFile {agent}` re-reviews with one agent: its findings replace only that agent's part
/// of what is shown, never the other agents' diagnostics of the file.
#[test]
fn review_file_with_one_agent_keeps_the_other_agents_findings() {
    let ws = workspace();
    let mut c = LspClient::start(ws.path(), Options::default());
    let uri = file_uri(&ws.path().join("a.py"));
    c.open(&uri, "python", 3, PY);
    let before = codes(&c.diagnostics(&uri, Some(3)));
    for rule in ["python/correctness/none-comparison", "python/security/eval"] {
        assert!(before.contains(&rule.to_string()), "{before:?}");
    }
    let answer = c.request(
        "workspace/executeCommand",
        json!({"command": "review-lsp.reviewFile", "arguments": [{"uri": uri, "agent": "security"}]}),
    );
    assert_eq!(answer["version"], 3, "{answer}");
    let after = codes(&c.diagnostics(&uri, Some(3)));
    let mut sorted = (before.clone(), after.clone());
    sorted.0.sort();
    sorted.1.sort();
    assert_eq!(sorted.0, sorted.1, "the security-only review must not drop the correctness findings");
}
