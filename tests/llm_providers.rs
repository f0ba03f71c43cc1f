//! The provider clients (`review_lsp::llm`) against a mock of each vendor: wiremock on loopback
//! speaking the vendor's request and reply shapes. Only the vendors are mocked; the client, its
//! HTTP stack and the env-var key handling are the real ones.
//!
//! Plain HTTP only: this machine has no internet, so TLS to the real vendors is not exercised.
//! Every test uses its own key env var (`REVIEW_LSP_TEST_KEY_<n>`), since tests run in parallel.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use review_lsp::llm::{CompletionRequest, Endpoint, LlmClient, LlmError, ProviderKind};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SYSTEM: &str = "You review code. PROMPT-MARKER-SYSTEM";
const USER: &str = "12: let x = 1; PROMPT-MARKER-USER";

/// Sets a fresh env var to `value` and returns its name.
fn key_var(value: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("REVIEW_LSP_TEST_KEY_{}", NEXT.fetch_add(1, Ordering::SeqCst));
    // SAFETY: the name is unique to this test, and std serialises its own env reads and writes;
    // nothing else in this process reads this variable.
    unsafe { std::env::set_var(&name, value) };
    name
}

/// A key value unique to the calling test (not `sk-…`, so scrubbing must find it by value).
fn unique_key(tag: &str) -> String {
    format!("rk-test-{tag}-{:08x}", std::process::id() ^ 0x5eed_c0de)
}

fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "required": ["findings"],
        "properties": {
            "findings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["line", "message"],
                    "properties": {"line": {"type": "integer"}, "message": {"type": "string"}}
                }
            }
        }
    })
}

fn request() -> CompletionRequest {
    CompletionRequest { system: SYSTEM.into(), user: USER.into(), max_output_tokens: 256, json_schema: schema() }
}

fn client() -> LlmClient {
    LlmClient::new().expect("client builds")
}

/// The vendor's base path on the mock: `/v1` (OpenAI, Anthropic) or `/v1beta` (Gemini).
fn api_root(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Gemini => "/v1beta",
        _ => "/v1",
    }
}

fn endpoint(kind: ProviderKind, base: &str, key_env: &str) -> Endpoint {
    let model = match kind {
        ProviderKind::OpenAi => "gpt-4.1-mini",
        ProviderKind::Anthropic => "claude-sonnet-4-5",
        ProviderKind::Gemini => "gemini-2.5-flash",
    };
    Endpoint {
        kind,
        base_url: format!("{base}{}", api_root(kind)),
        model: model.into(),
        api_key_env: key_env.into(),
        timeout: Duration::from_secs(10),
        user_chose_endpoint: true,
    }
}

fn call_path(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "/v1/chat/completions",
        ProviderKind::Anthropic => "/v1/messages",
        ProviderKind::Gemini => "/v1beta/models/gemini-2.5-flash:generateContent",
    }
}

/// A well-formed reply in the vendor's shape, with `text` as the answer.
fn ok_body(kind: ProviderKind, text: &str) -> Value {
    match kind {
        ProviderKind::OpenAi => json!({
            "id": "chatcmpl-1", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
        }),
        ProviderKind::Anthropic => json!({
            "id": "msg_1", "type": "message", "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 120, "output_tokens": 30}
        }),
        ProviderKind::Gemini => json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 30, "totalTokenCount": 150}
        }),
    }
}

/// Mounts one reply for any POST and returns the server.
async fn serve(reply: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(reply).mount(&server).await;
    server
}

async fn only_request(server: &MockServer) -> Request {
    let mut requests = server.received_requests().await.expect("recording is on");
    assert_eq!(requests.len(), 1, "exactly one request");
    requests.remove(0)
}

async fn call(kind: ProviderKind, reply: ResponseTemplate) -> Result<review_lsp::llm::Completion, LlmError> {
    let server = serve(reply).await;
    let env = key_var(&unique_key("call"));
    client().complete(&endpoint(kind, &server.uri(), &env), &request()).await
}

const ALL: [ProviderKind; 3] = [ProviderKind::OpenAi, ProviderKind::Anthropic, ProviderKind::Gemini];

