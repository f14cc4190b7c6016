//! The worker's one request-error type, and the one place that maps it to HTTP.
//!
//! Each variant knows its status, the JSON body a developer can act on
//! (`{"error": "<lowercase message naming the fault>"}`), and the reason it is counted
//! under in `/admin/metrics`. 5xx answers are our bugs and logged as errors; 4xx are the
//! caller's and logged at debug.

use worker::{Response, ResponseBuilder};

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No write key in the Basic user name or the body.
    #[error(
        "missing write key (send it as the basic auth user name or as \"writeKey\" in the body)"
    )]
    MissingWriteKey,
    /// A write key no source has.
    #[error("unknown write key")]
    UnknownWriteKey,
    /// The admin token is missing or wrong.
    #[error("missing or wrong admin token (send \"authorization: bearer <token>\")")]
    Unauthorized,
    /// A user id was asked for without a valid `userHash`.
    #[error("{0}")]
    Forbidden(String),
    /// The body is larger than the limit, before or after decompression.
    #[error("body exceeds {0} bytes (after decompression)")]
    TooLarge(usize),
    /// The body cannot be read.
    #[error("{0}")]
    BadBody(String),
    /// The body comes in a content encoding the collector does not read.
    #[error("content-encoding {0:?} is not supported (send gzip or no encoding)")]
    UnsupportedEncoding(String),
    /// The request is malformed in some other way.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing in the batch was valid.
    #[error("no valid events: {first}")]
    NothingValid {
        /// The first event's fault.
        first: String,
        /// Every rejection, as the success answer would list them.
        rejected: serde_json::Value,
    },
    /// No route has this path.
    #[error("no route for {0}")]
    NotFound(String),
    /// The route exists but not with this method.
    #[error("method {method} not allowed on {path} (allowed: {allowed})")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The path.
        path: String,
        /// The methods the route takes.
        allowed: &'static str,
    },
    /// Too many requests for this write key.
    #[error("rate limit exceeded for this write key; retry after {0} s")]
    RateLimited(u32),
    /// A configured secret is missing from the deployment.
    #[error("the worker is missing the secret {0}; set it with `wrangler secret put {0}`")]
    MissingSecret(&'static str),
    /// Something on our side failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::MissingWriteKey | ApiError::UnknownWriteKey | ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::TooLarge(_) => 413,
            ApiError::UnsupportedEncoding(_) => 415,
            ApiError::BadBody(_) | ApiError::BadRequest(_) | ApiError::NothingValid { .. } => 400,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::RateLimited(_) => 429,
            ApiError::MissingSecret(_) | ApiError::Internal(_) => 500,
        }
    }

    /// The reason this error is counted under in the metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::MissingWriteKey => "missing_write_key",
            ApiError::UnknownWriteKey => "unknown_write_key",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::TooLarge(_) => "body_too_large",
            ApiError::BadBody(_) => "bad_body",
            ApiError::UnsupportedEncoding(_) => "unsupported_encoding",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NothingValid { .. } => "nothing_valid",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::MissingSecret(_) => "missing_secret",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The JSON answer for this error.
    pub fn to_response(&self) -> worker::Result<Response> {
        let status = self.status();
        if status >= 500 {
            worker::console_error!(
                "{}",
                serde_json::json!({"level":"error","msg":"request failed","error":self.to_string()})
            );
        }
        let mut body = serde_json::json!({ "error": self.to_string() });
        if let ApiError::NothingValid { rejected, .. } = self {
            body["rejected"] = rejected.clone();
        }
        let mut builder = ResponseBuilder::new().with_status(status);
        match self {
            ApiError::RateLimited(after) => {
                builder = builder.with_header("retry-after", &after.to_string())?;
            }
            ApiError::MethodNotAllowed { allowed, .. } => {
                builder = builder.with_header("allow", allowed)?;
            }
            _ => {}
        }
        builder.from_json(&body)
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl From<worker::kv::KvError> for ApiError {
    fn from(e: worker::kv::KvError) -> ApiError {
        ApiError::Internal(format!("kv: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_a_fitting_status() {
        let cases: [(ApiError, u16, &str); 6] = [
            (ApiError::MissingWriteKey, 401, "missing write key"),
            (
                ApiError::TooLarge(512_000),
                413,
                "body exceeds 512000 bytes",
            ),
            (ApiError::RateLimited(3), 429, "rate limit exceeded"),
            (
                ApiError::NotFound("/v2/x".into()),
                404,
                "no route for /v2/x",
            ),
            (
                ApiError::MethodNotAllowed {
                    method: "GET".into(),
                    path: "/v1/batch".into(),
                    allowed: "POST, OPTIONS",
                },
                405,
                "method GET not allowed on /v1/batch",
            ),
            (
                ApiError::Forbidden("userHash does not match".into()),
                403,
                "userHash",
            ),
        ];
        for (error, status, text) in cases {
            assert_eq!(error.status(), status);
            assert!(error.to_string().starts_with(text), "{error}");
            assert_eq!(error.reason(), error.reason().to_lowercase());
        }
    }
}
