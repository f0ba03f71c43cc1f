//! Headless Neovim (≥ 0.10) as a real LSP client, loading the shipped
//! `editors/neovim/lsp/review_lsp.lua`. `scripts/install-nvim.sh` provides Neovim; the test
//! finds it through `REVIEW_LSP_NVIM`, `.tools/nvim`, or PATH, and fails if there is none.

use std::path::{Path, PathBuf};
use std::process::Command;

fn nvim() -> PathBuf {
    if let Some(p) = std::env::var_os("REVIEW_LSP_NVIM") {
        return PathBuf::from(p);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/nvim/bin/nvim");
    if local.exists() {
        return local;
    }
    PathBuf::from("nvim")
}

mod common;

#[test]
fn neovim_gets_diagnostics_applies_a_fix_and_scans() {
    let seen = run_neovim(None);
    assert_eq!(seen["llm"], false);
}

/// The README promise: point `base_url` at any OpenAI-compatible server (here a mock of
/// one, as Ollama or vLLM would serve) and get its findings in Neovim.
#[test]
fn neovim_shows_findings_from_an_openai_compatible_server() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(common::mock_llm::openai(common::mock_llm::plain));
    let seen = run_neovim(Some(format!("{}/v1", server.uri())));
    assert_eq!(seen["llm"], true, "{seen}");
}

fn run_neovim(base_url: Option<String>) -> serde_json::Value {
    let repo = env!("CARGO_MANIFEST_DIR");
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir(ws.path().join(".git")).unwrap();
    let file = ws.path().join("app.py");
    std::fs::write(&file, "def check(x, data):\n    if x == None:\n        return eval(data)\n    return x\n").unwrap();
    std::fs::write(ws.path().join("other.py"), "import yaml\n\n\ndef load(s):\n    return yaml.load(s)\n").unwrap();
    let mut nvim_cmd = Command::new(nvim());
    // The server it starts inherits this environment: keep it off the developer's settings.
    let out = common::isolate(&mut nvim_cmd, &ws.path().join(".home"))
        .args([
            "--headless",
            "--clean",
            "-l",
            &format!("{repo}/tests/nvim/e2e.lua"),
            repo,
            env!("CARGO_BIN_EXE_review-lsp"),
        ])
        .arg(&file)
        .args(base_url)
        .current_dir(ws.path())
        .env("XDG_CACHE_HOME", ws.path().join(".cache"))
        .env("XDG_STATE_HOME", ws.path().join(".state"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run Neovim ({e}); run scripts/install-nvim.sh or set REVIEW_LSP_NVIM"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nvim failed\nstdout: {stdout}\nstderr: {stderr}");
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no result line: {stdout} {stderr}"));
    let seen: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(seen["fixed"], "    if x is None:");
    assert_eq!(seen["scanned"], 2, "{seen}");
    seen
}
