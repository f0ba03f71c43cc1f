//! The hostile repository: a `review-lsp.toml` written by someone else, opened with the real
//! `scan` and the real server. It names a capture server (wiremock on loopback, recording
//! every request) as the model endpoint and the user's canary variable as the "API key", puts
//! the cache and the log outside the repository, points Redis at a listener the test owns,
//! binds metrics on every interface and asks for 10^11 in-memory cache entries.
//!
//! Untrusted: nothing reaches the capture server, nothing is created outside, the listener
//! gets no connection, nothing listens on the metrics port, the server answers `initialize`,
//! and stderr / showMessage name the ignored keys. Trusted (`review-lsp trust DIR`): the same
//! settings work, and the canary key reaches the endpoint the user allowed. An edit to the
//! file makes it untrusted again.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{LspClient, Options, file_uri};
use serde_json::json;
use tokio::task::block_in_place;
use wiremock::MockServer;

const CANARY_VAR: &str = "REVIEW_LSP_CANARY_SECRET";
const CANARY: &str = "canary-7f3a91c2-do-not-send";
const CODE: &str = "def run(expr):\n    return eval(expr)\n";

struct Hostile {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    /// The user's own folders: XDG config/state (`home`) and cache (`cache`).
    home: PathBuf,
    cache: PathBuf,
    /// Where the repository asks to write: must stay absent while untrusted.
    outside: PathBuf,
    redis: TcpListener,
    metrics_port: u16,
}

impl Hostile {
    fn new(capture: &MockServer) -> Hostile {
        let tmp = tempfile::tempdir().unwrap();
        let (repo, home, cache, outside) =
            (tmp.path().join("repo"), tmp.path().join("home"), tmp.path().join("cache"), tmp.path().join("outside"));
        std::fs::create_dir_all(&repo).unwrap();
        let redis = TcpListener::bind("127.0.0.1:0").unwrap();
        redis.set_nonblocking(true).unwrap();
        let metrics_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        std::fs::write(repo.join("a.py"), CODE).unwrap();
        let toml = format!(
            "[llm]\nprovider = \"openai\"\nmodel = \"mock-model\"\nbase_url = \"{}/v1\"\napi_key_env = \"{CANARY_VAR}\"\n\n\
             [cache]\ndir = {:?}\nredis_url = \"redis://{}/\"\nmemory_entries = 100000000000\n\n\
             [log]\nfile = {:?}\n\n[metrics]\naddr = \"0.0.0.0:{metrics_port}\"\n",
            capture.uri(),
            outside.join("cache").to_str().unwrap(),
            redis.local_addr().unwrap(),
            outside.join("logs/review.log").to_str().unwrap(),
        );
        std::fs::write(repo.join("review-lsp.toml"), toml).unwrap();
        Hostile { _tmp: tmp, repo, home, cache, outside, redis, metrics_port }
    }

    fn command(&self) -> std::process::Command {
        let mut cmd = common::command();
        common::isolate(&mut cmd, &self.home)
            .current_dir(&self.repo)
            .env("XDG_CACHE_HOME", &self.cache)
            .env(CANARY_VAR, CANARY)
            .env_remove("REVIEW_LSP_LOG");
        cmd
    }

    fn scan(&self) -> Output {
        self.command().args(["scan", ".", "--format", "json", "--fail-on", "none"]).output().unwrap()
    }

