//! Workspace trust in the editor, through the real server: a folder's `review-lsp.toml` that
//! names an LLM endpoint is not used until that folder is trusted (by the
//! `review-lsp.trustWorkspace` command or by answering the server's `showMessageRequest`), and
//! trusting one folder never trusts another. Each folder's endpoint is its own loopback
//! capture server, so "not used" means "received nothing".

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::mock_llm::{bodies, openai, plain};
use common::{LspClient, Options, codes, file_uri};
use serde_json::{Value, json};
use wiremock::MockServer;

const CODE: &str = "def helper(expr):\n    result = eval(expr)\n    return result\n";
const LLM_RULE: &str = "python/security/llm";

/// A folder whose settings send reviews to `server`.
fn folder(root: &Path, name: &str, server: &MockServer) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let settings =
        format!("[llm]\nprovider = \"openai\"\nbase_url = \"{}/v1\"\nmodel = \"mock-model\"\n", server.uri());
    std::fs::write(dir.join("review-lsp.toml"), settings).unwrap();
    std::fs::write(dir.join("util.py"), CODE).unwrap();
    dir
}

fn start(root: &Path, folders: &[&Path], answer: Option<&'static str>, init: Value) -> LspClient {
    let opts = Options {
        folders: Some(folders.iter().map(|f| f.to_path_buf()).collect()),
        message_answer: answer,
        init_options: init,
        ..Options::default()
    };
    LspClient::start(root, opts)
}

fn quick() -> Value {
    json!({"review": {"debounce_ms": 50}})
}

fn open(c: &mut LspClient, dir: &Path) -> String {
    let uri = file_uri(&dir.join("util.py"));
    c.open(&uri, "python", 1, CODE);
    uri
}

/// Waits until `uri` is published with the model's finding.
fn wait_for_llm(c: &mut LspClient, uri: &str) {
    c.wait_for(|m| has_llm_finding(m) && m["params"]["uri"] == uri, common::TIMEOUT, "the model's finding");
}

fn command(c: &mut LspClient, name: &str, args: Value) -> Result<Value, Value> {
    c.try_request("workspace/executeCommand", json!({"command": name, "arguments": args}))
}

fn folder_stats(c: &mut LspClient, dir: &Path) -> Value {
    let stats = command(c, "review-lsp.showStats", json!([])).unwrap();
    let root = dir.to_string_lossy().into_owned();
    stats["folders"].as_array().unwrap().iter().find(|f| f["root"] == root.as_str()).cloned().unwrap()
}

fn has_llm_finding(m: &Value) -> bool {
    m["method"] == "textDocument/publishDiagnostics" && codes(&m["params"]).contains(&LLM_RULE.to_string())
}

