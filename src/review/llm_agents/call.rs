//! Owns one model call: render the planned chunks, send them, and turn the reply into
//! findings that hold up (`reply::validate`), routed to their files. Only a call whose reply
//! parsed completely is cached, chunk by chunk; a failure is never cached as a result.

use std::time::Instant;

use super::batch::Planned;
use super::{CallRecord, FileWork, Routing};
use tokio_util::sync::CancellationToken;

use crate::llm::limits::Priority;
use crate::llm::{CompletionRequest, LlmClient};
use crate::review::finding::{Category, Finding};
use crate::review::prompt::{self, Line};
use crate::review::reply::{self, ValidationContext};
use crate::store::{Store, Tags};
use crate::syntax::Language;

/// What one call produced, by file index.
pub struct Outcome {
    pub findings: Vec<(usize, Finding)>,
    pub unavailable: Vec<(usize, Category, String)>,
    pub record: Option<CallRecord>,
}

impl Outcome {
    pub fn cancelled(planned: Planned, _work: &[FileWork]) -> Outcome {
        let unavailable = planned.files().into_iter().map(|f| (f, planned.agent, "cancelled".to_string())).collect();
        Outcome { findings: Vec::new(), unavailable, record: None }
    }

    fn failed(planned: &Planned, why: String, record: CallRecord) -> Outcome {
        let unavailable = planned.files().into_iter().map(|f| (f, planned.agent, why.clone())).collect();
        Outcome { findings: Vec::new(), unavailable, record: Some(record) }
    }
}

pub async fn execute(
    client: &LlmClient,
    routing: &Routing,
    cache: Option<&Store>,
    work: &[FileWork],
    planned: Planned,
    priority: Priority,
    cancel: &CancellationToken,
) -> Outcome {
    let agent = planned.agent;
    let Some(endpoint) = routing.agents.get(&agent) else {
        return Outcome::failed(&planned, "agent is offline".into(), record(&planned, "", 0, 0, 0, "skipped"));
    };
    let files = planned.files();
    let sections: Vec<(&str, Language, &[Line])> = planned
        .items
        .iter()
        .map(|&(f, j)| (work[f].path.as_str(), work[f].language, work[f].jobs[j].prompt_lines.as_slice()))
        .collect();
    let batched = files.len() > 1;
    let request = if batched {
        let mut langs: Vec<Language> = files.iter().map(|&f| work[f].language).collect();
        langs.dedup();
        CompletionRequest {
            system: prompt::batch_system_prompt(agent, &langs),
            user: prompt::render_batch(&sections),
            max_output_tokens: routing.max_output_tokens,
            json_schema: prompt::batch_reply_schema(),
        }
    } else {
        CompletionRequest {
            system: prompt::system_prompt(agent, work[files[0]].language),
            user: prompt::render_batch(&sections),
            max_output_tokens: routing.max_output_tokens,
            json_schema: prompt::reply_schema(),
        }
    };

    let started = Instant::now();
    // What the vendor meters: the prompt plus the most the reply may use.
    let est_tokens = planned.tokens as u64 + u64::from(routing.max_output_tokens);
    let sent = super::gate().run(endpoint, priority, est_tokens, cancel, || client.complete(endpoint, &request)).await;
    let completion = match sent {
        Ok(c) => c,
        Err(e) => {
            if e.tell_user() {
                tracing::warn!("{e}");
            }
            // The gate counts vendors' errors per attempt, and quota stops; these refusals here.
            if matches!(
                e,
                crate::llm::limits::GateError::BreakerOpen { .. } | crate::llm::limits::GateError::OverBudget(_)
            ) {
                crate::metrics::api_error(e.kind());
            }
            let ms = started.elapsed().as_millis() as u64;
            tracing::warn!(agent = agent.as_str(), model = %endpoint.model, "LLM call failed: {e}");
            return Outcome::failed(
                &planned,
                e.to_string(),
                record(&planned, &endpoint.model, 0, 0, ms, &e.to_string()),
            );
        }
    };
    let (pt, ct, ms) =
        (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.latency.as_millis() as u64);
    let parsed = match reply::parse_reply(&completion.text) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(agent = agent.as_str(), model = %endpoint.model, "unparseable reply: {e}");
            crate::metrics::api_error("bad_reply");
            return Outcome::failed(
                &planned,
                format!("unparseable reply: {e}"),
                record(&planned, &endpoint.model, pt, ct, ms, "unparseable"),
            );
        }
    };
    let source = Routing::source(endpoint);
    let by_file = if batched {
        let paths: Vec<&str> = files.iter().map(|&f| work[f].path.as_str()).collect();
        reply::route(parsed.findings, &paths)
    } else {
        [(work[files[0]].path.clone(), parsed.findings)].into_iter().collect()
    };

    let mut findings = Vec::new();
    for &f in &files {
        let file = &work[f];
        let jobs: Vec<usize> = planned.items.iter().filter(|(ff, _)| *ff == f).map(|(_, j)| *j).collect();
        let ranges: Vec<_> = jobs.iter().flat_map(|&j| file.jobs[j].ranges.iter().cloned()).collect();
        let raw = by_file.get(&file.path).cloned().unwrap_or_default();
        let ctx = ValidationContext::new(&file.text, &ranges, file.language, agent, &source);
        let valid = reply::validate(raw, &ctx);
        if !parsed.truncated {
            if let Some(cache) = cache {
                for &j in &jobs {
                    let job = &file.jobs[j];
                    let mine: Vec<Finding> = valid
                        .iter()
                        .filter(|v| job.lines.iter().any(|r| r.contains(&v.span.start_line)))
                        .map(|v| v.clone().shifted(-i64::from(job.start_line)))
                        .collect();
                    let tags =
                        Tags { path: file.path.clone(), agents: agent.as_str().into(), models: endpoint.model.clone() };
                    cache.put(job.key, &mine, tags);
                }
            }
        }
        findings.extend(valid.into_iter().map(|v| (f, v)));
    }
    let outcome = if parsed.truncated { "truncated" } else { "ok" };
    let mut unavailable = Vec::new();
    if parsed.truncated {
        // The findings that arrived are real; the rest of the chunk went unreviewed.
        unavailable = files.iter().map(|&f| (f, agent, "reply was cut off".to_string())).collect();
    }
    Outcome { findings, unavailable, record: Some(record(&planned, &endpoint.model, pt, ct, ms, outcome)) }
}

fn record(
    planned: &Planned,
    model: &str,
    prompt_tokens: u64,
    completion_tokens: u64,
    latency_ms: u64,
    outcome: &str,
) -> CallRecord {
    CallRecord {
        agent: planned.agent,
        model: model.to_string(),
        files: planned.files().len(),
        chunks: planned.items.len(),
        estimated_tokens: planned.tokens,
        prompt_tokens,
        completion_tokens,
        latency_ms,
        outcome: outcome.to_string(),
    }
}
