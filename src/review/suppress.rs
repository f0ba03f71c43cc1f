//! Owns inline suppressions: `# review-lsp: ignore[rule-id]` (or `//` in C-like languages).
//! A suppression covers its own line, or the line below when it stands alone on its line,
//! which is where the "Ignore this finding" action puts it.

use std::collections::HashMap;

use crate::syntax::Language;

const MARKER: &str = "review-lsp: ignore";

/// The comment the "Ignore this finding" action inserts (without indentation or newline).
pub fn comment_for(lang: Language, rule: &str) -> String {
    format!("{} {MARKER}[{rule}]", lang.comment_prefix())
}

/// Rules ignored per 0-based line; `None` in the list means every rule.
pub struct Suppressions {
    by_line: HashMap<u32, Vec<Option<String>>>,
}

impl Suppressions {
    pub fn scan(lang: Language, source: &str) -> Suppressions {
        let mut by_line: HashMap<u32, Vec<Option<String>>> = HashMap::new();
        // Most files have none; skip the line walk entirely then.
        if !source.contains(MARKER) {
            return Suppressions { by_line };
        }
        let prefix = lang.comment_prefix();
        for (i, line) in source.lines().enumerate() {
            let Some(at) = line.find(MARKER) else { continue };
            let before = &line[..at];
            let Some(comment_start) = before.rfind(prefix) else { continue };
            if !before[comment_start + prefix.len()..].trim().is_empty() {
                continue;
            }
            let rules = parse_rules(&line[at + MARKER.len()..]);
            let own_line = line[..comment_start].trim().is_empty();
            let target = if own_line { i as u32 + 1 } else { i as u32 };
            by_line.entry(target).or_default().extend(rules);
        }
        Suppressions { by_line }
    }

    pub fn covers(&self, line: u32, rule: &str) -> bool {
        self.by_line.get(&line).is_some_and(|rules| rules.iter().any(|r| r.as_deref().is_none_or(|r| r == rule)))
    }
}

/// `[a, b] rest` → [Some(a), Some(b)]; no bracket → [None] (everything).
fn parse_rules(after: &str) -> Vec<Option<String>> {
    let Some(inner) = after.strip_prefix('[').and_then(|r| r.split_once(']')).map(|(inner, _)| inner) else {
        return vec![None];
    };
    inner.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Some(s.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_line_comment_covers_next_line() {
        let src = "x = 1\n# review-lsp: ignore[python/security/eval]\neval(y)\n";
        let s = Suppressions::scan(Language::Python, src);
        assert!(s.covers(2, "python/security/eval"));
        assert!(!s.covers(2, "python/security/exec"));
        assert!(!s.covers(1, "python/security/eval"));
    }

    #[test]
    fn trailing_comment_covers_its_line_and_bare_marker_covers_all() {
        let src = "a == b; // review-lsp: ignore\n";
        let s = Suppressions::scan(Language::JavaScript, src);
        assert!(s.covers(0, "javascript/correctness/loose-equality"));
    }

    #[test]
    fn marker_outside_a_comment_does_not_count() {
        let src = "s = \"review-lsp: ignore\"\n";
        assert!(!Suppressions::scan(Language::Python, src).covers(0, "x"));
        assert!(!Suppressions::scan(Language::Python, src).covers(1, "x"));
    }

    #[test]
    fn several_rules_in_one_comment() {
        let src = "// review-lsp: ignore[a/b/c, d/e/f]\nfoo();\n";
        let s = Suppressions::scan(Language::Go, src);
        assert!(s.covers(1, "a/b/c") && s.covers(1, "d/e/f") && !s.covers(1, "x/y/z"));
    }

    #[test]
    fn inserted_comment_round_trips() {
        let c = comment_for(Language::Rust, "rust/maintainability/dbg-macro");
        let src = format!("    {c}\n    dbg!(x);\n");
        assert!(Suppressions::scan(Language::Rust, &src).covers(1, "rust/maintainability/dbg-macro"));
    }
}
