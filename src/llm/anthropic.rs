//! Owns the Anthropic messages wire format (`POST {base}/messages`, `anthropic-version:
//! 2023-06-01`) and the meaning of Anthropic's errors.
//!
//! There is no JSON mode in this API version, so `CompletionRequest::json_schema` is not sent:
//! the prompt text states the schema (the prompt module does so for every vendor).

use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use super::{
    CompletionRequest, Endpoint, ErrorInfo, HttpRequest, LlmError, RateHeaders, Usage, classify_status, count,
    header_map, reply_json, secret_header,
};

pub(super) const API_VERSION: &str = "2023-06-01";

pub(super) fn build(endpoint: &Endpoint, req: &CompletionRequest, key: Option<&str>) -> Result<HttpRequest, LlmError> {
    let key = key.ok_or_else(|| LlmError::MissingKey { env: endpoint.api_key_env.clone() })?;
    let mut body = json!({
        "model": endpoint.model,
        "max_tokens": req.max_output_tokens,
        "messages": [{"role": "user", "content": req.user}],
        "temperature": 0,
    });
    // An empty system prompt is left out rather than sent as "", which the API may reject.
    if !req.system.is_empty() {
        body["system"] = json!(req.system);
    }
    let headers =
        header_map(&[("x-api-key", secret_header(key)?), ("anthropic-version", HeaderValue::from_static(API_VERSION))]);
    Ok(HttpRequest { url: format!("{}/messages", endpoint.base()), headers, body })
}

pub(super) fn parse_reply(body: &[u8]) -> Result<(String, Usage), LlmError> {
    let reply = reply_json(body)?;
    let blocks = reply
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| LlmError::InvalidResponse("the reply has no content array".into()))?;
    let texts: Vec<&str> = blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    if texts.is_empty() {
        let stop = reply.get("stop_reason").and_then(Value::as_str).unwrap_or("unknown");
        return Err(LlmError::InvalidResponse(format!("the reply has no text block (stop_reason {stop})")));
    }
    // Prompt caching splits input into three counters; all three are prompt tokens.
    let usage = Usage {
        prompt_tokens: count(&reply, "/usage/input_tokens")
            + count(&reply, "/usage/cache_creation_input_tokens")
            + count(&reply, "/usage/cache_read_input_tokens"),
        completion_tokens: count(&reply, "/usage/output_tokens"),
    };
    Ok((texts.concat(), usage))
}

pub(super) fn classify(status: StatusCode, info: ErrorInfo, rate: RateHeaders) -> LlmError {
    // Billing problems come as 400 invalid_request_error ("Your credit balance is too low…",
    // "You have reached your specified API usage limits…"), 402 or 403; none will pass on retry.
    let billing = info.is("billing_error")
        || (matches!(status.as_u16(), 400 | 402 | 403 | 429) && mentions_billing(&info.message));
    if billing {
        return LlmError::QuotaExhausted { message: info.message };
    }
    if status.as_u16() == 529 || info.is("overloaded_error") {
        return LlmError::Overloaded { status: status.as_u16(), retry_after: rate.retry_after };
    }
    classify_status(status, info, rate)
}

fn mentions_billing(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["credit balance", "billing", "spend limit", "usage limit", "purchase credits"].iter().any(|m| message.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ProviderKind;

    fn info(status: StatusCode, body: &str) -> ErrorInfo {
        ErrorInfo::parse(status, body.as_bytes())
    }

    fn error(status: u16, kind: &str, message: &str) -> LlmError {
        let status = StatusCode::from_u16(status).unwrap();
        let body = json!({"type": "error", "error": {"type": kind, "message": message}}).to_string();
        classify(status, info(status, &body), RateHeaders::default())
    }

    #[test]
    fn request_shape() {
        let e = Endpoint::new(ProviderKind::Anthropic, "claude-sonnet-4-5");
        let req =
            CompletionRequest { system: String::new(), user: "u".into(), max_output_tokens: 9, json_schema: json!({}) };
        let r = build(&e, &req, Some("k")).unwrap();
        assert_eq!(r.url, "https://api.anthropic.com/v1/messages");
        assert!(r.body.get("system").is_none());
        assert!(r.body.get("response_format").is_none());
        assert_eq!(r.headers["anthropic-version"], API_VERSION);
        assert!(r.headers["x-api-key"].is_sensitive());
    }

    #[test]
    fn errors() {
        assert!(matches!(error(429, "rate_limit_error", "slow down"), LlmError::RateLimited { .. }));
        assert!(matches!(error(529, "overloaded_error", "Overloaded"), LlmError::Overloaded { status: 529, .. }));
        assert!(matches!(error(500, "api_error", "oops"), LlmError::Server { status: 500, .. }));
        assert!(matches!(error(401, "authentication_error", "invalid x-api-key"), LlmError::Auth { status: 401, .. }));
        assert!(matches!(error(403, "permission_error", "no"), LlmError::Auth { status: 403, .. }));
        assert!(matches!(
            error(400, "invalid_request_error", "max_tokens too big"),
            LlmError::BadRequest { status: 400, .. }
        ));
        for (status, kind, message) in [
            (400, "invalid_request_error", "Your credit balance is too low to access the Anthropic API."),
            (400, "invalid_request_error", "You have reached your specified API usage limits."),
            (403, "permission_error", "Your organization has hit its monthly spend limit"),
            (402, "billing_error", "Payment required"),
            (500, "billing_error", "anything"),
        ] {
            let err = error(status, kind, message);
            assert!(matches!(err, LlmError::QuotaExhausted { .. }), "{status} {kind}: {err:?}");
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn replies() {
        let ok = br#"{"content":[{"type":"text","text":"{\"a\":"},{"type":"tool_use"},{"type":"text","text":"1}"}],
            "stop_reason":"end_turn","usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":7}}"#;
        assert_eq!(parse_reply(ok).unwrap(), ("{\"a\":1}".into(), Usage { prompt_tokens: 15, completion_tokens: 7 }));
        let empty = br#"{"content":[],"stop_reason":"refusal"}"#;
        assert_eq!(
            parse_reply(empty),
            Err(LlmError::InvalidResponse("the reply has no text block (stop_reason refusal)".into()))
        );
        assert!(matches!(parse_reply(br#"{"id":"x"}"#), Err(LlmError::InvalidResponse(_))));
    }
}