// ---------------------------------------------------------------------------------------------
// OpenAI (and OpenAI-compatible servers)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn openai_request_shape_and_reply() {
    let key = unique_key("openai-shape");
    let env = key_var(&key);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {key}").as_str()))
        .and(header("content-type", "application/json"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(ok_body(ProviderKind::OpenAi, r#"{"findings":[]}"#))
                .insert_header("x-ratelimit-limit-requests", "500")
                .insert_header("x-ratelimit-remaining-requests", "499")
                .insert_header("x-ratelimit-reset-requests", "120ms")
                .insert_header("x-ratelimit-limit-tokens", "30000")
                .insert_header("x-ratelimit-remaining-tokens", "29850")
                .insert_header("x-ratelimit-reset-tokens", "1h2m3.5s"),
        )
        .expect(1)
        .mount(&server)
        .await;

    let done = client().complete(&endpoint(ProviderKind::OpenAi, &server.uri(), &env), &request()).await.unwrap();
    assert_eq!(done.text, r#"{"findings":[]}"#);
    assert_eq!((done.usage.prompt_tokens, done.usage.completion_tokens), (120, 30));
    assert!(done.latency > Duration::ZERO);
    assert_eq!(done.rate.limit_requests, Some(500));
    assert_eq!(done.rate.remaining_requests, Some(499));
    assert_eq!(done.rate.reset_requests, Some(Duration::from_millis(120)));
    assert_eq!(done.rate.remaining_tokens, Some(29850));
    assert_eq!(done.rate.reset_tokens, Some(Duration::from_millis(3_723_500)));

    let sent: Value = only_request(&server).await.body_json().unwrap();
    // The whole body, so an extra or renamed field fails too. A compatible server (non-default
    // base_url) gets `max_tokens`, the field every OpenAI-compatible server reads.
    assert_eq!(
        sent,
        json!({
            "model": "gpt-4.1-mini",
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}],
            "max_tokens": 256,
            "temperature": 0,
            "response_format": {"type": "json_schema", "json_schema": {"name": "review", "schema": schema(), "strict": true}}
        })
    );
}

#[tokio::test]
async fn openai_compatible_server_without_key_gets_no_authorization() {
    let server = serve(ResponseTemplate::new(200).set_body_json(ok_body(ProviderKind::OpenAi, "{}"))).await;
    let base = format!("{}/v1", server.uri());
    // Unset variable, and no variable configured at all: both call without a key.
    for env in ["REVIEW_LSP_TEST_KEY_NEVER_SET", ""] {
        let local = Endpoint {
            kind: ProviderKind::OpenAi,
            base_url: base.clone(),
            model: "llama3.1:8b".into(),
            api_key_env: env.into(),
            timeout: Duration::from_secs(10),
            user_chose_endpoint: false,
        };
        let done = client().complete(&local, &request()).await.unwrap();
        assert_eq!(done.text, "{}");
    }
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    for r in requests {
        assert!(r.headers.get("authorization").is_none(), "no Authorization header: {:?}", r.headers);
    }
}

#[tokio::test]
async fn openai_itself_without_key_is_missing_key() {
    let env = "REVIEW_LSP_TEST_KEY_OPENAI_UNSET";
    let e = Endpoint { api_key_env: env.into(), ..Endpoint::new(ProviderKind::OpenAi, "gpt-4.1-mini") };
    let err = client().complete(&e, &request()).await.unwrap_err();
    assert_eq!(err, LlmError::MissingKey { env: env.into() });
    assert!(!err.is_retryable());
    assert_eq!(err.to_string(), format!("no API key: the environment variable {env} is not set"));
}

#[tokio::test]
async fn openai_empty_key_counts_as_missing() {
    let env = key_var("  ");
    let e = Endpoint { api_key_env: env.clone(), ..Endpoint::new(ProviderKind::OpenAi, "gpt-4.1-mini") };
    assert_eq!(client().complete(&e, &request()).await.unwrap_err(), LlmError::MissingKey { env });
}

#[tokio::test]
async fn openai_rate_limit_with_retry_after_seconds() {
    let body = json!({"error": {"message": "Rate limit reached for gpt-4.1-mini", "type": "requests", "code": "rate_limit_exceeded"}});
    let err = call(
        ProviderKind::OpenAi,
        ResponseTemplate::new(429)
            .set_body_json(body)
            .insert_header("retry-after", "7")
            .insert_header("x-ratelimit-remaining-requests", "0")
            .insert_header("x-ratelimit-reset-requests", "6m0s"),
    )
    .await
    .unwrap_err();
    let LlmError::RateLimited { retry_after, rate } = &err else { panic!("{err:?}") };
    assert_eq!(*retry_after, Some(Duration::from_secs(7)));
    assert_eq!(rate.remaining_requests, Some(0));
    assert_eq!(rate.reset_requests, Some(Duration::from_secs(360)));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn openai_rate_limit_with_retry_after_ms() {
    let body = json!({"error": {"message": "slow down", "type": "tokens", "code": "rate_limit_exceeded"}});
    let err = call(
        ProviderKind::OpenAi,
        ResponseTemplate::new(429)
            .set_body_json(body)
            .insert_header("retry-after-ms", "250")
            .insert_header("retry-after", "1"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, LlmError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_millis(250)),
        "{err:?}"
    );
}

#[tokio::test]
async fn openai_insufficient_quota_is_not_retryable() {
    let body = json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}});
    let err =
        call(ProviderKind::OpenAi, ResponseTemplate::new(429).set_body_json(body).insert_header("retry-after", "1"))
            .await
            .unwrap_err();
    assert!(
        matches!(&err, LlmError::QuotaExhausted { message } if message.contains("exceeded your current quota")),
        "{err:?}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn openai_server_errors() {
    let err =
        call(ProviderKind::OpenAi, ResponseTemplate::new(503).insert_header("retry-after", "2")).await.unwrap_err();
    assert_eq!(err, LlmError::Overloaded { status: 503, retry_after: Some(Duration::from_secs(2)) });
    assert!(err.is_retryable());

    let body =
        json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error"}});
    let err = call(ProviderKind::OpenAi, ResponseTemplate::new(500).set_body_json(body)).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::Server { status: 500, message } if message.contains("server had an error")),
        "{err:?}"
    );
    assert!(err.is_retryable());

    let err = call(ProviderKind::OpenAi, ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
        .await
        .unwrap_err();
    assert_eq!(err, LlmError::Server { status: 502, message: "Bad Gateway".into() });
}

