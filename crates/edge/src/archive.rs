//! The R2 archive: every stored event as NDJSON in time-partitioned objects.
//!
//! The Durable Object queues each accepted event in its `archive_queue` table (inside the
//! same atomic turn that stores it); the alarm writes the queue out as one object per
//! flush, keyed `events/YYYY/MM/DD/HH/<first seq>-<last seq>.ndjson` by the first event's
//! `receivedAt`, then deletes what it wrote. Erasure writes a tombstone object under
//! `tombstones/` listing the erased identifiers' hashes, which replay honours.

use serde::Deserialize;
use weft_core::event::Event;
use weft_core::time::{format_rfc3339, Millis, SECOND};
use worker::{Env, SqlStorage, SqlStorageValue};

/// The R2 binding's name in `wrangler.toml`.
pub const BINDING: &str = "ARCHIVE";

/// How long after an event the archive flush runs.
pub const FLUSH_DELAY: Millis = 5 * SECOND;

/// The most events written to one object.
pub const MAX_PER_OBJECT: usize = 5_000;

/// The most bytes of events written to one object (one SQL value holds at most 2 MB).
pub const MAX_OBJECT_BYTES: usize = 1 << 20;

/// The most objects one alarm writes; what remains waits for the next.
const MAX_OBJECTS_PER_FLUSH: usize = 20;

#[derive(Deserialize)]
struct Queued {
    body: String,
}

/// The object key for a flush starting with `first` and ending with `last`.
pub fn object_key(received_at: Millis, first: u64, last: u64) -> String {
    let t = format_rfc3339(received_at);
    // 2024-05-01T12:00:00.000Z → events/2024/05/01/12/...
    format!(
        "events/{}/{}/{}/{}/{first:012}-{last:012}.ndjson",
        &t[0..4],
        &t[5..7],
        &t[8..10],
        &t[11..13]
    )
}

/// Writes queued events to R2 and removes them from the queue.
///
/// # Errors
/// The SQL or R2 error; the queue is kept and the next alarm tries again.
pub async fn flush(env: &Env, sql: SqlStorage) -> worker::Result<usize> {
    let mut written = 0;
    // A busy object may queue faster than one alarm writes; the next alarm goes on.
    for _ in 0..MAX_OBJECTS_PER_FLUSH {
        // SQLite joins the bodies into NDJSON itself, so one string crosses into wasm; a
        // flush stops short of the platform's 2 MB limit on one SQL value.
        let row = sql
            .exec(
                "WITH firsts AS (SELECT seq, received_at, body FROM archive_queue \
                 ORDER BY seq LIMIT ?1), \
                 sized AS (SELECT seq, received_at, body, \
                 SUM(length(CAST(body AS BLOB)) + 1) OVER (ORDER BY seq) AS upto FROM firsts), \
                 taken AS (SELECT seq, received_at, body FROM sized \
                 WHERE upto <= ?2 OR seq = (SELECT MIN(seq) FROM firsts)) \
                 SELECT COUNT(*), MIN(seq), MAX(seq), \
                 (SELECT received_at FROM taken ORDER BY seq LIMIT 1), \
                 group_concat(body, char(10) ORDER BY seq), \
                 (SELECT COUNT(*) FROM firsts) FROM taken",
                vec![
                    (MAX_PER_OBJECT as i64).into(),
                    (MAX_OBJECT_BYTES as i64).into(),
                ],
            )?
            .raw()
            .next()
            .transpose()?;
        let Some([count, first, last, at, SqlStorageValue::String(mut body), looked_at]) =
            row.and_then(|r| <[SqlStorageValue; 6]>::try_from(r).ok())
        else {
            return Ok(written);
        };
        let (Some(count), Some(first), Some(last), Some(at), Some(looked_at)) = (
            whole(&count),
            whole(&first),
            whole(&last),
            whole(&at),
            whole(&looked_at),
        ) else {
            return Ok(written);
        };
        // Neither cap cut this object: it took the whole queue.
        let whole_queue = count == looked_at && (count as usize) < MAX_PER_OBJECT;
        body.push('\n');
        let key = object_key(at as Millis, first, last);
        env.bucket(BINDING)?
            .put(&key, body.into_bytes())
            .execute()
            .await?;
        sql.exec(
            "DELETE FROM archive_queue WHERE seq <= ?",
            vec![(last as i64).into()],
        )?;
        written += count as usize;
        if whole_queue {
            break;
        }
    }
    Ok(written)
}

