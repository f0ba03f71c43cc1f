//! Owns talking to model vendors: one request in ([`CompletionRequest`]), one reply out
//! ([`Completion`]) or an [`LlmError`] that says what to do next. It knows nothing of LSP or of
//! review semantics (agents, findings, prompts are built elsewhere).
//!
//! Three wire protocols cover every supported backend:
//! - OpenAI chat completions ([`ProviderKind::OpenAi`]). Pointed at another `base_url` it also
//!   speaks to OpenAI-compatible servers (Ollama, vLLM, LM Studio, llama.cpp, hosted gateways).
//! - Anthropic messages ([`ProviderKind::Anthropic`]).
//! - Gemini `generateContent` ([`ProviderKind::Gemini`]).
//!
//! All calls go through one [`LlmClient`]: one connection pool, rustls with the `ring` provider.
//!
//! Secrets: the API key is read from the env var named by [`Endpoint::api_key_env`] at call time,
//! sent in a header marked sensitive, never stored, never logged (not even at trace), and scrubbed
//! from vendor error messages. Logs carry vendor, model, status, latency and token counts, never
//! prompt or reply text.

// `LlmError::RateLimited` carries the full `RateHeaders` for the limiter, which makes the error
// type large; one extra copy per failed HTTP call is not worth boxing the public shape for.
#![allow(clippy::result_large_err)]

mod anthropic;
pub mod destination;
mod error;
mod gemini;
mod headers;
pub mod limits;
mod openai;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};

pub use error::LlmError;
pub use gemini::to_gemini_schema;
pub use headers::{RateHeaders, parse_go_duration, parse_http_date, parse_reset, parse_retry_after, parse_rfc3339};

/// A successful reply larger than this is not a review; reading it would only cost memory.
pub const MAX_REPLY_BYTES: usize = 4 << 20;
/// Of an error reply only the message matters; the rest is dropped unread.
const MAX_ERROR_BYTES: usize = 64 << 10;

/// Which wire protocol an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    OpenAi,
    Anthropic,
    Gemini,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 3] = [ProviderKind::OpenAi, ProviderKind::Anthropic, ProviderKind::Gemini];

    /// The name used in settings: `openai`, `anthropic`, `gemini`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses the settings name, ignoring ASCII case and surrounding spaces. `offline` is not a
/// provider (it means "no LLM"), so it is an error here like any other unknown name.
impl FromStr for ProviderKind {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        ProviderKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownProvider(s.into()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown LLM provider {0:?} (expected openai, anthropic or gemini)")]
pub struct UnknownProvider(pub String);

/// Where and how to call one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub kind: ProviderKind,
    /// Without a trailing slash (one is tolerated), e.g. `http://localhost:11434/v1` for Ollama.
    pub base_url: String,
    pub model: String,
    /// The NAME of the env var holding the key, never the key. For `OpenAi` with a non-default
    /// `base_url` it may be empty or unset: local OpenAI-compatible servers need no key.
    pub api_key_env: String,
    /// For the whole exchange: connecting, sending, and reading the full reply.
    pub timeout: Duration,
    /// Whether `base_url` comes from the user (their own config, the editor, the command line)
    /// rather than from a repository's file. Only then may a vendor's default key variable
    /// (`OPENAI_API_KEY`, ...) go to a host that is not that vendor's; see [`destination`].
    pub user_chose_endpoint: bool,
}

impl Endpoint {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

    /// The vendor's endpoint, with the default key variable and a 60 s timeout.
    pub fn new(kind: ProviderKind, model: impl Into<String>) -> Endpoint {
        Endpoint {
            kind,
            base_url: Endpoint::default_base_url(kind).to_owned(),
            model: model.into(),
            api_key_env: Endpoint::default_key_env(kind).to_owned(),
            timeout: Endpoint::DEFAULT_TIMEOUT,
            user_chose_endpoint: false,
        }
    }

