//! Test harness: drives the real `review-lsp` binary over stdio with real JSON-RPC framing.
//! Server-to-client requests (progress creation, configuration) are answered by a reader
//! thread and also recorded, so tests can assert on them.
#![allow(dead_code)]

pub mod mock_llm;
pub mod redis;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A `/proc/<pid>/status` memory field in KiB (`VmRSS` now, `VmHWM` the peak); 0 when the
/// process is gone. Benches use it to report a server's memory.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_review-lsp")
}

/// Keeps a spawned binary away from the developer's own settings and trust store: the user
/// file and the trust store live under `home` (`<home>/config`, `<home>/state`), and the
/// variables that would bypass them are removed.
pub fn isolate<'a>(cmd: &'a mut Command, home: &Path) -> &'a mut Command {
    cmd.env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env_remove("REVIEW_LSP_CONFIG")
        .env_remove("REVIEW_LSP_TRUST_WORKSPACE")
}

/// The binary, isolated (see [`isolate`]) under a home shared by this test build, which no
/// test writes to; a test that needs its own user file or trust store calls [`isolate`] again
/// with its own folder.
pub fn command() -> Command {
    let mut cmd = Command::new(bin());
    isolate(&mut cmd, &Path::new(env!("CARGO_TARGET_TMPDIR")).join("isolated-home"));
    cmd
}

pub fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

pub struct LspClient {
    child: Child,
    /// `None` once [`LspClient::close_stdin`] has closed it.
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    rx: Receiver<Value>,
    /// Messages read but not yet consumed by a wait.
    backlog: VecDeque<Value>,
    next_id: i64,
    pub root: PathBuf,
    pub log: PathBuf,
    /// The server's answer to `initialize`.
    pub init_result: Value,
}

pub struct Options {
    pub utf8: bool,
    pub progress: bool,
    pub init_options: Value,
    /// `REVIEW_LSP_LOG` for the server.
    pub log_level: &'static str,
    /// The workspace folders sent in `initialize`; `None` means `[root]`.
    pub folders: Option<Vec<PathBuf>>,
    /// The title the client picks when the server sends `window/showMessageRequest`; `None`
    /// means the client does not declare that capability (and answers null if asked anyway).
    pub message_answer: Option<&'static str>,
    /// Where the user file and trust store are ([`isolate`]); default `<root>/.test-cache/home`.
    pub home: Option<PathBuf>,
    /// More environment for the server.
    pub env: Vec<(String, String)>,
    /// `processId` in `initialize`: the editor's process, which the server watches.
    pub process_id: Option<u32>,
    /// `capabilities.workspace` in `initialize`.
    pub workspace_caps: Value,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            utf8: false,
            progress: true,
            init_options: json!({"review": {"debounce_ms": 50}}),
            log_level: "debug",
            folders: None,
            message_answer: None,
            home: None,
            env: Vec::new(),
            process_id: None,
            workspace_caps: json!({}),
        }
    }
}

fn write_frame(stdin: &Mutex<Option<ChildStdin>>, msg: &Value) {
    let body = serde_json::to_vec(msg).unwrap();
    let mut w = stdin.lock().unwrap();
    let Some(w) = w.as_mut() else { return };
    let _ = write!(w, "Content-Length: {}\r\n\r\n", body.len());
    let _ = w.write_all(&body);
    let _ = w.flush();
}

pub fn read_frame(reader: &mut impl BufRead) -> Option<Value> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length:") {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; len?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

impl LspClient {
    /// Starts the server in `root` with a private cache dir, and completes the handshake.
    pub fn start(root: &Path, opts: Options) -> LspClient {
        LspClient::start_program(Path::new(bin()), &["serve"], root, opts)
    }

