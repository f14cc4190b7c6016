//! Byte-level text helpers for the serde-free modules: fields split on an ASCII
//! separator, decimal numbers, and UTF-8 decoding that replaces what is not UTF-8.
//!
//! The browser SDK compiles these modules to WebAssembly, where every generic `str`
//! pattern, `core::fmt` and the standard UTF-8 validators cost bytes each visitor
//! downloads. The helpers here do the same jobs for the few cases weft has (ASCII
//! separators, whole numbers, decoding percent-escaped bytes) in a few hundred bytes,
//! and are tested against the standard library's own versions.

use alloc::string::String;

/// The parts of `text` between occurrences of the ASCII byte `separator`, like
/// `str::split` with a `char` pattern: an empty text gives one empty part.
///
/// ```
/// let parts: Vec<&str> = weft_core::text::fields("a\0\0b", b'\0').collect();
/// assert_eq!(parts, ["a", "", "b"]);
/// ```
pub fn fields(text: &str, separator: u8) -> Fields<'_> {
    Fields {
        rest: Some(text),
        separator,
    }
}

/// The iterator of [`fields`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: Option<&'a str>,
    separator: u8,
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match split_once(rest, self.separator) {
            Some((field, after)) => {
                self.rest = Some(after);
                Some(field)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// `text` split at the first ASCII byte `separator`, which belongs to neither part.
///
/// ```
/// assert_eq!(weft_core::text::split_once("a=b=c", b'='), Some(("a", "b=c")));
/// assert_eq!(weft_core::text::split_once("abc", b'='), None);
/// ```
pub fn split_once(text: &str, separator: u8) -> Option<(&str, &str)> {
    let i = text.bytes().position(|b| b == separator)?;
    // An ASCII byte is a whole character, so both cuts fall on character boundaries.
    Some((&text[..i], &text[i + 1..]))
}

/// True when `text` holds the ASCII byte `byte`. A plain scan: `slice::contains` brings
/// `memchr`, which costs the browser's wasm more than it saves on short texts.
///
/// ```
/// assert!(weft_core::text::has_byte("50%", b'%'));
/// ```
pub fn has_byte(text: &str, byte: u8) -> bool {
    text.bytes().any(|b| b == byte)
}

/// Reads a decimal integer (an optional `-`, then digits); `None` for anything else or
/// an overflow. Smaller in wasm than `str::parse`.
///
/// ```
/// use weft_core::text::parse_decimal;
/// assert_eq!(parse_decimal("-120"), Some(-120));
/// assert_eq!(parse_decimal("12a"), None);
/// ```
pub fn parse_decimal(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(b - b'0'))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// The decimal digits of a number, without `core::fmt`.
///
/// ```
/// assert_eq!(weft_core::text::decimal(-120), "-120");
/// ```
pub fn decimal(value: i64) -> String {
    let mut out = String::new();
    push_decimal(&mut out, value);
    out
}

/// Appends the decimal digits of a number to `out`, without `core::fmt`.
///
/// ```
/// let mut out = String::from("n=");
/// weft_core::text::push_decimal(&mut out, 42);
/// assert_eq!(out, "n=42");
/// ```
pub fn push_decimal(out: &mut String, value: i64) {
    if value < 0 {
        out.push('-');
    }
    let mut digits = [0u8; 20];
    let mut rest = value.unsigned_abs();
    let mut n = digits.len();
    loop {
        n -= 1;
        digits[n] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &digit in &digits[n..] {
        out.push(char::from(digit));
    }
}

/// Appends `bytes` decoded as UTF-8 to `out`, each maximal invalid subsequence replaced
/// by U+FFFD: what `String::from_utf8_lossy` and the Encoding standard's decoder (so
/// `decodeURIComponent`'s lenient cousins and `URLSearchParams`) give.
///
/// ```
/// let mut out = String::new();
/// weft_core::text::push_utf8_lossy(&mut out, b"caf\xc3\xa9 \xe2\x82 \xff");
/// assert_eq!(out, "café \u{FFFD} \u{FFFD}");
/// ```
pub fn push_utf8_lossy(out: &mut String, bytes: &[u8]) {
    let mut i = 0;
    while i < bytes.len() {
        let lead = bytes[i];
        i += 1;
        // How many continuation bytes follow, and the range the first one must be in
        // (narrower after E0, ED, F0 and F4: no overlong forms, surrogates or values past
        // U+10FFFF).
        let (more, low, high) = match lead {
            0x00..=0x7f => {
                out.push(char::from(lead));
                continue;
            }
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xed => (2, 0x80, 0x9f),
            0xe1..=0xef => (2, 0x80, 0xbf),
            0xf0 => (3, 0x90, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            _ => {
                out.push(char::REPLACEMENT_CHARACTER);
                continue;
            }
        };
        let mut code = u32::from(lead) & (0x3f >> more);
        let mut whole = true;
        for n in 0..more {
            let (low, high) = if n == 0 { (low, high) } else { (0x80, 0xbf) };
            match bytes.get(i) {
                Some(&b) if low <= b && b <= high => {
                    code = code << 6 | u32::from(b & 0x3f);
                    i += 1;
                }
                // The byte that broke the sequence starts the next one.
                _ => {
                    whole = false;
                    break;
                }
            }
        }
        let decoded = if whole { char::from_u32(code) } else { None };
        out.push(decoded.unwrap_or(char::REPLACEMENT_CHARACTER));
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn fields_split_like_str_split() {
        for text in ["", "a", "a\0b", "\0", "a\0\0b\0", "é\0ü"] {
            let ours: Vec<&str> = fields(text, b'\0').collect();
            let std: Vec<&str> = text.split('\0').collect();
            assert_eq!(ours, std, "{text:?}");
        }
    }

    #[test]
    fn decimals_match_the_standard_formatting_and_parsing() {
        for value in [0, 7, 10, -1, 1_700_000_000_123, i64::MAX, i64::MIN] {
            assert_eq!(decimal(value), value.to_string());
            assert_eq!(parse_decimal(&decimal(value)), Some(value));
        }
        for text in ["", "-", "1.5", " 1", "9223372036854775808", "+1"] {
            assert_eq!(parse_decimal(text), None, "{text}");
        }
    }

    #[test]
    fn lossy_decoding_replaces_maximal_invalid_subsequences() {
        let cases: [&[u8]; 10] = [
            b"plain",
            b"\xc3\xa9",
            b"\xc3",
            b"\xe2\x82",
            b"\xe2\x82\xac",
            b"\xed\xa0\x80",
            b"\xf0\x9f\x98\x80",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"\xe0\x80\xaf\xf8",
        ];
        for bytes in cases {
            let mut ours = String::new();
            push_utf8_lossy(&mut ours, bytes);
            assert_eq!(ours, String::from_utf8_lossy(bytes), "{bytes:?}");
        }
    }

    proptest! {
        #[test]
        fn lossy_decoding_matches_the_standard_library(bytes in proptest::collection::vec(
            prop_oneof![any::<u8>(), 0x80u8..0xc0, 0xc0u8..0xf8], 0..24)
        ) {
            let mut ours = String::new();
            push_utf8_lossy(&mut ours, &bytes);
            prop_assert_eq!(ours, String::from_utf8_lossy(&bytes));
        }
    }
}
