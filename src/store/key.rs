//! Owns how a stored result is named and described: its [`CacheKey`], the [`Tags`] saying what
//! produced it, and the [`Filter`] that `invalidate` matches tags against.

use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};

/// Identifies one cached review. The engine derives it from everything that determines the
/// result: the content hash, the agent, the source/model and the rules/prompt version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey(pub [u8; 32]);

impl CacheKey {
    /// Hashes `parts` with blake3, each prefixed by its length, so that part boundaries matter:
    /// `["ab", "c"]` and `["a", "bc"]` give different keys.
    pub fn derive(parts: &[&[u8]]) -> CacheKey {
        // A derive-key context keeps these hashes apart from any other blake3 use in the crate
        // (content hashes among them), and is the place to version the key scheme.
        let mut hasher = blake3::Hasher::new_derive_key("review-lsp 2025 result cache key v1");
        for part in parts {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        CacheKey(*hasher.finalize().as_bytes())
    }

    /// The first bytes in hex, enough to tell keys apart in logs.
    pub fn short(&self) -> String {
        self.0[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What produced a stored result, so it can be invalidated by path, agent or model. A result
/// is keyed by content, so identical text in two files shares one entry, tagged with the path
/// that stored it last.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tags {
    /// Workspace-relative, `/`-separated.
    pub path: String,
    /// Comma-separated agent names (a whole-file entry holds several).
    pub agents: String,
    /// Comma-separated: `offline` and/or model names.
    pub models: String,
}

/// Which entries `invalidate` drops: all the given conditions must hold.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    path: Option<GlobMatcher>,
    agent: Option<String>,
    model: Option<String>,
}

impl Filter {
    /// `path` is a glob over workspace-relative paths (`src/**/*.py`). At least one condition
    /// is required: dropping everything is `clear`.
    pub fn new(path: Option<&str>, agent: Option<&str>, model: Option<&str>) -> Result<Filter, String> {
        if path.is_none() && agent.is_none() && model.is_none() {
            return Err("give at least one of --path, --agent or --model (`cache clear` drops everything)".into());
        }
        let path = path
            .map(|p| Glob::new(p).map(|g| g.compile_matcher()).map_err(|e| format!("bad --path glob {p:?}: {e}")))
            .transpose()?;
        Ok(Filter { path, agent: agent.map(str::to_owned), model: model.map(str::to_owned) })
    }

    pub fn matches(&self, tags: &Tags) -> bool {
        let listed = |list: &str, item: &str| list.split(',').any(|x| x == item);
        self.path.as_ref().is_none_or(|g| g.is_match(&tags.path))
            && self.agent.as_ref().is_none_or(|a| listed(&tags.agents, a))
            && self.model.as_ref().is_none_or(|m| listed(&tags.models, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_need_every_condition() {
        let tags =
            Tags { path: "src/app/main.py".into(), agents: "security,correctness".into(), models: "offline".into() };
        assert!(Filter::new(Some("src/**/*.py"), None, None).unwrap().matches(&tags));
        assert!(!Filter::new(Some("tests/**"), None, None).unwrap().matches(&tags));
        assert!(Filter::new(None, Some("correctness"), Some("offline")).unwrap().matches(&tags));
        assert!(!Filter::new(None, Some("correct"), None).unwrap().matches(&tags));
        assert!(!Filter::new(Some("src/**"), Some("security"), Some("gpt-4.1")).unwrap().matches(&tags));
        assert!(Filter::new(None, None, None).is_err());
        assert!(Filter::new(Some("src/[*.py"), None, None).unwrap_err().contains("bad --path glob"));
    }
}