    pub fn default_base_url(kind: ProviderKind) -> &'static str {
        match kind {
            ProviderKind::OpenAi => "https://api.openai.com/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com/v1",
            ProviderKind::Gemini => "https://generativelanguage.googleapis.com/v1beta",
        }
    }

    pub fn default_key_env(kind: ProviderKind) -> &'static str {
        match kind {
            ProviderKind::OpenAi => "OPENAI_API_KEY",
            ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
            ProviderKind::Gemini => "GEMINI_API_KEY",
        }
    }

    /// `base_url` without trailing slashes, so `{base}/path` never has `//`.
    fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    /// Whether this is the vendor's own service rather than a compatible server or gateway.
    fn is_vendor_default(&self) -> bool {
        self.base() == Endpoint::default_base_url(self.kind)
    }
}

/// One prompt. The engine builds the texts; this module only carries them.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    pub system: String,
    pub user: String,
    pub max_output_tokens: u32,
    /// JSON Schema of the reply object. OpenAI enforces it (`response_format` `json_schema`,
    /// strict, so every object needs `additionalProperties: false` and all properties required),
    /// Gemini gets it converted to its `responseSchema` subset, and Anthropic ignores it (it has
    /// no JSON mode): the prompt text must state the schema. `Value::Null` asks for free text.
    pub json_schema: serde_json::Value,
}

/// A reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    pub usage: Usage,
    /// From sending the request to having read the whole reply.
    pub latency: Duration,
    pub rate: RateHeaders,
}

/// Tokens as the vendor counted them. Zero when the server did not say (some local servers).
/// `completion_tokens` includes reasoning/thinking tokens, since they are billed as output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// The HTTP client for every endpoint. Cheap to clone: `reqwest::Client` is an `Arc` around
/// one connection pool, so clones share connections.
#[derive(Clone)]
pub struct LlmClient {
    http: reqwest::Client,
}

impl fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmClient").finish_non_exhaustive()
    }
}

/// A request as a vendor module builds it; `mod.rs` sends it.
struct HttpRequest {
    url: String,
    headers: HeaderMap,
    body: serde_json::Value,
}

impl LlmClient {
    pub fn new() -> anyhow::Result<LlmClient> {
        // reqwest is built without a default crypto provider (aws-lc is slow to build); ring is
        // installed as the process default. Another install first (by us or a dependency) is
        // fine: reqwest uses whichever default is there.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("review-lsp/", env!("CARGO_PKG_VERSION")))
            // Vendors never redirect API calls, and reqwest would forward `x-api-key` and
            // `x-goog-api-key` to the new host (it only strips `Authorization`). A 3xx is an error.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| anyhow::anyhow!("building the HTTP client: {}", error::error_chain(&e)))?;
        Ok(LlmClient { http })
    }

    /// Sends one request to `endpoint` and returns the reply text with usage and rate headers.
    /// No retries here: the caller decides with [`LlmError::is_retryable`] and the rate headers.
    pub async fn complete(&self, endpoint: &Endpoint, req: &CompletionRequest) -> Result<Completion, LlmError> {
        let vendor = endpoint.kind.as_str();
        let model = endpoint.model.as_str();
        let key = read_key(endpoint)?;
        let result = self.exchange(endpoint, req, key.as_deref()).await.map_err(|e| e.scrub(key.as_deref()));
        if let Err(err) = &result {
            tracing::debug!(vendor, model, error = %err, "llm call failed");
        }
        result
    }

