//! Every offline rule fires on a positive snippet (exactly that rule, on the expected line)
//! and, where it has a fix, the fix produces the expected text. Near-misses and the clean
//! corpus must produce nothing.

#![allow(clippy::single_range_in_vec_init)] // `review` takes a slice of ranges

use std::collections::BTreeSet;
use std::path::Path;

use review_lsp::review::finding::{Category, Finding, Fix};
use review_lsp::review::offline::{self, rules};
use review_lsp::syntax::{self, Language};

struct Case {
    lang: Language,
    rule: &'static str,
    /// 0-based line the finding starts on.
    line: u32,
    src: &'static str,
    /// The whole file after applying the fix; `None` when no fix is expected.
    fixed: Option<&'static str>,
}

const fn case(lang: Language, rule: &'static str, line: u32, src: &'static str, fixed: Option<&'static str>) -> Case {
    Case { lang, rule, line, src, fixed }
}

use Language::{Go, JavaScript as Js, Python as Py, Rust as Rs};

const CASES: &[Case] = &[
    // ---- python
    case(Py, "python/security/eval", 0, "result = eval(user_input)\n", None),
    case(Py, "python/security/exec", 1, "namespace = {}\nexec(source, namespace)\n", None),
    case(
        Py,
        "python/security/yaml-load",
        2,
        "import yaml\n\nconfig = yaml.load(stream)\n",
        Some("import yaml\n\nconfig = yaml.safe_load(stream)\n"),
    ),
    case(
        Py,
        "python/security/subprocess-shell",
        2,
        "import subprocess\n\nsubprocess.run([\"ls\", path], shell=True, check=True)\n",
        Some("import subprocess\n\nsubprocess.run([\"ls\", path], check=True)\n"),
    ),
    case(
        Py,
        "python/security/subprocess-shell",
        0,
        "subprocess.check_call(\n    [\"git\", \"fetch\", remote],\n    shell=True,\n)\nok = 1\n",
        Some("subprocess.check_call(\n    [\"git\", \"fetch\", remote],\n)\nok = 1\n"),
    ),
    case(Py, "python/security/subprocess-shell", 0, "subprocess.Popen(f\"tar xf {archive}\", shell=True)\n", None),
    case(Py, "python/security/pickle-load", 1, "with open(path, \"rb\") as f:\n    data = pickle.load(f)\n", None),
    case(Py, "python/security/sql-format", 0, "cursor.execute(f\"SELECT * FROM users WHERE name = '{name}'\")\n", None),
    case(Py, "python/security/sql-format", 0, "cur.execute(\"DELETE FROM jobs WHERE id = %s\" % job_id)\n", None),
    case(Py, "python/security/sql-format", 0, "cur.execute(\"SELECT id FROM t WHERE a = {}\".format(a))\n", None),
    case(
        Py,
        "python/security/requests-verify-false",
        0,
        "resp = requests.get(url, timeout=5, verify=False)\n",
        Some("resp = requests.get(url, timeout=5, verify=True)\n"),
    ),
    case(Py, "python/security/hardcoded-password", 0, "DB_PASSWORD = \"s3cr3t-Pa55\"\n", None),
    case(
        Py,
        "python/security/hardcoded-password",
        0,
        "client = connect(host, api_key=\"sk_live_4eC39HqLyjWDarjtT1zdp7dc\")\n",
        None,
    ),
    case(
        Py,
        "python/correctness/none-comparison",
        0,
        "if value == None:\n    pass\n",
        Some("if value is None:\n    pass\n"),
    ),
    case(Py, "python/correctness/none-comparison", 0, "done = None != result\n", Some("done = None is not result\n")),
    case(
        Py,
        "python/correctness/mutable-default",
        0,
        "def add(item, bucket=[]):\n    bucket.append(item)\n    return bucket\n",
        None,
    ),
    case(Py, "python/correctness/mutable-default", 0, "def tally(x, seen: dict = dict()):\n    return seen\n", None),
    case(
        Py,
        "python/correctness/bare-except",
        2,
        "try:\n    run()\nexcept:\n    log()\n",
        Some("try:\n    run()\nexcept Exception:\n    log()\n"),
    ),
    case(
        Py,
        "python/correctness/is-literal",
        0,
        "if status is \"ok\":\n    pass\n",
        Some("if status == \"ok\":\n    pass\n"),
    ),
    case(Py, "python/correctness/is-literal", 0, "retry = code is not -1\n", Some("retry = code != -1\n")),
    case(
        Py,
        "python/correctness/assert-tuple",
        0,
        "assert (x > 0, \"x must be positive\")\n",
        Some("assert x > 0, \"x must be positive\"\n"),
    ),
    case(
        Py,
        "python/performance/dict-keys-membership",
        0,
        "if key not in self.cache.keys():\n    pass\n",
        Some("if key not in self.cache:\n    pass\n"),
    ),
    case(Py, "python/maintainability/star-import", 0, "from os.path import *\n", None),
    case(Py, "python/maintainability/type-comparison", 0, "if type(x) == int:\n    pass\n", None),
    case(
        Py,
        "python/documentation/missing-docstring",
        1,
        "@cache\ndef resolve(name):\n    a = 1\n    b = 2\n    c = 3\n    d = 4\n    e = 5\n    f = 6\n    g = 7\n    h = 8\n    return name\n",
        None,
    ),
    // ---- javascript (also run as TypeScript and TSX, under `typescript/...`)
    case(Js, "javascript/security/eval", 0, "const result = eval(userInput);\n", None),
    case(Js, "javascript/security/new-function", 0, "const fn = new Function(\"a\", body);\n", None),
    case(
        Js,
        "javascript/security/inner-html",
        1,
        "const el = document.getElementById(\"out\");\nel.innerHTML = `<b>${message}</b>`;\n",
        None,
    ),
    case(Js, "javascript/security/inner-html", 0, "list.outerHTML += row;\n", None),
    case(Js, "javascript/security/document-write", 0, "document.write(banner);\n", None),
    case(Js, "javascript/correctness/loose-equality", 0, "if (a == b) {\n}\n", Some("if (a === b) {\n}\n")),
    case(
        Js,
        "javascript/correctness/loose-equality",
        0,
        "const changed = prev != next;\n",
        Some("const changed = prev !== next;\n"),
    ),
    case(
        Js,
        "javascript/correctness/invalid-typeof",
        0,
        "if (typeof x === \"strng\") {\n}\n",
        Some("if (typeof x === \"string\") {\n}\n"),
    ),
    case(Js, "javascript/correctness/invalid-typeof", 0, "const isArr = 'array' !== typeof v;\n", None),
    case(
        Js,
        "javascript/maintainability/debugger",
        1,
        "function f() {\n  debugger;\n  return 1;\n}\n",
        Some("function f() {\n  return 1;\n}\n"),
    ),
    case(Js, "javascript/maintainability/var", 0, "var count = 0;\n", None),
    // ---- rust
    case(
        Rs,
        "rust/security/unsafe-without-safety-comment",
        2,
        "fn f(p: *const u8) -> u8 {\n    // read it\n    unsafe { *p }\n}\n",
        None,
    ),
    case(
        Rs,
        "rust/correctness/nan-comparison",
        1,
        "fn f(x: f64) -> bool {\n    x == f64::NAN\n}\n",
        Some("fn f(x: f64) -> bool {\n    x.is_nan()\n}\n"),
    ),
    case(
        Rs,
        "rust/correctness/nan-comparison",
        1,
        "fn f(a: f32, b: f32) -> bool {\n    std::f32::NAN != a - b\n}\n",
        Some("fn f(a: f32, b: f32) -> bool {\n    !(a - b).is_nan()\n}\n"),
    ),
    case(
        Rs,
        "rust/performance/collect-len",
        1,
        "fn f(v: &[u8]) -> usize {\n    v.iter().filter(|b| **b > 0).collect::<Vec<_>>().len()\n}\n",
        Some("fn f(v: &[u8]) -> usize {\n    v.iter().filter(|b| **b > 0).count()\n}\n"),
    ),
    case(
        Rs,
        "rust/maintainability/dbg-macro",
        1,
        "fn f(x: u8) -> u8 {\n    dbg!(x + 1)\n}\n",
        Some("fn f(x: u8) -> u8 {\n    x + 1\n}\n"),
    ),
    case(
        Rs,
        "rust/maintainability/dbg-macro",
        2,
        "fn f(x: &S) -> u8 {\n    let y = 1;\n    dbg!(&x.items);\n    y\n}\n",
        Some("fn f(x: &S) -> u8 {\n    let y = 1;\n    y\n}\n"),
    ),
    case(Rs, "rust/maintainability/dbg-macro", 1, "fn f(a: u8, b: u8) -> (u8, u8) {\n    dbg!(a, b)\n}\n", None),
    case(
        Rs,
        "rust/maintainability/dbg-macro",
        2,
        "fn f(case: &C) {\n    #[cfg(feature = \"std\")]\n    dbg!(case);\n}\n",
        None,
    ),
    case(Rs, "rust/maintainability/todo-macro", 1, "fn f() -> u8 {\n    todo!()\n}\n", None),
    case(Rs, "rust/maintainability/todo-macro", 1, "fn f() -> u8 {\n    unimplemented!()\n}\n", None),
    case(
        Rs,
        "rust/documentation/missing-safety-doc",
        1,
        "/// Reads a byte.\npub unsafe fn read(p: *const u8) -> u8 {\n    // SAFETY: the caller promises `p` is valid.\n    unsafe { *p }\n}\n",
        None,
    ),
    // ---- go
    case(
        Go,
        "go/security/sql-sprintf",
        3,
        "package main\n\nfunc find(db *sql.DB, name string) {\n\tdb.Query(fmt.Sprintf(\"SELECT * FROM users WHERE name = '%s'\", name))\n}\n",
        None,
    ),
    case(
        Go,
        "go/security/sql-sprintf",
        3,
        "package main\n\nfunc drop(ctx context.Context, db *sql.DB, t string) {\n\tdb.ExecContext(ctx, \"DELETE FROM \" + t)\n}\n",
        None,
    ),
    case(
        Go,
        "go/security/insecure-tls",
        3,
        "package main\n\nfunc client() {\n\tcfg := &tls.Config{InsecureSkipVerify: true}\n\t_ = cfg\n}\n",
        Some("package main\n\nfunc client() {\n\tcfg := &tls.Config{InsecureSkipVerify: false}\n\t_ = cfg\n}\n"),
    ),
    case(
        Go,
        "go/security/insecure-tls",
        3,
        "package main\n\nfunc tweak(cfg *tls.Config) {\n\tcfg.InsecureSkipVerify = true\n}\n",
        Some("package main\n\nfunc tweak(cfg *tls.Config) {\n\tcfg.InsecureSkipVerify = false\n}\n"),
    ),
    case(
        Go,
        "go/correctness/defer-in-loop",
        5,
        "package main\n\nfunc readAll(paths []string) {\n\tfor _, p := range paths {\n\t\tf, _ := os.Open(p)\n\t\tdefer f.Close()\n\t}\n}\n",
        None,
    ),
    case(
        Go,
        "go/correctness/empty-error-check",
        4,
        "package main\n\nfunc run() {\n\terr := do()\n\tif err != nil {\n\t}\n}\n",
        None,
    ),
    case(
        Go,
        "go/performance/case-insensitive-compare",
        3,
        "package main\n\nfunc same(a, b string) bool {\n\treturn strings.ToLower(a) != strings.ToLower(b)\n}\n",
        Some("package main\n\nfunc same(a, b string) bool {\n\treturn !strings.EqualFold(a, b)\n}\n"),
    ),
    case(
        Go,
        "go/maintainability/error-string-capitalized",
        3,
        "package main\n\nfunc check() error {\n\treturn errors.New(\"Something failed\")\n}\n",
        Some("package main\n\nfunc check() error {\n\treturn errors.New(\"something failed\")\n}\n"),
    ),
    case(
        Go,
        "go/maintainability/error-string-capitalized",
        3,
        "package main\n\nfunc check(n int) error {\n\treturn fmt.Errorf(\"Invalid count %d\", n)\n}\n",
        Some("package main\n\nfunc check(n int) error {\n\treturn fmt.Errorf(\"invalid count %d\", n)\n}\n"),
    ),
    case(
        Go,
        "go/documentation/exported-no-comment",
        4,
        "package store\n\n// open is internal.\nfunc open() {}\nfunc Open() {}\n",
        None,
    ),
    case(
        Go,
        "go/documentation/exported-no-comment",
        4,
        "package store\n\ntype DB struct{}\n\nfunc (d *DB) Close() error { return nil }\n",
        None,
    ),
];

