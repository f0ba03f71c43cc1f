//! Owns the OpenAI chat-completions wire format (`POST {base}/chat/completions`), which
//! OpenAI-compatible servers (Ollama, vLLM, LM Studio, llama.cpp, gateways) speak too.
//!
//! Two choices keep one format working on both:
//! - The output cap is `max_completion_tokens` at OpenAI itself (its reasoning models reject
//!   `max_tokens`) and `max_tokens` everywhere else (the field every compatible server reads;
//!   several ignore or reject the newer one).
//! - `temperature: 0` is sent except to OpenAI reasoning model families (o1, o3, o4, gpt-5),
//!   which accept only the default and answer 400 to anything else.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    CompletionRequest, Endpoint, ErrorInfo, HttpRequest, LlmError, RateHeaders, Usage, classify_status, count,
    header_map, reply_json, secret_header,
};

pub(super) fn build(endpoint: &Endpoint, req: &CompletionRequest, key: Option<&str>) -> Result<HttpRequest, LlmError> {
    let mut body = json!({
        "model": endpoint.model,
        "messages": [
            {"role": "system", "content": req.system},
            {"role": "user", "content": req.user},
        ],
    });
    let max_field = if endpoint.is_vendor_default() { "max_completion_tokens" } else { "max_tokens" };
    body[max_field] = json!(req.max_output_tokens);
    if !is_reasoning_model(&endpoint.model) {
        body["temperature"] = json!(0);
    }
    if !req.json_schema.is_null() {
        body["response_format"] = json!({
            "type": "json_schema",
            "json_schema": {"name": "review", "schema": req.json_schema, "strict": true},
        });
    }
    // No key: keyless local server (see `read_key`); send no Authorization at all, since some
    // servers reject `Bearer ` with an empty token.
    let headers = match key {
        Some(key) => header_map(&[("authorization", secret_header(&format!("Bearer {key}"))?)]),
        None => Default::default(),
    };
    Ok(HttpRequest { url: format!("{}/chat/completions", endpoint.base()), headers, body })
}

/// OpenAI models that only take the default temperature. Matched on the name after any
/// gateway prefix (`openai/o3-mini`).
fn is_reasoning_model(model: &str) -> bool {
    let name = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase();
    ["o1", "o3", "o4", "gpt-5"].iter().any(|family| {
        name.strip_prefix(family).is_some_and(|rest| rest.is_empty() || rest.starts_with('-') || rest.starts_with('.'))
    })
}

pub(super) fn parse_reply(body: &[u8]) -> Result<(String, Usage), LlmError> {
    let reply = reply_json(body)?;
    let message = reply
        .pointer("/choices/0/message")
        .ok_or_else(|| LlmError::InvalidResponse("the reply has no choices[0].message".into()))?;
    let text = match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        // Some compatible servers send content as parts, like the request format allows.
        Some(Value::Array(parts)) => parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect(),
        _ => {
            return Err(match message.get("refusal").and_then(Value::as_str) {
                Some(refusal) => LlmError::InvalidResponse(format!("the model refused: {refusal}")),
                None => LlmError::InvalidResponse("the reply has no choices[0].message.content".into()),
            });
        }
    };
    let usage = Usage {
        prompt_tokens: count(&reply, "/usage/prompt_tokens"),
        completion_tokens: count(&reply, "/usage/completion_tokens"),
    };
    Ok((text, usage))
}

pub(super) fn classify(status: StatusCode, info: ErrorInfo, rate: RateHeaders) -> LlmError {
    // OpenAI sends 429 both for "slow down" and for "out of money"; only the code tells them apart.
    if status == StatusCode::TOO_MANY_REQUESTS && info.is("insufficient_quota") {
        return LlmError::QuotaExhausted { message: info.message };
    }
    classify_status(status, info, rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ProviderKind;

    fn req() -> CompletionRequest {
        CompletionRequest {
            system: "sys".into(),
            user: "usr".into(),
            max_output_tokens: 512,
            json_schema: json!({"type": "object"}),
        }
    }

    #[test]
    fn openai_itself_gets_max_completion_tokens() {
        let e = Endpoint::new(ProviderKind::OpenAi, "gpt-4.1-mini");
        let r = build(&e, &req(), Some("k")).unwrap();
        assert_eq!(r.url, "https://api.openai.com/v1/chat/completions");
        assert_eq!(r.body["max_completion_tokens"], 512);
        assert!(r.body.get("max_tokens").is_none());
        assert_eq!(r.body["temperature"], 0);
        assert_eq!(r.headers["authorization"], "Bearer k");
        assert!(r.headers["authorization"].is_sensitive());
    }

    #[test]
    fn compatible_servers_get_max_tokens() {
        let e =
            Endpoint { base_url: "http://localhost:11434/v1/".into(), ..Endpoint::new(ProviderKind::OpenAi, "qwen") };
        let r = build(&e, &req(), None).unwrap();
        assert_eq!(r.url, "http://localhost:11434/v1/chat/completions");
        assert_eq!(r.body["max_tokens"], 512);
        assert!(r.body.get("max_completion_tokens").is_none());
        assert!(r.headers.is_empty());
    }

    #[test]
    fn reasoning_models_get_no_temperature() {
        for model in ["o1", "o3-mini", "o4-mini-2025-04-16", "gpt-5", "gpt-5-mini", "openai/o3", "GPT-5.1"] {
            assert!(is_reasoning_model(model), "{model}");
        }
        for model in ["gpt-4o", "gpt-4.1", "ollama3", "o1x", "llama3.1:8b", "gpt-50"] {
            assert!(!is_reasoning_model(model), "{model}");
        }
        let r = build(&Endpoint::new(ProviderKind::OpenAi, "o3-mini"), &req(), Some("k")).unwrap();
        assert!(r.body.get("temperature").is_none());
    }

    #[test]
    fn null_schema_means_free_text() {
        let r = build(
            &Endpoint::new(ProviderKind::OpenAi, "gpt-4.1"),
            &CompletionRequest { json_schema: Value::Null, ..req() },
            Some("k"),
        )
        .unwrap();
        assert!(r.body.get("response_format").is_none());
    }

    #[test]
    fn replies() {
        let ok = br#"{"choices":[{"message":{"role":"assistant","content":"{}"}}],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#;
        assert_eq!(parse_reply(ok).unwrap(), ("{}".into(), Usage { prompt_tokens: 3, completion_tokens: 4 }));
        let no_usage = br#"{"choices":[{"message":{"content":"x"}}]}"#;
        assert_eq!(parse_reply(no_usage).unwrap().1, Usage::default());
        let refused = br#"{"choices":[{"message":{"content":null,"refusal":"no"}}]}"#;
        assert_eq!(parse_reply(refused), Err(LlmError::InvalidResponse("the model refused: no".into())));
        assert!(matches!(parse_reply(br#"{"choices":[]}"#), Err(LlmError::InvalidResponse(_))));
        assert!(matches!(parse_reply(b"not json"), Err(LlmError::InvalidResponse(_))));
    }
}
