//! Owns the tree-sitter languages: which files we understand, how to parse them, and the
//! per-language facts (comment syntax) other modules need.

use std::cell::RefCell;
use std::path::Path;

use tree_sitter::{Parser, Tree};

/// The languages the reviewer understands. Anything else is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Rust,
    Go,
}

impl Language {
    pub const ALL: [Language; 6] =
        [Language::Python, Language::JavaScript, Language::TypeScript, Language::Tsx, Language::Rust, Language::Go];

    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?;
        Self::from_extension(ext)
    }

    pub fn from_extension(ext: &str) -> Option<Self> {
        Some(match ext {
            "py" | "pyi" => Language::Python,
            "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
            "ts" | "mts" | "cts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "rs" => Language::Rust,
            "go" => Language::Go,
            _ => return None,
        })
    }

    /// Maps an LSP `languageId` to a language; editors disagree on some ids, so accept the
    /// common spellings.
    pub fn from_language_id(id: &str) -> Option<Self> {
        Some(match id {
            "python" => Language::Python,
            "javascript" | "javascriptreact" | "jsx" => Language::JavaScript,
            "typescript" => Language::TypeScript,
            "typescriptreact" | "tsx" => Language::Tsx,
            "rust" => Language::Rust,
            "go" => Language::Go,
            _ => return None,
        })
    }

    /// The name used in rule ids (`python/security/eval`) and reports. TSX shares the
    /// TypeScript rules, so it shares the name.
    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::TypeScript | Language::Tsx => "typescript",
            Language::Rust => "rust",
            Language::Go => "go",
        }
    }

    /// The line-comment leader, used for inline suppressions.
    pub fn comment_prefix(self) -> &'static str {
        match self {
            Language::Python => "#",
            _ => "//",
        }
    }

    pub fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Python => tree_sitter_python::LANGUAGE.into(),
            Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Language::Rust => tree_sitter_rust::LANGUAGE.into(),
            Language::Go => tree_sitter_go::LANGUAGE.into(),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

thread_local! {
    // Parsers are not Sync and cost an allocation to set up; one per language per thread.
    static PARSERS: RefCell<[Option<Parser>; 6]> = const { RefCell::new([None, None, None, None, None, None]) };
}

/// Parses `text` as `lang`. Returns `None` only if tree-sitter gives up (it reports syntax
/// errors as ERROR nodes instead, so this is rare).
pub fn parse(lang: Language, text: &str) -> Option<Tree> {
    PARSERS.with(|cell| {
        let mut parsers = cell.borrow_mut();
        let slot = &mut parsers[lang.index()];
        if slot.is_none() {
            let mut parser = Parser::new();
            parser.set_language(&lang.grammar()).ok()?;
            *slot = Some(parser);
        }
        slot.as_mut()?.parse(text, None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_parses() {
        let samples = [
            (Language::Python, "def f():\n    return 1\n"),
            (Language::JavaScript, "function f() { return 1; }\n"),
            (Language::TypeScript, "function f(): number { return 1; }\n"),
            (Language::Tsx, "const a = <div>{1}</div>;\n"),
            (Language::Rust, "fn f() -> i32 { 1 }\n"),
            (Language::Go, "package main\nfunc f() int { return 1 }\n"),
        ];
        for (lang, src) in samples {
            let tree = parse(lang, src).expect("parses");
            assert!(!tree.root_node().has_error(), "{lang:?} sample has a syntax error");
        }
    }

    #[test]
    fn extensions_map_to_languages() {
        assert_eq!(Language::from_path(Path::new("a/b.py")), Some(Language::Python));
        assert_eq!(Language::from_path(Path::new("x.tsx")), Some(Language::Tsx));
        assert_eq!(Language::from_path(Path::new("README.md")), None);
    }
}
