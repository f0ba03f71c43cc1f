//! Proof under stress, bad input: every kind of hostile or broken input goes through the LSP
//! server (the real binary over stdio) and through `scan`, and each gets a clear message or
//! the right behaviour. None crashes or hangs the process, and after each one another open
//! document still gets fresh diagnostics on an edit ([`Keeper::alive`]).
//!
//! Already covered elsewhere, and not repeated here:
//! - `tests/cli_scan.rs::unreadable_files_are_skipped_counted_and_reported_on_stderr`: scan's
//!   messages for a binary file, invalid UTF-8 and a file over `review.max_file_size`;
//! - `tests/cli_scan.rs::columns_count_characters_not_bytes`: scan columns after `😀` and `é`;
//! - `tests/lsp_e2e.rs::incremental_edits_keep_positions_right_in_utf16_and_utf8` and
//!   `crlf_documents_get_fixes_that_keep_crlf`: server positions after emoji and combining
//!   characters, and fixes in an all-CRLF document;
//! - `tests/lsp_e2e.rs::close_clears_and_bad_traffic_does_not_hurt`: one garbage frame, one
//!   unknown method, one change of a never-opened document, one older version (without
//!   checking that the older version was really ignored).
//!
//! Malformed JSON-RPC, unknown methods, unopened documents and versions exist only in the
//! protocol; `scan` has no counterpart for them.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{LspClient, Options, apply_edits, codes, file_uri};
use serde_json::{Value, json};

const EVAL: &str = "python/security/eval";
const NONE_CMP: &str = "python/correctness/none-comparison";

// ---------------------------------------------------------------------------------------
// Helpers

fn scan(dir: &Path, args: &[&str]) -> Output {
    common::command()
        .arg("scan")
        .args(args)
        .current_dir(dir)
        .env("XDG_CACHE_HOME", dir.join(".cache"))
        .env_remove("REVIEW_LSP_LOG")
        .output()
        .unwrap()
}

fn scan_json(dir: &Path, args: &[&str]) -> (Value, String) {
    let mut all = vec!["--format", "json", "--fail-on", "none"];
    all.extend_from_slice(args);
    let out = scan(dir, &all);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "scan failed ({:?}):\n{stderr}", out.status);
    assert!(!stderr.contains("panicked") && !stderr.contains("overflow"), "{stderr}");
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    (report, stderr)
}

fn findings<'a>(report: &'a Value, path: &str, rule: &str) -> Vec<&'a Value> {
    report["findings"].as_array().unwrap().iter().filter(|f| f["path"] == path && f["rule"] == rule).collect()
}

fn diags<'a>(params: &'a Value, rule: &str) -> Vec<&'a Value> {
    params["diagnostics"].as_array().unwrap().iter().filter(|d| d["code"] == rule).collect()
}

/// An open document that must keep working whatever else the client sends.
struct Keeper {
    uri: String,
    version: i32,
}

const KEEPER: &str =
    "import os\n\n\ndef check(x, data):\n    if x == None:\n        return eval(data)\n    return os.getcwd()\n";

impl Keeper {
    fn open(c: &mut LspClient) -> Keeper {
        let uri = file_uri(&c.root.join("keeper.py"));
        c.open(&uri, "python", 1, KEEPER);
        let d = c.diagnostics(&uri, Some(1));
        assert!(codes(&d).contains(&EVAL.to_string()), "{d}");
        Keeper { uri, version: 1 }
    }

    /// Edits the keeper (a new function with an `eval` at its end) and checks that its
    /// diagnostics for exactly that version arrive, with the new finding on the right line.
    fn alive(&mut self, c: &mut LspClient, after: &str) {
        self.version += 1;
        let v = self.version;
        let text = format!("{KEEPER}\n\ndef extra_{v}(d):\n    return eval(d)\n");
        let started = Instant::now();
        c.change(&self.uri, v, json!([{"text": text}]));
        let d = c.diagnostics(&self.uri, Some(v));
        let lines: Vec<u64> = diags(&d, EVAL).iter().map(|d| d["range"]["start"]["line"].as_u64().unwrap()).collect();
        assert_eq!(lines, [5, 10], "after {after}: the open document lost its review: {d}");
        assert!(started.elapsed() < Duration::from_secs(10), "after {after}: the edit took {:?}", started.elapsed());
    }
}