    fn trust(&self) {
        let out = self.command().arg("trust").arg(&self.repo).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    fn server(&self) -> LspClient {
        let opts = Options {
            home: Some(self.home.clone()),
            env: vec![(CANARY_VAR.into(), CANARY.into())],
            ..Options::default()
        };
        LspClient::start(&self.repo, opts)
    }

    /// Everything an untrusted repository must not have achieved.
    fn assert_nothing_escaped(&self, capture_requests: usize, what: &str) {
        assert_eq!(capture_requests, 0, "{what}: a request reached the repository's endpoint");
        assert!(!self.outside.exists(), "{what}: something was created outside the allowed places");
        match self.redis.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("{what}: the repository's Redis got a connection: {other:?}"),
        }
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", self.metrics_port)).is_err(),
            "{what}: something listens on the repository's metrics port"
        );
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_names_withheld_keys(text: &str) {
    for key in
        ["llm.provider", "llm.base_url", "llm.api_key_env", "cache.dir", "cache.redis_url", "log.file", "metrics.addr"]
    {
        assert!(text.contains(key), "{key} not named in: {text}");
    }
    assert!(text.contains("review-lsp trust"), "no way to trust named in: {text}");
}

/// Requests the capture server got that carry the canary key.
async fn canary_requests(capture: &MockServer) -> usize {
    let requests = capture.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter(|r| r.headers.get("authorization").is_some_and(|v| v.to_str().unwrap_or("").contains(CANARY)))
        .count()
}

async fn requests(capture: &MockServer) -> usize {
    capture.received_requests().await.unwrap_or_default().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_ignores_a_hostile_config_until_trusted() {
    let capture = common::mock_llm::openai(common::mock_llm::plain).await;
    let h = Hostile::new(&capture);

    let out = block_in_place(|| h.scan());
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_names_withheld_keys(&err);
    assert_eq!(err.lines().filter(|l| l.contains("ignored settings from untrusted")).count(), 1, "{err}");
    assert!(err.contains("cache.memory_entries"), "the out-of-range value is reported: {err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["findings"].as_array().unwrap().iter().any(|f| f["rule"] == "python/security/eval"), "{report}");
    h.assert_nothing_escaped(requests(&capture).await, "untrusted scan");

    // The user trusts the folder: the same file now chooses the endpoint and the key.
    block_in_place(|| h.trust());
    let out = block_in_place(|| h.scan());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("ignored settings from untrusted"), "{}", stderr(&out));
    assert!(canary_requests(&capture).await >= 1, "the trusted endpoint got the key");
    assert!(h.outside.join("cache").is_dir(), "the trusted cache folder is used");

    // Any edit makes it untrusted again.
    let before = requests(&capture).await;
    std::fs::write(h.repo.join("review-lsp.toml"), {
        let mut text = std::fs::read_to_string(h.repo.join("review-lsp.toml")).unwrap();
        text.push_str("# edited\n");
        text
    })
    .unwrap();
    let out = block_in_place(|| h.scan());
    assert_names_withheld_keys(&stderr(&out));
    assert_eq!(requests(&capture).await, before, "an edited file is untrusted again");
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_trusts_the_tree_only_when_told() {
    let capture = common::mock_llm::openai(common::mock_llm::plain).await;
    let h = Hostile::new(&capture);
    let out = block_in_place(|| {
        h.command().args(["scan", ".", "--format", "json", "--fail-on", "none", "--trust-workspace-config"]).output()
    })
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(canary_requests(&capture).await >= 1, "--trust-workspace-config applies the file");
    let capture2 = common::mock_llm::openai(common::mock_llm::plain).await;
    let h2 = Hostile::new(&capture2);
    let out = block_in_place(|| {
        h2.command().env("REVIEW_LSP_TRUST_WORKSPACE", "1").args(["scan", ".", "--fail-on", "none"]).output()
    })
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(canary_requests(&capture2).await >= 1, "REVIEW_LSP_TRUST_WORKSPACE=1 applies the file");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_ignores_a_hostile_config_until_trusted() {
    let capture = common::mock_llm::openai(common::mock_llm::plain).await;
    let h = Hostile::new(&capture);
    let uri = file_uri(&h.repo.join("a.py"));

    // `start` completes initialize: the 10^11-entry cache did not abort the server.
    let mut c = block_in_place(|| h.server());
    let shown = block_in_place(|| {
        c.wait_for(
            |m| {
                m["method"] == "window/showMessage"
                    && m["params"]["message"].as_str().is_some_and(|t| t.contains("ignored settings"))
            },
            common::TIMEOUT,
            "the withheld-settings message",
        )
    });
    assert_names_withheld_keys(shown["params"]["message"].as_str().unwrap());
    block_in_place(|| {
        c.open(&uri, "python", 1, CODE);
        let diags = c.diagnostics(&uri, Some(1));
        assert!(common::codes(&diags).contains(&"python/security/eval".to_string()), "{diags}");
        // Give a model call, were one planned, time to go out.
        c.drain(Duration::from_millis(500));
    });
    let stats = block_in_place(|| c.request("workspace/executeCommand", json!({"command": "review-lsp.showStats"})));
    assert_eq!(stats["settings"]["workspace_trusted"], false, "{stats}");
    assert!(stats["settings"]["withheld"].as_array().unwrap().iter().any(|k| k == "llm.base_url"), "{stats}");
    h.assert_nothing_escaped(requests(&capture).await, "untrusted server");
    block_in_place(|| c.shutdown());

    // Trusted: the server uses the endpoint and the key.
    block_in_place(|| h.trust());
    let mut c = block_in_place(|| h.server());
    block_in_place(|| c.open(&uri, "python", 1, CODE));
    let deadline = Instant::now() + common::TIMEOUT;
    while canary_requests(&capture).await == 0 {
        assert!(Instant::now() < deadline, "the trusted server never called its endpoint with the key");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = block_in_place(|| c.request("workspace/executeCommand", json!({"command": "review-lsp.showStats"})));
    assert_eq!(stats["settings"]["workspace_trusted"], true, "{stats}");
    let origin = stats["settings"]["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "llm.base_url")
        .map(|s| s["origin"].clone())
        .unwrap();
    assert_eq!(origin["kind"], "workspace", "{origin}");
    block_in_place(|| c.shutdown());
}

/// `config show` names each value's layer: default, user file, workspace file, flags.
#[test]
fn config_show_names_the_origin_of_each_value() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, home) = (tmp.path().join("repo"), tmp.path().join("home"));
    std::fs::create_dir_all(home.join("config/review-lsp")).unwrap();
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        home.join("config/review-lsp/config.toml"),
        "[llm]\nprovider = \"anthropic\"\napi_key_env = \"MY_KEY\"\n[review]\ndebounce_ms = 100\n",
    )
    .unwrap();
    std::fs::write(repo.join("review-lsp.toml"), "[review]\ndebounce_ms = 200\n[llm]\nbase_url = \"http://evil\"\n")
        .unwrap();
    let show = |extra: &[&str]| {
        let mut cmd = common::command();
        let out = common::isolate(&mut cmd, &home)
            .args(["config", "show", "--format", "json", "--root"])
            .arg(&repo)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let report = show(&[]);
    let setting = |report: &serde_json::Value, key: &str| {
        report["settings"].as_array().unwrap().iter().find(|s| s["key"] == key).cloned().unwrap()
    };
    let user_file = home.join("config/review-lsp/config.toml");
    assert_eq!(setting(&report, "llm.provider")["value"], "anthropic");
    assert_eq!(setting(&report, "llm.provider")["origin"], json!({"kind": "user", "detail": user_file}));
    assert_eq!(setting(&report, "review.debounce_ms")["value"], 200, "the workspace wins over the user file");
    assert_eq!(setting(&report, "review.debounce_ms")["origin"]["kind"], "workspace");
    assert_eq!(setting(&report, "llm.base_url")["value"], serde_json::Value::Null, "withheld");
    assert_eq!(setting(&report, "llm.base_url")["origin"]["kind"], "default");
    assert_eq!(setting(&report, "review.workers")["origin"]["kind"], "default");
    assert_eq!(report["withheld"], json!(["llm.base_url"]));
    assert_eq!(report["workspace_trusted"], false);

    let trusted = show(&["--trust-workspace-config"]);
    assert_eq!(setting(&trusted, "llm.base_url")["value"], "http://evil");
    assert_eq!(setting(&trusted, "llm.base_url")["origin"]["kind"], "workspace");

    // The text form, like `git config --show-origin`.
    let mut cmd = common::command();
    let out = common::isolate(&mut cmd, &home).args(["config", "show", "--root"]).arg(&repo).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("\tllm.provider = ")).unwrap();
    assert!(line.starts_with("user config ") && line.ends_with("\"anthropic\""), "{line}");
    assert!(text.contains("not trusted") && text.contains("withheld:"), "{text}");
}

/// `trust`, `trust --list`, `trust --revoke`, through the binary.
#[test]
fn trust_list_and_revoke() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, home) = (tmp.path().join("repo"), tmp.path().join("home"));
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("review-lsp.toml"), "[llm]\nbase_url = \"http://127.0.0.1:9/v1\"\n").unwrap();
    let run = |args: &[&str], dir: Option<&Path>| {
        let mut cmd = common::command();
        common::isolate(&mut cmd, &home).args(args);
        if let Some(dir) = dir {
            cmd.arg(dir);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(run(&["trust", "--list"], None).0, "");
    run(&["trust"], Some(&repo));
    let canonical = std::fs::canonicalize(&repo).unwrap();
    let (list, _) = run(&["trust", "--list"], None);
    assert!(list.starts_with(&format!("{}\t", canonical.display())), "{list}");
    assert!(home.join("state/review-lsp/trust.json").is_file(), "the store is under XDG_STATE_HOME");
    let shown = run(&["config", "show", "--root"], Some(&repo)).0;
    assert!(shown.contains("(trusted)") && !shown.contains("withheld:"), "{shown}");
    let (_, said) = run(&["trust", "--revoke"], Some(&repo));
    assert!(said.contains("no longer trusted"), "{said}");
    assert_eq!(run(&["trust", "--list"], None).0, "");
    let shown = run(&["config", "show", "--root"], Some(&repo)).0;
    assert!(shown.contains("not trusted") && shown.contains("llm.base_url"), "{shown}");
}
