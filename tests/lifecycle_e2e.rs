//! How the server ends, through the real binary (issue 13 point 10): `exit` after `shutdown`
//! is code 0 and quick, `exit` alone is code 1 (the LSP specification), the server goes when
//! the editor's process (`processId`) dies, and a closed stdin ends it promptly even while a
//! model call hangs. Also the first LLM call naming where the code went (point 5).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The bound asserted; the target is 100 ms, and the figure is printed.
const PROMPT: Duration = Duration::from_secs(1);

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.py"), "def f(x):\n    return eval(x)\n").unwrap();
    dir
}

#[test]
fn shutdown_then_exit_ends_with_code_0_at_once() {
    let dir = project();
    let mut c = common::LspClient::start(dir.path(), common::Options::default());
    c.request("shutdown", Value::Null);
    let sent = Instant::now();
    c.notify("exit", Value::Null);
    let (status, _) = c.wait_exit(Duration::from_secs(10)).expect("the server exited");
    let took = sent.elapsed();
    eprintln!("exit after shutdown: code {:?} in {took:?}", status.code());
    assert_eq!(status.code(), Some(0));
    assert!(took < PROMPT, "exit took {took:?}");
}

#[test]
fn exit_without_shutdown_ends_with_code_1() {
    let dir = project();
    let mut c = common::LspClient::start(dir.path(), common::Options::default());
    let sent = Instant::now();
    c.notify("exit", Value::Null);
    let (status, _) = c.wait_exit(Duration::from_secs(10)).expect("the server exited");
    eprintln!("exit without shutdown: code {:?} in {:?}", status.code(), sent.elapsed());
    assert_eq!(status.code(), Some(1));
    assert!(sent.elapsed() < PROMPT, "exit took {:?}", sent.elapsed());
}

#[test]
fn the_server_ends_when_the_editor_process_dies() {
    let dir = project();
    let mut editor = Command::new("sleep").arg("30").stdin(Stdio::null()).spawn().unwrap();
    let opts = common::Options { process_id: Some(editor.id()), ..common::Options::default() };
    let mut c = common::LspClient::start(dir.path(), opts);
    // Alive while the editor is.
    assert!(c.wait_exit(Duration::from_millis(1500)).is_none(), "the server left while its editor was alive");
    editor.kill().unwrap();
    editor.wait().unwrap(); // reaped: a zombie would still count as alive
    let (status, took) = c.wait_exit(Duration::from_secs(10)).expect("the server exited after its editor died");
    eprintln!("editor died: server exited with {:?} after {took:?}", status.code());
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    assert_eq!(status.code(), Some(1), "no shutdown came first");
}

/// A model that never answers in time: stdin closing (the editor gone) must not wait for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_closed_stdin_ends_the_server_while_a_model_call_hangs() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .mount(&server)
        .await;
    let dir = project();
    let root = dir.path().to_path_buf();
    let base = format!("{}/v1", server.uri());
    let mut c = tokio::task::spawn_blocking(move || {
        let opts = common::Options {
            init_options: json!({
                "review": {"debounce_ms": 0},
                "llm": {"provider": "openai", "base_url": base, "model": "mock-model", "timeout_secs": 120},
            }),
            ..common::Options::default()
        };
        let mut c = common::LspClient::start(&root, opts);
        let uri = common::file_uri(&root.join("a.py"));
        c.open(&uri, "python", 1, "def f(x):\n    return eval(x)\n");
        c
    })
    .await
    .unwrap();
    let asked = Instant::now();
    while server.received_requests().await.unwrap().is_empty() {
        assert!(asked.elapsed() < Duration::from_secs(20), "the model was never called");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ended = tokio::task::spawn_blocking(move || {
        c.close_stdin();
        c.wait_exit(Duration::from_secs(10))
    })
    .await
    .unwrap();
    let (status, took) = ended.expect("the server exited after stdin closed");
    eprintln!("stdin closed during a hung model call: exited with {:?} after {took:?}", status.code());
    assert!(took < PROMPT, "took {took:?}");
}

/// Issue 13 point 5: the session's first model call names the host and model, once.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_llm_call_names_where_the_code_went() {
    let server = common::mock_llm::openai(common::mock_llm::plain).await;
    let dir = project();
    let root = dir.path().to_path_buf();
    let base = format!("{}/v1", server.uri());
    let messages = tokio::task::spawn_blocking(move || {
        let opts = common::Options {
            init_options: json!({"llm": {"provider": "openai", "base_url": base, "model": "mock-model"}}),
            ..common::Options::default()
        };
        let mut c = common::LspClient::start(&root, opts);
        for (i, name) in ["a.py", "b.py"].iter().enumerate() {
            let uri = common::file_uri(&root.join(name));
            c.open(&uri, "python", 1, &format!("def f{i}(x):\n    return eval(x)\n"));
            loop {
                let d = c.diagnostics(&uri, Some(1));
                if common::codes(&d).contains(&"python/security/llm".to_string()) {
                    break;
                }
            }
        }
        let seen = c.drain(Duration::from_millis(300));
        assert!(c.shutdown().success());
        seen
    })
    .await
    .unwrap();
    let named: Vec<&str> = messages
        .iter()
        .filter(|m| m["method"] == "window/showMessage")
        .filter_map(|m| m["params"]["message"].as_str())
        .filter(|text| text.contains("sending code to"))
        .collect();
    assert_eq!(named.len(), 1, "named once per session: {named:?}");
    assert!(named[0].contains("127.0.0.1") && named[0].contains("model mock-model"), "{named:?}");
    let info = messages.iter().find(|m| m["params"]["message"].as_str() == Some(named[0])).unwrap();
    assert_eq!(info["params"]["type"], 3, "an INFO message");
}
