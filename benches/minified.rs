//! Minified files (issue 14): a 0.6 MB one-line JavaScript file with 1,500 `==` opened in the
//! server (time to publishDiagnostics, the message's size, the server's peak RSS), and
//! `review-lsp scan` of one 960 KB line with 120,000 findings (wall time, peak RSS).
//! Run: `cargo bench --bench minified`; `cargo test --all-targets` runs a small smoke version.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Stdio;
use std::time::Instant;

use common::{LspClient, Options, file_uri};

/// About 400 bytes per function, one `==` each, all on one line.
fn bundle(functions: usize) -> String {
    let mut s = String::new();
    for i in 0..functions {
        s.push_str(&format!("function f{i}(a){{if(a==1){{return {i};}}return g(a,\"{}\")}}", "x".repeat(340)));
    }
    s
}

fn editor(functions: usize) {
    let ws = tempfile::tempdir().unwrap();
    let text = bundle(functions);
    let mut c = LspClient::start(ws.path(), Options { progress: false, log_level: "info", ..Options::default() });
    let uri = file_uri(&ws.path().join("bundle.min.js"));
    let started = Instant::now();
    c.open(&uri, "javascript", 1, &text);
    let d = c.diagnostics(&uri, Some(1));
    let took = started.elapsed();
    let bytes = serde_json::to_string(&d).unwrap().len();
    let peak = common::proc_status_kib(c.pid(), "VmHWM");
    println!(
        "editor: {:.2} MB one line, {functions} `==` → {} diagnostics, publishDiagnostics {:.3} MB, {:.0} ms, server peak RSS {:.1} MiB",
        text.len() as f64 / 1e6,
        d["diagnostics"].as_array().unwrap().len(),
        bytes as f64 / 1e6,
        took.as_secs_f64() * 1000.0,
        peak as f64 / 1024.0
    );
}

fn scan(findings: usize) {
    let ws = tempfile::tempdir().unwrap();
    // 8 bytes and one loose equality per statement, on one line.
    let text = "aa==1;b;".repeat(findings);
    std::fs::write(ws.path().join("one.js"), &text).unwrap();
    let started = Instant::now();
    let status = common::command()
        .args(["scan", "--format", "json", "--fail-on", "none", "--no-cache"])
        .arg(ws.path())
        .current_dir(ws.path())
        .env("XDG_CACHE_HOME", ws.path().join(".cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run scan");
    let took = started.elapsed();
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert!(status.code().is_some(), "scan died: {status}");
    println!(
        "scan: {:.0} KB one line, {findings} findings → {:.2} s, peak RSS of the largest child so far {:.0} MiB",
        text.len() as f64 / 1e3,
        took.as_secs_f64(),
        usage.ru_maxrss as f64 / 1024.0
    );
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let scale = if measuring { 1 } else { 20 };
    // The scan runs first so that RUSAGE_CHILDREN's peak is the scan's (the server is a child too).
    scan(120_000 / scale);
    editor(1_500 / scale);
}
