//! Redacts secrets from text before it leaves the machine. Each secret becomes a typed
//! placeholder, `<REDACTED:kind>`, so the model can still say "hard-coded key here", and the
//! text keeps its line count, so line numbers stay true.
//!
//! Two kinds of detectors run over the whole text and their matches are merged:
//! - formats that are secrets wherever they appear (provider key prefixes, JWTs, private
//!   key blocks, passwords inside URLs);
//! - string literals assigned to a secret-sounding name (`password`, `api_key`, `token`…)
//!   or, whatever the name, random-looking enough to be a key (entropy test).
//!
//! Leaking a secret is worse than hiding a harmless string, so overlapping matches are
//! merged into one larger redaction, never trimmed.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use crate::review::prompt::Line;

/// What every placeholder starts with; `reply` treats it as a wildcard when matching quotes.
pub const PLACEHOLDER_PREFIX: &str = "<REDACTED:";

/// One redacted secret: its kind and the 0-based line of the text it started on. The value
/// itself is never kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redaction {
    pub kind: &'static str,
    pub line: u32,
}

/// Secret formats recognised anywhere. The capture group `s` (or the whole match) is the
/// secret; `check` rejects look-alikes the pattern alone cannot tell apart.
struct Format {
    kind: &'static str,
    re: Regex,
    check: fn(&str) -> bool,
}

fn any(_: &str) -> bool {
    true
}

/// Real provider keys mix cases and digits; a hyphenated identifier after `sk-` does not.
fn mixed(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes().any(|b| b.is_ascii_uppercase())
        && s.bytes().any(|b| b.is_ascii_lowercase())
}

/// A token, not a word: `Bearer abcdefghijklmnopq` in prose or docs has no digit.
fn letters_and_digits(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit()) && s.bytes().any(|b| b.is_ascii_alphabetic())
}

/// `${PASSWORD}`, `{pw}`, `%s`, `<password>`, `****`: templates, not secrets.
fn not_template(s: &str) -> bool {
    !(s.starts_with(['$', '{', '%', '<', '*']) || s.chars().all(|c| c == '*' || c == 'x' || c == 'X'))
}

/// A URL's password that is a template or the stock dummy of docs and tests (`user:pass@`).
fn url_password(s: &str) -> bool {
    not_template(s) && !["pass", "password", "passwd", "pwd", "secret"].iter().any(|d| s.eq_ignore_ascii_case(d))
}