    async fn exchange(
        &self,
        endpoint: &Endpoint,
        req: &CompletionRequest,
        key: Option<&str>,
    ) -> Result<Completion, LlmError> {
        let request = match endpoint.kind {
            ProviderKind::OpenAi => openai::build(endpoint, req, key)?,
            ProviderKind::Anthropic => anthropic::build(endpoint, req, key)?,
            ProviderKind::Gemini => gemini::build(endpoint, req, key)?,
        };
        let started = Instant::now();
        let send = async {
            let response = self
                .http
                .post(&request.url)
                .headers(request.headers)
                .header(header::ACCEPT, "application/json")
                .json(&request.body)
                .send()
                .await
                .map_err(transport_error)?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = if status.is_success() {
                read_capped(response, MAX_REPLY_BYTES, false).await?
            } else {
                read_capped(response, MAX_ERROR_BYTES, true).await?
            };
            Ok::<_, LlmError>((status, headers, body))
        };
        // One deadline for the whole exchange, body included: a server that sends headers and
        // then trickles the body must not hold a worker past the timeout.
        let (status, headers, body) =
            tokio::time::timeout(endpoint.timeout, send).await.map_err(|_| LlmError::Timeout)??;
        let latency = started.elapsed();
        let rate = RateHeaders::from_headers(&headers, SystemTime::now());
        tracing::trace!(
            vendor = endpoint.kind.as_str(),
            status = status.as_u16(),
            bytes = body.len(),
            "llm reply received"
        );

        if status.is_success() {
            let (text, usage) = match endpoint.kind {
                ProviderKind::OpenAi => openai::parse_reply(&body)?,
                ProviderKind::Anthropic => anthropic::parse_reply(&body)?,
                ProviderKind::Gemini => gemini::parse_reply(&body)?,
            };
            tracing::debug!(
                vendor = endpoint.kind.as_str(),
                model = endpoint.model.as_str(),
                status = status.as_u16(),
                latency_ms = latency.as_millis() as u64,
                prompt_tokens = usage.prompt_tokens,
                completion_tokens = usage.completion_tokens,
                "llm call done"
            );
            return Ok(Completion { text, usage, latency, rate });
        }
        let info = ErrorInfo::parse(status, &body);
        let mut err = match endpoint.kind {
            ProviderKind::OpenAi => openai::classify(status, info, rate),
            ProviderKind::Anthropic => anthropic::classify(status, info, rate),
            ProviderKind::Gemini => gemini::classify(status, info, rate),
        };
        if let (LlmError::Auth { message, .. }, None) = (&mut err, key) {
            // We sent no key (keyless local mode); say so, or the user hunts for a wrong key.
            let why = if destination::may_carry_default_key(endpoint) {
                "is not set"
            } else {
                "is only sent to its vendor's own API"
            };
            message.push_str(&format!(" (no API key was sent: {} {why})", display_env(&endpoint.api_key_env)));
        }
        Err(err)
    }
}

/// The key from the environment, now. `Ok(None)` means "send no key": only for `OpenAi` at a
/// non-default `base_url` (Ollama, llama.cpp and friends need none). Anywhere else a missing
/// key is [`LlmError::MissingKey`], before any request is sent. A key is read only where it may
/// go ([`destination`]): a vendor's default variable counts as unset at another host, and a key
/// bound for plain `http` off this machine is refused.
fn read_key(endpoint: &Endpoint) -> Result<Option<String>, LlmError> {
    let name = endpoint.api_key_env.trim();
    let allowed = !name.is_empty() && destination::may_carry_default_key(endpoint);
    if !name.is_empty() && !allowed {
        tracing::debug!(env = name, "a vendor's default key variable is not sent to another host");
    }
    let key = if allowed { std::env::var(name).ok() } else { None };
    // Trimmed: a key exported from a file often ends in a newline, which no header allows.
    match key.map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()) {
        Some(key) => destination::check_transport(endpoint).map(|()| Some(key)),
        None if endpoint.kind == ProviderKind::OpenAi && !endpoint.is_vendor_default() => {
            tracing::trace!(env = display_env(name), "no API key; calling the OpenAI-compatible server without one");
            Ok(None)
        }
        None if !allowed && !name.is_empty() => Err(LlmError::KeyNotForHost {
            env: name.to_owned(),
            host: crate::escape::line(&destination::host(&endpoint.base_url)).into_owned(),
        }),
        None => Err(LlmError::MissingKey { env: name.to_owned() }),
    }
}

fn display_env(name: &str) -> &str {
    if name.is_empty() { "llm.api_key_env" } else { name }
}

