//! Model hub access. Fake credentials planted to test redaction; none of them is real.

const API_KEY: &str = "k9-internal-api-key-value";
const HF_TOKEN: &str = "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";

/// An inline key, as some tests do.
const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----\nAkg05rK+gqv81RKMGHZEM9YpvujA/C5Q52ryFlwRlOEVHzc0X0AWIRh/JUqBlIFX\n-----END PRIVATE KEY-----\n";

pub fn credentials() -> (String, String) {
    let password = String::from("rust-s3cr3t-pass");
    (API_KEY.to_string(), password)
}

pub fn token() -> &'static str {
    HF_TOKEN
}

pub fn test_key() -> &'static str {
    TEST_KEY
}
