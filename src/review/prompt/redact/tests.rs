//! Unit tests of redaction: provider formats, secret names in every syntax, private keys,
//! URL passwords, entropy, what is left alone, and that logs never carry the value.

use super::*;

fn kinds(text: &str) -> Vec<&'static str> {
    redact(text).1.into_iter().map(|r| r.kind).collect()
}

#[test]
fn provider_formats_are_redacted_with_their_kind() {
    let (out, found) =
        redact("key = get('AKIAIOSFODNN7EXAMPLE')\nt = f(\"ghp_0123456789abcdefABCDEF0123456789abcd\")\n");
    assert_eq!(out, "key = get('<REDACTED:aws-access-key>')\nt = f(\"<REDACTED:github-token>\")\n");
    assert_eq!(found, vec![Redaction { kind: "aws-access-key", line: 0 }, Redaction { kind: "github-token", line: 1 }]);
    assert_eq!(kinds("x('sk-ant-api03-AbCdEf0123456789_abcdefGHIJ')"), vec!["anthropic-key"]);
    assert_eq!(kinds("x('sk-proj-AbCdEf0123456789abcdefGHIJklmn')"), vec!["openai-key"]);
    assert!(kinds("className = 'sk-loading-spinner-container-large'").is_empty());
    // Found by tests/stress_security.rs: secrets inside longer strings and call arguments.
    for (text, kind) in [
        ("req.Header.Set(\"Authorization\", \"Bearer Zt5Wq8Lm2Xv7Rk4Np9Bc3Hy6\")", "bearer-token"),
        ("c = \"curl -H 'Authorization: Bearer Ny3Kp8Vw2Lq7Xm5Rz9Ht4'\"", "bearer-token"),
        (
            "c = \"DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Zm9vYmFyQmF6UXV4eDEyMzQ1Njc4OTA=;\"",
            "azure-key",
        ),
        ("c = \"Endpoint=sb://x.servicebus.windows.net/;SharedAccessKey=q9Lm2Xv7Rk4Np8Bc3Hy6Jd1Fg0Sa=\"", "azure-key"),
        ("client(\"SK2b7c9d4e1f3a5b8c0d6e2f4a7b9c1d3e\", sid)", "twilio-key"),
        ("heroku.New(\"HRKU-AAq9Lm2Xv7Rk4Np8Bc3Hy6Jd1Fg0SaZt5Wq8Lm2Xv7Rk4Np8Bc3Hy6Jd1Fg0\")", "heroku-key"),
    ] {
        let (out, found) = redact(text);
        assert_eq!(found.iter().map(|r| r.kind).collect::<Vec<_>>(), vec![kind], "{text} -> {out}");
    }
    assert!(kinds("msg = \"use Bearer authentication here\"").is_empty());
    assert!(kinds("h = \"Bearer \" + token").is_empty());
}

#[test]
fn secret_names_redact_their_literals_in_every_syntax() {
    for line in [
        "password = \"hunter2!\"",
        "self.db_password: str = 'hunter2!'",
        "{\"apiKey\": \"hunter2!\"}",
        "const authToken = `hunter2!`;",
        "dbPassword := \"hunter2!\"",
        "var clientSecret string = \"hunter2!\"",
        "const API_KEY: &str = \"hunter2!\";",
        "let password = String::from(\"hunter2!\");",
        "creds: Dict[str, str] = {\"password\": \"hunter2!\"}",
        "if password == \"hunter2!\":",
    ] {
        let (out, found) = redact(line);
        assert!(!out.contains("hunter2"), "{line} -> {out}");
        assert_eq!(found.len(), 1, "{line}");
    }
}

#[test]
fn names_about_a_secret_and_template_values_are_left_alone() {
    for line in [
        "token_type = \"bearer\"",
        "password_prompt = \"Enter password\"",
        "author = \"Jane Doe\"",
        "PASSWORD_FIELD = \"password\"",
        "password = \"\"",
        "password = \"${DB_PASSWORD}\"",
        "tokenizer = \"whitespace\"",
        "url = f\"postgres://{user}:{pw}@{host}/db\"",
        "if token == \"lambda\":",
        "auth = \"Basic \" + b64(user_pass)",
        "SERVER_AUTH = '1.3.6.1.5.5.7.3.1'",
        "passwd = getpass.getpass(\"Enter password for %s: \" % host)",
        "_HEX = frozenset('0123456789ABCDEFabcdef')",
        "{'MODULE_PWD_STATE': 'yes'}",
        "'RUNSHARED': 'LD_LIBRARY_PATH=/tmp/python-build.20260509073455.222/Python-3.11.7'",
        "OLDSTYLE_AUTH = re.compile(r\"auth=(.*)\", re.I)",
        "set({ tfa: { password: password, mode: 'disable' } })",
        "extra_token = tokenizer.expect(\"IDENTIFIER\")",
        "CustomAuthRange: 'Custom auth must be a value between 0x80 and 0xFE.',",
        "const USE_CREDENTIALS = 'use-credentials'",
        "password = getpass('Password: ')",
        "key=\"-----BEGIN PRIVATE KEY-----\\nXXXX\\n-----END PRIVATE KEY-----\"",
    ] {
        assert!(kinds(line).is_empty(), "{line}: {:?}", kinds(line));
    }
}

#[test]
fn private_key_blocks_keep_their_line_count() {
    let text = "KEY = \"\"\"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1\nabcDEF123\n-----END RSA PRIVATE KEY-----\"\"\"\nx = 1\n";
    let (out, found) = redact(text);
    assert_eq!(out.lines().count(), text.lines().count());
    assert!(!out.contains("MIIE") && !out.contains("abcDEF"), "{out}");
    assert_eq!(found, vec![Redaction { kind: "private-key", line: 0 }]);
    assert!(out.contains("<REDACTED:private-key>\n\n-----END"));
}

#[test]
fn urls_lose_only_their_password() {
    let (out, _) = redact("DB = \"postgres://admin:s3cr3t@db.internal:5432/app\"");
    assert_eq!(out, "DB = \"postgres://admin:<REDACTED:connection-password>@db.internal:5432/app\"");
}

#[test]
fn entropy_catches_keys_not_digests_uuids_or_words() {
    assert!(high_entropy("q8Zt3LmR7vXw2Kp9NbYc4HdJ"));
    assert!(high_entropy("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
    for normal in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "550e8400-e29b-41d4-a716-446655440000",
        "SomeLongClassName123Handler",
        "SGVsbG8sIFdvcmxkISBIb3cgYXJlIHlvdT8=",
        "application/json",
        "TestUserRepository_v2",
    ] {
        assert!(!high_entropy(normal), "{normal}");
    }
}

#[test]
fn the_debug_log_names_kind_and_line_never_the_value() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let mut lines = vec![(40, "x = 1".to_string()), (41, "db_password = 'Tr0ub4dor&3'".to_string())];
    tracing::subscriber::with_default(subscriber, || redact_lines(&mut lines));
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("kind=\"password\"") && log.contains("line=42"), "{log}");
    assert!(!log.contains("Tr0ub4dor"), "{log}");
}

#[test]
fn numbered_lines_report_original_numbers() {
    let mut lines = vec![(4, "a = 1".to_string()), (9, "secret = 'p4ss-w0rd'".to_string())];
    let found = redact_lines(&mut lines);
    assert_eq!(found, vec![Redaction { kind: "secret", line: 9 }]);
    assert_eq!(lines[1].1, "secret = '<REDACTED:secret>'");
}
