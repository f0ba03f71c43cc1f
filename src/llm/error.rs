//! Owns [`LlmError`]: every way a call to a model vendor can fail, sorted by what the caller
//! should do about it (retry, back off, give up, tell the user), plus the scrubbing that keeps
//! keys out of error messages.
//!
//! Every `Display` is one sentence that never contains the API key or the request body: errors
//! end up in logs, `window/showMessage` and JSON reports.

use std::fmt::Write as _;
use std::time::Duration;

use super::headers::RateHeaders;

/// Vendor messages are cut to this many characters: enough to say what went wrong, short
/// enough for a status line, and it stops a vendor echoing a large part of anything back.
const MAX_MESSAGE_CHARS: usize = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The env var named by `Endpoint::api_key_env` is unset or empty (or no name was given).
    #[error("{}", missing_key(env))]
    MissingKey { env: String },

    /// A key would travel over plain `http` to a host that is not this machine. A settings
    /// problem: never retried, and the request is never sent.
    #[error(
        "refusing to send the API key over plain http to {host}: use https, or a loopback address for a local server"
    )]
    InsecureEndpoint { host: String },

    /// A vendor's default key variable, and an endpoint at another host that the user did not
    /// choose (a repository's settings did). Nothing is sent.
    #[error(
        "{env} is only sent to its vendor's own API, not to {host}; name another variable in llm.api_key_env, or set llm.base_url in your own settings"
    )]
    KeyNotForHost { env: String, host: String },

    /// 429 for a per-minute/per-day rate (OpenAI `rate_limit_exceeded`, Anthropic
    /// `rate_limit_error`, Gemini `RESOURCE_EXHAUSTED`): wait `retry_after`, then retry.
    #[error("the provider is rate limiting us{}", after(retry_after))]
    RateLimited { retry_after: Option<Duration>, rate: RateHeaders },

    /// The account is out of money or over its spend limit (OpenAI `insufficient_quota`,
    /// Anthropic credit-balance / billing errors). Retrying cannot help.
    #[error("the provider account's quota or credit is exhausted: {message}")]
    QuotaExhausted { message: String },

    /// 503, Anthropic 529 `overloaded_error`, Gemini `UNAVAILABLE`: the vendor is busy.
    #[error("the provider is overloaded (HTTP {status}){}", after(retry_after))]
    Overloaded { status: u16, retry_after: Option<Duration> },

    /// Any other 5xx.
    #[error("the provider failed with HTTP {status}: {message}")]
    Server { status: u16, message: String },

    /// No complete reply within `Endpoint::timeout`.
    #[error("the provider did not answer within the timeout")]
    Timeout,

    /// The transport failed: the connection was refused or broke, DNS or TLS failed.
    #[error("could not reach the provider: {0}")]
    Connect(String),

    /// 401/403 (and Gemini's 400 `API_KEY_INVALID`): the key is wrong or lacks permission.
    /// Status 0 means the key was rejected before sending (it is not a valid header value).
    #[error("the provider rejected the API key (HTTP {status}): {message}")]
    Auth { status: u16, message: String },

    /// Any other 4xx, and unexpected 3xx. 408 and 409 are retryable; the status tells them apart.
    #[error("the provider rejected the request (HTTP {status}): {message}")]
    BadRequest { status: u16, message: String },

    /// A 2xx whose body does not have the vendor's shape (or is too large).
    #[error("the provider's reply could not be read: {0}")]
    InvalidResponse(String),
}

impl LlmError {
    /// The `error_type` label of `llm_api_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::MissingKey { .. } | LlmError::Auth { .. } => "auth",
            LlmError::InsecureEndpoint { .. } | LlmError::KeyNotForHost { .. } => "config",
            LlmError::RateLimited { .. } => "rate_limited",
            LlmError::QuotaExhausted { .. } => "quota",
            LlmError::Overloaded { .. } => "overloaded",
            LlmError::Server { .. } => "server",
            LlmError::Timeout => "timeout",
            LlmError::Connect(_) => "connection",
            LlmError::BadRequest { .. } => "other",
            LlmError::InvalidResponse(_) => "bad_reply",
        }
    }
}

fn missing_key(env: &str) -> String {
    if env.is_empty() {
        "no API key: no environment variable is configured for it (set llm.api_key_env)".to_owned()
    } else {
        format!("no API key: the environment variable {env} is not set")
    }
}

fn after(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(", retry after {:.1}s", d.as_secs_f64()),
        None => String::new(),
    }
}

