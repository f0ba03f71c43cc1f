//! Owns the `review-lsp/status` notification: one line of state the editor can show (the VS
//! Code status bar does), sent whenever it changes: idle, reviewing N, rate-limited, breaker
//! open, over budget.
//!
//! Polled every 250 ms rather than pushed from each source: the state comes from the
//! scheduler, the rate limiter, the breakers and the budget, and a poll sees their combination
//! consistently, costs a few lock acquisitions, and never floods the editor.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::notification::Notification;

use super::session::Session;
use crate::llm::limits::BreakerState;
use crate::review::llm_agents::gate;
use crate::scheduler::Lane;

const POLL: Duration = Duration::from_millis(250);
/// Shorter waits are the limiter's normal pacing, not news.
const RATE_LIMITED_AFTER: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusParams {
    /// The most pressing of: `over_budget`, `breaker_open`, `rate_limited`, `reviewing`, `idle`.
    pub state: String,
    /// Reviews queued or running.
    pub reviewing: usize,
    pub message: String,
}

pub enum Status {}

impl Notification for Status {
    type Params = StatusParams;
    const METHOD: &'static str = "review-lsp/status";
}

pub fn current(session: &Session) -> StatusParams {
    let stats = session.scheduler.stats();
    let reviewing: usize = Lane::ALL
        .iter()
        .map(|&lane| {
            let l = stats.lane(lane);
            l.depth + l.started.saturating_sub(l.finished) as usize
        })
        .sum();
    let snapshot = gate().snapshot();
    if let Some(budget) = snapshot.budget.as_ref().filter(|b| b.exceeded) {
        let message =
            format!("daily LLM budget spent ({} tokens today); offline review goes on", budget.spent.tokens());
        return StatusParams { state: "over_budget".into(), reviewing, message };
    }
    if let Some(ep) = snapshot.endpoints.iter().find(|e| e.breaker.state == BreakerState::Open) {
        let secs = ep.breaker.open_for_ms.unwrap_or(0).div_ceil(1000);
        // Endpoints and limits are named by settings: shown escaped, as every message is.
        let endpoint = crate::escape::line(&ep.endpoint);
        let message = format!("{endpoint} is failing; LLM review paused, retrying in {secs} s");
        return StatusParams { state: "breaker_open".into(), reviewing, message };
    }
    if let Some(w) = gate().waiting().into_iter().next().filter(|w| w.wait >= RATE_LIMITED_AFTER) {
        let limit = crate::escape::line(&w.limit);
        let message = format!("{} calls waiting {} s for the rate limit of {limit}", w.calls, w.wait.as_secs());
        return StatusParams { state: "rate_limited".into(), reviewing, message };
    }
    if reviewing > 0 {
        return StatusParams { state: "reviewing".into(), reviewing, message: format!("reviewing {reviewing}") };
    }
    StatusParams { state: "idle".into(), reviewing, message: "idle".into() }
}

/// Sends the status at start and on every change, for the life of the session.
pub fn watch(session: Arc<Session>) {
    tokio::spawn(async move {
        let mut last: Option<StatusParams> = None;
        loop {
            let now = current(&session);
            // The count alone changing while reviewing is not worth a message per file.
            let changed = last
                .as_ref()
                .is_none_or(|l| l.state != now.state || (l.message != now.message && now.state != "reviewing"));
            if changed {
                session.client.send_notification::<Status>(now.clone()).await;
                last = Some(now);
            }
            tokio::time::sleep(POLL).await;
        }
    });
}
