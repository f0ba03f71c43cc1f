//! The editor's two review phases and the workspace scan against a real model server on
//! loopback: offline diagnostics never wait for model calls, and no result is published over
//! text the user typed since (issue 14 points 3 and 6).

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn is_diagnostics_for(m: &Value, uri: &str) -> bool {
    m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri
}

/// Model calls that hang for 30 s no longer hold the scheduler's workers: before, each open
/// file's review kept its worker until its model call ended, and a newly opened file's offline
/// diagnostics waited behind them (7.2 s measured on 2 cores).
#[tokio::test(flavor = "multi_thread")]
async fn offline_diagnostics_do_not_wait_for_hanging_model_calls() {
    let (server, arrivals) = common::mock_llm::recording_openai(Duration::from_secs(30)).await;
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/v1", server.uri());
    let root = dir.path().to_path_buf();
    // More files than workers, whatever the machine: every worker would be held.
    let workers = 2;
    let hanging = workers + 2;
    let log = arrivals.clone();
    let (offline_after, model_after) = tokio::task::spawn_blocking(move || {
        let opts = common::Options {
            init_options: json!({
                "review": {"debounce_ms": 0, "workers": workers},
                "llm": {"provider": "openai", "base_url": base, "model": "mock-model", "batch_max_files": 1},
                "limits": {"requests_per_minute": 6000, "tokens_per_minute": 100000000, "burst": 100, "max_concurrency": 16, "per_user_requests_per_minute": 6000, "per_user_burst": 100},
            }),
            ..common::Options::default()
        };
        let mut c = common::LspClient::start(&root, opts);
        for i in 0..hanging {
            let uri = common::file_uri(&root.join(format!("open{i}.py")));
            c.open(&uri, "python", 1, &format!("def run{i}(x):\n    return eval(x)\n"));
        }
        let deadline = Instant::now() + common::TIMEOUT;
        while log.lock().unwrap().len() < hanging {
            assert!(Instant::now() < deadline, "the open files' model calls never went out");
            std::thread::sleep(Duration::from_millis(10));
        }
        let uri = common::file_uri(&root.join("active.py"));
        let opened = Instant::now();
        c.open(&uri, "python", 1, "def typed_now(x):\n    return eval(x)\n");
        let diagnostics = c.diagnostics(&uri, Some(1));
        let offline_after = opened.elapsed();
        assert!(common::codes(&diagnostics).iter().any(|c| c.ends_with("eval")), "{diagnostics}");
        while !log.lock().unwrap().iter().any(|(_, body)| body.contains("File: active.py")) {
            assert!(opened.elapsed() < Duration::from_secs(10), "the active file's model call never went out");
            std::thread::sleep(Duration::from_millis(10));
        }
        (offline_after, opened.elapsed())
    })
    .await
    .unwrap();
    eprintln!("with {hanging} model calls hanging: offline diagnostics {offline_after:?}, model call {model_after:?}");
    assert!(offline_after < Duration::from_secs(2), "offline diagnostics took {offline_after:?}");
    assert!(model_after < Duration::from_secs(3), "the active file's model call waited {model_after:?}");
}

/// A scan reads a file from disk and waits for its model batch; meanwhile the user opens the
/// file and types. The scan's result is for text the editor no longer shows: it is dropped,
/// never published (before, it was published unversioned over the open document).
#[tokio::test(flavor = "multi_thread")]
async fn a_scan_never_publishes_over_text_typed_since() {
    let (server, arrivals) = common::mock_llm::recording_openai(Duration::from_secs(2)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.py"), "def run(x):\n    return eval(x)\n").unwrap();
    let base = format!("{}/v1", server.uri());
    let root = dir.path().to_path_buf();
    let log = arrivals.clone();
    tokio::task::spawn_blocking(move || {
        let opts = common::Options {
            init_options: json!({
                "review": {"debounce_ms": 0},
                "llm": {"provider": "openai", "base_url": base, "model": "mock-model", "batch_max_files": 1},
            }),
            ..common::Options::default()
        };
        let mut c = common::LspClient::start(&root, opts);
        let uri = common::file_uri(&root.join("a.py"));
        let scan = c.send_request("workspace/executeCommand", json!({"command": "review-lsp.scanWorkspace"}));
        let deadline = Instant::now() + common::TIMEOUT;
        while log.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "the scan never reached the model");
            std::thread::sleep(Duration::from_millis(10));
        }
        // The scan's offline result for the file on disk, published before its model call.
        let before = c.drain(Duration::from_millis(300));
        assert!(before.iter().any(|m| is_diagnostics_for(m, &uri)), "{before:#?}");
        c.open(&uri, "python", 1, "def run(x):\n    return int(x)\n");
        let result = c.response(scan, Duration::from_secs(30)).unwrap();
        assert_eq!(result["files_scanned"], 1, "{result}");
        let after = c.drain(Duration::from_millis(500));
        let published: Vec<&Value> = after.iter().filter(|m| is_diagnostics_for(m, &uri)).collect();
        assert!(!published.is_empty(), "the open document's own review publishes");
        for m in &published {
            assert_eq!(m["params"]["version"], 1, "published over the open document: {m:#}");
            let codes = common::codes(&m["params"]);
            assert!(!codes.iter().any(|c| c.contains("eval") || c.ends_with("/llm")), "stale findings: {m:#}");
        }
    })
    .await
    .unwrap();
}

/// `[review] workers` sizes the server's worker pool, and a change applies at run time (before,
/// the server always ran one worker per core whatever the settings said).
#[test]
fn the_server_honours_review_workers_and_a_change_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let opts = common::Options { init_options: json!({"review": {"workers": 3}}), ..common::Options::default() };
    let mut c = common::LspClient::start(dir.path(), opts);
    let workers = |c: &mut common::LspClient| {
        c.request("workspace/executeCommand", json!({"command": "review-lsp.showStats"}))["workers"].clone()
    };
    assert_eq!(workers(&mut c), 3);
    c.notify("workspace/didChangeConfiguration", json!({"settings": {"review-lsp": {"review": {"workers": 1}}}}));
    let deadline = Instant::now() + common::TIMEOUT;
    while workers(&mut c) != 1 {
        assert!(Instant::now() < deadline, "the pool was not resized");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(c.shutdown().success());
}