/// A whole, non-negative number from a SQL value.
fn whole(value: &SqlStorageValue) -> Option<u64> {
    match value {
        SqlStorageValue::Integer(n) => u64::try_from(*n).ok(),
        SqlStorageValue::Float(f) if *f >= 0.0 && f.fract() == 0.0 => Some(*f as u64),
        _ => None,
    }
}

/// Writes a tombstone listing erased identifiers' hashes; returns its key.
///
/// # Errors
/// The R2 error.
pub async fn tombstone(env: &Env, hashes: &[String], now: Millis) -> worker::Result<String> {
    let key = format!("tombstones/{now:015}.json");
    let body = serde_json::json!({ "erasedAt": format_rfc3339(now), "ids": hashes }).to_string();
    env.bucket(BINDING)?
        .put(&key, body.into_bytes())
        .execute()
        .await?;
    Ok(key)
}

/// Every archived event in archive order, followed by the events still queued, with the
/// events of erased identifiers (tombstones) left out.
///
/// # Errors
/// The R2 or SQL error, or an object that is not NDJSON of events.
///
/// # Limitations
/// Reads the whole archive into the Durable Object's memory (128 MB): fine for a
/// moderate workspace; larger ones need a replay that streams object by object.
pub async fn read_all(env: &Env, sql: SqlStorage) -> worker::Result<Vec<Event>> {
    let bucket = env.bucket(BINDING)?;
    let mut erased: Vec<String> = Vec::new();
    for key in list(&bucket, "tombstones/").await? {
        if let Some(obj) = bucket.get(&key).execute().await? {
            let text = obj
                .body()
                .map(|b| b.text())
                .ok_or("tombstone has no body")?
                .await?;
            #[derive(Deserialize)]
            struct Tomb {
                ids: Vec<String>,
            }
            let tomb: Tomb = serde_json::from_str(&text)
                .map_err(|e| worker::Error::RustError(format!("{key}: {e}")))?;
            erased.extend(tomb.ids);
        }
    }
    let mut events = Vec::new();
    let mut keys = list(&bucket, "events/").await?;
    keys.sort();
    for key in keys {
        let Some(obj) = bucket.get(&key).execute().await? else {
            continue;
        };
        let text = obj
            .body()
            .map(|b| b.text())
            .ok_or("archive object has no body")?
            .await?;
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let event: Event = serde_json::from_str(line)
                .map_err(|e| worker::Error::RustError(format!("{key} line {}: {e}", n + 1)))?;
            events.push(event);
        }
    }
    let queued: Vec<Queued> = sql
        .exec("SELECT body FROM archive_queue ORDER BY seq", None)?
        .to_array()?;
    for row in queued {
        if let Ok(event) = serde_json::from_str(&row.body) {
            events.push(event);
        }
    }
    if !erased.is_empty() {
        events.retain(|e| !mentions(e, &erased));
    }
    Ok(events)
}

fn mentions(event: &Event, erased: &[String]) -> bool {
    let config = &crate::config::Config::bundled().identity;
    crate::graph::named_ids(event, config)
        .iter()
        .any(|id| erased.contains(&crate::graph::id_hash(id)))
}

async fn list(bucket: &worker::Bucket, prefix: &str) -> worker::Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = bucket.list().prefix(prefix);
        if let Some(c) = cursor.take() {
            req = req.cursor(c);
        }
        let page = req.execute().await?;
        keys.extend(page.objects().iter().map(|o| o.key()));
        match page.cursor() {
            Some(c) if page.truncated() => cursor = Some(c),
            _ => return Ok(keys),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_partitioned_by_hour() {
        assert_eq!(
            object_key(1_714_564_800_000, 1, 42),
            "events/2024/05/01/12/000000000001-000000000042.ndjson"
        );
    }
}