#[tokio::test]
async fn openai_client_errors() {
    let body = json!({"error": {"message": "Invalid schema for response_format 'review'", "type": "invalid_request_error", "code": null}});
    let err = call(ProviderKind::OpenAi, ResponseTemplate::new(400).set_body_json(body)).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::BadRequest { status: 400, message } if message.contains("Invalid schema")),
        "{err:?}"
    );
    assert!(!err.is_retryable());

    for status in [408, 409] {
        let err = call(ProviderKind::OpenAi, ResponseTemplate::new(status)).await.unwrap_err();
        assert!(matches!(err, LlmError::BadRequest { status: s, .. } if s == status), "{err:?}");
        assert!(err.is_retryable(), "{status} is retryable");
    }

    let err = call(ProviderKind::OpenAi, ResponseTemplate::new(302).insert_header("location", "http://127.0.0.1:9/x"))
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::BadRequest { status: 302, .. }), "redirects are not followed: {err:?}");
}

#[tokio::test]
async fn openai_401_is_auth_and_never_shows_the_key() {
    let key = unique_key("openai-401");
    let env = key_var(&key);
    // OpenAI echoes (a masked form of) the key; a careless proxy might echo all of it.
    let body = json!({"error": {"message": format!("Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com."),
        "type": "invalid_request_error", "code": "invalid_api_key"}});
    let server = serve(ResponseTemplate::new(401).set_body_json(body)).await;
    let err = client().complete(&endpoint(ProviderKind::OpenAi, &server.uri(), &env), &request()).await.unwrap_err();
    assert!(matches!(err, LlmError::Auth { status: 401, .. }), "{err:?}");
    assert!(!err.is_retryable());
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(&key), "{shown}");
    assert!(shown.contains("Incorrect API key provided: [redacted]"), "{shown}");
    assert!(!shown.contains("PROMPT-MARKER"), "no request body in errors: {shown}");
}

