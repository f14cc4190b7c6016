//! Normalising identifier values, and the junk values that never become identifiers.
//!
//! Clients send placeholders where they have no id: `"undefined"`, `"null"`, `"None"`,
//! `"[object Object]"`, `"0"`, an empty string, sometimes quoted (`"\"null\""`). One such
//! value used as a merge key fuses every visitor that sent it into one person, so every
//! value goes through [`value`] before it becomes an [`Identifier`](super::Identifier):
//! trimmed, emails lower-cased, placeholders and a workspace's own junk list refused.
//! `_ga` cookie values are reduced to their client id by [`ga_client_id`], the same way
//! Google Analytics does, so a server-side event and the browser's session agree.

use std::borrow::Cow;

use super::IdKind;

/// The longest identifier value kept, in bytes; longer values are junk.
pub const MAX_LEN: usize = 512;

/// Placeholders that never identify anyone, compared without regard to ASCII case.
pub const DEFAULT_JUNK: [&str; 11] = [
    "undefined",
    "null",
    "none",
    "nan",
    "[object object]",
    "anonymous",
    "guest",
    "0",
    "-1",
    "true",
    "false",
];

/// Why a value is not an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Junk {
    /// Empty or whitespace only (also when quoted: `""`).
    #[error("empty value")]
    Empty,
    /// A placeholder from the default list or the workspace's own.
    #[error("placeholder value {0:?}")]
    Placeholder(String),
    /// An email that is not `<local>@<domain>`.
    #[error("email {0:?} is not <local>@<domain>")]
    NotEmail(String),
    /// Longer than [`MAX_LEN`] bytes.
    #[error("value of {0} bytes exceeds {MAX_LEN}")]
    TooLong(usize),
    /// A `_ga` cookie value that does not have the `GA1.<depth>.<client id>` shape.
    #[error("_ga cookie {0:?} has no client id (expected GA1.<depth>.<client id>)")]
    NotGaCookie(String),
    /// Holds a control character (`\u0000`, a line break, ...): no real id does, and a
    /// client that sends one sends it for everybody.
    #[error("value holds a control character")]
    Control,
    /// Not text: a boolean, an array, an object, or a number that is not a whole number
    /// (a long numeric id arrives rounded, so two people could share it).
    #[error("expected a string or a whole number (got {0})")]
    NotText(&'static str),
}

/// Characters that show nothing: a value made only of them and whitespace is empty.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
        )
}

/// Normalises `raw` as a value of `kind`, refusing junk.
///
/// Trims whitespace, takes a value out of one pair of quotes (`"\"u-1\""` is `u-1`: a
/// value serialised twice), drops characters that show nothing (zero-width spaces, soft
/// hyphens) from inside it, lower-cases emails, and refuses empty values, the placeholders
/// of [`DEFAULT_JUNK`] and of `extra` (case-insensitive, also quoted), emails that are not
/// `<local>@<domain>`, and values longer than [`MAX_LEN`].
///
/// ```
/// use weft_core::identity::{normalise, IdKind};
/// assert_eq!(normalise::value(&IdKind::Email, " Ann@X.io ", &[]).unwrap(), "ann@x.io");
/// assert!(normalise::value(&IdKind::UserId, "\"null\"", &[]).is_err());
/// ```
///
/// # Errors
/// [`Junk`] naming why the value is refused.
pub fn value(kind: &IdKind, raw: &str, extra: &[String]) -> Result<String, Junk> {
    value_ref(kind, raw, extra).map(Cow::into_owned)
}

