//! Rate limits per write key: a token bucket per source, kept in the identity graph's
//! Durable Object.
//!
//! Every collector request that carries valid events reaches the Durable Object anyway,
//! and the object is the single writer of the workspace, so a bucket kept in its memory
//! is exact (one bucket per source, across every isolate and location) and costs no
//! extra round trip. A bucket holds up to `burst` events and refills at
//! `rate_limit_per_second` (`[collector]` in `weft.toml`); a request is admitted when the
//! bucket holds its events (a batch larger than the burst needs a full bucket, and
//! leaves it in debt), else it is refused whole with 429 and a `Retry-After` saying when
//! it would be admitted. A refused request stored nothing: it is no acknowledgement.
//!
//! The `WEFT_RATE_LIMIT` variable overrides the configuration without a rebuild:
//! `off`, `<per second>` or `<per second>/<burst>`.
//!
//! # Limitations
//! The buckets live in the object's memory: when the runtime evicts or restarts the
//! object, every bucket starts full again. The runtime's own rate-limiting binding works
//! under `wrangler dev` too, but it counts requests rather than events over fixed 10 s or
//! 60 s periods, is configured in `wrangler.toml`, and cannot say when to retry.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;

use serde_json::json;
use weft_core::event::Event;
use weft_core::time::{Millis, SECOND};
use worker::{Env, Method, Response, SqlStorage};

use crate::collect::{Ingest, Stored};
use crate::config::Collector;
use crate::error::ApiError;
use crate::graph_client;
use crate::sql_store::count;

/// The variable that overrides the configured rate.
pub const VAR: &str = "WEFT_RATE_LIMIT";

/// Why a rate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RateError {
    /// The override is not `off`, `<n>` or `<n>/<burst>` with whole positive numbers.
    #[error("WEFT_RATE_LIMIT {0:?} is not off, <per second> or <per second>/<burst>")]
    BadVar(String),
}

/// How many events a write key may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Events per second, the refill rate.
    pub per_second: u32,
    /// Events the bucket holds when full.
    pub burst: u32,
}

impl Rate {
    /// The rate in force: the override when set, else the configuration; `None` when
    /// rate limiting is off (`rate_limit_per_second = 0` or `WEFT_RATE_LIMIT=off`).
    ///
    /// # Errors
    /// [`RateError::BadVar`] when the override cannot be read.
    pub fn in_force(config: &Collector, var: Option<&str>) -> Result<Option<Rate>, RateError> {
        let (per_second, burst) = match var.map(str::trim) {
            None | Some("") => (config.rate_limit_per_second, config.rate_limit_burst),
            Some(text) if text.eq_ignore_ascii_case("off") => return Ok(None),
            Some(text) => {
                let bad = || RateError::BadVar(text.to_owned());
                let (rate, burst) = text.split_once('/').unwrap_or((text, ""));
                let rate: u32 = rate.trim().parse().map_err(|_| bad())?;
                let burst: u32 = match burst.trim() {
                    "" => 0,
                    b => b.parse().map_err(|_| bad())?,
                };
                if rate == 0 {
                    return Err(bad());
                }
                (rate, burst)
            }
        };
        if per_second == 0 {
            return Ok(None);
        }
        Ok(Some(Rate {
            per_second,
            // A burst below one second's worth would refuse a steady sender at the rate.
            burst: burst.max(per_second),
        }))
    }
}

/// One write key's bucket, in thousandths of an event so that refilling by the
/// millisecond is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    milli_tokens: i64,
    at: Millis,
}

/// The buckets of every source, and the rate they refill at.
#[derive(Debug, Default)]
pub struct Limiter {
    rate: OnceCell<Option<Rate>>,
    buckets: RefCell<HashMap<String, Bucket>>,
}

impl Limiter {
    /// A limiter with a fixed rate (`None`: unlimited), for tests and tools.
    pub fn with_rate(rate: Option<Rate>) -> Limiter {
        let limiter = Limiter::default();
        let _ = limiter.rate.set(rate);
        limiter
    }

    /// Takes `cost` events from `source`'s bucket at `now`, or says in how many whole
    /// seconds (at least 1) the request would be admitted.
    ///
    /// # Errors
    /// The seconds to wait, when the bucket does not hold the request.
    pub fn take(&self, source: &str, cost: usize, now: Millis) -> Result<(), u32> {
        let Some(rate) = self.rate.get().copied().flatten() else {
            return Ok(());
        };
        let (per_second, full) = (i64::from(rate.per_second), i64::from(rate.burst) * 1_000);
        let mut buckets = self.buckets.borrow_mut();
        let bucket = buckets.entry(source.to_owned()).or_insert(Bucket {
            milli_tokens: full,
            at: now,
        });
        // Events per second are thousandths of an event per millisecond.
        let refill = (now - bucket.at).max(0).saturating_mul(per_second);
        bucket.milli_tokens = bucket.milli_tokens.saturating_add(refill).min(full);
        bucket.at = now.max(bucket.at);
        let cost = i64::try_from(cost)
            .unwrap_or(i64::MAX / 2_000)
            .saturating_mul(1_000);
        let needed = cost.min(full);
        if bucket.milli_tokens >= needed {
            bucket.milli_tokens -= cost;
            return Ok(());
        }
        let wait_ms = (needed - bucket.milli_tokens + per_second - 1) / per_second;
        let seconds = (wait_ms + SECOND - 1) / SECOND;
        Err(u32::try_from(seconds).unwrap_or(u32::MAX).max(1))
    }