#[tokio::test]
async fn keyless_401_says_no_key_was_sent() {
    let server = serve(ResponseTemplate::new(401).set_body_json(json!({"error": {"message": "missing key"}}))).await;
    let e = endpoint(ProviderKind::OpenAi, &server.uri(), "REVIEW_LSP_TEST_KEY_KEYLESS_UNSET");
    let err = client().complete(&e, &request()).await.unwrap_err();
    assert!(err.to_string().contains("no API key was sent: REVIEW_LSP_TEST_KEY_KEYLESS_UNSET is not set"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Anthropic
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn anthropic_request_shape_and_reply() {
    let key = unique_key("anthropic-shape");
    let env = key_var(&key);
    let server = MockServer::start().await;
    let reset = "2099-01-01T00:00:00Z";
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", key.as_str()))
        .and(header("anthropic-version", "2023-06-01"))
        .and(header("content-type", "application/json"))
        .and(body_partial_json(json!({"model": "claude-sonnet-4-5"})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({
                    "id": "msg_1", "type": "message", "role": "assistant",
                    "content": [{"type": "text", "text": "{\"findings\":"}, {"type": "text", "text": "[]}"}],
                    "stop_reason": "end_turn",
                    "usage": {"input_tokens": 200, "output_tokens": 12}
                }))
                .insert_header("anthropic-ratelimit-requests-limit", "50")
                .insert_header("anthropic-ratelimit-requests-remaining", "49")
                .insert_header("anthropic-ratelimit-requests-reset", reset)
                .insert_header("anthropic-ratelimit-tokens-limit", "80000")
                .insert_header("anthropic-ratelimit-tokens-remaining", "79000")
                .insert_header("anthropic-ratelimit-tokens-reset", "2000-01-01T00:00:00Z"),
        )
        .expect(1)
        .mount(&server)
        .await;

    let done = client().complete(&endpoint(ProviderKind::Anthropic, &server.uri(), &env), &request()).await.unwrap();
    assert_eq!(done.text, r#"{"findings":[]}"#);
    assert_eq!((done.usage.prompt_tokens, done.usage.completion_tokens), (200, 12));
    assert_eq!((done.rate.limit_requests, done.rate.remaining_requests), (Some(50), Some(49)));
    assert!(done.rate.reset_requests.unwrap() > Duration::from_secs(60 * 365 * 24 * 3600), "RFC 3339 reset, from now");
    assert_eq!((done.rate.limit_tokens, done.rate.remaining_tokens), (Some(80000), Some(79000)));
    assert_eq!(done.rate.reset_tokens, Some(Duration::ZERO));

    let sent = only_request(&server).await;
    assert!(sent.headers.get("authorization").is_none());
    let body: Value = sent.body_json().unwrap();
    // No JSON mode in the messages API: the schema is not sent, the prompt states it.
    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-5",
            "system": SYSTEM,
            "max_tokens": 256,
            "messages": [{"role": "user", "content": USER}],
            "temperature": 0
        })
    );
}

#[tokio::test]
async fn anthropic_rate_limit() {
    let body = json!({"type": "error", "error": {"type": "rate_limit_error", "message": "This request would exceed the rate limit for your organization"}});
    let err = call(
        ProviderKind::Anthropic,
        ResponseTemplate::new(429).set_body_json(body).insert_header("retry-after", "12"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, LlmError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(12)),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn anthropic_overloaded_529() {
    let body = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    let err = call(ProviderKind::Anthropic, ResponseTemplate::new(529).set_body_json(body)).await.unwrap_err();
    assert_eq!(err, LlmError::Overloaded { status: 529, retry_after: None });
    assert!(err.is_retryable());
}

#[tokio::test]
async fn anthropic_billing_is_quota_exhausted() {
    let cases = [
        (
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
        ),
        (
            400,
            "invalid_request_error",
            "You have reached your specified API usage limits. You will regain access on 2099-01-01 at 00:00 UTC.",
        ),
        (402, "billing_error", "Payment required"),
    ];
    for (status, kind, message) in cases {
        let body = json!({"type": "error", "error": {"type": kind, "message": message}});
        let err = call(ProviderKind::Anthropic, ResponseTemplate::new(status).set_body_json(body)).await.unwrap_err();
        assert!(matches!(err, LlmError::QuotaExhausted { .. }), "{status} {kind}: {err:?}");
        assert!(!err.is_retryable());
    }
}

#[tokio::test]
async fn anthropic_auth_and_bad_request() {
    let body = json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}});
    let err = call(ProviderKind::Anthropic, ResponseTemplate::new(401).set_body_json(body)).await.unwrap_err();
    assert_eq!(err, LlmError::Auth { status: 401, message: "invalid x-api-key".into() });

    let body =
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: 999999 > 64000"}});
    let err = call(ProviderKind::Anthropic, ResponseTemplate::new(400).set_body_json(body)).await.unwrap_err();
    assert!(matches!(err, LlmError::BadRequest { status: 400, .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Gemini
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn gemini_request_shape_and_reply() {
    let key = unique_key("gemini-shape");
    let env = key_var(&key);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1beta/models/gemini-2.5-flash:generateContent"))
        .and(header("x-goog-api-key", key.as_str()))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body(ProviderKind::Gemini, r#"{"findings":[]}"#)))
        .expect(1)
        .mount(&server)
        .await;

    let done = client().complete(&endpoint(ProviderKind::Gemini, &server.uri(), &env), &request()).await.unwrap();
    assert_eq!(done.text, r#"{"findings":[]}"#);
    assert_eq!((done.usage.prompt_tokens, done.usage.completion_tokens), (120, 30));

    let sent = only_request(&server).await;
    assert_eq!(sent.url.query(), None, "the key goes in a header, never the URL");
    assert!(sent.headers.get("authorization").is_none());
    let body: Value = sent.body_json().unwrap();
    assert_eq!(
        body,
        json!({
            "systemInstruction": {"parts": [{"text": SYSTEM}]},
            "contents": [{"role": "user", "parts": [{"text": USER}]}],
            "generationConfig": {
                "responseMimeType": "application/json",
                // $schema and additionalProperties dropped, types in Gemini's spelling.
                "responseSchema": {
                    "type": "OBJECT",
                    "required": ["findings"],
                    "properties": {"findings": {"type": "ARRAY", "items": {
                        "type": "OBJECT",
                        "required": ["line", "message"],
                        "properties": {"line": {"type": "INTEGER"}, "message": {"type": "STRING"}}
                    }}}
                },
                "maxOutputTokens": 256,
                "temperature": 0
            }
        })
    );
}

#[tokio::test]
async fn gemini_resource_exhausted_uses_retry_info() {
    let body = json!({"error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests"}]},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": []},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"}
        ]
    }});
    let err = call(ProviderKind::Gemini, ResponseTemplate::new(429).set_body_json(body)).await.unwrap_err();
    let LlmError::RateLimited { retry_after, rate } = &err else { panic!("{err:?}") };
    assert_eq!(*retry_after, Some(Duration::from_secs(30)));
    assert_eq!(rate.retry_after, Some(Duration::from_secs(30)));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn gemini_unavailable_is_overloaded() {
    let body = json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}});
    let err = call(ProviderKind::Gemini, ResponseTemplate::new(503).set_body_json(body)).await.unwrap_err();
    assert_eq!(err, LlmError::Overloaded { status: 503, retry_after: None });
    assert!(err.is_retryable());
}

