//! Owns reading what vendors say about their limits in response headers, into [`RateHeaders`],
//! and the time formats those headers use:
//!
//! - `retry-after`: seconds or an HTTP-date (RFC 9110 IMF-fixdate); `retry-after-ms`.
//! - OpenAI (and many OpenAI-compatible hosts): `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`,
//!   resets as Go durations (`6m0s`, `1s`, `250ms`, `1h2m3.5s`), and `x-should-retry`.
//! - Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`,
//!   resets as RFC 3339 instants.
//!
//! Parsing never fails: a header that is absent or malformed leaves its field `None`.
//! The date parsers are small and hand-written (with tests) rather than a date crate, because
//! these are the only two fixed formats we need.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;

/// What the limit headers said (for the limiter in the next issue); every field optional.
/// Resets are durations from when the response arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateHeaders {
    pub retry_after: Option<Duration>,
    pub limit_requests: Option<u64>,
    pub remaining_requests: Option<u64>,
    pub reset_requests: Option<Duration>,
    pub limit_tokens: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_tokens: Option<Duration>,
    /// OpenAI's `x-should-retry`: the vendor's own verdict, which overrides the status code
    /// in its SDKs. Kept for the limiter; `LlmError::is_retryable` goes by status alone.
    pub should_retry: Option<bool>,
}

impl RateHeaders {
    /// Reads every header family we know; they do not collide, so the vendor does not matter.
    pub fn from_headers(headers: &HeaderMap, now: SystemTime) -> RateHeaders {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let number = |name: &str| text(name).and_then(|v| v.parse::<u64>().ok());
        let reset = |name: &str| text(name).and_then(|v| parse_reset(v, now));

        // retry-after-ms is the more precise of the two (OpenAI's SDKs prefer it too).
        let retry_after = text("retry-after-ms")
            .and_then(|v| decimal_nanos(v, 1_000_000))
            .map(nanos_to_duration)
            .or_else(|| text("retry-after").and_then(|v| parse_retry_after(v, now)));

        let mut rate = RateHeaders {
            retry_after,
            limit_requests: number("x-ratelimit-limit-requests"),
            remaining_requests: number("x-ratelimit-remaining-requests"),
            reset_requests: reset("x-ratelimit-reset-requests"),
            limit_tokens: number("x-ratelimit-limit-tokens"),
            remaining_tokens: number("x-ratelimit-remaining-tokens"),
            reset_tokens: reset("x-ratelimit-reset-tokens"),
            should_retry: match text("x-should-retry") {
                Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
                Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
                _ => None,
            },
        };

        // Anthropic. `tokens-*` is documented as the most restrictive token limit in effect; when
        // it is missing, the input or output family with less room left stands in for it.
        let family = |name: &str| {
            let remaining = number(&format!("anthropic-ratelimit-{name}-remaining"));
            let limit = number(&format!("anthropic-ratelimit-{name}-limit"));
            let reset = reset(&format!("anthropic-ratelimit-{name}-reset"));
            (limit.is_some() || remaining.is_some() || reset.is_some()).then_some((limit, remaining, reset))
        };
        if let Some((limit, remaining, reset)) = family("requests") {
            rate.limit_requests = rate.limit_requests.or(limit);
            rate.remaining_requests = rate.remaining_requests.or(remaining);
            rate.reset_requests = rate.reset_requests.or(reset);
        }
        let tokens = family("tokens").or_else(|| match (family("input-tokens"), family("output-tokens")) {
            (Some(i), Some(o)) => Some(if o.1.unwrap_or(u64::MAX) < i.1.unwrap_or(u64::MAX) { o } else { i }),
            (i, o) => i.or(o),
        });
        if let Some((limit, remaining, reset)) = tokens {
            rate.limit_tokens = rate.limit_tokens.or(limit);
            rate.remaining_tokens = rate.remaining_tokens.or(remaining);
            rate.reset_tokens = rate.reset_tokens.or(reset);
        }
        rate
    }
}

/// `retry-after`: delay-seconds (a decimal is tolerated) or an HTTP-date; a date in the past is 0.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Some(nanos) = decimal_nanos(value, 1_000_000_000) {
        return Some(nanos_to_duration(nanos));
    }
    parse_http_date(value).map(|at| until(at, now))
}

/// A limit reset: a Go duration (`6m0s`, `250ms`, bare seconds) as OpenAI sends, or an
/// RFC 3339 instant as Anthropic sends. Both are tried, so a vendor mixing them still parses.
pub fn parse_reset(value: &str, now: SystemTime) -> Option<Duration> {
    parse_go_duration(value).or_else(|| parse_rfc3339(value).map(|at| until(at, now)))
}

