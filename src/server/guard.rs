//! Owns panic isolation for handlers: a panic in one request is caught, logged, reported to
//! the client, and answered with an internal error, and the server goes on.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::MessageType;

use super::session::Session;
use crate::panics::panic_message;

pub async fn guarded<T>(what: &str, session: &Session, fut: impl Future<Output = T>) -> Result<T> {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(value) => Ok(value),
        Err(panic) => {
            let message = panic_message(&*panic);
            tracing::error!("{what} panicked: {message}");
            super::messages::show(&session.client, MessageType::ERROR, format!("review-lsp: {what} failed: {message}"))
                .await;
            Err(Error { message: format!("{what} failed: {message}").into(), ..Error::internal_error() })
        }
    }
}