#[tokio::test]
async fn gemini_auth_errors() {
    let body = json!({"error": {"code": 403, "message": "Method doesn't allow unregistered callers.", "status": "PERMISSION_DENIED"}});
    let err = call(ProviderKind::Gemini, ResponseTemplate::new(403).set_body_json(body)).await.unwrap_err();
    assert!(matches!(err, LlmError::Auth { status: 403, .. }), "{err:?}");

    let body = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}});
    let err = call(ProviderKind::Gemini, ResponseTemplate::new(400).set_body_json(body)).await.unwrap_err();
    assert!(matches!(err, LlmError::Auth { status: 400, .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Every vendor
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_vendor_401_is_auth() {
    for kind in ALL {
        let err = call(kind, ResponseTemplate::new(401).set_body_json(json!({"error": {"message": "bad key"}})))
            .await
            .unwrap_err();
        assert!(matches!(err, LlmError::Auth { status: 401, .. }), "{kind}: {err:?}");
    }
}

#[tokio::test]
async fn every_vendor_garbage_reply_is_invalid_response() {
    for kind in ALL {
        for garbage in [&b"<html>hello</html>"[..], b"{\"unexpected\": true}", b"\xff\xfe\x00garbage", b""] {
            let err =
                call(kind, ResponseTemplate::new(200).set_body_raw(garbage, "application/json")).await.unwrap_err();
            assert!(matches!(err, LlmError::InvalidResponse(_)), "{kind} {garbage:?}: {err:?}");
            assert!(!err.is_retryable());
        }
    }
}

#[tokio::test]
async fn every_vendor_huge_reply_is_refused() {
    let mut huge = ok_body(ProviderKind::OpenAi, &"x".repeat(5 << 20)).to_string().into_bytes();
    huge.truncate(5 << 20);
    for kind in ALL {
        let err =
            call(kind, ResponseTemplate::new(200).set_body_raw(huge.clone(), "application/json")).await.unwrap_err();
        assert_eq!(err, LlmError::InvalidResponse("the reply is larger than 4 MiB".into()), "{kind}");
    }
}

#[tokio::test]
async fn every_vendor_slow_server_times_out() {
    for kind in ALL {
        let server =
            serve(ResponseTemplate::new(200).set_body_json(ok_body(kind, "{}")).set_delay(Duration::from_secs(5)))
                .await;
        let env = key_var(&unique_key("slow"));
        let e = Endpoint { timeout: Duration::from_millis(300), ..endpoint(kind, &server.uri(), &env) };
        let started = Instant::now();
        let err = client().complete(&e, &request()).await.unwrap_err();
        assert_eq!(err, LlmError::Timeout, "{kind}");
        assert!(started.elapsed() < Duration::from_secs(3), "{kind}: gave up at the timeout, not the reply");
        assert!(err.is_retryable());
    }
}

#[tokio::test]
async fn every_vendor_connection_refused_is_connect() {
    // A port that was just free and now has no listener.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let env = key_var(&unique_key("refused"));
    for kind in ALL {
        let e = endpoint(kind, &format!("http://127.0.0.1:{port}"), &env);
        let err = client().complete(&e, &request()).await.unwrap_err();
        assert!(matches!(&err, LlmError::Connect(msg) if !msg.is_empty()), "{kind}: {err:?}");
        assert!(err.is_retryable());
    }
}

#[tokio::test]
async fn anthropic_and_gemini_without_key_send_nothing() {
    let server = serve(ResponseTemplate::new(200)).await;
    for kind in [ProviderKind::Anthropic, ProviderKind::Gemini] {
        let env = format!("REVIEW_LSP_TEST_KEY_UNSET_{}", kind.as_str().to_uppercase());
        let err = client().complete(&endpoint(kind, &server.uri(), &env), &request()).await.unwrap_err();
        assert_eq!(err, LlmError::MissingKey { env }, "{kind}");
        let err = client().complete(&endpoint(kind, &server.uri(), ""), &request()).await.unwrap_err();
        assert_eq!(err, LlmError::MissingKey { env: String::new() }, "{kind}");
    }
    assert!(server.received_requests().await.unwrap().is_empty(), "no request without a key");
}

#[tokio::test]
async fn one_client_serves_every_vendor() {
    let client = client();
    let clone = client.clone();
    for (i, kind) in ALL.into_iter().enumerate() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(call_path(kind)))
            .respond_with(ResponseTemplate::new(200).set_body_json(ok_body(kind, &format!("reply {i}"))))
            .expect(1)
            .mount(&server)
            .await;
        let env = key_var(&unique_key("shared"));
        let c = if i % 2 == 0 { &client } else { &clone };
        assert_eq!(
            c.complete(&endpoint(kind, &server.uri(), &env), &request()).await.unwrap().text,
            format!("reply {i}")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Logs: the key never, the prompt never, the numbers yes
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged in this test binary from now on, at TRACE, from every crate (reqwest's
/// `log` records included, as in the real server). Global, because the HTTP stack logs from
/// whatever thread polls it.
fn capture_logs() -> Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            let writer = capture.clone();
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .try_init()
                .expect("no other subscriber in this test binary");
            capture
        })
        .clone()
}

#[tokio::test]
async fn the_key_never_reaches_the_logs() {
    let capture = capture_logs();
    let client = client();
    let mut keys = Vec::new();
    for kind in ALL {
        let key = unique_key(&format!("logged-{kind}"));
        let env = key_var(&key);
        keys.push(key.clone());
        // A success, then an error whose body echoes the key.
        let ok = serve(ResponseTemplate::new(200).set_body_json(ok_body(kind, "{}"))).await;
        client.complete(&endpoint(kind, &ok.uri(), &env), &request()).await.unwrap();
        let echo =
            json!({"error": {"message": format!("Incorrect API key provided: {key}"), "type": "authentication_error"}});
        let bad = serve(ResponseTemplate::new(401).set_body_json(echo)).await;
        let err = client.complete(&endpoint(kind, &bad.uri(), &env), &request()).await.unwrap_err();
        assert!(matches!(err, LlmError::Auth { .. }));
    }

    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    // The capture works: our debug lines are there, with the numbers.
    for kind in ALL {
        assert!(logs.contains(&format!("vendor=\"{kind}\"")) || logs.contains(&format!("vendor={kind}")), "{logs}");
    }
    assert!(
        logs.contains("llm call done") && logs.contains("prompt_tokens=120") && logs.contains("completion_tokens=30")
    );
    assert!(logs.contains("llm call failed"));
    for key in &keys {
        assert!(!logs.contains(key.as_str()), "key {key} appears in the logs");
    }
    let ours: Vec<&str> = logs.lines().filter(|l| l.contains("review_lsp")).collect();
    assert!(!ours.is_empty());
    for line in ours {
        assert!(!line.contains("PROMPT-MARKER"), "prompt text logged: {line}");
    }
}

/// Issue 13 point 5: a key bound for plain http off this machine is refused before any
/// connection (192.0.2.1 is a documentation address nothing answers: had a connection been
/// tried, the call would end in a timeout or connect error, not this one, and much later).
#[tokio::test]
async fn a_key_is_never_sent_over_plain_http_off_this_machine() {
    let env = key_var(&unique_key("plain-http"));
    let remote = endpoint(ProviderKind::OpenAi, "http://192.0.2.1", &env);
    let started = Instant::now();
    let err = client().complete(&remote, &request()).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err, LlmError::InsecureEndpoint { host: "192.0.2.1".into() });
    assert!(err.to_string().contains("192.0.2.1"), "the error names the host: {err}");
    assert!(!err.is_retryable(), "a configuration error is not retried");
    assert_eq!(err.kind(), "config");
    assert!(took < Duration::from_secs(1), "refused before connecting, in {took:?}");
    // The same key over plain http to loopback is fine.
    let server = serve(ResponseTemplate::new(200).set_body_json(ok_body(ProviderKind::OpenAi, "{}"))).await;
    let local = endpoint(ProviderKind::OpenAi, &server.uri(), &env);
    assert_eq!(client().complete(&local, &request()).await.unwrap().text, "{}");
    assert!(only_request(&server).await.headers.get("authorization").is_some());
}

/// Issue 13 point 5: OPENAI_API_KEY / ANTHROPIC_API_KEY go only to their vendor's host unless
/// the user chose the endpoint. Chosen behaviour: an OpenAI-compatible call goes out WITHOUT
/// the key (the loopback mock sees no Authorization header); a vendor that needs a key gets no
/// request at all and a configuration error naming the host.
#[tokio::test]
async fn a_vendor_default_key_goes_only_to_that_vendor() {
    let (openai_key, anthropic_key) = (unique_key("openai-default"), unique_key("anthropic-default"));
    // SAFETY: only this test reads these variables in this process (the others use their own).
    unsafe {
        std::env::set_var("OPENAI_API_KEY", &openai_key);
        std::env::set_var("ANTHROPIC_API_KEY", &anthropic_key);
    }
    let server = serve(ResponseTemplate::new(200).set_body_json(ok_body(ProviderKind::OpenAi, "{}"))).await;
    let repo_chosen =
        Endpoint { user_chose_endpoint: false, ..endpoint(ProviderKind::OpenAi, &server.uri(), "OPENAI_API_KEY") };
    assert_eq!(client().complete(&repo_chosen, &request()).await.unwrap().text, "{}");
    let sent = only_request(&server).await;
    assert!(sent.headers.get("authorization").is_none(), "no key sent: {:?}", sent.headers);

    let anthropic = Endpoint {
        user_chose_endpoint: false,
        ..endpoint(ProviderKind::Anthropic, &server.uri(), "ANTHROPIC_API_KEY")
    };
    let err = client().complete(&anthropic, &request()).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::KeyNotForHost { env, host } if env == "ANTHROPIC_API_KEY" && host == "127.0.0.1"),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "nothing sent for Anthropic");

    // The user's own choice of endpoint takes the key there.
    let user_chosen = Endpoint { user_chose_endpoint: true, ..repo_chosen };
    client().complete(&user_chosen, &request()).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    let auth = requests[1].headers.get("authorization").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(auth, Some(format!("Bearer {openai_key}")));
}
