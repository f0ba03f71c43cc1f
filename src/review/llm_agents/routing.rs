//! Owns which agents call a model and how: settings (`[llm]`, `[agents.*]`) become one
//! endpoint per LLM agent. A missing key is caught here, once, so the engine never plans
//! calls that cannot be made and the user hears about it a single time.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{Config, Problem, ProviderSetting, Resolved};
use crate::llm::{Endpoint, ProviderKind};
use crate::review::finding::Category;

/// Default models, chosen for cost: the reviewer runs on every pause in typing.
fn default_model(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "gpt-4.1-mini",
        ProviderKind::Anthropic => "claude-haiku-4-5",
        ProviderKind::Gemini => "gemini-2.5-flash",
    }
}

/// The LLM agents and how to reach them. Agents not listed use only the offline rules.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Routing {
    pub agents: BTreeMap<Category, Endpoint>,
    pub max_output_tokens: u32,
    pub batch_max_files: usize,
    pub batch_max_tokens: usize,
    /// Per agent: whether its endpoint (base URL and key variable) came from the user's own
    /// layers (defaults, user file, editor, command line) rather than a workspace file. A
    /// workspace file only gets here when trusted; the key rules use it to decide how far a
    /// vendor's default key may travel.
    pub chosen_by_user: BTreeMap<Category, bool>,
}

impl Routing {
    /// Who reviews, for history rows: (`offline` plus each provider, each model).
    pub fn describe(&self) -> (String, String) {
        let mut sources = vec!["offline".to_string()];
        let mut models = Vec::new();
        for endpoint in self.agents.values() {
            let kind = endpoint.kind.to_string();
            if !sources.contains(&kind) {
                sources.push(kind);
            }
            if !models.contains(&endpoint.model) {
                models.push(endpoint.model.clone());
            }
        }
        (sources.join(","), models.join(","))
    }

    /// Builds the routing for `config`. An agent whose key is missing is left offline, with
    /// one problem saying so per missing variable.
    pub fn from_config(config: &Config) -> (Routing, Vec<Problem>) {
        let llm = &config.llm;
        let mut problems = Vec::new();
        let mut agents = BTreeMap::new();
        for agent in &config.review.agents {
            let over = config.agents.get(agent).cloned().unwrap_or_default();
            let kind = match over.provider.unwrap_or(llm.provider) {
                ProviderSetting::Offline => continue,
                ProviderSetting::OpenAi => ProviderKind::OpenAi,
                ProviderSetting::Anthropic => ProviderKind::Anthropic,
                ProviderSetting::Gemini => ProviderKind::Gemini,
            };
            let mut endpoint =
                Endpoint::new(kind, over.model.or(llm.model.clone()).unwrap_or(default_model(kind).into()));
            if let Some(url) = over.base_url.or(llm.base_url.clone()) {
                endpoint.base_url = url;
                // A bare `Config` has no provenance: whoever built it (a test, a bench) is the
                // user. `from_resolved` narrows this to the layers that really are the user's.
                endpoint.user_chose_endpoint = true;
            }
            if let Some(env) = over.api_key_env.or(llm.api_key_env.clone()) {
                endpoint.api_key_env = env;
            }
            endpoint.timeout = Duration::from_secs(llm.timeout_secs.max(1));
            if let Some(problem) = missing_key(&endpoint) {
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
                continue;
            }
            agents.insert(*agent, endpoint);
        }
        let routing = Routing {
            agents,
            max_output_tokens: llm.max_output_tokens,
            batch_max_files: llm.batch_max_files.max(1),
            batch_max_tokens: llm.batch_max_tokens.max(1),
            chosen_by_user: BTreeMap::new(),
        };
        (routing, problems)
    }

    /// [`Routing::from_config`] plus where each endpoint came from.
    pub fn from_resolved(resolved: &Resolved) -> (Routing, Vec<Problem>) {
        let (mut routing, problems) = Routing::from_config(&resolved.config);
        routing.chosen_by_user = routing
            .agents
            .keys()
            .map(|agent| {
                let over = resolved.config.agents.get(agent);
                let users_own = |field: &str, overridden: bool| {
                    let key =
                        if overridden { format!("agents.{}.{field}", agent.as_str()) } else { format!("llm.{field}") };
                    resolved.origin_of(&key).is_users_own()
                };
                let url = users_own("base_url", over.is_some_and(|o| o.base_url.is_some()));
                let key = users_own("api_key_env", over.is_some_and(|o| o.api_key_env.is_some()));
                (*agent, url && key)
            })
            .collect();
        for (agent, endpoint) in routing.agents.iter_mut() {
            endpoint.user_chose_endpoint &= routing.chosen_by_user.get(agent).copied().unwrap_or(false);
        }
        (routing, problems)
    }

    /// True when `agent`'s base URL and key variable were chosen by the user's own layers.
    pub fn endpoint_chosen_by_user(&self, agent: Category) -> bool {
        self.chosen_by_user.get(&agent).copied().unwrap_or(true)
    }

    pub fn is_offline(&self) -> bool {
        self.agents.is_empty()
    }

