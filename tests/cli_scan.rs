//! End-to-end tests of `review-lsp scan`: they run the real binary on temporary trees and
//! check what a user or a CI job sees (stdout report, stderr messages, exit code).
//!
//! The finding they lean on is the offline rule `python/correctness/none-comparison`
//! (`x == None`). Positions are checked relative to each other where the exact span is the
//! rule's business, not the CLI's.

mod common;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

const RULE: &str = "python/correctness/none-comparison";
const NONE_CMP: &str = "x = 1\nif x == None:\n    pass\n";
const CLEAN: &str = "def f(a):\n    return a\n";

fn write(root: &Path, rel: &str, bytes: impl AsRef<[u8]>) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Runs `review-lsp scan ARGS` in `dir`, with the cache (and anything else under the XDG
/// cache dir) inside `cache` so runs never share state with the machine or each other.
fn scan_in(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    common::command()
        .arg("scan")
        .args(args)
        .current_dir(dir)
        .env("XDG_CACHE_HOME", cache)
        .env_remove("REVIEW_LSP_LOG")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .unwrap()
}

fn scan(dir: &Path, args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    scan_in(dir, cache.path(), args)
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn findings_of<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    report["findings"].as_array().unwrap().iter().filter(|f| f["rule"] == rule).collect()
}

#[test]
fn json_report_has_the_documented_shape_and_1_based_positions() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "src/a.py", NONE_CMP);
    let out = scan(dir.path(), &["--format", "json", "--fail-on", "none"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json(&out);

    let stats = &report["stats"];
    for key in [
        "files_scanned",
        "files_skipped",
        "findings",
        "cache_hits",
        "cache_misses",
        "llm_calls",
        "prompt_tokens",
        "completion_tokens",
        "duration_ms",
    ] {
        assert!(stats[key].is_u64(), "stats.{key} missing: {stats}");
    }
    assert_eq!(stats["files_scanned"], 1);
    assert_eq!(stats["files_skipped"], 0);
    assert_eq!(stats["findings"].as_u64().unwrap() as usize, report["findings"].as_array().unwrap().len());

    let hits = findings_of(&report, RULE);
    assert_eq!(hits.len(), 1, "expected one {RULE} finding: {report:#}");
    let f = hits[0];
    assert_eq!(f["path"], "src/a.py");
    assert_eq!(f["line"], 2, "1-based line of `if x == None:`");
    let (col, end_line, end_col) =
        (f["column"].as_u64().unwrap(), f["end_line"].as_u64().unwrap(), f["end_column"].as_u64().unwrap());
    assert!((1..=13).contains(&col), "column {col} is not on `if x == None:`");
    assert!(end_line == 2 && end_col > col, "end {end_line}:{end_col}");
    assert!(["error", "warning", "info", "hint"].contains(&f["severity"].as_str().unwrap()));
    assert_eq!(f["category"], "correctness");
    assert_eq!(f["source"], "offline");
    assert!(!f["message"].as_str().unwrap().is_empty());
    match &f["fix"] {
        Value::Null => {}
        fix => {
            assert_eq!((fix["line"].as_u64(), fix["end_line"].as_u64()), (Some(2), Some(2)), "{fix}");
            assert!(fix["replacement"].is_string());
        }
    }
}

#[test]
fn columns_count_characters_not_bytes() {
    // The same statement with and without multi-byte characters before it on its line: the
    // column must move by the number of characters added, not bytes.
    let prefix = "s = \"😀😀é\"; ";
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "plain.py", "x = 1\nflag = x == None\n");
    write(dir.path(), "emoji.py", format!("x = 1\n{prefix}flag = x == None\n"));
    let report = json(&scan(dir.path(), &["--format", "json", "--fail-on", "none"]));
    let hits = findings_of(&report, RULE);
    assert_eq!(hits.len(), 2, "{report:#}");
    let by_path = |p: &str| *hits.iter().find(|f| f["path"] == p).unwrap();
    let (plain, emoji) = (by_path("plain.py"), by_path("emoji.py"));
    let shift = prefix.chars().count() as u64;
    assert!(shift < prefix.len() as u64);
    assert_eq!(emoji["line"], 2);
    assert_eq!(emoji["column"].as_u64().unwrap(), plain["column"].as_u64().unwrap() + shift);
    assert_eq!(emoji["end_column"].as_u64().unwrap(), plain["end_column"].as_u64().unwrap() + shift);
}