/// [`value`] borrowing from `raw` where normalising changes nothing but its ends (every
/// kind but an email holding capitals), so that looking an identifier up copies nothing.
///
/// # Errors
/// [`Junk`] naming why the value is refused.
pub(crate) fn value_ref<'a>(
    kind: &IdKind,
    raw: &'a str,
    extra: &[String],
) -> Result<Cow<'a, str>, Junk> {
    // Printable ASCII at both ends (the usual id) is left as is without decoding chars.
    let printable = |b: Option<&u8>| b.is_some_and(|&b| (0x21..0x80).contains(&b));
    let trimmed = if printable(raw.as_bytes().first()) && printable(raw.as_bytes().last()) {
        raw
    } else {
        raw.trim_matches(is_invisible)
    };
    let ascii = trimmed.is_ascii();
    if trimmed.bytes().any(|b| b < 0x20 || b == 0x7f)
        || (!ascii && trimmed.chars().any(char::is_control))
    {
        return Err(Junk::Control);
    }
    if trimmed.len() > MAX_LEN {
        return Err(Junk::TooLong(trimmed.len()));
    }
    // Invisible characters inside a value come from copying and pasting: "u\u{200B}1"
    // and "u1" look alike to everyone, so they are one value. Then quotes come off, as
    // many pairs as there are (a value serialised twice or more), so that what is kept
    // normalises to itself.
    let value: Cow<'a, str> = if !ascii && trimmed.chars().any(is_hidden) {
        let cleaned: String = trimmed.chars().filter(|&c| !is_hidden(c)).collect();
        Cow::Owned(unquote_all(&cleaned).to_owned())
    } else {
        Cow::Borrowed(unquote_all(trimmed))
    };
    if value.is_empty() {
        return Err(Junk::Empty);
    }
    // A value longer than every placeholder skips the default list.
    let listed = |v: &str| {
        (v.len() <= LONGEST_JUNK && DEFAULT_JUNK.iter().any(|j| v.eq_ignore_ascii_case(j)))
            || extra.iter().any(|j| v.eq_ignore_ascii_case(j.trim()))
    };
    if listed(&value) {
        return Err(Junk::Placeholder(trimmed.to_owned()));
    }
    if *kind == IdKind::Email {
        let is_email = value
            .rsplit_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
        if !is_email {
            return Err(Junk::NotEmail(trimmed.to_owned()));
        }
        if value.bytes().any(|b| b.is_ascii_uppercase()) {
            return Ok(Cow::Owned(value.to_ascii_lowercase()));
        }
    }
    Ok(value)
}

/// Characters that show nothing and join or part nothing either: dropped from inside a
/// value. (Zero-width joiners and non-joiners are left: they change how some scripts and
/// emoji read.)
fn is_hidden(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}' | '\u{2060}' | '\u{FEFF}')
}

/// The length of the longest entry of [`DEFAULT_JUNK`].
const LONGEST_JUNK: usize = {
    let mut longest = 0;
    let mut i = 0;
    while i < DEFAULT_JUNK.len() {
        if DEFAULT_JUNK[i].len() > longest {
            longest = DEFAULT_JUNK[i].len();
        }
        i += 1;
    }
    longest
};

/// Whether `raw` would be refused as a value of `kind`.
pub fn is_junk(kind: &IdKind, raw: &str, extra: &[String]) -> bool {
    value(kind, raw, extra).is_err()
}

/// The client id inside a `_ga` cookie value.
///
/// Accepts the bare value (`GA1.1.1234567890.1700000000`), the `_ga=` pair, or a whole
/// `Cookie` header holding a `_ga` pair. The version (`GA1`) and the domain depth (`1`,
/// `2`, or `3-2` with a path depth) are dropped; what follows is the client id, kept as
/// is (`1234567890.1700000000`, or a custom id such as `custom-0001`).
///
/// ```
/// use weft_core::identity::normalise::ga_client_id;
/// assert_eq!(ga_client_id("_ga=GA1.3-2.1234567890.1700000000").unwrap(), "1234567890.1700000000");
/// assert!(ga_client_id("garbage").is_err());
/// ```
///
/// # Errors
/// [`Junk::NotGaCookie`] when the value lacks the `GA<n>.<depth>.` prefix or a client id
/// after it; no id is invented in its place.
pub fn ga_client_id(raw: &str) -> Result<String, Junk> {
    let cookie = raw
        .split(';')
        .map(str::trim)
        .find_map(|pair| pair.strip_prefix("_ga="))
        .unwrap_or(raw)
        .trim();
    let bad = || Junk::NotGaCookie(cookie.to_owned());
    let mut parts = cookie.splitn(3, '.');
    let version = parts.next().ok_or_else(bad)?;
    let depth = parts.next().ok_or_else(bad)?;
    let client = parts.next().ok_or_else(bad)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let version_ok = version.len() > 2 && version.starts_with("GA") && digits(&version[2..]);
    let depth_ok = match depth.split_once('-') {
        Some((domain, path)) => digits(domain) && digits(path),
        None => digits(depth),
    };
    if !version_ok || !depth_ok {
        return Err(bad());
    }
    match value(&IdKind::Other("ga_client_id".into()), client, &[]) {
        Ok(client) => Ok(client),
        Err(_) => Err(bad()),
    }
}

