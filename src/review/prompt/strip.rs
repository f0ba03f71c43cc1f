//! Strips comments and Python docstrings from a chunk before it is sent, keeping every
//! remaining line on its original line number. Numbers, not positions in the prompt, are
//! what a model reports, so no line may move; a line left blank by stripping is simply not
//! sent, and the gap in the numbering shows it.
//!
//! Stripping works on tree-sitter nodes, never on text patterns, so a `#` or `//` inside a
//! string is never mistaken for a comment.

use std::ops::Range;

use tree_sitter::{Node, Tree};

use crate::review::prompt::Line;
use crate::syntax::Language;

/// The lines of `ranges` (whole-line byte ranges of `source`, as chunks have) without
/// comments and docstrings. Each kept line carries its original 0-based line number and
/// its text minus the removed parts, right-trimmed where something was removed. Lines that
/// are (or become) blank are dropped. Nothing outside `ranges` is ever returned.
pub fn strip(lang: Language, tree: &Tree, source: &str, ranges: &[Range<usize>]) -> Vec<Line> {
    let mut removed = Vec::new();
    for r in ranges {
        collect(lang, tree.root_node(), r, &mut removed);
    }
    removed.sort_by_key(|r| r.start);
    lines_of(source, ranges, &removed)
}

/// The lines of `ranges` as they are, blank lines dropped: for the documentation agent,
/// which has to read the comments it reviews.
pub fn original_lines(source: &str, ranges: &[Range<usize>]) -> Vec<Line> {
    lines_of(source, ranges, &[])
}

/// Byte ranges to remove under `node` that intersect `range`. Only nodes that overlap the
/// range are visited, so a small chunk of a large file costs little.
///
/// Iterative (one tree cursor) rather than recursive: a recursive walk overflowed the stack,
/// aborting the whole process, on deeply nested code such as 5,000 nested brackets
/// (tests/stress_bad_input.rs).
fn collect(lang: Language, node: Node, range: &Range<usize>, out: &mut Vec<Range<usize>>) {
    let mut cursor = node.walk();
    // How far below `node` the cursor is.
    let mut level = 0usize;
    'walk: loop {
        let node = cursor.node();
        if node.end_byte() > range.start && node.start_byte() < range.end {
            // Every grammar here names its comment nodes `comment`, `line_comment` or
            // `block_comment`; doc comments (`///`, JSDoc, Go doc) are comments too.
            if node.kind().ends_with("comment") {
                out.push(node.byte_range());
            } else {
                if lang == Language::Python
                    && let Some(doc) = python_docstring(node)
                {
                    out.push(doc.byte_range());
                }
                // Jump to the first child that reaches the range: the module remainder of a
                // large file is many small ranges, and scanning every top-level node for each
                // would be quadratic.
                if cursor.goto_first_child_for_byte(range.start).is_some() {
                    level += 1;
                    if cursor.node().start_byte() < range.end {
                        continue 'walk;
                    }
                    cursor.goto_parent();
                    level -= 1;
                }
            }
        }
        // The next sibling that starts inside the range, or up until there is one; done when
        // back at `node`.
        loop {
            if level == 0 {
                return;
            }
            if cursor.goto_next_sibling() && cursor.node().start_byte() < range.end {
                continue 'walk;
            }
            cursor.goto_parent();
            level -= 1;
        }
    }
}

/// The docstring of a module, class or function body: a string expression statement that
/// comes first. A docstring that is the body's only statement is kept, because without it
/// the model would see a body-less `def` and report it.
fn python_docstring(node: Node) -> Option<Node> {
    let host = match node.kind() {
        "module" => true,
        "block" => node.parent().is_some_and(|p| matches!(p.kind(), "function_definition" | "class_definition")),
        _ => false,
    };
    if !host {
        return None;
    }
    let mut cursor = node.walk();
    let mut statements = node.named_children(&mut cursor).filter(|c| !c.kind().ends_with("comment"));
    let first = statements.next()?;
    if node.kind() == "block" && statements.next().is_none() {
        return None;
    }
    let is_string = first.kind() == "expression_statement"
        && first.named_child_count() == 1
        && first.named_child(0).is_some_and(|s| matches!(s.kind(), "string" | "concatenated_string"));
    is_string.then_some(first)
}