#[test]
fn ignore_files_and_hidden_dirs_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Not a git repository: .gitignore must apply anyway.
    write(root, ".gitignore", "generated/\n");
    write(root, ".reviewignore", "vendor/\n*_pb2.py\n");
    for kept in ["a.py", "pkg/b.py"] {
        write(root, kept, NONE_CMP);
    }
    for dropped in ["generated/c.py", "vendor/d.py", "pkg/e_pb2.py", ".hidden/f.py", "notes.txt"] {
        write(root, dropped, NONE_CMP);
    }
    let report = json(&scan(root, &["--format", "json", "--fail-on", "none"]));
    assert_eq!(report["stats"]["files_scanned"], 2, "{report:#}");
    assert_eq!(report["stats"]["files_skipped"], 0, "{report:#}");
    for f in report["findings"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        assert!(path == "a.py" || path == "pkg/b.py", "finding in an ignored file: {path}");
    }
}

#[test]
fn unreadable_files_are_skipped_counted_and_reported_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "review-lsp.toml", "[review]\nmax_file_size = 200\n");
    write(root, "ok.py", CLEAN);
    write(root, "bin.py", b"x = 1\0\x01\x02");
    write(root, "latin1.py", b"s = 'caf\xe9'\n");
    write(root, "big.py", "x = 1\n".repeat(100));
    let out = scan(root, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["stats"]["files_scanned"], 1, "{report:#}");
    assert_eq!(report["stats"]["files_skipped"], 3, "{report:#}");
    let skipped: Vec<&str> =
        report["skipped"].as_array().unwrap().iter().map(|s| s["path"].as_str().unwrap()).collect();
    assert_eq!(skipped, ["big.py", "bin.py", "latin1.py"]);

    let err = stderr(&out);
    assert!(err.contains("skipped big.py: 600 bytes is over the 200 bytes limit (review.max_file_size)"), "{err}");
    assert!(err.contains("skipped bin.py: binary"), "{err}");
    assert!(err.contains("skipped latin1.py: not valid UTF-8"), "{err}");
}

#[test]
fn fail_on_sets_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.py", NONE_CMP);
    assert_eq!(scan(dir.path(), &["--fail-on", "none"]).status.code(), Some(0));
    assert_eq!(scan(dir.path(), &["--fail-on", "hint"]).status.code(), Some(1), "a finding is at least a hint");

    let clean = tempfile::tempdir().unwrap();
    write(clean.path(), "a.py", CLEAN);
    assert_eq!(scan(clean.path(), &["--fail-on", "hint"]).status.code(), Some(0));
}

#[test]
fn fail_on_error_ignores_lesser_findings() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.py", NONE_CMP);
    let report = json(&scan(dir.path(), &["--format", "json", "--fail-on", "none"]));
    let worst = report["findings"].as_array().unwrap().iter().any(|f| f["severity"] == "error");
    let code = scan(dir.path(), &["--format", "json"]).status.code();
    assert_eq!(code, Some(if worst { 1 } else { 0 }), "default --fail-on is error");
}

#[test]
fn config_errors_exit_2_and_unknown_keys_only_warn() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.py", CLEAN);

    let out = scan(root, &["--config", "missing.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.toml"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());

    write(root, "broken.toml", "[review\nmax_file_size =");
    let out = scan(root, &["--config", "broken.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid TOML"), "{}", stderr(&out));

    write(root, "typo.toml", "[review]\nmax_file_sise = 10\n");
    let out = scan(root, &["--config", "typo.toml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("warning") && err.contains("review.max_file_sise"), "{err}");
    assert_eq!(json(&out)["stats"]["files_scanned"], 1);
}

#[test]
fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(scan(dir.path(), &["--format", "xml"]).status.code(), Some(2));
    let out = scan(dir.path(), &["no/such/dir"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no/such/dir"), "{}", stderr(&out));
}

#[test]
fn sarif_is_valid_json_with_the_rule_result() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "src/a.py", NONE_CMP);
    let sarif = json(&scan(dir.path(), &["--format", "sarif", "--fail-on", "none"]));
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["$schema"].as_str().unwrap().contains("sarif"));
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "review-lsp");
    assert_eq!(run["columnKind"], "unicodeCodePoints");
    assert!(run["originalUriBaseIds"]["%SRCROOT%"]["uri"].as_str().unwrap().starts_with("file://"));
    let results = run["results"].as_array().unwrap();
    let r = results.iter().find(|r| r["ruleId"] == RULE).unwrap_or_else(|| panic!("no {RULE} result: {sarif:#}"));
    let loc = &r["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "src/a.py");
    assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
    assert_eq!(loc["region"]["startLine"], 2);
    assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert!(rules.iter().any(|rule| rule["id"] == RULE), "driver.rules lacks {RULE}");
}

