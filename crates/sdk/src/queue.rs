//! The outbox: events waiting to be sent, bounded, persisted, and handed out in batches.
//!
//! Every event is queued here as its JSON text before anything is sent, and leaves only
//! when the collector acknowledged it (or refused it for good). The outbox is bounded by
//! a count and a byte size; when full, the oldest waiting events are dropped first and
//! counted, so an unreachable collector never eats the site's localStorage quota (field
//! report `bounded-offline-queue`). Batches are cut to a byte budget, which is how the
//! page-exit flush stays under the browser's 64 KiB keepalive limit (field report
//! `unload-beacon-over-quota`): what does not fit stays queued for the next page.
//!
//! The events are kept in one list, oldest first, each marked with the batch it is in
//! flight in (or none while it waits): a batch is a run of waiting events taken from the
//! front, and a batch to retry becomes waiting again where it stands, so the order never
//! changes. The stored form is one line per event, `messageId<TAB>json`, after a first
//! line holding the time it was written; JSON text never holds a raw newline or tab, so
//! no parser is needed. Plain Rust, tested natively.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use weft_core::text::{self, parse_decimal, push_decimal};

/// One queued event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The event's `messageId`.
    pub id: String,
    /// The event as JSON text.
    pub json: String,
    // The batch the event is in flight in; 0 while it waits.
    batch: u32,
}

impl Item {
    /// A waiting event.
    pub fn new(id: String, json: String) -> Item {
        Item { id, json, batch: 0 }
    }
}

/// What became of a batch the transport sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The collector stored it (2xx): the events leave the outbox.
    Delivered,
    /// Worth trying again (network error, 5xx, 429): the events wait again, in order.
    Retry,
    /// Refused for good (4xx other than 429): the events leave the outbox, counted.
    Refused,
}

/// The bounded outbox.
#[derive(Debug, Default)]
pub struct Outbox {
    // Oldest first, waiting and in flight alike.
    items: Vec<Item>,
    next_batch: u32,
    bytes: usize,
    max_count: usize,
    max_bytes: usize,
    /// Events dropped because the outbox was full, since the page loaded.
    pub dropped: u32,
    /// Events the collector refused for good, since the page loaded.
    pub refused: u32,
    /// Events acknowledged by the collector, since the page loaded.
    pub delivered: u32,
}

impl Outbox {
    /// An empty outbox holding at most `max_count` events and `max_bytes` bytes of JSON.
    pub fn new(max_count: usize, max_bytes: usize) -> Outbox {
        Outbox {
            max_count: max_count.max(1),
            max_bytes: max_bytes.max(1),
            ..Outbox::default()
        }
    }

    /// Events not yet handed to the transport.
    pub fn waiting(&self) -> usize {
        self.items.iter().filter(|item| item.batch == 0).count()
    }

    /// Events handed to the transport and not yet settled.
    pub fn in_flight(&self) -> usize {
        self.items.len() - self.waiting()
    }

    /// Bytes of JSON held, waiting and in flight.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Queues an event, dropping the oldest waiting ones while the outbox is over a bound.
    /// An event larger than the byte bound on its own is dropped at once.
    pub fn push(&mut self, item: Item) {
        if item.json.len() > self.max_bytes {
            self.dropped += 1;
            return;
        }
        self.bytes += item.json.len();
        self.items.push(Item { batch: 0, ..item });
        self.enforce_bounds(self.max_count);
    }

    // Drops the oldest waiting events until at most `max_count` events and `max_bytes`
    // bytes are held (or nothing waits).
    fn enforce_bounds(&mut self, max_count: usize) {
        let mut count = self.items.len();
        let mut bytes = self.bytes;
        let max_bytes = self.max_bytes;
        let mut dropped = 0;
        self.keep(&mut |item| {
            let drop = item.batch == 0 && (count > max_count || bytes > max_bytes);
            if drop {
                count -= 1;
                bytes -= item.json.len();
                dropped += 1;
            }
            !drop
        });
        self.bytes = bytes;
        self.dropped += dropped;
    }