/// Snippets that look like a rule's target but are fine.
const NEAR_MISSES: &[(Language, &str)] = &[
    (Py, "x = eval(\"1 + 2\")\ndata = yaml.safe_load(stream)\ncfg = yaml.load(stream, Loader=yaml.SafeLoader)\n"),
    (
        Py,
        "subprocess.run([\"ls\", path], check=True)\nsubprocess.run(\"ls -l | wc -l\", shell=True)\nsubprocess.Popen([\"ver\"], shell=True)\n",
    ),
    (Py, "PASSWD = 'testPass'\nINCORRECT_PASSWD = \"Incorrect\"\nFIELD_TOKEN = \"csrfmiddlewaretoken\"\n"),
    (
        Py,
        "class WaveLowLevelTest(unittest.TestCase):\n    a = 1\n    b = 2\n    c = 3\n    d = 4\n    e = 5\n    f = 6\n    g = 7\n    h = 8\n    i = 9\n",
    ),
    (Py, "cur.execute(\"SELECT * FROM t WHERE id = %s\", (job_id,))\nlog.info(\"selected %s\" % x)\n"),
    (Py, "resp = requests.get(url, verify=True)\n"),
    (
        Py,
        "PASSWORD_ENV = \"DB_PASSWORD\"\npassword = \"\"\ntoken = \"GITHUB_TOKEN\"\napi_key = os.environ[\"API_KEY\"]\nsecret = \"changeme-please\"\n",
    ),
    (Py, "if value is None or other is not None:\n    pass\nrows = q.filter(User.deleted_at == None)\n"),
    (Py, "def add(item, bucket=None, size=(), name=\"x\"):\n    return bucket\n"),
    (Py, "try:\n    run()\nexcept ValueError:\n    pass\nexcept:\n    cleanup()\n    raise\n"),
    (Py, "assert x > 0, \"x must be positive\"\nif flag is True:\n    pass\n"),
    (Py, "if key in mapping:\n    pass\nfor key in mapping.keys():\n    pass\n"),
    (Py, "from . import *\nfrom os import path\nsame = type(a) == type(b)\nexact = type(x) is int\n"),
    (Js, "if (x == null || y != undefined) {}\nif (typeof v == \"string\") {}\nif (typeof v === \"bigint\") {}\n"),
    (Js, "el.innerHTML = \"\";\nel.innerHTML = DOMPurify.sanitize(html);\ndocument.write(\"<p>static</p>\");\n"),
    (
        Js,
        "const f = new Function(\"return this\");\nconst r = eval(\"2 + 2\");\nlet count = 0;\nconst debug = false;\n",
    ),
    (Rs, "fn f(p: *const u8) -> u8 {\n    // SAFETY: `p` comes from a live slice.\n    unsafe { *p }\n}\n"),
    (Rs, "fn f(p: *const u8) -> u8 {\n    let v = unsafe { *p }; // SAFETY: p is valid\n    v\n}\n"),
    (Rs, "fn f(p: *const u8) -> u8 {\n    unsafe {\n        // SAFETY: p is valid\n        *p\n    }\n}\n"),
    (Rs, "fn f(x: f64) -> bool {\n    x.is_nan() || x == f64::INFINITY\n}\n"),
    (
        Rs,
        "fn f(v: &[u8]) -> usize {\n    let s = v.iter().collect::<HashSet<_>>().len();\n    v.iter().count() + s\n}\n",
    ),
    (
        Rs,
        "/// Reads.\n///\n/// # Safety\n///\n/// `p` must be valid.\npub unsafe fn read(p: *const u8) -> u8 {\n    // SAFETY: forwarded to the caller.\n    unsafe { *p }\n}\n",
    ),
    (Rs, "fn f() {\n    unimplemented!(\"not supported on this platform\")\n}\n"),
    (Rs, "unsafe fn private(p: *const u8) -> u8 {\n    // SAFETY: forwarded to the caller.\n    unsafe { *p }\n}\n"),
    (
        Go,
        "package main\n\nfunc run() {\n\tf, err := os.Open(p)\n\tif err != nil {\n\t\t// best effort\n\t}\n\tdefer f.Close()\n\tfor _, x := range xs {\n\t\tfunc() {\n\t\t\tdefer mu.Unlock()\n\t\t}()\n\t}\n}\n",
    ),
    (
        Go,
        "package main\n\nfunc q(db *sql.DB, id int) {\n\tdb.Query(\"SELECT * FROM t WHERE id = $1\", id)\n\t_ = fmt.Sprintf(\"SELECT %d\", id)\n}\n",
    ),
    (
        Go,
        "package main\n\nfunc e() error {\n\treturn errors.New(\"HTTP request failed\")\n}\n\nvar cfg = &tls.Config{InsecureSkipVerify: false}\n",
    ),
    (
        Go,
        "package store\n\n// Open opens the store.\nfunc Open() {}\n\nfunc TestOpen(t *testing.T) {}\n\ntype db struct{}\n\nfunc (d *db) Close() error { return nil }\n",
    ),
];

