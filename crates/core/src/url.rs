//! URLs and query strings, read the way browsers read them.
//!
//! Campaign parameters and click ids arrive in a page's query string, and both the SDK
//! and the worker must read them identically. The decoding here follows the URL
//! standard's `application/x-www-form-urlencoded` parser, which is what
//! `URLSearchParams` does in every browser: pairs split on `&`, empty pairs skipped,
//! name and value split on the first `=`, `+` read as a space, `%XX` decoded with an
//! invalid sequence kept as written, and bytes that are not UTF-8 replaced by U+FFFD.
//! When a name repeats, [`get`] answers the first value, as `URLSearchParams.get` does.
//!
//! The module is free of serde and of `core::fmt`, so the browser SDK can use it.

use alloc::string::String;
use alloc::vec::Vec;

use crate::text;

/// The parts of a URL that touchpoints need, borrowed from the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Parts<'a> {
    /// The host with any port and user info removed, as written (not lower-cased).
    pub host: &'a str,
    /// The path, `/` when the URL has an authority but no path.
    pub path: &'a str,
    /// The query without its `?`, empty when there is none.
    pub query: &'a str,
}

/// Splits an absolute URL (`https://host/path?query#fragment`) or a relative one
/// (`/path?query`, `?query`) into its parts.
///
/// ```
/// let p = weft_core::url::split("https://user@Shop.Example.com:8443/a/b?x=1#top");
/// assert_eq!((p.host, p.path, p.query), ("Shop.Example.com", "/a/b", "x=1"));
/// ```
///
/// # Limitations
/// IPv6 hosts keep their brackets, and a URL without `//` is read as relative, so
/// `mailto:` and similar schemes yield no host.
pub fn split(url: &str) -> Parts<'_> {
    // Byte searches for ASCII delimiters, not `str` patterns: this keeps the browser
    // SDK's wasm small.
    let url = before(trim(url), b'#');
    let (before_query, query) = text::split_once(url, b'?').unwrap_or((url, ""));
    let scheme_end = before_query.as_bytes().windows(2).position(|w| w == b"//");
    let Some(start) = scheme_end else {
        return Parts {
            host: "",
            path: before_query,
            query,
        };
    };
    let rest = &before_query[start + 2..];
    let (authority, path) = match find(rest, b'/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host_port = match authority.bytes().rposition(|b| b == b'@') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    let host = match find(host_port, b']') {
        Some(i) if host_port.starts_with('[') => &host_port[..=i],
        _ => before(host_port, b':'),
    };
    Parts { host, path, query }
}

/// The query of a URL without its `?`, empty when there is none: what [`split`] gives
/// as `query`, without reading the rest of the URL.
///
/// ```
/// assert_eq!(weft_core::url::query(" https://a.example/x?q=1#top"), "q=1");
/// assert_eq!(weft_core::url::query("/x#a?b"), "");
/// ```
pub fn query(url: &str) -> &str {
    let url = before(trim(url), b'#');
    text::split_once(url, b'?').map_or("", |(_, query)| query)
}

/// `text` without leading and trailing spaces and ASCII control characters, the
/// characters the URL standard strips from a URL's ends.
///
/// ```
/// assert_eq!(weft_core::url::trim("\t a b \n"), "a b");
/// ```
pub fn trim(text: &str) -> &str {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut end = bytes.len();
    while start < end && bytes[start] <= b' ' {
        start += 1;
    }
    while end > start && bytes[end - 1] <= b' ' {
        end -= 1;
    }
    &text[start..end]
}

/// The index of the first `byte` (an ASCII delimiter) in `text`.
fn find(text: &str, byte: u8) -> Option<usize> {
    text.bytes().position(|b| b == byte)
}

/// `text` up to the first `byte` (an ASCII delimiter), or all of it.
fn before(text: &str, byte: u8) -> &str {
    match find(text, byte) {
        Some(i) => &text[..i],
        None => text,
    }
}

