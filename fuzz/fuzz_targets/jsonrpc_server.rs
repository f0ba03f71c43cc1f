//! The whole server, in process, on an in-memory duplex: a fixed `initialize` and
//! `initialized`, then the input as a sequence of frames, then `shutdown` and `exit`.
//!
//! The harness behaves like a client: it waits for the answer to `initialize` before sending
//! the rest, and for the answer to `shutdown` before `exit` (else tower-lsp answers
//! everything sent early with "not initialized" and cancels what is pending at `exit`).
//!
//! Frames: the input is split on `0x00`. A piece starting with `!` is written raw, without a
//! header (garbage between frames, broken headers); any other piece is wrapped in a correct
//! `Content-Length` header. Pieces that are JSON have the settings keys that reach outside
//! the process removed first (see `sanitize`), so fuzzing never touches the network or
//! writes outside the temporary cache directory.
//!
//! A bug is: any panic (libfuzzer-sys aborts on every panic, so this includes the ones the
//! server's handler guard would catch), or a session that does not end within `DEADLINE`
//! (it gets `exit` and then end of input at the latest `SHUTDOWN_WAIT` after the input).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use review_lsp::server::{ServeOptions, serve_io};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;

/// How long a session may take from `initialize` to its end.
const DEADLINE: Duration = Duration::from_secs(10);
/// How long the harness waits for the answer to its `shutdown` before sending `exit` anyway.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

/// Settings that would make the server listen, connect, call a model or write files
/// elsewhere: `[log] file`, `[metrics] addr`, `[cache] dir`/`redis_url`, `[llm]`, `[agents]`.
const OUTSIDE: [&str; 9] = ["log", "metrics", "addr", "file", "dir", "redis_url", "llm", "agents", "base_url"];

fn sanitize(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !OUTSIDE.contains(&k.as_str()));
            map.values_mut().for_each(sanitize);
        }
        Value::Array(items) => items.iter_mut().for_each(sanitize),
        _ => {}
    }
}

fn frame(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

fn message(out: &mut Vec<u8>, value: Value) {
    frame(out, &serde_json::to_vec(&value).unwrap());
}

const INIT_ID: i64 = 1;
const SHUTDOWN_ID: i64 = 999_999_001;

/// The frames sent after the handshake: the input's pieces, then `shutdown`.
fn body_bytes(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 256);
    message(&mut out, json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}));
    for piece in data.split(|&b| b == 0) {
        if let Some(raw) = piece.strip_prefix(b"!") {
            out.extend_from_slice(raw);
            continue;
        }
        match serde_json::from_slice::<Value>(piece) {
            Ok(mut value) => {
                sanitize(&mut value);
                message(&mut out, value);
            }
            Err(_) => frame(&mut out, piece),
        }
    }
    // Raw garbage may leave the server's reader inside a header line; a line end first lets
    // `Content-Length` of the shutdown start a line (a stray blank line is skipped otherwise).
    out.extend_from_slice(b"\r\n");
    message(&mut out, json!({"jsonrpc": "2.0", "id": SHUTDOWN_ID, "method": "shutdown"}));
    out
}

fn initialize_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    message(
        &mut out,
        json!({"jsonrpc": "2.0", "id": INIT_ID, "method": "initialize", "params": {
            "processId": null, "rootUri": null,
            "capabilities": {"general": {"positionEncodings": ["utf-16"]}, "window": {"workDoneProgress": true}},
            "initializationOptions": {"review": {"debounce_ms": 0}}
        }}),
    );
    out
}

/// Reads the server's frames and reports the id of every response, as a client would.
async fn read_responses(mut output: DuplexStream, ids: mpsc::UnboundedSender<i64>) {
    let mut reader = BufReader::new(&mut output);
    let mut echo = Vec::new();
    loop {
        let mut length = None;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return dump(&echo),
                Ok(_) => {}
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(n) = line.strip_prefix("Content-Length: ") {
                length = n.parse::<usize>().ok();
            }
        }
        let mut body = vec![0; length.expect("the server wrote a frame without Content-Length")];
        if reader.read_exact(&mut body).await.is_err() {
            return dump(&echo);
        }
        let value: Value = serde_json::from_slice(&body).expect("the server wrote a frame that is not JSON");
        if value.get("method").is_none()
            && let Some(id) = value.get("id").and_then(Value::as_i64)
        {
            let _ = ids.send(id);
        }
        echo.push(value);
    }
}

/// `REVIEW_LSP_FUZZ_ECHO=1 target/.../jsonrpc_server FILE` shows what the server said.
fn dump(messages: &[Value]) {
    if std::env::var_os("REVIEW_LSP_FUZZ_ECHO").is_some() {
        for m in messages {
            eprintln!("<- {m}");
        }
    }
}

async fn wait_for(ids: &mut mpsc::UnboundedReceiver<i64>, id: i64) -> bool {
    while let Some(got) = ids.recv().await {
        if got == id {
            return true;
        }
    }
    false
}

/// Points the cache at a private directory, on tmpfs where there is one: the store's redb
/// file is still exercised, without an fsync per input. Directories left by earlier fuzzing
/// processes that are gone are removed. Each input starts with an empty directory, so an
/// input's outcome does not depend on the inputs before it (a crash found replays from its
/// file alone) and the store's start-up work does not grow with the run.
fn init() {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("review-lsp-fuzz-")
                && !std::path::Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = base.join(format!("review-lsp-fuzz-{}", std::process::id()));
        // SAFETY: set once, before any thread of ours reads the environment.
        unsafe {
            std::env::set_var("XDG_CACHE_HOME", &dir);
            for key in ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"] {
                std::env::remove_var(key);
            }
        }
        dir
    });
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("private cache dir");
}

fuzz_target!(|data: &[u8]| {
    init();
    let body = body_bytes(data);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let (mut client_in, server_in) = tokio::io::duplex(1 << 16);
        let (server_out, client_out) = tokio::io::duplex(1 << 16);
        let (ids_tx, mut ids) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_responses(client_out, ids_tx));
        // As a client does: initialize and wait for its answer, send everything, then
        // shutdown and wait for its answer before exit. The server may stop reading early
        // (an `exit` inside the input): not an error.
        let writer = tokio::spawn(async move {
            let _ = client_in.write_all(&initialize_bytes()).await;
            if wait_for(&mut ids, INIT_ID).await {
                let _ = client_in.write_all(&body).await;
                // Garbage with a large Content-Length can swallow the shutdown as its body;
                // then the session ends at end of input instead.
                let _ = tokio::time::timeout(SHUTDOWN_WAIT, wait_for(&mut ids, SHUTDOWN_ID)).await;
                let mut exit = Vec::new();
                message(&mut exit, json!({"jsonrpc": "2.0", "method": "exit"}));
                let _ = client_in.write_all(&exit).await;
            }
            let _ = client_in.shutdown().await;
        });
        let served = tokio::time::timeout(DEADLINE, serve_io(server_in, server_out, ServeOptions::default())).await;
        assert!(served.is_ok(), "the session did not end within {DEADLINE:?}");
        writer.abort();
        // The output ends when the server drops it.
        let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
    });
    // Reviews still running on the blocking pool get a moment to finish, as in serve_stdio.
    runtime.shutdown_timeout(Duration::from_secs(2));
});
