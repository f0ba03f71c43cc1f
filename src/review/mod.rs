//! Owns the review pipeline, the core of the product: parse → chunk → classify → run the
//! chosen agents → suppress → findings. It knows nothing of LSP; the server and the CLI both
//! drive it through [`phases`]: the offline phase first, the model phase after.

pub mod chunk;
pub mod classifier;
pub mod finding;
pub mod llm_agents;
pub mod offline;
pub mod phases;
pub mod prompt;
pub mod reply;
pub mod suppress;
mod team_check;
pub mod tokens;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::ReviewSettings;
use crate::llm::limits::Priority;
use crate::review::chunk::Chunk;
use crate::review::finding::{Category, Finding};
use crate::review::llm_agents::{FileResult, Job, Routing};
use crate::store::{CacheKey, Store, Tags};
use crate::syntax::{self, Language};

/// What to review: the text as the user sees it now (the editor buffer or the file).
pub struct Source<'a> {
    pub language: Language,
    pub text: &'a str,
    /// Workspace-relative where possible: what stored results are tagged with, so they can be
    /// invalidated by path.
    pub path: &'a str,
}

/// How to review it.
#[derive(Clone, Debug)]
pub struct Request {
    /// Only these agents (a command may name one); `None` means every enabled agent.
    pub agents: Option<BTreeSet<Category>>,
    /// Who waits when LLM rate limits are short: the file being edited goes first.
    pub priority: Priority,
}

impl Default for Request {
    /// An interactive review: all enabled agents, at the front of the queue.
    fn default() -> Request {
        Request { agents: None, priority: Priority::Active }
    }
}

/// The result of reviewing one file, with what it cost.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcome {
    pub findings: Vec<Finding>,
    pub cache_hit: bool,
    pub chunks: usize,
    /// How often each agent was chosen, by reason, for the stats command.
    pub selections: BTreeMap<String, u64>,
    /// Chunk reviews answered from the cache (incremental review of a changed file).
    pub chunk_cache_hits: u64,
    pub llm_calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// LLM agents that could not review this file this time, with why.
    pub llm_unavailable: Vec<String>,
    /// Chunks LLM agents still have to review (cache misses); run them with
    /// `llm_agents::run` and hand the result to [`Engine::complete`].
    #[serde(skip)]
    pub jobs: Vec<Job>,
    /// Findings before settings filter them: what the whole-file cache stores.
    #[serde(skip)]
    raw: Vec<Finding>,
    #[serde(skip)]
    file_entry: Option<(CacheKey, Tags)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("review cancelled")]
pub struct Cancelled;

/// The review engine: settings, LLM routing and the cache. Cheap to share behind an `Arc`;
/// a settings change builds a new one.
pub struct Engine {
    settings: ReviewSettings,
    routing: Routing,
    cache: Option<Arc<Store>>,
}

impl Engine {
    /// An engine with the offline agents only.
    pub fn new(settings: ReviewSettings, cache: Option<Arc<Store>>) -> Engine {
        Engine { settings, routing: Routing::default(), cache }
    }

    /// Adds the LLM agents of `routing` on top of the offline rules.
    pub fn with_llm(mut self, routing: Routing) -> Engine {
        self.routing = routing;
        self
    }

    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    pub fn settings(&self) -> &ReviewSettings {
        &self.settings
    }

    pub fn cache(&self) -> Option<&Arc<Store>> {
        self.cache.as_ref()
    }

    /// Reviews one file. Blocking and CPU-bound: call it from a worker thread. Checks
    /// `cancel` between chunks, so a superseded review stops within one chunk.
    pub fn review(&self, source: &Source, request: &Request, cancel: &CancellationToken) -> Result<Outcome, Cancelled> {
        let agents = self.agents_for(request);
        let key = self.file_key(source, &agents);
        let mut outcome = Outcome::default();

        let sources = self.known_sources(&agents);
        let from_team = |found: &[Finding]| {
            let lines: Vec<&str> = source.text.split_inclusive('\n').collect();
            // One line past the last: a finding may sit at the end of the file.
            let whole = vec![0..lines.len() as u32 + 1];
            team_check::check(found, &team_check::Expected { lines: whole, sources: &sources, text_lines: &lines })
        };
        if let Some(cached) = self.cache.as_ref().and_then(|c| c.get_checked(&key, &from_team)) {
            outcome.cache_hit = true;
            outcome.findings = self.finish(source, cached);
            return Ok(outcome);
        }
        let raw = self.run_agents(source, &agents, cancel, &mut outcome)?;
        // With LLM work pending the file is not reviewed yet; `complete` stores it.
        if outcome.jobs.is_empty() {
            if let Some(cache) = &self.cache {
                cache.put(key, &raw, self.file_tags(source, &agents));
            }
        }
        outcome.findings = self.finish(source, raw.clone());
        outcome.raw = raw;
        outcome.file_entry = Some((key, self.file_tags(source, &agents)));
        Ok(outcome)
    }