/// A header value holding a secret: marked sensitive so that no `Debug` of the request (ours,
/// reqwest's or hyper's) prints it.
fn secret_header(value: &str) -> Result<HeaderValue, LlmError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| LlmError::Auth {
        status: 0,
        message: "the API key contains characters that cannot be sent in an HTTP header".into(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn header_map(pairs: &[(&'static str, HeaderValue)]) -> HeaderMap {
    pairs.iter().map(|(name, value)| (HeaderName::from_static(name), value.clone())).collect()
}

fn transport_error(err: reqwest::Error) -> LlmError {
    if err.is_timeout() { LlmError::Timeout } else { LlmError::Connect(error::error_chain(&err)) }
}

/// Reads at most `cap` bytes of the body. Over the cap, a success reply is an error (a review
/// is never that big, so it is garbage) and an error reply is cut (only its message matters).
async fn read_capped(mut response: reqwest::Response, cap: usize, truncate: bool) -> Result<Vec<u8>, LlmError> {
    let too_large = || LlmError::InvalidResponse(format!("the reply is larger than {} MiB", cap >> 20));
    if !truncate && response.content_length().is_some_and(|len| len > cap as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        let room = cap - body.len();
        if chunk.len() > room {
            if !truncate {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What a vendor's error body says, in the fields the three vendors (and OpenAI-compatible
/// servers) use: `{"error": {"message", "type", "code" | "status", "details"}}`, Ollama's
/// `{"error": "text"}`, Gemini's occasional `[{"error": ...}]`, or not JSON at all.
struct ErrorInfo {
    message: String,
    /// OpenAI / Anthropic `error.type`.
    kind: Option<String>,
    /// OpenAI `error.code` (Gemini's is the HTTP status as a number).
    code: Option<String>,
    /// Gemini `error.status`, e.g. `RESOURCE_EXHAUSTED`.
    status: Option<String>,
    /// The `error` object itself, for vendor-specific fields (Gemini `details`).
    error: serde_json::Value,
}

impl ErrorInfo {
    fn parse(status: StatusCode, body: &[u8]) -> ErrorInfo {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let top = match &json {
            serde_json::Value::Array(items) => items.first().cloned().unwrap_or_default(),
            other => other.clone(),
        };
        let error = top.get("error").cloned().unwrap_or_default();
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let message = match &error {
            serde_json::Value::String(s) => Some(s.clone()),
            obj => obj.get("message").and_then(text),
        }
        .or_else(|| top.get("message").and_then(text))
        .or_else(|| {
            // Not JSON: a proxy's plain-text error is worth showing, its HTML page is not.
            let raw = String::from_utf8_lossy(body);
            let raw = raw.trim();
            (!raw.is_empty() && !raw.starts_with('<') && json.is_null()).then(|| raw.to_owned())
        })
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("no message").to_owned());
        ErrorInfo {
            message: error::scrub_message(&message, None),
            kind: error.get("type").and_then(text),
            code: error.get("code").and_then(text),
            status: error.get("status").and_then(text),
            error,
        }
    }

    fn is(&self, name: &str) -> bool {
        [&self.kind, &self.code, &self.status].into_iter().any(|field| field.as_deref() == Some(name))
    }
}

/// The status-only mapping every vendor falls back to once its own cases are handled.
fn classify_status(status: StatusCode, info: ErrorInfo, rate: RateHeaders) -> LlmError {
    let status = status.as_u16();
    let message = info.message;
    match status {
        401 | 403 => LlmError::Auth { status, message },
        429 => LlmError::RateLimited { retry_after: rate.retry_after, rate },
        503 | 529 => LlmError::Overloaded { status, retry_after: rate.retry_after },
        500..=599 => LlmError::Server { status, message },
        300..=399 => LlmError::BadRequest {
            status,
            message: "unexpected redirect; check llm.base_url (it should end at the API root, e.g. /v1)".into(),
        },
        _ => LlmError::BadRequest { status, message },
    }
}

/// Parses a 2xx body as JSON, or says briefly why not (serde's position, never the body).
fn reply_json(body: &[u8]) -> Result<serde_json::Value, LlmError> {
    serde_json::from_slice(body).map_err(|e| LlmError::InvalidResponse(format!("the reply is not JSON ({e})")))
}

fn count(value: &serde_json::Value, pointer: &str) -> u64 {
    value.pointer(pointer).and_then(serde_json::Value::as_u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_round_trip() {
        for kind in ProviderKind::ALL {
            assert_eq!(kind.as_str().parse::<ProviderKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(" OpenAI ".parse::<ProviderKind>(), Ok(ProviderKind::OpenAi));
        assert!("offline".parse::<ProviderKind>().is_err());
        assert!("".parse::<ProviderKind>().is_err());
    }

    #[test]
    fn endpoint_defaults() {
        let e = Endpoint::new(ProviderKind::Gemini, "gemini-2.5-flash");
        assert_eq!(e.base_url, "https://generativelanguage.googleapis.com/v1beta");
        assert_eq!(e.api_key_env, "GEMINI_API_KEY");
        assert!(e.is_vendor_default());
        let e = Endpoint { base_url: "https://api.openai.com/v1/".into(), ..Endpoint::new(ProviderKind::OpenAi, "m") };
        assert!(e.is_vendor_default(), "a trailing slash is still the default");
        assert_eq!(Endpoint::default_base_url(ProviderKind::Anthropic), "https://api.anthropic.com/v1");
        assert_eq!(Endpoint::default_key_env(ProviderKind::Anthropic), "ANTHROPIC_API_KEY");
        assert_eq!(Endpoint::default_key_env(ProviderKind::OpenAi), "OPENAI_API_KEY");
    }

    #[test]
    fn keyless_only_for_openai_compatible_servers() {
        let unset = "REVIEW_LSP_UNIT_KEY_NEVER_SET";
        let local = Endpoint {
            base_url: "http://localhost:11434/v1".into(),
            api_key_env: unset.into(),
            ..Endpoint::new(ProviderKind::OpenAi, "llama3")
        };
        assert_eq!(read_key(&local), Ok(None));
        assert_eq!(read_key(&Endpoint { api_key_env: String::new(), ..local.clone() }), Ok(None));
        let openai = Endpoint { api_key_env: unset.into(), ..Endpoint::new(ProviderKind::OpenAi, "gpt-4.1") };
        assert_eq!(read_key(&openai), Err(LlmError::MissingKey { env: unset.into() }));
        let anthropic = Endpoint { base_url: "http://localhost:1/v1".into(), ..openai.clone() };
        let anthropic = Endpoint { kind: ProviderKind::Anthropic, ..anthropic };
        assert_eq!(read_key(&anthropic), Err(LlmError::MissingKey { env: unset.into() }));
    }

    #[test]
    fn error_bodies_of_every_shape() {
        let s = StatusCode::BAD_REQUEST;
        let openai = ErrorInfo::parse(s, br#"{"error":{"message":"bad","type":"invalid_request_error","code":"x"}}"#);
        assert_eq!(
            (openai.message.as_str(), openai.kind.as_deref(), openai.code.as_deref()),
            ("bad", Some("invalid_request_error"), Some("x"))
        );
        let ollama = ErrorInfo::parse(s, br#"{"error":"model \"x\" not found"}"#);
        assert_eq!(ollama.message, "model \"x\" not found");
        let gemini = ErrorInfo::parse(s, br#"[{"error":{"code":400,"message":"m","status":"INVALID_ARGUMENT"}}]"#);
        assert_eq!((gemini.message.as_str(), gemini.status.as_deref()), ("m", Some("INVALID_ARGUMENT")));
        assert!(gemini.is("INVALID_ARGUMENT") && !gemini.is("UNAVAILABLE"));
        assert_eq!(ErrorInfo::parse(s, b"upstream connect error").message, "upstream connect error");
        assert_eq!(ErrorInfo::parse(StatusCode::BAD_GATEWAY, b"<html>502</html>").message, "Bad Gateway");
        assert_eq!(ErrorInfo::parse(s, b"").message, "Bad Request");
    }
}
