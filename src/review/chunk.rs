//! Owns chunking: a file becomes one chunk per top-level function, method or class, plus
//! one for the module remainder. A chunk is the unit of classification, caching and (for
//! LLM agents) of calls, so its hash covers exactly its own text.

use std::ops::Range;

use tree_sitter::{Node, Tree};

use crate::syntax::Language;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkKind {
    Function,
    Method,
    Class,
    /// Everything outside the other chunks: imports, constants, top-level statements.
    Module,
}

#[derive(Clone, Debug)]
pub struct Chunk {
    pub kind: ChunkKind,
    pub name: String,
    /// Byte ranges of `source` that belong to the chunk (several for the module remainder).
    pub ranges: Vec<Range<usize>>,
    /// 0-based first and last line.
    pub start_line: u32,
    pub end_line: u32,
    /// The 0-based lines of each range, half-open: where this chunk's findings may be.
    pub lines: Vec<Range<u32>>,
    pub hash: blake3::Hash,
}

/// Splits a parsed file into chunks, in source order, module remainder last.
pub fn split(lang: Language, tree: &Tree, source: &str) -> Vec<Chunk> {
    let mut units: Vec<(ChunkKind, Node)> = Vec::new();
    let root = tree.root_node();
    let mut cursor = root.walk();
    for child in root.named_children(&mut cursor) {
        collect_units(lang, child, &mut units, 0);
    }
    units.sort_by_key(|(_, n)| n.start_byte());

    let mut lines = LineCounter::new(source);
    let mut chunks = Vec::with_capacity(units.len() + 1);
    let mut covered: Vec<Range<usize>> = Vec::with_capacity(units.len());
    for (kind, node) in units {
        let range = line_range(source, leading_start(node, source), node.end_byte());
        if covered.last().is_some_and(|last| range.start < last.end) {
            continue; // nested unit already inside an outer one
        }
        covered.push(range.clone());
        chunks.push(make_chunk(kind, unit_name(node, source), vec![range], source, &mut lines));
    }

    let mut rest = Vec::new();
    let mut pos = 0;
    for r in &covered {
        if r.start > pos {
            rest.push(pos..r.start);
        }
        pos = r.end;
    }
    if pos < source.len() {
        rest.push(pos..source.len());
    }
    rest.retain(|r| !source[r.clone()].trim().is_empty());
    if !rest.is_empty() {
        let mut lines = LineCounter::new(source);
        chunks.push(make_chunk(ChunkKind::Module, String::from("<module>"), rest, source, &mut lines));
    }
    chunks
}

/// Where a unit really begins: its doc comments and attributes belong to it, so a rule (or
/// a model) that reads them sees them, and editing them changes the unit's hash.
fn leading_start(node: Node, source: &str) -> usize {
    let mut start = node.start_byte();
    let mut current = node;
    while let Some(prev) = current.prev_sibling() {
        if !matches!(prev.kind(), "comment" | "line_comment" | "block_comment" | "attribute_item" | "decorator") {
            break;
        }
        // Adjacent (no blank line between) and alone on its line, not trailing some code.
        let gap = &source[prev.end_byte().min(start)..start];
        let line_start = source[..prev.start_byte()].rfind('\n').map_or(0, |i| i + 1);
        if !gap.trim().is_empty()
            || gap.matches('\n').count() > 1
            || !source[line_start..prev.start_byte()].trim().is_empty()
        {
            break;
        }
        start = prev.start_byte();
        current = prev;
    }
    start
}

/// Widens a node's byte range to whole lines, so chunks never split a line and a finding's
/// line always belongs to exactly one chunk.
fn line_range(source: &str, start: usize, end: usize) -> Range<usize> {
    let s = source[..start].rfind('\n').map_or(0, |i| i + 1);
    let e = source[end..].find('\n').map_or(source.len(), |i| end + i + 1);
    s..e
}

/// Line numbers of ascending byte offsets in one forward pass, so chunking a file stays
/// linear in its size however many chunks it has.
struct LineCounter<'a> {
    source: &'a [u8],
    pos: usize,
    line: u32,
}

impl<'a> LineCounter<'a> {
    fn new(source: &'a str) -> Self {
        LineCounter { source: source.as_bytes(), pos: 0, line: 0 }
    }

    fn line_at(&mut self, byte: usize) -> u32 {
        let byte = byte.min(self.source.len());
        if byte < self.pos {
            // Out of order: recount from the start (rare: only the first range of a chunk).
            self.pos = 0;
            self.line = 0;
        }
        self.line += self.source[self.pos..byte].iter().filter(|&&b| b == b'\n').count() as u32;
        self.pos = byte;
        self.line
    }
}