    /// Starts any stdio language server (`program args...`) in `root` the same way as
    /// [`LspClient::start`], so another server can be measured with the same harness.
    pub fn start_program(program: &Path, args: &[&str], root: &Path, opts: Options) -> LspClient {
        let cache = root.join(".test-cache");
        let log = root.join(".test-cache/server.log");
        let home = opts.home.clone().unwrap_or_else(|| cache.join("home"));
        let mut child = isolate(&mut Command::new(program), &home)
            .args(args)
            .current_dir(root)
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .env("XDG_CACHE_HOME", &cache)
            .env("REVIEW_LSP_LOG", opts.log_level)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(root.join("stderr.log")).unwrap()))
            .spawn()
            .expect("spawn review-lsp");
        let stdin = Arc::new(Mutex::new(child.stdin.take()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        let answer = stdin.clone();
        let message_answer = opts.message_answer;
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(msg) = read_frame(&mut reader) {
                if msg.get("method").is_some() && msg.get("id").is_some() {
                    // A request from the server: answer it as an editor would.
                    let result = match msg["method"].as_str() {
                        Some("workspace/configuration") => json!([null]),
                        Some("window/showMessageRequest") => match message_answer {
                            Some(title) => json!({"title": title}),
                            None => Value::Null,
                        },
                        _ => Value::Null,
                    };
                    write_frame(&answer, &json!({"jsonrpc": "2.0", "id": msg["id"], "result": result}));
                }
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        let mut client = LspClient {
            child,
            stdin,
            rx,
            backlog: VecDeque::new(),
            next_id: 0,
            root: root.to_path_buf(),
            log,
            init_result: Value::Null,
        };
        let mut general = json!({});
        if opts.utf8 {
            general = json!({"positionEncodings": ["utf-8", "utf-16"]});
        }
        let mut window = json!({"workDoneProgress": opts.progress});
        if opts.message_answer.is_some() {
            window["showMessage"] = json!({"messageActionItem": {"additionalPropertiesSupport": false}});
        }
        let folders: Vec<Value> = match &opts.folders {
            Some(list) => list
                .iter()
                .map(|p| json!({"uri": file_uri(p), "name": p.file_name().unwrap().to_string_lossy()}))
                .collect(),
            None => vec![json!({"uri": file_uri(root), "name": "ws"})],
        };
        let init = client.request(
            "initialize",
            json!({
                "processId": opts.process_id,
                "rootUri": file_uri(root),
                "workspaceFolders": folders,
                "capabilities": {"general": general, "window": window, "workspace": opts.workspace_caps.clone()},
                "initializationOptions": opts.init_options,
            }),
        );
        assert!(init.get("capabilities").is_some(), "initialize answered {init}");
        client.init_result = init;
        client.notify("initialized", json!({}));
        client
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let mut w = self.stdin.lock().unwrap();
        let w = w.as_mut().expect("stdin is open");
        w.write_all(bytes).unwrap();
        w.flush().unwrap();
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        write_frame(&self.stdin, &json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request without waiting; [`LspClient::response`] collects the answer.
    pub fn send_request(&mut self, method: &str, params: Value) -> i64 {
        self.next_id += 1;
        let id = self.next_id;
        write_frame(&self.stdin, &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// The response to request `id`, if it has arrived (without waiting).
    pub fn poll_response(&mut self, id: i64) -> Option<Value> {
        let is_it = |m: &Value| m.get("id") == Some(&json!(id)) && m.get("method").is_none();
        while let Ok(msg) = self.rx.try_recv() {
            self.backlog.push_back(msg);
        }
        let i = self.backlog.iter().position(is_it)?;
        self.backlog.remove(i)
    }

    /// Waits for the response to request `id`; `Err(error)` for an error reply.
    pub fn response(&mut self, id: i64, timeout: Duration) -> Result<Value, Value> {
        let msg = self.wait_for(
            |m| m.get("id") == Some(&json!(id)) && m.get("method").is_none(),
            timeout,
            &format!("response to request {id}"),
        );
        match msg.get("error") {
            Some(e) => Err(e.clone()),
            None => Ok(msg["result"].clone()),
        }
    }

    /// Sends a request and waits for its response; returns `Err(error)` for an error reply.
    pub fn try_request(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.send_request(method, params);
        self.response(id, TIMEOUT)
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        self.try_request(method, params).unwrap_or_else(|e| panic!("{method} failed: {e}"))
    }

    /// Waits for a message matching `pred`, keeping the others for later waits.
    pub fn wait_for(&mut self, pred: impl Fn(&Value) -> bool, timeout: Duration, what: &str) -> Value {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i).unwrap();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(msg) if pred(&msg) => return msg,
                Ok(msg) => self.backlog.push_back(msg),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("timed out waiting for {what}; backlog: {:#?}\nstderr:\n{}", self.backlog, self.stderr())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("server exited while waiting for {what}\nstderr:\n{}", self.stderr())
                }
            }
        }
    }

    /// Every message that arrives within `window`, without waiting for a particular one.
    pub fn drain(&mut self, window: Duration) -> Vec<Value> {
        let deadline = Instant::now() + window;
        while let Ok(msg) = self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            self.backlog.push_back(msg);
        }
        self.backlog.drain(..).collect()
    }

    pub fn open(&mut self, uri: &str, language: &str, version: i32, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": language, "version": version, "text": text}}),
        );
    }

    pub fn change(&mut self, uri: &str, version: i32, changes: Value) {
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}),
        );
    }

    /// The next publishDiagnostics for `uri` whose version is `version` (any, if `None`).
    pub fn diagnostics(&mut self, uri: &str, version: Option<i32>) -> Value {
        let uri = uri.to_string();
        self.wait_for(
            move |m| {
                m["method"] == "textDocument/publishDiagnostics"
                    && m["params"]["uri"] == uri.as_str()
                    && version.is_none_or(|v| m["params"]["version"] == v)
            },
            TIMEOUT,
            "publishDiagnostics",
        )["params"]
            .clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.root.join("stderr.log")).unwrap_or_default()
    }

    /// Closes the server's stdin (end of input), as an editor that dies does.
    pub fn close_stdin(&mut self) {
        self.stdin.lock().unwrap().take();
    }

    /// Waits up to `limit` for the server to exit: its status and how long that took.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some((status, started.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }

    pub fn shutdown(mut self) -> std::process::ExitStatus {
        let _ = self.try_request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not exit after `exit`");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LspClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `review-lsp scan .` in `root` with its OpenAI-compatible model at `base` (`<mock>/v1`), a
/// cache of its own under `root`, and no log level set (stderr as a user sees it).
pub fn scan_with_model(root: &Path, base: &str, extra: &[&str]) -> std::process::Output {
    command()
        .args(["scan", ".", "--format", "json", "--fail-on", "none", "--provider", "openai"])
        .args(["--model", "mock-model", "--base-url", base])
        .args(extra)
        .current_dir(root)
        .env("XDG_CACHE_HOME", root.join(".cache"))
        .env_remove("REVIEW_LSP_LOG")
        .output()
        .unwrap()
}

/// Rules of the diagnostics in a publishDiagnostics params object.
pub fn codes(params: &Value) -> Vec<String> {
    params["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Applies LSP text edits (UTF-16 positions) to `text`, last first.
pub fn apply_edits(text: &str, edits: &[Value]) -> String {
    let mut edits: Vec<&Value> = edits.iter().collect();
    edits.sort_by_key(|e| (e["range"]["start"]["line"].as_u64(), e["range"]["start"]["character"].as_u64()));
    let mut out = text.to_string();
    for e in edits.into_iter().rev() {
        let s = offset(&out, &e["range"]["start"]);
        let end = offset(&out, &e["range"]["end"]);
        out.replace_range(s..end, e["newText"].as_str().unwrap());
    }
    out
}

fn offset(text: &str, pos: &Value) -> usize {
    let line = pos["line"].as_u64().unwrap() as usize;
    let ch = pos["character"].as_u64().unwrap() as usize;
    let mut start = 0;
    for _ in 0..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let line_text = &text[start..text[start..].find('\n').map_or(text.len(), |i| start + i)];
    let mut units = 0;
    for (b, c) in line_text.char_indices() {
        if units >= ch {
            return start + b;
        }
        units += c.len_utf16();
    }
    start + line_text.len()
}

/// The server's default log under `root` as [`LspClient::start`] sets it up: every daily file
/// in `<XDG_CACHE_HOME>/review-lsp/logs/`, oldest first, joined.
pub fn default_server_log(root: &Path) -> String {
    let dir = root.join(".test-cache/review-lsp/logs");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files.iter().map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()).collect()
}