/// The host of a URL, lower-cased and without a trailing dot; `None` when it has none.
///
/// ```
/// assert_eq!(weft_core::url::host("https://WWW.Google.com./search").as_deref(),
///            Some("www.google.com"));
/// assert_eq!(weft_core::url::host("/pricing"), None);
/// ```
pub fn host(url: &str) -> Option<String> {
    let host = split(url).host.trim_end_matches('.');
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Decodes one name or value of a query string: `+` is a space, `%XX` a byte, an
/// invalid `%` sequence stays as written, and bytes that are not UTF-8 become U+FFFD.
///
/// ```
/// use weft_core::url::decode;
/// assert_eq!(decode("spring+sale%21"), "spring sale!");
/// assert_eq!(decode("100%"), "100%");
/// assert_eq!(decode("caf%C3%A9"), "café");
/// ```
pub fn decode(text: &str) -> String {
    decode_with(text, true)
}

/// Decodes `%XX` sequences like [`decode`], but keeps `+` as a plus, as
/// `decodeURIComponent` does (cookie values, stored ids).
///
/// ```
/// assert_eq!(weft_core::url::percent_decode("a+b%20c"), "a+b c");
/// ```
pub fn percent_decode(text: &str) -> String {
    decode_with(text, false)
}

fn decode_with(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let mut byte = bytes[i];
        if byte == b'+' && plus_is_space {
            byte = b' ';
        } else if byte == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                byte = hi << 4 | lo;
                i += 2;
            }
        }
        out.push(byte);
        i += 1;
    }
    let mut decoded = String::with_capacity(out.len());
    text::push_utf8_lossy(&mut decoded, &out);
    decoded
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Calls `visit` with every name and value of a query string, decoded, in order,
/// repeats included. A leading `?` is skipped, so `location.search` can be passed as
/// it is.
///
/// ```
/// let mut names = Vec::new();
/// weft_core::url::for_each_pair("?a=1&&b", |name, _| names.push(name));
/// assert_eq!(names, ["a", "b"]);
/// ```
pub fn for_each_pair(query: &str, mut visit: impl FnMut(String, String)) {
    let query = query.strip_prefix('?').unwrap_or(query);
    for pair in text::fields(query, b'&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = text::split_once(pair, b'=').unwrap_or((pair, ""));
        visit(decode(name), decode(value));
    }
}

/// Every name and value of a query string, decoded, in order, repeats included.
///
/// A leading `?` is skipped, so `location.search` can be passed as it is.
///
/// ```
/// let pairs = weft_core::url::pairs("?a=1&&b&a=2");
/// assert_eq!(pairs, [("a".into(), "1".into()), ("b".into(), "".into()),
///                    ("a".into(), "2".into())]);
/// ```
pub fn pairs(query: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for_each_pair(query, |name, value| out.push((name, value)));
    out
}

/// The first value of `name` in a query string, decoded.
///
/// ```
/// assert_eq!(weft_core::url::get("utm_source=a&utm_source=b", "utm_source").as_deref(),
///            Some("a"));
/// ```
pub fn get(query: &str, name: &str) -> Option<String> {
    pairs(query)
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_follows_the_url_standard() {
        let cases = [
            ("plain", "plain"),
            ("a+b", "a b"),
            ("a%20b", "a b"),
            ("a%2Bb", "a+b"),
            ("%", "%"),
            ("%2", "%2"),
            ("%zz", "%zz"),
            ("50%+off", "50% off"),
            ("%E2%82%AC", "€"),
            ("%FF", "\u{FFFD}"),
            ("%C3", "\u{FFFD}"),
            ("caf%c3%a9", "café"),
            ("%%41", "%A"),
        ];
        for (input, expected) in cases {
            assert_eq!(decode(input), expected, "{input}");
        }
    }

    #[test]
    fn pairs_skip_empty_parts_and_split_on_the_first_equals_sign() {
        let got = pairs("?&x=1=2&&y&=z&utm%5Fsource=g");
        let expected = [("x", "1=2"), ("y", ""), ("", "z"), ("utm_source", "g")];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn the_first_value_of_a_repeated_name_wins() {
        assert_eq!(get("a=1&a=2", "a").as_deref(), Some("1"));
        assert_eq!(get("a&a=2", "a").as_deref(), Some(""));
        assert_eq!(get("b=1", "a"), None);
    }

    #[test]
    fn urls_split_into_host_path_and_query() {
        let cases = [
            ("https://example.com", ("example.com", "/", "")),
            ("https://example.com/p?q=1#f", ("example.com", "/p", "q=1")),
            ("http://u:pw@host:8080/x", ("host", "/x", "")),
            ("https://example.com?a=b", ("example.com", "/", "a=b")),
            ("//cdn.example.com/x", ("cdn.example.com", "/x", "")),
            ("/landing?utm_source=x", ("", "/landing", "utm_source=x")),
            ("?utm_source=x", ("", "", "utm_source=x")),
            ("http://[::1]:8787/", ("[::1]", "/", "")),
            ("", ("", "", "")),
            (" \thttps://a.example/x?q \n", ("a.example", "/x", "q")),
            ("https://a.example:8443", ("a.example", "/", "")),
            ("http://[::1]/", ("[::1]", "/", "")),
            ("https://@a.example/", ("a.example", "/", "")),
        ];
        for (url, (host, path, query)) in cases {
            assert_eq!(split(url), Parts { host, path, query }, "{url}");
            assert_eq!(super::query(url), query, "{url}");
        }
    }

    #[test]
    fn hosts_are_lower_cased_and_lose_a_trailing_dot() {
        assert_eq!(
            host("HTTPS://Example.COM./x").as_deref(),
            Some("example.com")
        );
        assert_eq!(host("/relative"), None);
    }
}
