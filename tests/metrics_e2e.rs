//! Observability end to end: scrape `/metrics` from the real server after a scan against the
//! mock model and check the counters' values; `scan --metrics-file`; and the
//! `review-lsp/status` notification as the breaker opens.

mod common;

use std::io::{Read, Write};
use std::path::Path;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn project(dir: &Path) {
    for i in 0..3 {
        std::fs::write(dir.join(format!("m{i}.py")), format!("def f{i}(x):\n    return eval(x)\n")).unwrap();
    }
}

fn scrape(addr: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// The value of the series named exactly `series` (with its labels, as encoded).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_after_a_scan_count_what_happened() {
    let server = common::mock_llm::openai(common::mock_llm::plain).await;
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let port = common::redis::free_port();
    let base = format!("{}/v1", server.uri());
    let root = dir.path().to_path_buf();
    let (text, stats) = tokio::task::spawn_blocking(move || {
        let opts = common::Options {
            init_options: json!({
                "llm": {"provider": "openai", "base_url": base, "model": "mock-model"},
                "metrics": {"addr": port.to_string()},
            }),
            ..common::Options::default()
        };
        let mut c = common::LspClient::start(&root, opts);
        let result = c.request("workspace/executeCommand", json!({"command": "review-lsp.scanWorkspace"}));
        assert_eq!(result["files_scanned"], 3, "{result}");
        let stats = c.request("workspace/executeCommand", json!({"command": "review-lsp.showStats"}));
        let text = scrape(&format!("127.0.0.1:{port}"));
        assert!(c.shutdown().success());
        (text, stats)
    })
    .await
    .unwrap();
    assert_eq!(stats["metrics_addr"], format!("127.0.0.1:{port}"), "loopback by default");

    let sent = server.received_requests().await.unwrap();
    let security = sent.iter().filter(|r| String::from_utf8_lossy(&r.body).contains("review for SECURITY")).count();
    assert!(security >= 1);
    assert_eq!(value(&text, r#"code_review_requests_total{type="scan",status="ok"}"#), 3.0);
    assert_eq!(value(&text, r#"code_review_duration_seconds_count{type="scan"}"#), 3.0);
    // The mock meters 100 prompt and 7 completion tokens per call.
    let key = r#"llm_tokens_total{agent="security",model="mock-model",kind="prompt"}"#;
    assert_eq!(value(&text, key), 100.0 * security as f64);
    let key = r#"llm_tokens_total{agent="security",model="mock-model",kind="completion"}"#;
    assert_eq!(value(&text, key), 7.0 * security as f64);
    assert!(value(&text, "cache_misses_total") >= 3.0, "a cold scan misses");
    assert_eq!(value(&text, r#"request_queue_depth{priority="workspace"}"#), 0.0);
    assert_eq!(value(&text, r#"queue_wait_seconds_count{priority="workspace"}"#), 3.0);
    let endpoint = format!("openai:mock-model@{}/v1", server.uri());
    assert_eq!(value(&text, &format!(r#"llm_breaker_state{{endpoint="{endpoint}"}}"#)), 0.0);
    assert_eq!(value(&text, "llm_budget_used_ratio"), 0.0);
    assert!(value(&text, r#"llm_limiter_wait_seconds_count{priority="workspace"}"#) >= security as f64);
    assert!(!text.contains("llm_api_errors_total{"), "no API errors: {text}");
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn scan_writes_the_metrics_file_for_ci() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let file = dir.path().join("metrics.prom");
    let out = common::command()
        .args(["scan", ".", "--fail-on", "none", "--metrics-file"])
        .arg(&file)
        .current_dir(dir.path())
        .env("XDG_CACHE_HOME", dir.path().join(".cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(value(&text, r#"code_review_requests_total{type="cli",status="ok"}"#), 3.0);
    assert!(value(&text, "cache_misses_total") >= 3.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_notification_follows_the_breaker() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/v1", server.uri());
    let root = dir.path().to_path_buf();
    let states = tokio::task::spawn_blocking(move || {
        let opts = common::Options {
            init_options: json!({
                "review": {"debounce_ms": 50},
                "llm": {"provider": "openai", "base_url": base, "model": "mock-model"},
                "limits": {"breaker_failures": 1, "retry_attempts": 1, "breaker_open_secs": 60},
            }),
            ..common::Options::default()
        };
        let mut c = common::LspClient::start(&root, opts);
        let first = c.wait_for(|m| m["method"] == "review-lsp/status", common::TIMEOUT, "the first status");
        let uri = common::file_uri(&root.join("a.py"));
        c.open(&uri, "python", 1, "def f(x):\n    return eval(x)\n");
        let open = c.wait_for(
            |m| m["method"] == "review-lsp/status" && m["params"]["state"] == "breaker_open",
            common::TIMEOUT,
            "breaker_open status",
        );
        let stats = c.request("workspace/executeCommand", json!({"command": "review-lsp.showStats"}));
        assert!(c.shutdown().success());
        (first, open, stats)
    })
    .await
    .unwrap();
    let (first, open, stats): (Value, Value, Value) = states;
    assert_eq!(first["params"]["state"], "idle", "{first}");
    assert!(open["params"]["message"].as_str().unwrap().contains("is failing"), "{open}");
    assert_eq!(stats["status"]["state"], "breaker_open", "{stats}");
}