fn stats(c: &mut LspClient) -> Value {
    c.request("workspace/executeCommand", json!({"command": "review-lsp.showStats"}))
}

// ---------------------------------------------------------------------------------------
// Binary files and invalid UTF-8

#[test]
fn binary_and_invalid_utf8_input_gets_a_message_or_a_review_never_a_crash() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path();
    std::fs::write(root.join("ok.py"), "def f(x):\n    return eval(x)\n").unwrap();
    std::fs::write(root.join("bin.py"), b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0\x01\0\0\0").unwrap();
    std::fs::write(root.join("latin1.js"), b"const s = 'caf\xe9';\nif (s == 1) {}\n").unwrap();
    // UTF-16 (as Windows tools write it): a BOM and a NUL after every ASCII byte.
    let utf16: Vec<u8> =
        [0xFF, 0xFE].into_iter().chain("x = eval(y)\n".encode_utf16().flat_map(u16::to_le_bytes)).collect();
    std::fs::write(root.join("utf16.py"), utf16).unwrap();
    // A NUL only after the first 8 KiB: valid UTF-8, so it is reviewed as text, NUL and all.
    let mut late_nul = "def g(x):\n    return eval(x)\n".to_string();
    late_nul.push_str(&"# padding line of a long generated file\n".repeat(250));
    late_nul.push_str("\0\0\0\nif late == None:\n    pass\n");
    std::fs::write(root.join("late_nul.py"), &late_nul).unwrap();
    // A UTF-8 BOM is text.
    std::fs::write(root.join("bom.py"), "\u{feff}import os\nif os == None:\n    pass\n").unwrap();

    let (report, stderr) = scan_json(root, &[]);
    let skipped: Vec<&str> =
        report["skipped"].as_array().unwrap().iter().map(|s| s["path"].as_str().unwrap()).collect();
    assert_eq!(skipped, ["bin.py", "latin1.js", "utf16.py"], "{report:#}");
    assert!(stderr.contains("skipped bin.py: binary file (it has a NUL byte)"), "{stderr}");
    assert!(stderr.contains("skipped latin1.js: not valid UTF-8 (first bad byte at offset 14)"), "{stderr}");
    assert!(stderr.contains("skipped utf16.py: binary file"), "{stderr}");
    assert_eq!(report["stats"]["files_scanned"], 3, "{report:#}");
    assert_eq!(findings(&report, "late_nul.py", EVAL).len(), 1, "{report:#}");
    let late = findings(&report, "late_nul.py", NONE_CMP);
    assert_eq!(late.len(), 1, "the code after the NULs is reviewed too: {report:#}");
    assert_eq!(late[0]["line"], 254);
    let bom = findings(&report, "bom.py", NONE_CMP);
    assert_eq!((bom[0]["line"].clone(), bom[0]["column"].clone()), (json!(2), json!(4)), "{report:#}");

    // The server: an editor that opens a binary file sends it as text, NULs and control
    // characters included.
    let mut c = LspClient::start(root, Options::default());
    let mut keeper = Keeper::open(&mut c);
    let uri = file_uri(&root.join("bin.py"));
    let garbage: String = (0u32..3000).map(|i| char::from_u32((i * 7919) % 0x2FF).unwrap_or('\u{fffd}')).collect();
    let text = format!("x = 1\0\u{1}\u{2}\u{7f}\nif x == None:\n    pass\n{garbage}\n");
    c.open(&uri, "python", 1, &text);
    let d = c.diagnostics(&uri, Some(1));
    assert!(codes(&d).contains(&NONE_CMP.to_string()), "reviewed as the text it is: {d}");
    keeper.alive(&mut c, "a binary document");

    // A frame whose JSON holds invalid UTF-8 (an editor that sent raw latin-1 bytes).
    let body = b"{\"jsonrpc\":\"2.0\",\"method\":\"textDocument/didOpen\",\"params\":{\"textDocument\":{\"uri\":\"file:///tmp/latin1.py\",\"languageId\":\"python\",\"version\":1,\"text\":\"s = 'caf\xe9'\\nif s == None:\\n    pass\\n\"}}}";
    let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    frame.extend_from_slice(body);
    c.send_raw(&frame);
    let said = c.wait_for(
        |m| m["method"] == "window/logMessage" && m["params"]["message"].as_str().unwrap_or("").contains("malformed"),
        common::TIMEOUT,
        "a message about the undecodable frame",
    );
    assert!(said["params"]["message"].as_str().unwrap().contains("invalid JSON"), "{said}");
    keeper.alive(&mut c, "a frame with invalid UTF-8");

    // The workspace scan skips the unreadable files, with a count, and reviews the rest; the
    // open `bin.py` is reviewed as the buffer the user sees.
    let result = c.request("workspace/executeCommand", json!({"command": "review-lsp.scanWorkspace"}));
    assert_eq!((result["files_scanned"].clone(), result["files_skipped"].clone()), (json!(4), json!(2)), "{result}");
    keeper.alive(&mut c, "a workspace scan with unreadable files");
    assert!(!c.stderr().contains("panicked"), "{}", c.stderr());
    assert!(c.shutdown().success());
}

