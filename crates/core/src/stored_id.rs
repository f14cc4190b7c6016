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

use crate::{text, url};

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
    let mut value = url::trim(raw).to_owned();
    for _ in 0..4 {
        let bytes = value.as_bytes();
        let quoted = bytes.len() >= 2 && bytes[0] == b'"' && bytes[bytes.len() - 1] == b'"';
        let next = if quoted {
            unescape_json(&value[1..value.len() - 1])
        } else if text::has_byte(&value, b'%') {
            url::percent_decode(&value)
        } else {
            break;
        };
        if next == value {
            break;
        }
        value = url::trim(&next).to_owned();
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
    // Copies the runs between escapes; every cut is next to an ASCII backslash, so it
    // falls on a character boundary.
    let mut start = 0;
    let mut escaped = false;
    for (i, byte) in inner.bytes().enumerate() {
        if escaped {
            escaped = false;
            if byte == b'u' {
                start = i - 1;
            }
        } else if byte == b'\\' {
            out.push_str(&inner[start..i]);
            start = i + 1;
            escaped = true;
        }
    }
    out.push_str(&inner[start..]);
    out
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

/// The first readable id ([`parse`]) among the values of the cookie `name` in a
/// `document.cookie` string, in the browser's order (most specific path first, then
/// oldest first); empty and unreadable values are skipped.
///
/// ```
/// let jar = "a=1; weft_aid=; weft_aid=null; weft_aid=%22x%22; weft_aid=y";
/// assert_eq!(weft_core::stored_id::cookie_id(jar, "weft_aid").as_deref(), Some("x"));
/// ```
pub fn cookie_id(jar: &str, name: &str) -> Option<String> {
    for pair in text::fields(jar, b';') {
        let Some((key, value)) = text::split_once(pair, b'=') else {
            continue;
        };
        if url::trim(key) == name {
            if let Some(id) = parse(value) {
                return Some(id);
            }
        }
    }
    None
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
    let mut host = host;
    while let Some(shorter) = host.strip_suffix('.') {
        host = shorter;
    }
    let bytes = host.as_bytes();
    let is_ip =
        bytes.first() == Some(&b'[') || bytes.iter().all(|b| b.is_ascii_digit() || *b == b'.');
    let mut out = Vec::new();
    if is_ip || !text::has_byte(host, b'.') {
        return out;
    }
    // From the end: the text after each dot but the last one is a candidate.
    let mut dots = 0;
    for i in (0..bytes.len()).rev() {
        if bytes[i] == b'.' {
            dots += 1;
            if dots > 1 {
                out.push(&host[i + 1..]);
            }
        }
    }
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
    fn cookie_ids_are_found_by_exact_name() {
        let cases = [
            (
                "xweft_aid=no; weft_aid = a=b ; other=1;weft_aid=c",
                Some("a=b"),
            ),
            (
                "weft_aid=; weft_aid=null; other=1;weft_aid=\"id-2\"",
                Some("id-2"),
            ),
            ("weft_aid", None),
            ("", None),
        ];
        for (jar, expected) in cases {
            assert_eq!(cookie_id(jar, "weft_aid").as_deref(), expected, "{jar}");
        }
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
