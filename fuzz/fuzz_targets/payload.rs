//! Fuzz target for the collector's payload reader, `weft_core::payload::parse`.
//!
//! The input is a request body exactly as a client would send it (the seed corpus in
//! `fuzz/corpus/payload/` holds real ones: the SDK's, analytics-node's, analytics-next's
//! and the field reports'). Each input is read four times: on the batch route and on a
//! single-event route chosen by its length, each with the default limits and with tiny
//! ones, so the limit paths are reached by short inputs too.
//!
//! Beyond "never panics", every answer is checked against the reader's contract: each
//! event of the batch gets exactly one verdict; warnings name stored events; no stored
//! event is dated after `receivedAt`; and every stored event survives the JSON round trip
//! to the Durable Object with its ids and times intact (a failure there is a 500 in the
//! worker).

#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_core::event::{Event, EventKind};
use weft_core::payload::{self, Limits, Payload};
use weft_core::time::Millis;

/// 2024-05-01T12:00:00Z, the collector's clock for every run.
const NOW: Millis = 1_714_564_800_000;

const ROUTES: [EventKind; 6] = [
    EventKind::Track,
    EventKind::Page,
    EventKind::Screen,
    EventKind::Identify,
    EventKind::Group,
    EventKind::Alias,
];

const TINY: Limits = Limits {
    max_body: 4096,
    max_event: 256,
    max_depth: 4,
    max_string: 64,
    max_events: 8,
};

fuzz_target!(|body: &[u8]| {
    let single = ROUTES[body.len() % ROUTES.len()];
    for limits in [Limits::default(), TINY] {
        for route in [None, Some(single)] {
            match payload::parse(body, route, NOW, &limits) {
                Ok(p) => check_payload(&p, &limits),
                Err(e) => {
                    check_message(&e.to_string());
                    // The collector still looks for the key of a body refused whole.
                    let _ = payload::write_key_of(body);
                }
            }
        }
    }
});

fn check_payload(p: &Payload, limits: &Limits) {
    let mut verdicts: Vec<usize> = p.events.iter().map(|(i, _)| *i).collect();
    verdicts.extend(p.rejected.iter().map(|r| r.index));
    verdicts.sort_unstable();
    let expected: Vec<usize> = (0..verdicts.len()).collect();
    assert_eq!(verdicts, expected, "each event gets exactly one verdict");
    assert!(verdicts.len() <= limits.max_events.max(1));

    for rejection in &p.rejected {
        check_message(&rejection.error);
    }
    for warning in &p.warnings {
        check_message(&warning.warning);
        let named = p
            .events
            .iter()
            .find(|(i, _)| *i == warning.index)
            .map(|(_, e)| e.message_id.as_str());
        assert_eq!(
            named,
            Some(warning.message_id.as_str()),
            "a warning names a stored event"
        );
    }
    for (_, event) in &p.events {
        check_event(event);
    }
}

fn check_event(event: &Event) {
    assert!(
        !event.message_id.is_empty(),
        "stored events have a messageId"
    );
    assert!(event.anonymous_id.is_some() || event.user_id.is_some());
    assert_eq!(event.received_at, NOW);
    assert!(event.timestamp <= NOW, "no event is stored in the future");

    // The worker hands events to the Durable Object as JSON.
    let text = match serde_json::to_string(event) {
        Ok(text) => text,
        Err(e) => panic!("a stored event does not serialise: {e}"),
    };
    let back: Event = match serde_json::from_str(&text) {
        Ok(back) => back,
        Err(e) => panic!("a stored event does not read back: {e}\n{text}"),
    };
    assert_eq!(back.kind, event.kind);
    assert_eq!(back.message_id, event.message_id);
    assert_eq!(back.anonymous_id, event.anonymous_id);
    assert_eq!(back.user_id, event.user_id);
    assert_eq!(
        back.timestamp, event.timestamp,
        "timestamp survives the round trip"
    );
    assert_eq!(back.original_timestamp, event.original_timestamp);
    assert_eq!(back.sent_at, event.sent_at);
    assert_eq!(back.received_at, event.received_at);
}

/// Messages a developer reads: present, and lowercase as the style asks.
fn check_message(message: &str) {
    assert!(!message.is_empty(), "every fault is named");
    let first = message.chars().next().unwrap_or(' ');
    assert!(!first.is_uppercase(), "messages start lowercase: {message}");
}