fn count(messages: &[Value], method: &str) -> usize {
    messages.iter().filter(|m| m["method"] == method).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn trusting_one_folder_does_not_trust_the_other() {
    let (server_a, server_b) = (openai(plain).await, openai(plain).await);
    let ws = tempfile::tempdir().unwrap();
    let a = folder(ws.path(), "a", &server_a);
    let b = folder(ws.path(), "b", &server_b);
    let stats = tokio::task::spawn_blocking(move || {
        let mut c = start(ws.path(), &[&a, &b], None, quick());
        // Untrusted: offline findings only, and a warning per folder saying how to trust.
        let uri_a = open(&mut c, &a);
        let uri_b = open(&mut c, &b);
        let da = c.diagnostics(&uri_a, Some(1));
        assert!(!codes(&da).contains(&LLM_RULE.into()), "{da}");
        let warning = c.wait_for(
            |m| {
                m["method"] == "window/showMessage" && m["params"]["message"].as_str().unwrap().contains("llm.base_url")
            },
            common::TIMEOUT,
            "the withheld-settings warning",
        );
        let text = warning["params"]["message"].as_str().unwrap();
        assert!(text.contains("review-lsp.trustWorkspace") && text.contains("review-lsp trust"), "{text}");

        // With two folders the command needs to be told which.
        let err = command(&mut c, "review-lsp.trustWorkspace", json!([])).unwrap_err();
        assert!(err.to_string().contains(&file_uri(&a)) && err.to_string().contains(&file_uri(&b)), "{err}");

        let trusted = command(&mut c, "review-lsp.trustWorkspace", json!([file_uri(&a)])).unwrap();
        assert_eq!(trusted["trusted"], true, "{trusted}");
        wait_for_llm(&mut c, &uri_a);
        // b is reviewed again after the reload too, still without its endpoint.
        c.drain(Duration::from_millis(500));
        let stats_b = folder_stats(&mut c, &b);
        let stats_a = folder_stats(&mut c, &a);
        let _ = uri_b;
        assert!(c.shutdown().success());
        (stats_a, stats_b)
    })
    .await
    .unwrap();
    let (stats_a, stats_b) = stats;
    assert_eq!(stats_a["trusted"], true, "{stats_a}");
    let base_url = stats_a["settings"]["settings"].as_array().unwrap().iter().find(|s| s["key"] == "llm.base_url");
    assert_eq!(base_url.unwrap()["origin"]["kind"], "workspace", "{stats_a}");
    assert_eq!(stats_b["trusted"], false, "{stats_b}");
    assert!(stats_b["withheld"].as_array().unwrap().contains(&json!("llm.base_url")), "{stats_b}");
    assert!(!bodies(&server_a).await.is_empty(), "the trusted folder's endpoint was used");
    assert!(bodies(&server_b).await.is_empty(), "the untrusted folder's endpoint received a request");
}

#[tokio::test(flavor = "multi_thread")]
async fn answering_trust_to_the_prompt_trusts_that_folder() {
    let server = openai(plain).await;
    let ws = tempfile::tempdir().unwrap();
    let a = folder(ws.path(), "a", &server);
    tokio::task::spawn_blocking(move || {
        let mut c = start(ws.path(), &[&a], Some("Trust"), quick());
        let asked = c.wait_for(|m| m["method"] == "window/showMessageRequest", common::TIMEOUT, "the trust prompt");
        let text = asked["params"]["message"].as_str().unwrap();
        assert!(text.contains("llm.base_url") && text.ends_with("Trust this workspace?"), "{text}");
        let titles: Vec<&str> =
            asked["params"]["actions"].as_array().unwrap().iter().map(|a| a["title"].as_str().unwrap()).collect();
        assert_eq!(titles, ["Trust", "Not now"]);
        let uri = open(&mut c, &a);
        wait_for_llm(&mut c, &uri);
        assert!(c.shutdown().success());
    })
    .await
    .unwrap();
    assert!(!bodies(&server).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_prompt_comes_once_per_file_version_and_not_now_is_remembered() {
    let server = openai(plain).await;
    let ws = tempfile::tempdir().unwrap();
    let a = folder(ws.path(), "a", &server);
    let base = server.uri();
    tokio::task::spawn_blocking(move || {
        let mut c = start(ws.path(), &[&a], Some("Not now"), quick());
        c.wait_for(|m| m["method"] == "window/showMessageRequest", common::TIMEOUT, "the trust prompt");
        let uri = open(&mut c, &a);
        c.diagnostics(&uri, Some(1));
        // A settings reload re-reads the same file: no second question.
        c.notify("workspace/didChangeConfiguration", json!({"settings": quick()}));
        let settings = file_uri(&a.join("review-lsp.toml"));
        c.notify("textDocument/didSave", json!({"textDocument": {"uri": settings}}));
        let later = c.drain(Duration::from_millis(1500));
        assert_eq!(count(&later, "window/showMessageRequest"), 0, "asked again for the same file: {later:#?}");
        assert!(!later.iter().any(has_llm_finding), "used after Not now");

        // A changed file is a new question.
        let changed = format!("[llm]\nprovider = \"openai\"\nbase_url = \"{base}/v2\"\nmodel = \"mock-model\"\n");
        std::fs::write(a.join("review-lsp.toml"), changed).unwrap();
        c.notify("textDocument/didSave", json!({"textDocument": {"uri": settings}}));
        c.wait_for(|m| m["method"] == "window/showMessageRequest", common::TIMEOUT, "the prompt for the new file");
        assert!(c.shutdown().success());
    })
    .await
    .unwrap();
    assert!(bodies(&server).await.is_empty(), "an untrusted endpoint received a request");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_editor_can_say_the_workspace_is_trusted() {
    let server = openai(plain).await;
    let ws = tempfile::tempdir().unwrap();
    let a = folder(ws.path(), "a", &server);
    // The workspace file claiming trust for itself is an unknown setting, nothing more.
    let mut text = std::fs::read_to_string(a.join("review-lsp.toml")).unwrap();
    text.push_str("[trust]\nworkspace = true\n");
    std::fs::write(a.join("review-lsp.toml"), &text).unwrap();
    let untrusted = a.clone();
    let root = ws.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut c = start(&root, &[&untrusted], None, quick());
        let uri = open(&mut c, &untrusted);
        c.diagnostics(&uri, Some(1));
        let later = c.drain(Duration::from_millis(1000));
        assert!(!later.iter().any(has_llm_finding), "the file trusted itself");
        assert!(c.shutdown().success());
    })
    .await
    .unwrap();
    assert!(bodies(&server).await.is_empty(), "the file trusted itself");

    // VS Code's `isTrusted`, sent by the editor, trusts the folder without a prompt.
    let root = ws.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let init = json!({"review": {"debounce_ms": 50}, "trust": {"workspace": true}});
        let mut c = start(&root, &[&a], Some("Not now"), init);
        let uri = open(&mut c, &a);
        wait_for_llm(&mut c, &uri);
        let all = c.drain(Duration::from_millis(300));
        assert_eq!(count(&all, "window/showMessageRequest"), 0, "a trusted editor workspace was prompted");
        assert!(c.shutdown().success());
    })
    .await
    .unwrap();
    assert!(!bodies(&server).await.is_empty());
}