#[test]
fn text_report_is_path_line_col_without_colour_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.py", NONE_CMP);
    let out = scan(dir.path(), &["--fail-on", "none"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "colour codes on a pipe: {text:?}");
    let line = text.lines().find(|l| l.contains(RULE)).unwrap_or_else(|| panic!("no {RULE} line: {text}"));
    let mut parts = line.splitn(4, ':');
    assert_eq!(parts.next(), Some("a.py"));
    assert_eq!(parts.next(), Some("2"));
    assert!(parts.next().unwrap().parse::<u32>().is_ok(), "{line}");
    assert!(parts.next().unwrap().contains(&format!("[{RULE}]")), "{line}");
    assert!(text.lines().last().unwrap().contains("in 1 file"), "summary: {text}");
}

#[test]
fn second_run_is_served_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    for i in 0..5 {
        write(dir.path(), &format!("m{i}.py"), format!("{NONE_CMP}y = {i}\n"));
    }
    let cold = json(&scan_in(dir.path(), cache.path(), &["--format", "json", "--fail-on", "none"]));
    assert_eq!(cold["stats"]["files_scanned"], 5);
    assert_eq!(cold["stats"]["cache_misses"], 5, "{:#}", cold["stats"]);

    let warm = json(&scan_in(dir.path(), cache.path(), &["--format", "json", "--fail-on", "none"]));
    assert_eq!(warm["stats"]["files_scanned"], 5);
    assert_eq!(warm["stats"]["cache_hits"], 5, "{:#}", warm["stats"]);
    assert_eq!(warm["stats"]["cache_misses"], 0);
    assert_eq!(warm["findings"], cold["findings"], "cached findings differ");

    let uncached = json(&scan_in(dir.path(), cache.path(), &["--format", "json", "--no-cache", "--fail-on", "none"]));
    assert_eq!(uncached["stats"]["cache_hits"], 0);
}

#[test]
fn cache_dir_from_config_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().join("from-config");
    write(dir.path(), "review-lsp.toml", format!("[cache]\ndir = {:?}\n", cache_dir.to_str().unwrap()));
    write(dir.path(), "a.py", NONE_CMP);
    // `cache.dir` decides where files are written: an untrusted tree's file may not choose it.
    let untrusted = scan_in(dir.path(), elsewhere.path(), &["--format", "json"]);
    assert!(!cache_dir.exists(), "an untrusted review-lsp.toml chose the cache folder");
    assert!(stderr(&untrusted).contains("cache.dir") && stderr(&untrusted).contains("--trust-workspace-config"));
    let trust = ["--format", "json", "--trust-workspace-config"];
    scan_in(dir.path(), elsewhere.path(), &trust);
    assert!(std::fs::read_dir(&cache_dir).unwrap().any(|e| e.unwrap().path().extension().is_some_and(|x| x == "redb")));
    let warm = json(&scan_in(dir.path(), elsewhere.path(), &trust));
    assert_eq!(warm["stats"]["cache_hits"], 1, "{:#}", warm["stats"]);
}

/// Issue 13 point 10: a FIFO named on the command line used to hang the scan in `open`
/// (waiting for a writer). Now it is skipped with one message and the rest is scanned.
#[cfg(unix)]
#[test]
fn a_fifo_named_on_the_command_line_is_skipped_promptly() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.py", NONE_CMP);
    let fifo = dir.path().join("pipe.py");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let cache = tempfile::tempdir().unwrap();
    let mut child = common::command()
        .args(["scan", "pipe.py", "a.py", "--format", "json", "--fail-on", "none"])
        .current_dir(dir.path())
        .env("XDG_CACHE_HOME", cache.path())
        .env_remove("REVIEW_LSP_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the scan hung on a FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    eprintln!("scan with a FIFO took {:?}", started.elapsed());
    let err = stderr(&out);
    let skipped: Vec<&str> = err.lines().filter(|l| l.contains("pipe.py")).collect();
    assert_eq!(skipped, ["skipped pipe.py: not a regular file (a FIFO)"], "{err}");
    assert_eq!(findings_of(&json(&out), RULE).len(), 1, "a.py was still scanned");
}
