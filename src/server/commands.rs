//! Owns `workspace/executeCommand`: review a file now, clear the cache, show stats. The
//! workspace scan lives in `scan.rs`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::{ExecuteCommandParams, Uri};

use super::diagnostics::review_open_document;
use super::scan;
use super::session::Session;
use crate::review::Request;
use crate::review::finding::Category;
use crate::scheduler::{Job, Lane};

pub const SCAN_WORKSPACE: &str = "review-lsp.scanWorkspace";
pub const REVIEW_FILE: &str = "review-lsp.reviewFile";
pub const CLEAR_CACHE: &str = "review-lsp.clearCache";
pub const SHOW_STATS: &str = "review-lsp.showStats";
pub const COMMANDS: [&str; 4] = [SCAN_WORKSPACE, REVIEW_FILE, CLEAR_CACHE, SHOW_STATS];

pub async fn execute(session: &Arc<Session>, params: ExecuteCommandParams) -> Result<Option<Value>> {
    let token = params.work_done_progress_params.work_done_token;
    match params.command.as_str() {
        SCAN_WORKSPACE => scan::scan_workspace(session.clone(), token).await.map(Some),
        REVIEW_FILE => review_file(session, &params.arguments).await.map(Some),
        CLEAR_CACHE => clear_cache(session).await.map(Some),
        SHOW_STATS => {
            // The store's figures come from disk: read them off the LSP loop.
            let store = session.store();
            let stored = tokio::task::spawn_blocking(move || store.map(|s| s.stats())).await.ok().flatten();
            Ok(Some(show_stats(session, stored)))
        }
        other => Err(Error::invalid_params(format!("unknown command `{other}`; known: {}", COMMANDS.join(", ")))),
    }
}

/// `reviewFile [uri | {uri, agent?}]`: reviews an open document now, ahead of anything
/// queued, optionally with one agent only, and answers with the findings.
async fn review_file(session: &Arc<Session>, args: &[Value]) -> Result<Value> {
    let (uri, agent) = parse_review_args(args)?;
    let version = session
        .with_documents(|d| d.get(&uri).map(|doc| doc.version))
        .ok_or_else(|| Error::invalid_params(format!("{} is not open", uri.as_str())))?;
    let request = Request { agents: agent.map(|a| [a].into_iter().collect()), ..Request::default() };
    let (tx, rx) = oneshot::channel();
    let s = session.clone();
    let u = uri.clone();
    session.scheduler.schedule(Job {
        key: uri.to_string(),
        version: version as i64,
        lane: Lane::Active,
        delay: Duration::ZERO,
        parent: None,
        task: Box::new(move |token| {
            Box::pin(async move {
                let outcome = review_open_document(s, u, request, token).await;
                let _ = tx.send(outcome);
            })
        }),
    });
    match rx.await {
        Ok(Some(outcome)) => Ok(
            json!({"uri": uri.as_str(), "version": version, "findings": outcome.findings.len(), "cache_hit": outcome.cache_hit}),
        ),
        // The document changed (or closed) first; the newer review publishes instead.
        _ => Ok(json!({"uri": uri.as_str(), "version": version, "superseded": true})),
    }
}

fn parse_review_args(args: &[Value]) -> Result<(Uri, Option<Category>)> {
    let bad = || Error::invalid_params("expected [uri] or [{\"uri\": ..., \"agent\": ...}]");
    let (uri, agent) = match args.first() {
        Some(Value::String(u)) => (u.as_str(), None),
        Some(Value::Object(o)) => {
            (o.get("uri").and_then(Value::as_str).ok_or_else(bad)?, o.get("agent").and_then(Value::as_str))
        }
        _ => return Err(bad()),
    };
    let uri: Uri = uri.parse().map_err(|_| Error::invalid_params(format!("not a URI: {uri}")))?;
    let agent = match agent {
        Some(name) => {
            Some(Category::parse(name).ok_or_else(|| Error::invalid_params(format!("unknown agent `{name}`")))?)
        }
        None => None,
    };
    Ok((uri, agent))
}

async fn clear_cache(session: &Arc<Session>) -> Result<Value> {
    let Some(cache) = session.cache() else { return Ok(json!({"cleared": false, "reason": "cache disabled"})) };
    match tokio::task::spawn_blocking(move || cache.clear()).await {
        Ok(Ok(())) => Ok(json!({"cleared": true})),
        Ok(Err(e)) => {
            Err(Error { message: format!("clearing the cache failed: {e}").into(), ..Error::internal_error() })
        }
        Err(e) => Err(Error { message: format!("clearing the cache failed: {e}").into(), ..Error::internal_error() }),
    }
}

pub fn show_stats(session: &Session, stored: Option<crate::store::CacheStats>) -> Value {
    let sched = session.scheduler.stats();
    let totals = session.totals().clone();
    let lanes: serde_json::Map<String, Value> = crate::scheduler::Lane::ALL
        .into_iter()
        .map(|lane| {
            let l = sched.lane(lane);
            let mut v = serde_json::to_value(l).unwrap_or_default();
            for (name, p) in [("p50_ms", 50.0), ("p95_ms", 95.0), ("p99_ms", 99.0)] {
                v[name] = json!(l.percentile_ms(p));
            }
            (lane.as_str().to_string(), v)
        })
        .collect();
    let looked_up = totals.cache_hits + totals.cache_misses;
    json!({
        "lanes": lanes,
        "superseded": sched.superseded,
        "reviews": totals.reviews,
        "published": totals.published,
        "stale_results_dropped": totals.stale_results_dropped,
        "findings": totals.findings,
        "cache": {
            "hits": totals.cache_hits,
            "misses": totals.cache_misses,
            "hit_rate": if looked_up == 0 { Value::Null } else { json!(totals.cache_hits as f64 / looked_up as f64) },
            "enabled": session.cache().is_some(),
            "store": stored,
        },
        "llm": {
            "agents": session.engine().routing().agents.iter().map(|(a, e)| (a.as_str().to_string(), json!(format!("{}:{}", e.kind.as_str(), e.model)))).collect::<serde_json::Map<_, _>>(),
            "calls": totals.llm_calls,
            "prompt_tokens": totals.prompt_tokens,
            "completion_tokens": totals.completion_tokens,
            "status": totals.llm_status.clone().unwrap_or_else(|| "ok".into()),
            "limits": crate::review::llm_agents::gate().snapshot(),
        },
        "agent_selections": totals.agent_selections,
        "settings": session.settings().report(),
        "status": super::status::current(session),
        "metrics_addr": session.metrics_bound.lock().unwrap_or_else(|p| p.into_inner()).map(|a| a.to_string()),
        "open_documents": session.open_uris().len(),
        "position_encoding": format!("{:?}", session.info().encoding).to_lowercase(),
    })
}
