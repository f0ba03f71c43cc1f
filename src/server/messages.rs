//! Owns every `window/showMessage` and `window/logMessage` the server sends. Their text is
//! often outside text (a settings key from the repository, a file name, a provider's error,
//! a panic message), so it is escaped here, once, with [`crate::escape::lines`]: line breaks
//! between the parts of a message stay, every other control or bidi character is spelled
//! out. Call sites that build a message from a list should escape each item as a line
//! ([`crate::escape::line`]) before joining, so one item cannot pose as two.
//!
//! `clippy.toml` forbids calling `Client::show_message` / `log_message` anywhere else.

use tower_lsp_server::Client;
use tower_lsp_server::ls_types::{MessageActionItem, MessageType};

/// `window/showMessage`: a notification the user sees.
#[allow(clippy::disallowed_methods)]
pub async fn show(client: &Client, kind: MessageType, text: impl AsRef<str>) {
    client.show_message(kind, safe(text.as_ref())).await;
}

/// `window/logMessage`: a line in the client's log for this server.
#[allow(clippy::disallowed_methods)]
pub async fn log(client: &Client, kind: MessageType, text: impl AsRef<str>) {
    client.log_message(kind, safe(text.as_ref())).await;
}

/// `window/showMessageRequest`: a question with answers; `Ok(None)` when the user dismissed it.
#[allow(clippy::disallowed_methods)]
pub async fn ask(
    client: &Client,
    kind: MessageType,
    text: impl AsRef<str>,
    actions: Vec<MessageActionItem>,
) -> tower_lsp_server::jsonrpc::Result<Option<MessageActionItem>> {
    client.show_message_request(kind, safe(text.as_ref()), Some(actions)).await
}

fn safe(text: &str) -> String {
    crate::escape::lines(text).into_owned()
}
