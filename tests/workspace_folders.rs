//! Several workspace folders through the real server: each folder's own `review-lsp.toml`,
//! folders added and removed while running, files outside every folder, and trusting one
//! folder without trusting another.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{LspClient, Options, codes, file_uri};
use serde_json::{Value, json};

/// Has both `python/security/eval` and `python/correctness/none-comparison`.
const PY: &str = "def check(x, data):\n    if x == None:\n        return eval(data)\n    return x\n";
const EVAL: &str = "python/security/eval";
const NONE_CMP: &str = "python/correctness/none-comparison";

fn folder(root: &Path, name: &str, settings: Option<&str>) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(settings) = settings {
        std::fs::write(dir.join("review-lsp.toml"), settings).unwrap();
    }
    std::fs::write(dir.join("x.py"), PY).unwrap();
    dir
}

fn disabling(rule: &str) -> String {
    format!("[review]\ndisabled_rules = [\"{rule}\"]\n")
}

fn start(root: &Path, folders: &[&Path]) -> LspClient {
    let opts = Options { folders: Some(folders.iter().map(|f| f.to_path_buf()).collect()), ..Options::default() };
    LspClient::start(root, opts)
}

/// Opens `dir/x.py` and returns the rules of its first diagnostics.
fn open_codes(c: &mut LspClient, dir: &Path) -> Vec<String> {
    let uri = file_uri(&dir.join("x.py"));
    c.open(&uri, "python", 1, PY);
    codes(&c.diagnostics(&uri, Some(1)))
}

/// Waits for diagnostics of `dir/x.py` that satisfy `ok`, as a settings change re-reviews it.
fn wait_codes(c: &mut LspClient, dir: &Path, ok: impl Fn(&[String]) -> bool, what: &str) -> Vec<String> {
    let uri = file_uri(&dir.join("x.py"));
    let msg = c.wait_for(
        |m| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == uri.as_str()
                && ok(&codes(&m["params"]))
        },
        common::TIMEOUT,
        what,
    );
    codes(&msg["params"])
}

fn change_folders(c: &mut LspClient, added: &[&Path], removed: &[&Path]) {
    let list = |dirs: &[&Path]| -> Vec<Value> {
        dirs.iter().map(|d| json!({"uri": file_uri(d), "name": d.file_name().unwrap().to_string_lossy()})).collect()
    };
    c.notify("workspace/didChangeWorkspaceFolders", json!({"event": {"added": list(added), "removed": list(removed)}}));
}

#[test]
fn the_server_advertises_workspace_folders() {
    let ws = tempfile::tempdir().unwrap();
    let a = folder(ws.path(), "a", None);
    let c = start(ws.path(), &[&a]);
    assert_eq!(
        c.init_result["capabilities"]["workspace"]["workspaceFolders"],
        json!({"supported": true, "changeNotifications": true}),
        "{}",
        c.init_result
    );
    assert!(c.shutdown().success());
}

#[test]
fn two_folders_each_apply_their_own_settings() {
    let ws = tempfile::tempdir().unwrap();
    let a = folder(ws.path(), "a", Some(&disabling(EVAL)));
    let b = folder(ws.path(), "b", Some(&disabling(NONE_CMP)));
    let mut c = start(ws.path(), &[&a, &b]);
    let in_a = open_codes(&mut c, &a);
    let in_b = open_codes(&mut c, &b);
    assert!(!in_a.contains(&EVAL.into()) && in_a.contains(&NONE_CMP.into()), "a's settings: {in_a:?}");
    assert!(in_b.contains(&EVAL.into()) && !in_b.contains(&NONE_CMP.into()), "b's settings: {in_b:?}");
    assert!(c.shutdown().success());
}

#[test]
fn a_file_belongs_to_its_innermost_folder() {
    let ws = tempfile::tempdir().unwrap();
    let outer = folder(ws.path(), "outer", Some(&disabling(EVAL)));
    let inner = folder(&outer, "inner", Some(&disabling(NONE_CMP)));
    let mut c = start(ws.path(), &[&outer, &inner]);
    let got = open_codes(&mut c, &inner);
    assert!(got.contains(&EVAL.into()) && !got.contains(&NONE_CMP.into()), "inner's settings only: {got:?}");
    assert!(c.shutdown().success());
}