fn until(at: SystemTime, now: SystemTime) -> Duration {
    at.duration_since(now).unwrap_or(Duration::ZERO)
}

/// Go's `time.Duration` text: one or more `<decimal><unit>` with units h, m, s, ms, us/µs, ns
/// (`1h2m3.5s`). A bare number is taken as seconds. Negative or empty values are `None`.
pub fn parse_go_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if let Some(nanos) = decimal_nanos(value, 1_000_000_000) {
        return Some(nanos_to_duration(nanos));
    }
    let mut rest = value;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        let unit_end = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let unit_nanos: u128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" | "μs" => 1_000,
            "ns" => 1,
            _ => return None,
        };
        total = total.checked_add(decimal_nanos(number, unit_nanos)?)?;
        rest = next;
    }
    Some(nanos_to_duration(total))
}

/// `digits[.digits]` times `unit_nanos`, exactly (no float rounding: `0.1s` is 100 ms).
fn decimal_nanos(number: &str, unit_nanos: u128) -> Option<u128> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut nanos = whole.checked_mul(unit_nanos)?;
    // Digits past nanosecond precision add nothing; stop before 10^len overflows.
    let frac = &frac[..frac.len().min(18)];
    if !frac.is_empty() {
        let scale = 10u128.pow(frac.len() as u32);
        nanos = nanos.checked_add(frac.parse::<u128>().ok()? * unit_nanos / scale)?;
    }
    Some(nanos)
}