// ---------------------------------------------------------------------------------------
// A 50 MB file

fn fifty_megabytes() -> String {
    let unit = "def f(x):\n    if x == None:\n        return eval(x)\n    return x\n";
    unit.repeat(50 * 1024 * 1024 / unit.len() + 1)
}

#[test]
fn a_50_mb_file_is_skipped_with_one_message_and_the_server_stays_responsive() {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path();
    let huge = fifty_megabytes();
    std::fs::write(root.join("huge.py"), &huge).unwrap();
    std::fs::write(root.join("small.py"), "def f(x):\n    return eval(x)\n").unwrap();

    let started = Instant::now();
    let (report, stderr) = scan_json(root, &[]);
    assert!(started.elapsed() < Duration::from_secs(10), "scan took {:?}", started.elapsed());
    eprintln!("scan with a 50 MB file: {:?}", started.elapsed());
    assert_eq!(report["stats"]["files_scanned"], 1, "{report:#}");
    assert_eq!(
        report["skipped"],
        json!([{"path": "huge.py", "reason": "50 MB is over the 1 MB limit (review.max_file_size)"}])
    );
    let about: Vec<&str> = stderr.lines().filter(|l| l.contains("huge.py")).collect();
    assert_eq!(
        about,
        ["skipped huge.py: 50 MB is over the 1 MB limit (review.max_file_size)"],
        "one message:\n{stderr}"
    );

    let mut c = LspClient::start(root, Options::default());
    let mut keeper = Keeper::open(&mut c);
    let uri = file_uri(&root.join("huge.py"));
    let started = Instant::now();
    c.open(&uri, "python", 1, &huge);
    let d = c.diagnostics(&uri, Some(1));
    assert_eq!(d["diagnostics"], json!([]), "not reviewed: over review.max_file_size");
    assert!(started.elapsed() < Duration::from_secs(20), "didOpen of 50 MB took {:?}", started.elapsed());
    eprintln!("server, didOpen of 50 MB → empty diagnostics: {:?}", started.elapsed());
    stats(&mut c);
    keeper.alive(&mut c, "opening a 50 MB document");

    // Edits of it are applied (and skipped) quickly too.
    let edit = json!([{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "# top\n"}]);
    c.change(&uri, 2, edit);
    assert_eq!(c.diagnostics(&uri, Some(2))["diagnostics"], json!([]));
    keeper.alive(&mut c, "editing a 50 MB document");

    // A workspace scan while it is open skips the buffer as it skips the file.
    let result = c.request("workspace/executeCommand", json!({"command": "review-lsp.scanWorkspace"}));
    assert_eq!((result["files_scanned"].clone(), result["files_skipped"].clone()), (json!(1), json!(1)), "{result}");
    let published: Vec<Value> = c
        .drain(Duration::from_millis(300))
        .into_iter()
        .filter(|m| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri.as_str())
        .collect();
    assert!(
        published.iter().all(|m| m["params"]["diagnostics"] == json!([])),
        "the 50 MB buffer was reviewed: {published:?}"
    );
    keeper.alive(&mut c, "a workspace scan with a 50 MB document open");

    c.notify("textDocument/didClose", json!({"textDocument": {"uri": uri}}));
    assert_eq!(c.diagnostics(&uri, None)["diagnostics"], json!([]));
    keeper.alive(&mut c, "closing a 50 MB document");
    assert!(c.shutdown().success());
}