    /// Admits an ingest's events, or answers the 429 that refuses them (counted under
    /// `rejected.rate_limited` in the metrics, one per event).
    ///
    /// # Errors
    /// The SQL error of the counter.
    pub fn admit(
        &self,
        env: &Env,
        sql: &SqlStorage,
        events: &[Event],
        now: Millis,
    ) -> worker::Result<Option<Response>> {
        let Some(source) = events.first().map(|e| e.weft.source.as_str()) else {
            return Ok(None);
        };
        self.rate.get_or_init(|| {
            let var = env.var(VAR).ok().map(|v| v.to_string());
            Rate::in_force(&crate::config::Config::bundled().collector, var.as_deref())
                .unwrap_or_else(|e| {
                    worker::console_error!("{}", json!({"level": "error", "msg": e.to_string()}));
                    None
                })
        });
        let Err(after) = self.take(source, events.len(), now) else {
            return Ok(None);
        };
        count(sql, "rejected.rate_limited", events.len() as u64)?;
        let error = ApiError::RateLimited(after);
        let body = json!({ "error": error.to_string(), "retryAfter": after });
        let mut res = Response::from_json(&body)?.with_status(429);
        res.headers_mut().set("retry-after", &after.to_string())?;
        Ok(Some(res))
    }
}

/// Stores events through the identity graph, which refuses them past the write key's
/// rate: its 429 becomes [`ApiError::RateLimited`], with the graph's `Retry-After`.
///
/// # Errors
/// [`ApiError::RateLimited`], or the graph's other faults as [`graph_client::call_json`]
/// maps them.
pub async fn ingest(env: &Env, ingest: &Ingest) -> Result<Stored, ApiError> {
    let body = serde_json::to_string(ingest).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut res = graph_client::call(env, Method::Post, "/ingest", Some(body)).await?;
    match res.status_code() {
        429 => {
            let after = res.headers().get("retry-after").ok().flatten();
            Err(ApiError::RateLimited(
                after.and_then(|a| a.parse().ok()).unwrap_or(1),
            ))
        }
        status if status >= 400 => {
            let text = res.text().await.unwrap_or_default();
            Err(ApiError::Internal(format!(
                "graph answered {status}: {text}"
            )))
        }
        _ => graph_client::read_json(&mut res).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collector(per_second: u32, burst: u32) -> Collector {
        Collector {
            rate_limit_per_second: per_second,
            rate_limit_burst: burst,
            ..Collector::default()
        }
    }

    #[test]
    fn the_rate_comes_from_the_override_else_the_configuration() {
        let rate = |per_second: u32, burst: u32| Some(Rate { per_second, burst });
        let cases: [(u32, u32, Option<&str>, Option<Rate>); 8] = [
            (100, 500, None, rate(100, 500)),
            (100, 0, None, rate(100, 100)),
            (0, 500, None, None),
            (100, 500, Some(""), rate(100, 500)),
            (100, 500, Some("off"), None),
            (0, 0, Some("5"), rate(5, 5)),
            (0, 0, Some(" 5 / 20 "), rate(5, 20)),
            (0, 0, Some("20/5"), rate(20, 20)),
        ];
        for (per_second, burst, var, want) in cases {
            let got = Rate::in_force(&collector(per_second, burst), var).unwrap();
            assert_eq!(got, want, "{per_second}/{burst} with {var:?}");
        }
    }

    #[test]
    fn a_bad_override_is_named() {
        for var in ["0", "fast", "5/x", "-1", "5/20/1"] {
            let err = Rate::in_force(&collector(1, 1), Some(var)).unwrap_err();
            assert_eq!(err, RateError::BadVar(var.to_owned()));
            assert!(err.to_string().contains(var), "{err}");
        }
    }

    #[test]
    fn a_full_bucket_admits_its_burst_then_refuses_until_it_refills() {
        let limiter = Limiter::with_rate(Some(Rate {
            per_second: 10,
            burst: 30,
        }));
        let t = 1_000_000;
        assert_eq!(limiter.take("web", 20, t), Ok(()));
        assert_eq!(limiter.take("web", 10, t), Ok(()));
        // Empty: 5 events need half a second, rounded up to a whole one.
        assert_eq!(limiter.take("web", 5, t), Err(1));
        assert_eq!(limiter.take("web", 30, t), Err(3));
        // Another write key has its own bucket.
        assert_eq!(limiter.take("backend", 30, t), Ok(()));
        // Half a second later five events are back.
        assert_eq!(limiter.take("web", 5, t + 500), Ok(()));
        assert_eq!(limiter.take("web", 1, t + 500), Err(1));
        // Refilling stops at the burst.
        assert_eq!(limiter.take("web", 30, t + 60_000), Ok(()));
        assert_eq!(limiter.take("web", 1, t + 60_000), Err(1));
    }

    #[test]
    fn a_batch_larger_than_the_burst_needs_a_full_bucket_and_leaves_debt() {
        let limiter = Limiter::with_rate(Some(Rate {
            per_second: 10,
            burst: 10,
        }));
        assert_eq!(limiter.take("web", 100, 0), Ok(()));
        // 90 events of debt, then 1 event: 9.1 s.
        assert_eq!(limiter.take("web", 1, 0), Err(10));
        assert_eq!(limiter.take("web", 1, 9_100), Ok(()));
    }

    #[test]
    fn without_a_rate_everything_is_admitted() {
        let limiter = Limiter::with_rate(None);
        for _ in 0..1_000 {
            assert_eq!(limiter.take("web", 10_000, 0), Ok(()));
        }
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let limiter = Limiter::with_rate(Some(Rate {
            per_second: 1,
            burst: 1,
        }));
        assert_eq!(limiter.take("web", 1, 10_000), Ok(()));
        assert_eq!(limiter.take("web", 1, 5_000), Err(1));
        assert_eq!(limiter.take("web", 1, 10_999), Err(1));
        assert_eq!(limiter.take("web", 1, 11_000), Ok(()));
    }
}