fn review_all(lang: Language, src: &str) -> Vec<Finding> {
    let tree = syntax::parse(lang, src).expect("parses");
    Category::ALL.into_iter().flat_map(|cat| offline::review(lang, cat, &tree, src, &[0..src.len()])).collect()
}

fn apply(src: &str, fix: &Fix) -> String {
    let mut out = String::new();
    for (i, line) in src.split_inclusive('\n').enumerate() {
        let i = i as u32;
        if i == fix.start_line {
            out.push_str(&fix.replacement);
        }
        if !(fix.start_line..=fix.end_line).contains(&i) {
            out.push_str(line);
        }
    }
    out
}

fn describe(findings: &[Finding]) -> String {
    findings.iter().map(|f| format!("\n  {} line {}: {}", f.rule, f.span.start_line, f.message)).collect()
}

/// JavaScript cases run as JavaScript, TypeScript and TSX, with the matching rule prefix.
fn variants(c: &Case) -> Vec<(Language, String)> {
    if c.lang == Language::JavaScript {
        let ts = c.rule.replacen("javascript/", "typescript/", 1);
        vec![(Language::JavaScript, c.rule.to_string()), (Language::TypeScript, ts.clone()), (Language::Tsx, ts)]
    } else {
        vec![(c.lang, c.rule.to_string())]
    }
}

