//! Outside text never reaches a person raw. A repository whose file names carry ESC/OSC
//! sequences, CR, U+202E and a newline followed by `::error …`, a model whose finding and
//! error carry the same, and settings keys and log paths that do: through the real binary,
//! `scan`'s text, github and markdown outputs, its stderr, the server's showMessage and its
//! log file show them escaped, and the github output stays one workflow command per finding.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{LspClient, Options};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Retitles the terminal, returns to the line start, reverses the text, and forges a
/// workflow command on a line of its own.
const HOSTILE: &str = "a\u{1b}]0;pwned\u{7}\r\u{202e}b\n::error file=x::forged";
const CODE: &str = "def f(data):\n    return eval(data)\n\n\ndef g(x):\n    return exec(x)\n";

/// Control and bidi characters other than the line breaks between lines of output.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars().filter(|&c| c != '\n' && review_lsp::escape::is_unsafe(c)).collect()
}

fn assert_clean(text: &str, what: &str) {
    assert_eq!(raw_controls(text), Vec::<char>::new(), "raw control characters in {what}:\n{text:?}");
}

/// A repository with offline findings in a hostile file name, and a binary file with
/// another hostile name that `scan` skips (a stderr line).
fn hostile_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(format!("{HOSTILE}.py")), CODE).unwrap();
    std::fs::write(dir.path().join(format!("bin{HOSTILE}.py")), b"\0\0\xff binary").unwrap();
    dir
}

fn review_lsp(dir: &Path, args: &[&str]) -> Output {
    Command::new(common::bin())
        .args(args)
        .current_dir(dir)
        .env("XDG_CACHE_HOME", dir.join(".cache"))
        .env("XDG_STATE_HOME", dir.join(".state"))
        .env("OPENAI_API_KEY", "test-openai-key")
        .env_remove("REVIEW_LSP_LOG")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scan(dir: &Path, format: &str) -> Output {
    let out = review_lsp(dir, &["scan", ".", "--fail-on", "none", "--no-cache", "--format", format]);
    assert!(out.status.success(), "scan --format {format}: {}", text(&out.stderr));
    out
}

fn finding_count(dir: &Path) -> usize {
    let report: Value = serde_json::from_slice(&scan(dir, "json").stdout).unwrap();
    report["findings"].as_array().unwrap().len()
}

#[test]
fn scan_outputs_and_stderr_escape_hostile_file_names() {
    let repo = hostile_repo();
    let findings = finding_count(repo.path());
    assert!(findings >= 2, "the hostile file has offline findings");

    let out = scan(repo.path(), "text");
    let stdout = text(&out.stdout);
    assert_clean(&stdout, "text output");
    assert_clean(&text(&out.stderr), "stderr");
    assert!(stdout.contains("a\\u{1b}]0;pwned\\u{7}\\r\\u{202e}b\\n::error file=x::forged.py:2:"), "{stdout}");
    assert_eq!(stdout.lines().count(), findings + 1, "one line per finding and a summary:\n{stdout}");
    assert!(text(&out.stderr).contains("skipped bin"), "the skip is reported: {}", text(&out.stderr));

    let out = scan(repo.path(), "github");
    let stdout = text(&out.stdout);
    assert_clean(&stdout, "github output");
    assert_clean(&text(&out.stderr), "stderr");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), findings, "one workflow command per finding:\n{stdout}");
    for line in &lines {
        assert!(line.starts_with("::error ") || line.starts_with("::warning ") || line.starts_with("::notice "));
        assert!(line.contains(" file=a\\u{1b}]0;pwned\\u{7}\\r\\u{202e}b\\n%3A%3Aerror file=x%3A%3Aforged.py,line="));
        // The only `::` outside the property list is the one that starts the message.
        let properties = line.split_once(' ').unwrap().1.split_once("::").unwrap().0;
        assert!(!properties.contains(':'), "{line}");
    }

    // Another scan keeps the markdown summary; the stored page is shown escaped too.
    let list = review_lsp(repo.path(), &["report", "list", "--format", "json"]);
    let reports: Value = serde_json::from_slice(&list.stdout).unwrap();
    let id = reports[0]["id"].as_u64().expect("a kept report").to_string();
    let md = review_lsp(repo.path(), &["report", "show", &id, "--format", "md"]);
    let page = text(&md.stdout);
    assert_clean(&page, "markdown summary");
    assert!(page.contains("| `a\\u{1b}]0;pwned\\u{7}\\r\\u{202e}b\\n::error file=x::forged.py` |"), "{page}");
}