fn nanos_to_duration(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

/// An HTTP-date in IMF-fixdate form, `Sun, 06 Nov 1994 08:49:37 GMT`, the only form RFC 9110
/// lets servers send (the obsolete RFC 850 and asctime forms are not accepted).
pub fn parse_http_date(value: &str) -> Option<SystemTime> {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let parts: Vec<&str> = value.split_ascii_whitespace().collect();
    let [weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    if !weekday.ends_with(',') || day.len() != 2 || year.len() != 4 {
        return None;
    }
    let month = MONTHS.iter().position(|m| m == month)? as u32 + 1;
    let (hour, minute, second) = parse_hms(time)?;
    instant(year.parse().ok()?, month, day.parse().ok()?, hour, minute, second, 0, 0)
}

/// An RFC 3339 timestamp: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; `t`, `z` and a space
/// separator are accepted too.
pub fn parse_rfc3339(value: &str) -> Option<SystemTime> {
    let value = value.trim();
    let b = value.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = digits(&value[0..4])?;
    let month = digits(&value[5..7])?;
    let day = digits(&value[8..10])?;
    let (hour, minute, second) = parse_hms(value.get(11..19)?)?;
    let mut rest = &value[19..];
    let mut nanos = 0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let end = after_dot.find(|c: char| !c.is_ascii_digit()).unwrap_or(after_dot.len());
        if end == 0 {
            return None;
        }
        let frac = &after_dot[..end.min(9)];
        nanos = digits(frac)? * 10u32.pow(9 - frac.len() as u32);
        rest = &after_dot[end..];
    }
    let offset_secs: i64 = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(std::str::from_utf8(&[*h1, *h2]).ok()?)? as i64;
            let minutes = digits(std::str::from_utf8(&[*m1, *m2]).ok()?)? as i64;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };
    instant(year as i64, month, day, hour, minute, second, nanos, offset_secs)
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_hms(time: &str) -> Option<(u32, u32, u32)> {
    let b = time.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    Some((digits(&time[0..2])?, digits(&time[3..5])?, digits(&time[6..8])?))
}

/// A civil UTC date and time (minus `offset_secs` east of UTC) as a `SystemTime`; `None` for
/// impossible fields or instants before 1970.
#[allow(clippy::too_many_arguments)]
fn instant(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    offset_secs: i64,
) -> Option<SystemTime> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    // Second 60 is a leap second; it is read as the next second's start.
    if day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_go_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_go_duration("250ms"), Some(ms(250)));
        assert_eq!(parse_go_duration("1h2m3.5s"), Some(ms(3_723_500)));
        assert_eq!(parse_go_duration("0.1s"), Some(ms(100)));
        assert_eq!(parse_go_duration("17ms"), Some(ms(17)));
        assert_eq!(parse_go_duration("2us"), Some(Duration::from_micros(2)));
        assert_eq!(parse_go_duration("20"), Some(Duration::from_secs(20)));
        assert_eq!(parse_go_duration(" 1m30s "), Some(Duration::from_secs(90)));
        for bad in ["", "s", "-1s", "1x", "1.2.3s", "m5", "1 s", "abc"] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = at(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("30", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("1.5", now), Some(ms(1500)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), Some(Duration::from_secs(30)));
        // In the past: no wait, rather than an error.
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn http_dates() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(at(784_111_777)));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(at(0)));
        assert_eq!(parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT"), Some(at(1_835_438_400)));
        assert_eq!(parse_http_date("Wed, 29 Feb 2027 12:00:00 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
    }

    #[test]
    fn rfc3339_instants() {
        assert_eq!(parse_rfc3339("1994-11-06T08:49:37Z"), Some(at(784_111_777)));
        assert_eq!(parse_rfc3339("1994-11-06t08:49:37z"), Some(at(784_111_777)));
        assert_eq!(parse_rfc3339("1994-11-06T09:49:37+01:00"), Some(at(784_111_777)));
        assert_eq!(parse_rfc3339("1994-11-06T03:19:37-05:30"), Some(at(784_111_777)));
        assert_eq!(parse_rfc3339("1994-11-06T08:49:37.25Z"), Some(at(784_111_777) + ms(250)));
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(at(1_709_164_800)));
        for bad in [
            "1994-11-06",
            "1994-11-06T08:49:37",
            "1994-13-06T08:49:37Z",
            "1994-11-06T24:00:00Z",
            "1994-11-06T08:49:37.Z",
            "1969-12-31T23:59:59Z",
            "1994-11-06T08:49:37+0100",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn openai_headers() {
        let h = headers(&[
            ("x-ratelimit-limit-requests", "500"),
            ("x-ratelimit-remaining-requests", "499"),
            ("x-ratelimit-reset-requests", "120ms"),
            ("x-ratelimit-limit-tokens", "30000"),
            ("x-ratelimit-remaining-tokens", "29000"),
            ("x-ratelimit-reset-tokens", "6m0s"),
            ("retry-after", "20"),
            ("x-should-retry", "false"),
        ]);
        let rate = RateHeaders::from_headers(&h, at(0));
        assert_eq!(
            rate,
            RateHeaders {
                retry_after: Some(Duration::from_secs(20)),
                limit_requests: Some(500),
                remaining_requests: Some(499),
                reset_requests: Some(ms(120)),
                limit_tokens: Some(30000),
                remaining_tokens: Some(29000),
                reset_tokens: Some(Duration::from_secs(360)),
                should_retry: Some(false),
            }
        );
    }

    #[test]
    fn retry_after_ms_wins() {
        let h = headers(&[("retry-after", "20"), ("retry-after-ms", "1500.5")]);
        assert_eq!(RateHeaders::from_headers(&h, at(0)).retry_after, Some(Duration::from_micros(1_500_500)));
    }

    #[test]
    fn anthropic_headers_reset_relative_to_now() {
        let now = parse_rfc3339("2025-01-01T00:00:00Z").unwrap();
        let h = headers(&[
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", "2025-01-01T00:00:30Z"),
            ("anthropic-ratelimit-input-tokens-limit", "40000"),
            ("anthropic-ratelimit-input-tokens-remaining", "100"),
            ("anthropic-ratelimit-input-tokens-reset", "2025-01-01T00:01:00Z"),
            ("anthropic-ratelimit-output-tokens-limit", "8000"),
            ("anthropic-ratelimit-output-tokens-remaining", "7000"),
            ("anthropic-ratelimit-output-tokens-reset", "2024-12-31T23:00:00Z"),
        ]);
        let rate = RateHeaders::from_headers(&h, now);
        assert_eq!(rate.limit_requests, Some(50));
        assert_eq!(rate.remaining_requests, Some(0));
        assert_eq!(rate.reset_requests, Some(Duration::from_secs(30)));
        // No `tokens-*`: input tokens have less room left, so they stand in.
        assert_eq!((rate.limit_tokens, rate.remaining_tokens), (Some(40000), Some(100)));
        assert_eq!(rate.reset_tokens, Some(Duration::from_secs(60)));

        let h = headers(&[
            ("anthropic-ratelimit-tokens-limit", "48000"),
            ("anthropic-ratelimit-tokens-remaining", "47000"),
            ("anthropic-ratelimit-tokens-reset", "2024-12-31T23:00:00Z"),
            ("anthropic-ratelimit-input-tokens-remaining", "1"),
        ]);
        let rate = RateHeaders::from_headers(&h, now);
        assert_eq!((rate.limit_tokens, rate.remaining_tokens), (Some(48000), Some(47000)));
        assert_eq!(rate.reset_tokens, Some(Duration::ZERO), "a reset in the past is no wait");
    }

    #[test]
    fn malformed_headers_are_ignored() {
        let h = headers(&[
            ("retry-after", "later"),
            ("x-ratelimit-limit-requests", "-5"),
            ("x-ratelimit-reset-tokens", "soon"),
            ("x-should-retry", "maybe"),
        ]);
        assert_eq!(RateHeaders::from_headers(&h, at(0)), RateHeaders::default());
    }
}
