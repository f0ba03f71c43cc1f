//! Owns the review pipeline, the core of the product: parse → chunk → classify → run the
//! chosen agents → suppress → findings. It knows nothing of LSP; the server and the CLI both
//! drive it through [`Engine::review`].

pub mod chunk;
pub mod classifier;
pub mod finding;
pub mod offline;
pub mod suppress;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::ReviewSettings;
use crate::review::finding::{Category, Finding};
use crate::store::{Cache, CacheKey};
use crate::syntax::{self, Language};

/// What to review: the text as the user sees it now (the editor buffer or the file).
pub struct Source<'a> {
    pub language: Language,
    pub text: &'a str,
}

/// How to review it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Only these agents (a command may name one); `None` means every enabled agent.
    pub agents: Option<BTreeSet<Category>>,
}

/// The result of reviewing one file, with what it cost.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcome {
    pub findings: Vec<Finding>,
    pub cache_hit: bool,
    pub chunks: usize,
    /// How often each agent was chosen, by reason, for the stats command.
    pub selections: BTreeMap<String, u64>,
    pub llm_calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("review cancelled")]
pub struct Cancelled;

/// The review engine: settings plus the cache. Cheap to share behind an `Arc`; a settings
/// change builds a new one.
pub struct Engine {
    settings: ReviewSettings,
    cache: Option<Arc<Cache>>,
}

impl Engine {
    pub fn new(settings: ReviewSettings, cache: Option<Arc<Cache>>) -> Engine {
        Engine { settings, cache }
    }

    pub fn settings(&self) -> &ReviewSettings {
        &self.settings
    }

    pub fn cache(&self) -> Option<&Arc<Cache>> {
        self.cache.as_ref()
    }

    /// Reviews one file. Blocking and CPU-bound: call it from a worker thread. Checks
    /// `cancel` between chunks, so a superseded review stops within one chunk.
    pub fn review(&self, source: &Source, request: &Request, cancel: &CancellationToken) -> Result<Outcome, Cancelled> {
        let agents = self.agents_for(request);
        let key = self.file_key(source, &agents);
        let mut outcome = Outcome::default();

        let raw = match self.cache.as_ref().and_then(|c| c.get(&key)) {
            Some(cached) => {
                outcome.cache_hit = true;
                cached
            }
            None => {
                let fresh = self.run_agents(source, &agents, cancel, &mut outcome)?;
                if let Some(cache) = &self.cache {
                    cache.put(key, &fresh);
                }
                fresh
            }
        };
        outcome.findings = self.finish(source, raw);
        Ok(outcome)
    }

    fn agents_for(&self, request: &Request) -> BTreeSet<Category> {
        let enabled: BTreeSet<Category> = self.settings.agents.iter().copied().collect();
        match &request.agents {
            Some(asked) => enabled.intersection(asked).copied().collect(),
            None => enabled,
        }
    }

    /// The whole-file key: identical text, language, agents and rule set give identical
    /// raw findings, so a warm rescan skips parsing. Settings that only filter findings
    /// (disabled rules, severities, suppressions) are applied after the cache.
    fn file_key(&self, source: &Source, agents: &BTreeSet<Category>) -> CacheKey {
        let agent_names: Vec<&str> = agents.iter().map(|a| a.as_str()).collect();
        CacheKey::derive(&[
            b"file",
            blake3::hash(source.text.as_bytes()).as_bytes(),
            source.language.name().as_bytes(),
            offline::RULESET_VERSION.as_bytes(),
            agent_names.join(",").as_bytes(),
        ])
    }

    fn run_agents(
        &self,
        source: &Source,
        agents: &BTreeSet<Category>,
        cancel: &CancellationToken,
        outcome: &mut Outcome,
    ) -> Result<Vec<Finding>, Cancelled> {
        let Some(tree) = syntax::parse(source.language, source.text) else {
            tracing::debug!(language = source.language.name(), "tree-sitter gave no tree");
            return Ok(Vec::new());
        };
        let chunks = chunk::split(source.language, &tree, source.text);
        outcome.chunks = chunks.len();
        let mut findings = Vec::new();
        for chunk in &chunks {
            if cancel.is_cancelled() {
                return Err(Cancelled);
            }
            for selection in classifier::classify(source.language, &tree, source.text, chunk, agents) {
                *outcome
                    .selections
                    .entry(format!("{}: {}", selection.agent.as_str(), selection.reason))
                    .or_default() += 1;
                findings.extend(offline::review(source.language, selection.agent, &tree, source.text, &chunk.ranges));
            }
        }
        Ok(findings)
    }

    /// Applies what the user asked for after the cache: disabled rules, severity
    /// overrides, inline suppressions; drops fixes that escape their finding; sorts.
    fn finish(&self, source: &Source, raw: Vec<Finding>) -> Vec<Finding> {
        let suppressions = suppress::Suppressions::scan(source.language, source.text);
        let mut out: Vec<Finding> = raw
            .into_iter()
            .filter(|f| !self.settings.disabled_rules.iter().any(|r| r == &f.rule))
            .filter(|f| !suppressions.covers(f.span.start_line, &f.rule))
            .map(|mut f| {
                if let Some(sev) = self.settings.severity.get(&f.rule) {
                    f.severity = *sev;
                }
                f.contain_fix()
            })
            .collect();
        out.sort_by(|a, b| (a.span, &a.rule).cmp(&(b.span, &b.rule)));
        out.dedup_by(|a, b| a.span == b.span && a.rule == b.rule);
        out
    }
}