static FORMATS: LazyLock<Vec<Format>> = LazyLock::new(|| {
    let f = |kind, re: &str, check| Format { kind, re: Regex::new(re).expect("secret pattern"), check };
    vec![
        f("aws-access-key", r"\b(?P<s>(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16})\b", any),
        f(
            "aws-secret-key",
            r#"(?i)aws_?(?:secret|sk)[a-z_]*["'`]?\s*(?::[^=\n]{0,30})?(?:=|:|=>|:=)\s*[a-z]?["'`](?P<s>[A-Za-z0-9/+]{40})["'`]"#,
            any,
        ),
        f("github-token", r"\b(?P<s>gh[pousr]_[A-Za-z0-9]{36,255})\b", any),
        f("github-token", r"\b(?P<s>github_pat_[A-Za-z0-9_]{22,255})\b", any),
        f("gitlab-token", r"\b(?P<s>glpat-[A-Za-z0-9_-]{20,})", any),
        f("slack-token", r"\b(?P<s>xox[abprse]-[A-Za-z0-9-]{10,})", any),
        f("slack-webhook", r"(?P<s>https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_+-]+)", any),
        f("google-api-key", r"\b(?P<s>AIza[0-9A-Za-z_-]{35})", any),
        // Before the OpenAI pattern: `sk-ant-` would match both.
        f("anthropic-key", r"\b(?P<s>sk-ant-[A-Za-z0-9_-]{20,})", any),
        f("openai-key", r"\b(?P<s>sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,})", mixed),
        f("stripe-key", r"\b(?P<s>(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,})", any),
        f("huggingface-token", r"\b(?P<s>hf_[A-Za-z]{34})\b", any),
        f("npm-token", r"\b(?P<s>npm_[A-Za-z0-9]{36})\b", any),
        f("sendgrid-key", r"\b(?P<s>SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})", any),
        f("jwt", r"\b(?P<s>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)", any),
        // Added after tests/stress_security.rs found these sent verbatim: they sit in call
        // arguments or inside longer strings, where neither a secret name nor the entropy
        // test of a whole literal sees them.
        // `Authorization: Bearer <token>` in a header string or a curl line.
        f("bearer-token", r"(?i)\bbearer[ \t]+(?P<s>[A-Za-z0-9._~+/-]{16,}=*)", letters_and_digits),
        // Azure storage / service bus connection strings: only the key goes.
        f("azure-key", r"\b(?:AccountKey|SharedAccessKey)=(?P<s>[A-Za-z0-9+/]{20,}={0,2})", any),
        f("twilio-key", r"\b(?P<s>SK[0-9a-fA-F]{32})\b", any),
        f("heroku-key", r"\b(?P<s>HRKU-AA[0-9A-Za-z_-]{58,})", any),
        // Only the password of `scheme://user:password@host` goes; the URL stays readable.
        f(
            "connection-password",
            r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@'`]+:(?P<s>[^\s@/'`]+)@[\w.-]",
            url_password,
        ),
    ]
});

/// A string literal assigned to a name: `name = "v"`, `name: "v"`, `"name": "v"`,
/// `name := "v"`, `name: Type = "v"`, `var name Type = "v"`, `name == "v"`, and the same
/// with a constructor around the literal (`String::from("v")`, `Some("v")`; not any call:
/// `get("HEADER")` holds no secret). Types are one word, maybe generic (`Dict[str, str]`),
/// so `password: password, mode: "x"` is not read as a typed `password`. Names are
/// checked in code (word by word) rather than in the pattern, and the value must sit on one
/// line.
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r#"(?P<name>[A-Za-z_$][\w$.-]*)["']?"#,
        r#"(?:[ \t]*:[ \t]*[&A-Za-z_'][\w&'.]{0,30}(?:[<\[][\w&'<>\[\]., ]{0,40}[>\]])?|[ \t]+(?P<t>[*\[\]A-Za-z_][\w.*\[\]]{0,30}))?"#,
        r#"[ \t]*(?P<op>={1,3}|!==?|:=|=>|:)[ \t]*(?:(?:(?:[A-Z]\w*::)?(?:from|new)|Some|str|bytes|String|Buffer\.from|SecretStr)\([ \t]*)?(?:[rRbBfFuU]{1,2}|r#{1,3})?"#,
        r#"(?:"(?P<d>(?:[^"\\\n]|\\.){1,400})"|'(?P<q>(?:[^'\\\n]|\\.){1,400})'|`(?P<b>[^`\n]{1,400})`)"#,
    ))
    .expect("assignment pattern")
});

static PRIVATE_KEY_BEGIN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----").expect("key pattern"));
static PRIVATE_KEY_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----").expect("key pattern"));
static KEY_MATERIAL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/=]{16,}").expect("key pattern"));
/// A line that can be part of a key body, for blocks without an END line.
static KEY_BODY_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^[\s"'`+,(]*[A-Za-z0-9+/=]{16,}(?:\\n)?[\s"'`+,);\\]*$"#).expect("key pattern"));

/// Replaces every secret in `text` with `<REDACTED:kind>`; returns the new text and what was
/// redacted. The line count never changes: a multi-line secret keeps its newlines and puts
/// its placeholder on its first non-blank line.
pub fn redact(text: &str) -> (String, Vec<Redaction>) {
    let (out, found) = redact_quietly(text);
    for r in &found {
        tracing::debug!(kind = r.kind, line = r.line + 1, "redacted a secret before sending");
    }
    (out, found)
}

/// [`redact`] without the log, for callers that know the real line numbers.
fn redact_quietly(text: &str) -> (String, Vec<Redaction>) {
    let mut found: Vec<(Range<usize>, &'static str)> = Vec::new();
    private_keys(text, &mut found);
    for format in FORMATS.iter() {
        for caps in format.re.captures_iter(text) {
            let m = caps.name("s").unwrap_or_else(|| caps.get(0).expect("whole match"));
            if (format.check)(m.as_str()) {
                found.push((m.range(), format.kind));
            }
        }
    }
    assignments(text, &mut found);
    if found.is_empty() {
        return (text.to_string(), Vec::new());
    }
    let merged = merge(found);
    let mut out = String::with_capacity(text.len());
    let mut redactions = Vec::with_capacity(merged.len());
    let (mut pos, mut line) = (0usize, 0u32);
    for (range, kind) in merged {
        out.push_str(&text[pos..range.start]);
        line += text[pos..range.start].matches('\n').count() as u32;
        redactions.push(Redaction { kind, line });
        let placeholder = format!("{PLACEHOLDER_PREFIX}{kind}>");
        let mut placed = false;
        for (i, piece) in text[range.clone()].split('\n').enumerate() {
            if i > 0 {
                out.push('\n');
                line += 1;
            }
            if !placed && !piece.trim().is_empty() {
                out.push_str(&placeholder);
                placed = true;
            }
        }
        pos = range.end;
    }
    out.push_str(&text[pos..]);
    (out, redactions)
}

/// Redacts numbered lines in place, treating them as one text so multi-line secrets are
/// seen whole; each redaction's `line` is the original 0-based line number of where it
/// starts. Logs each at debug level (kind and 1-based line, never the value).
pub fn redact_lines(lines: &mut [Line]) -> Vec<Redaction> {
    let joined = lines.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join("\n");
    let (redacted, found) = redact_quietly(&joined);
    if found.is_empty() {
        return found;
    }
    for ((_, text), new) in lines.iter_mut().zip(redacted.split('\n')) {
        if text != new {
            *text = new.to_string();
        }
    }
    let found: Vec<Redaction> = found
        .into_iter()
        .map(|r| Redaction { line: lines.get(r.line as usize).map_or(r.line, |l| l.0), ..r })
        .collect();
    for r in &found {
        tracing::debug!(kind = r.kind, line = r.line + 1, "redacted a secret before sending");
    }
    found
}

/// Private key blocks, from the BEGIN line to the END line; the body of a block without an
/// END (a key cut by a chunk edge, or split over string concatenations) runs while lines
/// look like key material.
fn private_keys(text: &str, found: &mut Vec<(Range<usize>, &'static str)>) {
    let mut from = 0;
    while let Some(begin) = PRIVATE_KEY_BEGIN.find_at(text, from) {
        let body_start = begin.end();
        let end = match PRIVATE_KEY_END.find_at(text, body_start) {
            Some(end) => end.start(),
            None => {
                let mut end = text[body_start..].find('\n').map_or(text.len(), |i| body_start + i);
                while end < text.len() {
                    let next = text[end + 1..].find('\n').map_or(text.len(), |i| end + 1 + i);
                    if !KEY_BODY_LINE.is_match(&text[end + 1..next]) {
                        break;
                    }
                    end = next;
                }
                end
            }
        };
        // Documentation shows `-----BEGIN PRIVATE KEY-----\nXXXX\n…`: no key material, no secret.
        if end > body_start && KEY_MATERIAL.is_match(&text[body_start..end]) {
            found.push((body_start..end, "private-key"));
        }
        from = end.max(body_start);
    }
}

/// Words of an identifier, lower-cased: `dbPassword` → [db, password], `API_KEY` → [api, key].
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            prev_lower = false;
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The kind of secret a name announces, if any. A name whose last word says it holds
/// something about the secret rather than the secret (`token_type`, `password_prompt`,
/// `secret_name`) announces none.
fn secret_name(name: &str) -> Option<&'static str> {
    const NOT_THE_SECRET: &str = "type types name names field label prompt url uri path file dir env var header \
        hdr len length count id regex re pattern matcher format fmt expiry expires ttl timeout min max size kind \
        mode method endpoint message msg error err hint placeholder column col param policy required enabled status \
        state provider class input title text help description template prefix suffix location source store manager \
        service reset changed strength limit scheme range options";
    let w = words(name.rsplit('.').next().unwrap_or(name));
    if w.last().is_some_and(|l| NOT_THE_SECRET.split_whitespace().any(|n| n == l)) {
        return None;
    }
    let has = |s: &str| w.iter().any(|x| x == s);
    let pair = |a: &str, b: &str| w.windows(2).any(|p| p[0] == a && p[1] == b);
    Some(if has("password") || has("passwd") || has("pwd") || has("passphrase") {
        "password"
    } else if has("secret") || has("credential") || has("credentials") || pair("private", "key") {
        "secret"
    } else if has("apikey") || pair("api", "key") || pair("access", "key") || has("authorization") {
        "api-key"
    } else if has("token") || has("auth") {
        "token"
    } else {
        return None;
    })
}

/// Values that cannot be secrets even under a secret-sounding name: too short, templates
/// and format strings, paths, the name itself, flags, auth scheme words (`"Basic " + …`),
/// prompts that mention the secret (`"Enter password: "`), regexes, dotted numbers (OIDs,
/// versions) and the stock dummies of tests and docs.
fn plausible_value(name: &str, kind: &str, value: &str) -> bool {
    const NOT_SECRETS: &str = "yes no true false none null nil on off enabled disabled required optional basic \
        bearer digest token negotiate password pass passwd pwd secret example dummy include omit same-origin";
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    let formats = ["%s", "%d", "%(", "{}", "{0}"].iter().any(|f| v.contains(f));
    let prompt = v.ends_with(':')
        || (v.contains(' ')
            && ["password", "passwd", "secret", "token", "key", "auth"].iter().any(|k| lower.contains(k)));
    // A sentence (an error message), not a passphrase: several words, one of them glue.
    let glue = [" the ", " a ", " an ", " must ", " is ", " be ", " when ", " to ", " for ", " of ", " not "];
    let prose = v.matches(' ').count() >= 3 && (v.ends_with('.') || glue.iter().any(|g| lower.contains(g)));
    let regex_chars = "[](){}^$*?|".chars().filter(|c| v.contains(*c)).count();
    let dotted_number = v.contains('.') && v.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    v.len() >= 3
        && not_template(v)
        && !formats
        && !prompt
        && !prose
        && words(v) != words(name)
        && regex_chars < 2
        && !dotted_number
        && !v.starts_with(['/', '~', '.'])
        && !NOT_SECRETS.split_whitespace().any(|n| n == lower)
        && !v.eq_ignore_ascii_case(name.rsplit('.').next().unwrap_or(name))
        && !words(name).iter().any(|w| v.eq_ignore_ascii_case(w))
        && (kind != "token" || !v.bytes().all(|b| b.is_ascii_lowercase()) || v.len() > 12)
}

/// String literals assigned to secret-sounding names, or random-looking ones whatever the name.
fn assignments(text: &str, found: &mut Vec<(Range<usize>, &'static str)>) {
    let mut pos = 0;
    while let Some(caps) = ASSIGNMENT.captures_at(text, pos) {
        let name_match = caps.name("name").expect("name group");
        let Some(value) = caps.name("d").or_else(|| caps.name("q")).or_else(|| caps.name("b")) else { break };
        // `let password = "…"` matches with `let` as the name and `password` where a Go type
        // would be, so both are asked.
        let name = match caps.name("t") {
            Some(t) if secret_name(name_match.as_str()).is_none() && secret_name(t.as_str()).is_some() => t.as_str(),
            _ => name_match.as_str(),
        };
        // `token == "def"` is a parser, not a secret check; comparisons count for passwords.
        let compared = caps
            .name("op")
            .is_some_and(|op| op.as_str().starts_with(['=', '!']) && op.as_str() != "=" && op.as_str() != "=>");
        let kind = match secret_name(name) {
            Some(kind) if (!compared || kind == "password") && plausible_value(name, kind, value.as_str()) => {
                Some(kind)
            }
            _ if high_entropy(value.as_str()) => Some("high-entropy"),
            _ => None,
        };
        match kind {
            Some(kind) => {
                found.push((value.range(), kind));
                pos = value.end();
            }
            // A match that redacts nothing may have swallowed a later name on its line
            // (`x: if password == "…"` reads as a type annotation): look again right after
            // this name.
            None => pos = name_match.end(),
        }
    }
}

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| -(c as f64 / n) * (c as f64 / n).log2()).sum()
}

/// Whether a value looks like a key or token rather than data: at least 20 characters from
/// the base64/base64url alphabet, with upper case, lower case and digits, and entropy close
/// to that of a random string of its length. Hex digests and UUIDs (one case only), words,
/// identifiers and paths fail; so does base64 that decodes to text (a test vector).
fn high_entropy(value: &str) -> bool {
    if value.len() < 20 || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=_-.".contains(&b)) {
        return false;
    }
    // `=` is base64 padding only at the end; inside, the value is `KEY=value` text.
    if !mixed(value) || value.trim_end_matches('=').contains('=') || alphabet_like(value) {
        return false;
    }
    // The first percentile of the entropy of random base62 strings of length n is close to
    // ln(n) + 0.57 bits (measured for n = 20..100); identifiers and words sit below it, and
    // `wordy` catches the long ones that do not.
    let threshold = ((value.len() as f64).ln() + 0.55).min(5.3);
    entropy(value) >= threshold && !wordy(value) && !decodes_to_text(value)
}