// ---------------------------------------------------------------------------------------
// A 100K-line file

/// 100,000 lines: 10,000 functions of 10 lines, each with one `== None` on its 3rd line.
fn hundred_thousand_lines() -> String {
    (0..10_000)
        .map(|i| {
            format!(
                "def f{i}(x):\n    y = x + 1\n    if y == None:\n        return 0\n    z = y * 2\n    w = z - 3\n    for k in range(w):\n        z += k\n    return z\n\n"
            )
        })
        .collect()
}

#[test]
fn a_100k_line_file_is_reviewed_in_time() {
    const BOUND: Duration = Duration::from_secs(20);
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path();
    let text = hundred_thousand_lines();
    assert_eq!(text.lines().count(), 100_000);
    // 1.4 MB: over the default limit of 1 MB, so the limit is raised.
    std::fs::write(root.join("review-lsp.toml"), "[review]\nmax_file_size = 4000000\n").unwrap();
    std::fs::write(root.join("long.py"), &text).unwrap();

    let started = Instant::now();
    let (report, _) = scan_json(root, &[]);
    let took = started.elapsed();
    let found = findings(&report, "long.py", NONE_CMP);
    assert_eq!(found.len(), 10_000);
    assert_eq!((found[9_999]["line"].clone(), found[9_999]["column"].clone()), (json!(99_993), json!(8)));
    assert!(took < BOUND, "scan of 100K lines took {took:?}");
    eprintln!("scan of 100K lines: {took:?}");

    let mut c = LspClient::start(
        root,
        Options {
            // All 10,000 findings shown: the cap (review.max_findings_per_file) is raised too.
            init_options: json!({"review": {"debounce_ms": 50, "max_file_size": 4_000_000, "max_findings_per_file": 20_000}}),
            ..Options::default()
        },
    );
    let mut keeper = Keeper::open(&mut c);
    let uri = file_uri(&root.join("long.py"));
    let started = Instant::now();
    c.open(&uri, "python", 1, &text);
    let d = c.diagnostics(&uri, Some(1));
    let took = started.elapsed();
    let found = diags(&d, NONE_CMP);
    assert_eq!(found.len(), 10_000);
    assert_eq!(found[9_999]["range"]["start"], json!({"line": 99_992, "character": 7}));
    assert!(took < BOUND, "didOpen → diagnostics of 100K lines took {took:?}");
    eprintln!("server, didOpen of 100K lines → diagnostics: {took:?}");

    // An edit near the end: only that chunk changes, the rest comes from the chunk cache.
    let started = Instant::now();
    let edit = json!([{"range": {"start": {"line": 99_990, "character": 0}, "end": {"line": 99_990, "character": 0}},
                       "text": "def g(v):\n    return eval(v)\n"}]);
    c.change(&uri, 2, edit);
    let d = c.diagnostics(&uri, Some(2));
    assert_eq!(diags(&d, EVAL)[0]["range"]["start"]["line"], 99_991, "{:?}", diags(&d, EVAL));
    assert!(started.elapsed() < BOUND, "an edit of 100K lines took {:?}", started.elapsed());
    keeper.alive(&mut c, "a 100K-line document");
    assert!(c.shutdown().success());
}