/// `text` (trimmed) out of every pair of quotes around it, and the invisible characters
/// at their ends.
fn unquote_all(mut text: &str) -> &str {
    loop {
        if !text.starts_with(['"', '\'']) {
            return text;
        }
        let inner = unquote(text).trim_matches(is_invisible);
        if inner.len() == text.len() {
            return text;
        }
        text = inner;
    }
}

fn unquote(text: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return inner;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_plain_quoted_and_any_case_are_junk() {
        let junk = [
            "",
            "   ",
            "\t",
            "undefined",
            "null",
            "None",
            "NaN",
            "[object Object]",
            "anonymous",
            "Guest",
            "0",
            "-1",
            "true",
            "FALSE",
            "\"null\"",
            "'undefined'",
            "\"\"",
            "\" \"",
            " \"None\" ",
        ];
        for raw in junk {
            assert!(is_junk(&IdKind::UserId, raw, &[]), "{raw:?} should be junk");
        }
    }

    #[test]
    fn invisible_and_control_values_are_junk() {
        let cases = [
            ("\u{200B}", Junk::Empty),
            ("\u{FEFF}\u{00A0}", Junk::Empty),
            ("\"\u{200B}\"", Junk::Empty),
            ("\u{0}", Junk::Control),
            ("a\u{0}b", Junk::Control),
            ("user\n1", Junk::Control),
            ("i\u{85}d", Junk::Control),
        ];
        for (raw, junk) in cases {
            assert_eq!(value(&IdKind::UserId, raw, &[]), Err(junk), "{raw:?}");
        }
        // Invisible characters at the ends of a real id are trimmed like spaces.
        assert_eq!(
            value(&IdKind::UserId, "\u{200B}user-1\u{FEFF}", &[]).as_deref(),
            Ok("user-1")
        );
    }

    #[test]
    fn real_values_are_trimmed_and_kept() {
        let cases = [
            (IdKind::UserId, " user-1 ", "user-1"),
            (IdKind::UserId, "nullable", "nullable"),
            (IdKind::UserId, "00", "00"),
            (IdKind::AnonymousId, "Anon-A", "Anon-A"),
            (IdKind::Email, " A@Example.COM", "a@example.com"),
            (IdKind::Other("phone".into()), "+33612", "+33612"),
        ];
        for (kind, raw, want) in cases {
            assert_eq!(value(&kind, raw, &[]).as_deref(), Ok(want), "{raw:?}");
        }
    }

    #[test]
    fn quoted_values_and_hidden_characters_give_the_plain_value() {
        let cases = [
            (IdKind::UserId, "\"user-9\"", "user-9"),
            (IdKind::UserId, "'user-9'", "user-9"),
            (IdKind::UserId, "user\u{200B}-9", "user-9"),
            (IdKind::UserId, "user\u{00AD}-9", "user-9"),
            (IdKind::UserId, "\u{FEFF}\"user-9\"\u{2060}", "user-9"),
            (IdKind::Email, "\"Ann@X.io\"", "ann@x.io"),
            (IdKind::Email, "ann\u{200B}@x.io", "ann@x.io"),
            (IdKind::UserId, "'\"user-9\"'", "user-9"),
            // Joiners change how some scripts read: they stay.
            (
                IdKind::UserId,
                "\u{0645}\u{200C}\u{0646}",
                "\u{0645}\u{200C}\u{0646}",
            ),
            // Spaces inside are part of the value.
            (IdKind::UserId, "Ann Lee", "Ann Lee"),
        ];
        for (kind, raw, want) in cases {
            assert_eq!(value(&kind, raw, &[]).as_deref(), Ok(want), "{raw:?}");
        }
    }

    #[test]
    fn what_is_kept_normalises_to_itself() {
        let raws = [
            "nu\u{200B}ll",
            "'\"null\"'",
            "\"\u{200B}\"",
            "\"'u-1'\"",
            " \"A@B.io\" ",
            "u\u{00AD}\u{200B}-1",
            "\u{FEFF}'x'\u{2060}",
        ];
        for raw in raws {
            for kind in [IdKind::UserId, IdKind::Email] {
                if let Ok(once) = value(&kind, raw, &[]) {
                    assert_eq!(
                        value(&kind, &once, &[]),
                        Ok(once.clone()),
                        "{raw:?} -> {once:?}"
                    );
                }
            }
        }
        assert!(value(&IdKind::UserId, "nu\u{200B}ll", &[]).is_err());
        assert!(value(&IdKind::UserId, "'\"null\"'", &[]).is_err());
    }

    #[test]
    fn junk_in_email_is_refused() {
        let cases = [
            ("null", Junk::Placeholder("null".into())),
            ("\"undefined\"", Junk::Placeholder("\"undefined\"".into())),
            ("no-at-sign", Junk::NotEmail("no-at-sign".into())),
            ("a@", Junk::NotEmail("a@".into())),
            ("@example.com", Junk::NotEmail("@example.com".into())),
            ("", Junk::Empty),
        ];
        for (raw, want) in cases {
            assert_eq!(value(&IdKind::Email, raw, &[]), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn workspace_junk_list_adds_to_the_defaults() {
        let extra = vec!["test@example.com".to_owned(), "  n/a ".to_owned()];
        assert!(is_junk(&IdKind::Email, "TEST@example.com", &extra));
        assert!(is_junk(&IdKind::UserId, "N/A", &extra));
        assert!(!is_junk(&IdKind::UserId, "n/b", &extra));
    }

    #[test]
    fn overlong_values_are_junk() {
        let long = "x".repeat(MAX_LEN + 1);
        assert_eq!(
            value(&IdKind::UserId, &long, &[]),
            Err(Junk::TooLong(MAX_LEN + 1))
        );
        assert!(value(&IdKind::UserId, &long[1..], &[]).is_ok());
    }

    #[test]
    fn ga_cookie_client_id() {
        let cases = [
            (
                "_ga=GA1.1.1234567890.1700000000",
                Some("1234567890.1700000000"),
            ),
            (
                "_ga=GA1.2.1234567890.1700000000",
                Some("1234567890.1700000000"),
            ),
            (
                "_ga=GA1.3-2.1234567890.1700000000",
                Some("1234567890.1700000000"),
            ),
            ("_ga=GA1.1.custom-0001", Some("custom-0001")),
            ("_ga=garbage", None),
            ("GA1.2.1234567890.1700000000", Some("1234567890.1700000000")),
            ("theme=dark; _ga=GA1.2.42.17; other=1", Some("42.17")),
            ("GA1.2.", None),
            ("GA1.2.null", None),
            ("GAx.2.123.456", None),
            ("GA1.x.123.456", None),
            ("", None),
        ];
        for (raw, want) in cases {
            assert_eq!(ga_client_id(raw).ok().as_deref(), want, "{raw:?}");
        }
        assert!(matches!(ga_client_id("_ga=garbage"), Err(Junk::NotGaCookie(v)) if v == "garbage"));
    }
}
