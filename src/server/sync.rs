//! Owns document synchronisation: didOpen, didChange, didSave, didClose. Each handler
//! mutates the session synchronously before it awaits anything, so edits apply in the
//! order the client sent them even though tower-lsp polls handlers concurrently.

use std::sync::Arc;
use std::time::Duration;

use tower_lsp_server::ls_types::{
    DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams, DidSaveTextDocumentParams, Uri,
};

use super::diagnostics::schedule_review;
use super::document::TextDocument;
use super::session::Session;
use super::settings;
use crate::config::CONFIG_FILE_NAME;
use crate::review::Request;
use crate::scheduler::Lane;
use crate::syntax::Language;

pub fn did_open(session: &Arc<Session>, params: DidOpenTextDocumentParams) {
    let doc = params.text_document;
    let language = Language::from_language_id(&doc.language_id).or_else(|| language_from_uri(&doc.uri));
    if language.is_none() {
        tracing::debug!(uri = %doc.uri.as_str(), id = %doc.language_id, "not a language we review");
    }
    session.with_documents(|docs| docs.insert(doc.uri.clone(), TextDocument::new(&doc.text, doc.version, language)));
    schedule_review(session, doc.uri, Lane::Active, Duration::ZERO, Request::default());
}

pub fn did_change(session: &Arc<Session>, params: DidChangeTextDocumentParams) {
    let uri = params.text_document.uri;
    let version = params.text_document.version;
    let enc = session.info().encoding;
    let applied = session.with_documents(|docs| {
        let Some(doc) = docs.get_mut(&uri) else {
            tracing::warn!(uri = %uri.as_str(), "didChange for a document that is not open; ignored");
            return false;
        };
        if version <= doc.version {
            tracing::warn!(uri = %uri.as_str(), version, current = doc.version, "out-of-order didChange; ignored");
            return false;
        }
        doc.apply(params.content_changes, version, enc);
        true
    });
    if applied {
        let delay = Duration::from_millis(session.folder_of(&uri).config().review.debounce_ms);
        schedule_review(session, uri, Lane::Active, delay, Request::default());
    }
}

pub fn did_save(session: &Arc<Session>, params: DidSaveTextDocumentParams) {
    let uri = params.text_document.uri;
    if uri.path().as_str().ends_with(CONFIG_FILE_NAME) {
        settings::workspace_file_saved(session, uri.to_file_path().as_deref());
        return;
    }
    // Saving is a natural pause: review now rather than after the debounce.
    schedule_review(session, uri, Lane::Active, Duration::ZERO, Request::default());
}

pub async fn did_close(session: &Arc<Session>, params: DidCloseTextDocumentParams) {
    let uri = params.text_document.uri;
    session.with_documents(|docs| docs.remove(&uri));
    session.model_tasks.cancel(&uri);
    session.client.publish_diagnostics(uri, Vec::new(), None).await;
}

fn language_from_uri(uri: &Uri) -> Option<Language> {
    let path = uri.path().as_str();
    let ext = path.rsplit_once('.')?.1;
    Language::from_extension(ext)
}
