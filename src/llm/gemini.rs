//! Owns the Gemini `generateContent` wire format (`POST {base}/models/{model}:generateContent`,
//! key in `x-goog-api-key` so it never sits in a URL), Gemini's errors, and the conversion of a
//! JSON Schema into the OpenAPI subset that `responseSchema` accepts.

use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use super::headers::parse_go_duration;
use super::{
    CompletionRequest, Endpoint, ErrorInfo, HttpRequest, LlmError, RateHeaders, Usage, classify_status, count,
    header_map, reply_json, secret_header,
};

const RETRY_INFO: &str = "type.googleapis.com/google.rpc.RetryInfo";

pub(super) fn build(endpoint: &Endpoint, req: &CompletionRequest, key: Option<&str>) -> Result<HttpRequest, LlmError> {
    let key = key.ok_or_else(|| LlmError::MissingKey { env: endpoint.api_key_env.clone() })?;
    // Model names are listed by the API as `models/gemini-…`; accept either spelling.
    let model = endpoint.model.strip_prefix("models/").unwrap_or(&endpoint.model);
    let mut generation = json!({"maxOutputTokens": req.max_output_tokens, "temperature": 0});
    if !req.json_schema.is_null() {
        generation["responseMimeType"] = json!("application/json");
        generation["responseSchema"] = to_gemini_schema(&req.json_schema);
    }
    let mut body = json!({
        "contents": [{"role": "user", "parts": [{"text": req.user}]}],
        "generationConfig": generation,
    });
    if !req.system.is_empty() {
        body["systemInstruction"] = json!({"parts": [{"text": req.system}]});
    }
    let headers = header_map(&[("x-goog-api-key", secret_header(key)?)]);
    Ok(HttpRequest { url: format!("{}/models/{model}:generateContent", endpoint.base()), headers, body })
}

pub(super) fn parse_reply(body: &[u8]) -> Result<(String, Usage), LlmError> {
    let reply = reply_json(body)?;
    if let Some(reason) = reply.pointer("/promptFeedback/blockReason").and_then(Value::as_str) {
        return Err(LlmError::InvalidResponse(format!("the prompt was blocked ({reason})")));
    }
    let candidate = reply
        .pointer("/candidates/0")
        .ok_or_else(|| LlmError::InvalidResponse("the reply has no candidates".into()))?;
    // Thinking models may return their thoughts as parts marked `thought: true`; they are not the answer.
    let texts: Vec<&str> = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|part| part.get("thought").and_then(Value::as_bool) != Some(true))
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .collect();
    if texts.is_empty() {
        let reason = candidate.get("finishReason").and_then(Value::as_str).unwrap_or("unknown");
        return Err(LlmError::InvalidResponse(format!("the reply has no text (finishReason {reason})")));
    }
    let usage = Usage {
        prompt_tokens: count(&reply, "/usageMetadata/promptTokenCount"),
        // Thinking tokens are billed as output, so they count as completion.
        completion_tokens: count(&reply, "/usageMetadata/candidatesTokenCount")
            + count(&reply, "/usageMetadata/thoughtsTokenCount"),
    };
    Ok((texts.concat(), usage))
}

pub(super) fn classify(status: StatusCode, info: ErrorInfo, mut rate: RateHeaders) -> LlmError {
    let details = info.error.get("details").and_then(Value::as_array).cloned().unwrap_or_default();
    // Gemini says when to come back in the body (google.rpc.RetryInfo), not in a header.
    let retry_delay = details
        .iter()
        .find(|d| d.get("@type").and_then(Value::as_str) == Some(RETRY_INFO))
        .and_then(|d| d.get("retryDelay").and_then(Value::as_str))
        .and_then(parse_go_duration);
    rate.retry_after = rate.retry_after.or(retry_delay);

    if status == StatusCode::TOO_MANY_REQUESTS || info.is("RESOURCE_EXHAUSTED") {
        return LlmError::RateLimited { retry_after: rate.retry_after, rate };
    }
    if status == StatusCode::SERVICE_UNAVAILABLE || info.is("UNAVAILABLE") {
        return LlmError::Overloaded { status: status.as_u16(), retry_after: rate.retry_after };
    }
    // A bad key is a 400 INVALID_ARGUMENT whose ErrorInfo detail says API_KEY_INVALID.
    if details.iter().any(|d| d.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID")) {
        return LlmError::Auth { status: status.as_u16(), message: info.message };
    }
    classify_status(status, info, rate)
}