    // Keeps the events `keep` answers true for (it may change them), in order. One
    // `retain_mut` behind a `dyn` closure: each closure type would otherwise bring its own
    // copy into the wasm.
    fn keep(&mut self, keep: &mut dyn FnMut(&mut Item) -> bool) {
        self.items.retain_mut(|item| keep(item));
    }

    /// Drops the oldest tenth of the waiting events (at least one), for when storage
    /// refuses the outbox's size; returns how many were dropped.
    pub fn shed(&mut self) -> usize {
        let waiting = self.waiting();
        let n = (waiting / 10).max(1).min(waiting);
        self.enforce_bounds(self.items.len() - n);
        n
    }

    /// Empties the outbox (consent denied); nothing is counted as dropped.
    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }

    /// Cuts the next batch: the oldest waiting events, in a row, whose request body, as
    /// written by [`body`], fits in `max_body` bytes, at most `max_events` of them. `None`
    /// when nothing waits or the oldest event alone does not fit (it waits for a larger
    /// budget). The events stay in the outbox, in flight, until [`Outbox::settle`].
    pub fn take(&mut self, max_body: usize, max_events: usize) -> Option<(u32, &[Item])> {
        let start = self.items.iter().position(|item| item.batch == 0)?;
        let mut size = BODY_OVERHEAD;
        let mut end = start;
        while end < self.items.len() && end - start < max_events {
            let item = &self.items[end];
            if item.batch != 0 || size + item.json.len() + 1 > max_body {
                break;
            }
            size += item.json.len() + 1;
            end += 1;
        }
        if end == start {
            return None;
        }
        // Batch numbers are never 0, which marks waiting events.
        self.next_batch = self.next_batch.wrapping_add(1).max(1);
        let batch = &mut self.items[start..end];
        for item in batch.iter_mut() {
            item.batch = self.next_batch;
        }
        Some((self.next_batch, batch))
    }

    /// Settles a batch handed out by [`Outbox::take`]; unknown batch numbers are ignored.
    pub fn settle(&mut self, batch: u32, outcome: Outcome) {
        let mut count = 0;
        let mut bytes = self.bytes;
        self.keep(&mut |item| {
            if batch == 0 || item.batch != batch {
                return true;
            }
            if outcome == Outcome::Retry {
                item.batch = 0;
                return true;
            }
            count += 1;
            bytes -= item.json.len();
            false
        });
        self.bytes = bytes;
        match outcome {
            Outcome::Delivered => self.delivered = self.delivered.saturating_add(count),
            Outcome::Refused => self.refused = self.refused.saturating_add(count),
            Outcome::Retry => {}
        }
    }

    /// The stored form: the write time, then every event held, oldest first (in-flight
    /// ones too: the page may not live to see their answer), one `id<TAB>json` line each;
    /// empty when nothing is held.
    pub fn to_text(&self, now: i64) -> String {
        if self.items.is_empty() {
            return String::new();
        }
        let mut out = String::with_capacity(self.bytes + 64 * self.items.len() + 16);
        push_decimal(&mut out, now);
        for item in &self.items {
            out.push('\n');
            out.push_str(&item.id);
            out.push('\t');
            out.push_str(&item.json);
        }
        out
    }

    /// Queues the events of a stored form (this page's earlier self, or an orphaned tab's
    /// outbox) ahead of the events queued since, skipping message ids already held;
    /// returns the time the stored form was written (0 when unreadable).
    pub fn restore(&mut self, stored: &str) -> i64 {
        let mut lines = text::fields(stored, b'\n');
        let written = lines.next().and_then(parse_decimal).unwrap_or(0);
        let mut restored: Vec<Item> = Vec::new();
        for line in lines {
            let Some((id, json)) = text::split_once(line, b'\t') else {
                continue;
            };
            let held = holds(&self.items, id) || holds(&restored, id);
            if !held && json.as_bytes().first() == Some(&b'{') {
                self.bytes += json.len();
                restored.push(Item::new(id.to_owned(), json.to_owned()));
            }
        }
        restored.append(&mut self.items);
        self.items = restored;
        self.enforce_bounds(self.max_count);
        written
    }
}

fn holds(items: &[Item], id: &str) -> bool {
    items.iter().any(|item| item.id == id)
}

/// Bytes of a request body around its events, with room for a long write key.
pub const BODY_OVERHEAD: usize = 256;