// ---------------------------------------------------------------------------------------
// 5,000 levels of nesting

/// Deeply nested files, each with an `eval` at a known 1-based line (or none).
fn deep_files() -> Vec<(&'static str, &'static str, String, Option<u64>)> {
    const N: usize = 5000;
    let open_close = |o: &str, c: &str| (o.repeat(N), c.repeat(N));
    let (lo, lc) = open_close("[", "]");
    let (po, pc) = open_close("(", ")");
    let (bo, bc) = open_close("{", "}");
    let chain = vec!["x"; N].join(" + ");
    let mut py_blocks = String::from("def deep(x):\n");
    // 1,000 nested blocks: indentation makes deeper Python grow with the square of the depth.
    for i in 0..1000 {
        py_blocks.push_str(&format!("{}if x:\n", " ".repeat(i + 1)));
    }
    py_blocks.push_str(&format!("{}eval(x)\n", " ".repeat(1001)));
    vec![
        ("lists.py", "python", format!("x = {lo}{lc}\n\n\ndef f(y):\n    return eval(y)\n"), Some(5)),
        ("parens.py", "python", format!("def f(x):\n    y = {chain}\n    return eval({po}x{pc})\n"), Some(3)),
        ("blocks.py", "python", py_blocks, Some(1002)),
        (
            "parens.js",
            "javascript",
            format!("function f(x) {{\n  const y = {chain};\n  return eval({po}x{pc});\n}}\n"),
            Some(3),
        ),
        (
            "blocks.js",
            "javascript",
            format!("function f(x, y) {{\n{}  eval(y);\n{}}}\n", "if (x) {\n".repeat(N), "}\n".repeat(N)),
            Some(N as u64 + 2),
        ),
        ("arrows.js", "javascript", format!("f({}0{});\n", "() => f(".repeat(2000), ")".repeat(2000)), None),
        ("types.ts", "typescript", format!("let y: {}number{} = [];\n", "Array<".repeat(2000), ">".repeat(2000)), None),
        (
            "deep.go",
            "go",
            format!(
                "package main\n\nfunc f(db DB, x string) {{\n\tdb.Query(\"SELECT \" + {chain})\n\tdb.Query(\"SELECT \" + {po}x{pc})\n\t{bo}{bc}\n}}\n"
            ),
            None,
        ),
        (
            "deep.rs",
            "rust",
            format!("fn f() -> i32 {{\n    let y = {};\n    {bo}{bc}\n    {po}1{pc}\n}}\n", vec!["1"; N].join(" + ")),
            None,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn deep_nesting_crashes_neither_scan_nor_the_server() {
    // With the model configured, comments are stripped and secrets redacted on the same trees:
    // those walks must be iterative too.
    let mock = common::mock_llm::openai(common::mock_llm::plain).await;
    let base = format!("{}/v1", mock.uri());
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path().to_path_buf();
    let files = deep_files();
    for (name, _, text, _) in &files {
        std::fs::write(root.join(name), text).unwrap();
    }
    let (r, b) = (root.clone(), base.clone());
    let (report, _) = tokio::task::spawn_blocking(move || {
        scan_json(&r, &["--provider", "openai", "--model", "mock-model", "--base-url", &b])
    })
    .await
    .unwrap();
    assert_eq!(report["stats"]["files_scanned"], files.len(), "{:#}", report["stats"]);
    for (name, _, _, eval_line) in &files {
        let rule = if name.ends_with(".py") { EVAL.to_string() } else { "javascript/security/eval".to_string() };
        let lines: Vec<u64> = findings(&report, name, &rule).iter().map(|f| f["line"].as_u64().unwrap()).collect();
        assert_eq!(lines, eval_line.iter().copied().collect::<Vec<_>>(), "{name}");
    }
    assert!(!mock.received_requests().await.unwrap().is_empty(), "the deep files went to the model");

    let files2 = files.clone();
    tokio::task::spawn_blocking(move || {
        let opts = Options {
            init_options: json!({"review": {"debounce_ms": 50},
                                 "llm": {"provider": "openai", "base_url": base, "model": "mock-model"}}),
            ..Options::default()
        };
        let mut c = LspClient::start(&root, opts);
        let mut keeper = Keeper::open(&mut c);
        for (name, language, text, eval_line) in &files2 {
            let uri = file_uri(&root.join(format!("open_{name}")));
            c.open(&uri, language, 1, text);
            let d = c.diagnostics(&uri, Some(1));
            let rule = if name.ends_with(".py") { EVAL } else { "javascript/security/eval" };
            let lines: Vec<u64> =
                diags(&d, rule).iter().map(|d| d["range"]["start"]["line"].as_u64().unwrap() + 1).collect();
            assert_eq!(lines, eval_line.iter().copied().collect::<Vec<_>>(), "{name}: {d}");
            keeper.alive(&mut c, name);
        }
        // The model's calls for them have all been answered without taking the server down.
        std::thread::sleep(Duration::from_millis(500));
        keeper.alive(&mut c, "the model's replies for the deep documents");
        assert!(!c.stderr().contains("overflow") && !c.stderr().contains("panicked"), "{}", c.stderr());
        assert!(c.shutdown().success());
    })
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// Line endings and characters outside ASCII

/// Mixed `\r\n` and `\n`, with emoji, a ZWJ sequence, combining marks, CJK and an astral
/// letter before the findings on their lines.
const MIXED: &str = "x = 1\r\ny = 2\nif x == None:\r\n    s = \"👩\u{200d}👩\u{200d}👧 e\u{301}\u{302} 漢字 𝔘 🇫🇷\"; t = eval(s)\n\r\nif y == None:\n    pass\r\n";

/// `(line, column)` of `needle` on 0-based `line` of MIXED, counted in `unit`s.
fn column(line: usize, needle: &str, unit: fn(&str) -> usize) -> u64 {
    let text = MIXED.split('\n').nth(line).unwrap();
    unit(&text[..text.find(needle).unwrap()]) as u64
}

#[test]
fn mixed_line_endings_and_wide_characters_keep_positions_right() {
    let chars = |s: &str| s.chars().count();
    let utf16 = |s: &str| s.encode_utf16().count();
    let bytes = |s: &str| s.len();

    // scan: 1-based lines, columns in characters (code points), fixes keep each line's ending.
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("mixed.py"), MIXED).unwrap();
    let (report, _) = scan_json(ws.path(), &[]);
    let none: Vec<(u64, u64)> = findings(&report, "mixed.py", NONE_CMP)
        .iter()
        .map(|f| (f["line"].as_u64().unwrap(), f["column"].as_u64().unwrap()))
        .collect();
    assert_eq!(none, [(3, 4), (6, 4)], "{report:#}");
    let eval = findings(&report, "mixed.py", EVAL);
    assert_eq!(eval[0]["line"], 4);
    assert_eq!(eval[0]["column"].as_u64().unwrap(), column(3, "eval", chars) + 1, "{:#}", eval[0]);
    assert_eq!(eval[0]["end_column"].as_u64().unwrap(), column(3, "eval", chars) + 1 + "eval(s)".len() as u64);
    let fixes: Vec<&str> =
        findings(&report, "mixed.py", NONE_CMP).iter().map(|f| f["fix"]["replacement"].as_str().unwrap()).collect();
    assert_eq!(fixes, ["if x is None:\r\n", "if y is None:\n"], "each line keeps its own ending");
    let sarif = scan(ws.path(), &["--format", "sarif", "--fail-on", "none"]);
    let sarif: Value = serde_json::from_slice(&sarif.stdout).unwrap();
    let region = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == EVAL)
        .map(|r| r["locations"][0]["physicalLocation"]["region"].clone())
        .unwrap();
    assert_eq!(region["startColumn"], eval[0]["column"], "SARIF counts code points too: {region}");

    // The server, in both position encodings.
    for utf8 in [false, true] {
        let ws = tempfile::tempdir().unwrap();
        let mut c = LspClient::start(ws.path(), Options { utf8, ..Options::default() });
        let mut keeper = Keeper::open(&mut c);
        let uri = file_uri(&ws.path().join("mixed.py"));
        c.open(&uri, "python", 1, MIXED);
        let d = c.diagnostics(&uri, Some(1));
        let unit = if utf8 { bytes } else { utf16 };
        let e = diags(&d, EVAL)[0];
        assert_eq!(e["range"]["start"], json!({"line": 3, "character": column(3, "eval", unit)}), "utf8={utf8}");
        assert_eq!(e["range"]["end"], json!({"line": 3, "character": column(3, "eval", unit) + 7}), "utf8={utf8}");
        let fixes: Vec<Value> = diags(&d, NONE_CMP).iter().map(|d| d["data"]["fix"].clone()).collect();
        let fixed = apply_edits(MIXED, &fixes);
        assert_eq!(fixed, MIXED.replace("== None", "is None"), "utf8={utf8}: fixes keep every line ending");
        // An incremental edit right after the ZWJ sequence lands where the client meant it.
        let at = column(3, " e\u{301}", unit);
        c.change(&uri, 2, json!([{"range": {"start": {"line": 3, "character": at}, "end": {"line": 3, "character": at}}, "text": "!"}]));
        let d = c.diagnostics(&uri, Some(2));
        assert_eq!(diags(&d, EVAL)[0]["range"]["start"]["character"], column(3, "eval", unit) + 1, "utf8={utf8}");
        keeper.alive(&mut c, "mixed line endings");
        assert!(c.shutdown().success());
    }
}

// ---------------------------------------------------------------------------------------
// Protocol abuse

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    f.extend_from_slice(body);
    f
}

fn malformed_notice(c: &mut LspClient, what: &str) -> String {
    let m = c.wait_for(
        |m| m["method"] == "window/logMessage" && m["params"]["message"].as_str().unwrap_or("").contains("malformed"),
        common::TIMEOUT,
        what,
    );
    m["params"]["message"].as_str().unwrap().to_string()
}

#[test]
fn bad_protocol_traffic_never_loses_the_open_documents() {
    let ws = tempfile::tempdir().unwrap();
    let mut c = LspClient::start(ws.path(), Options::default());
    let mut keeper = Keeper::open(&mut c);

    // Malformed frames: each is reported once, and the next frame is read normally.
    c.send_raw(&frame(b"{\"jsonrpc\": \"2.0\", \"method\": \"textDocument/didOpen\", \"params\": {"));
    assert!(malformed_notice(&mut c, "truncated JSON").contains("invalid JSON"));
    keeper.alive(&mut c, "truncated JSON");
    c.send_raw(&frame(b"[1, 2, 3]"));
    assert!(malformed_notice(&mut c, "a JSON array").contains("not a JSON-RPC message"));
    keeper.alive(&mut c, "a JSON value that is not JSON-RPC");
    c.send_raw(b"Content-Type: application/vscode-jsonrpc\r\n\r\n");
    assert!(malformed_notice(&mut c, "no Content-Length").contains("Content-Length"));
    keeper.alive(&mut c, "a header without Content-Length");
    c.send_raw(&frame(b"\xff\xfe\x00garbage"));
    malformed_notice(&mut c, "binary junk");
    keeper.alive(&mut c, "binary junk");

    // Unknown methods: a request gets MethodNotFound, a notification is dropped.
    let err = c.try_request("review/doesNotExist", json!({"x": 1})).unwrap_err();
    assert_eq!(err["code"], -32601, "{err}");
    c.notify("review/unknownNotification", json!({"x": 1}));
    c.notify("$/cancelRequest", json!({"id": 987654}));
    keeper.alive(&mut c, "unknown methods");

    // Known methods with wrong params: an error answer, or nothing for a notification.
    let err = c.try_request("textDocument/codeAction", json!(5)).unwrap_err();
    assert_eq!(err["code"], -32602, "{err}");
    let err = c.try_request("workspace/executeCommand", json!({"command": "review-lsp.reviewFile", "arguments": [42]}));
    assert!(err.is_err(), "{err:?}");
    c.notify("textDocument/didOpen", json!({"textDocument": {"uri": "file:///x.py"}}));
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": keeper.uri, "version": "seven"}, "contentChanges": 3}),
    );
    keeper.alive(&mut c, "wrong params");

    // Documents that are not open: a change and a close are ignored, nothing is published.
    let never = file_uri(&ws.path().join("never.py"));
    c.change(&never, 2, json!([{"text": "x = eval(y)\n"}]));
    c.notify("textDocument/didClose", json!({"textDocument": {"uri": file_uri(&ws.path().join("never2.py"))}}));
    keeper.alive(&mut c, "a change for a document never opened");
    let about_never: Vec<Value> = c
        .drain(Duration::from_millis(200))
        .into_iter()
        .filter(|m| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == never.as_str())
        .collect();
    assert!(about_never.is_empty(), "{about_never:?}");

    // Positions past the end of the document clamp to it.
    let doc = file_uri(&ws.path().join("order.py"));
    c.open(&doc, "python", 5, "def f(a):\n    return eval(a)\n");
    c.diagnostics(&doc, Some(5));
    c.change(&doc, 6, json!([{"range": {"start": {"line": 999, "character": 999}, "end": {"line": 1999, "character": 0}}, "text": "x = 1\n"}]));
    let d = c.diagnostics(&doc, Some(6));
    assert_eq!(diags(&d, EVAL)[0]["range"]["start"]["line"], 1);
    keeper.alive(&mut c, "positions past the end");

    // Out-of-order versions: v8 after v9 is ignored, and so is a repeat of v9.
    let v7 = "def f(a):\n    return eval(a)\nx = 1\n";
    c.change(&doc, 7, json!([{"text": v7}]));
    c.diagnostics(&doc, Some(7));
    c.change(&doc, 9, json!([{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "if a == None:\n    pass\n"}]));
    c.change(&doc, 8, json!([{"text": "garbage = (\n"}]));
    c.change(&doc, 9, json!([{"text": "also ignored\n"}]));
    let d = c.diagnostics(&doc, Some(9));
    assert_eq!(diags(&d, NONE_CMP).len(), 1, "v9 as sent: {d}");
    assert_eq!(diags(&d, EVAL)[0]["range"]["start"]["line"], 3, "{d}");
    // An incremental edit written against v9 applies to v9's text, so v8 really was ignored.
    c.change(&doc, 10, json!([{"range": {"start": {"line": 3, "character": 11}, "end": {"line": 3, "character": 15}}, "text": "eval"}]));
    let d = c.diagnostics(&doc, Some(10));
    assert_eq!(diags(&d, EVAL).len(), 1, "{d}");
    assert_eq!(diags(&d, NONE_CMP).len(), 1, "{d}");
    keeper.alive(&mut c, "out-of-order versions");
    let published: Vec<Value> = c
        .drain(Duration::from_millis(300))
        .into_iter()
        .filter(|m| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == doc.as_str())
        .collect();
    assert!(
        published.iter().all(|m| m["params"]["version"].as_i64() >= Some(10)),
        "nothing for an ignored version: {published:?}"
    );

    // Opening an open document again starts it over at the new version.
    c.open(&doc, "python", 1, "if b == None:\n    pass\n");
    let d = c.diagnostics(&doc, Some(1));
    assert_eq!(codes(&d), [NONE_CMP], "{d}");
    keeper.alive(&mut c, "a second didOpen");

    let s = stats(&mut c);
    assert_eq!(s["open_documents"], 2, "{s}");
    assert!(!c.stderr().contains("panicked"), "{}", c.stderr());
    assert!(c.shutdown().success());
}
