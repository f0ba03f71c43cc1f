//! What the LLM agents cost against the naive baseline, shared by `benches/llm_cost.rs` and
//! `benches/compare.rs` (P3, P4, P9).
//!
//! Naive baseline: one call per file per agent (5 agents), the whole file with line numbers,
//! comments kept. Ours: the classifier's agents, changed chunks only, comments stripped,
//! batched per agent. Tokens are real o200k counts of what the mock received (system +
//! user message); the naive side is computed from the same prompts without sending.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use review_lsp::review::finding::Category;
use review_lsp::review::prompt;
use review_lsp::review::tokens;
use review_lsp::syntax::Language;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const MODEL: &str = "gpt-4.1-mini";

pub fn stdlib() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A fixed, varied slice of the standard library: a few packages, about 100 files.
pub fn corpus(measuring: bool) -> Vec<PathBuf> {
    if let Some(dir) = std::env::var_os("BENCH_CORPUS") {
        return vec![PathBuf::from(dir)];
    }
    if !measuring {
        return vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")];
    }
    let lib = stdlib();
    ["json", "email", "http", "urllib", "logging", "concurrent", "wsgiref", "xmlrpc"]
        .iter()
        .map(|p| lib.join(p))
        .collect()
}

/// The file whose one-function edit is measured: ~2,600 lines, or a small example in a smoke run.
pub fn big_file(measuring: bool) -> PathBuf {
    if measuring {
        stdlib().join("argparse.py")
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/app/reports.py")
    }
}

pub fn sent_tokens(bodies: &[Value]) -> usize {
    bodies
        .iter()
        .map(|b| {
            b["messages"]
                .as_array()
                .map_or(0, |m| m.iter().map(|m| tokens::count(MODEL, m["content"].as_str().unwrap_or(""))).sum())
        })
        .sum()
}

/// The naive prompt for one file and one agent: the whole file, numbered, comments kept.
/// Returns (calls, tokens) over all agents.
pub fn naive_tokens(path: &Path) -> (usize, usize) {
    let Ok(text) = std::fs::read_to_string(path) else { return (0, 0) };
    let lang = Language::from_path(path).unwrap_or(Language::Python);
    let lines: Vec<(u32, String)> = text.lines().enumerate().map(|(i, l)| (i as u32, l.to_string())).collect();
    let user = prompt::render_chunk(&path.display().to_string(), lang, &lines);
    let per_agent: usize = Category::ALL
        .iter()
        .map(|&a| tokens::count(MODEL, &prompt::system_prompt(a, lang)) + tokens::count(MODEL, &user))
        .sum();
    (Category::ALL.len(), per_agent)
}

pub async fn scan(roots: &[PathBuf], base: &str, cache: &Path, no_cache: bool) -> Value {
    let mut args: Vec<String> = vec!["scan".into()];
    args.extend(roots.iter().map(|r| r.display().to_string()));
    args.extend(
        ["--format", "json", "--fail-on", "none", "--provider", "openai", "--model", MODEL, "--base-url", base]
            .map(String::from),
    );
    if no_cache {
        args.push("--no-cache".into());
    }
    let cache = cache.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_review-lsp")).args(&args).env("XDG_CACHE_HOME", cache).output().unwrap()
    })
    .await
    .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("scan failed: {}", String::from_utf8_lossy(&out.stderr)))
}

pub async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| serde_json::from_slice(&r.body).ok())
        .collect()
}

/// A mock OpenAI endpoint that answers every call with no findings.
pub async fn mock_model() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "choices": [{"message": {"role": "assistant", "content": "{\"findings\": []}"}}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 3}
        })))
        .mount(&server)
        .await;
    server
}

pub struct CorpusCost {
    pub files: usize,
    pub ours_calls: usize,
    pub naive_calls: usize,
    pub ours_tokens: usize,
    pub naive_tokens: usize,
    /// The scan report's `stats`.
    pub stats: Value,
}

/// Scans `roots` once with an empty cache against `server`, and computes the naive baseline.
pub async fn corpus_cost(server: &MockServer, roots: &[PathBuf], cache: &Path) -> CorpusCost {
    let base = format!("{}/v1", server.uri());
    let files = review_lsp::workspace::discover(roots);
    let (mut naive_calls, mut naive_total) = (0, 0);
    for f in &files {
        let (c, t) = naive_tokens(f);
        naive_calls += c;
        naive_total += t;
    }
    let before = bodies(server).await.len();
    let report = scan(roots, &base, cache, false).await;
    let sent = bodies(server).await;
    let sent = &sent[before..];
    CorpusCost {
        files: files.len(),
        ours_calls: sent.len(),
        naive_calls,
        ours_tokens: sent_tokens(sent),
        naive_tokens: naive_total,
        stats: report["stats"].clone(),
    }
}

pub struct EditCost {
    pub lines: usize,
    /// Tokens sent after changing one line inside the first function.
    pub edit_tokens: usize,
    /// Tokens our first review of the whole file sent.
    pub whole_file: usize,
    /// The naive baseline for the edited file.
    pub naive_file: usize,
}

/// One-function edit in a big file: only that function's chunk goes out again.
pub async fn edit_cost(server: &MockServer, big: &Path, cache: &Path) -> EditCost {
    let base = format!("{}/v1", server.uri());
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("big.py");
    let original = std::fs::read_to_string(big).unwrap();
    std::fs::write(&copy, &original).unwrap();
    let roots = vec![work.path().to_path_buf()];
    let before = bodies(server).await.len();
    scan(&roots, &base, cache, false).await;
    let first = bodies(server).await;
    let whole_file = sent_tokens(&first[before..]);
    // Change one line inside the first function body.
    let edited = original.replacen("\n    return", "\n    return  ", 1);
    assert_ne!(edited, original, "the edit must change the file");
    std::fs::write(&copy, &edited).unwrap();
    scan(&roots, &base, cache, false).await;
    let after = bodies(server).await;
    let edit_tokens = sent_tokens(&after[first.len()..]);
    let (_, naive_file) = naive_tokens(&copy);
    EditCost { lines: original.lines().count(), edit_tokens, whole_file, naive_file }
}