/// Walks the lines of `ranges`, cutting the sorted `removed` byte ranges out of each.
fn lines_of(source: &str, ranges: &[Range<usize>], removed: &[Range<usize>]) -> Vec<Line> {
    let mut out = Vec::new();
    // Line numbers are counted forward from the previous range, so a module remainder of
    // many pieces still costs one pass over the file.
    let (mut counted_to, mut line) = (0usize, 0u32);
    let mut next_removal = 0usize;
    let mut sorted: Vec<&Range<usize>> = ranges.iter().collect();
    sorted.sort_by_key(|r| r.start);
    for r in sorted {
        let r = r.start.min(source.len())..r.end.min(source.len());
        if r.start < counted_to {
            (counted_to, line) = (0, 0); // overlapping input: recount rather than misnumber
        }
        line += source.as_bytes()[counted_to..r.start].iter().filter(|&&b| b == b'\n').count() as u32;
        let mut at = r.start;
        while at < r.end {
            let end = source[at..r.end].find('\n').map_or(r.end, |i| at + i);
            let text = &source[at..end];
            let text = text.strip_suffix('\r').unwrap_or(text);
            while next_removal < removed.len() && removed[next_removal].end <= at {
                next_removal += 1;
            }
            if let Some(kept) = cut(text, at, &removed[next_removal..]) {
                out.push((line, kept));
            }
            at = end + 1;
            line += 1;
        }
        counted_to = at.min(source.len());
        if at > r.end {
            line -= 1; // the last line of the range had no newline inside it
            counted_to = r.end;
        }
    }
    out
}

/// `text` (starting at byte `at`) minus the removed ranges; `None` when nothing is left.
fn cut(text: &str, at: usize, removed: &[Range<usize>]) -> Option<String> {
    let end = at + text.len();
    let mut kept = String::with_capacity(text.len());
    let mut pos = at;
    let mut touched = false;
    for r in removed.iter().take_while(|r| r.start < end) {
        if r.end <= pos {
            continue;
        }
        touched = true;
        let s = r.start.max(pos);
        kept.push_str(&text[pos - at..s - at]);
        pos = r.end.min(end);
    }
    kept.push_str(&text[pos - at..]);
    if touched {
        kept.truncate(kept.trim_end().len());
    }
    (!kept.trim().is_empty()).then_some(kept)
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // the APIs take a slice of ranges
mod tests {
    use super::*;
    use crate::syntax::parse;

    fn run(lang: Language, src: &str) -> Vec<Line> {
        let tree = parse(lang, src).unwrap();
        strip(lang, &tree, src, &[0..src.len()])
    }

    fn texts(lines: &[Line]) -> Vec<(u32, &str)> {
        lines.iter().map(|(n, t)| (*n, t.as_str())).collect()
    }

    #[test]
    fn python_comments_and_docstrings_go_and_numbers_stay() {
        let src = "\"\"\"Module doc.\"\"\"\nimport os  # why\n\n\ndef f(x):\n    \"\"\"Doc\n    more.\n    \"\"\"\n    # note\n    s = \"# not a comment\"\n    return x  # trailing\n";
        assert_eq!(
            texts(&run(Language::Python, src)),
            vec![(1, "import os"), (4, "def f(x):"), (9, "    s = \"# not a comment\""), (10, "    return x")]
        );
    }

    #[test]
    fn a_docstring_that_is_the_whole_body_stays_and_other_strings_stay() {
        let src = "def f():\n    \"\"\"Only doc.\"\"\"\n\ndef g():\n    x = 1\n    \"not a docstring\"\n";
        let got = run(Language::Python, src);
        assert!(got.iter().any(|(n, _)| *n == 1), "{got:?}");
        assert!(got.iter().any(|(n, _)| *n == 5), "{got:?}");
    }

    #[test]
    fn c_like_comments_go_including_block_and_doc_comments() {
        let src = "/// Docs.\nfn f() -> i32 {\n    /* a\n       b */ let x = 1; // c\n    x\n}\n";
        assert_eq!(
            texts(&run(Language::Rust, src)),
            vec![(1, "fn f() -> i32 {"), (3, " let x = 1;"), (4, "    x"), (5, "}")]
        );
        let js = "/** JSDoc */\nconst a = \"//no\"; // yes\n";
        assert_eq!(texts(&run(Language::JavaScript, js)), vec![(1, "const a = \"//no\";")]);
        let go = "package p\n\n// Doc.\nfunc F() {} // t\n";
        assert_eq!(texts(&run(Language::Go, go)), vec![(0, "package p"), (3, "func F() {}")]);
    }

    #[test]
    fn only_lines_inside_the_ranges_come_out_with_their_own_numbers() {
        let src = "a = 1\nb = 2  # x\nc = 3\nd = 4\ne = 5\n";
        let tree = parse(Language::Python, src).unwrap();
        let second = src.find("b =").unwrap()..src.find("c =").unwrap();
        let fourth = src.find("d =").unwrap()..src.find("e =").unwrap();
        let got = strip(Language::Python, &tree, src, &[fourth, second]);
        assert_eq!(texts(&got), vec![(1, "b = 2"), (3, "d = 4")]);
    }

    #[test]
    fn crlf_and_a_missing_final_newline_are_handled() {
        let src = "x = 1 # c\r\ny = 2";
        assert_eq!(texts(&run(Language::Python, src)), vec![(0, "x = 1"), (1, "y = 2")]);
        assert_eq!(texts(&original_lines(src, &[0..src.len()])), vec![(0, "x = 1 # c"), (1, "y = 2")]);
    }
}