/// `0123456789abcdefABCDEF` and the like: many neighbours that are consecutive characters.
fn alphabet_like(value: &str) -> bool {
    let b = value.as_bytes();
    b.windows(2).filter(|w| w[1] == w[0].wrapping_add(1)).count() * 3 > b.len()
}

/// Whether most of the value sits in runs of 3+ lower-case letters, as in identifiers and
/// words (`SomeLongClassName123`); random strings switch case and class far more often.
fn wordy(value: &str) -> bool {
    let (mut covered, mut run) = (0usize, 0usize);
    for b in value.bytes().chain(std::iter::once(b' ')) {
        if b.is_ascii_lowercase() {
            run += 1;
        } else {
            if run >= 3 {
                covered += run;
            }
            run = 0;
        }
    }
    covered * 10 >= value.len() * 4
}

/// True when `value` is base64 of mostly printable text, as in encoding test vectors.
fn decodes_to_text(value: &str) -> bool {
    let digit = |b: u8| match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let body = value.trim_end_matches('=');
    let mut bytes = Vec::with_capacity(body.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in body.bytes() {
        let Some(d) = digit(b) else { return false };
        acc = ((acc << 6) | u32::from(d)) & 0xfff; // 12 bits hold every pending bit
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((acc >> bits) as u8);
        }
    }
    let printable = bytes.iter().filter(|&&b| b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b)).count();
    !bytes.is_empty() && printable * 100 >= bytes.len() * 95
}

/// Sorts matches and merges overlapping ones. The merged kind is the most specific one
/// seen: a format (`jwt`) over a name-based guess (`api-key` for `Authorization: "Bearer
/// eyJ…"`), then the one that started first.
fn merge(mut found: Vec<(Range<usize>, &'static str)>) -> Vec<(Range<usize>, &'static str)> {
    found.sort_by_key(|(r, _)| r.start);
    let mut out: Vec<(Range<usize>, &'static str)> = Vec::with_capacity(found.len());
    for (r, kind) in found {
        match out.last_mut() {
            Some((last, last_kind)) if r.start < last.end => {
                last.end = last.end.max(r.end);
                if specificity(kind) < specificity(last_kind) {
                    *last_kind = kind;
                }
            }
            _ => out.push((r, kind)),
        }
    }
    out
}

/// Lower is more specific: formats, then secret names, then entropy alone.
fn specificity(kind: &str) -> u8 {
    match kind {
        "password" | "secret" | "api-key" | "token" => 1,
        "high-entropy" => 2,
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
