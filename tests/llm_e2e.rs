//! LLM agents end to end: the real binary (`scan` and the LSP server) against a mock of the
//! OpenAI chat-completions API that "reviews" what it is sent, so every request body can be
//! checked for what must never leave the machine.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::mock_llm::{AnthropicReviewer, GeminiReviewer, bodies, fenced, garbage, injected, plain};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

const SECRET: &str = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
const COMMENT: &str = "COMMENT-MARKER-never-sent";

async fn mock(reply: fn(&str) -> String) -> MockServer {
    common::mock_llm::openai(reply).await
}

fn project(dir: &Path) {
    std::fs::write(
        dir.join("app.py"),
        format!(
            "\"\"\"App module docstring.\"\"\"\nimport json\n\nAPI_TOKEN = \"{SECRET}\"\n\n\ndef run(data):\n    # {COMMENT}\n    value = eval(data)\n    return json.dumps(value)\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("util.py"), "def helper(expr):\n    result = eval(expr)\n    return result\n").unwrap();
    std::fs::write(dir.join("private.py"), "def hidden(x):\n    return eval(x)  # PRIVATE-MARKER\n").unwrap();
    std::fs::write(dir.join(".gitignore"), "private.py\n").unwrap();
}

async fn scan(dir: &Path, server: &MockServer) -> Value {
    scan_with(dir, "openai", &format!("{}/v1", server.uri()), &[]).await
}

async fn scan_with(dir: &Path, provider: &str, base: &str, extra: &[&str]) -> Value {
    let dir = dir.to_path_buf();
    let (provider, base) = (provider.to_string(), base.to_string());
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        common::command()
            .args(["scan", ".", "--format", "json", "--fail-on", "none", "--provider", &provider])
            .args(["--model", "mock-model", "--base-url", &base])
            .args(&extra)
            .current_dir(&dir)
            .env("ANTHROPIC_API_KEY", "test-anthropic-key-value")
            .env("GEMINI_API_KEY", "test-gemini-key-value")
            .env("XDG_CACHE_HOME", dir.join(".cache"))
            .env("REVIEW_LSP_LOG", "trace")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(SECRET), "the secret reached the log");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn llm_findings(report: &Value) -> Vec<(String, u64, bool)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "python/security/llm")
        .map(|f| (f["path"].as_str().unwrap().to_string(), f["line"].as_u64().unwrap(), !f["fix"].is_null()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_batches_redacts_routes_and_caches() {
    let server = mock(plain).await;
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let report = scan(dir.path(), &server).await;

    let mut found = llm_findings(&report);
    found.sort();
    assert_eq!(found, vec![("app.py".into(), 9, false), ("util.py".into(), 2, false)], "{report}");
    assert_eq!(report["findings"].as_array().unwrap().iter().filter(|f| f["source"] == "openai:mock-model").count(), 2);

    let sent = bodies(&server).await;
    assert!(!sent.is_empty());
    for body in &sent {
        assert!(!body.contains(SECRET), "a secret left the machine");
        // The documentation agent reviews comments; every other agent gets them stripped.
        if !body.contains("review for DOCUMENTATION") {
            assert!(
                !body.contains(COMMENT) && !body.contains("App module docstring"),
                "comments are stripped before sending"
            );
        }
        assert!(!body.contains("PRIVATE-MARKER") && !body.contains("private.py"), "an ignored file was sent");
    }
    // Both files' security chunks went in one batched call, and findings came back to each.
    let security: Vec<&String> = sent.iter().filter(|b| b.contains("review for SECURITY")).collect();
    assert_eq!(security.len(), 1, "one security call for two small files");
    assert!(security[0].contains("File: app.py") && security[0].contains("File: util.py"));
    assert_eq!(report["stats"]["llm_calls"].as_u64().unwrap(), sent.len() as u64);
    assert_eq!(report["stats"]["prompt_tokens"].as_u64().unwrap(), 100 * sent.len() as u64);
    assert_eq!(report["stats"]["completion_tokens"].as_u64().unwrap(), 7 * sent.len() as u64);

    // Warm: nothing is sent again, and the findings are the same.
    let again = scan(dir.path(), &server).await;
    assert_eq!(bodies(&server).await.len(), sent.len(), "a warm rescan makes no calls");
    let mut found_again = llm_findings(&again);
    found_again.sort();
    assert_eq!(found_again, found);

    // Editing one function sends that function only.
    std::fs::write(dir.path().join("util.py"), "def helper(expr):\n    result = eval(expr)\n    return result + 1\n")
        .unwrap();
    let third = scan(dir.path(), &server).await;
    let new: Vec<String> = bodies(&server).await.split_off(sent.len());
    assert!(!new.is_empty(), "the changed chunk is reviewed");
    for body in &new {
        assert!(body.contains("result + 1"), "{body}");
        assert!(!body.contains("json.dumps"), "unchanged chunks are not sent again");
    }
    assert!(llm_findings(&third).contains(&("app.py".into(), 9, false)), "cached findings stay");
}

#[tokio::test(flavor = "multi_thread")]
async fn fenced_replies_parse_and_injected_rewrites_are_refused() {
    let server = mock(fenced).await;
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let report = scan(dir.path(), &server).await;
    assert_eq!(llm_findings(&report).len(), 2, "{report}");

    let server = mock(injected).await;
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let report = scan(dir.path(), &server).await;
    let found = llm_findings(&report);
    assert_eq!(found.len(), 2, "the findings stay: {report}");
    assert!(found.iter().all(|(_, _, has_fix)| !has_fix), "a whole-file rewrite is never offered: {report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_replies_keep_offline_findings_and_are_not_cached() {
    let server = mock(garbage).await;
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let report = scan(dir.path(), &server).await;
    assert!(llm_findings(&report).is_empty());
    let offline: Vec<&Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["rule"] == "python/security/eval").collect();
    assert_eq!(offline.len(), 2, "offline findings still appear: {report}");
    let calls = bodies(&server).await.len();
    scan(dir.path(), &server).await;
    assert!(bodies(&server).await.len() > calls, "an unparseable reply is retried next time, never cached");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_publishes_offline_then_llm_findings() {
    let server = mock(plain).await;
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let base = format!("{}/v1", server.uri());
    let root = dir.path().to_path_buf();
    let found = tokio::task::spawn_blocking(move || {
        let opts = common::Options {
            init_options: json!({"llm": {"provider": "openai", "base_url": base, "model": "mock-model"}}),
            ..common::Options::default()
        };
        let mut c = common::LspClient::start(&root, opts);
        let uri = common::file_uri(&root.join("util.py"));
        c.open(&uri, "python", 1, "def helper(expr):\n    result = eval(expr)\n    return result\n");
        // The offline set comes first; wait until the model's finding is in.
        loop {
            let d = c.diagnostics(&uri, Some(1));
            if common::codes(&d).contains(&"python/security/llm".to_string()) {
                let stats =
                    c.request("workspace/executeCommand", json!({"command": "review-lsp.showStats", "arguments": []}));
                let private = common::file_uri(&root.join("private.py"));
                c.open(&private, "python", 1, "def hidden(x):\n    return eval(x)  # PRIVATE-MARKER\n");
                let p = c.diagnostics(&private, Some(1));
                return (common::codes(&d), stats, common::codes(&p));
            }
        }
    })
    .await
    .unwrap();
    let (codes, stats, private_codes) = found;
    assert!(codes.contains(&"python/security/eval".to_string()), "{codes:?}");
    assert!(stats["llm"]["calls"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["llm"]["agents"]["security"], "openai:mock-model");
    assert!(private_codes.contains(&"python/security/eval".to_string()), "offline still reviews ignored files");
    for body in bodies(&server).await {
        assert!(!body.contains("PRIVATE-MARKER"), "an ignored file open in the editor was sent");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_and_gemini_work_end_to_end_through_scan_and_the_server() {
    let anthropic = MockServer::start().await;
    Mock::given(method("POST")).and(path("/v1/messages")).respond_with(AnthropicReviewer).mount(&anthropic).await;
    let gemini = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1beta/models/mock-model:generateContent"))
        .respond_with(GeminiReviewer)
        .mount(&gemini)
        .await;
    for (provider, base, server) in [
        ("anthropic", format!("{}/v1", anthropic.uri()), &anthropic),
        ("gemini", format!("{}/v1beta", gemini.uri()), &gemini),
    ] {
        let dir = tempfile::tempdir().unwrap();
        project(dir.path());
        let report = scan_with(dir.path(), provider, &base, &[]).await;
        let mut found = llm_findings(&report);
        found.sort();
        assert_eq!(found, vec![("app.py".into(), 9, false), ("util.py".into(), 2, false)], "{provider}: {report}");
        assert!(report["stats"]["prompt_tokens"].as_u64().unwrap() > 0, "{provider} usage is read");
        for body in bodies(server).await {
            assert!(
                !body.contains(SECRET)
                    && !body.contains("test-anthropic-key-value")
                    && !body.contains("test-gemini-key-value")
            );
        }

        // The server, with the key in its environment and the provider in the editor settings.
        let root = dir.path().to_path_buf();
        let (provider, base) = (provider.to_string(), base.clone());
        let codes = tokio::task::spawn_blocking(move || {
            // SAFETY: set before the child starts; the variables are only for the child.
            unsafe {
                std::env::set_var("ANTHROPIC_API_KEY", "test-anthropic-key-value");
                std::env::set_var("GEMINI_API_KEY", "test-gemini-key-value");
            }
            let opts = common::Options {
                init_options: json!({"llm": {"provider": provider, "base_url": base, "model": "mock-model"}}),
                ..common::Options::default()
            };
            let mut c = common::LspClient::start(&root, opts);
            let uri = common::file_uri(&root.join("util.py"));
            c.open(&uri, "python", 1, "def helper(expr):\n    result = eval(expr)\n    return result\n");
            loop {
                let codes = common::codes(&c.diagnostics(&uri, Some(1)));
                if codes.contains(&"python/security/llm".to_string()) {
                    let log = common::default_server_log(&root);
                    assert!(
                        !log.contains("test-anthropic-key-value") && !log.contains("test-gemini-key-value"),
                        "a key reached the log"
                    );
                    return codes;
                }
            }
        })
        .await
        .unwrap();
        assert!(codes.contains(&"python/security/eval".to_string()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_scan_batches_files_into_shared_calls() {
    let server = mock(plain).await;
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let base = format!("{}/v1", server.uri());
    let root = dir.path().to_path_buf();
    let (result, util) = tokio::task::spawn_blocking(move || {
        let opts = common::Options {
            init_options: json!({"llm": {"provider": "openai", "base_url": base, "model": "mock-model"}}),
            ..common::Options::default()
        };
        let mut c = common::LspClient::start(&root, opts);
        let result =
            c.request("workspace/executeCommand", json!({"command": "review-lsp.scanWorkspace", "arguments": []}));
        let uri = common::file_uri(&root.join("util.py"));
        // The offline set is published first, the combined set after the batch returns.
        loop {
            let codes = common::codes(&c.diagnostics(&uri, None));
            if codes.contains(&"python/security/llm".to_string()) {
                return (result, codes);
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(result["files_scanned"], 2, "{result}");
    assert!(util.contains(&"python/security/eval".to_string()));
    let sent = bodies(&server).await;
    let security: Vec<&String> = sent.iter().filter(|b| b.contains("review for SECURITY")).collect();
    assert_eq!(security.len(), 1, "one security call for both files");
    assert!(security[0].contains("File: app.py") && security[0].contains("File: util.py"));
    assert!(sent.iter().all(|b| !b.contains("PRIVATE-MARKER")), "ignored files stay out of the scan");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quota_error_is_not_retried_and_offline_findings_remain() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(wiremock::ResponseTemplate::new(429).set_body_json(json!({
            "error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}
        })))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("util.py"), "def _helper(expr):\n    return eval(expr)\n").unwrap();
    let report = scan(dir.path(), &server).await;
    assert_eq!(bodies(&server).await.len(), 1, "a quota error is never retried, and stops further calls");
    assert!(llm_findings(&report).is_empty());
    assert!(report["findings"].as_array().unwrap().iter().any(|f| f["rule"] == "python/security/eval"), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daily_budget_is_persisted_across_runs() {
    let server = mock(plain).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("util.py"), "def helper(expr):\n    return eval(expr)\n").unwrap();
    std::fs::write(dir.path().join("review-lsp.toml"), "[budget]\ndaily_token_budget = 1\n").unwrap();
    let first = scan(dir.path(), &server).await;
    let spent_calls = bodies(&server).await.len();
    assert!(spent_calls >= 1, "the first run spends the budget");
    assert!(!llm_findings(&first).is_empty());

    // A new process, without the results cache: only the stored spend can stop the calls.
    let second = scan_with(dir.path(), "openai", &format!("{}/v1", server.uri()), &["--no-cache"]).await;
    assert!(llm_findings(&second).is_empty(), "{second}");
    assert_eq!(bodies(&server).await.len(), spent_calls, "the spend of the first run counts in the second");
    assert!(second["findings"].as_array().unwrap().iter().any(|f| f["rule"] == "python/security/eval"), "{second}");
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_says_when_and_why_it_waits_for_the_rate_limit() {
    let server = mock(plain).await;
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    // One request every 2 s and no burst: the second agent's call must wait.
    std::fs::write(dir.path().join("review-lsp.toml"), "[limits]\nrequests_per_minute = 30\nburst = 1\n").unwrap();
    let (bin, root, base) = (common::bin(), dir.path().to_path_buf(), format!("{}/v1", server.uri()));
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .args(["scan", ".", "--format", "json", "--fail-on", "none", "--provider", "openai"])
            .args(["--model", "mock-model", "--base-url", &base])
            .current_dir(&root)
            .env("XDG_CACHE_HOME", root.join(".cache"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(bodies(&server).await.len() >= 2, "needs two calls to make one wait");
    let line =
        stderr.lines().find(|l| l.contains("waiting")).unwrap_or_else(|| panic!("no waiting line in:\n{stderr}"));
    assert!(line.contains("for the rate limit of openai:mock-model@") && line.contains(" s "), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_active_edit_during_a_big_scan_is_served_first() {
    let (server, arrivals) = common::mock_llm::recording_openai(Duration::from_millis(200)).await;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..12 {
        std::fs::write(dir.path().join(format!("mod{i:02}.py")), format!("def run{i}(x):\n    return eval(x)\n"))
            .unwrap();
    }
    let base = format!("{}/v1", server.uri());
    let root = dir.path().to_path_buf();
    let log = arrivals.clone();
    let (edited_at, served_at, scan_done_after) = tokio::task::spawn_blocking(move || {
        let opts = common::Options {
            init_options: json!({
                "review": {"debounce_ms": 50},
                // One call per file and agent, two calls a second: the scan takes about 12 s.
                "llm": {"provider": "openai", "base_url": base, "model": "mock-model", "batch_max_files": 1},
                "limits": {"requests_per_minute": 120, "burst": 1},
            }),
            ..common::Options::default()
        };
        let mut c = common::LspClient::start(&root, opts);
        let scan = c.send_request("workspace/executeCommand", json!({"command": "review-lsp.scanWorkspace"}));
        let deadline = Instant::now() + common::TIMEOUT;
        while log.lock().unwrap().len() < 3 {
            assert!(Instant::now() < deadline, "the scan never reached the model");
            std::thread::sleep(Duration::from_millis(20));
        }
        let uri = common::file_uri(&root.join("active.py"));
        let edited_at = Instant::now();
        c.open(&uri, "python", 1, "def typed_now(x):\n    return eval(x)\n");
        loop {
            let codes = common::codes(&c.diagnostics(&uri, Some(1)));
            if codes.contains(&"python/security/llm".to_string()) {
                break;
            }
        }
        let served_at = Instant::now();
        let still_scanning = c.poll_response(scan).is_none();
        assert!(still_scanning, "the scan ended before the active file was served; the test proves nothing");
        let result = c.response(scan, Duration::from_secs(60)).unwrap();
        assert_eq!(result["files_scanned"], 12, "{result}");
        (edited_at, served_at, Instant::now() - served_at)
    })
    .await
    .unwrap();
    let arrivals = arrivals.lock().unwrap().clone();
    let active =
        arrivals.iter().position(|(_, body)| body.contains("File: active.py")).expect("the active file was sent");
    let scan_calls_in_between = arrivals[..active].iter().filter(|(at, _)| *at > edited_at).count();
    assert!(
        scan_calls_in_between <= 1,
        "{scan_calls_in_between} scan calls went out between the edit and the active file's call"
    );
    assert!(arrivals.len() - active > 5, "most of the scan was still queued behind the active file");
    eprintln!(
        "active edit → LLM diagnostics {:?} during the scan; scan finished {:?} later",
        served_at - edited_at,
        scan_done_after
    );
}

/// Issue 13 point 5: before anything is sent, `scan` says where the code goes.
#[tokio::test(flavor = "multi_thread")]
async fn scan_names_the_destination_on_its_first_stderr_line() {
    let server = mock(plain).await;
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let base = format!("{}/v1", server.uri());
    let root = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || common::scan_with_model(&root, &base, &[])).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("review-lsp: sending code to 127.0.0.1 (model mock-model) for agents "),
        "first stderr line: {first:?}\n{stderr}"
    );
    assert!(first.contains("security"), "{first}");
    // Offline only: no such line.
    let offline = Command::new(common::bin())
        .args(["scan", ".", "--format", "json", "--fail-on", "none"])
        .current_dir(dir.path())
        .env("XDG_CACHE_HOME", dir.path().join(".cache-offline"))
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&offline.stderr).contains("sending code to"));
}
