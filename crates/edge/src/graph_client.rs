//! Calls from the worker to the identity graph's Durable Object.
//!
//! One deployment serves one workspace, so there is one object, named after the
//! workspace; it is the single writer of the graph. Calls are JSON over the object's
//! `fetch`, on paths only the worker can reach.

use serde::de::DeserializeOwned;
use worker::{Env, Headers, Method, Request, RequestInit, Response, Stub};

use crate::collect::{Ingest, Stored};
use crate::config::Config;
use crate::error::ApiError;

/// The Durable Object binding's name in `wrangler.toml`.
pub const BINDING: &str = "IDENTITY_GRAPH";

fn stub(env: &Env) -> Result<Stub, ApiError> {
    let name = &Config::bundled().workspace.name;
    let namespace = env.durable_object(BINDING)?;
    Ok(namespace
        .id_from_name(if name.is_empty() { "default" } else { name })?
        .get_stub()?)
}

/// Sends a request to the graph and returns its answer as it is.
pub async fn call(
    env: &Env,
    method: Method,
    path_and_query: &str,
    body: Option<String>,
) -> Result<Response, ApiError> {
    let mut init = RequestInit::new();
    init.with_method(method);
    if let Some(body) = body {
        let headers = Headers::new();
        headers.set("content-type", "application/json")?;
        init.with_headers(headers);
        // As bytes: a JS string would be encoded to UTF-16 on its way out of wasm.
        init.with_body(Some(js_sys::Uint8Array::from(body.as_bytes()).into()));
    }
    let req = Request::new_with_init(&format!("https://graph{path_and_query}"), &init)?;
    Ok(stub(env)?.fetch_with_request(req).await?)
}

/// Sends a request and reads a JSON answer, turning the graph's errors into ours.
pub async fn call_json<T: DeserializeOwned>(
    env: &Env,
    method: Method,
    path_and_query: &str,
    body: Option<String>,
) -> Result<T, ApiError> {
    let mut res = call(env, method, path_and_query, body).await?;
    if res.status_code() >= 400 {
        let text = res.text().await.unwrap_or_default();
        return Err(ApiError::Internal(format!(
            "graph answered {}: {text}",
            res.status_code()
        )));
    }
    read_json(&mut res).await
}

/// Reads a JSON answer from its bytes (its text would be decoded from UTF-16 first).
///
/// # Errors
/// [`ApiError::Internal`] when the body cannot be read or is not the expected JSON.
pub async fn read_json<T: DeserializeOwned>(res: &mut Response) -> Result<T, ApiError> {
    let bytes = res.bytes().await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Internal(format!("graph answered unreadable JSON: {e}")))
}

/// Stores events durably; the answer comes once they are in the object's storage.
pub async fn ingest(env: &Env, ingest: &Ingest) -> Result<Stored, ApiError> {
    let body = serde_json::to_string(ingest).map_err(|e| ApiError::Internal(e.to_string()))?;
    call_json(env, Method::Post, "/ingest", Some(body)).await
}
