//! Owns telling the editor's user where their code goes: the first LLM call of a session
//! names the destination host and model once, in a `window/showMessage` (INFO). A popup rather
//! than `window/logMessage`, because the point is that the user notices code leaving the
//! machine (the log is read only when something is wrong); once per session keeps it quiet.

use tower_lsp_server::ls_types::MessageType;

use super::session::Session;
use crate::review::Engine;
use crate::review::llm_agents::CallRecord;

/// Adds `calls` to the session's totals; if they are the session's first LLM calls, names
/// where they went.
pub async fn record_calls(session: &Session, engine: &Engine, calls: &[CallRecord]) {
    let first = {
        let mut totals = session.totals();
        let first = totals.llm_calls == 0 && !calls.is_empty();
        totals.record_calls(calls);
        first
    };
    let destinations = engine.routing().destinations();
    if first && !destinations.is_empty() {
        let message = format!("review-lsp: {}", destinations.join("; "));
        super::messages::show(&session.client, MessageType::INFO, message).await;
    }
}