#[test]
fn every_rule_fires_exactly_on_its_positive_snippet() {
    let mut failures = Vec::new();
    for c in CASES {
        for (lang, rule) in variants(c) {
            if let Err(e) = check_case(c, lang, &rule) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n\n"));
}

fn check_case(c: &Case, lang: Language, rule: &str) -> Result<(), String> {
    let found = review_all(lang, c.src);
    let ctx = format!("{rule} as {lang:?} on {:?}:{}", c.src, describe(&found));
    let [f] = found.as_slice() else {
        return Err(format!("expected exactly one finding for {ctx}"));
    };
    let info = rules().iter().find(|r| r.id == rule).ok_or(format!("{rule} not registered"))?;
    let checks = [
        (f.rule == rule, "wrong rule"),
        (f.span.start_line == c.line, "wrong line"),
        (f.source == "offline", "wrong source"),
        (f.fix_is_contained(), "fix escapes its finding"),
        ((f.category, f.severity) == (info.category, info.severity), "category/severity differ from the registry"),
        (f.fix.is_none() || info.has_fix, "fix produced by a rule registered without one"),
    ];
    if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(format!("{what}: {ctx}"));
    }
    match (c.fixed, &f.fix) {
        (Some(want), Some(fix)) if apply(c.src, fix) != want => {
            Err(format!("fix for {ctx}\n  gave {:?}\n  want {want:?}", apply(c.src, fix)))
        }
        (Some(_), None) => Err(format!("expected a fix for {ctx}")),
        (None, Some(fix)) => Err(format!("unexpected fix {fix:?} for {ctx}")),
        _ => Ok(()),
    }
}

#[test]
fn every_rule_has_a_case_and_every_fixable_rule_a_fix_case() {
    let mut covered = BTreeSet::new();
    let mut fix_covered = BTreeSet::new();
    for c in CASES {
        for (_, rule) in variants(c) {
            if c.fixed.is_some() {
                fix_covered.insert(rule.clone());
            }
            covered.insert(rule);
        }
    }
    for r in rules() {
        assert!(covered.contains(r.id), "no positive case for {}", r.id);
        if r.has_fix {
            assert!(fix_covered.contains(r.id), "no fix case for {}", r.id);
        }
    }
}

#[test]
fn near_misses_produce_nothing() {
    for (lang, src) in NEAR_MISSES {
        let langs: &[Language] = if *lang == Language::JavaScript {
            &[Language::JavaScript, Language::TypeScript, Language::Tsx]
        } else {
            &[*lang]
        };
        for &lang in langs {
            let found = review_all(lang, src);
            assert!(found.is_empty(), "{lang:?} near-miss {src:?} produced:{}", describe(&found));
        }
    }
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else if Language::from_path(&path).is_some() {
            out.push(path);
        }
    }
    out.sort();
}