/// The hash covers the chunk's text and, for the module remainder, where each piece sits
/// relative to the first: identical pieces spread differently must not share findings,
/// because the findings' lines are stored relative to the chunk's first line.
fn make_chunk(
    kind: ChunkKind,
    name: String,
    ranges: Vec<Range<usize>>,
    source: &str,
    lines: &mut LineCounter,
) -> Chunk {
    let mut hasher = blake3::Hasher::new();
    let first = ranges.first().map_or(0, |r| r.start);
    let start_line = lines.line_at(first);
    let mut line_ranges = Vec::with_capacity(ranges.len());
    for r in &ranges {
        let begin = lines.line_at(r.start);
        let end = lines.line_at(r.end.saturating_sub(1).max(r.start)) + 1;
        line_ranges.push(begin..end);
        hasher.update(&(begin - start_line).to_le_bytes());
        hasher.update(source[r.clone()].as_bytes());
    }
    let end_line = line_ranges.last().map_or(start_line, |r| r.end - 1);
    Chunk { kind, name, ranges, start_line, end_line, lines: line_ranges, hash: hasher.finalize() }
}

fn unit_name(node: Node, source: &str) -> String {
    let node = match node.kind() {
        // `const f = () => ...`: the name sits on the first declarator.
        "lexical_declaration" | "variable_declaration" => node.named_child(0).unwrap_or(node),
        _ => node,
    };
    let named = node
        .child_by_field_name("name")
        .or_else(|| node.child_by_field_name("definition").and_then(|d| d.child_by_field_name("name")))
        .or_else(|| node.child_by_field_name("declaration").and_then(|d| d.child_by_field_name("name")))
        .or_else(|| node.child_by_field_name("type"));
    named.and_then(|n| n.utf8_text(source.as_bytes()).ok()).map_or_else(|| node.kind().to_string(), str::to_string)
}

/// Finds the chunkable units under a top-level node. Classes and impls contribute their
/// methods as chunks; their other lines fall into the module remainder.
fn collect_units<'t>(lang: Language, node: Node<'t>, out: &mut Vec<(ChunkKind, Node<'t>)>, depth: usize) {
    if depth > 3 {
        return;
    }
    let kind = node.kind();
    match lang {
        Language::Python => match kind {
            "function_definition" => out.push((ChunkKind::Function, node)),
            "decorated_definition" => match node.child_by_field_name("definition") {
                Some(def) if def.kind() == "class_definition" => push_members(lang, def, out, depth),
                Some(_) => out.push((ChunkKind::Function, node)),
                None => {}
            },
            "class_definition" => push_members(lang, node, out, depth),
            _ => {}
        },
        Language::JavaScript | Language::TypeScript | Language::Tsx => match kind {
            "function_declaration" | "generator_function_declaration" => out.push((ChunkKind::Function, node)),
            "class_declaration" | "abstract_class_declaration" => push_members(lang, node, out, depth),
            "export_statement" => {
                if let Some(decl) = node.child_by_field_name("declaration") {
                    let before = out.len();
                    collect_units(lang, decl, out, depth + 1);
                    // An exported function chunk should include the `export` keyword.
                    if out.len() == before + 1 && out[before].0 == ChunkKind::Function {
                        out[before].1 = node;
                    }
                }
            }
            "lexical_declaration" | "variable_declaration" => {
                let mut c = node.walk();
                let is_fn = node.named_children(&mut c).any(|d| {
                    d.child_by_field_name("value")
                        .is_some_and(|v| matches!(v.kind(), "arrow_function" | "function_expression" | "function"))
                });
                if is_fn {
                    out.push((ChunkKind::Function, node));
                }
            }
            _ => {}
        },
        Language::Rust => match kind {
            "function_item" => out.push((ChunkKind::Function, node)),
            "impl_item" | "trait_item" | "mod_item" => {
                if let Some(body) = node.child_by_field_name("body") {
                    let mut c = body.walk();
                    for member in body.named_children(&mut c) {
                        if member.kind() == "function_item" {
                            out.push((ChunkKind::Method, member));
                        } else if kind == "mod_item" {
                            collect_units(lang, member, out, depth + 1);
                        }
                    }
                }
            }
            _ => {}
        },
        Language::Go => match kind {
            "function_declaration" => out.push((ChunkKind::Function, node)),
            "method_declaration" => out.push((ChunkKind::Method, node)),
            _ => {}
        },
    }
}

