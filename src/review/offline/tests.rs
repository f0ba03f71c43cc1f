//! Unit tests for the offline engine: rule table invariants, range filtering, the per-thread
//! memo, and that nothing here compiles a tree-sitter query.

#![allow(clippy::single_range_in_vec_init)] // `review` takes a slice of ranges

use super::*;

#[test]
fn rule_ids_are_unique_well_formed_and_enough() {
    let all = rules();
    let mut ids: Vec<_> = all.iter().map(|r| r.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "duplicate rule ids");
    assert!(all.len() >= 30, "only {} rules", all.len());
    let langs = ["python", "javascript", "typescript", "rust", "go"];
    for r in all {
        let parts: Vec<_> = r.id.split('/').collect();
        assert_eq!(parts.len(), 3, "{}", r.id);
        assert!(langs.contains(&parts[0]), "{}", r.id);
        assert_eq!(parts[1], r.category.as_str(), "{} registered as {:?}", r.id, r.category);
        let name_ok =
            !parts[2].is_empty() && parts[2].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        assert!(name_ok, "{}", r.id);
        assert!(!r.summary.is_empty(), "{}", r.id);
    }
    for cat in Category::ALL {
        assert!(all.iter().any(|r| r.category == cat), "no {} rules", cat.as_str());
    }
}

#[test]
fn javascript_rules_mirror_typescript_rules() {
    let js: Vec<_> = javascript::JS_RULES.iter().map(|r| r.id.trim_start_matches("javascript/")).collect();
    let ts: Vec<_> = javascript::TS_RULES.iter().map(|r| r.id.trim_start_matches("typescript/")).collect();
    assert_eq!(js, ts);
}

#[test]
fn only_nodes_starting_in_range_are_reported() {
    let src = "x = eval(a)\ny = eval(b)\nz = eval(c)\n";
    let tree = crate::syntax::parse(Language::Python, src).unwrap();
    let second = src.find("y =").unwrap()..src.find("z =").unwrap();
    let found = review(Language::Python, Category::Security, &tree, src, &[second]);
    assert_eq!(found.iter().map(|f| f.span.start_line).collect::<Vec<_>>(), [1]);
    let whole = 0..src.len();
    let found = review(Language::Python, Category::Security, &tree, src, &[whole.clone(), whole]);
    assert_eq!(found.len(), 3, "overlapping ranges must not duplicate findings");
}

#[test]
fn memo_answers_each_category_and_notices_new_input() {
    let src = "x = eval(a)\nif y == None:\n    pass\n";
    let tree = crate::syntax::parse(Language::Python, src).unwrap();
    let all = [0..src.len()];
    let security = review(Language::Python, Category::Security, &tree, src, &all);
    let correctness = review(Language::Python, Category::Correctness, &tree, src, &all);
    assert_eq!(security.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(), ["python/security/eval"]);
    assert_eq!(correctness.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(), ["python/correctness/none-comparison"]);
    assert!(review(Language::Python, Category::Documentation, &tree, src, &all).is_empty());
    // Same text, other ranges; then other text: both must be recomputed.
    assert!(review(Language::Python, Category::Security, &tree, src, &[12..src.len()]).is_empty());
    let src2 = "x = exec(a)\n";
    let tree2 = crate::syntax::parse(Language::Python, src2).unwrap();
    let found = review(Language::Python, Category::Security, &tree2, src2, &[0..src2.len()]);
    assert_eq!(found.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(), ["python/security/exec"]);
}

/// The memo keys on the tree and the text's address, not its content, so a buffer rewritten
/// in place and parsed again must still miss: the memo pins the old tree, so the new one
/// cannot reuse its root's address.
#[test]
fn memo_misses_for_text_rewritten_in_place() {
    let rules = |found: Vec<Finding>| found.into_iter().map(|f| f.rule).collect::<Vec<_>>();
    let mut buf = String::from("x = eval(a)\n");
    let (ptr, all) = (buf.as_ptr(), [0..buf.len()]);
    let tree = crate::syntax::parse(Language::Python, &buf).unwrap();
    assert_eq!(rules(review(Language::Python, Category::Security, &tree, &buf, &all)), ["python/security/eval"]);
    drop(tree);
    buf.replace_range(.., "x = exec(a)\n");
    assert_eq!(buf.as_ptr(), ptr, "the test needs the text at the same address");
    let tree = crate::syntax::parse(Language::Python, &buf).unwrap();
    assert_eq!(rules(review(Language::Python, Category::Security, &tree, &buf, &all)), ["python/security/exec"]);
}

#[test]
fn sql_detection() {
    assert!(looks_like_sql("SELECT * FROM users WHERE id = %s"));
    assert!(looks_like_sql("  delete from t"));
    assert!(!looks_like_sql("hello {name}"));
    assert!(!looks_like_sql("selected item: {}"));
}

#[test]
fn rule_names_are_unique_within_a_language() {
    for lang in Language::ALL {
        let mut names: Vec<_> = spec(lang).rules.iter().map(|r| short_name(r.id)).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "{lang:?}: rule names must be unique within a language");
    }
}

#[test]
fn ranges_are_clipped_sorted_and_joined() {
    assert_eq!(merged(&[5..9, 0..3, 2..4, 9..12, 20..20, 30..40], 35), [0..4, 5..12, 30..35]);
    assert!(merged(&[40..50], 35).is_empty());
}