#[test]
fn a_file_outside_every_folder_gets_the_user_settings_only() {
    let ws = tempfile::tempdir().unwrap();
    // The harness's isolated home: the user's own file.
    let user = ws.path().join(".test-cache/home/config/review-lsp");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(user.join("config.toml"), disabling(NONE_CMP)).unwrap();
    let a = folder(ws.path(), "a", Some(&disabling(EVAL)));
    // A settings file beside the outside file is not a folder's: it does not apply either.
    let elsewhere = folder(ws.path(), "elsewhere", Some(&disabling(EVAL)));
    let mut c = start(ws.path(), &[&a]);
    let got = open_codes(&mut c, &elsewhere);
    assert!(got.contains(&EVAL.into()) && !got.contains(&NONE_CMP.into()), "user settings only: {got:?}");
    let in_a = open_codes(&mut c, &a);
    // A list set by a's file replaces the user's (layers merge key by key, lists whole).
    assert!(!in_a.contains(&EVAL.into()) && in_a.contains(&NONE_CMP.into()), "a's file over the user's: {in_a:?}");
    assert!(c.shutdown().success());
}

#[test]
fn folders_added_and_removed_while_running_take_and_drop_their_settings() {
    let ws = tempfile::tempdir().unwrap();
    let a = folder(ws.path(), "a", Some(&disabling(EVAL)));
    let b = folder(ws.path(), "b", Some(&disabling(NONE_CMP)));
    let mut c = start(ws.path(), &[&a]);
    let before = open_codes(&mut c, &b);
    assert!(before.contains(&NONE_CMP.into()) && before.contains(&EVAL.into()), "b is no folder yet: {before:?}");

    change_folders(&mut c, &[&b], &[]);
    wait_codes(&mut c, &b, |got| !got.contains(&NONE_CMP.into()) && got.contains(&EVAL.into()), "b's settings");
    // The scan covers both folders, each under its own settings.
    let scan = c.request("workspace/executeCommand", json!({"command": "review-lsp.scanWorkspace", "arguments": []}));
    assert_eq!(scan["files"], 2, "{scan}");
    let only_b = c.request(
        "workspace/executeCommand",
        json!({"command": "review-lsp.scanWorkspace", "arguments": [file_uri(&b)]}),
    );
    assert_eq!(only_b["files"], 1, "{only_b}");

    change_folders(&mut c, &[], &[&b, &a]);
    wait_codes(&mut c, &b, |got| got.contains(&NONE_CMP.into()), "b back to no workspace settings");
    let stats = c.request("workspace/executeCommand", json!({"command": "review-lsp.showStats", "arguments": []}));
    assert_eq!(stats["folders"], json!([]), "{stats}");
    let none = c.try_request("workspace/executeCommand", json!({"command": "review-lsp.scanWorkspace"}));
    assert!(none.is_err(), "no folder left to scan: {none:?}");
    assert!(c.shutdown().success());
}

#[test]
fn settings_reload_reaches_every_folder() {
    let ws = tempfile::tempdir().unwrap();
    let a = folder(ws.path(), "a", None);
    let b = folder(ws.path(), "b", None);
    let mut c = start(ws.path(), &[&a, &b]);
    open_codes(&mut c, &a);
    open_codes(&mut c, &b);
    std::fs::write(b.join("review-lsp.toml"), disabling(EVAL)).unwrap();
    c.notify("workspace/didChangeConfiguration", json!({"settings": {"review": {"debounce_ms": 50}}}));
    wait_codes(&mut c, &b, |got| !got.contains(&EVAL.into()), "b's new file applied");
    let drained = c.drain(Duration::from_millis(500));
    let a_uri = file_uri(&a.join("x.py"));
    let a_last = drained
        .iter()
        .rev()
        .find(|m| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == a_uri.as_str());
    if let Some(m) = a_last {
        assert!(codes(&m["params"]).contains(&EVAL.into()), "b's file leaked into a: {m}");
    }
    assert!(c.shutdown().success());
}
