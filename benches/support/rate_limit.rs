//! A workspace scan through the real server against a mock model held to a rate limit, shared
//! by `benches/rate_limit.rs` and `benches/compare.rs` (P5): how close the wall time comes to
//! the bound `max(calls / rpm, tokens / tpm)`, whether the user saw any error, and how long an
//! edit to the active file takes to get its diagnostics while the scan is running.
//!
//! The mock answers after 300 ms and reports real o200k token counts as `usage`, so the
//! limiter's estimate-then-correct path is exercised as against a vendor. Needs the including
//! crate to have `mod common` (tests/common).
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{self, LspClient, Options, file_uri};
use review_lsp::review::tokens;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const MODEL: &str = "gpt-4.1-mini";

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

pub struct Workload {
    pub name: &'static str,
    pub files: usize,
    /// Functions per file: more makes bigger calls.
    pub functions: usize,
    pub batch_max_files: usize,
    pub batch_max_tokens: usize,
    /// `[limits] per_user_requests_per_minute`; `None` keeps the default (100), which binds
    /// before an endpoint limit above it.
    pub per_user_rpm: Option<u32>,
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

pub struct Outcome {
    pub wall: Duration,
    pub calls: usize,
    pub tokens: u64,
    pub errors_shown: usize,
    pub edit_to_offline: Duration,
    pub edit_to_llm: Duration,
}

impl Outcome {
    /// `max(calls / rpm, tokens / tpm)` in seconds.
    pub fn bound_secs(&self, rpm: u32, tpm: u64) -> f64 {
        (self.calls as f64 / f64::from(rpm)).max(self.tokens as f64 / tpm as f64) * 60.0
    }
}

pub fn run(w: &Workload, rpm: u32, tpm: u64, rt: &tokio::runtime::Runtime) -> Outcome {
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
    let mut limits = json!({"requests_per_minute": rpm, "tokens_per_minute": tpm});
    if let Some(per_user) = w.per_user_rpm {
        limits["per_user_requests_per_minute"] = json!(per_user);
    }
    let opts = Options {
        progress: true,
        log_level: "info",
        init_options: json!({
            "review": {"debounce_ms": 50},
            "llm": {"provider": "openai", "base_url": format!("{}/v1", server.uri()), "model": MODEL,
                    "batch_max_files": w.batch_max_files, "batch_max_tokens": w.batch_max_tokens},
            "limits": limits,
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
