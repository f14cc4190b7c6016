//! Reading and writing the ids a browser keeps in cookies and localStorage.
//!
//! Stored anonymous ids come from many writers: weft's own SDK, Segment's
//! (`ajs_anonymous_id`, JSON-quoted in localStorage, sometimes percent-encoded in the
//! cookie), Jitsu's (`__anon_id`, numeric-looking), or a site's own code. Reading them
//! must never throw, never keep literal quote characters and never turn `00123` into a
//! number. weft writes one canonical form back: the bare id in localStorage and the id
//! percent-encoded where a cookie needs it. The cookie domain is found by trying
//! successively shorter domains, so no public-suffix list is shipped; the candidates
//! come from here.
//!
//! The module is free of serde and of `core::fmt`, so the browser SDK can use it.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

/// The longest id kept; longer stored values are ignored as corrupt.
pub const MAX_ID_LEN: usize = 200;

// Values that other libraries store when they meant "no id".
const JUNK: &[&str] = &["null", "undefined", "nan", "[object object]", "none"];

/// Reads a stored id tolerantly: trims, percent-decodes, strips JSON quotes (several
/// layers if someone encoded twice) and refuses values that mean "no id".
///
/// ```
/// use weft_core::stored_id::parse;
/// assert_eq!(parse("\"anon-123\"").as_deref(), Some("anon-123"));
/// assert_eq!(parse("%22anon-123%22").as_deref(), Some("anon-123"));
/// assert_eq!(parse("00123").as_deref(), Some("00123"));
/// assert_eq!(parse("null"), None);
/// ```
pub fn parse(raw: &str) -> Option<String> {
    let mut value = raw.trim().to_owned();
    for _ in 0..4 {
        let quoted = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
        let next = match quoted {
            Some(inner) => unescape_json(inner),
            None if value.contains('%') => percent_decode(&value),
            None => break,
        };
        if next == value {
            break;
        }
        value = next.trim().to_owned();
    }
    let bad = value.is_empty()
        || value.len() > MAX_ID_LEN
        || value.bytes().any(|b| b < 0x20 || b == 0x7f)
        || JUNK.iter().any(|j| value.eq_ignore_ascii_case(j));
    (!bad).then_some(value)
}

// JSON string escapes as `JSON.stringify` writes them for ids: `\"`, `\\`, `\/`. A
// `\uXXXX` escape is kept as written (no id writer emits one for printable text).
fn unescape_json(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if escaped || c != '\\' {
            if escaped && c == 'u' {
                out.push('\\');
            }
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

// Percent-decoding of a cookie value: like a query string, but `+` stays a plus.
fn percent_decode(value: &str) -> String {
    crate::url::decode(&value.replace('+', "%2B"))
}

/// Encodes an id for a cookie value: bytes outside `A-Z a-z 0-9 - . _ ~` are
/// percent-encoded, as `encodeURIComponent` would, so [`parse`] reads it back.
///
/// ```
/// assert_eq!(weft_core::stored_id::encode_cookie("a b;c"), "a%20b%3Bc");
/// ```
pub fn encode_cookie(id: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(id.len());
    for &b in id.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// Every value of the cookie `name` in a `document.cookie` string, in the browser's
/// order (most specific path first, then oldest first); empty values are skipped.
///
/// ```
/// let jar = "a=1; weft_aid=x; weft_aid=; weft_aid=y";
/// assert_eq!(weft_core::stored_id::cookie_values(jar, "weft_aid"), ["x", "y"]);
/// ```
pub fn cookie_values<'a>(jar: &'a str, name: &str) -> Vec<&'a str> {
    jar.split(';')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| value.trim())
        })
        .filter(|value| !value.is_empty())
        .collect()
}

/// The first readable id among the values of several cookies or storage entries.
pub fn first_readable<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    values.into_iter().find_map(parse)
}

/// The domains to try, shortest first, when setting a cookie for the registrable domain
/// of `host`: `a.shop.example.com` gives `example.com`, `shop.example.com`,
/// `a.shop.example.com`. The first the browser accepts is the registrable domain
/// (browsers refuse cookies on public suffixes). IP addresses, `localhost` and
/// single-label hosts give none: their cookies are host-only.
///
/// ```
/// use weft_core::stored_id::domain_candidates;
/// assert_eq!(domain_candidates("www.example.co.uk"),
///            ["co.uk", "example.co.uk", "www.example.co.uk"]);
/// assert!(domain_candidates("127.0.0.1").is_empty());
/// ```
pub fn domain_candidates(host: &str) -> Vec<&str> {
    let host = host.trim_end_matches('.');
    let is_ip = host.starts_with('[') || host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if is_ip || !host.contains('.') {
        return Vec::new();
    }
    let mut out: Vec<&str> = host
        .match_indices('.')
        .filter_map(|(i, _)| host.get(i + 1..))
        .filter(|d| d.contains('.'))
        .collect();
    out.reverse();
    out.push(host);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_ids_are_read_tolerantly() {
        let cases = [
            ("anon-123", Some("anon-123")),
            ("\"anon-123\"", Some("anon-123")),
            ("%22anon-123%22", Some("anon-123")),
            ("%2522anon-123%2522", Some("anon-123")),
            ("\"\\\"anon-123\\\"\"", Some("anon-123")),
            ("  anon-123 ", Some("anon-123")),
            ("1724633695283.638279", Some("1724633695283.638279")),
            ("00123", Some("00123")),
            ("a+b", Some("a+b")),
            ("\"caf\\u00e9\"", Some("caf\\u00e9")),
            ("", None),
            ("\"\"", None),
            ("   ", None),
            ("null", None),
            ("\"undefined\"", None),
            ("[object Object]", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse(raw).as_deref(), expected, "{raw}");
        }
    }

    #[test]
    fn overlong_or_control_character_values_are_refused() {
        assert_eq!(parse(&"x".repeat(MAX_ID_LEN + 1)), None);
        assert_eq!(parse("a\u{1}b"), None);
        assert_eq!(
            parse(&"x".repeat(MAX_ID_LEN)).map(|s| s.len()),
            Some(MAX_ID_LEN)
        );
    }

    #[test]
    fn cookie_encoding_reads_back() {
        for id in ["plain-1", "a b", "ü-✓", "x;y=z", "100%"] {
            let encoded = encode_cookie(id);
            assert!(!encoded.contains([';', ' ', '"', ',']), "{encoded}");
            assert_eq!(parse(&encoded).as_deref(), Some(id), "{id}");
        }
    }

    #[test]
    fn cookie_values_are_found_by_exact_name() {
        let jar = "xweft_aid=no; weft_aid = a=b ; other=1;weft_aid=c";
        assert_eq!(cookie_values(jar, "weft_aid"), ["a=b", "c"]);
        assert!(cookie_values("", "weft_aid").is_empty());
        assert_eq!(
            first_readable(["", "null", "\"id-2\""]).as_deref(),
            Some("id-2")
        );
    }

    #[test]
    fn domain_candidates_go_from_shortest_to_the_host() {
        let cases: [(&str, &[&str]); 6] = [
            ("app.example.com", &["example.com", "app.example.com"]),
            ("example.com", &["example.com"]),
            (
                "a.b.shop.test",
                &["shop.test", "b.shop.test", "a.b.shop.test"],
            ),
            ("localhost", &[]),
            ("127.0.0.1", &[]),
            ("[::1]", &[]),
        ];
        for (host, expected) in cases {
            assert_eq!(domain_candidates(host), expected, "{host}");
        }
    }
}