/// Converts a JSON Schema to Gemini's `responseSchema` (a subset of OpenAPI 3.0's Schema):
/// keeps only the keywords Gemini knows, upper-cases types, turns `"type": [T, "null"]` and
/// `anyOf`/`oneOf` with a `null` branch into `nullable`, `const` into a one-value `enum`, and
/// drops what Gemini rejects (`$schema`, `additionalProperties`, `$ref`, non-string enums, …).
/// `$ref` is not resolved: schemas given here must be inline.
pub fn to_gemini_schema(schema: &Value) -> Value {
    let Some(obj) = schema.as_object() else {
        // `true` / `{}`-like schemas: no constraint.
        return Value::Object(Map::new());
    };
    let mut out = Map::new();
    let mut nullable = obj.get("nullable").and_then(Value::as_bool) == Some(true);

    match obj.get("type") {
        Some(Value::String(t)) if t == "null" => nullable = true,
        Some(Value::String(t)) => {
            out.insert("type".into(), json!(t.to_ascii_uppercase()));
        }
        Some(Value::Array(types)) => {
            let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            nullable |= names.contains(&"null");
            // Gemini takes one type; with several, the first non-null one is the best we can say.
            if let Some(t) = names.iter().find(|t| **t != "null") {
                out.insert("type".into(), json!(t.to_ascii_uppercase()));
            }
        }
        _ => {}
    }

    for key in [
        "title",
        "description",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "minProperties",
        "maxProperties",
        "example",
        "propertyOrdering",
    ] {
        if let Some(value) = obj.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    // Gemini rejects formats outside its short list (e.g. schemars' `uint32`).
    let format = obj.get("format").and_then(Value::as_str);
    if let Some(format) = format.filter(|f| ["enum", "date-time", "float", "double", "int32", "int64"].contains(f)) {
        out.insert("format".into(), json!(format));
    }
    let enumeration = match (obj.get("enum"), obj.get("const")) {
        (Some(Value::Array(values)), _) => Some(values.clone()),
        (None, Some(value)) => Some(vec![value.clone()]),
        _ => None,
    };
    // Gemini only has string enums.
    if let Some(values) = enumeration.filter(|values| values.iter().all(Value::is_string)) {
        if !out.contains_key("type") {
            out.insert("type".into(), json!("STRING"));
        }
        out.insert("enum".into(), Value::Array(values));
    }
    if let Some(properties) = obj.get("properties").and_then(Value::as_object) {
        let converted: Map<String, Value> = properties.iter().map(|(k, v)| (k.clone(), to_gemini_schema(v))).collect();
        if let Some(required) = obj.get("required").and_then(Value::as_array) {
            let known: Vec<Value> =
                required.iter().filter(|r| r.as_str().is_some_and(|r| converted.contains_key(r))).cloned().collect();
            out.insert("required".into(), Value::Array(known));
        }
        out.insert("properties".into(), Value::Object(converted));
    }
    if let Some(items) = obj.get("items") {
        out.insert("items".into(), to_gemini_schema(items));
    }
    if let Some(branches) = obj.get("anyOf").or_else(|| obj.get("oneOf")).and_then(Value::as_array) {
        let is_null = |b: &&Value| b.get("type").and_then(Value::as_str) == Some("null");
        nullable |= branches.iter().any(|b| is_null(&b));
        let rest: Vec<Value> = branches.iter().filter(|b| !is_null(b)).map(to_gemini_schema).collect();
        match rest.as_slice() {
            // `anyOf: [X, null]` is how JSON Schema spells "nullable X"; say it Gemini's way.
            [only] => {
                for (k, v) in only.as_object().into_iter().flatten() {
                    out.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            [] => {}
            _ => {
                out.insert("anyOf".into(), Value::Array(rest));
            }
        }
    }
    if nullable {
        out.insert("nullable".into(), json!(true));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ProviderKind;

    #[test]
    fn schema_conversion() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "required": ["findings", "ghost"],
            "properties": {
                "findings": {
                    "type": "array",
                    "maxItems": 50,
                    "items": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["line", "severity", "fix"],
                        "properties": {
                            "line": {"type": "integer", "minimum": 1, "format": "uint32"},
                            "severity": {"type": "string", "enum": ["error", "warning"]},
                            "level": {"type": "integer", "enum": [1, 2]},
                            "kind": {"const": "finding"},
                            "fix": {"type": ["object", "null"], "properties": {"text": {"type": "string"}}},
                            "note": {"anyOf": [{"type": "string", "description": "d"}, {"type": "null"}]},
                            "ref": {"$ref": "#/$defs/x"}
                        }
                    }
                }
            },
            "$defs": {"x": {"type": "string"}}
        });
        let expected = json!({
            "type": "OBJECT",
            "required": ["findings"],
            "properties": {
                "findings": {
                    "type": "ARRAY",
                    "maxItems": 50,
                    "items": {
                        "type": "OBJECT",
                        "required": ["line", "severity", "fix"],
                        "properties": {
                            "line": {"type": "INTEGER", "minimum": 1},
                            "severity": {"type": "STRING", "enum": ["error", "warning"]},
                            "level": {"type": "INTEGER"},
                            "kind": {"type": "STRING", "enum": ["finding"]},
                            "fix": {"type": "OBJECT", "nullable": true, "properties": {"text": {"type": "STRING"}}},
                            "note": {"type": "STRING", "description": "d", "nullable": true},
                            "ref": {}
                        }
                    }
                }
            }
        });
        assert_eq!(to_gemini_schema(&schema), expected);
    }

    #[test]
    fn any_of_with_several_branches_is_kept() {
        let schema = json!({"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]});
        assert_eq!(
            to_gemini_schema(&schema),
            json!({"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}], "nullable": true})
        );
    }

    #[test]
    fn request_shape() {
        let e = Endpoint::new(ProviderKind::Gemini, "models/gemini-2.5-flash");
        let req = CompletionRequest {
            system: "s".into(),
            user: "u".into(),
            max_output_tokens: 7,
            json_schema: json!({"type": "object", "properties": {"a": {"type": "string"}}}),
        };
        let r = build(&e, &req, Some("k")).unwrap();
        assert_eq!(r.url, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent");
        assert_eq!(r.body["generationConfig"]["responseSchema"]["type"], "OBJECT");
        assert!(r.headers["x-goog-api-key"].is_sensitive());
    }

    #[test]
    fn replies() {
        let ok = br#"{"candidates":[{"content":{"parts":[{"text":"plan","thought":true},{"text":"{\"a\":"},{"text":"1}"}]},"finishReason":"STOP"}],
            "usageMetadata":{"promptTokenCount":11,"candidatesTokenCount":5,"thoughtsTokenCount":2}}"#;
        assert_eq!(parse_reply(ok).unwrap(), ("{\"a\":1}".into(), Usage { prompt_tokens: 11, completion_tokens: 7 }));
        let blocked = br#"{"promptFeedback":{"blockReason":"SAFETY"}}"#;
        assert_eq!(parse_reply(blocked), Err(LlmError::InvalidResponse("the prompt was blocked (SAFETY)".into())));
        let empty = br#"{"candidates":[{"finishReason":"MAX_TOKENS"}]}"#;
        assert_eq!(
            parse_reply(empty),
            Err(LlmError::InvalidResponse("the reply has no text (finishReason MAX_TOKENS)".into()))
        );
    }

    #[test]
    fn bad_key_is_auth() {
        let body = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",
            "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        let err =
            classify(StatusCode::BAD_REQUEST, ErrorInfo::parse(StatusCode::BAD_REQUEST, body), RateHeaders::default());
        assert!(matches!(err, LlmError::Auth { status: 400, .. }), "{err:?}");
    }
}
