//! Owns `textDocument/codeAction`: the quick fix decoded from `Diagnostic.data` and checked
//! against the document as it is now, and "Ignore this finding", which inserts an inline
//! suppression comment above the line. Edits carry the document version they were computed
//! for when the client takes `documentChanges`.

use std::collections::HashMap;

use ropey::Rope;
use tower_lsp_server::ls_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams, Diagnostic, DocumentChanges, OneOf,
    OptionalVersionedTextDocumentIdentifier, Position, Range, TextDocumentEdit, TextEdit, Uri, WorkspaceEdit,
};

use super::diagnostic_build::{DiagnosticData, FixEdit, SOURCE, edit_range};
use super::session::Session;
use crate::lines::Locator;
use crate::review::suppress;
use crate::syntax::Language;

/// The open document as the action sees it: version, text (a cheap rope clone), language.
struct Current {
    version: i32,
    loc: Locator,
    language: Option<Language>,
}

pub fn code_actions(session: &Session, params: CodeActionParams) -> Vec<CodeActionOrCommand> {
    let uri = params.text_document.uri;
    let Some((version, rope, language)) =
        session.with_documents(|docs| docs.get(&uri).map(|d| (d.version, d.rope.clone(), d.language)))
    else {
        return Vec::new();
    };
    let current = Current { version, loc: Locator::from_rope(rope), language };
    let info = session.info();
    let edit_for = |edit: TextEdit| workspace_edit(&uri, current.version, edit, info.versioned_edits);
    let mut actions = Vec::new();
    for diagnostic in params.context.diagnostics.iter().filter(|d| d.source.as_deref() == Some(SOURCE)) {
        let Some(data) = diagnostic.data.clone().and_then(|d| serde_json::from_value::<DiagnosticData>(d).ok()) else {
            continue;
        };
        if let Some(edit) = data.fix.as_ref().and_then(|fix| fix_now(&current, &data, fix, diagnostic, info.encoding)) {
            let title = format!("Fix: {}", first_line(&diagnostic.message));
            actions.push(action(title, edit_for(edit), diagnostic, true));
        }
        if let Some(edit) = suppression_edit(&current, diagnostic.range.start.line, &data.rule) {
            let title = format!("Ignore this finding ({})", crate::escape::line(&data.rule));
            actions.push(action(title, edit_for(edit), diagnostic, false));
        }
    }
    actions
}

/// The fix as an edit of the current text, or `None` when the rows it was computed for are
/// not found there unambiguously: a fix is never applied to text it was not computed for.
fn fix_now(
    current: &Current,
    data: &DiagnosticData,
    fix: &FixEdit,
    diagnostic: &Diagnostic,
    enc: super::encoding::PositionEncoding,
) -> Option<TextEdit> {
    let rope = current.loc.rope();
    let rows_at = |line: u32| -> Option<usize> {
        let line = line as usize;
        if line >= rope.len_lines() {
            return None;
        }
        let start = rope.line_to_byte(line);
        let slice = rope.get_byte_slice(start..start.checked_add(fix.rows.len())?)?;
        (slice == fix.rows.as_str()).then_some(start)
    };
    let start = if data.version == Some(current.version) {
        // Same version: the rows must be where they were (they are, unless data was forged).
        rows_at(fix.rows_line)?
    } else {
        // The text changed since the review. Follow the client if it moved the diagnostic;
        // otherwise accept only a single place where the rows occur.
        let moved = i64::from(diagnostic.range.start.line) - i64::from(data.line);
        let shifted = u32::try_from(i64::from(fix.rows_line) + moved).ok();
        match shifted.filter(|_| moved != 0).and_then(rows_at) {
            Some(start) => start,
            None => unique_rows_start(rope, &fix.rows)?,
        }
    };
    Some(TextEdit { range: edit_range(&current.loc, fix, start, enc), new_text: fix.new_text.clone() })
}

/// The byte where `rows` occurs at a line start, when it occurs exactly once.
fn unique_rows_start(rope: &Rope, rows: &str) -> Option<usize> {
    if rows.is_empty() {
        return None;
    }
    let text = rope.to_string();
    let bytes = text.as_bytes();
    let mut found =
        text.match_indices(rows).map(|(i, _)| i).filter(|&i| i == 0 || matches!(bytes[i - 1], b'\n' | b'\r')).take(2);
    match (found.next(), found.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// Inserts `<indent><comment> review-lsp: ignore[rule]` above the finding's first line,
/// matching its indentation and the document's line endings.
fn suppression_edit(current: &Current, line: u32, rule: &str) -> Option<TextEdit> {
    let language = current.language?;
    let rope = current.loc.rope();
    if line as usize >= rope.len_lines() {
        return None;
    }
    let indent: String = rope.line(line as usize).chars().take_while(|c| *c == ' ' || *c == '\t').collect();
    let text = format!("{indent}{}{}", suppress::comment_for(language, rule), super::document::newline_of(rope));
    let at = Position::new(line, 0);
    Some(TextEdit { range: Range::new(at, at), new_text: text })
}

/// The edit as `documentChanges` for `version` when the client takes them, so that it
/// refuses the edit if the document moved on; as plain `changes` otherwise.
fn workspace_edit(uri: &Uri, version: i32, edit: TextEdit, versioned: bool) -> WorkspaceEdit {
    if versioned {
        let document = TextDocumentEdit {
            text_document: OptionalVersionedTextDocumentIdentifier { uri: uri.clone(), version: Some(version) },
            edits: vec![OneOf::Left(edit)],
        };
        WorkspaceEdit { document_changes: Some(DocumentChanges::Edits(vec![document])), ..Default::default() }
    } else {
        WorkspaceEdit { changes: Some(HashMap::from([(uri.clone(), vec![edit])])), ..Default::default() }
    }
}

fn action(title: String, edit: WorkspaceEdit, diagnostic: &Diagnostic, preferred: bool) -> CodeActionOrCommand {
    CodeActionOrCommand::CodeAction(CodeAction {
        title,
        kind: Some(CodeActionKind::QUICKFIX),
        diagnostics: Some(vec![diagnostic.clone()]),
        edit: Some(edit),
        is_preferred: Some(preferred),
        ..Default::default()
    })
}

/// The message's first line, escaped: a title is one line, and the message is outside text.
fn first_line(message: &str) -> String {
    crate::escape::line(message.lines().next().unwrap_or(message)).into_owned()
}
