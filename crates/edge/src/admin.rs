//! The admin API: profiles, segments, merges and metrics, behind the admin token.
//!
//! The worker checks the bearer token and hands the request to the identity graph's
//! Durable Object, which owns all of this state.

use worker::{Env, Method, Request, Response};

use crate::error::ApiError;
use crate::graph_client;

/// Checks `Authorization: Bearer <admin token>` against the `WEFT_ADMIN_TOKEN` secret.
///
/// # Errors
/// 401 when the token is missing or wrong; 500 naming the secret when it is not set.
pub fn authorize(req: &Request, env: &Env) -> Result<(), ApiError> {
    let expected = env
        .secret("WEFT_ADMIN_TOKEN")
        .map_err(|_| ApiError::MissingSecret("WEFT_ADMIN_TOKEN"))?
        .to_string();
    let header = req
        .headers()
        .get("authorization")
        .ok()
        .flatten()
        .unwrap_or_default();
    let token = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .unwrap_or("");
    if expected.is_empty() || !constant_time_eq(token.as_bytes(), expected.as_bytes()) {
        return Err(ApiError::Unauthorized);
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Handles `/admin/*`: checks the token and the route, then asks the graph.
pub async fn admin(mut req: Request, env: &Env) -> Result<Response, ApiError> {
    authorize(&req, env)?;
    let url = req.url()?;
    let path = url.path().trim_start_matches("/admin").to_owned();
    let method = req.method();
    let allowed =
        allowed_methods(&path).ok_or_else(|| ApiError::NotFound(format!("/admin{path}")))?;
    if !allowed.split(", ").any(|m| m == method.as_ref()) {
        return Err(ApiError::MethodNotAllowed {
            method: method.to_string(),
            path: format!("/admin{path}"),
            allowed,
        });
    }
    let body = match method {
        Method::Post | Method::Put => Some(req.text().await?),
        _ => None,
    };
    let target = match url.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    graph_client::call(env, method, &target, body).await
}

/// The methods an admin path takes, or `None` for an unknown path.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["profiles"] => Some("GET, DELETE"),
        ["segments"] => Some("GET"),
        ["segments", name] if !name.is_empty() => Some("GET, PUT, DELETE"),
        ["merges"] => Some("GET, POST"),
        ["merges", id, "undo"] if !id.is_empty() => Some("POST"),
        ["metrics"] => Some("GET"),
        ["replay"] => Some("POST"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_routes_and_their_methods() {
        let cases = [
            ("/profiles", Some("GET, DELETE")),
            ("/segments/paid", Some("GET, PUT, DELETE")),
            ("/merges/12/undo", Some("POST")),
            ("/merges", Some("GET, POST")),
            ("/metrics", Some("GET")),
            ("/nope", None),
            ("/merges//undo", None),
        ];
        for (path, want) in cases {
            assert_eq!(allowed_methods(path), want, "{path}");
        }
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