#[test]
fn walk_visits_wanted_nodes_starting_in_ranges_in_order() {
    let src = "a = 1\ndef f():\n    b = 2\n    return b\nc = 3\n";
    let tree = crate::syntax::parse(Language::Python, src).unwrap();
    let grammar = Language::Python.grammar();
    let named: Vec<bool> = (0..grammar.node_kind_count()).map(|id| grammar.node_kind_is_named(id as u16)).collect();
    let body = src.find("    b").unwrap()..src.find("c =").unwrap();
    let mut seen = Vec::new();
    walk(&tree, &merged(std::slice::from_ref(&body), src.len()), &named, |n| seen.push((n.kind(), n.start_byte())));
    assert!(seen.iter().all(|(_, start)| body.contains(start)), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1), "pre-order starts never decrease: {seen:?}");
    assert!(seen.iter().any(|(k, _)| *k == "return_statement"), "{seen:?}");
    assert!(!seen.iter().any(|(k, _)| *k == "function_definition"), "starts before the range: {seen:?}");
    let mut all = 0;
    walk(&tree, &merged(&[0..src.len()], src.len()), &named, |_| all += 1);
    let mut cursor = tree.walk();
    assert_eq!(all, count_named(&mut cursor), "a whole-file range visits every named node once");
    let mut assignments = 0;
    walk(&tree, &merged(&[0..src.len()], src.len()), anchor_table(Language::Python), |n| {
        assert!(python::ANCHORS.contains(&n.kind()), "{}", n.kind());
        assignments += usize::from(n.kind() == "assignment");
    });
    assert_eq!(assignments, 3);
}

/// Go ends top-level declarations with a hidden newline token, and tree-sitter's jump to a
/// byte gives up when a range starts on the blank line after one.
#[test]
fn walk_finds_nodes_after_a_blank_line_in_go() {
    let src = "package a\n\nimport \"x\"\n\n\nvar A = 1\n";
    let tree = crate::syntax::parse(Language::Go, src).unwrap();
    let grammar = Language::Go.grammar();
    let named: Vec<bool> = (0..grammar.node_kind_count()).map(|id| grammar.node_kind_is_named(id as u16)).collect();
    let blank = src.find("\n\n\nvar").unwrap() + 2;
    let mut seen = Vec::new();
    walk(&tree, &merged(&[blank..src.len()], src.len()), &named, |n| seen.push(n.kind()));
    assert_eq!(seen.first(), Some(&"var_declaration"), "{seen:?}");
}

#[test]
fn every_anchor_kind_is_a_named_kind_of_its_grammars() {
    for lang in Language::ALL {
        let grammar = lang.grammar();
        for kind in spec(lang).anchors {
            assert_ne!(grammar.id_for_node_kind(kind, true), 0, "{lang:?} has no `{kind}` nodes");
        }
        let marked = anchor_table(lang).iter().filter(|m| **m).count();
        assert!(marked >= spec(lang).anchors.len(), "{lang:?}: {marked} kind ids marked");
    }
}

fn count_named(cursor: &mut tree_sitter::TreeCursor<'_>) -> usize {
    let mut n = usize::from(cursor.node().is_named());
    if cursor.goto_first_child() {
        loop {
            n += count_named(cursor);
            if !cursor.goto_next_sibling() {
                break;
            }
        }
        cursor.goto_parent();
    }
    n
}

/// Start-up budget: the reviewer must not compile tree-sitter queries (tens of milliseconds
/// per grammar). Checks every source file of this module, this one included.
#[test]
fn no_tree_sitter_query_is_built() {
    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/review/offline");
    let mut files = Vec::new();
    sources(&dir, &mut files);
    assert!(files.len() >= 7, "found only {files:?}");
    let needles = [["Query", "::new"].concat(), ["Query", "Cursor"].concat(), ["tree_sitter::", "Query"].concat()];
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        for needle in &needles {
            assert!(!text.contains(needle.as_str()), "{} mentions {needle}", path.display());
        }
    }
}

/// The ~200-line Python file `benches/lsp_latency.rs` opens.
fn sample_python() -> String {
    let mut s = String::from("\"\"\"Inventory helpers.\"\"\"\nimport json\nimport subprocess\n\n\n");
    for i in 0..18 {
        s.push_str(&format!(
            "def handler_{i}(items, limit=10):\n    \"\"\"Sum the prices of the first items.\"\"\"\n    total = 0\n    for item in items[:limit]:\n        if item.get(\"price\") is not None:\n            total += item[\"price\"]\n    if total == None:\n        return 0\n    return json.dumps({{\"total\": total, \"n\": {i}}})\n\n\n"
        ));
    }
    s.push_str("def run(cmd):\n    return subprocess.run(cmd, shell=True)\n");
    s
}

/// Prints what the first review in a fresh process costs (parse, then all five categories
/// over the whole file), against the start-up budget. Run it alone, so nothing has warmed
/// up before it: `cargo test --release --lib print_first_review_time -- --ignored --nocapture`.
#[test]
#[ignore]
fn print_first_review_time() {
    let src = sample_python();
    let ms = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1000.0;
    let started = std::time::Instant::now();
    let tree = crate::syntax::parse(Language::Python, &src).unwrap();
    let parsed = ms(started);
    let all = [0..src.len()];
    let found: usize =
        Category::ALL.into_iter().map(|cat| review(Language::Python, cat, &tree, &src, &all).len()).sum();
    let first = ms(started);
    assert!(found > 0);
    // Later walks, without the memo, for comparison with the first.
    let again = std::time::Instant::now();
    for _ in 0..100 {
        assert_eq!(review_all(Language::Python, &tree, &src, &all).len(), found);
    }
    eprintln!(
        "{} lines, {found} findings: first review {first:.2} ms (parse {parsed:.2} ms + 5 categories); \
         later walks {:.3} ms each",
        src.lines().count(),
        ms(again) / 100.0
    );
}
