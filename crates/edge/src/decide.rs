//! `GET /v1/decide`: which segments is this visitor in, from one KV read.
//!
//! The identity graph writes a decision doc to KV under each anonymous id and the user id
//! of a profile whenever its membership changes; this route reads one key and answers
//! with the doc as stored. Anonymous ids are random, so they are their own secret; user
//! ids are guessable, so they are only readable with `userHash`, the hex HMAC-SHA256 of
//! the user id under the workspace's identity secret, computed by the site's backend.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use weft_core::identity::normalise::{is_junk, value};
use weft_core::identity::IdKind;
use worker::{Env, Method, Request, Response};

use crate::cookies;
use crate::error::ApiError;

/// The KV binding holding decision docs.
pub const KV_BINDING: &str = "DECISIONS";

/// The answer for a visitor weft has no doc for yet.
pub const EMPTY_DECISION: &str = r#"{"segments":[],"version":0,"validUntil":null}"#;

/// The longest id the route takes (KV keys are at most 512 bytes).
pub const MAX_ID_LEN: usize = 400;

/// The KV key of an anonymous id's decision doc.
pub fn anonymous_key(id: &str) -> String {
    format!("a:{id}")
}

/// The KV key of a user id's decision doc.
pub fn user_key(id: &str) -> String {
    format!("u:{id}")
}

