//! Owns where an API key may go. Two rules, checked before any connection is made:
//! - a key never travels over plain `http` except to a loopback address (127.0.0.0/8, `::1`,
//!   `localhost`): anyone on the path could read it;
//! - a vendor's default key variable (`OPENAI_API_KEY`, ...) goes only to that vendor's own
//!   host, unless the user chose the endpoint ([`Endpoint::user_chose_endpoint`]): a
//!   repository's settings must not be able to point the user's OpenAI key at another server.

use std::net::IpAddr;

use reqwest::Url;

use super::{Endpoint, LlmError, ProviderKind};

/// The host of `base_url`, for messages (`api.openai.com`, `127.0.0.1`); the URL itself when
/// it has none.
pub fn host(base_url: &str) -> String {
    match Url::parse(base_url.trim()) {
        Ok(url) => url.host_str().unwrap_or(base_url).to_string(),
        Err(_) => base_url.to_string(),
    }
}

/// Whether `base_url` names this machine: `localhost`, 127.0.0.0/8 or `::1` (also as an
/// IPv4-mapped address). Decided from the URL alone, never by resolving a name.
pub fn is_loopback(base_url: &str) -> bool {
    let Ok(url) = Url::parse(base_url.trim()) else { return false };
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).to_canonical().is_loopback(),
        None => false,
    }
}

/// The vendor whose default key variable `env` is, if it is one.
fn vendor_of_default_key(env: &str) -> Option<ProviderKind> {
    ProviderKind::ALL.into_iter().find(|&kind| Endpoint::default_key_env(kind) == env.trim())
}

/// Whether `base_url` is `vendor`'s own service: https and the host of its default URL.
fn is_vendor_host(base_url: &str, vendor: ProviderKind) -> bool {
    let (Ok(url), Ok(own)) = (Url::parse(base_url.trim()), Url::parse(Endpoint::default_base_url(vendor))) else {
        return false;
    };
    url.scheme() == "https" && url.host_str().is_some() && url.host_str() == own.host_str()
}

/// Whether the key in `endpoint.api_key_env` may be sent to `endpoint.base_url` at all. When it
/// may not (a vendor's default variable, a host that is not the vendor's, an endpoint the user
/// did not choose), the call goes out without a key: that is what a local OpenAI-compatible
/// server wants anyway, and the other vendors then stop at a missing key.
pub fn may_carry_default_key(endpoint: &Endpoint) -> bool {
    match vendor_of_default_key(&endpoint.api_key_env) {
        Some(vendor) => endpoint.user_chose_endpoint || is_vendor_host(&endpoint.base_url, vendor),
        None => true,
    }
}

/// Refuses to send a key over plain `http` to anything but loopback. Called only when a key
/// would be sent: a keyless call to a server on the local network carries no secret.
pub fn check_transport(endpoint: &Endpoint) -> Result<(), LlmError> {
    let plain = Url::parse(endpoint.base_url.trim()).map(|url| url.scheme() == "http").unwrap_or(false);
    if plain && !is_loopback(&endpoint.base_url) {
        return Err(LlmError::InsecureEndpoint { host: crate::escape::line(&host(&endpoint.base_url)).into_owned() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(kind: ProviderKind, base_url: &str, env: &str) -> Endpoint {
        Endpoint { base_url: base_url.into(), api_key_env: env.into(), ..Endpoint::new(kind, "m") }
    }

    #[test]
    fn loopback_is_decided_from_the_url() {
        for url in [
            "http://localhost:11434/v1",
            "http://LOCALHOST/v1",
            "http://127.0.0.1:8080/v1",
            "http://127.1.2.3/v1",
            "http://[::1]:9000/v1",
            "http://[::ffff:127.0.0.1]/v1",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "http://192.0.2.1/v1",
            "http://10.0.0.5/v1",
            "http://localhost.attacker.example/v1",
            "http://127.0.0.1.nip.io/v1",
            "http://[::2]/v1",
            "not a url",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }

    #[test]
    fn a_key_over_plain_http_goes_only_to_loopback() {
        let remote = at(ProviderKind::OpenAi, "http://192.0.2.1/v1", "MY_KEY");
        let err = check_transport(&remote).unwrap_err();
        assert_eq!(err, LlmError::InsecureEndpoint { host: "192.0.2.1".into() });
        assert!(err.to_string().contains("192.0.2.1"), "{err}");
        assert!(!err.is_retryable());
        assert!(check_transport(&at(ProviderKind::OpenAi, "http://127.0.0.1:1/v1", "MY_KEY")).is_ok());
        assert!(check_transport(&at(ProviderKind::OpenAi, "https://gateway.example/v1", "MY_KEY")).is_ok());
    }

    #[test]
    fn default_key_variables_stay_with_their_vendor() {
        assert!(may_carry_default_key(&Endpoint::new(ProviderKind::OpenAi, "m")));
        assert!(may_carry_default_key(&Endpoint::new(ProviderKind::Anthropic, "m")));
        assert!(may_carry_default_key(&Endpoint::new(ProviderKind::Gemini, "m")));
        // Another host, or the vendor's host over http, or another vendor's variable.
        assert!(!may_carry_default_key(&at(ProviderKind::OpenAi, "https://capture.example/v1", "OPENAI_API_KEY")));
        assert!(!may_carry_default_key(&at(ProviderKind::OpenAi, "http://api.openai.com/v1", "OPENAI_API_KEY")));
        assert!(!may_carry_default_key(&at(ProviderKind::OpenAi, "http://127.0.0.1:1/v1", "ANTHROPIC_API_KEY")));
        assert!(!may_carry_default_key(&at(ProviderKind::Anthropic, "https://api.openai.com/v1", "ANTHROPIC_API_KEY")));
        // A variable of the user's own naming, or an endpoint the user chose, is theirs to send.
        assert!(may_carry_default_key(&at(ProviderKind::OpenAi, "https://capture.example/v1", "GATEWAY_KEY")));
        let chosen = Endpoint {
            user_chose_endpoint: true,
            ..at(ProviderKind::OpenAi, "https://gateway.example/v1", "OPENAI_API_KEY")
        };
        assert!(may_carry_default_key(&chosen));
    }

    #[test]
    fn host_names_the_destination() {
        assert_eq!(host("https://api.openai.com/v1"), "api.openai.com");
        assert_eq!(host("http://[::1]:9/v1"), "[::1]");
        assert_eq!(host("garbage"), "garbage");
    }
}
