//! Owns `textDocument/codeAction`: the quick fix decoded from `Diagnostic.data`, and
//! "Ignore this finding", which inserts an inline suppression comment above the line.

use std::collections::HashMap;

use tower_lsp_server::ls_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams, Diagnostic, Position, Range, TextEdit, Uri,
    WorkspaceEdit,
};

use super::diagnostics::{DiagnosticData, SOURCE};
use super::session::Session;
use crate::review::suppress;

pub fn code_actions(session: &Session, params: CodeActionParams) -> Vec<CodeActionOrCommand> {
    let uri = params.text_document.uri;
    let mut actions = Vec::new();
    for diagnostic in params.context.diagnostics.iter().filter(|d| d.source.as_deref() == Some(SOURCE)) {
        let Some(data) = diagnostic.data.clone().and_then(|d| serde_json::from_value::<DiagnosticData>(d).ok()) else {
            continue;
        };
        if let Some(fix) = &data.fix {
            let edit = TextEdit { range: fix.range, new_text: fix.new_text.clone() };
            actions.push(action(format!("Fix: {}", first_line(&diagnostic.message)), &uri, edit, diagnostic, true));
        }
        if let Some(edit) = suppression_edit(session, &uri, diagnostic.range.start.line, &data.rule) {
            let title = format!("Ignore this finding ({})", crate::escape::line(&data.rule));
            actions.push(action(title, &uri, edit, diagnostic, false));
        }
    }
    actions
}

/// Inserts `<indent><comment> review-lsp: ignore[rule]` above the finding's first line,
/// matching its indentation and the document's line endings.
fn suppression_edit(session: &Session, uri: &Uri, line: u32, rule: &str) -> Option<TextEdit> {
    session.with_documents(|docs| {
        let doc = docs.get(uri)?;
        let language = doc.language?;
        if line as usize >= doc.rope.len_lines() {
            return None;
        }
        let indent: String = doc.rope.line(line as usize).chars().take_while(|c| *c == ' ' || *c == '\t').collect();
        let text = format!("{indent}{}{}", suppress::comment_for(language, rule), doc.newline());
        let at = Position::new(line, 0);
        Some(TextEdit { range: Range::new(at, at), new_text: text })
    })
}

fn action(title: String, uri: &Uri, edit: TextEdit, diagnostic: &Diagnostic, preferred: bool) -> CodeActionOrCommand {
    let changes = HashMap::from([(uri.clone(), vec![edit])]);
    CodeActionOrCommand::CodeAction(CodeAction {
        title,
        kind: Some(CodeActionKind::QUICKFIX),
        diagnostics: Some(vec![diagnostic.clone()]),
        edit: Some(WorkspaceEdit { changes: Some(changes), ..Default::default() }),
        is_preferred: Some(preferred),
        ..Default::default()
    })
}

/// The message's first line, escaped: a title is one line, and the message is outside text.
fn first_line(message: &str) -> String {
    crate::escape::line(message.lines().next().unwrap_or(message)).into_owned()
}
