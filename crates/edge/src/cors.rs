//! CORS for the collector and the decide route.
//!
//! Browsers post events as `text/plain`, which needs no preflight; clients that send
//! `application/json` get a preflight answer. Only configured origins may read answers,
//! and they are echoed back (never `*`) since answers may depend on the id cookies.

use worker::{Headers, Response};

use crate::config::Config;

/// Adds the CORS headers for `origin` to a response, when the origin is allowed.
pub fn apply(res: &mut Response, origin: Option<&str>, config: &Config) -> worker::Result<()> {
    let Some(origin) = origin.filter(|o| config.is_allowed_origin(o)) else {
        return Ok(());
    };
    let headers = res.headers_mut();
    headers.set("access-control-allow-origin", origin)?;
    headers.set("access-control-allow-credentials", "true")?;
    // Lets the SDK read when to retry after a 429.
    headers.set("access-control-expose-headers", "retry-after")?;
    headers.append("vary", "Origin")?;
    Ok(())
}

/// The answer to a preflight request.
pub fn preflight(origin: Option<&str>, config: &Config) -> worker::Result<Response> {
    let headers = Headers::new();
    if let Some(origin) = origin.filter(|o| config.is_allowed_origin(o)) {
        headers.set("access-control-allow-origin", origin)?;
        headers.set("access-control-allow-credentials", "true")?;
        headers.set("access-control-allow-methods", "POST, GET, OPTIONS")?;
        headers.set(
            "access-control-allow-headers",
            "content-type, authorization, content-encoding",
        )?;
        headers.set("access-control-max-age", "86400")?;
        headers.set("vary", "Origin")?;
    }
    Ok(Response::empty()?.with_status(204).with_headers(headers))
}