fn push_members<'t>(lang: Language, class: Node<'t>, out: &mut Vec<(ChunkKind, Node<'t>)>, depth: usize) {
    let Some(body) = class.child_by_field_name("body") else {
        out.push((ChunkKind::Class, class));
        return;
    };
    let mut c = body.walk();
    let before = out.len();
    for member in body.named_children(&mut c) {
        let def = if member.kind() == "decorated_definition" {
            member.child_by_field_name("definition")
        } else {
            Some(member)
        };
        match def.map(|d| d.kind()) {
            Some("function_definition" | "method_definition") => out.push((ChunkKind::Method, member)),
            Some("class_definition" | "class_declaration") => collect_units(lang, member, out, depth + 1),
            _ => {}
        }
    }
    if out.len() == before {
        // A class without methods is reviewed as one unit.
        out.push((ChunkKind::Class, class));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse;

    fn chunks(lang: Language, src: &str) -> Vec<(ChunkKind, String, u32, u32)> {
        let tree = parse(lang, src).unwrap();
        split(lang, &tree, src).into_iter().map(|c| (c.kind, c.name, c.start_line, c.end_line)).collect()
    }

    #[test]
    fn python_functions_methods_and_remainder() {
        let src = "import os\n\ndef a():\n    return 1\n\nclass K:\n    x = 1\n    def m(self):\n        pass\n\nprint(a())\n";
        let got = chunks(Language::Python, src);
        assert_eq!(
            got,
            vec![
                (ChunkKind::Function, "a".into(), 2, 3),
                (ChunkKind::Method, "m".into(), 7, 8),
                (ChunkKind::Module, "<module>".into(), 0, 10),
            ]
        );
    }

    #[test]
    fn chunks_cover_every_nonblank_line_once() {
        let src =
            "package main\n\nimport \"fmt\"\n\nfunc A() {\n\tfmt.Println(1)\n}\n\nfunc (s *S) B() {}\n\nvar x = 1\n";
        let tree = parse(Language::Go, src).unwrap();
        let cs = split(Language::Go, &tree, src);
        let mut seen = vec![0; src.lines().count()];
        for c in &cs {
            for r in &c.ranges {
                let first = src[..r.start].matches('\n').count();
                let n = src[r.clone()].trim_end_matches('\n').matches('\n').count();
                for l in first..=first + n {
                    seen[l] += 1;
                }
            }
        }
        for (i, line) in src.lines().enumerate() {
            if !line.trim().is_empty() {
                assert_eq!(seen[i], 1, "line {i} `{line}` covered {} times", seen[i]);
            }
        }
    }

    #[test]
    fn identical_functions_hash_alike_wherever_they_are() {
        let a = "def f():\n    return 1\n";
        let b = "x = 1\n\n\ndef f():\n    return 1\n";
        let ha = split(Language::Python, &parse(Language::Python, a).unwrap(), a)[0].hash;
        let hb = split(Language::Python, &parse(Language::Python, b).unwrap(), b)[0].hash;
        assert_eq!(ha, hb);
    }

    #[test]
    fn js_exported_and_arrow_functions_are_chunks() {
        let src = "export function a() {}\nconst b = () => 1;\nclass C { m() {} }\n";
        let names: Vec<_> = chunks(Language::JavaScript, src).into_iter().map(|c| c.1).collect();
        assert_eq!(names, vec!["a", "b", "m"]);
    }

    #[test]
    fn doc_comments_and_attributes_belong_to_their_unit() {
        let src = "package p\n\n// Load reads.\n// More.\nfunc Load() {}\n\nvar x = 1 // trailing\nfunc B() {}\n";
        let got = chunks(Language::Go, src);
        assert_eq!(got[0], (ChunkKind::Function, "Load".into(), 2, 4));
        // A trailing comment after code stays with the code, not with the next function.
        assert_eq!(got[1], (ChunkKind::Function, "B".into(), 7, 7));
        let rs = "/// Docs.\n#[inline]\npub fn f() {}\n";
        assert_eq!(chunks(Language::Rust, rs)[0], (ChunkKind::Function, "f".into(), 0, 2));
    }

    #[test]
    fn module_remainder_hash_sees_how_its_pieces_are_spread() {
        let a = "X = 1\n\ndef f():\n    pass\n\nY = 2\n";
        let b = "X = 1\n\ndef f():\n    pass\n    pass\n\nY = 2\n";
        let module = |src: &str| split(Language::Python, &parse(Language::Python, src).unwrap(), src).pop().unwrap();
        assert_eq!(module(a).kind, ChunkKind::Module);
        assert_ne!(module(a).hash, module(b).hash);
    }
}