/// The request body for a batch: `{"batch":[…],"sentAt":"…","writeKey":…}`, with
/// `write_key_json` already JSON-quoted.
pub fn body(items: &[Item], sent_at: &str, write_key_json: &str) -> String {
    let size: usize = items.iter().map(|i| i.json.len() + 1).sum();
    let mut out = String::with_capacity(size + 64 + write_key_json.len());
    out.push_str("{\"batch\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item.json);
    }
    out.push_str("],\"sentAt\":\"");
    out.push_str(sent_at);
    out.push_str("\",\"writeKey\":");
    out.push_str(write_key_json);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: usize, size: usize) -> Item {
        let id = ["m-", &n.to_string()].concat();
        let pad = "x".repeat(size.saturating_sub(id.len() + 20));
        let json = ["{\"messageId\":\"", &id, "\",\"p\":\"", &pad, "\"}"].concat();
        Item::new(id, json)
    }

    // The batch a take cuts, owned, so that the outbox can be used while it is read.
    fn take(outbox: &mut Outbox, max_body: usize, max_events: usize) -> Option<(u32, Vec<Item>)> {
        outbox
            .take(max_body, max_events)
            .map(|(batch, items)| (batch, items.to_vec()))
    }

    fn ids(items: &[Item]) -> Vec<&str> {
        items.iter().map(|i| i.id.as_str()).collect()
    }

    #[test]
    fn bounded_offline_queue() {
        let mut outbox = Outbox::new(1000, 1_000_000);
        for n in 0..5000 {
            outbox.push(item(n, 1500));
        }
        assert!(outbox.waiting() <= 1000);
        assert!(outbox.bytes() <= 1_000_000);
        assert_eq!(outbox.dropped as usize, 5000 - outbox.waiting());
        let batch = take(&mut outbox, usize::MAX, 1).unwrap().1;
        assert_eq!(
            batch[0].id,
            ["m-", &(5000 - outbox.waiting() - 1).to_string()].concat()
        );
        assert!(outbox.to_text(1).len() < 1_100_000);
    }

    #[test]
    fn the_count_bound_drops_the_oldest_first() {
        let mut outbox = Outbox::new(3, 1_000_000);
        for n in 1..=5 {
            outbox.push(item(n, 50));
        }
        let (_, batch) = take(&mut outbox, usize::MAX, 10).unwrap();
        assert_eq!(ids(&batch), ["m-3", "m-4", "m-5"]);
        assert_eq!(outbox.dropped, 2);
    }

    #[test]
    fn unload_beacon_over_quota() {
        let mut outbox = Outbox::new(1000, 1_000_000);
        for n in 1..=30 {
            outbox.push(item(n, 3000));
        }
        let budget = 64 * 1024;
        let mut sent = Vec::new();
        let mut used = 0;
        while let Some((_, batch)) = take(&mut outbox, budget - used, 100) {
            let text = body(&batch, "2024-01-01T00:00:00.000Z", "\"k\"");
            assert!(
                text.len() <= budget - used,
                "{} > {}",
                text.len(),
                budget - used
            );
            used += text.len();
            sent.extend(batch);
        }
        assert!(sent.len() >= 20 && sent.len() < 30, "{}", sent.len());
        assert_eq!(outbox.waiting(), 30 - sent.len());

        let mut next_page = Outbox::new(1000, 1_000_000);
        next_page.restore(&outbox.to_text(7));
        let (_, rest) = take(&mut next_page, usize::MAX, 100).unwrap();
        let mut all: Vec<&str> = ids(&sent);
        all.extend(
            ids(&rest)
                .iter()
                .filter(|id| !all.contains(id))
                .collect::<Vec<_>>(),
        );
        all.sort_by_key(|id| id[2..].parse::<u32>().unwrap());
        let expected: Vec<String> = (1..=30).map(|n| ["m-", &n.to_string()].concat()).collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn an_event_larger_than_the_budget_waits_for_a_larger_one() {
        let mut outbox = Outbox::new(10, 1_000_000);
        outbox.push(item(1, 40_000));
        assert_eq!(take(&mut outbox, 32 * 1024, 100), None);
        assert!(take(&mut outbox, 64 * 1024, 100).is_some());
    }

    #[test]
    fn settled_batches_leave_or_come_back_in_order() {
        let cases = [
            (Outcome::Delivered, vec!["m-3"], 2, 0),
            (Outcome::Refused, vec!["m-3"], 0, 2),
            (Outcome::Retry, vec!["m-1", "m-2", "m-3"], 0, 0),
        ];
        for (outcome, left, delivered, refused) in cases {
            let mut outbox = Outbox::new(10, 1_000_000);
            for n in 1..=3 {
                outbox.push(item(n, 50));
            }
            let (batch, _) = take(&mut outbox, usize::MAX, 2).unwrap();
            assert_eq!(outbox.in_flight(), 2);
            outbox.settle(batch, outcome);
            outbox.settle(batch, Outcome::Delivered);
            let (_, rest) = take(&mut outbox, usize::MAX, 10).unwrap();
            assert_eq!(ids(&rest), left, "{outcome:?}");
            assert_eq!(
                (outbox.delivered, outbox.refused),
                (delivered, refused),
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn a_retried_batch_waits_again_ahead_of_newer_events() {
        let mut outbox = Outbox::new(10, 1_000_000);
        for n in 1..=4 {
            outbox.push(item(n, 50));
        }
        let (first, _) = take(&mut outbox, usize::MAX, 1).unwrap();
        let (second, _) = take(&mut outbox, usize::MAX, 1).unwrap();
        outbox.settle(first, Outcome::Retry);
        assert_eq!((outbox.waiting(), outbox.in_flight()), (3, 1));
        let (_, again) = take(&mut outbox, usize::MAX, 10).unwrap();
        assert_eq!(ids(&again), ["m-1"], "a batch is a run of waiting events");
        let (_, rest) = take(&mut outbox, usize::MAX, 10).unwrap();
        assert_eq!(ids(&rest), ["m-3", "m-4"]);
        assert!(outbox.to_text(1).starts_with("1\nm-1\t{"));
        outbox.settle(second, Outcome::Delivered);
        assert_eq!((outbox.in_flight(), outbox.delivered), (3, 1));
        outbox.settle(0, Outcome::Delivered);
        assert_eq!(outbox.in_flight(), 3, "0 names no batch");
    }

    #[test]
    fn the_stored_form_restores_without_duplicates() {
        let mut outbox = Outbox::new(10, 1_000_000);
        for n in 1..=3 {
            outbox.push(item(n, 50));
        }
        let _in_flight = take(&mut outbox, usize::MAX, 1).unwrap();
        let text = outbox.to_text(42);
        assert!(text.starts_with("42\nm-1\t{"), "{text}");

        let mut next = Outbox::new(10, 1_000_000);
        next.push(item(4, 50));
        assert_eq!(next.restore(&text), 42);
        assert_eq!(next.restore(&text), 42);
        let (_, all) = take(&mut next, usize::MAX, 10).unwrap();
        assert_eq!(ids(&all), ["m-1", "m-2", "m-3", "m-4"]);
        assert_eq!(next.restore("garbage\nno tab here\nid\tnot json"), 0);
        assert_eq!(Outbox::new(1, 1).to_text(5), "");
    }

    #[test]
    fn shedding_drops_the_oldest_tenth() {
        let mut outbox = Outbox::new(100, 1_000_000);
        for n in 1..=20 {
            outbox.push(item(n, 50));
        }
        assert_eq!(outbox.shed(), 2);
        assert_eq!(take(&mut outbox, usize::MAX, 1).unwrap().1[0].id, "m-3");
        assert_eq!(outbox.dropped, 2);
    }

    #[test]
    fn bodies_are_segment_batches() {
        let items = [item(1, 30), item(2, 30)];
        let text = body(&items, "2024-01-01T00:00:00.000Z", "\"demo-write-key\"");
        assert!(
            text.starts_with("{\"batch\":[{\"messageId\":\"m-1\""),
            "{text}"
        );
        assert!(text.ends_with(
            "],\"sentAt\":\"2024-01-01T00:00:00.000Z\",\"writeKey\":\"demo-write-key\"}"
        ));
    }
}