    /// Adds what the LLM agents found to `outcome`. The whole file is cached only when
    /// every agent reviewed it: a failure must be retried, never remembered as "clean".
    pub fn complete(&self, source: &Source, outcome: &mut Outcome, result: FileResult) {
        outcome.raw.extend(result.findings);
        outcome.jobs.clear();
        outcome.llm_unavailable = result.unavailable.iter().map(|(a, why)| format!("{}: {why}", a.as_str())).collect();
        if result.unavailable.is_empty() {
            if let (Some(cache), Some((key, tags))) = (&self.cache, outcome.file_entry.take()) {
                cache.put(key, &outcome.raw, tags);
            }
        }
        outcome.findings = self.finish(source, outcome.raw.clone());
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
            prompt::PROMPT_VERSION.as_bytes(),
            self.routing.fingerprint().as_bytes(),
        ])
    }

    /// Who may have produced the findings of a whole-file entry: the offline rules and the
    /// model routed to each agent asked for.
    fn known_sources(&self, agents: &BTreeSet<Category>) -> Vec<String> {
        let mut sources = vec![offline::SOURCE.to_string()];
        sources.extend(agents.iter().filter_map(|a| self.routing.agents.get(a)).map(Routing::source));
        sources
    }

    /// What a whole-file entry holds: every agent asked for, offline and any model routed to.
    fn file_tags(&self, source: &Source, agents: &BTreeSet<Category>) -> Tags {
        let mut models = vec![offline::SOURCE.to_string()];
        for agent in agents {
            if let Some(endpoint) = self.routing.agents.get(agent) {
                if !models.contains(&endpoint.model) {
                    models.push(endpoint.model.clone());
                }
            }
        }
        Tags {
            path: source.path.to_string(),
            agents: agents.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(","),
            models: models.join(","),
        }
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
                findings.extend(self.review_chunk(source, &tree, chunk, selection.agent, outcome));
                findings.extend(self.plan_llm_chunk(source, &tree, chunk, selection.agent, outcome));
            }
        }
        Ok(findings)
    }

    /// One agent on one chunk, through the chunk cache. Findings are stored relative to the
    /// chunk's first line, so a chunk that only moved (lines added above it) is a hit and
    /// its findings land on its new lines.
    fn review_chunk(
        &self,
        source: &Source,
        tree: &tree_sitter::Tree,
        chunk: &Chunk,
        agent: Category,
        outcome: &mut Outcome,
    ) -> Vec<Finding> {
        let start = i64::from(chunk.start_line);
        let key = match self.cached_chunk(source, chunk, agent, (offline::SOURCE, offline::RULESET_VERSION), outcome) {
            Ok(cached) => return cached,
            Err(key) => key,
        };
        let found = offline::review(source.language, agent, tree, source.text, &chunk.ranges);
        if let Some(cache) = &self.cache {
            let relative: Vec<Finding> = found.iter().cloned().map(|f| f.shifted(-start)).collect();
            let tags =
                Tags { path: source.path.to_string(), agents: agent.as_str().into(), models: offline::SOURCE.into() };
            cache.put(key, &relative, tags);
        }
        found
    }

    /// The chunk cache, shared by offline and LLM agents: `Ok` with the stored findings moved
    /// to where the chunk starts now, or `Err` with the key to store fresh findings under.
    /// `(source, version)` is what produced them: the rule set, or the model and prompt.
    fn cached_chunk(
        &self,
        source: &Source,
        chunk: &Chunk,
        agent: Category,
        (producer, version): (&str, &str),
        outcome: &mut Outcome,
    ) -> Result<Vec<Finding>, CacheKey> {
        let key = CacheKey::derive(&[
            b"chunk",
            chunk.hash.as_bytes(),
            source.language.name().as_bytes(),
            agent.as_str().as_bytes(),
            producer.as_bytes(),
            version.as_bytes(),
        ]);
        let sources = [producer.to_string()];
        let from_team = |found: &[Finding]| {
            let start = chunk.ranges.first().map_or(0, |r| r.start);
            let end = chunk.ranges.last().map_or(0, |r| r.end);
            let lines: Vec<&str> = source.text.get(start..end).unwrap_or("").split_inclusive('\n').collect();
            let relative = chunk
                .lines
                .iter()
                .map(|r| r.start.saturating_sub(chunk.start_line)..r.end.saturating_sub(chunk.start_line))
                .collect();
            team_check::check(found, &team_check::Expected { lines: relative, sources: &sources, text_lines: &lines })
        };
        match self.cache.as_ref().and_then(|c| c.get_checked(&key, &from_team)) {
            Some(cached) => {
                outcome.chunk_cache_hits += 1;
                Ok(cached.into_iter().map(|f| f.shifted(i64::from(chunk.start_line))).collect())
            }
            None => Err(key),
        }
    }

    /// The LLM side of one agent on one chunk: cached findings (moved to where the chunk is
    /// now), or a job for `llm_agents::run`. Only changed chunks are ever sent.
    fn plan_llm_chunk(
        &self,
        source: &Source,
        tree: &tree_sitter::Tree,
        chunk: &Chunk,
        agent: Category,
        outcome: &mut Outcome,
    ) -> Vec<Finding> {
        let Some(endpoint) = self.routing.agents.get(&agent) else { return Vec::new() };
        let model_source = Routing::source(endpoint);
        let key = match self.cached_chunk(source, chunk, agent, (&model_source, prompt::PROMPT_VERSION), outcome) {
            Ok(cached) => return cached,
            Err(key) => key,
        };
        let prepared = prompt::prepare(agent, source.language, tree, source.text, &chunk.ranges);
        if prepared.lines.is_empty() {
            return Vec::new();
        }
        // Counted on the text as rendered: line numbers cost tokens too.
        let rendered = prompt::render_chunk("", source.language, &prepared.lines);
        outcome.jobs.push(Job {
            agent,
            ranges: chunk.ranges.clone(),
            lines: chunk.lines.clone(),
            start_line: chunk.start_line,
            tokens: tokens::count(&endpoint.model, &rendered),
            prompt_lines: prepared.lines,
            key,
        });
        Vec::new()
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
        out.sort_by(|a, b| (a.span, &a.rule, &a.message).cmp(&(b.span, &b.rule, &b.message)));
        // Same place, rule and message: one finding reported twice (e.g. a chunk reviewed
        // again). Different messages on one span (two model findings) both stay.
        out.dedup_by(|a, b| a.span == b.span && a.rule == b.rule && a.message == b.message);
        out
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::config::ReviewSettings;

    const FILE: &str = "import yaml\n\n\ndef load(s):\n    return yaml.load(s)\n\n\ndef check(x):\n    if x == None:\n        return 1\n    return 2\n";

    fn engine() -> Engine {
        Engine::new(ReviewSettings::default(), Some(Arc::new(Store::memory(&crate::store::StoreSettings::default()))))
    }

    fn review(engine: &Engine, text: &str) -> Outcome {
        let source = Source { language: Language::Python, text, path: "t.py" };
        engine.review(&source, &Request::default(), &CancellationToken::new()).unwrap()
    }

    fn rule_lines(o: &Outcome) -> Vec<(String, u32)> {
        o.findings.iter().map(|f| (f.rule.clone(), f.span.start_line)).collect()
    }

    #[test]
    fn unchanged_chunks_come_from_the_cache_on_their_new_lines() {
        let e = engine();
        let first = review(&e, FILE);
        assert!(!first.cache_hit);
        assert_eq!(first.chunk_cache_hits, 0);
        let before = rule_lines(&first);
        assert!(before.contains(&("python/correctness/none-comparison".into(), 8)), "{before:?}");

        // Three lines added at the top: a different file, but every chunk's text is the same.
        let moved = format!("# a\n# b\nZ = 3\n{FILE}");
        let second = review(&e, &moved);
        assert!(!second.cache_hit, "the file as a whole changed");
        assert!(second.chunk_cache_hits >= 2, "{second:?}");
        let after = rule_lines(&second);
        let shifted: Vec<(String, u32)> = before.iter().map(|(r, l)| (r.clone(), l + 3)).collect();
        assert_eq!(after, shifted);
        let fix = second.findings.iter().find(|f| f.rule.ends_with("none-comparison")).unwrap().fix.clone().unwrap();
        assert_eq!((fix.start_line, fix.end_line), (11, 11));
        assert!(fix.replacement.contains("x is None"));
    }

    #[test]
    fn an_edited_function_is_reviewed_again_and_the_others_are_not() {
        let e = engine();
        review(&e, FILE);
        let edited = FILE.replace("return 2", "return eval(x)");
        let again = review(&e, &edited);
        assert!(rule_lines(&again).contains(&("python/security/eval".into(), 10)), "{:?}", rule_lines(&again));
        assert!(again.chunk_cache_hits >= 1, "`load` and the module remainder did not change");
    }

    #[test]
    fn whole_file_hit_skips_the_parse_and_settings_apply_after_it() {
        let e = engine();
        review(&e, FILE);
        assert!(review(&e, FILE).cache_hit);
        let mut settings = ReviewSettings::default();
        settings.disabled_rules = vec!["python/security/yaml-load".into()];
        let filtered = Engine::new(settings, e.cache().cloned());
        let out = review(&filtered, FILE);
        assert!(out.cache_hit);
        assert!(!out.findings.iter().any(|f| f.rule.ends_with("yaml-load")));
    }

    #[test]
    fn a_cancelled_review_reports_cancelled() {
        let e = engine();
        let token = CancellationToken::new();
        token.cancel();
        let source = Source { language: Language::Python, text: FILE, path: "t.py" };
        assert_eq!(e.review(&source, &Request::default(), &token).unwrap_err(), Cancelled);
    }
}
