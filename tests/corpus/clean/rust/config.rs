//! Loading settings from the environment with typed errors.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// Why settings could not be loaded.
#[derive(Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is not set.
    Missing(&'static str),
    /// A variable is set but does not parse.
    Invalid { key: &'static str, value: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Missing(key) => write!(f, "{key} is not set"),
            ConfigError::Invalid { key, value } => write!(f, "{key}={value:?} is not valid"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Service settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    pub workers: usize,
    pub timeout: Duration,
    pub tags: Vec<String>,
}

impl Settings {
    /// Reads settings from `vars` (normally `std::env::vars()`).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = vars.into_iter().collect();
        let get = |key: &'static str| vars.get(key).map(String::as_str);
        let listen = get("LISTEN").ok_or(ConfigError::Missing("LISTEN"))?.to_owned();
        let workers = match get("WORKERS") {
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid { key: "WORKERS", value: v.to_owned() })?,
        };
        let timeout = match get("TIMEOUT_SECS") {
            None => Duration::from_secs(30),
            Some(v) => Duration::from_secs(
                v.parse().map_err(|_| ConfigError::Invalid { key: "TIMEOUT_SECS", value: v.to_owned() })?,
            ),
        };
        let tags = get("TAGS")
            .map(|t| t.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
            .unwrap_or_default();
        Ok(Settings { listen, workers, timeout, tags })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn requires_listen() {
        let err = Settings::from_vars(vars(&[])).unwrap_err();
        assert_eq!(err, ConfigError::Missing("LISTEN"));
    }

    #[test]
    fn parses_everything() {
        let s = Settings::from_vars(vars(&[("LISTEN", ":80"), ("WORKERS", "4"), ("TAGS", "a, b,,c")])).unwrap();
        assert_eq!(s.workers, 4);
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.tags, ["a", "b", "c"]);
    }

    #[test]
    fn rejects_bad_numbers() {
        let err = Settings::from_vars(vars(&[("LISTEN", ":80"), ("WORKERS", "many")])).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { key: "WORKERS", .. }));
    }
}