#[test]
fn clean_corpus_has_zero_findings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/clean");
    let mut files = Vec::new();
    files_under(&dir, &mut files);
    let mut per_lang = std::collections::BTreeMap::new();
    let mut report = String::new();
    for path in &files {
        let lang = Language::from_path(path).unwrap();
        *per_lang.entry(lang.name()).or_insert(0) += 1;
        let src = std::fs::read_to_string(path).unwrap();
        let tree = syntax::parse(lang, &src).unwrap();
        assert!(!tree.root_node().has_error(), "{} does not parse cleanly", path.display());
        let found = review_all(lang, &src);
        if !found.is_empty() {
            report.push_str(&format!("\n{}:{}", path.display(), describe(&found)));
        }
    }
    assert!(report.is_empty(), "clean corpus produced findings:{report}");
    for lang in ["python", "javascript", "typescript", "rust", "go"] {
        assert!(
            per_lang.get(lang).copied().unwrap_or(0) >= 2,
            "need at least two clean {lang} files, have {per_lang:?}"
        );
    }
}

#[test]
fn examples_produce_findings_with_fixes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files = Vec::new();
    files_under(&dir, &mut files);
    let mut langs = BTreeSet::new();
    let (mut findings, mut fixes) = (0, 0);
    for path in &files {
        let lang = Language::from_path(path).unwrap();
        let src = std::fs::read_to_string(path).unwrap();
        for f in review_all(lang, &src) {
            langs.insert(lang.name());
            findings += 1;
            fixes += usize::from(f.fix.is_some());
            assert!(f.fix_is_contained(), "{}: {}", path.display(), f.rule);
        }
    }
    assert!(langs.len() >= 4, "examples should show findings in all four languages, got {langs:?}");
    assert!((5..=40).contains(&findings), "examples should give a handful of findings, got {findings}");
    assert!(fixes >= 3, "examples should include fixable findings, got {fixes}");
}