/// An OpenAI-compatible model whose finding message is hostile.
struct HostileModel;

impl Respond for HostileModel {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let user = body["messages"][1]["content"].as_str().unwrap_or_default();
        let mut reply = common::mock_llm::findings_for(user, false);
        for f in reply["findings"].as_array_mut().unwrap() {
            f["message"] = json!(format!("model says {HOSTILE}\u{1b}[2J"));
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "choices": [{"message": {"role": "assistant", "content": reply.to_string()}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 7}
        }))
    }
}

async fn model(respond: impl Respond + 'static) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/v1/chat/completions")).respond_with(respond).mount(&server).await;
    server
}

async fn scan_with_model(dir: &Path, server: &MockServer, format: &str) -> Output {
    let (dir, base) = (dir.to_path_buf(), format!("{}/v1", server.uri()));
    let format = format.to_string();
    tokio::task::spawn_blocking(move || {
        let args = ["scan", ".", "--fail-on", "none", "--no-cache", "--format", &format, "--provider", "openai"];
        let out = review_lsp(&dir, &[&args[..], &["--model", "mock-model", "--base-url", &base]].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        out
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_model_message_and_error_body_are_escaped() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("app.py"), CODE).unwrap();

    let server = model(HostileModel).await;
    let out = scan_with_model(repo.path(), &server, "text").await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("model says a\\u{1b}]0;pwned\\u{7}\\r\\u{202e}b\\n::error file=x::forged"), "{stdout}");
    assert_clean(&stdout, "text output with the model's findings");
    assert_clean(&text(&out.stderr), "stderr");

    let out = scan_with_model(repo.path(), &server, "github").await;
    let stdout = text(&out.stdout);
    assert_clean(&stdout, "github output with the model's findings");
    let commands = stdout.lines().filter(|l| l.starts_with("::")).count();
    assert_eq!(commands, stdout.lines().count(), "every line is a command:\n{stdout}");
    assert!(stdout.contains("::model says a\\u{1b}]0;pwned\\u{7}\\r\\u{202e}b%0A::error file=x::forged"), "{stdout}");

    let failing = failing_model().await;
    let out = scan_with_model(repo.path(), &failing, "text").await;
    let stderr = text(&out.stderr);
    assert!(stderr.contains("LLM review unavailable"), "the failure is reported: {stderr}");
    assert!(stderr.contains("bad request a\\u{1b}]0;pwned\\u{7} \\u{202e}b ::error"), "shown, escaped: {stderr}");
    assert_clean(&stderr, "stderr with the provider's error");
    for line in stderr.lines() {
        assert!(!line.starts_with("::"), "a stderr line poses as a workflow command: {line}");
    }
}

/// A model that turns every request down with a hostile error message.
async fn failing_model() -> MockServer {
    let error = json!({"error": {"message": format!("bad request {HOSTILE}\u{1b}[2J")}});
    model(ResponseTemplate::new(400).set_body_json(error)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_provider_error_is_escaped_in_show_message() {
    let failing = failing_model().await;
    let base = format!("{}/v1", failing.uri());
    let messages = tokio::task::spawn_blocking(move || {
        let ws = tempfile::tempdir().unwrap();
        let options =
            json!({"review": {"debounce_ms": 20}, "llm": {"provider": "openai", "base_url": base, "model": "m"}});
        let mut c = LspClient::start(ws.path(), Options { init_options: options, ..Options::default() });
        let uri = common::file_uri(&ws.path().join("app.py"));
        c.open(&uri, "python", 1, CODE);
        let shown = c.wait_for(
            |m| m["method"] == "window/showMessage" && m.to_string().contains("unavailable"),
            common::TIMEOUT,
            "the message that the model is unavailable",
        );
        let mut messages = show_messages(&mut c, Duration::from_millis(300));
        messages.push(shown["params"]["message"].as_str().unwrap().to_string());
        assert!(c.shutdown().success());
        messages
    })
    .await
    .unwrap();
    let unavailable = messages.iter().find(|m| m.contains("unavailable")).unwrap();
    assert!(unavailable.contains("bad request a\\u{1b}]0;pwned\\u{7} \\u{202e}b ::error"), "{unavailable}");
    for m in &messages {
        assert_clean(m, "showMessage");
        assert!(!m.contains('\n'), "one line: {m:?}");
    }
}

fn show_messages(c: &mut LspClient, window: Duration) -> Vec<String> {
    c.drain(window)
        .into_iter()
        .filter(|m| m["method"] == "window/showMessage")
        .map(|m| m["params"]["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_hostile_settings_key_is_escaped_in_show_message_and_the_log_file() {
    let ws = tempfile::tempdir().unwrap();
    let logs = ws.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let log = logs.join(format!("server{HOSTILE}.log"));
    let key = format!("bad{HOSTILE}\u{9b}2J");
    let mut options = json!({"review": {"debounce_ms": 50}, "log": {"file": log}});
    options[&key] = json!(1);
    let mut c = LspClient::start(ws.path(), Options { init_options: options, ..Options::default() });
    let messages = show_messages(&mut c, Duration::from_secs(2));
    let settings = messages.iter().find(|m| m.contains("review-lsp settings")).expect("the unknown key is reported");
    assert!(
        settings.contains("bada\\u{1b}]0;pwned\\u{7}\\r\\u{202e}b\\n::error file=x::forged\\u{9b}2J"),
        "{settings}"
    );
    for m in &messages {
        assert_clean(m, "showMessage");
    }
    // A document whose language id is hostile: logged (at debug level) as it came.
    c.open(&common::file_uri(&ws.path().join("notes.txt")), HOSTILE, 1, "text\n");
    c.request("workspace/executeCommand", json!({"command": "review-lsp.showStats"}));
    assert!(c.shutdown().success());

    let named = std::fs::read_to_string(&log).expect("the named log file was written");
    assert!(named.contains("settings problems"), "{named}");
    assert!(named.contains("not a language we review"), "{named}");
    assert_clean(&named, "the named log file");
    let default = common::default_server_log(ws.path());
    assert!(default.contains("logging to"), "{default}");
    assert_clean(&default, "the default log file");
    assert_clean(&std::fs::read_to_string(ws.path().join("stderr.log")).unwrap(), "the server's stderr");
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn a_fifo_as_log_file_neither_hangs_initialize_nor_is_used() {
    let ws = tempfile::tempdir().unwrap();
    let fifo: PathBuf = ws.path().join("log.fifo");
    mkfifo(&fifo);
    let started = Instant::now();
    let options = json!({"review": {"debounce_ms": 50}, "log": {"file": fifo}});
    let mut c = LspClient::start(ws.path(), Options { init_options: options, ..Options::default() });
    assert!(started.elapsed() < Duration::from_secs(5), "initialize took {:?}", started.elapsed());
    let messages = show_messages(&mut c, Duration::from_secs(2));
    assert!(
        messages.iter().any(|m| m.contains("log.file") && m.contains("not a regular file")),
        "the FIFO is refused with a message: {messages:?}"
    );
    // The server still works.
    let uri = common::file_uri(&ws.path().join("a.py"));
    c.open(&uri, "python", 1, CODE);
    assert!(!common::codes(&c.diagnostics(&uri, Some(1))).is_empty());
    assert!(c.shutdown().success());
}
