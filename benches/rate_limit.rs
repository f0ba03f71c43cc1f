//! A workspace scan through the real server against a mock model held to `rpm = 60` and
//! `tpm = 100000`: how close the wall time comes to the rate-limit bound
//! `max(calls / rpm, tokens / tpm)`, whether the user saw any error, and how long an edit to the
//! active file takes to get its diagnostics while the scan is running.
//!
//! Two workspaces: many small calls (the request rate binds) and few large ones (the token rate
//! binds). The mock answers after 300 ms and reports real o200k token counts as `usage`, so the
//! limiter's estimate-then-correct path is exercised as against a vendor.
//!
//! Run: `cargo bench --bench rate_limit`. Without `--bench` (as `cargo test --all-targets` runs
//! it) the rates are scaled up twentyfold and the workspaces shrunk: a smoke run.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{LspClient, Options, file_uri};
use review_lsp::review::tokens;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const MODEL: &str = "gpt-4.1-mini";

/// Tokens metered per request, as the vendor would count them.
type Metered = Arc<Mutex<Vec<u64>>>;

struct MeteredReviewer {
    metered: Metered,
}

impl Respond for MeteredReviewer {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let prompt: usize = body["messages"]
            .as_array()
            .map_or(0, |m| m.iter().map(|m| tokens::count(MODEL, m["content"].as_str().unwrap_or(""))).sum());
        let user = body["messages"][1]["content"].as_str().unwrap_or_default();
        let reply = common::mock_llm::plain(user);
        let completion = tokens::count(MODEL, &reply);
        self.metered.lock().unwrap().push((prompt + completion) as u64);
        ResponseTemplate::new(200)
            .set_body_json(json!({
                "choices": [{"message": {"role": "assistant", "content": reply}}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion}
            }))
            .set_delay(Duration::from_millis(300))
    }
}

struct Workload {
    name: &'static str,
    files: usize,
    /// Functions per file: more makes bigger calls.
    functions: usize,
    batch_max_files: usize,
    batch_max_tokens: usize,
}

fn write_workspace(root: &Path, w: &Workload) {
    for f in 0..w.files {
        let mut text = String::from("\"\"\"Handlers.\"\"\"\nimport json\n\n\n");
        for i in 0..w.functions {
            text.push_str(&format!(
                "def handler_{f}_{i}(payload, limit=10):\n    \"\"\"Decode and total a payload.\"\"\"\n    items = json.loads(payload)\n    total = 0\n    for item in items[:limit]:\n        total += eval(item[\"expr\"])\n    return total\n\n\n"
            ));
        }
        std::fs::write(root.join(format!("handlers_{f:03}.py")), text).unwrap();
    }
}

struct Outcome {
    wall: Duration,
    calls: usize,
    tokens: u64,
    errors_shown: usize,
    edit_to_offline: Duration,
    edit_to_llm: Duration,
}

fn run(w: &Workload, rpm: u32, tpm: u64, rt: &tokio::runtime::Runtime) -> Outcome {
    let metered = Metered::default();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(MeteredReviewer { metered: metered.clone() })
            .mount(&server)
            .await;
        server
    });
    let dir = tempfile::tempdir().unwrap();
    write_workspace(dir.path(), w);
    let opts = Options {
        progress: true,
        log_level: "info",
        init_options: json!({
            "review": {"debounce_ms": 50},
            "llm": {"provider": "openai", "base_url": format!("{}/v1", server.uri()), "model": MODEL,
                    "batch_max_files": w.batch_max_files, "batch_max_tokens": w.batch_max_tokens},
            "limits": {"requests_per_minute": rpm, "tokens_per_minute": tpm},
        }),
        ..Options::default()
    };
    let mut c = LspClient::start(dir.path(), opts);
    let started = Instant::now();
    let scan = c.send_request("workspace/executeCommand", json!({"command": "review-lsp.scanWorkspace"}));

    // Once a few calls are out, the user types in a file of their own.
    let deadline = Instant::now() + Duration::from_secs(600);
    while metered.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "the scan never reached the model");
        std::thread::sleep(Duration::from_millis(10));
    }
    let uri = file_uri(&dir.path().join("active.py"));
    let edited = Instant::now();
    c.open(&uri, "python", 1, "def typed_now(x):\n    \"\"\"Run it.\"\"\"\n    return eval(x)\n");
    c.diagnostics(&uri, Some(1));
    let edit_to_offline = edited.elapsed();
    while !common::codes(&c.diagnostics(&uri, Some(1))).contains(&"python/security/llm".to_string()) {}
    let edit_to_llm = edited.elapsed();

    let result = c.response(scan, Duration::from_secs(900)).expect("the scan succeeds");
    let wall = started.elapsed();
    assert_eq!(result["files_scanned"], w.files, "{result}");
    // Errors and warnings the editor would show: a message, or a file left unreviewed.
    let errors_shown = c
        .drain(Duration::from_millis(200))
        .iter()
        .filter(|m| m["method"] == "window/showMessage" && m["params"]["type"].as_u64().is_some_and(|t| t <= 2))
        .count();
    let metered = metered.lock().unwrap();
    Outcome { wall, calls: metered.len(), tokens: metered.iter().sum(), errors_shown, edit_to_offline, edit_to_llm }
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    // The smoke run keeps the proportions at twenty times the rates.
    let scale = if measuring { 1 } else { 20 };
    let (rpm, tpm) = (60 * scale, 100_000 * u64::from(scale));
    let workloads = [
        Workload {
            name: "many small calls",
            files: if measuring { 10 } else { 4 },
            functions: 1,
            batch_max_files: 1,
            batch_max_tokens: 50_000,
        },
        Workload {
            name: "few large calls",
            files: if measuring { 6 } else { 3 },
            functions: 24,
            batch_max_files: 1,
            batch_max_tokens: 50_000,
        },
    ];
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    println!("rpm = {rpm}, tpm = {tpm}; the mock answers in 300 ms");
    println!(
        "{:<18} {:>6} {:>9} {:>9} {:>9} {:>7} {:>7} {:>13} {:>13}",
        "workload", "calls", "tokens", "bound s", "wall s", "ratio", "errors", "edit→offline", "edit→LLM"
    );
    for w in &workloads {
        let o = run(w, rpm, tpm, &rt);
        let bound = (o.calls as f64 / f64::from(rpm)).max(o.tokens as f64 / tpm as f64) * 60.0;
        println!(
            "{:<18} {:>6} {:>9} {:>9.1} {:>9.1} {:>7.2} {:>7} {:>10.0} ms {:>10.0} ms",
            w.name,
            o.calls,
            o.tokens,
            bound,
            o.wall.as_secs_f64(),
            o.wall.as_secs_f64() / bound,
            o.errors_shown,
            o.edit_to_offline.as_secs_f64() * 1000.0,
            o.edit_to_llm.as_secs_f64() * 1000.0
        );
    }
}
