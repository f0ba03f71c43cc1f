//! Owns `workspace/executeCommand`: review a file now, clear the cache, show stats. The
//! workspace scan lives in `scan.rs`, trusting a workspace in `trust.rs`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::{ExecuteCommandParams, Uri};

use super::diagnostics::{Reviewing, review_open_document};
use super::scan;
use super::session::Session;
use crate::review::Request;
use crate::review::finding::Category;
use crate::scheduler::{Job, Lane};

pub const SCAN_WORKSPACE: &str = "review-lsp.scanWorkspace";
pub const REVIEW_FILE: &str = "review-lsp.reviewFile";
pub const CLEAR_CACHE: &str = "review-lsp.clearCache";
pub const SHOW_STATS: &str = "review-lsp.showStats";
pub const TRUST_WORKSPACE: &str = "review-lsp.trustWorkspace";
pub const COMMANDS: [&str; 5] = [SCAN_WORKSPACE, REVIEW_FILE, CLEAR_CACHE, SHOW_STATS, TRUST_WORKSPACE];

pub async fn execute(session: &Arc<Session>, params: ExecuteCommandParams) -> Result<Option<Value>> {
    let token = params.work_done_progress_params.work_done_token;
    match params.command.as_str() {
        SCAN_WORKSPACE => scan::scan_workspace(session.clone(), &params.arguments, token).await.map(Some),
        REVIEW_FILE => review_file(session, &params.arguments).await.map(Some),
        CLEAR_CACHE => clear_cache(session).await.map(Some),
        TRUST_WORKSPACE => super::trust::trust_workspace_command(session, &params.arguments).await.map(Some),
        SHOW_STATS => {
            // The store's figures come from disk: read them off the LSP loop.
            let store = session.folders.primary().store();
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
                let _ = tx.send(review_open_document(s, u, request, token).await);
            })
        }),
    });
    // The model phase is awaited here, outside the scheduler's worker.
    let outcome = match rx.await {
        Ok(Some(Reviewing::Done(outcome))) => Some(*outcome),
        Ok(Some(Reviewing::Model(model))) => model.await.ok().flatten(),
        _ => None,
    };
    match outcome {
        Some(outcome) => Ok(
            json!({"uri": uri.as_str(), "version": version, "findings": outcome.findings.len(), "cache_hit": outcome.cache_hit}),
        ),
        // The document changed (or closed) first; the newer review publishes instead.
        None => Ok(json!({"uri": uri.as_str(), "version": version, "superseded": true})),
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

/// Clears every folder's cache (folders that share a store clear it once).
async fn clear_cache(session: &Arc<Session>) -> Result<Value> {
    let mut caches: Vec<Arc<crate::store::Store>> = Vec::new();
    for cache in session.folders.scopes().iter().filter_map(|f| f.cache()) {
        if !caches.iter().any(|c| Arc::ptr_eq(c, &cache)) {
            caches.push(cache);
        }
    }
    if caches.is_empty() {
        return Ok(json!({"cleared": false, "reason": "cache disabled"}));
    }
    let cleared = tokio::task::spawn_blocking(move || caches.iter().try_for_each(|c| c.clear()))
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r);
    match cleared {
        Ok(()) => Ok(json!({"cleared": true})),
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
    let primary = session.folders.primary();
    json!({
        "lanes": lanes,
        "superseded": sched.superseded,
        "workers": sched.workers,
        "running": sched.running,
        "reviews": totals.reviews,
        "published": totals.published,
        "stale_results_dropped": totals.stale_results_dropped,
        "findings": totals.findings,
        "cache": {
            "hits": totals.cache_hits,
            "misses": totals.cache_misses,
            "hit_rate": if looked_up == 0 { Value::Null } else { json!(totals.cache_hits as f64 / looked_up as f64) },
            "enabled": primary.cache().is_some(),
            "store": stored,
        },
        "llm": {
            "agents": agents(&primary.engine()),
            "calls": totals.llm_calls,
            "prompt_tokens": totals.prompt_tokens,
            "completion_tokens": totals.completion_tokens,
            "status": totals.llm_status.clone().unwrap_or_else(|| "ok".into()),
            "limits": crate::review::llm_agents::gate().snapshot(),
        },
        "agent_selections": totals.agent_selections,
        "settings": primary.settings().report(),
        "status": super::status::current(session),
        "metrics_addr": session.metrics_bound.lock().unwrap_or_else(|p| p.into_inner()).map(|a| a.to_string()),
        "folders": session.folders.all().iter().map(|f| folder_stats(f)).collect::<Vec<_>>(),
        "open_documents": session.open_uris().len(),
        "position_encoding": format!("{:?}", session.info().encoding).to_lowercase(),
    })
}

/// One folder's line in showStats: where it is, whether its workspace file is trusted, what
/// was withheld, and which agents run where.
fn folder_stats(folder: &super::folders::Folder) -> Value {
    let trust = folder.trust();
    json!({
        "name": folder.name,
        "root": folder.root.as_deref().map(crate::escape::path),
        "workspace_file": trust.file.as_ref().map(|(path, _)| crate::escape::path(path)),
        "trusted": trust.trusted,
        "withheld": trust.withheld,
        // Every value with where it came from, as `review-lsp config show` prints it.
        "settings": folder.settings().report(),
        "cache_enabled": folder.cache().is_some(),
        "agents": agents(&folder.engine()),
    })
}

/// Which vendor and model review for each agent.
fn agents(engine: &crate::review::Engine) -> serde_json::Map<String, Value> {
    let routes = engine.routing().agents.iter();
    routes.map(|(a, e)| (a.as_str().to_string(), json!(format!("{}:{}", e.kind.as_str(), e.model)))).collect()
}

/// A command's optional `[folderUri]` argument: the open folder it names, or `None` without one.
pub fn folder_arg(session: &Session, args: &[Value]) -> Result<Option<Arc<super::folders::Folder>>> {
    match args.first() {
        None => Ok(None),
        Some(Value::String(uri)) => {
            let uri: Uri = uri.parse().map_err(|_| Error::invalid_params(format!("not a URI: {uri}")))?;
            let folder = session.folders.find(&uri);
            folder.map(Some).ok_or_else(|| Error::invalid_params(format!("{} is not a workspace folder", uri.as_str())))
        }
        Some(_) => Err(Error::invalid_params("expected [folderUri] or no arguments")),
    }
}