/// Whether `hash` is the hex HMAC-SHA256 of `user_id` under `secret`, in constant time.
pub fn is_valid_user_hash(secret: &str, user_id: &str, hash: &str) -> bool {
    let Ok(expected) = hex::decode(hash.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(user_id.as_bytes());
    mac.verify_slice(&expected).is_ok()
}

/// The hex HMAC-SHA256 of a user id, as a site's backend computes it.
pub fn user_hash(secret: &str, user_id: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac takes keys of any length");
    mac.update(user_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Which doc a decide request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Asked {
    /// By anonymous id (query, `weft_sid` or `weft_aid`).
    Anonymous(String),
    /// By user id, with its hash.
    User {
        /// The user id.
        id: String,
        /// The hash sent with it.
        hash: Option<String>,
    },
}

/// Reads the id a request asks about, from the query, else the id cookies.
///
/// # Errors
/// 400 when there is no id or it is too long.
pub fn asked(query: &[(String, String)], cookie_header: &str) -> Result<Asked, ApiError> {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    // A placeholder ("undefined", "null", ...) is no visitor's id: asked for directly it
    // is refused; in a cookie it is passed over for the next source.
    let junk = |v: &str| is_junk(&IdKind::AnonymousId, v, &[]);
    if let Some(id) = param("anonymousId").filter(|v| !v.is_empty()) {
        if let Err(why) = value(&IdKind::AnonymousId, &id, &[]) {
            return Err(ApiError::BadRequest(format!(
                "anonymousId is no visitor's id: {why}"
            )));
        }
    }
    let asked = if let Some(id) = param("userId").filter(|v| !v.is_empty()) {
        Asked::User {
            id,
            hash: param("userHash"),
        }
    } else if let Some(id) = param("anonymousId")
        .filter(|v| !v.is_empty())
        .or_else(|| cookies::get(cookie_header, cookies::SID).filter(|v| !junk(v)))
        .or_else(|| cookies::get(cookie_header, cookies::AID).filter(|v| !junk(v)))
    {
        // Keyed as ingest keys it: the normalised value (quotes, hidden characters off).
        Asked::Anonymous(value(&IdKind::AnonymousId, &id, &[]).unwrap_or(id))
    } else {
        return Err(ApiError::BadRequest(
            "no visitor id: pass ?anonymousId=… (or ?userId=…&userHash=…), or send the \
             weft_sid / weft_aid cookie"
                .into(),
        ));
    };
    let (Asked::Anonymous(id) | Asked::User { id, .. }) = &asked;
    if id.len() > MAX_ID_LEN {
        return Err(ApiError::BadRequest(format!(
            "id is {} bytes long; the limit is {MAX_ID_LEN}",
            id.len()
        )));
    }
    Ok(asked)
}

/// Handles `GET /v1/decide`.
pub async fn decide(req: &Request, env: &Env) -> Result<Response, ApiError> {
    // The hot path: read the query straight from the request's URL text with core's
    // reader, rather than parsing the whole URL a second time.
    let raw_url = req.inner().url();
    let query = weft_core::url::pairs(weft_core::url::query(&raw_url));
    let cookie_header = req
        .headers()
        .get("cookie")
        .ok()
        .flatten()
        .unwrap_or_default();
    let key = match asked(&query, &cookie_header)? {
        Asked::Anonymous(id) => anonymous_key(&id),
        Asked::User { id, hash } => {
            let secret = env
                .secret("WEFT_IDENTITY_SECRET")
                .map_err(|_| ApiError::MissingSecret("WEFT_IDENTITY_SECRET"))?
                .to_string();
            let Some(hash) = hash.filter(|h| !h.is_empty()) else {
                return Err(ApiError::Forbidden(
                    "userId needs userHash, the hex hmac-sha256 of the user id under the \
                     identity secret"
                        .into(),
                ));
            };
            if !is_valid_user_hash(&secret, &id, &hash) {
                return Err(ApiError::Forbidden("userHash does not match userId".into()));
            }
            // The hash signs the id as sent; the key is the id as ingest normalised it.
            match value(&IdKind::UserId, &id, &[]) {
                Ok(normal) => user_key(&normal),
                Err(why) => {
                    return Err(ApiError::BadRequest(format!(
                        "userId is no user's id: {why}"
                    )))
                }
            }
        }
    };

    if query.iter().any(|(k, v)| k == "explain" && v != "0") {
        crate::admin::authorize(req, env)?;
        let path = format!("/explain?key={}", encode(&key));
        return crate::graph_client::call(env, Method::Get, &path, None).await;
    }

    let doc = env.kv(KV_BINDING)?.get(&key).text().await?;
    let mut res = Response::ok(doc.unwrap_or_else(|| EMPTY_DECISION.to_owned()))?;
    let headers = res.headers_mut();
    headers.set("content-type", "application/json")?;
    headers.set("cache-control", "private, no-store")?;
    Ok(res)
}

/// Percent-encodes a query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn ids_come_from_the_query_then_the_cookies() {
        let cookie = "weft_aid=aid-1; weft_sid=sid-1";
        let cases = [
            (
                q(&[("anonymousId", "q-1")]),
                cookie,
                Asked::Anonymous("q-1".into()),
            ),
            (q(&[]), cookie, Asked::Anonymous("sid-1".into())),
            (q(&[]), "weft_aid=aid-1", Asked::Anonymous("aid-1".into())),
            (
                q(&[("userId", "u-1"), ("userHash", "ab")]),
                cookie,
                Asked::User {
                    id: "u-1".into(),
                    hash: Some("ab".into()),
                },
            ),
        ];
        for (query, cookie, want) in cases {
            assert_eq!(asked(&query, cookie).unwrap(), want);
        }
        assert!(asked(&q(&[]), "").is_err());
        assert!(asked(&q(&[("anonymousId", "undefined")]), "").is_err());
        assert_eq!(
            asked(&q(&[]), "weft_sid=undefined; weft_aid=aid-1").unwrap(),
            Asked::Anonymous("aid-1".into()),
            "a placeholder cookie is passed over"
        );
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert!(asked(&q(&[("anonymousId", &long)]), "").is_err());
    }

    #[test]
    fn user_hash_is_checked() {
        let hash = user_hash("demo-identity-secret", "user-1");
        assert_eq!(hash.len(), 64);
        assert!(is_valid_user_hash("demo-identity-secret", "user-1", &hash));
        assert!(!is_valid_user_hash("demo-identity-secret", "user-2", &hash));
        assert!(!is_valid_user_hash("other-secret", "user-1", &hash));
        assert!(!is_valid_user_hash("demo-identity-secret", "user-1", "zz"));
    }
}
