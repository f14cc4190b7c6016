//! weft's edge worker: the collector, decisions, the admin API, and the identity graph.
//!
//! Routes (see DESIGN.md's HTTP API):
//! - `POST /v1/batch`, `/v1/b`, `/v1/{track,page,screen,identify,group,alias}`,
//!   `/v1/{t,p,s,i,g,a}`: the collector ([`collect`]).
//! - `GET /v1/decide`: a visitor's segments from one KV read ([`decide`]).
//! - `/admin/*`: profiles, segments, merges, metrics behind the admin token ([`admin`]).
//!
//! Everything else is the static site in `www/` (served before the worker runs). The
//! identity graph is one Durable Object per workspace ([`graph::IdentityGraph`]), the
//! single writer of profiles; KV is its read replica for decisions.

use worker::{event, Context, Env, Method, Request, Response};

pub mod admin;
pub mod archive;
pub mod batch;
pub mod collect;
pub mod config;
pub mod cookies;
pub mod cors;
pub mod decide;
pub mod error;
// The durable_object macro generates glue functions without docs.
#[allow(missing_docs)]
pub mod graph;
pub mod graph_client;
pub mod personalize;
pub mod publish;
pub mod ratelimit;
pub mod sql_store;

use crate::config::Config;
use crate::error::ApiError;

/// The worker's entry point: routes a request and maps every error to a JSON answer.
#[event(fetch)]
pub async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let config = Config::bundled();
    let origin = req.headers().get("origin").ok().flatten();
    let path = req.path();
    let method = req.method();

    if method == Method::Options && (path.starts_with("/v1/") || path == "/v1") {
        return cors::preflight(origin.as_deref(), config);
    }

    let answer = route(req, &env, &path, method).await;
    let mut res = match answer {
        Ok(res) => res,
        Err(error) => {
            // The graph counts the events of a rate-limited request, and of one with
            // nothing valid, itself.
            let counted = matches!(
                error,
                ApiError::RateLimited(_) | ApiError::NothingValid { .. }
            );
            if error.status() < 500 && !counted {
                let reason = error.reason();
                // Requests refused before reaching the graph are counted too.
                if path.starts_with("/v1/") && path != "/v1/decide" {
                    count_refusal(&env, reason).await;
                }
            }
            error.to_response()?
        }
    };
    if path.starts_with("/v1/") {
        cors::apply(&mut res, origin.as_deref(), config)?;
    }
    Ok(res)
}

async fn route(req: Request, env: &Env, path: &str, method: Method) -> Result<Response, ApiError> {
    if let Some(rest) = path.strip_prefix("/admin/") {
        let _ = rest;
        return admin::admin(req, env).await;
    }
    let Some(name) = path.strip_prefix("/v1/") else {
        return match method {
            Method::Get | Method::Head => personalize::page(req, env).await,
            _ => Err(ApiError::NotFound(path.to_owned())),
        };
    };
    if let Some(which) = name.strip_prefix("bench/") {
        return bench_route(req, env, which).await;
    }
    if name == "decide" {
        return match method {
            Method::Get | Method::Head => decide::decide(&req, env).await,
            _ => Err(method_not_allowed(method, path, "GET, OPTIONS")),
        };
    }
    let Some(kind) = collect::route_kind(name) else {
        return Err(ApiError::NotFound(path.to_owned()));
    };
    if method != Method::Post {
        return Err(method_not_allowed(method, path, "POST, OPTIONS"));
    }
    collect::collect(req, env, kind, worker::Date::now().as_millis() as i64).await
}

/// Routes for `make bench` to measure against, present only when the `WEFT_BENCH` var is
/// `1`: `noop` answers without any work, `bare` reads one KV key (`bench:bare`) and
/// returns it, the least a decide route can do, and `hop` carries the request's body to
/// the identity graph's object and back unread, the least a collector request can cost.
async fn bench_route(mut req: Request, env: &Env, which: &str) -> Result<Response, ApiError> {
    let enabled = env
        .var("WEFT_BENCH")
        .map(|v| v.to_string() == "1")
        .unwrap_or(false);
    match (enabled, which) {
        (true, "noop") => Ok(Response::ok("")?),
        (true, "bare") => {
            let doc = env.kv(decide::KV_BINDING)?.get("bench:bare").text().await?;
            let mut res = Response::ok(doc.unwrap_or_default())?;
            res.headers_mut().set("content-type", "application/json")?;
            Ok(res)
        }
        (true, "hop") => {
            let body = String::from_utf8_lossy(&req.bytes().await?).into_owned();
            graph_client::call(env, Method::Post, "/bench/hop", Some(body)).await
        }
        _ => Err(ApiError::NotFound(format!("/v1/bench/{which}"))),
    }
}

fn method_not_allowed(method: Method, path: &str, allowed: &'static str) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: path.to_owned(),
        allowed,
    }
}

async fn count_refusal(env: &Env, reason: &str) {
    let ingest = collect::Ingest {
        rejected: vec![(reason.to_owned(), 1)],
        ..Default::default()
    };
    // Counting is best effort: a failure to count must not change the answer.
    let _ = graph_client::ingest(env, &ingest).await;
}
