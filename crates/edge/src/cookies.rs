//! The id cookies: reading `weft_aid` / `weft_sid` and minting the worker's own `weft_sid`.
//!
//! `weft_sid` is an anonymous id the worker sets itself, HttpOnly, so browsers that cap
//! script-set cookies (Safari: 7 days) still keep the visitor's id; the identity graph
//! links it to the SDK's `anonymousId`.

/// The SDK's anonymous-id cookie.
pub const AID: &str = "weft_aid";
/// The worker's own id cookie.
pub const SID: &str = "weft_sid";

/// How long the worker's cookie lives: 400 days, the most browsers allow.
pub const SID_MAX_AGE: u32 = 400 * 24 * 60 * 60;

/// A cookie's value by name from a `Cookie` header; empty values count as absent.
pub fn get(header: &str, name: &str) -> Option<String> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        if key.trim() != name {
            return None;
        }
        let value = value.trim().trim_matches('"');
        let value = percent_decode(value);
        (!value.trim().is_empty()).then_some(value)
    })
}

/// A fresh `Set-Cookie` value for `weft_sid`.
///
/// # Errors
/// When the runtime's random source fails.
pub fn new_sid_cookie(domain: &str, secure: bool) -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("random source failed: {e}"))?;
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut cookie = format!("{SID}={id}; Path=/; Max-Age={SID_MAX_AGE}; HttpOnly; SameSite=Lax");
    if !domain.is_empty() {
        cookie.push_str("; Domain=");
        cookie.push_str(domain);
    }
    if secure {
        cookie.push_str("; Secure");
    }
    Ok(cookie)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).trim_matches('"').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_tolerantly() {
        let header = "a=1; weft_aid=%22anon-123%22; weft_sid=; other=x";
        assert_eq!(get(header, AID).as_deref(), Some("anon-123"));
        assert_eq!(get(header, SID), None, "an empty cookie counts as absent");
        assert_eq!(get("weft_aid=\"anon-9\"", AID).as_deref(), Some("anon-9"));
        assert_eq!(get("", AID), None);
    }

    #[test]
    fn sid_cookie_is_http_only_and_long_lived() {
        let c = new_sid_cookie("example.com", true).unwrap();
        assert!(c.starts_with("weft_sid="));
        assert!(c.contains("HttpOnly") && c.contains("Domain=example.com") && c.contains("Secure"));
        assert!(c.contains("Max-Age=34560000"));
        assert_ne!(
            new_sid_cookie("", false).unwrap(),
            new_sid_cookie("", false).unwrap()
        );
    }
}
