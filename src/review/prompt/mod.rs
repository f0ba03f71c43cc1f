//! Builds what an LLM agent is sent: a chunk's lines stripped of comments and docstrings
//! (`strip`), with secrets redacted (`redact`), rendered under their original line numbers,
//! plus the agent's system prompt and the reply schema (`agents`). Pure functions: no I/O,
//! no provider knowledge; the engine calls them and `reply` reads what comes back.

mod agents;
mod redact;
mod strip;

use std::fmt::Write as _;
use std::ops::Range;

use tree_sitter::Tree;

pub use agents::{PROMPT_VERSION, batch_reply_schema, batch_system_prompt, display_name, reply_schema, system_prompt};
pub use redact::{PLACEHOLDER_PREFIX, Redaction, redact, redact_lines};
pub use strip::{original_lines, strip};

use crate::review::finding::Category;
use crate::syntax::Language;

/// One line to send: its original 0-based line number and its (stripped) text.
pub type Line = (u32, String);

/// A chunk ready to render: its lines, and what was redacted from them.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub lines: Vec<Line>,
    pub redactions: Vec<Redaction>,
}

/// The lines `agent` should see of the chunk at `ranges`: stripped of comments and
/// docstrings, except for the documentation agent, which reviews them; then redacted.
/// Redaction always runs last, on exactly what will be sent.
pub fn prepare(agent: Category, lang: Language, tree: &Tree, source: &str, ranges: &[Range<usize>]) -> Prepared {
    let mut lines = match agent {
        Category::Documentation => original_lines(source, ranges),
        _ => strip(lang, tree, source, ranges),
    };
    let redactions = redact_lines(&mut lines);
    Prepared { lines, redactions }
}

/// One chunk as the model sees it: a header naming the file and language, then each line as
/// `N: text` with its original 1-based number, inside a fence that keeps code apart from
/// instructions.
pub fn render_chunk(path: &str, lang: Language, lines: &[Line]) -> String {
    let mut out = String::with_capacity(lines.iter().map(|(_, t)| t.len() + 7).sum::<usize>() + path.len() + 40);
    render_into(&mut out, path, lang, lines);
    out
}

/// Several files for one call. Each keeps its own header and numbering; the batch prompt
/// asks for a `path` on every finding, and `reply::route` sends findings back by it. A path
/// may appear more than once (several chunks of one file).
pub fn render_batch(files: &[(&str, Language, &[Line])]) -> String {
    let mut out = String::new();
    for (i, (path, lang, lines)) in files.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        render_into(&mut out, path, *lang, lines);
    }
    out
}

fn render_into(out: &mut String, path: &str, lang: Language, lines: &[Line]) {
    // Infallible: writing to a String.
    let _ = writeln!(out, "File: {path} ({})\n```{}", display_name(lang), lang.name());
    for (n, text) in lines {
        let _ = writeln!(out, "{}: {text}", n + 1);
    }
    out.push_str("```\n");
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // the APIs take a slice of ranges
mod tests {
    use super::*;
    use crate::syntax::parse;

    #[test]
    fn rendering_uses_original_one_based_numbers() {
        let lines = vec![(11, "def f():".to_string()), (13, "    return 1".to_string())];
        assert_eq!(
            render_chunk("a/b.py", Language::Python, &lines),
            "File: a/b.py (Python)\n```python\n12: def f():\n14:     return 1\n```\n"
        );
        let batch = render_batch(&[("x.go", Language::Go, &lines[..1]), ("y.rs", Language::Rust, &lines[1..])]);
        assert!(batch.contains("File: x.go (Go)\n```go\n12: def f():\n```\n\nFile: y.rs (Rust)\n```rust\n14:"));
    }

    #[test]
    fn prepare_strips_for_most_agents_and_always_redacts() {
        let src = "# token = 'ghp_0123456789abcdefABCDEF0123456789abcd'\nAPI_KEY = 'AKIAIOSFODNN7EXAMPLE'  # prod\n";
        let tree = parse(Language::Python, src).unwrap();
        let sec = prepare(Category::Security, Language::Python, &tree, src, &[0..src.len()]);
        assert_eq!(sec.lines, vec![(1, "API_KEY = '<REDACTED:aws-access-key>'".to_string())]);
        let doc = prepare(Category::Documentation, Language::Python, &tree, src, &[0..src.len()]);
        assert_eq!(doc.lines.len(), 2);
        assert!(doc.redactions.iter().any(|r| r.kind == "github-token" && r.line == 0));
        assert!(!render_chunk("p.py", Language::Python, &doc.lines).contains("ghp_"));
    }
}