impl LlmError {
    /// Whether the same request may succeed later: 408, 409, 429 rate limits, 5xx, 529,
    /// timeouts and transport failures. Quota, auth and other 4xx errors never are.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::RateLimited { .. }
            | LlmError::Overloaded { .. }
            | LlmError::Server { .. }
            | LlmError::Timeout
            | LlmError::Connect(_) => true,
            LlmError::BadRequest { status, .. } => matches!(status, 408 | 409),
            LlmError::MissingKey { .. }
            | LlmError::InsecureEndpoint { .. }
            | LlmError::KeyNotForHost { .. }
            | LlmError::QuotaExhausted { .. }
            | LlmError::Auth { .. }
            | LlmError::InvalidResponse(_) => false,
        }
    }

    /// The vendor's suggested wait, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after, .. } | LlmError::Overloaded { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Removes the key from every message, whatever the vendor echoed back.
    pub(crate) fn scrub(self, key: Option<&str>) -> LlmError {
        let s = |m: String| scrub_message(&m, key);
        match self {
            LlmError::QuotaExhausted { message } => LlmError::QuotaExhausted { message: s(message) },
            LlmError::Server { status, message } => LlmError::Server { status, message: s(message) },
            LlmError::Connect(message) => LlmError::Connect(s(message)),
            LlmError::Auth { status, message } => LlmError::Auth { status, message: s(message) },
            LlmError::BadRequest { status, message } => LlmError::BadRequest { status, message: s(message) },
            LlmError::InvalidResponse(message) => LlmError::InvalidResponse(s(message)),
            other => other,
        }
    }
}

/// Makes a vendor message safe to show: one line, at most [`MAX_MESSAGE_CHARS`], and with the
/// key and anything shaped like a key replaced. Vendors do echo keys: OpenAI's 401 says
/// "Incorrect API key provided: sk-proj-****abcd", which still leaks a prefix and suffix.
pub(crate) fn scrub_message(message: &str, key: Option<&str>) -> String {
    let mut one_line = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS * 4));
    for word in message.split_whitespace() {
        if !one_line.is_empty() {
            one_line.push(' ');
        }
        let bare = word.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
        let keylike = bare.starts_with("sk-")
            || bare.starts_with("AIza")
            || key.is_some_and(|k| !k.is_empty() && word.contains(k));
        if keylike {
            one_line.push_str("[redacted]");
        } else {
            one_line.push_str(word);
        }
    }
    // A key inside a word we did not split on (e.g. "key=...") is still caught here.
    if let Some(key) = key.filter(|k| !k.is_empty()) {
        one_line = one_line.replace(key, "[redacted]");
    }
    truncate_chars(&one_line, MAX_MESSAGE_CHARS)
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => {
            let mut out = s[..cut].to_owned();
            out.push('…');
            out
        }
        None => s.to_owned(),
    }
}

/// A transport error with its causes, because reqwest's own message ("error sending request")
/// hides the useful part ("Connection refused") in the source chain.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            let _ = write!(out, ": {text}");
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_follows_the_status() {
        assert!(LlmError::RateLimited { retry_after: None, rate: RateHeaders::default() }.is_retryable());
        assert!(LlmError::Overloaded { status: 529, retry_after: None }.is_retryable());
        assert!(LlmError::Server { status: 500, message: String::new() }.is_retryable());
        assert!(LlmError::Timeout.is_retryable());
        assert!(LlmError::Connect("refused".into()).is_retryable());
        assert!(LlmError::BadRequest { status: 408, message: String::new() }.is_retryable());
        assert!(LlmError::BadRequest { status: 409, message: String::new() }.is_retryable());
        assert!(!LlmError::BadRequest { status: 400, message: String::new() }.is_retryable());
        assert!(!LlmError::QuotaExhausted { message: String::new() }.is_retryable());
        assert!(!LlmError::Auth { status: 401, message: String::new() }.is_retryable());
        assert!(!LlmError::MissingKey { env: "X".into() }.is_retryable());
        assert!(!LlmError::InvalidResponse(String::new()).is_retryable());
    }

    #[test]
    fn scrub_removes_the_key_and_keylike_words() {
        let key = "abc123secretvalue";
        let msg = "Incorrect API key provided: sk-proj-****abcd. Also key=abc123secretvalue and AIzaSyXYZ.";
        let out = scrub_message(msg, Some(key));
        assert!(!out.contains(key), "{out}");
        assert!(!out.contains("sk-proj"), "{out}");
        assert!(!out.contains("AIza"), "{out}");
        assert!(out.starts_with("Incorrect API key provided: [redacted]"), "{out}");
        // Ordinary words that merely contain "sk-" survive.
        assert_eq!(scrub_message("task-queue disk-full", Some("")), "task-queue disk-full");
    }

    #[test]
    fn scrub_makes_one_short_line() {
        let out = scrub_message(&"word\n".repeat(500), None);
        assert!(!out.contains('\n'));
        assert!(out.chars().count() <= MAX_MESSAGE_CHARS + 1);
        assert!(out.ends_with('…'));
    }

    #[test]
    fn display_is_one_sentence_without_secrets() {
        let err = LlmError::Auth { status: 401, message: "Incorrect API key provided: sk-live-123".into() }
            .scrub(Some("sk-live-123"));
        assert_eq!(
            err.to_string(),
            "the provider rejected the API key (HTTP 401): Incorrect API key provided: [redacted]"
        );
        assert_eq!(
            LlmError::MissingKey { env: "OPENAI_API_KEY".into() }.to_string(),
            "no API key: the environment variable OPENAI_API_KEY is not set"
        );
        let limited =
            LlmError::RateLimited { retry_after: Some(Duration::from_millis(1500)), rate: Default::default() };
        assert_eq!(limited.to_string(), "the provider is rate limiting us, retry after 1.5s");
    }
}
