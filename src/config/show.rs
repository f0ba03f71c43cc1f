//! Owns the resolved settings as a list a person or a program can read: every value with the
//! layer it came from (as `git config --show-origin` shows), the withheld keys and the trust
//! state. `review-lsp config show` and showStats both print this.

use serde::Serialize;
use serde_json::Value;

use super::layers::leaves;
use super::{Origin, Resolved};

#[derive(Clone, Debug, Serialize)]
pub struct Setting {
    pub key: String,
    pub value: Value,
    pub origin: Origin,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub settings: Vec<Setting>,
    pub withheld: Vec<String>,
    pub workspace_file: Option<std::path::PathBuf>,
    pub workspace_trusted: bool,
    pub problems: Vec<String>,
}

impl Resolved {
    /// Every resolved value, in key order, with its origin.
    pub fn entries(&self) -> Vec<Setting> {
        let value = serde_json::to_value(&self.config).unwrap_or_default();
        leaves(&value)
            .into_iter()
            .map(|(key, value)| Setting { origin: self.origin_of(&key), key, value: value.clone() })
            .collect()
    }

    pub fn report(&self) -> Report {
        Report {
            settings: self.entries(),
            withheld: self.withheld.clone(),
            workspace_file: self.workspace_file.clone(),
            workspace_trusted: self.workspace_trusted,
            problems: self.problems.iter().map(|p| p.to_string()).collect(),
        }
    }
}