    /// Where code goes, one clause per host and model: `sending code to HOST (model M) for
    /// agents A, B`, escaped for a terminal or an editor. Empty when offline.
    pub fn destinations(&self) -> Vec<String> {
        let mut places: Vec<(String, &str, Vec<&str>)> = Vec::new();
        for (agent, endpoint) in &self.agents {
            let host = crate::llm::destination::host(&endpoint.base_url);
            match places.iter_mut().find(|(h, m, _)| *h == host && *m == endpoint.model) {
                Some((_, _, agents)) => agents.push(agent.as_str()),
                None => places.push((host, &endpoint.model, vec![agent.as_str()])),
            }
        }
        places
            .into_iter()
            .map(|(host, model, agents)| {
                let clause = format!("sending code to {host} (model {model}) for agents {}", agents.join(", "));
                crate::escape::line(&clause).into_owned()
            })
            .collect()
    }

    /// `provider:model` for findings and cache keys.
    pub fn source(endpoint: &Endpoint) -> String {
        format!("{}:{}", endpoint.kind.as_str(), endpoint.model)
    }

    /// Part of the whole-file cache key: switching models must not serve old findings.
    pub fn fingerprint(&self) -> String {
        self.agents
            .iter()
            .map(|(a, e)| format!("{}={}@{}", a.as_str(), Routing::source(e), e.base_url))
            .collect::<Vec<_>>()
            .join(";")
    }
}

/// Local OpenAI-compatible servers (a non-default `base_url`) need no key; everything else
/// does. Only the variable's presence is checked here; its value is read per call.
fn missing_key(endpoint: &Endpoint) -> Option<Problem> {
    let local = endpoint.kind == ProviderKind::OpenAi
        && endpoint.base_url.trim_end_matches('/') != Endpoint::default_base_url(endpoint.kind);
    if local || std::env::var(&endpoint.api_key_env).is_ok_and(|v| !v.trim().is_empty()) {
        return None;
    }
    Some(Problem {
        origin: "llm".into(),
        message: format!(
            "{} is not set, so the {} agents use the offline reviewer only; set it (or llm.api_key_env) and reload",
            if endpoint.api_key_env.is_empty() { "no API key variable" } else { endpoint.api_key_env.as_str() },
            endpoint.kind.as_str()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AgentOverride, LlmSettings};

    /// Which layer chose each agent's endpoint: the user's (here the editor) or a trusted
    /// workspace file, per agent and per field.
    #[test]
    fn endpoints_know_whether_the_user_chose_them() {
        use crate::config::{Layer, Origin, Resolved, resolve};
        use serde_json::json;
        let user = Layer::from_client(
            json!({"llm": {"provider": "openai", "base_url": "http://127.0.0.1:1/v1"},
                   "review": {"agents": ["security", "correctness"]}}),
            "initializationOptions",
        );
        let workspace = Layer {
            origin: Origin::Workspace("review-lsp.toml".into()),
            value: json!({"agents": {"security": {"base_url": "http://127.0.0.1:2/v1"},
                                     "correctness": {"model": "m"}}}),
        };
        let mut origins = std::collections::BTreeMap::new();
        origins.insert("llm.provider".to_string(), user.origin.clone());
        origins.insert("llm.base_url".to_string(), user.origin.clone());
        origins.insert("agents.security.base_url".to_string(), workspace.origin.clone());
        origins.insert("agents.correctness.model".to_string(), workspace.origin.clone());
        let (config, problems) = resolve(&[user, workspace]);
        assert!(problems.is_empty(), "{problems:?}");
        let resolved = Resolved { config, origins, ..Resolved::default() };
        let (routing, _) = Routing::from_resolved(&resolved);
        assert!(!routing.endpoint_chosen_by_user(Category::Security), "its base_url is the workspace's");
        assert!(routing.endpoint_chosen_by_user(Category::Correctness), "only its model is the workspace's");
        // The key rules read the flag on the endpoint itself.
        assert!(!routing.agents[&Category::Security].user_chose_endpoint);
        assert!(routing.agents[&Category::Correctness].user_chose_endpoint);
    }

    #[test]
    fn offline_by_default() {
        let (r, p) = Routing::from_config(&Config::default());
        assert!(r.is_offline() && p.is_empty());
    }

    #[test]
    fn missing_key_leaves_the_agent_offline_with_one_problem() {
        let config = Config {
            llm: LlmSettings {
                provider: ProviderSetting::Anthropic,
                api_key_env: Some("REVIEW_LSP_TEST_ABSENT_KEY".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let (r, p) = Routing::from_config(&config);
        assert!(r.is_offline());
        assert_eq!(p.len(), 1, "one message, not one per agent: {p:?}");
        assert!(p[0].message.contains("REVIEW_LSP_TEST_ABSENT_KEY"));
    }

    #[test]
    fn local_openai_compatible_needs_no_key_and_overrides_apply() {
        let mut config = Config {
            llm: LlmSettings {
                provider: ProviderSetting::OpenAi,
                base_url: Some("http://127.0.0.1:11434/v1".into()),
                api_key_env: Some("REVIEW_LSP_TEST_ABSENT_KEY".into()),
                model: Some("qwen".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        config.agents.insert(Category::Security, AgentOverride { model: Some("big".into()), ..Default::default() });
        config.agents.insert(
            Category::Documentation,
            AgentOverride { provider: Some(ProviderSetting::Offline), ..Default::default() },
        );
        let (r, p) = Routing::from_config(&config);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(r.agents[&Category::Security].model, "big");
        assert_eq!(r.agents[&Category::Correctness].model, "qwen");
        assert!(!r.agents.contains_key(&Category::Documentation));
    }
}
